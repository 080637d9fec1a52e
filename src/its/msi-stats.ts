/**
 * Translation-cache statistics per ITS: hits, misses (table walks), fills and evictions, counted
 * where they happen (its/translate.ts, its/cache.ts, its/global-cache.ts) so the dump can show a
 * cache hit rate (KVM's debugfs has none; issue 16). Not architectural state: statistics.
 *
 * A hit takes no lock and writes no shared word (its/cache.ts), so a shared counter would put one
 * contended atomic increment on every MSI. Instead each thread counts in its own slot of
 * `msiStats` (state/layout.ts): a slot is claimed once, at the thread's first count, by writing the
 * thread's lock owner id into the slot's owner word (compare-exchange on a shared state), and from
 * then on only that thread stores to it — plain loads and stores, no atomics, and a slot per 64
 * bytes so threads do not share cache lines. Readers sum every slot. A thread that finds all slots
 * owned by other ids counts in the last slot, which is never claimed, with atomic adds.
 *
 * Counters are 64-bit as (low, high) word pairs: the writer carries into the high word when the low
 * one wraps; a reader re-reads the high word and retries if it moved. Exact up to 2^53.
 *
 * Who may call: its/ (counting, with or without its_lock), device/ (reading, snapshot folding).
 * Locks: none. Two threads that share one lock owner id (a misuse core/locks.ts refuses for locks)
 * share a slot and may lose counts: statistics only.
 */

import { lockOwnerId } from '../core/locks.ts';
import {
  type GicState,
  MS_EVICTIONS,
  MS_FILLS,
  MS_HEAD,
  MS_HITS,
  MS_ITS_WORDS,
  MS_MISSES,
  MS_OWNER,
  MSI_STAT_SLOTS,
} from '../state/layout.ts';

export { MS_EVICTIONS, MS_FILLS, MS_HITS, MS_MISSES };

/**
 * Claims this thread's slot: the first one that already carries its owner id (a thread attaching
 * twice) or that it wins from 0; else the shared last slot. Returns msiStatBase.
 */
function claim(s: GicState): number {
  const a = s.msiStats;
  const me = lockOwnerId();
  for (let i = 0; i < MSI_STAT_SLOTS - 1; i++) {
    const at = i * s.msiStatStride + MS_OWNER;
    if (s.shared ? Atomics.compareExchange(a, at, 0, me) === 0 : a[at] === 0) a[at] = me;
    if (a[at] === me) {
      s.msiStatBase = i * s.msiStatStride;
      return s.msiStatBase;
    }
  }
  s.msiStatBase = -2;
  return -2;
}

/** The slow half of msiCount: the first count of this thread, or the shared slot. */
function countSlow(s: GicState, k: number, what: number): void {
  let b = s.msiStatBase;
  if (b === -1) b = claim(s);
  if (b >= 0) {
    msiCount(s, k, what);
    return;
  }
  const a = s.msiStats;
  const i = (MSI_STAT_SLOTS - 1) * s.msiStatStride + MS_HEAD + k * MS_ITS_WORDS + what;
  if (!s.shared) {
    if (++a[i] === 0) a[i + 1]++;
  } else if (Atomics.add(a, i, 1) === 0xffffffff) Atomics.add(a, i + 1, 1);
}

/**
 * Counts one `what` (MS_HITS, MS_MISSES, MS_FILLS, MS_EVICTIONS) for ITS `k` in this thread's
 * slot. On the MSI fast path: one field load, a branch, a load and a store.
 */
export function msiCount(s: GicState, k: number, what: number): void {
  const b = s.msiStatBase;
  if (b < 0) {
    countSlow(s, k, what);
    return;
  }
  const a = s.msiStats;
  const i = b + MS_HEAD + k * MS_ITS_WORDS + what;
  const v = a[i] + 1;
  a[i] = v;
  if (v > 0xffffffff) a[i + 1]++;
}

/** One 64-bit counter of a slot: high word re-read until stable (the writer may be carrying). */
function read64(a: Uint32Array, i: number): number {
  for (;;) {
    const hi = a[i + 1];
    const lo = a[i];
    if (a[i + 1] === hi) return hi * 2 ** 32 + lo;
  }
}

/** Translation-cache statistics of one ITS, summed over every thread's slot. */
export interface TranslationCacheStats {
  /** MSIs translated by the cache without a table walk. */
  readonly hits: number;
  /** Translations that walked the tables under its_lock (the ITS's cacheMisses counts the same). */
  readonly misses: number;
  /** Translations a walk put in the cache. */
  readonly fills: number;
  /** Fills that replaced another live translation. */
  readonly evictions: number;
  /** hits / (hits + misses), or null before the first translation. */
  readonly hitRate: number | null;
}

/** ITS k's statistics, summed over every slot. Any thread, no lock: a sample. */
export function msiStatsOf(s: GicState, k: number): TranslationCacheStats {
  const a = s.msiStats;
  let hits = 0;
  let misses = 0;
  let fills = 0;
  let evictions = 0;
  for (let slot = 0; slot < MSI_STAT_SLOTS; slot++) {
    const i = slot * s.msiStatStride + MS_HEAD + k * MS_ITS_WORDS;
    hits += read64(a, i + MS_HITS);
    misses += read64(a, i + MS_MISSES);
    fills += read64(a, i + MS_FILLS);
    evictions += read64(a, i + MS_EVICTIONS);
  }
  const n = hits + misses;
  return { hits, misses, fills, evictions, hitRate: n > 0 ? hits / n : null };
}

/**
 * A snapshot's statistics (on the copy, no thread writes it): every slot's counters summed into the
 * last, unowned slot and the rest cleared, so a restored GIC goes on from the totals and its
 * threads claim fresh slots (the saved owner ids name threads of another process).
 */
export function msiStatsFold(s: GicState): void {
  if (s.nIts === 0) return;
  const sums = Array.from({ length: s.nIts }, (_, k) => msiStatsOf(s, k));
  s.msiStats.fill(0);
  const base = (MSI_STAT_SLOTS - 1) * s.msiStatStride + MS_HEAD;
  sums.forEach((st, k) => {
    const i = base + k * MS_ITS_WORDS;
    for (const [what, n] of [
      [MS_HITS, st.hits],
      [MS_MISSES, st.misses],
      [MS_FILLS, st.fills],
      [MS_EVICTIONS, st.evictions],
    ] as const) {
      s.msiStats[i + what] = n % 2 ** 32;
      s.msiStats[i + what + 1] = Math.floor(n / 2 ** 32);
    }
  });
}

/**
 * Why a restored state's statistics could not have come from msiStatsFold, or undefined. Counter
 * values are not checked: no code depends on them (a forged value misreports a hit rate, nothing
 * more).
 */
export function msiStatsCheck(s: GicState): string | undefined {
  const a = s.msiStats;
  const stride = s.msiStatStride;
  for (let slot = 0; slot < MSI_STAT_SLOTS; slot++) {
    const b = slot * stride;
    const last = slot === MSI_STAT_SLOTS - 1;
    for (let w = 0; w < stride; w++) {
      const used = w >= MS_HEAD && w < MS_HEAD + s.nIts * MS_ITS_WORDS;
      if (a[b + w] !== 0 && !(last && used))
        return `translation-cache statistics slot ${slot} word ${w} is not 0 (a snapshot folds them into the last slot)`;
    }
  }
  return undefined;
}
