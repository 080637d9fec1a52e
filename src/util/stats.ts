/**
 * Summary statistics for every benchmark (micro-bench, lpi-bench, lpi-stress, guest-bench,
 * linux-bench), so that a median or a spread means the same thing in every table and JSON file:
 *
 * - median: the middle value of the sorted sample; for an even count, the mean of the two middle
 *   values;
 * - percentile p (0..100): nearest rank, the smallest value with at least p % of the sample at or
 *   below it (`sorted[ceil(p/100 · n) − 1]`; p = 0 is the minimum);
 * - spread: (max − min) / median, the sample's range relative to its median.
 *
 * Pure functions over numbers; any layer may call them. An empty sample gives NaN, never throws.
 */

/** The sample sorted ascending (a copy). */
export function sorted(xs: ArrayLike<number>): Float64Array {
  return Float64Array.from(xs).sort();
}

/** The median: the middle value; for an even count, the mean of the two middle ones. */
export function median(xs: ArrayLike<number>): number {
  const s = sorted(xs);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const m = n >> 1;
  return n % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The nearest-rank p-th percentile (p in 0..100) of a sample sorted ascending. */
export function percentileSorted(s: ArrayLike<number>, p: number): number {
  const n = s.length;
  if (n === 0 || !(p >= 0 && p <= 100)) return Number.NaN;
  return s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
}

/** The nearest-rank p-th percentile (p in 0..100). */
export function percentile(xs: ArrayLike<number>, p: number): number {
  return percentileSorted(sorted(xs), p);
}

/** A sample summarised: count, median, min, max and spread ((max − min) / median). */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly spread: number;
}

export function summarize(xs: ArrayLike<number>): Summary {
  const s = sorted(xs);
  const n = s.length;
  if (n === 0) return { n, median: Number.NaN, min: Number.NaN, max: Number.NaN, spread: Number.NaN };
  const m = n >> 1;
  const med = n % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  return { n, median: med, min: s[0], max: s[n - 1], spread: med === 0 ? 0 : (s[n - 1] - s[0]) / med };
}
