/**
 * MSI translation (GIC IHI 0069 §5.2.3): (DeviceID, EventID) → ITE → collection → LPI and target,
 * then the LPI is set pending. KVM: vgic_its_resolve_lpi, vgic_its_trigger_msi,
 * vgic_its_inject_cached_translation, vgic_its_inject_msi.
 *
 * The hot path is a cache hit: no lock, then either a plain read that finds the LPI pending
 * already (coalesced: no lock at all) or a bit-set under the LPI's irq_lock and the queue.
 * A miss walks the tables under its_lock and fills the cache.
 *
 * With the baseline design (GicState.globalLru, its/global-cache.ts) the hit is a lookup in the one
 * global LRU cache under its global lock, and the LPI is always set pending under its irq_lock
 * (no lock-free coalescing), as Linux v6.8-rc1 did.
 *
 * Who may call: any thread (signalMsi, a guest's GITS_TRANSLATER write), and the INT command with
 * its_lock held (resolveLpiLocked).
 */

import { ITE_VIRTUAL } from '../arch/gicv4.ts';
import { GITS_CTLR_ENABLED } from '../arch/its.ts';
import { probeMsi } from '../core/inspect.ts';
import { lockWord, unlockWord } from '../core/locks.ts';
import {
  LPI_SET_NEW,
  LPI_SET_UNMAPPED,
  lpiSetPending,
  lpiSetPendingUnderIrqLock,
  lpisEnabled,
} from '../core/lpi.ts';
import { gvpeMapped, gvpeSetPending } from '../core/vpe-guest.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  type GicState,
  I_CACHE_MISS,
  I_CTLR,
  I_LOCK,
  I_MSI_BLOCKED,
  I_MSI_BUSY,
  I_TABLE_FAULT,
  IN_ON,
  ITS_COLLECTIONS,
  ITS_STRIDE,
} from '../state/layout.ts';
import { EV_GICV3_ITS_TRANSLATION_FAIL, EV_VGIC_ITS_CACHE_MISS, traceEmit, tracing } from '../trace/trace.ts';
import { cacheFillLocked, cacheGeneration, cacheLookup } from './cache.ts';
import { globalCacheFill, globalCacheLookup } from './global-cache.ts';
import { MS_EVICTIONS, MS_FILLS, MS_HITS, MS_MISSES, msiCount } from './msi-stats.ts';
import { dteBits, iteAddr, iteIcid, itePintid, liveDte, readIte } from './tables.ts';

/**
 * itsInjectMsi answers. KVM_SIGNAL_MSI returns 1 for both DELIVERED and COALESCED, 0 for BLOCKED
 * and -EBUSY for BUSY; telling the first two apart lets a caller prove no MSI was lost.
 */
export const MSI_DELIVERED = 1; // the LPI became pending
export const MSI_COALESCED = 2; // the LPI was pending already: the MSI merged into that state
export const MSI_BLOCKED = 0;
export const MSI_BUSY = -1;

/** resolveLpiLocked results other than a slot. */
export const RESOLVE_BLOCKED = -1;
export const RESOLVE_BUSY = -2;
/** The ITE maps a vLPI (GICv4.1 VMAPTI): itePintid holds ITE_VIRTUAL | vINTID, iteIcid the vPEID. */
export const RESOLVE_VIRTUAL = -3;

/** Set by findIteLocked: the ITE it found maps a vLPI (it returned -1), at iteVirtualAt. */
export let iteVirtual = false;
export let iteVirtualAt = -1;

export function itsEnabled(s: GicState, k: number): boolean {
  return (s.its[k * ITS_STRIDE + I_CTLR] & GITS_CTLR_ENABLED) !== 0;
}

/**
 * findIte: the address of the ITE for (devid, eventid) if the device is mapped, the event in range,
 * and the ITE valid with a pINTID in the LPI store that this ITS maps; else -1. itePintid / iteIcid
 * hold the entry. Caller holds its_lock.
 */
export function findIteLocked(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  eventid: number,
): number {
  iteVirtual = false;
  if (liveDte(s, mem, k, devid) < 0 || eventid >= 2 ** dteBits) return -1;
  const at = iteAddr(eventid);
  if (!readIte(mem, at)) return -1;
  if (itePintid & ITE_VIRTUAL) {
    // A vLPI: the physical paths see no LPI here; the V-aware ones read iteVirtual.
    iteVirtual = s.direct;
    iteVirtualAt = at;
    if (!s.direct) s.its[k * ITS_STRIDE + I_TABLE_FAULT]++;
    return -1;
  }
  const slot = s.lpiSlot(itePintid);
  // Only a guest writing into its ITT behind the ITS's back gets here. An LPI this ITS holds no
  // reference for is no mapping (lpiUnmap ignores it too): INV or MOVI through such an ITE would
  // give a free LPI state, which a snapshot then refuses.
  if (slot < 0 || s.itsLpiRef[k * s.nLpis + slot - s.lpiBase] === 0) {
    s.its[k * ITS_STRIDE + I_TABLE_FAULT]++;
    return -1;
  }
  return at;
}

/**
 * vgic_its_resolve_lpi: the slot of the LPI (devid, eventid) translates to, or RESOLVE_BLOCKED (no
 * valid mapping, or its collection is not mapped) / RESOLVE_BUSY (ITS disabled, or the target's
 * LPIs are). A successful translation is cached. Caller holds its_lock.
 */
export function resolveLpiLocked(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  eventid: number,
): number {
  if (!itsEnabled(s, k)) return RESOLVE_BUSY;
  const gen = cacheGeneration(s, k);
  if (devid > 0xffff || eventid > 0xffff) return RESOLVE_BLOCKED;
  if (findIteLocked(s, mem, k, devid, eventid) < 0) return iteVirtual ? RESOLVE_VIRTUAL : RESOLVE_BLOCKED;
  const target = s.itsColl[k * ITS_COLLECTIONS + iteIcid];
  if (target < 0) return RESOLVE_BLOCKED;
  if (!lpisEnabled(s, target)) return RESOLVE_BUSY;
  const evicted = s.globalLru
    ? globalCacheFill(s, k, devid, eventid, itePintid)
    : cacheFillLocked(s, k, devid, eventid, itePintid, gen);
  if (evicted >= 0) {
    msiCount(s, k, MS_FILLS);
    if (evicted > 0) msiCount(s, k, MS_EVICTIONS);
  }
  return s.lpiSlot(itePintid);
}

/**
 * An MSI or INT to the vLPI findIteLocked just found (itePintid, iteIcid): set pending in its vPE
 * if that is mapped. Returns 1 (set now), 2 (was pending), 0 (no mapped vPE, or the vINTID is
 * beyond its VPT). Caller holds its_lock.
 */
export function vlpiSetPendingLocked(s: GicState): number {
  const p = iteIcid;
  return gvpeMapped(s, p) ? gvpeSetPending(s, p, itePintid & ~ITE_VIRTUAL) : 0;
}

/** An MSI to ITS k (KVM_SIGNAL_MSI, or a write to its GITS_TRANSLATER). */
export function itsInjectMsi(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  eventid: number,
): number {
  const global = s.globalLru;
  if (devid <= 0xffff && eventid <= 0xffff) {
    if (global) {
      const slot = globalCacheLookup(s, k, devid, eventid);
      if (slot >= 0) {
        const r = lpiSetPendingUnderIrqLock(s, slot);
        if (r !== LPI_SET_UNMAPPED) {
          msiCount(s, k, MS_HITS);
          if (r === LPI_SET_NEW && s.inspect[IN_ON] !== 0) probeMsi(s, slot);
          return r === LPI_SET_NEW ? MSI_DELIVERED : MSI_COALESCED;
        }
      }
    } else {
      const slot = cacheLookup(s, k, devid, eventid);
      if (slot >= 0) {
        const r = lpiSetPending(s, slot);
        if (r !== LPI_SET_UNMAPPED) {
          msiCount(s, k, MS_HITS);
          if (r === LPI_SET_NEW && s.inspect[IN_ON] !== 0) probeMsi(s, slot);
          return r === LPI_SET_NEW ? MSI_DELIVERED : MSI_COALESCED;
        }
      }
    }
    // Unmapped since the lookup: translate again, under its_lock.
  }
  const lockAt = k * ITS_STRIDE + I_LOCK;
  lockWord(s, s.its, lockAt);
  s.its[k * ITS_STRIDE + I_CACHE_MISS]++;
  msiCount(s, k, MS_MISSES);
  if (tracing.on !== 0) traceEmit(EV_VGIC_ITS_CACHE_MISS, k, devid, eventid);
  let r = resolveLpiLocked(s, mem, k, devid, eventid);
  let out: number;
  if (r === RESOLVE_VIRTUAL) {
    // A vLPI (not cached: the translation cache holds physical LPIs only).
    const set = vlpiSetPendingLocked(s);
    if (set > 0) {
      unlockWord(s, s.its, lockAt);
      return set === 1 ? MSI_DELIVERED : MSI_COALESCED;
    }
    r = RESOLVE_BLOCKED;
  }
  if (r >= 0) {
    // A mapping found under its_lock is live: the LPI cannot be freed before the unlock.
    const set = global ? lpiSetPendingUnderIrqLock(s, r) : lpiSetPending(s, r);
    if (set === LPI_SET_NEW && s.inspect[IN_ON] !== 0) probeMsi(s, r);
    out = set === LPI_SET_NEW ? MSI_DELIVERED : MSI_COALESCED;
  } else {
    out = r === RESOLVE_BUSY ? MSI_BUSY : MSI_BLOCKED;
    s.its[k * ITS_STRIDE + (r === RESOLVE_BUSY ? I_MSI_BUSY : I_MSI_BLOCKED)]++;
    if (tracing.on !== 0)
      traceEmit(EV_GICV3_ITS_TRANSLATION_FAIL, k, devid, eventid, r === RESOLVE_BUSY ? 1 : 0);
  }
  unlockWord(s, s.its, lockAt);
  return out;
}
