/**
 * Generic accessors of the per-IRQ registers shared by the distributor (SPIs) and the
 * redistributors' SGI_base frame (SGIs, PPIs): KVM's vgic-mmio.c. Spec: GIC IHI 0069 §12.9
 * (GICD_IGROUPR, GICD_IS/ICENABLER, GICD_IS/ICPENDR, GICD_IS/ICACTIVER, GICD_IPRIORITYR, GICD_ICFGR).
 *
 * `vcpu` is the redistributor's vCPU (it selects the bank of INTIDs 0-31); `intid` the first INTID
 * the access covers; `len` its size in bytes. The dispatcher has already range-checked the INTIDs.
 *
 * Who may call: mmio/ frames. Locks: takes irq_locks; a change to the pending or active state of an
 * interrupt first halts the vCPU whose LRs may hold it (haltOwnerOf), as KVM does for active changes.
 */

import {
  GICD_ICACTIVER,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IGRPMODR,
  GICD_IPRIORITYR,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  W8,
  W32,
} from '../arch/gicv3.ts';
import { VGIC_PRI_MASK } from '../arch/ich.ts';
import { PPI_VTIMER, VGIC_NR_PRIVATE_IRQS, VGIC_NR_SGIS } from '../arch/intid.ts';
import { irqIsPending, queueIrqUnlock, updateIrqFlags } from '../core/irq.ts';
import { lockIrq, unlockIrq } from '../core/locks.ts';
import { timerPhysDeactivate } from '../core/timer.ts';
import { haltOwnerOf, resumeVcpu } from '../core/vgic.ts';
import { physLineLevel } from '../core/vgic-v3.ts';
import { vpeEnabled, vpeSetVsgi, vpeTakeVsgi, vsgiMode } from '../core/vpe.ts';
import {
  type GicState,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_GROUP1,
  IRQ_HW,
  IRQ_PENDING_LATCH,
  SGI_ACTIVE_SOURCE_SHIFT,
  SGI_SOURCE_MASK,
  VPE_STRIDE,
  VPE_VSGI,
} from '../state/layout.ts';
import { type MmioContext, perIrq, type ReadFn, type RegisterDesc, type WriteFn } from './region.ts';

/** Reads one flag bit of len·8 interrupts into a bitmap. */
function readBit(s: GicState, vcpu: number, intid: number, len: number, bit: number): number {
  let value = 0;
  for (let i = 0; i < len * 8; i++) {
    if (s.irqFlags[s.slotOf(vcpu, intid + i)] & bit) value |= 1 << i;
  }
  return value >>> 0;
}

/** readBit of state an LR may hold: each interrupt's owner is halted while its bit is read. */
function readBitHalted(s: GicState, vcpu: number, intid: number, len: number, bit: number): number {
  let value = 0;
  for (let i = 0; i < len * 8; i++) {
    const slot = s.slotOf(vcpu, intid + i);
    const h = haltOwnerOf(s, slot);
    if (s.irqFlags[slot] & bit) value |= 1 << i;
    resumeVcpu(s, h);
  }
  return value >>> 0;
}

export const readGroup: ReadFn = (c, vcpu, intid, len) => readBit(c.s, vcpu, intid, len, IRQ_GROUP1);

/** IGROUPR: the group is the last input of the target oracle, so a change may queue the interrupt. */
export const writeGroup: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  for (let i = 0; i < len * 8; i++) {
    const slot = s.slotOf(vcpu, intid + i);
    if (value & (1 << i)) updateIrqFlags(s, slot, IRQ_GROUP1, 0);
    else updateIrqFlags(s, slot, 0, IRQ_GROUP1);
  }
};

export const readEnable: ReadFn = (c, vcpu, intid, len) => readBit(c.s, vcpu, intid, len, IRQ_ENABLED);

export const writeSetEnable: WriteFn = (c, vcpu, intid, len, value) => {
  for (let bits = setBits(value, len); bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    updateIrqFlags(c.s, c.s.slotOf(vcpu, intid + i), IRQ_ENABLED, 0);
  }
  // GICv4.1: a pending vSGI enabled now rings its non-resident vPE's doorbell.
  if (intid === 0 && vsgiMode(c.s) && (value & c.s.vpe[vcpu * VPE_STRIDE + VPE_VSGI] & 0xffff) !== 0)
    vpeEnabled(c.s, vcpu);
};

export const writeClearEnable: WriteFn = (c, vcpu, intid, len, value) => {
  for (let bits = setBits(value, len); bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    updateIrqFlags(c.s, c.s.slotOf(vcpu, intid + i), 0, IRQ_ENABLED);
  }
};

/** ISPENDR/ICPENDR read: the pending state (latch, or a level line that is high). */
export const readPending: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  let value = 0;
  for (let i = 0; i < len * 8; i++) {
    const slot = s.slotOf(vcpu, intid + i);
    const h = haltOwnerOf(s, slot);
    const f = s.irqFlags[slot];
    // A HW-mapped level interrupt is pending while its physical line is high (KVM asks the irqchip).
    const hwLevel = (f & (IRQ_HW | IRQ_EDGE)) === IRQ_HW && physLineLevel(s, Math.floor(slot / 32), slot);
    resumeVcpu(s, h);
    if (irqIsPending(f) || hwLevel) value |= 1 << i;
  }
  // GICv4.1 vSGIs (no active state): their pending state is readable here (GICR_VSGIPENDR's view).
  if (intid === 0 && vsgiMode(s)) value |= s.vpe[vcpu * VPE_STRIDE + VPE_VSGI] & 0xffff;
  return value >>> 0;
};

/**
 * A GICv2's SGIs are made pending per source (GICD_SGIR, GICD_SPENDSGIR): ISPENDR/ICPENDR writes
 * ignore them, as KVM (is_vgic_v2_sgi) and QEMU do. Masks them out of a write's bits.
 */
function notV2Sgis(s: GicState, intid: number, bits: number): number {
  return s.gicv2 && intid < VGIC_NR_SGIS ? bits & ~(0xffff >>> intid) : bits;
}

export const writeSetPending: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  let all = notV2Sgis(s, intid, setBits(value, len));
  if (intid === 0 && vsgiMode(s)) {
    // GICv4.1 vSGIs: an SGI's pending state is its vPE's (no latch, no active state).
    for (let m = all & 0xffff; m !== 0; m &= m - 1) vpeSetVsgi(s, vcpu, 31 - Math.clz32(m & -m));
    all &= ~0xffff;
  }
  for (let bits = all; bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    const slot = s.slotOf(vcpu, intid + i);
    const h = haltOwnerOf(s, slot);
    updateIrqFlags(s, slot, IRQ_PENDING_LATCH, 0);
    resumeVcpu(s, h);
  }
};

/** ICPENDR clears the latch; a level interrupt whose line is high stays pending. */
export const writeClearPending: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  let all = notV2Sgis(s, intid, setBits(value, len));
  if (intid === 0 && vsgiMode(s)) {
    for (let m = all & 0xffff; m !== 0; m &= m - 1) vpeTakeVsgi(s, vcpu, 31 - Math.clz32(m & -m));
    all &= ~0xffff;
  }
  for (let bits = all; bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    const slot = s.slotOf(vcpu, intid + i);
    const h = haltOwnerOf(s, slot);
    updateIrqFlags(s, slot, 0, IRQ_PENDING_LATCH);
    resumeVcpu(s, h);
  }
};

/** Userspace view of ISPENDR (KVM_DEV_ARM_VGIC_GRP_DIST_REGS): the latch alone; the line level is saved separately. */
export const ureadPending: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  return readBitHalted(s, vcpu, intid, len, IRQ_PENDING_LATCH);
};

/** Userspace ISPENDR write restores the latch exactly: set bits set it, clear bits clear it. */
export const uwriteSetPending: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  for (let i = 0; i < len * 8; i++) {
    // A GICv2 SGI's pending state is per source: userspace restores it through GICD_SPENDSGIR.
    if (s.gicv2 && intid + i < VGIC_NR_SGIS) continue;
    const slot = s.slotOf(vcpu, intid + i);
    const h = haltOwnerOf(s, slot);
    if (value & (1 << i)) updateIrqFlags(s, slot, IRQ_PENDING_LATCH, 0);
    else updateIrqFlags(s, slot, 0, IRQ_PENDING_LATCH);
    resumeVcpu(s, h);
  }
};

export const readActive: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  return readBitHalted(s, vcpu, intid, len, IRQ_ACTIVE);
};

/** vgic_mmio_change_active: only an interrupt that became active needs queueing. */
function changeActive(s: GicState, slot: number, active: boolean): void {
  const h = haltOwnerOf(s, slot);
  lockIrq(s, slot);
  if (active) {
    s.irqFlags[slot] |= IRQ_ACTIVE;
    // A GICv2 SGI made active by a CPU is active from that CPU (KVM's active_source): the banked
    // register's vCPU is the accessing one. The LR then carries it as the CPUID EOIR must name.
    if (s.gicv2 && slot < s.spiBase && slot % VGIC_NR_PRIVATE_IRQS < VGIC_NR_SGIS) {
      const v = Math.floor(slot / VGIC_NR_PRIVATE_IRQS);
      s.irqRouter[slot] = (s.irqRouter[slot] & SGI_SOURCE_MASK) | ((v & 7) << SGI_ACTIVE_SOURCE_SHIFT);
    }
    queueIrqUnlock(s, slot);
  } else {
    s.irqFlags[slot] &= ~IRQ_ACTIVE;
    // It may still be pending (and must go on being delivered), or leave its ap_list at the next prune.
    queueIrqUnlock(s, slot);
    // A HW-mapped interrupt is deactivated at the physical side too (vgic_hw_irq_change_active):
    // the timer fires again if it still asserts its output.
    if (s.irqHwIntid[slot] === PPI_VTIMER && slot < s.spiBase) timerPhysDeactivate(s, Math.floor(slot / 32));
  }
  resumeVcpu(s, h);
}

export const writeSetActive: WriteFn = (c, vcpu, intid, len, value) => {
  for (let bits = setBits(value, len); bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    changeActive(c.s, c.s.slotOf(vcpu, intid + i), true);
  }
};

export const writeClearActive: WriteFn = (c, vcpu, intid, len, value) => {
  for (let bits = setBits(value, len); bits !== 0; bits &= bits - 1) {
    const i = 31 - Math.clz32(bits & -bits);
    changeActive(c.s, c.s.slotOf(vcpu, intid + i), false);
  }
};

/** IPRIORITYR: one byte per interrupt, 5 implemented bits. */
export const readPriority: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  let value = 0;
  for (let i = 0; i < len; i++) value |= s.irqPriority[s.slotOf(vcpu, intid + i)] << (8 * i);
  return value >>> 0;
};

/** A priority change does not re-sort an interrupt already queued (as KVM). */
export const writePriority: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  for (let i = 0; i < len; i++) {
    const slot = s.slotOf(vcpu, intid + i);
    lockIrq(s, slot);
    s.irqPriority[slot] = (value >>> (8 * i)) & VGIC_PRI_MASK;
    unlockIrq(s, slot);
  }
};

/** ICFGR: two bits per interrupt, bit 1 of each set for edge-triggered. */
export const readConfig: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  let value = 0;
  for (let i = 0; i < len * 4; i++) {
    if (s.irqFlags[s.slotOf(vcpu, intid + i)] & IRQ_EDGE) value |= 2 << (2 * i);
  }
  return value >>> 0;
};

/** SGIs are always edge; PPIs are level and read-only too (the timer relies on it, as in KVM). */
export const writeConfig: WriteFn = (c, vcpu, intid, len, value) => {
  const s = c.s;
  for (let i = 0; i < len * 4; i++) {
    if (intid + i < VGIC_NR_PRIVATE_IRQS) continue;
    const slot = s.slotOf(vcpu, intid + i);
    lockIrq(s, slot);
    if (value & (2 << (2 * i))) s.irqFlags[slot] |= IRQ_EDGE;
    else s.irqFlags[slot] &= ~IRQ_EDGE;
    unlockIrq(s, slot);
  }
};

/** Reads as zero, ignores writes (a register that exists: no error is counted). */
export const readRaz: ReadFn = () => 0;
export const writeWi: WriteFn = () => {};

/** The bits of a `len`-byte write that name interrupts (an 8- or 16-bit access covers fewer). */
function setBits(value: number, len: number): number {
  return len >= 4 ? value >>> 0 : value & ((1 << (len * 8)) - 1);
}

/**
 * The per-IRQ registers the distributor and a redistributor's SGI_base frame share, at the
 * distributor's offsets plus `base` (0 for GICD, 0x10000 for GICR). `nIrqs` INTIDs are described;
 * the GICD names them GICD_ISENABLER<n>, the GICR GICR_ISENABLER0 (its only one).
 */
export function sharedPerIrqRegisters(
  prefix: 'GICD' | 'GICR',
  base: number,
  nIrqs: number,
  gicv2 = false,
): RegisterDesc[] {
  // A GICv2 distributor banks INTIDs 0-31 per CPU instead of leaving them to redistributors.
  const privateRaz = prefix === 'GICD' && !gicv2;
  const n = (name: string, registerZero: boolean) =>
    `${prefix}_${name}${prefix === 'GICR' && registerZero ? '0' : ''}`;
  const row = (
    name: string,
    off: number,
    bits: number,
    widths: number,
    acc: Parameters<typeof perIrq>[6],
    zero = true,
  ) => perIrq(n(name, zero), base + off, bits, nIrqs, widths, privateRaz, acc);
  return [
    row('IGROUPR', GICD_IGROUPR, 1, W32, { read: readGroup, write: writeGroup }),
    row('ISENABLER', GICD_ISENABLER, 1, W32, { read: readEnable, write: writeSetEnable }),
    row('ICENABLER', GICD_ICENABLER, 1, W32, { read: readEnable, write: writeClearEnable }),
    row('ISPENDR', GICD_ISPENDR, 1, W32, {
      read: readPending,
      write: writeSetPending,
      uread: ureadPending,
      uwrite: uwriteSetPending,
    }),
    row('ICPENDR', GICD_ICPENDR, 1, W32, {
      read: readPending,
      write: writeClearPending,
      uread: readRaz,
      uwrite: writeWi,
    }),
    row('ISACTIVER', GICD_ISACTIVER, 1, W32, { read: readActive, write: writeSetActive }),
    row('ICACTIVER', GICD_ICACTIVER, 1, W32, { read: readActive, write: writeClearActive }),
    row('IPRIORITYR', GICD_IPRIORITYR, 8, W8 | W32, { read: readPriority, write: writePriority }, false),
    row('ICFGR', GICD_ICFGR, 2, W32, { read: readConfig, write: writeConfig }, false),
    ...(gicv2 ? [] : [row('IGRPMODR', GICD_IGRPMODR, 1, W32, { read: readRaz, write: writeWi })]),
  ];
}

export type { MmioContext };
