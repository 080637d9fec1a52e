/**
 * Guest entry and exit for one vCPU: KVM's kvm_vgic_flush_hwstate / kvm_vgic_sync_hwstate.
 * Flush (entry) sorts the ap_list when it holds more than the LRs, fills the LRs, and sets the
 * maintenance enables (ICH_HCR_EL2) so that every interrupt left outside the LRs arrives later.
 * Sync (exit) folds the LRs back and prunes the ap_list: interrupts that need no more attention
 * leave it, interrupts whose target changed migrate to their new vCPU's ap_list.
 * Spec: GIC IHI 0069 §6.4 (maintenance interrupts).
 *
 * Who may call: the thread running vCPU `v` (holding v's run_lock), or a thread that halted v.
 * Locks: takes v's ap_list_lock and irq_locks itself.
 */

import { GICH_LR_EOI } from '../arch/gicv2.ts';
import { HCR_LRENPIE, HCR_NPIE, HCR_UIE, LR_HI_EOI, VMCR_PMR_SHIFT } from '../arch/ich.ts';
import {
  type GicState,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_HW,
  IRQ_PENDING_LATCH,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_FLUSHES,
  V_HCR,
  V_IN_GUEST,
  V_LR_ACT,
  V_LR_EOI,
  V_LR_GRP0,
  V_LR_PEND,
  V_LR_SORTED,
  V_RUN_LOCK,
  V_USED_LRS,
  V_VMCR,
  VCPU_STRIDE,
} from '../state/layout.ts';
import { EV_VGIC_FLUSH_HWSTATE, traceEmit, tracing } from '../trace/trace.ts';
import {
  apListAddTailLocked,
  apListDelLocked,
  irqIsPendingEnabled,
  kickVcpu,
  queueIrqUnlock,
  targetOracle,
} from './irq.ts';
import { lockApList, lockIrq, lockRun, unlockApList, unlockIrq, unlockRun } from './locks.ts';
import { foldLrStateV2, populateLrV2Locked } from './vgic-v2.ts';
import { foldLrState, populateLrLocked } from './vgic-v3.ts';
import { directBest, vpePendingLast, vpeResidentPending } from './vpe.ts';

// Sort scratch: one per thread, grown (rarely) to the longest ap_list seen.
let sortKeys = new Float64Array(64);
const SLOT_SPACE = 2 ** 21;

/**
 * Sort key of vgic_irq_cmp in its newest form: pending-and-enabled-and-not-active first, then by
 * priority, HW before non-HW; then the rest (active ones) by priority, so the highest-priority
 * active interrupts (the ones the guest will EOI first) keep their LRs.
 */
function sortKey(s: GicState, slot: number): number {
  const f = s.irqFlags[slot];
  const cls = irqIsPendingEnabled(f) && (f & IRQ_ACTIVE) === 0 ? 0 : 1;
  return (cls << 9) | (s.irqPriority[slot] << 1) | (f & IRQ_HW ? 0 : 1);
}

/** vgic_sort_ap_list: relinks v's ap_list in delivery order. Caller holds v's ap_list_lock. */
function sortApListLocked(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  const n = s.vcpu[b + V_AP_COUNT];
  if (sortKeys.length < n) sortKeys = new Float64Array(Math.max(n, sortKeys.length * 2));
  let k = 0;
  for (let slot = s.vcpu[b + V_AP_HEAD]; slot >= 0; slot = s.irqApNext[slot]) {
    lockIrq(s, slot);
    // The slot breaks ties: slots rise with the INTID, and equal priorities go to the lowest
    // INTID (icv.ts hppviIndex), so the LRs get the interrupts the guest will take first.
    sortKeys[k] = sortKey(s, slot) * SLOT_SPACE + slot;
    unlockIrq(s, slot);
    k++;
  }
  const keys = sortKeys.subarray(0, k);
  keys.sort();
  // Relinking only rewrites list pointers, which the ap_list_lock guards.
  let prev = -1;
  for (let j = 0; j < k; j++) {
    const slot = keys[j] % SLOT_SPACE;
    s.irqApPrev[slot] = prev;
    if (prev < 0) s.vcpu[b + V_AP_HEAD] = slot;
    else s.irqApNext[prev] = slot;
    prev = slot;
  }
  s.irqApNext[prev] = -1;
  s.vcpu[b + 1] = prev; // V_AP_TAIL
}

/**
 * kvm_vgic_flush_hwstate + vgic_flush_lr_state: fill v's LRs at guest entry.
 */
export function flushHwstate(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_IN_GUEST] = 1;
  // An empty ap_list needs no lock (nor an atomic read): anything queued after this read kicks the vCPU.
  if (s.vcpu[b + V_AP_HEAD] < 0) {
    s.vcpu[b + V_USED_LRS] = 0;
    s.vcpu[b + V_LR_PEND] = 0;
    s.vcpu[b + V_LR_ACT] = 0;
    s.vcpu[b + V_HCR] = 0;
    s.vcpu[b + V_LR_EOI] = 0;
    return;
  }
  s.vcpu[b + V_FLUSHES]++;
  s.vcpu[b + V_LR_PEND] = 0;
  s.vcpu[b + V_LR_ACT] = 0;
  s.vcpu[b + V_LR_SORTED] = 1;
  s.vcpu[b + V_LR_GRP0] = 0;
  lockApList(s, b + V_AP_LOCK);
  const nLrs = s.nLrs;
  if (s.vcpu[b + V_AP_COUNT] > nLrs) sortApListLocked(s, v);
  let count = 0;
  let hcr = 0;
  let lrEoi = 0;
  let slot = s.vcpu[b + V_AP_HEAD];
  for (; slot >= 0 && count < nLrs; slot = s.irqApNext[slot]) {
    lockIrq(s, slot);
    if (targetOracle(s, slot) === v) {
      // The backend: vgic-v2.ts (GICH_LR) or vgic-v3.ts (ICH_LR<n>_EL2), as KVM's vgic_populate_lr.
      if (s.gicv2) {
        populateLrV2Locked(s, v, slot, count);
        lrEoi |= s.lr[s.lrIndex(v, count)] & GICH_LR_EOI;
      } else {
        populateLrLocked(s, v, slot, count);
        lrEoi |= s.lr[s.lrIndex(v, count) + 1] & LR_HI_EOI;
      }
      count++;
    }
    unlockIrq(s, slot);
  }
  // vgic_v3_configure_hcr: what is left outside the LRs decides the maintenance enables.
  for (; slot >= 0; slot = s.irqApNext[slot]) {
    const f = s.irqFlags[slot];
    hcr |= HCR_UIE;
    if (f & IRQ_ACTIVE) hcr |= HCR_LRENPIE;
    else if (irqIsPendingEnabled(f)) hcr |= HCR_NPIE;
  }
  // LRs at and beyond `count` are not cleared ("nuke remaining LRs"): V_USED_LRS bounds every
  // reader of the LRs (the CPU interface, fold), so their contents are dead.
  s.vcpu[b + V_USED_LRS] = count;
  s.vcpu[b + V_HCR] = hcr;
  s.vcpu[b + V_LR_EOI] = lrEoi !== 0 ? 1 : 0;
  if (tracing.on !== 0) traceEmit(EV_VGIC_FLUSH_HWSTATE, v, count, s.vcpu[b + V_AP_COUNT], hcr);
  unlockApList(s, b + V_AP_LOCK);
}

/**
 * kvm_vgic_sync_hwstate: fold v's LRs back and prune its ap_list at guest exit.
 */
export function syncHwstate(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_IN_GUEST] = 0;
  // An empty ap_list implies no used LRs.
  if (s.vcpu[b + V_AP_HEAD] < 0) return;
  // Fold and prune under one ap_list_lock (fold needs only irq_locks, which rank below it).
  lockApList(s, b + V_AP_LOCK);
  if (s.vcpu[b + V_USED_LRS] > 0) {
    if (s.gicv2) foldLrStateV2(s, v);
    else foldLrState(s, v);
  }
  pruneApListLocked(s, v);
}

/** vgic_prune_ap_list with v's ap_list_lock held on entry; released on return. */
function pruneApListLocked(s: GicState, v: number): void {
  const apLock = v * VCPU_STRIDE + V_AP_LOCK;
  let locked = true;
  retry: for (;;) {
    if (!locked) lockApList(s, apLock);
    locked = false;
    let slot = s.vcpu[v * VCPU_STRIDE + V_AP_HEAD];
    while (slot >= 0) {
      const next = s.irqApNext[slot];
      lockIrq(s, slot);
      const target = targetOracle(s, slot);
      if (target < 0) {
        apListDelLocked(s, v, slot);
        unlockIrq(s, slot);
        slot = next;
        continue;
      }
      if (target === v) {
        unlockIrq(s, slot);
        slot = next;
        continue;
      }
      // Migrate: take both ap_list_locks, lower vCPU id first, and re-check.
      unlockIrq(s, slot);
      unlockApList(s, apLock);
      const a = Math.min(v, target);
      const c = Math.max(v, target);
      lockApList(s, a * VCPU_STRIDE + V_AP_LOCK);
      lockApList(s, c * VCPU_STRIDE + V_AP_LOCK);
      lockIrq(s, slot);
      let moved = false;
      if (s.irqApVcpu[slot] === v && targetOracle(s, slot) === target) {
        apListDelLocked(s, v, slot);
        apListAddTailLocked(s, target, slot);
        moved = true;
      }
      unlockIrq(s, slot);
      unlockApList(s, c * VCPU_STRIDE + V_AP_LOCK);
      unlockApList(s, a * VCPU_STRIDE + V_AP_LOCK);
      if (moved) kickVcpu(s, target);
      continue retry;
    }
    unlockApList(s, apLock);
    return;
  }
}

/**
 * kvm_vgic_vcpu_pending_irq: does v have an interrupt it would take (enabled, pending, not active,
 * above the priority mask)? Used to wake a WFI.
 */
export function vcpuPendingIrq(s: GicState, v: number): boolean {
  const b = v * VCPU_STRIDE;
  if (s.direct) {
    // GICv4.1: a vLPI waited when the vPE left, or its doorbell rang (KVM: its_vpe.pending_last);
    // a resident vPE's VPT is seen directly.
    if (vpePendingLast(s, v)) return true;
    const pmr = (s.vcpu[b + V_VMCR] >>> VMCR_PMR_SHIFT) & 0xff;
    if (vpeResidentPending(s, v) && directBest(s, v, pmr) >= 0) return true;
  }
  if (s.vcpu[b + V_AP_HEAD] < 0) return false;
  const pmr = (s.vcpu[b + V_VMCR] >>> VMCR_PMR_SHIFT) & 0xff;
  let pending = false;
  lockApList(s, b + V_AP_LOCK);
  for (let slot = s.vcpu[b + V_AP_HEAD]; slot >= 0; slot = s.irqApNext[slot]) {
    const f = s.irqFlags[slot];
    if (irqIsPendingEnabled(f) && (f & IRQ_ACTIVE) === 0 && s.irqPriority[slot] < pmr) {
      pending = true;
      break;
    }
  }
  unlockApList(s, b + V_AP_LOCK);
  return pending;
}

/**
 * kvm_arm_halt_guest for one vCPU: stops v at an instruction boundary (its run_lock) and folds its
 * LRs back, so the software state of its interrupts is authoritative until resumeVcpu(s, v).
 * v re-enters (flush) at its next instruction. The caller holds no run_lock of a vCPU above v, no
 * ap_list_lock and no irq_lock (core/locks.ts).
 */
export function haltVcpu(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  lockRun(s, b + V_RUN_LOCK);
  if (s.vcpu[b + V_IN_GUEST] !== 0) syncHwstate(s, v);
}

/**
 * Prunes halted vCPU v's ap_list even if v is not in the guest (a sync without LRs): afterwards
 * every interrupt on it belongs there, and interrupts retargeted meanwhile sit on their new list.
 * Caller holds v's run_lock (haltVcpu) and no ap_list or irq lock.
 */
export function pruneHalted(s: GicState, v: number): void {
  lockApList(s, v * VCPU_STRIDE + V_AP_LOCK);
  pruneApListLocked(s, v);
}

/** kvm_arm_resume_guest for one vCPU; `v` < 0 (nothing was halted) is a no-op. */
export function resumeVcpu(s: GicState, v: number): void {
  if (v >= 0) unlockRun(s, v * VCPU_STRIDE + V_RUN_LOCK);
}

/** Halts every vCPU, in ascending order (the run_lock order). */
export function haltAll(s: GicState): void {
  for (let v = 0; v < s.nVcpus; v++) haltVcpu(s, v);
}

export function resumeAll(s: GicState): void {
  for (let v = s.nVcpus - 1; v >= 0; v--) resumeVcpu(s, v);
}

/**
 * An interrupt's target changed while it sits on vCPU `from`'s ap_list: halt `from` (its LRs fold
 * back) and prune its list, which migrates the interrupt to its new target now rather than at
 * `from`'s next exit, which may never come if `from` sleeps or is not being run.
 */
export function migrateFrom(s: GicState, from: number): void {
  haltVcpu(s, from);
  lockApList(s, from * VCPU_STRIDE + V_AP_LOCK);
  pruneApListLocked(s, from);
  resumeVcpu(s, from);
}

/**
 * Halts the vCPU whose LRs may hold `slot` (the one whose ap_list has it) and returns it, or -1
 * when it is on no ap_list (then no LR holds it: only a flush, which needs a run_lock, puts it
 * in one). Pair with resumeVcpu.
 */
export function haltOwnerOf(s: GicState, slot: number): number {
  for (;;) {
    const on = s.irqApVcpu[slot];
    if (on < 0) return -1;
    haltVcpu(s, on);
    const now = s.irqApVcpu[slot];
    // Still there, or pruned by the fold: either way no LR holds it now.
    if (now === on || now < 0) return on;
    resumeVcpu(s, on); // it migrated meanwhile: chase it
  }
}

/**
 * Deactivation of an interrupt that is not in v's LRs (an EOIR or DIR the virtual CPU interface
 * could not match: the EOIcount/TDIR path of KVM's LR-overflow handling).
 * KVM folds a pseudo-LR here (vgic_v3_compute_lr & ~ACTIVE): an active level interrupt's LR never
 * holds pending, so the fold sees an invalid LR and drops the soft pending latch, which the guest
 * consumed when it acknowledged the interrupt. Keeping the latch would deliver it a second time.
 */
export function deactivateInSoftware(s: GicState, slot: number): void {
  const h = haltOwnerOf(s, slot);
  lockIrq(s, slot);
  const f = s.irqFlags[slot];
  if ((f & IRQ_ACTIVE) === 0) unlockIrq(s, slot);
  else {
    s.irqFlags[slot] = f & IRQ_EDGE ? f & ~IRQ_ACTIVE : f & ~(IRQ_ACTIVE | IRQ_PENDING_LATCH);
    queueIrqUnlock(s, slot);
  }
  resumeVcpu(s, h);
}
