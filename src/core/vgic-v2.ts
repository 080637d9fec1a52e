/**
 * The GICv2 "world switch" backend: KVM's vgic-v2.c. Writes one interrupt into a list register at
 * guest entry (populate) and folds the list registers back at guest exit (fold), in GICH_LR
 * format (arch/gicv2.ts; one word per LR, the high word zero). Spec: GIC IHI 0048B §5.3.8.
 *
 * GICv2 SGIs carry their source CPU: each source pending on an SGI is a bit of the slot's irqRouter
 * (KVM's irq->source). An LR takes one source (the lowest); while others remain the latch stays set
 * and the LR asks for an EOI maintenance interrupt, so the next source is delivered once the guest
 * has handled this one (KVM's multi-SGI path: one LR per source, never two of one SGI at once).
 *
 * A level SPI's EOI (its LR asked for the EOI maintenance interrupt) is reported to resample
 * irqfds at the fold (core/ack.ts), as the GICv3 backend does.
 *
 * Who may call: the thread running vCPU `v`, from flush/sync (core/vgic.ts).
 * Locks: populateLrV2Locked expects the slot's irq_lock; foldLrStateV2 takes each irq_lock itself.
 */

import {
  GICH_LR_ACTIVE,
  GICH_LR_CPUID_MASK,
  GICH_LR_EOI,
  GICH_LR_GROUP1,
  GICH_LR_HW,
  GICH_LR_PENDING,
  GICH_LR_PHYSID_CPUID_SHIFT,
  GICH_LR_PRIORITY_SHIFT,
  GICH_LR_STATE,
  GICH_LR_VIRTUALID,
} from '../arch/gicv2.ts';
import { VGIC_NR_SGIS } from '../arch/intid.ts';
import {
  type GicState,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_GROUP1,
  IRQ_HW,
  IRQ_LINE_LEVEL,
  IRQ_PENDING_LATCH,
  SGI_ACTIVE_SOURCE_SHIFT,
  SGI_SOURCE_MASK,
  V_FOLD_MERGED,
  V_LR_ACT,
  V_LR_GRP0,
  V_LR_PEND,
  V_LR_SORTED,
  V_USED_LRS,
  VCPU_STRIDE,
} from '../state/layout.ts';
import { ackListeners, levelAcked } from './ack.ts';
import { irqIsPending } from './irq.ts';
import { lockIrq, unlockIrq } from './locks.ts';
import { lrSlot, physLineLevel } from './vgic-v3.ts';

/** A GICH_LR's priority as an 8-bit value (its 5 bits are priority[7:3]). */
export const lrV2Priority = (lr: number): number => ((lr >>> GICH_LR_PRIORITY_SHIFT) & 0x1f) << 3;

/** Is this slot one of a vCPU's SGIs (the source-carrying interrupts of a GICv2)? */
const isSgiSlot = (s: GicState, slot: number): boolean => slot < s.spiBase && slot % 32 < VGIC_NR_SGIS;

/** vgic_v2_populate_lr. Caller holds the irq_lock of `slot`. */
export function populateLrV2Locked(s: GicState, v: number, slot: number, n: number): void {
  let f = s.irqFlags[slot];
  let val = s.irqIntid[slot] & GICH_LR_VIRTUALID;
  let allowPending = true;
  const sgi = isSgiSlot(s, slot);
  if (f & IRQ_ACTIVE) {
    val |= GICH_LR_ACTIVE;
    if (sgi) {
      val |= ((s.irqRouter[slot] >>> SGI_ACTIVE_SOURCE_SHIFT) & 7) << GICH_LR_PHYSID_CPUID_SHIFT;
      // An active SGI with more sources pending: deliver them after this one's deactivation.
      if ((s.irqRouter[slot] & SGI_SOURCE_MASK) !== 0) {
        allowPending = false;
        val |= GICH_LR_EOI;
      }
    }
  }
  if (f & IRQ_GROUP1) val |= GICH_LR_GROUP1;
  if (f & IRQ_HW) {
    val |= GICH_LR_HW | ((s.irqHwIntid[slot] & 0x3ff) << GICH_LR_PHYSID_CPUID_SHIFT);
    if (f & IRQ_ACTIVE) allowPending = false;
  } else if ((f & IRQ_EDGE) === 0) {
    val |= GICH_LR_EOI;
    if (f & IRQ_ACTIVE) allowPending = false;
  }
  if (allowPending && irqIsPending(f)) {
    val |= GICH_LR_PENDING;
    if (f & IRQ_EDGE) f &= ~IRQ_PENDING_LATCH;
    else if (f & IRQ_HW) f &= ~IRQ_LINE_LEVEL;
    if (sgi) {
      const sources = s.irqRouter[slot] & SGI_SOURCE_MASK;
      // A latch without a source cannot come from a guest (ISPENDR ignores SGIs on a GICv2); the
      // host's restore checks it too. CPU 0 keeps the LR well formed whatever happens.
      const src = sources === 0 ? 0 : 31 - Math.clz32(sources & -sources);
      val |= src << GICH_LR_PHYSID_CPUID_SHIFT;
      const rest = sources & ~(1 << src);
      s.irqRouter[slot] = (s.irqRouter[slot] & ~SGI_SOURCE_MASK) | rest;
      if (rest !== 0) {
        f |= IRQ_PENDING_LATCH;
        val |= GICH_LR_EOI;
      }
    }
  }
  val |= (s.irqPriority[slot] >>> 3) << GICH_LR_PRIORITY_SHIFT;
  s.irqFlags[slot] = f;
  const i = s.lrIndex(v, n);
  s.lr[i] = val >>> 0;
  s.lr[i + 1] = 0;
  const b = v * VCPU_STRIDE;
  if ((val & GICH_LR_GROUP1) === 0) s.vcpu[b + V_LR_GRP0] |= 1 << n;
  if (val & GICH_LR_ACTIVE) s.vcpu[b + V_LR_ACT] |= 1 << n;
  else if (val & GICH_LR_PENDING) {
    const pend = s.vcpu[b + V_LR_PEND];
    if (pend !== 0) {
      const last = 31 - Math.clz32(pend);
      const prev = s.lr[s.lrIndex(v, last)];
      const lastPrio = lrV2Priority(prev);
      const prio = lrV2Priority(val);
      if (lastPrio > prio || (lastPrio === prio && (prev & GICH_LR_VIRTUALID) > (val & GICH_LR_VIRTUALID))) {
        s.vcpu[b + V_LR_SORTED] = 0;
      }
    }
    s.vcpu[b + V_LR_PEND] = pend | (1 << n);
  }
}

/** vgic_v2_fold_lr_state: fold the used LRs of vCPU v back into the interrupts' state. */
export function foldLrStateV2(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  const used = s.vcpu[b + V_USED_LRS];
  for (let n = 0; n < used; n++) {
    const val = s.lr[s.lrIndex(v, n)];
    const intid = val & GICH_LR_VIRTUALID;
    const slot = lrSlot(s, v, intid);
    if (slot < 0) continue;
    const cpuid = (val & GICH_LR_CPUID_MASK) >>> GICH_LR_PHYSID_CPUID_SHIFT;
    const sgi = isSgiSlot(s, slot);
    lockIrq(s, slot);
    let f = s.irqFlags[slot];
    const wasActive = (f & IRQ_ACTIVE) !== 0;
    const deactivated = wasActive && (val & GICH_LR_ACTIVE) === 0;
    f = val & GICH_LR_ACTIVE ? f | IRQ_ACTIVE : f & ~IRQ_ACTIVE;
    if (sgi && val & GICH_LR_ACTIVE) {
      s.irqRouter[slot] = (s.irqRouter[slot] & SGI_SOURCE_MASK) | (cpuid << SGI_ACTIVE_SOURCE_SHIFT);
    }
    if (f & IRQ_EDGE) {
      if (val & GICH_LR_PENDING) {
        if (sgi) {
          // The same source sent it again while its LR was still pending: the two merge.
          if (s.irqRouter[slot] & (1 << cpuid)) s.vcpu[b + V_FOLD_MERGED]++;
          s.irqRouter[slot] |= 1 << cpuid;
        } else if (f & IRQ_PENDING_LATCH) s.vcpu[b + V_FOLD_MERGED]++;
        f |= IRQ_PENDING_LATCH;
      }
    } else if (!wasActive && (val & GICH_LR_PENDING) === 0) {
      // Acknowledged: the soft pending latch of a level interrupt is consumed (as vgic-v3.ts).
      f &= ~IRQ_PENDING_LATCH;
    }
    // kvm_notify_acked_irq, as vgic_v2_fold_lr_state: the guest EOI'd a level SPI (its LR asked
    // for the EOI maintenance interrupt and is now invalid); a resample irqfd lowers its line.
    // An SGI's EOI bit (more sources waiting) is no such request: SGIs are not SPIs.
    if (
      ackListeners !== 0 &&
      (val & (GICH_LR_STATE | GICH_LR_HW | GICH_LR_EOI)) === GICH_LR_EOI &&
      slot >= s.spiBase &&
      slot < s.spiBase + s.nSpis &&
      levelAcked(s, s.irqIntid[slot])
    ) {
      f &= ~IRQ_LINE_LEVEL;
    }
    if ((f & (IRQ_HW | IRQ_EDGE)) === IRQ_HW) {
      if ((val & GICH_LR_PENDING) !== 0 || (deactivated && (f & IRQ_LINE_LEVEL) !== 0)) {
        f = physLineLevel(s, v, slot) ? f | IRQ_LINE_LEVEL : f & ~IRQ_LINE_LEVEL;
      }
    }
    s.irqFlags[slot] = f;
    unlockIrq(s, slot);
  }
  s.vcpu[b + V_USED_LRS] = 0;
  s.vcpu[b + V_LR_PEND] = 0;
  s.vcpu[b + V_LR_ACT] = 0;
}
