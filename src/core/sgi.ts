/**
 * SGI generation from ICC_SGI0R_EL1 / ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 (GIC IHI 0069 §12.2.21-22),
 * KVM's vgic_v3_dispatch_sgi. The target vCPU is computed from the affinity fields in O(1):
 * vCPU i has MPIDR Aff0 = i & 15, Aff1 = (i >> 4) & 0xff, Aff2 = i >> 12 (KVM's layout), so no
 * scan over vCPUs is needed (KVM needed an MPIDR hash for this).
 *
 * Who may call: the thread running the sending vCPU. Locks: takes each target's irq_lock.
 */

import {
  SGIR_HI_AFF2_MASK,
  SGIR_HI_AFF3_SHIFT,
  SGIR_HI_IRM,
  SGIR_HI_RS_SHIFT,
  SGIR_LO_AFF1_SHIFT,
  SGIR_LO_INTID_SHIFT,
  SGIR_LO_TARGETLIST_MASK,
} from '../arch/sysreg.ts';
import { type GicState, IRQ_GROUP1, IRQ_PENDING_LATCH, S_SGI_NO_TARGET } from '../state/layout.ts';
import { queueIrqUnlock } from './irq.ts';
import { lockIrq, unlockIrq } from './locks.ts';
import { vpeSetVsgi, vsgiMode } from './vpe.ts';

/** MPIDR affinity of vCPU v, packed Aff2 << 16 | Aff1 << 8 | Aff0 (Aff3 is 0). */
export function vcpuAffinity(v: number): number {
  return (((v >>> 12) & 0xff) << 16) | (((v >>> 4) & 0xff) << 8) | (v & 0xf);
}

/** The vCPU with this affinity, or -1. */
export function vcpuByAffinity(s: GicState, aff3: number, aff2: number, aff1: number, aff0: number): number {
  if (aff3 !== 0 || aff0 > 15) return -1;
  const v = (aff2 << 12) | (aff1 << 4) | aff0;
  return v < s.nVcpus ? v : -1;
}

/**
 * vgic_v3_queue_sgi: an access aimed at Group 0 SGIs only generates those; one aimed at Group 1
 * generates either group (GICD_CTLR.DS = 1).
 */
function queueSgi(s: GicState, target: number, sgi: number, allowGroup1: boolean): void {
  const slot = s.slotOf(target, sgi);
  if (vsgiMode(s)) {
    // GICv4.1 vSGI: straight into the target's vPE (no ap_list, no LR, no active state).
    if ((s.irqFlags[slot] & IRQ_GROUP1) === 0 || allowGroup1) vpeSetVsgi(s, target, sgi);
    return;
  }
  lockIrq(s, slot);
  if ((s.irqFlags[slot] & IRQ_GROUP1) === 0 || allowGroup1) {
    s.irqFlags[slot] |= IRQ_PENDING_LATCH;
    queueIrqUnlock(s, slot);
  } else {
    unlockIrq(s, slot);
  }
}

/**
 * Dispatches an ICC_SGI*R write from vCPU `self`, given as two 32-bit words. Returns the number of
 * vCPUs the SGI was sent to.
 */
export function dispatchSgi(s: GicState, self: number, lo: number, hi: number, allowGroup1: boolean): number {
  const sgi = (lo >>> SGIR_LO_INTID_SHIFT) & 0xf;
  if (hi & SGIR_HI_IRM) {
    // Broadcast: every PE but the sender.
    for (let v = 0; v < s.nVcpus; v++) if (v !== self) queueSgi(s, v, sgi, allowGroup1);
    return s.nVcpus - 1;
  }
  const aff3 = (hi >>> SGIR_HI_AFF3_SHIFT) & 0xff;
  const aff2 = hi & SGIR_HI_AFF2_MASK;
  const aff1 = (lo >>> SGIR_LO_AFF1_SHIFT) & 0xff;
  const rs = (hi >>> SGIR_HI_RS_SHIFT) & 0xf;
  let list = lo & SGIR_LO_TARGETLIST_MASK;
  let sent = 0;
  while (list !== 0) {
    const bit = 31 - Math.clz32(list & -list);
    list &= list - 1;
    const target = vcpuByAffinity(s, aff3, aff2, aff1, rs * 16 + bit);
    if (target < 0) {
      s.stats[S_SGI_NO_TARGET]++;
      continue;
    }
    queueSgi(s, target, sgi, allowGroup1);
    sent++;
  }
  return sent;
}
