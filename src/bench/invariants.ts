/**
 * The invariants a GIC at rest must hold, checked from the outside (independently of
 * device/snapshot.ts, which it tests): no lock held, every ap_list well formed and consistent with
 * irqApVcpu, every interrupt the oracle sends somewhere on an ap_list (on exactly its target's once
 * the lists are settled, e.g. right after snapshot() or restore()), LRs of a vCPU in the guest
 * agreeing with the interrupts they hold, and every per-interrupt field in range.
 *
 * Call it between instructions (no vCPU mid-instruction) on the thread that owns the GIC.
 * Returns the violations found (empty: all good), so a failing fuzz case can print them all.
 *
 * With `scope`, only what one operation can have touched is re-checked (the adversarial engine's
 * per-operation check, between its periodic full ones): the LPI store and the ITS books are the
 * bulk of the state (2^16 slots, 2^16 devices per ITS) and most operations cannot reach them.
 *
 * Who calls: the tests (test/helpers/invariants.ts re-exports it) and the adversarial engine
 * (bench/adversarial.ts) after every operation. Locks: none held on entry; checkCaches takes each
 * ITS's its_lock for its walks.
 */

import { LR_HI_ACTIVE, LR_HI_GROUP, LR_HI_HW, LR_HI_PENDING, LR_HI_PRIORITY_SHIFT } from '../arch/ich.ts';
import { GITS_BASER_HI_VALID, ITS_EVENT_IDBITS } from '../arch/its.ts';
import { targetOracle } from '../core/irq.ts';
import { lockWord, unlockWord } from '../core/locks.ts';
import { LPI_FREE_FLAGS } from '../core/lpi.ts';
import type { Vgic } from '../device/vgic.ts';
import { cacheGeneration } from '../its/cache.ts';
import { iteIcid, itePintid } from '../its/tables.ts';
import { findIteLocked, itsEnabled } from '../its/translate.ts';
import {
  GC_LOCK,
  GCE_ITS,
  GCE_KEY,
  GCE_SLOT,
  GCE_WORDS,
  type GicState,
  I_BASER0_HI,
  I_CMD_LOCK,
  I_LOCK,
  IN_HEAD,
  IN_PROBE,
  IN_VCPU_WORDS,
  IRQ_FORWARDED,
  IRQ_HW,
  IRQ_PENDING_LATCH,
  ITS_COLLECTIONS,
  ITS_DEVICE_WORDS,
  ITS_DEVICES,
  ITS_STRIDE,
  MS_OWNER,
  MSI_STAT_SLOTS,
  SGI_ACTIVE_SOURCE_SHIFT,
  SGI_SOURCE_MASK,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_AP_TAIL,
  V_IN_GUEST,
  V_LR_ACT,
  V_LR_GRP0,
  V_LR_PEND,
  V_POWER_OFF,
  V_RUN_LOCK,
  V_USED_LRS,
  V_VPE_ON,
  VCPU_STRIDE,
  VPE_DB,
  VPE_DB_FIRED,
  VPE_MAP,
  VPE_PENDING_LAST,
  VPE_STATE,
  VPE_STATE_MASK,
  VPE_STRIDE,
  VPE_VALID,
  VPE_VPT_SIZE,
  VPE_VSGI,
} from '../state/layout.ts';

export interface InvariantOptions {
  /**
   * The ap_lists are settled (no migration left for a prune to do): every listed interrupt is on
   * its oracle's list. Otherwise an interrupt retargeted meanwhile may still sit on its old list.
   */
  readonly settled?: boolean;
  /** Check only this much of the LPI store and the ITS books; absent: the whole state. */
  readonly scope?: CheckScope;
  /** Filled with the LPI slots found on ap_lists (the next scoped check re-checks them). */
  readonly listedOut?: number[];
}

/**
 * What one operation can have touched beyond the always-checked part (locks outside the LPI store,
 * ap_lists, every SPI/PPI/SGI, every listed or mapped LPI, the LRs). An LPI slot leaves the free
 * state only through an ITS command, and returns to it only through one or by leaving an ap_list,
 * so the caller names the LPI slots its operation addressed and those listed before it.
 */
export interface CheckScope {
  /** LPI slots to check like the full scan does (free, or else every per-interrupt rule). */
  readonly lpiSlots: readonly number[];
  /** Every LPI slot (an MSI may reach any through a stale translation), not the books. */
  readonly lpiAll?: boolean;
  /** The ITS books (lpiMapped, references, device ITE counts): only ITS commands and bases move them. */
  readonly books: boolean;
}

/**
 * The checker's list-membership scratch, reused (it runs after every adversarial operation) and
 * kept all -1 between calls: only the listed slots are reset, not the whole store.
 */
let scratch = new Int32Array(0);
/**
 * Templates to compare typed-array ranges against natively (memcmp beats a JS loop over 2^16
 * words): zeros, a free LPI's flags, -1 (on no list), and the INTIDs 8192 + i.
 */
const tpl = {
  zero: new Int32Array(0),
  free: new Int32Array(0),
  none: new Int32Array(0),
  ids: new Int32Array(0),
};

function grow(n: number): void {
  if (tpl.zero.length >= n) return;
  const m = Math.max(n, 1 << 16);
  tpl.zero = new Int32Array(m);
  tpl.free = new Int32Array(m).fill(LPI_FREE_FLAGS);
  tpl.none = new Int32Array(m).fill(-1);
  tpl.ids = Int32Array.from({ length: m }, (_, i) => 8192 + i);
}

/** Is `a[from..from+n)` the same as `t[at..at+n)`, byte for byte? */
function same(
  a: Int32Array | Uint32Array,
  from: number,
  t: keyof typeof tpl,
  at: number,
  n: number,
): boolean {
  if (n <= 0) return true;
  grow(at + n);
  const view = Buffer.from(a.buffer, a.byteOffset + from * 4, n * 4);
  return view.compare(new Uint8Array(tpl[t].buffer), at * 4, (at + n) * 4) === 0;
}

/** Are `a[from..to)` all 0? */
function allZero(a: Int32Array | Uint32Array, from: number, to: number): boolean {
  return same(a, from, 'zero', 0, to - from);
}

/** LPIs i0..i1 (indices from 8192) all free: no list, free flags, no reference, no target or collection, their INTID. */
function freeRun(gic: Vgic, i0: number, i1: number): boolean {
  const s = gic.state;
  const n = i1 - i0;
  const at = s.lpiBase + i0;
  return (
    allZero(s.irqLpiRef, i0, i1) &&
    same(s.irqFlags, at, 'free', 0, n) &&
    same(s.irqApVcpu, at, 'none', 0, n) &&
    same(s.irqTarget, at, 'none', 0, n) &&
    same(s.irqRouter, at, 'none', 0, n) &&
    same(s.irqIntid, at, 'ids', i0, n)
  );
}

/** The ICH_LR<n>_EL2 high word with a GICH_LR's state, HW, group and priority (arch/gicv2.ts). */
function gichToIchHi(lr: number): number {
  return (
    (((lr >>> 23) & 0x1f) << (LR_HI_PRIORITY_SHIFT + 3)) |
    (lr & (1 << 28) ? LR_HI_PENDING : 0) |
    (lr & (1 << 29) ? LR_HI_ACTIVE : 0) |
    (lr & (1 << 30) ? LR_HI_GROUP : 0) |
    (lr & (1 << 31) ? LR_HI_HW : 0)
  );
}

/**
 * A GICv2 slot: an SGI is pending exactly while it has a source (the source that sits in an LR is
 * taken out of both), its sources and active source fit their fields; an SPI's target is the
 * lowest CPU of its ITARGETSR byte, which names existing CPUs only; a PPI has no sources.
 */
function gicv2Slot(s: GicState, slot: number, say: (m: string) => void): void {
  const r = s.irqRouter[slot];
  if (slot < s.spiBase) {
    const intid = slot % 32;
    if (intid >= 16) {
      if (r !== 0) say(`PPI ${intid} of vCPU ${slot >> 5} has sources ${r}`);
      return;
    }
    if ((r & ~(SGI_SOURCE_MASK | (7 << SGI_ACTIVE_SOURCE_SHIFT))) !== 0)
      say(`SGI ${intid} of vCPU ${slot >> 5} has sources ${r}`);
    if (((s.irqFlags[slot] & IRQ_PENDING_LATCH) !== 0) !== ((r & SGI_SOURCE_MASK) !== 0))
      say(
        `SGI ${intid} of vCPU ${slot >> 5}: latch ${s.irqFlags[slot] & IRQ_PENDING_LATCH} with sources ${r}`,
      );
    return;
  }
  if (slot >= s.lpiBase) return;
  if ((r & ~((1 << s.nVcpus) - 1)) !== 0 || s.irqTarget[slot] !== (r === 0 ? -1 : 31 - Math.clz32(r & -r)))
    say(`SPI ${32 + slot - s.spiBase}: ITARGETSR ${r}, target ${s.irqTarget[slot]}`);
}

export function checkInvariants(gic: Vgic, o: InvariantOptions = {}): string[] {
  const s = gic.state;
  const bad: string[] = [];
  const say = (m: string) => {
    if (bad.length < 20) bad.push(m);
  };
  const scope = o.scope;
  // Scoped (not every LPI): the LPI slots' locks are checked below, those of the slots it visits.
  const lockEnd = scope && !scope.lpiAll ? s.lpiBase : s.nSlots;
  if (!allZero(s.irqLock, 0, lockEnd))
    for (let slot = 0; slot < lockEnd; slot++) if (s.irqLock[slot] !== 0) say(`irq_lock ${slot} held`);
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    if (s.vcpu[b + V_AP_LOCK] !== 0) say(`ap_list_lock ${v} held`);
    if (s.vcpu[b + V_RUN_LOCK] !== 0) say(`run_lock ${v} held`);
  }
  for (let k = 0; k < s.nIts; k++) {
    if (s.its[k * ITS_STRIDE + I_CMD_LOCK] !== 0) say(`cmd_lock of ITS ${k} held`);
    if (s.its[k * ITS_STRIDE + I_LOCK] !== 0) say(`its_lock of ITS ${k} held`);
  }
  if (s.globalCacheSize > 0 && s.globalCacheMeta[GC_LOCK] !== 0) say('global cache lock held');

  // Lists: bounded walks, so a broken list is reported, not looped over.
  if (scratch.length < s.nSlots) scratch = new Int32Array(s.nSlots).fill(-1);
  const seenOn = scratch;
  const listed: number[] = [];
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    let prev = -1;
    let n = 0;
    let slot = s.vcpu[b + V_AP_HEAD];
    for (; slot !== -1 && n <= s.nSlots; slot = s.irqApNext[slot]) {
      if (!(slot >= 0 && slot < s.nSlots)) {
        say(`ap_list ${v} links to ${slot}`);
        break;
      }
      if (seenOn[slot] !== -1) {
        say(`slot ${slot} twice on ap_lists (${seenOn[slot]}, ${v})`);
        break;
      }
      seenOn[slot] = v;
      listed.push(slot);
      if (s.irqApVcpu[slot] !== v) say(`slot ${slot} on ap_list ${v} says ${s.irqApVcpu[slot]}`);
      if (s.irqApPrev[slot] !== prev)
        say(`slot ${slot} on ap_list ${v}: prev ${s.irqApPrev[slot]} != ${prev}`);
      prev = slot;
      n++;
    }
    if (s.vcpu[b + V_AP_TAIL] !== prev) say(`ap_list ${v} tail ${s.vcpu[b + V_AP_TAIL]} != ${prev}`);
    if (s.vcpu[b + V_AP_COUNT] !== n) say(`ap_list ${v} count ${s.vcpu[b + V_AP_COUNT]} != ${n}`);
  }
  const full = (slot: number) => {
    const on = s.irqApVcpu[slot];
    if (on !== seenOn[slot]) say(`slot ${slot} claims ap_list ${on}, found on ${seenOn[slot]}`);
    const t = s.irqTarget[slot];
    if (!(t >= -1 && t < s.nVcpus)) say(`slot ${slot} targets ${t}`);
    if (slot < s.lpiBase && s.irqIntid[slot] !== (slot < s.spiBase ? slot % 32 : 32 + slot - s.spiBase))
      say(`slot ${slot} has INTID ${s.irqIntid[slot]}`);
    if (slot >= s.lpiBase && s.irqIntid[slot] !== 8192 + slot - s.lpiBase)
      say(`slot ${slot} has INTID ${s.irqIntid[slot]}`);
    if (s.gicv2) gicv2Slot(s, slot, say);
    const oracle = targetOracle(s, slot);
    // Pending, enabled and deliverable: on an ap_list, its target's once settled.
    if (oracle >= 0 && on < 0) say(`INTID ${s.irqIntid[slot]} deliverable to ${oracle} but on no ap_list`);
    if (o.settled && oracle !== on) say(`INTID ${s.irqIntid[slot]} on ap_list ${on}, oracle says ${oracle}`);
  };
  for (let slot = 0; slot < s.lpiBase; slot++) full(slot);
  // Free LPIs (most of the store): on no list, free flags, no reference or target, their INTID.
  const { irqApVcpu: ap, irqFlags: fl, irqLpiRef: ref, irqIntid: id } = s;
  const lpi = (slot: number) => {
    const i = slot - s.lpiBase;
    if (
      ap[slot] === -1 &&
      seenOn[slot] === -1 &&
      fl[slot] === LPI_FREE_FLAGS &&
      ref[i] === 0 &&
      s.irqTarget[slot] === -1 &&
      s.irqRouter[slot] === -1 &&
      id[slot] === 8192 + i
    )
      return;
    // The snapshot's rule (device/snapshot.ts checkSlots): no reference, no state.
    if (ref[i] === 0 && (fl[slot] !== LPI_FREE_FLAGS || s.irqTarget[slot] !== -1 || s.irqRouter[slot] !== -1))
      say(
        `unmapped LPI ${8192 + i} has state: flags ${fl[slot]}, target ${s.irqTarget[slot]}, router ${s.irqRouter[slot]}`,
      );
    full(slot);
  };
  const some = lockEnd === s.lpiBase;
  const lockedLpi = (slot: number) => {
    if (some && s.irqLock[slot] !== 0) say(`irq_lock ${slot} held`);
    lpi(slot);
  };
  // Listed LPIs first: a run found free below could still hold one (its ap field saying -1).
  for (const slot of listed) if (slot >= s.lpiBase) lockedLpi(slot);
  if (!scope || scope.lpiAll) {
    for (let i0 = 0; i0 < s.nLpis; i0 += 1024) {
      const i1 = Math.min(s.nLpis, i0 + 1024);
      if (freeRun(gic, i0, i1)) continue;
      for (let slot = s.lpiBase + i0; slot < s.lpiBase + i1; slot++) lpi(slot);
    }
  } else {
    // Mapped and addressed LPIs; a slot checked twice only costs time.
    for (const slot of scope.lpiSlots) {
      if (slot >= s.lpiBase && slot < s.nSlots) lockedLpi(slot);
    }
    const m = s.lpiMapped;
    for (let w = 0; w < m.length; w++) {
      for (let bits = m[w]; bits !== 0; bits &= bits - 1) {
        const slot = s.lpiBase + ((w << 5) | (31 - Math.clz32(bits & -bits)));
        if (slot < s.nSlots) lockedLpi(slot);
      }
    }
  }
  for (const slot of listed) seenOn[slot] = -1;
  if (o.listedOut) {
    o.listedOut.length = 0;
    for (const slot of listed) if (slot >= s.lpiBase) o.listedOut.push(slot);
  }

  // LRs of vCPUs in the guest: each holds an interrupt of this vCPU's list, as its state says.
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    if (s.vcpu[b + V_IN_GUEST] === 0) continue;
    const used = s.vcpu[b + V_USED_LRS];
    if (!(used >= 0 && used <= s.nLrs)) {
      say(`vCPU ${v} uses ${used} LRs`);
      continue;
    }
    const seen = new Set<number>();
    for (let n = 0; n < used; n++) {
      const li = s.lrIndex(v, n);
      // A GICv2's GICH_LR, seen through the ICH_LR fields this check reads.
      const intid = s.gicv2 ? s.lr[li] & 0x3ff : s.lr[li];
      const hi = s.gicv2 ? gichToIchHi(s.lr[li]) : s.lr[li + 1];
      if (s.gicv2 && (s.lr[li + 1] !== 0 || (s.lr[li] & (7 << 20)) !== 0))
        say(`GICH_LR ${n} of vCPU ${v} has reserved bits set`);
      const slot = s.slotOf(v, intid);
      if (slot < 0) {
        say(`LR ${n} of vCPU ${v} holds INTID ${intid}`);
        continue;
      }
      if (seen.has(intid)) say(`INTID ${intid} in two LRs of vCPU ${v}`);
      seen.add(intid);
      if (s.irqApVcpu[slot] !== v)
        say(`INTID ${intid} in an LR of vCPU ${v} but on ap_list ${s.irqApVcpu[slot]}`);
      // Priority and group are copied at flush; an IPRIORITYR/IGROUPR write (the guest's from
      // another vCPU, or the host's) leaves an LR's copy stale until the next flush, as in KVM
      // (vgic_mmio_write_priority). So only the implemented bits are checked here.
      if (((hi >>> LR_HI_PRIORITY_SHIFT) & 0xff & ~(intid >= 8192 ? 0xfc : 0xf8)) !== 0)
        say(`LR ${n} of vCPU ${v}: priority ${(hi >>> LR_HI_PRIORITY_SHIFT) & 0xff} has unimplemented bits`);
      if (((hi & LR_HI_HW) !== 0) !== ((s.irqFlags[slot] & IRQ_HW) !== 0))
        say(`LR ${n} of vCPU ${v}: HW differs`);
      const bit = 1 << n;
      const pendOnly = (hi & (LR_HI_PENDING | LR_HI_ACTIVE)) === LR_HI_PENDING;
      if (((s.vcpu[b + V_LR_PEND] & bit) !== 0) !== pendOnly)
        say(`LR ${n} of vCPU ${v}: Pending mask differs`);
      if (((s.vcpu[b + V_LR_ACT] & bit) !== 0) !== ((hi & LR_HI_ACTIVE) !== 0))
        say(`LR ${n} of vCPU ${v}: Active mask differs`);
      if (((s.vcpu[b + V_LR_GRP0] & bit) !== 0) !== ((hi & LR_HI_GROUP) === 0))
        say(`LR ${n} of vCPU ${v}: group mask differs`);
    }
  }
  if (!scope || scope.books) checkLpiBooks(gic, say);
  if (s.direct) checkVpes(gic, say);
  checkCounters(gic, say);
  return bad;
}

/**
 * The words next to the statistics: a vCPU's power state is 0 or 1; each translation-cache
 * statistics slot has at most one owner (distinct owner ids) and the shared last slot none; a
 * latency probe names nothing (0), is being set (-1), or names a slot.
 */
function checkCounters(gic: Vgic, say: (m: string) => void): void {
  const s = gic.state;
  for (let v = 0; v < s.nVcpus; v++) {
    const off = s.vcpu[v * VCPU_STRIDE + V_POWER_OFF];
    if (off !== 0 && off !== 1) say(`vCPU ${v} power-off word ${off}`);
    const probe = s.inspect[IN_HEAD + v * IN_VCPU_WORDS + IN_PROBE];
    if (probe < -1 || probe > s.nSlots) say(`latency probe of vCPU ${v} is ${probe}`);
  }
  if (s.nIts === 0) return;
  const owners = new Set<number>();
  for (let i = 0; i < MSI_STAT_SLOTS; i++) {
    const o = s.msiStats[i * s.msiStatStride + MS_OWNER];
    if (o === 0) continue;
    if (i === MSI_STAT_SLOTS - 1) say('the shared statistics slot has an owner');
    if (owners.has(o)) say(`owner id ${o} owns two statistics slots`);
    owners.add(o);
  }
}

/**
 * GICv4.1 (core/vpe.ts): a resident vPE's state is Valid alone (a new phase: no doorbell, no
 * PendingLast); PendingLast comes with the doorbell spent; a VPT bit belongs to a mapped,
 * forwarded LPI that targets that vPE, and is reachable by a scan (its word in the summary, the
 * summary word in the top level); a forwarded LPI is mapped and has a target.
 */
function checkVpes(gic: Vgic, say: (m: string) => void): void {
  const s = gic.state;
  for (let v = 0; v < s.nVcpus; v++) {
    const st = s.vpe[v * VPE_STRIDE + VPE_STATE];
    if ((st & ~VPE_STATE_MASK) !== 0) say(`vPE ${v} state ${st} has unknown bits`);
    if ((s.vpe[v * VPE_STRIDE + VPE_VSGI] & ~0xffff) !== 0) say(`vPE ${v} has vSGI bits above SGI 15`);
    if (st & VPE_VALID && st !== VPE_VALID) say(`resident vPE ${v} carries non-residency bits (${st})`);
    if (st & VPE_PENDING_LAST && (st & VPE_DB_FIRED) === 0)
      say(`vPE ${v}: PendingLast without its doorbell spent`);
    // GICv4.1 guest vPEs (VMAPP): resident exactly when one redistributor presents it.
    const guest = s.vpe[v * VPE_STRIDE + VPE_MAP] !== 0;
    let on = 0;
    for (let r = 0; r < s.nVcpus; r++) if (s.vcpu[r * VCPU_STRIDE + V_VPE_ON] === v + 1) on++;
    if (guest && on !== (st & VPE_VALID ? 1 : 0))
      say(`guest vPE ${v}: Valid ${st & VPE_VALID}, presented by ${on} redistributors`);
    if (!guest && on > 1) say(`vPE ${v} presented by ${on} redistributors`);
    for (let wi = 0; wi < s.vptWords; wi++) {
      const word = s.vpt[v * s.vptWords + wi];
      if (word === 0) continue;
      if ((s.vptSummary[v * s.vptSummaryWords + (wi >>> 5)] & (1 << (wi & 31))) === 0)
        say(`vPE ${v}: VPT word ${wi} not summarised`);
      if ((s.vptTop[v * s.vptTopWords + (wi >>> 10)] & (1 << ((wi >>> 5) & 31))) === 0)
        say(`vPE ${v}: VPT word ${wi}'s summary word not in the top level`);
      for (let m = word; m !== 0; m &= m - 1) {
        const i = (wi << 5) + 31 - Math.clz32(m & -m);
        const slot = s.lpiBase + i;
        if (guest) {
          // A guest vPE's vINTIDs are its own, below 2^VPT_size.
          if (8192 + i >= 2 ** s.vpe[v * VPE_STRIDE + VPE_VPT_SIZE])
            say(`vPE ${v}: VPT bit of vINTID ${8192 + i} beyond its VPT_size`);
        } else if (i >= s.nLpis || (s.irqFlags[slot] & IRQ_FORWARDED) === 0 || s.irqTarget[slot] !== v)
          say(`vPE ${v}: VPT bit of LPI ${8192 + i}, no vLPI of it`);
      }
    }
  }
  for (let w = 0; w < s.lpiMapped.length; w++) {
    for (let bits = s.lpiMapped[w]; bits !== 0; bits &= bits - 1) {
      const slot = s.lpiBase + ((w << 5) | (31 - Math.clz32(bits & -bits)));
      if (slot < s.nSlots && s.irqFlags[slot] & IRQ_FORWARDED && s.irqTarget[slot] < 0)
        say(`forwarded LPI ${s.irqIntid[slot]} has no target vPE`);
    }
  }
}

/**
 * The ITS's books: lpiMapped has a bit exactly for the LPIs with references, those add up over the
 * ITSes, a device's ITE count is 0 unless it is mapped and never above 2^16, and an ITS whose device
 * table is invalid maps no device and holds no reference.
 */
function checkLpiBooks(gic: Vgic, say: (m: string) => void): void {
  const s = gic.state;
  const n = s.nLpis;
  const ref = s.irqLpiRef;
  const itsRef = s.itsLpiRef;
  const mapped = s.lpiMapped;
  // 1024 LPIs at a time, skipped when no bit is set and no reference counted (compared natively).
  for (let c = 0; c < n; c += 1024) {
    const end = Math.min(n, c + 1024);
    let any = 0;
    for (let w = c >>> 5; w < (end + 31) >>> 5; w++) any |= mapped[w];
    if (any === 0 && allZero(ref, c, end)) continue;
    booksWords(c >>> 5, (end + 31) >>> 5);
  }
  function booksWords(w0: number, w1: number): void {
    for (let w = w0; w < w1; w++) {
      let want = 0;
      for (let b = 0; b < 32; b++) {
        const i = (w << 5) | b;
        if (i < n && ref[i] !== 0) want |= 1 << b;
      }
      if (mapped[w] !== want) say(`lpiMapped word ${w} is ${mapped[w]}; the references say ${want}`);
      if (want === 0) continue;
      for (let b = 0; b < 32; b++) {
        const i = (w << 5) | b;
        if (i >= n || ref[i] === 0) continue;
        let refs = 0;
        for (let k = 0; k < s.nIts; k++) refs += itsRef[k * n + i];
        // GICv4.1: a guest vPE's default doorbell LPI is referenced by the vPE (core/vpe-guest.ts).
        if (s.direct)
          for (let p = 0; p < s.nVcpus; p++)
            if (s.vpe[p * VPE_STRIDE + VPE_MAP] !== 0 && s.vpe[p * VPE_STRIDE + VPE_DB] === 8192 + i) refs++;
        if (refs !== ref[i])
          say(`LPI ${8192 + i}: ${ref[i]} references, ITSes and vPE doorbells hold ${refs}`);
      }
    }
  }
  const live = s.itsDevLive;
  const events = s.itsDevEvents;
  for (let k = 0; k < s.nIts; k++) {
    const table = (s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_VALID) !== 0;
    const e0 = k * ITS_DEVICES;
    for (let d = 0; d < ITS_DEVICES; d++) {
      // A run of 1024 devices none live and none counting ITEs: one native compare.
      if ((d & 1023) === 0 && allZero(events, e0 + d, e0 + d + 1024)) {
        d += 1023;
        continue;
      }
      const c = events[e0 + d];
      if (c === 0) continue;
      const on = (live[k * ITS_DEVICE_WORDS + (d >>> 5)] >>> (d & 31)) & 1;
      if (c < 0 || c > MAX_EVENTS || on === 0) say(`ITS ${k} device ${d} (live ${on}) counts ${c} ITEs`);
    }
    if (table) continue;
    if (!allZero(live, k * ITS_DEVICE_WORDS, (k + 1) * ITS_DEVICE_WORDS))
      for (let w = 0; w < ITS_DEVICE_WORDS; w++)
        if (live[k * ITS_DEVICE_WORDS + w] !== 0)
          say(`ITS ${k} maps devices ${w * 32}.. without a device table`);
    if (!allZero(itsRef, k * n, (k + 1) * n))
      for (let i = 0; i < n; i++)
        if (itsRef[k * n + i] !== 0) say(`ITS ${k} holds LPI ${8192 + i} without a device table`);
  }
}

const MAX_EVENTS = 2 ** ITS_EVENT_IDBITS;

/**
 * Translation caches against the tables: every entry a lookup would hit (current generation; for
 * the global LRU cache, every entry) gives the LPI a table walk gives for its (DeviceID, EventID),
 * through a mapped collection. `skip(k)` leaves out an ITS whose tables the caller let the guest
 * rewrite behind the ITS's back since its last invalidation (UNPREDICTABLE: the cache may keep the
 * old translation, as KVM's does). Returns the violations and how many entries were compared.
 */
export function checkCaches(
  gic: Vgic,
  skip: (k: number) => boolean = () => false,
): { bad: string[]; compared: number } {
  const s = gic.state;
  const mem = gic.memory;
  const bad: string[] = [];
  let compared = 0;
  const walk = (k: number, key: number, slot: number, what: string) => {
    const devid = key >>> 16;
    const eventid = key & 0xffff;
    lockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
    const at = itsEnabled(s, k) ? findIteLocked(s, mem, k, devid, eventid) : -1;
    const pintid = itePintid;
    const icid = iteIcid;
    unlockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
    compared++;
    if (at < 0) {
      if (bad.length < 20)
        bad.push(`${what}: ITS ${k} (${devid}, ${eventid}) → slot ${slot}, the walk finds no mapping`);
    } else if (s.lpiSlot(pintid) !== slot) {
      if (bad.length < 20)
        bad.push(`${what}: ITS ${k} (${devid}, ${eventid}) → slot ${slot}, the walk gives LPI ${pintid}`);
    } else if (s.itsColl[k * ITS_COLLECTIONS + icid] < 0) {
      if (bad.length < 20)
        bad.push(`${what}: ITS ${k} (${devid}, ${eventid}) cached, collection ${icid} unmapped`);
    }
  };
  if (s.globalLru) {
    const e = s.globalCacheEntry;
    for (let x = 0; x < s.globalCacheSize; x++) {
      const k = e[x * GCE_WORDS + GCE_ITS] - 1;
      if (k < 0 || skip(k)) continue;
      walk(k, e[x * GCE_WORDS + GCE_KEY], e[x * GCE_WORDS + GCE_SLOT], 'global cache');
    }
    return { bad, compared };
  }
  for (let k = 0; k < s.nIts; k++) {
    if (skip(k)) continue;
    const gen = cacheGeneration(s, k);
    const c = s.itsCache;
    for (let i = 0; i < s.itsCacheSize; i++) {
      const b = (k * s.itsCacheSize + i) * 2;
      // Empty runs (most of a 2^16-entry cache) in one native compare.
      if ((i & 511) === 0 && i + 512 <= s.itsCacheSize && allZero(c, b, b + 1024)) {
        i += 511;
        continue;
      }
      const v = c[b + 1];
      if (v === 0 || v >>> 16 !== gen) continue;
      walk(k, c[b], s.lpiBase + (v & 0xffff), 'cache');
    }
  }
  return { bad, compared };
}
