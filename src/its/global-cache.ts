/**
 * The baseline translation cache: ONE LRU cache of (ITS, DeviceID, EventID) → LPI shared by every
 * ITS, behind ONE global lock, as Linux up to v6.8-rc1 had it (vgic-its.c: dist->lpi_translation_cache
 * under dist->lpi_list_lock; vgic_its_check_cache, vgic_its_cache_translation,
 * vgic_its_invalidate_cache). It exists so a benchmark can measure the per-ITS lock-free cache
 * (its/cache.ts, the default) against what it replaced, on the same machine. Chosen at creation
 * with translationCache: 'global-lru' (H_FLAGS bit FLAG_GLOBAL_LRU; GicState.globalLru).
 *
 * Layout (state/layout.ts, sections empty in the per-ITS design): 16 entries per vCPU (the kernel's
 * LPI_DEFAULT_PCPU_CACHE_SIZE × nr_vcpus), GCE_WORDS each: ITS index + 1 (0: empty), DeviceID << 16
 * | EventID, and the LPI's slot; and globalCacheOrder, the entry indices most recently used first
 * (the kernel's list). Every operation walks that order linearly, O(entries) as the kernel's list
 * walk: that cost, the global lock, and the cliff when the working set exceeds the cache by one
 * entry are what the benchmark shows. The empty entries always form the tail of the order (a fill
 * takes the last entry, a hit or a fill moves an entry to the head, an invalidation empties all), so
 * a walk stops at the first empty entry, as the kernel's does.
 *
 * Who may call: its/translate.ts (lookup on the MSI path, fill after a walk), its/cache.ts (the
 * invalidation hooks), device/setup.ts (reset). Lock: the global cache lock (GC_LOCK) guards every
 * word here; plain loads and stores under it. Lock order: its_lock → global cache lock → irq_lock;
 * a lookup takes the global lock alone and drops it before the LPI's irq_lock is taken.
 */

import { lockWord, unlockWord } from '../core/locks.ts';
import { GC_LOCK, GCE_ITS, GCE_KEY, GCE_SLOT, GCE_WORDS, type GicState } from '../state/layout.ts';

/**
 * The position in the MRU order of ITS k's (devid, eventid) entry, moved to the head (position 0)
 * if found; -1 if not cached. Caller holds the global cache lock.
 */
function findLocked(s: GicState, k: number, key: number): number {
  const e = s.globalCacheEntry;
  const order = s.globalCacheOrder;
  const tag = k + 1;
  const n = s.globalCacheSize;
  for (let i = 0; i < n; i++) {
    const x = order[i];
    const b = x * GCE_WORDS;
    const t = e[b + GCE_ITS];
    if (t === 0) return -1; // nothing after an empty entry
    if (t !== tag || e[b + GCE_KEY] !== key) continue;
    if (i > 0) {
      order.copyWithin(1, 0, i);
      order[0] = x;
    }
    return x;
  }
  return -1;
}

/**
 * vgic_its_check_cache: the slot ITS k translates (devid, eventid) to, or -1 on a miss. A hit
 * becomes the most recently used entry. Any thread; takes the global cache lock. devid and eventid
 * must be below 2^16.
 */
export function globalCacheLookup(s: GicState, k: number, devid: number, eventid: number): number {
  const meta = s.globalCacheMeta;
  lockWord(s, meta, GC_LOCK);
  const x = findLocked(s, k, (devid << 16) | eventid);
  const slot = x < 0 ? -1 : s.globalCacheEntry[x * GCE_WORDS + GCE_SLOT];
  unlockWord(s, meta, GC_LOCK);
  return slot;
}

/**
 * vgic_its_cache_translation: caches ITS k's translation (devid, eventid) → LPI `intid`, found by a
 * table walk. Already cached: it only becomes the most recently used. Otherwise it replaces the
 * least recently used entry and moves to the head. Returns 1 if that entry held a translation (an
 * eviction), 0 for a fill into an empty entry, -1 if it was cached already (no fill). Caller holds
 * ITS k's its_lock; takes the global cache lock.
 */
export function globalCacheFill(
  s: GicState,
  k: number,
  devid: number,
  eventid: number,
  intid: number,
): number {
  const meta = s.globalCacheMeta;
  lockWord(s, meta, GC_LOCK);
  const key = (devid << 16) | eventid;
  let out = -1;
  if (findLocked(s, k, key) < 0) {
    const order = s.globalCacheOrder;
    const last = s.globalCacheSize - 1;
    const x = order[last];
    const b = x * GCE_WORDS;
    const e = s.globalCacheEntry;
    out = e[b + GCE_ITS] !== 0 ? 1 : 0;
    e[b + GCE_ITS] = k + 1;
    e[b + GCE_KEY] = key;
    e[b + GCE_SLOT] = s.lpiSlot(intid);
    order.copyWithin(1, 0, last);
    order[0] = x;
  }
  unlockWord(s, meta, GC_LOCK);
  return out;
}

/**
 * vgic_its_invalidate_cache as v6.8-rc1 had it: global, so an invalidation by any ITS empties the
 * whole cache. Takes the global cache lock (callers may hold an its_lock).
 */
export function globalCacheInvalidate(s: GicState): void {
  const meta = s.globalCacheMeta;
  lockWord(s, meta, GC_LOCK);
  const e = s.globalCacheEntry;
  const order = s.globalCacheOrder;
  for (let i = 0; i < s.globalCacheSize; i++) {
    const b = order[i] * GCE_WORDS;
    if (e[b + GCE_ITS] === 0) break;
    e[b + GCE_ITS] = 0;
  }
  unlockWord(s, meta, GC_LOCK);
}

/** The reset state: every entry empty, the order 0..n-1 (device/setup.ts, on a fresh state). */
export function globalCacheReset(s: GicState): void {
  s.globalCacheMeta.fill(0);
  s.globalCacheEntry.fill(0);
  for (let i = 0; i < s.globalCacheSize; i++) s.globalCacheOrder[i] = i;
}

/** Why a snapshot's global cache could not have been saved by snapshot(), or undefined. */
export function globalCacheCheck(s: GicState): string | undefined {
  if (s.globalCacheSize === 0) return undefined;
  if (s.globalCacheMeta[GC_LOCK] !== 0) return 'the global translation-cache lock is held';
  const seen = new Uint8Array(s.globalCacheSize);
  let empty = false;
  for (let i = 0; i < s.globalCacheSize; i++) {
    const x = s.globalCacheOrder[i];
    if (!(x >= 0 && x < s.globalCacheSize) || seen[x]) return 'the global translation-cache order is broken';
    seen[x] = 1;
    const b = x * GCE_WORDS;
    const t = s.globalCacheEntry[b + GCE_ITS];
    if (t === 0) empty = true;
    else if (empty) return 'a global translation-cache entry follows an empty one';
    else if (t > s.nIts || t < 0 || (s.globalCacheEntry[b + GCE_SLOT] - s.lpiBase) >>> 0 >= s.nLpis) {
      return `global translation-cache entry ${x} is out of range`;
    }
  }
  return undefined;
}
