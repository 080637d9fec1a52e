/**
 * LPIs on the redistributors (GIC IHI 0069 §5.1): the configuration table (one property byte per
 * LPI, shared through GICR_PROPBASER), the per-redistributor pending tables (GICR_PENDBASER), and
 * the life of an LPI in the indexed store (mapped by ITEs, refcounted across ITSes).
 * KVM: vgic-its.c update_lpi_config / vgic_add_lpi, vgic-v3.c vgic_v3_lpi_sync_pending_status,
 * vgic_v3_save_pending_tables, vgic-mmio-v3.c vgic_enable_lpis / vgic_flush_pending_lpis.
 *
 * Pending state lives in exactly one place: in the LPI's latch while its redistributor has LPIs
 * enabled, in the guest's pending table otherwise. Reading a bit into a latch clears the bit;
 * disabling LPIs writes latches back. (KVM drops latches on disable; we never lose one.)
 *
 * An LPI's reference count (irqLpiRef) is shared by every ITS: two ITSes' commands run at once under
 * their own its_locks, so lpiMap/lpiUnmap/lpiDropIts count, map first and free last under the LPI
 * store lock (D_LPI_LOCK, KVM's lpi_xa lock), taken inside its_lock and outside run_lock.
 *
 * Who may call: the ITS command path (its_lock held) and the redistributor frame. Locks: each
 * function takes the store and irq_locks it needs; none may be called with a run, ap_list or irq
 * lock held.
 */

import { paFromWords } from '../arch/addr.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  GICR_PENDBASER_HI_PTZ,
  GICR_PROPBASER_IDBITS_MASK,
  LPI_ID_BITS_MAX,
  LPI_ID_BITS_MIN,
  LPI_PROP_ENABLED,
  LPI_PROP_PRIORITY_MASK,
} from '../arch/its.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  D_LPI_LOCK,
  D_PROPBASER_HI,
  D_PROPBASER_LO,
  type GicState,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_FORWARDED,
  IRQ_GROUP1,
  IRQ_PENDING_LATCH,
  IRQ_VALID,
  S_LPI_PENDING_DROPPED,
  S_LPI_TABLE_FAULT,
  V_LPI_CTLR,
  V_PENDBASER_HI,
  V_PENDBASER_LO,
  VCPU_STRIDE,
} from '../state/layout.ts';
import { queueIrqUnlock } from './irq.ts';
import { lockIrq, lockWord, unlockIrq, unlockWord } from './locks.ts';
import { haltOwnerOf, haltVcpu, migrateFrom, resumeVcpu } from './vgic.ts';
import { VPE_NOT_FORWARDED, vpeDropLocked, vpeEnabled, vpeInject, vpeMoveLocked, vptPending } from './vpe.ts';

/** An LPI slot's flags when no ITE maps it: edge, Group 1 (LPIs are), not VALID. */
export const LPI_FREE_FLAGS = IRQ_EDGE | IRQ_GROUP1;

/** GICR_PROPBASER's table address (bits 47:12). */
export function propbaseAddr(s: GicState): number {
  return paFromWords(s.dist[D_PROPBASER_LO], s.dist[D_PROPBASER_HI], 0xfffff000, 0xffff);
}

/** vCPU v's GICR_PENDBASER table address (bits 47:16). */
export function pendbaseAddr(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  return paFromWords(s.vcpu[b + V_PENDBASER_LO], s.vcpu[b + V_PENDBASER_HI], 0xffff0000, 0xffff);
}

/**
 * One past the largest LPI INTID the guest's tables cover: 2^min(PROPBASER.IDbits + 1, 16), capped
 * by the store; 0 when IDbits + 1 < 14 (no LPIs).
 */
export function lpiIdLimit(s: GicState): number {
  const bits = Math.min((s.dist[D_PROPBASER_LO] & GICR_PROPBASER_IDBITS_MASK) + 1, LPI_ID_BITS_MAX);
  if (bits < LPI_ID_BITS_MIN) return 0;
  return Math.min(2 ** bits, VGIC_MIN_LPI + s.nLpis);
}

export function lpisEnabled(s: GicState, v: number): boolean {
  return (s.vcpu[v * VCPU_STRIDE + V_LPI_CTLR] & 1) !== 0;
}

/**
 * update_lpi_config: re-read an LPI's property byte into its cached priority and enable, and
 * queue it if that makes it deliverable. A byte outside RAM leaves the cache as it was (counted).
 */
export function updateLpiConfig(s: GicState, mem: GuestMemory, slot: number): void {
  const intid = s.irqIntid[slot];
  const prop = mem.read(propbaseAddr(s) + intid - VGIC_MIN_LPI, 1);
  if (prop === undefined) {
    s.stats[S_LPI_TABLE_FAULT]++;
    return;
  }
  lockIrq(s, slot);
  const f = s.irqFlags[slot];
  s.irqPriority[slot] = prop & LPI_PROP_PRIORITY_MASK;
  s.irqFlags[slot] = prop & LPI_PROP_ENABLED ? f | IRQ_ENABLED : f & ~IRQ_ENABLED;
  // A pending vLPI enabled now rings its non-resident vPE's doorbell (none rang while disabled).
  const ringVpe =
    (f & (IRQ_FORWARDED | IRQ_ENABLED)) === IRQ_FORWARDED &&
    prop & LPI_PROP_ENABLED &&
    s.irqTarget[slot] >= 0 &&
    vptPending(s, s.irqTarget[slot], slot - s.lpiBase)
      ? s.irqTarget[slot]
      : -1;
  queueIrqUnlock(s, slot);
  if (ringVpe >= 0) vpeEnabled(s, ringVpe);
}

/**
 * Marks LPI index i (intid - 8192) mapped or not. Commands of different ITSes run concurrently,
 * each under its own its_lock, and share the bitmap words: atomic read-modify-writes.
 */
function markMapped(s: GicState, i: number, mapped: boolean): void {
  const w = i >>> 5;
  const bit = 1 << (i & 31);
  if (s.shared) {
    if (mapped) Atomics.or(s.lpiMapped, w, bit);
    else Atomics.and(s.lpiMapped, w, ~bit);
  } else if (mapped) s.lpiMapped[w] |= bit;
  else s.lpiMapped[w] &= ~bit;
}

/**
 * The next mapped LPI index at or after `from`, or -1: walks the lpiMapped bitmap, so visiting every
 * mapped LPI costs nLpis / 32 word reads plus one step per mapped LPI.
 */
export function nextMappedLpi(s: GicState, from: number): number {
  const m = s.lpiMapped;
  let w = from >>> 5;
  if (w >= m.length) return -1;
  let bits = m[w] & (-1 << (from & 31));
  while (bits === 0) {
    if (++w >= m.length) return -1;
    bits = m[w];
  }
  return (w << 5) | (31 - Math.clz32(bits & -bits));
}

/**
 * INVALL / GICR_INVALLR: re-read the configuration of every mapped LPI that targets vCPU v.
 * Returns how many LPIs it refreshed (the work done).
 */
export function invallLpis(s: GicState, mem: GuestMemory, v: number): number {
  let n = 0;
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    if (s.irqLpiRef[i] !== 0 && s.irqTarget[s.lpiBase + i] === v) {
      updateLpiConfig(s, mem, s.lpiBase + i);
      n++;
    }
  }
  return n;
}

/**
 * vgic_v3_lpi_sync_pending_status: take a newly mapped LPI's bit from its target's pending table
 * (while that redistributor has LPIs enabled).
 */
function syncPendingStatus(s: GicState, mem: GuestMemory, slot: number): void {
  const v = s.irqTarget[slot];
  if (v < 0 || !lpisEnabled(s, v)) return;
  const intid = s.irqIntid[slot];
  const at = pendbaseAddr(s, v) + (intid >>> 3);
  const byte = mem.read(at, 1);
  if (byte === undefined) {
    s.stats[S_LPI_TABLE_FAULT]++;
    return;
  }
  const bit = 1 << (intid & 7);
  if ((byte & bit) === 0) return;
  mem.write(at, 1, byte & ~bit);
  lockIrq(s, slot);
  s.irqFlags[slot] |= IRQ_PENDING_LATCH;
  queueIrqUnlock(s, slot);
}

/**
 * An ITE now maps this LPI (MAPTI/MAPI, or a restored ITE): count the reference, point the LPI at
 * `target` (-1: its collection is not mapped) through collection `router` (its << 16 | ICID), and
 * refresh its configuration. A newly mapped LPI also takes its bit from the pending table.
 */
export function lpiMap(
  s: GicState,
  mem: GuestMemory,
  k: number,
  slot: number,
  target: number,
  router: number,
): void {
  lockWord(s, s.dist, D_LPI_LOCK);
  try {
    const i = slot - s.lpiBase;
    const first = s.irqLpiRef[i] === 0;
    // At most 2^16 x 2^16 ITEs per ITS can name an LPI, and 16 ITSes: 32 bits never overflow.
    s.irqLpiRef[i]++;
    s.itsLpiRef[k * s.nLpis + i]++;
    if (first) {
      markMapped(s, i, true);
      lockIrq(s, slot);
      s.irqFlags[slot] = LPI_FREE_FLAGS | IRQ_VALID;
      s.irqRouter[slot] = router;
      s.irqTarget[slot] = target;
      unlockIrq(s, slot);
    } else {
      lpiRetarget(s, slot, target, router);
    }
    updateLpiConfig(s, mem, slot);
    if (first) syncPendingStatus(s, mem, slot);
  } finally {
    unlockWord(s, s.dist, D_LPI_LOCK);
  }
}

/**
 * An ITE no longer maps this LPI (DISCARD, MAPD unmap or remap). The last reference frees it: its
 * pending state goes (the spec's DISCARD removes it; an unmapped LPI has nowhere to be delivered).
 */
export function lpiUnmap(s: GicState, k: number, slot: number): void {
  const i = slot - s.lpiBase;
  // A reference this ITS does not hold (a guest rewrote its ITT behind the ITS's back) is ignored.
  // Its own count is guarded by its_lock, so this check needs no LPI store lock.
  if (s.itsLpiRef[k * s.nLpis + i] === 0) return;
  lockWord(s, s.dist, D_LPI_LOCK);
  try {
    s.itsLpiRef[k * s.nLpis + i]--;
    if (--s.irqLpiRef[i] === 0) lpiFree(s, slot);
  } finally {
    unlockWord(s, s.dist, D_LPI_LOCK);
  }
}

/**
 * GICv4.1: a guest-mapped vPE's default doorbell (VMAPP) is a physical LPI delivered to the vPE's
 * redistributor without an ITE. The vPE holds a reference to it (counted in irqLpiRef, not in any
 * ITS's itsLpiRef) so it is a live LPI targeting `rd` with no collection (router -1). An LPI that
 * is mapped already (by an ITE, or as another vPE's doorbell) keeps its target.
 */
export function lpiDoorbellMap(s: GicState, mem: GuestMemory, slot: number, rd: number): void {
  const i = slot - s.lpiBase;
  const first = s.irqLpiRef[i] === 0;
  s.irqLpiRef[i]++;
  if (!first) return;
  markMapped(s, i, true);
  lockIrq(s, slot);
  s.irqFlags[slot] = LPI_FREE_FLAGS | IRQ_VALID;
  s.irqRouter[slot] = -1;
  s.irqTarget[slot] = rd;
  unlockIrq(s, slot);
  updateLpiConfig(s, mem, slot);
  syncPendingStatus(s, mem, slot);
}

/** The vPE no longer names this doorbell (VMAPP V=0, VMOVP with a new doorbell). */
export function lpiDoorbellUnmap(s: GicState, slot: number): void {
  const i = slot - s.lpiBase;
  if (s.irqLpiRef[i] === 0) return;
  s.irqLpiRef[i]--;
  if (s.irqLpiRef[i] === 0) lpiFree(s, slot);
}

/** ITS k's device table is gone (BASER0.Valid cleared, ITS reset): drop every reference it held. */
export function lpiDropIts(s: GicState, k: number): void {
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    const r = s.itsLpiRef[k * s.nLpis + i];
    if (r === 0) continue;
    // One LPI at a time: other ITSes' commands wait for one free, not for the whole walk.
    lockWord(s, s.dist, D_LPI_LOCK);
    try {
      s.itsLpiRef[k * s.nLpis + i] = 0;
      s.irqLpiRef[i] -= r;
      if (s.irqLpiRef[i] === 0) lpiFree(s, s.lpiBase + i);
    } finally {
      unlockWord(s, s.dist, D_LPI_LOCK);
    }
  }
}

/** A pending state an ITS command removed: counted, so every MSI's fate adds up (lpi-stress). */
function countDropped(s: GicState): void {
  if (s.shared) Atomics.add(s.stats, S_LPI_PENDING_DROPPED, 1);
  else s.stats[S_LPI_PENDING_DROPPED]++;
}

function lpiFree(s: GicState, slot: number): void {
  markMapped(s, slot - s.lpiBase, false);
  // Invalid first: from here no MSI (cache hit or not) can make it pending again (lpiSetPending
  // checks VALID under the irq_lock), so the halt below sees every LR that can hold it. Halting
  // first would leave a window where an MSI queues it and a flush puts it in an LR unseen.
  lockIrq(s, slot);
  s.irqFlags[slot] &= ~IRQ_VALID;
  unlockIrq(s, slot);
  const h = haltOwnerOf(s, slot);
  lockIrq(s, slot);
  if (s.irqFlags[slot] & IRQ_PENDING_LATCH) countDropped(s);
  // A forwarded LPI stops being one (KVM unmaps the vLPI) and its VPT bit goes with it.
  if (s.direct && vpeDropLocked(s, slot, true)) countDropped(s);
  s.irqFlags[slot] = LPI_FREE_FLAGS;
  s.irqTarget[slot] = -1;
  s.irqRouter[slot] = -1;
  // Left on an ap_list it is pruned at that vCPU's next exit: the oracle sends it nowhere now.
  unlockIrq(s, slot);
  resumeVcpu(s, h);
}

/** Clears an LPI's pending state (CLEAR, DISCARD), after folding any LR that holds it. */
export function lpiClearPending(s: GicState, slot: number): void {
  const h = haltOwnerOf(s, slot);
  lockIrq(s, slot);
  if (s.irqFlags[slot] & IRQ_PENDING_LATCH) countDropped(s);
  if (s.direct && vpeDropLocked(s, slot, false)) countDropped(s);
  s.irqFlags[slot] &= ~IRQ_PENDING_LATCH;
  unlockIrq(s, slot);
  resumeVcpu(s, h);
}

/** lpiSetPending results. */
export const LPI_SET_NEW = 1; // the pending state was set (and the LPI queued on its target)
export const LPI_SET_COALESCED = 2; // it was already pending: the two merge (an edge's coalescing)
export const LPI_SET_UNMAPPED = 0; // the LPI was freed meanwhile (an MSI that raced DISCARD/MAPD)

/**
 * Sets an LPI pending (INT, an MSI) and queues it on its target.
 *
 * An LPI already pending needs nothing: setting a set latch changes no state and whoever set it
 * queued it and kicked its target. So that case is decided by one plain read, without the irq_lock
 * (most MSIs of a flood coalesce so). A flush clears the latch when it moves the pending state into
 * an LR, so a latch seen set means "not yet given to the CPU interface": merging into it loses no
 * edge. The race with a flush clearing it concurrently linearises the MSI before the flush.
 */
export function lpiSetPending(s: GicState, slot: number): number {
  const f = s.irqFlags[slot];
  if ((f & (IRQ_PENDING_LATCH | IRQ_VALID)) === (IRQ_PENDING_LATCH | IRQ_VALID)) {
    return LPI_SET_COALESCED;
  }
  // Direct injection: a forwarded LPI's MSI sets a VPT bit, no lock (VPE_SET_* = LPI_SET_*).
  if (f & IRQ_FORWARDED) {
    const r = vpeInject(s, slot);
    if (r !== VPE_NOT_FORWARDED) return r;
  }
  return lpiSetPendingUnderIrqLock(s, slot);
}

/**
 * lpiSetPending without the lock-free fast path: the pending state is always read and set under
 * the LPI's irq_lock, as Linux v6.8-rc1 did (vgic_its_inject_cached_translation /
 * vgic_its_trigger_msi: take irq_lock, set pending_latch, vgic_queue_irq_unlock). The baseline
 * design (its/global-cache.ts) injects so. Same results as lpiSetPending. Caller holds no irq_lock.
 */
export function lpiSetPendingUnderIrqLock(s: GicState, slot: number): number {
  lockIrq(s, slot);
  let f = s.irqFlags[slot];
  while (f & IRQ_FORWARDED) {
    // A vLPI (core/vpe.ts): its pending state is a VPT bit, set without this lock.
    unlockIrq(s, slot);
    const r = vpeInject(s, slot);
    if (r !== VPE_NOT_FORWARDED) return r;
    lockIrq(s, slot);
    f = s.irqFlags[slot];
  }
  if ((f & IRQ_VALID) === 0) {
    // A cache hit that raced with the LPI's unmapping: ordered after it, the MSI finds no mapping.
    unlockIrq(s, slot);
    return LPI_SET_UNMAPPED;
  }
  if (f & IRQ_PENDING_LATCH) {
    unlockIrq(s, slot);
    return LPI_SET_COALESCED;
  }
  s.irqFlags[slot] = f | IRQ_PENDING_LATCH;
  queueIrqUnlock(s, slot);
  return LPI_SET_NEW;
}

/**
 * update_affinity: an LPI now targets `target` through collection `router`. If another vCPU holds
 * it on its ap_list, it migrates now (core/vgic.ts migrateFrom).
 */
export function lpiRetarget(s: GicState, slot: number, target: number, router: number): void {
  lockIrq(s, slot);
  const from = s.irqTarget[slot];
  s.irqTarget[slot] = target;
  // VMOVI: a vLPI's VPT bit follows it to the new vPE.
  if (s.irqFlags[slot] & IRQ_FORWARDED) vpeMoveLocked(s, slot, from, target);
  s.irqRouter[slot] = router;
  const on = s.irqApVcpu[slot];
  queueIrqUnlock(s, slot);
  if (on >= 0 && on !== target) migrateFrom(s, on);
}

/**
 * GICR_CTLR.EnableLPIs 0 → 1 (vgic_enable_lpis): unless PENDBASER.PTZ, take the pending bits of
 * the mapped LPIs that target v from v's pending table into their latches (clearing the bits).
 */
export function enableLpis(s: GicState, mem: GuestMemory, v: number): void {
  const b = v * VCPU_STRIDE;
  const ptz = (s.vcpu[b + V_PENDBASER_HI] & GICR_PENDBASER_HI_PTZ) !== 0;
  // PTZ says the table was zero when LPIs were enabled; it means nothing afterwards.
  s.vcpu[b + V_PENDBASER_HI] &= ~GICR_PENDBASER_HI_PTZ;
  if (ptz) return;
  const limit = lpiIdLimit(s);
  if (limit === 0) return;
  const first = VGIC_MIN_LPI >>> 3;
  const table = mem.bytesAt(pendbaseAddr(s, v) + first, (limit >>> 3) - first);
  if (table === undefined) {
    s.stats[S_LPI_TABLE_FAULT]++;
    return;
  }
  for (let j = 0; j < table.length; j++) {
    let byte = table[j];
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      const slot = s.lpiBase + j * 8 + bit;
      if (s.irqLpiRef[slot - s.lpiBase] === 0 || s.irqTarget[slot] !== v) continue;
      byte &= ~(1 << bit);
      lpiSetPendingUnderIrqLock(s, slot);
    }
    table[j] = byte;
  }
}

/**
 * GICR_CTLR.EnableLPIs 1 → 0: fold v's LRs, then write the latches of the LPIs that target v back
 * into v's pending table. The LPIs leave v's ap_list at its next exit (nothing is pending now).
 * The caller invalidates every ITS's translation cache.
 */
export function disableLpis(s: GicState, mem: GuestMemory, v: number): void {
  haltVcpu(s, v);
  writeBackPending(s, mem, v, true);
  resumeVcpu(s, v);
}

/**
 * vgic_v3_save_pending_tables: write every mapped LPI's pending state into its target's pending
 * table (set and clear). The caller has stopped the vCPUs (their LRs are folded).
 */
export function savePendingTables(s: GicState, mem: GuestMemory): void {
  // A redistributor with EnableLPIs = 0 keeps its pending state in its table (the guest may have
  // set bits there to be read at enable, as kvm-unit-tests' its-pending-migration does): the save
  // only adds latched bits to it and never clears one, or those interrupts would be lost.
  for (let v = 0; v < s.nVcpus; v++) writeBackPending(s, mem, v, false, lpisEnabled(s, v));
}

function writeBackPending(s: GicState, mem: GuestMemory, v: number, consume: boolean, clear = true): void {
  const base = pendbaseAddr(s, v);
  // Only a mapped LPI has a latch: lpiFree drops it.
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    const slot = s.lpiBase + i;
    if (s.irqTarget[slot] !== v) continue;
    const f = s.irqFlags[slot];
    // A vLPI's pending state is its VPT bit (KVM reads it back from the ITS for the save).
    const pending =
      (f & IRQ_PENDING_LATCH) !== 0 || ((f & IRQ_FORWARDED) !== 0 && vptPending(s, v, slot - s.lpiBase));
    if (s.irqLpiRef[i] === 0 && !pending) continue;
    const intid = VGIC_MIN_LPI + i;
    const at = base + (intid >>> 3);
    const byte = mem.read(at, 1);
    if (byte === undefined) {
      s.stats[S_LPI_TABLE_FAULT]++;
      continue;
    }
    const bit = 1 << (intid & 7);
    if (pending || clear) mem.write(at, 1, pending ? byte | bit : byte & ~bit);
    if (consume && pending) {
      lockIrq(s, slot);
      s.irqFlags[slot] &= ~IRQ_PENDING_LATCH;
      if (s.direct) vpeDropLocked(s, slot, false);
      unlockIrq(s, slot);
    }
  }
}
