/**
 * The per-ITS translation cache: (DeviceID, EventID) → LPI, in front of the table walk
 * (seeds 000/001: KVM's per-ITS cache since 6.10, read under RCU without a lock).
 *
 * Layout: itsCacheSize entries per ITS (a power of two fixed at creation: bounded memory), two
 * Int32 words each, in the state buffer so every thread sees one cache:
 *
 *   word 0: key   = DeviceID << 16 | EventID          (both 16-bit: GITS_TYPER.Devbits/IDbits)
 *   word 1: value = generation << 16 | (INTID - 8192)  (0: empty; generations run 1..32767)
 *
 * Placement is direct-mapped: an entry's index is a hash of the key, and a new translation
 * replaces whatever sits at its index (documented eviction: no LRU list to maintain, so neither a
 * fill nor an eviction costs more than three stores, and there is no cliff when the working set
 * exceeds the cache by one, which is what cost KVM's old LRU 4911x in seed 001's measurements).
 * One device's events never collide with each other while they fit.
 *
 * Invalidation bumps the ITS's generation (one store invalidates every entry). On wrap-around the
 * values are cleared before generation 1 is used again, so a stale entry can never come back. A
 * cleared value (0) must match no generation a reader can hold, so 0 is never published: while
 * the values are cleared the generation is GEN_NONE, which no value can carry (they hold 15 bits
 * of it). A reader that read 0 mid-wrap would have matched every cleared entry whose key was
 * left behind, and delivered LPI 8192 instead of its own translation.
 *
 * Readers take no lock: they load value, key, value again, and accept only if the value carries
 * the current generation and did not change across the key load. Writers hold the ITS's its_lock,
 * store value = 0 first and the new value last, so a reader sees either the old pair, the new
 * pair, or a mismatch (a miss, and the slow path takes the lock). A translation read just before
 * an invalidating command completes is linearised before that command, as in KVM.
 *
 * The invalidation hooks below also empty the baseline's global cache when that design is in use
 * (its/global-cache.ts: v6.8-rc1 invalidated its one cache on any ITS's invalidation).
 */

import { VGIC_MIN_LPI } from '../arch/intid.ts';
import { lockWord, unlockWord } from '../core/locks.ts';
import { type GicState, I_CACHE_GEN, I_LOCK, ITS_STRIDE } from '../state/layout.ts';
import { globalCacheInvalidate } from './global-cache.ts';

const GEN_MAX = 0x7fff;
/** Published while a wrap clears the values: a hit needs value >>> 16 === generation, never true. */
const GEN_NONE = 0x10000;

/** Index of a key's entry (before the ITS's offset). */
function cacheIndex(devid: number, eventid: number, mask: number): number {
  return ((Math.imul(devid, 0x9e3779b1) >>> 16) ^ eventid) & mask;
}

/**
 * Looks up (devid, eventid) in ITS `k`'s cache. Returns the LPI's slot, or -1 on a miss.
 * Any thread, no lock. devid and eventid must be below 2^16.
 */
export function cacheLookup(s: GicState, k: number, devid: number, eventid: number): number {
  const c = s.itsCache;
  const e = (k * s.itsCacheSize + cacheIndex(devid, eventid, s.itsCacheMask)) * 2;
  const key = (devid << 16) | eventid;
  if (s.shared) {
    const gen = Atomics.load(s.its, k * ITS_STRIDE + I_CACHE_GEN);
    const v1 = Atomics.load(c, e + 1);
    if (v1 >>> 16 !== gen || Atomics.load(c, e) !== key || Atomics.load(c, e + 1) !== v1) return -1;
    return s.lpiBase + (v1 & 0xffff);
  }
  const v1 = c[e + 1];
  if (v1 >>> 16 !== s.its[k * ITS_STRIDE + I_CACHE_GEN] || c[e] !== key) return -1;
  return s.lpiBase + (v1 & 0xffff);
}

/** The generation a table walk must read before it starts, to fill with (cacheFillLocked). */
export function cacheGeneration(s: GicState, k: number): number {
  return s.shared ? Atomics.load(s.its, k * ITS_STRIDE + I_CACHE_GEN) : s.its[k * ITS_STRIDE + I_CACHE_GEN];
}

/**
 * Stores a translation found by a walk that started at generation `gen` (an invalidation since
 * then makes the entry dead on arrival, which is what it should be). Returns 1 if it replaced
 * another live translation (an eviction), else 0. Caller holds ITS k's its_lock.
 */
export function cacheFillLocked(
  s: GicState,
  k: number,
  devid: number,
  eventid: number,
  intid: number,
  gen: number,
): number {
  const c = s.itsCache;
  const e = (k * s.itsCacheSize + cacheIndex(devid, eventid, s.itsCacheMask)) * 2;
  const value = (gen << 16) | (intid - VGIC_MIN_LPI);
  const key = (devid << 16) | eventid;
  // Live: carries the current generation (its_lock is held: no invalidation runs meanwhile).
  const old = c[e + 1];
  const evicted = old !== 0 && old >>> 16 === s.its[k * ITS_STRIDE + I_CACHE_GEN] && c[e] !== key ? 1 : 0;
  if (s.shared) {
    Atomics.store(c, e + 1, 0);
    Atomics.store(c, e, key);
    Atomics.store(c, e + 1, value);
  } else {
    c[e] = key;
    c[e + 1] = value;
  }
  return evicted;
}

/** vgic_its_invalidate_cache with ITS k's its_lock held (and the global cache, if in use). */
export function cacheInvalidateLocked(s: GicState, k: number): void {
  if (s.globalLru) globalCacheInvalidate(s);
  const g = k * ITS_STRIDE + I_CACHE_GEN;
  let next = s.its[g] + 1;
  if (next > GEN_MAX) {
    // Fills wait on the its_lock; lookups miss until generation 1 is published below.
    if (s.shared) Atomics.store(s.its, g, GEN_NONE);
    else s.its[g] = GEN_NONE;
    const from = k * s.itsCacheSize * 2;
    for (let e = from + 1; e < from + s.itsCacheSize * 2; e += 2) s.itsCache[e] = 0;
    next = 1;
  }
  if (s.shared) Atomics.store(s.its, g, next);
  else s.its[g] = next;
}

/** vgic_its_invalidate_cache from a context that holds no ITS lock (GITS_CTLR, GICR_CTLR). */
export function cacheInvalidate(s: GicState, k: number): void {
  lockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
  cacheInvalidateLocked(s, k);
  unlockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
}

/** vgic_its_invalidate_all_caches (EnableLPIs cleared on any redistributor). */
export function cacheInvalidateAll(s: GicState): void {
  for (let k = 0; k < s.nIts; k++) cacheInvalidate(s, k);
}
