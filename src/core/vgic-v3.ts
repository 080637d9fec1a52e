/**
 * The GICv3 "world switch" backend: KVM's vgic-v3.c. Writes one interrupt into a list register at
 * guest entry (populate) and folds the list registers back into the interrupts at guest exit (fold).
 * List registers are in ICH_LR<n>_EL2 format (arch/ich.ts). Spec: GIC IHI 0069 §6 (virtualization).
 *
 * Who may call: the thread running vCPU `v`, from flush/sync (core/vgic.ts).
 * Locks: populateLrLocked expects the slot's irq_lock; foldLrState takes each irq_lock itself.
 */

import {
  LR_HI_ACTIVE,
  LR_HI_EOI,
  LR_HI_GROUP,
  LR_HI_HW,
  LR_HI_PENDING,
  LR_HI_PINTID_MASK,
  LR_HI_PRIORITY_SHIFT,
  LR_HI_STATE,
} from '../arch/ich.ts';
import { PPI_VTIMER, VGIC_FIRST_SPI, VGIC_NR_PRIVATE_IRQS } from '../arch/intid.ts';
import {
  type GicState,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_GROUP1,
  IRQ_HW,
  IRQ_LINE_LEVEL,
  IRQ_PENDING_LATCH,
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
import { timerLineLevel } from './timer.ts';

/** vgic_v3_populate_lr. Caller holds the irq_lock of `slot`. */
export function populateLrLocked(s: GicState, v: number, slot: number, n: number): void {
  let f = s.irqFlags[slot];
  let hi = s.irqPriority[slot] << LR_HI_PRIORITY_SHIFT;
  let allowPending = true;
  if (f & IRQ_ACTIVE) hi |= LR_HI_ACTIVE;
  if (f & IRQ_HW) {
    hi |= LR_HI_HW | (s.irqHwIntid[slot] & LR_HI_PINTID_MASK);
    // The pending state of a HW interrupt lives at the physical side: never pending+active.
    if (f & IRQ_ACTIVE) allowPending = false;
  } else if ((f & IRQ_EDGE) === 0) {
    // Level: ask for a maintenance interrupt on EOI so the line is re-sampled promptly.
    hi |= LR_HI_EOI;
    // Software re-sampling does not work with pending+active.
    if (f & IRQ_ACTIVE) allowPending = false;
  }
  if (allowPending && irqIsPending(f)) {
    hi |= LR_HI_PENDING;
    if (f & IRQ_EDGE) f &= ~IRQ_PENDING_LATCH;
    // A mapped level interrupt is only observed as rising edges: lower the line so a new one can be taken.
    else if (f & IRQ_HW) f &= ~IRQ_LINE_LEVEL;
  }
  if (f & IRQ_GROUP1) hi |= LR_HI_GROUP;
  s.irqFlags[slot] = f;
  const i = s.lrIndex(v, n);
  s.lr[i] = s.irqIntid[slot];
  s.lr[i + 1] = hi >>> 0;
  // The LR masks (V_LR_PEND / V_LR_ACT) and V_LR_SORTED, which flush reset to "empty, sorted".
  const b = v * VCPU_STRIDE;
  if ((hi & LR_HI_GROUP) === 0) s.vcpu[b + V_LR_GRP0] |= 1 << n;
  if (hi & LR_HI_ACTIVE) s.vcpu[b + V_LR_ACT] |= 1 << n;
  else if (hi & LR_HI_PENDING) {
    const pend = s.vcpu[b + V_LR_PEND];
    if (pend !== 0) {
      const last = 31 - Math.clz32(pend);
      // Sorted means by priority, then by INTID (see hppviIndex).
      const li = s.lrIndex(v, last);
      const lastPrio = (s.lr[li + 1] >>> LR_HI_PRIORITY_SHIFT) & 0xff;
      const prio = s.irqPriority[slot];
      if (lastPrio > prio || (lastPrio === prio && s.lr[li] > s.irqIntid[slot])) {
        s.vcpu[b + V_LR_SORTED] = 0;
      }
    }
    s.vcpu[b + V_LR_PEND] = pend | (1 << n);
  }
}

/** The slot an LR's vINTID names for vCPU v, or -1 (an interrupt may have vanished). */
export function lrSlot(s: GicState, v: number, intid: number): number {
  if (intid < VGIC_NR_PRIVATE_IRQS) return v * VGIC_NR_PRIVATE_IRQS + intid;
  if (intid < VGIC_FIRST_SPI + s.nSpis) return s.spiBase + intid - VGIC_FIRST_SPI;
  return s.lpiSlot(intid);
}

/** The "physical" line of a HW-mapped interrupt (vgic_get_phys_line_level). */
export function physLineLevel(s: GicState, v: number, slot: number): boolean {
  if (s.irqHwIntid[slot] === PPI_VTIMER) return timerLineLevel(s, v);
  return (s.irqFlags[slot] & IRQ_LINE_LEVEL) !== 0;
}

/** vgic_v3_fold_lr_state: fold the used LRs of vCPU v back into the interrupts' state. */
export function foldLrState(s: GicState, v: number): void {
  const used = s.vcpu[v * VCPU_STRIDE + V_USED_LRS];
  for (let n = 0; n < used; n++) {
    const i = s.lrIndex(v, n);
    const hi = s.lr[i + 1];
    const slot = lrSlot(s, v, s.lr[i]);
    if (slot < 0) continue;
    lockIrq(s, slot);
    let f = s.irqFlags[slot];
    const wasActive = (f & IRQ_ACTIVE) !== 0;
    const deactivated = wasActive && (hi & LR_HI_ACTIVE) === 0;
    f = hi & LR_HI_ACTIVE ? f | IRQ_ACTIVE : f & ~IRQ_ACTIVE;
    // Edge is the only case where the LR's pending bit is preserved.
    if (f & IRQ_EDGE) {
      if (hi & LR_HI_PENDING) {
        // Injected again while still pending in the LR: the two pending states merge into one
        // (counted, so injected = acknowledged + coalesced can be checked).
        if (f & IRQ_PENDING_LATCH) s.vcpu[v * VCPU_STRIDE + V_FOLD_MERGED]++;
        f |= IRQ_PENDING_LATCH;
      }
    } else if (!wasActive && (hi & LR_HI_PENDING) === 0) {
      // A level interrupt the guest has acknowledged loses its soft pending state at the
      // acknowledge (GICv3 §4.1.1, as QEMU), not only once it is also deactivated (KVM): ISPENDR
      // reads it as active, not pending. It was entered pending (not active), so the LR no
      // longer pending means acknowledged; one entered active keeps a latch set while active.
      f &= ~IRQ_PENDING_LATCH;
    }
    // kvm_notify_acked_irq: the guest EOI'd a level SPI (its LR asked for the EOI maintenance
    // interrupt and is now invalid); a resample irqfd driving its line lowers it here (core/ack.ts).
    if (
      ackListeners !== 0 &&
      (hi & (LR_HI_STATE | LR_HI_HW | LR_HI_EOI)) === LR_HI_EOI &&
      slot >= s.spiBase &&
      slot < s.spiBase + s.nSpis &&
      levelAcked(s, s.irqIntid[slot])
    ) {
      f &= ~IRQ_LINE_LEVEL;
    }
    // vgic_irq_handle_resampling for mapped level interrupts.
    if ((f & (IRQ_HW | IRQ_EDGE)) === IRQ_HW) {
      if ((hi & LR_HI_PENDING) !== 0 || (deactivated && (f & IRQ_LINE_LEVEL) !== 0)) {
        f = physLineLevel(s, v, slot) ? f | IRQ_LINE_LEVEL : f & ~IRQ_LINE_LEVEL;
      }
    }
    // LPIs have no active state (§5.1): once acknowledged, an LPI is only pending or not. Its LR
    // may show active while the guest handles it; after the exit the EOI finds no LR and is only
    // a priority drop, which ICV_EOIR does without EOIcount for LPIs.
    if (slot >= s.lpiBase) f &= ~IRQ_ACTIVE;
    s.irqFlags[slot] = f;
    unlockIrq(s, slot);
  }
  s.vcpu[v * VCPU_STRIDE + V_USED_LRS] = 0;
  s.vcpu[v * VCPU_STRIDE + V_LR_PEND] = 0;
  s.vcpu[v * VCPU_STRIDE + V_LR_ACT] = 0;
}
