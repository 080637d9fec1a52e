/**
 * One interrupt's state and its journey onto a vCPU's ap_list: KVM's vgic.c core
 * (irq_is_pending, vgic_target_oracle, vgic_queue_irq_unlock, kvm_vgic_inject_irq).
 * Spec: GIC IHI 0069 §4.1 (interrupt lifecycle), §4.5 (SPI routing).
 *
 * Who may call: any thread. Locks: as each function's name and comment say (core/locks.ts).
 */

import { GICD_CTLR_ENABLE_GRP0, GICD_CTLR_ENABLE_GRP1 } from '../arch/gicv3.ts';
import {
  D_CTLR,
  type GicState,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_GROUP1,
  IRQ_LINE_LEVEL,
  IRQ_PENDING_LATCH,
  REQ_IRQ_PENDING,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_AP_TAIL,
  V_REQUESTS,
  V_SLEEPING,
  V_WAKE_AT,
  VCPU_STRIDE,
} from '../state/layout.ts';
import { EV_VGIC_UPDATE_IRQ_PENDING, traceEmit, tracing } from '../trace/trace.ts';
import { lockApList, lockIrq, tryLockApList, unlockApList, unlockIrq } from './locks.ts';

/** Pending = latch, or (level-sensitive and the line is high). */
export function irqIsPending(flags: number): boolean {
  return (flags & IRQ_PENDING_LATCH) !== 0 || (flags & (IRQ_EDGE | IRQ_LINE_LEVEL)) === IRQ_LINE_LEVEL;
}

/** Enabled and pending: a candidate for delivery. */
export function irqIsPendingEnabled(flags: number): boolean {
  return (flags & IRQ_ENABLED) !== 0 && irqIsPending(flags);
}

/**
 * vgic_target_oracle: the vCPU whose ap_list this interrupt belongs on, or -1.
 * An active interrupt stays where it is; a pending and enabled one goes to its target, unless its
 * group is disabled at the distributor (GICD_CTLR.EnableGrp0/1), in which case it goes nowhere.
 * Caller holds the irq_lock of `slot`.
 */
export function targetOracle(s: GicState, slot: number): number {
  const f = s.irqFlags[slot];
  if (f & IRQ_ACTIVE) {
    const on = s.irqApVcpu[slot];
    return on >= 0 ? on : s.irqTarget[slot];
  }
  if ((f & IRQ_ENABLED) !== 0 && irqIsPending(f)) {
    const grpEnable = f & IRQ_GROUP1 ? GICD_CTLR_ENABLE_GRP1 : GICD_CTLR_ENABLE_GRP0;
    if ((s.dist[D_CTLR] & grpEnable) === 0) return -1;
    return s.irqTarget[slot];
  }
  return -1;
}

/**
 * kvm_vcpu_kick: ask vCPU `v` to re-evaluate its interrupts at its next exit point, and wake it
 * if it sleeps in WFI.
 */
export function kickVcpu(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  if (!s.shared) {
    s.vcpu[b + V_REQUESTS] |= REQ_IRQ_PENDING;
    return;
  }
  // A request already raised needs no second read-modify-write (bursts of MSIs kick once).
  if ((Atomics.load(s.vcpu, b + V_REQUESTS) & REQ_IRQ_PENDING) === 0) {
    Atomics.or(s.vcpu, b + V_REQUESTS, REQ_IRQ_PENDING);
  }
  // A WFI sets V_SLEEPING before it re-checks for work (seq_cst both sides), so either it sees the
  // new work or this sees it sleeping; notify, which costs ~30 ns, only then.
  // V_WAKE_AT names the futex word of the thread running v (shared by the vCPUs it multiplexes).
  if (Atomics.load(s.vcpu, b + V_SLEEPING) !== 0) {
    const w = s.vcpu[b + V_WAKE_AT];
    Atomics.add(s.vcpu, w, 1);
    Atomics.notify(s.vcpu, w);
  }
}

/** Appends `slot` to vCPU `v`'s ap_list. Caller holds v's ap_list_lock and the irq_lock. */
export function apListAddTailLocked(s: GicState, v: number, slot: number): void {
  const b = v * VCPU_STRIDE;
  const tail = s.vcpu[b + V_AP_TAIL];
  s.irqApPrev[slot] = tail;
  s.irqApNext[slot] = -1;
  if (tail < 0) s.vcpu[b + V_AP_HEAD] = slot;
  else s.irqApNext[tail] = slot;
  s.vcpu[b + V_AP_TAIL] = slot;
  s.vcpu[b + V_AP_COUNT]++;
  s.irqApVcpu[slot] = v;
}

/** Unlinks `slot` from the ap_list it is on (vCPU `v`). Caller holds v's ap_list_lock and the irq_lock. */
export function apListDelLocked(s: GicState, v: number, slot: number): void {
  const b = v * VCPU_STRIDE;
  const prev = s.irqApPrev[slot];
  const next = s.irqApNext[slot];
  if (prev < 0) s.vcpu[b + V_AP_HEAD] = next;
  else s.irqApNext[prev] = next;
  if (next < 0) s.vcpu[b + V_AP_TAIL] = prev;
  else s.irqApPrev[next] = prev;
  s.irqApNext[slot] = -1;
  s.irqApPrev[slot] = -1;
  s.vcpu[b + V_AP_COUNT]--;
  s.irqApVcpu[slot] = -1;
}

/**
 * vgic_queue_irq_unlock: put an interrupt on the ap_list the oracle picks, and kick that vCPU.
 * Caller holds the irq_lock of `slot`; it is released on return. Returns whether it was queued.
 *
 * The ap_list_lock ranks above the irq_lock, so the irq_lock is dropped, both are taken in order,
 * and the oracle is asked again: if the answer changed meanwhile, retry.
 */
export function queueIrqUnlock(s: GicState, slot: number): boolean {
  for (;;) {
    const v = targetOracle(s, slot);
    if (s.irqApVcpu[slot] >= 0 || v < 0) {
      unlockIrq(s, slot);
      // Already queued (or going nowhere): an edge may have re-fired after the vCPU EOI'd the
      // first one without an exit, so it must still look at its LRs again.
      if (v >= 0) kickVcpu(s, v);
      return false;
    }
    const apLock = v * VCPU_STRIDE + V_AP_LOCK;
    // Fast path: the ap_list_lock is free, so nothing can change behind our back.
    if (tryLockApList(s, apLock)) {
      apListAddTailLocked(s, v, slot);
      unlockIrq(s, slot);
      unlockApList(s, apLock);
      kickVcpu(s, v);
      return true;
    }
    unlockIrq(s, slot);
    lockApList(s, apLock);
    lockIrq(s, slot);
    if (s.irqApVcpu[slot] >= 0 || targetOracle(s, slot) !== v) {
      unlockIrq(s, slot);
      unlockApList(s, apLock);
      lockIrq(s, slot);
      continue;
    }
    apListAddTailLocked(s, v, slot);
    unlockIrq(s, slot);
    unlockApList(s, apLock);
    kickVcpu(s, v);
    return true;
  }
}

/**
 * kvm_vgic_inject_irq for a valid slot: a level change or a rising edge makes it pending.
 * Takes and releases the slot's irq_lock. Returns whether the injection was accepted.
 */
export function injectIrqSlot(s: GicState, slot: number, level: boolean): boolean {
  if (tracing.on !== 0)
    traceEmit(EV_VGIC_UPDATE_IRQ_PENDING, s.irqTarget[slot], s.irqIntid[slot], level ? 1 : 0);
  lockIrq(s, slot);
  const f = s.irqFlags[slot];
  if (f & IRQ_EDGE) {
    if (!level) {
      unlockIrq(s, slot);
      return false;
    }
    s.irqFlags[slot] = f | IRQ_PENDING_LATCH;
  } else {
    if (((f & IRQ_LINE_LEVEL) !== 0) === level) {
      unlockIrq(s, slot);
      return false;
    }
    s.irqFlags[slot] = level ? f | IRQ_LINE_LEVEL : f & ~IRQ_LINE_LEVEL;
  }
  queueIrqUnlock(s, slot);
  return true;
}

/**
 * Changes flag bits of an interrupt under its irq_lock and re-queues it: the common tail of the
 * ENABLE, PENDING and ACTIVE register writes, GROUP and routing changes.
 */
export function updateIrqFlags(s: GicState, slot: number, set: number, clear: number): void {
  lockIrq(s, slot);
  s.irqFlags[slot] = (s.irqFlags[slot] & ~clear) | set;
  queueIrqUnlock(s, slot);
}
