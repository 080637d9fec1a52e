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
  I_BASER0_HI,
  I_CMD_LOCK,
  I_LOCK,
  IRQ_HW,
  ITS_COLLECTIONS,
  ITS_DEVICE_WORDS,
  ITS_DEVICES,
  ITS_STRIDE,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_AP_TAIL,
  V_IN_GUEST,
  V_LR_ACT,
  V_LR_GRP0,
  V_LR_PEND,
  V_RUN_LOCK,
  V_USED_LRS,
  VCPU_STRIDE,
} from '../state/layout.ts';

export interface InvariantOptions {
  /**
   * The ap_lists are settled (no migration left for a prune to do): every listed interrupt is on
   * its oracle's list. Otherwise an interrupt retargeted meanwhile may still sit on its old list.
   */
  readonly settled?: boolean;
}

/** The checker's list-membership scratch, reused: it runs after every adversarial operation. */
let scratch = new Int32Array(0);

export function checkInvariants(gic: Vgic, o: InvariantOptions = {}): string[] {
  const s = gic.state;
  const bad: string[] = [];
  const say = (m: string) => {
    if (bad.length < 20) bad.push(m);
  };
  for (let slot = 0; slot < s.nSlots; slot++) if (s.irqLock[slot] !== 0) say(`irq_lock ${slot} held`);
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
  if (scratch.length < s.nSlots) scratch = new Int32Array(s.nSlots);
  const seenOn = scratch.subarray(0, s.nSlots).fill(-1);
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
    const oracle = targetOracle(s, slot);
    // Pending, enabled and deliverable: on an ap_list, its target's once settled.
    if (oracle >= 0 && on < 0) say(`INTID ${s.irqIntid[slot]} deliverable to ${oracle} but on no ap_list`);
    if (o.settled && oracle !== on) say(`INTID ${s.irqIntid[slot]} on ap_list ${on}, oracle says ${oracle}`);
  };
  for (let slot = 0; slot < s.lpiBase; slot++) full(slot);
  // Free LPIs (most of the store) in a tight loop: on no list, free flags, no reference, their INTID.
  const { irqApVcpu: ap, irqFlags: fl, irqLpiRef: ref, irqIntid: id } = s;
  for (let slot = s.lpiBase, i = 0; slot < s.nSlots; slot++, i++) {
    if (
      ap[slot] === -1 &&
      seenOn[slot] === -1 &&
      fl[slot] === LPI_FREE_FLAGS &&
      ref[i] === 0 &&
      id[slot] === 8192 + i
    )
      continue;
    full(slot);
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
      const intid = s.lr[li];
      const hi = s.lr[li + 1];
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
  checkLpiBooks(gic, say);
  return bad;
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
  // Word by word, zero words skipped: this runs after every adversarial operation.
  for (let w = 0; w < mapped.length; w++) {
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
      if (refs !== ref[i]) say(`LPI ${8192 + i}: ${ref[i]} references, ITSes hold ${refs}`);
    }
  }
  const live = s.itsDevLive;
  const events = s.itsDevEvents;
  for (let k = 0; k < s.nIts; k++) {
    const table = (s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_VALID) !== 0;
    const e0 = k * ITS_DEVICES;
    for (let d = 0; d < ITS_DEVICES; d++) {
      const c = events[e0 + d];
      if (c === 0) continue;
      const on = (live[k * ITS_DEVICE_WORDS + (d >>> 5)] >>> (d & 31)) & 1;
      if (c < 0 || c > MAX_EVENTS || on === 0) say(`ITS ${k} device ${d} (live ${on}) counts ${c} ITEs`);
    }
    if (table) continue;
    for (let w = 0; w < ITS_DEVICE_WORDS; w++)
      if (live[k * ITS_DEVICE_WORDS + w] !== 0)
        say(`ITS ${k} maps devices ${w * 32}.. without a device table`);
    // Refs that are not 0 sit only on LPIs whose mapped bit is set (checked above).
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
      const v = c[b + 1];
      if (v === 0 || v >>> 16 !== gen) continue;
      walk(k, c[b], s.lpiBase + (v & 0xffff), 'cache');
    }
  }
  return { bad, compared };
}
