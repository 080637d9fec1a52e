/**
 * `vgic dirty-log-bench`: the cost the dirty log adds to a guest-memory write (memory/
 * guest-memory.ts), side by side in one run: logging off and on, for sequential 8-byte entries
 * (a table save: one page dirtied, then found set) and for one write per 4K page with the log
 * read and cleared after every pass over the region (every write sets a new bit: the atomic OR).
 *
 * Who may call: the CLI and tests.
 */

import { GuestMemory } from '../memory/guest-memory.ts';

export interface DirtyLogBenchRow {
  readonly pattern: 'sequential' | 'page-stride';
  readonly logging: boolean;
  /** ns per writeWords, median and spread over the trials (the first, a warm-up, dropped). */
  readonly ns: number;
  readonly minNs: number;
  readonly maxNs: number;
}

const BASE = 0x40000000;
const SIZE = 16 << 20;

function pass(m: GuestMemory, pattern: DirtyLogBenchRow['pattern'], n: number, clear: boolean): number {
  const pages = SIZE / 4096;
  const t0 = performance.now();
  if (pattern === 'sequential') {
    for (let i = 0; i < n; i++) m.writeWords(BASE + ((i * 8) & (SIZE - 8)), i, i);
  } else {
    for (let i = 0; i < n; i++) {
      m.writeWords(BASE + (i % pages) * 4096, i, i);
      if (clear && i % pages === pages - 1) m.getDirtyLog(BASE);
    }
  }
  return ((performance.now() - t0) * 1e6) / n;
}

export function runDirtyLogBench(o: { writes?: number; trials?: number } = {}): DirtyLogBenchRow[] {
  const n = o.writes ?? 2_000_000;
  const trials = Math.max(2, o.trials ?? 11);
  const cases = (['sequential', 'page-stride'] as const).flatMap((pattern) =>
    [false, true].map((logging) => {
      const m = new GuestMemory();
      m.addRam(BASE, SIZE);
      if (logging) m.setDirtyLogging(BASE, true);
      return { pattern, logging, m, times: [] as number[] };
    }),
  );
  // Trials interleave the cases, so each sees the same background load.
  for (let t = 0; t < trials; t++) for (const c of cases) c.times.push(pass(c.m, c.pattern, n, c.logging));
  return cases.map((c) => {
    const s = c.times.slice(1).sort((a, b) => a - b);
    return {
      pattern: c.pattern,
      logging: c.logging,
      ns: s[s.length >> 1],
      minNs: s[0],
      maxNs: s[s.length - 1],
    };
  });
}

export function formatDirtyLogBench(rows: readonly DirtyLogBenchRow[]): string {
  return rows
    .map(
      (r) =>
        `${r.pattern.padEnd(12)} logging ${r.logging ? 'on ' : 'off'}  ${r.ns.toFixed(1)} ns/write (${r.minNs.toFixed(1)}..${r.maxNs.toFixed(1)})`,
    )
    .join('\n');
}
