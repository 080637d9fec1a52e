/**
 * `vgic guest-bench`: the guest benchmarks (guest/progs/bench_sgi.c, bench_lpi.c) on QEMU 7.2 and
 * on vgic's machine in one run, trials alternating between the two, each figure timed by the guest
 * itself with CNTVCT (host time on both). Reports the median and the spread per machine, and the
 * issue's targets: vgic ≥ 5× QEMU on LPIs (GITS_TRANSLATER write → ack → EOI), ≥ QEMU on SGIs.
 *
 * Who may call: the CLI, on the main thread.
 */

import { join } from 'node:path';
import { summarize } from '../util/stats.ts';
import { benchValues, buildGuests, checkTools, readManifest, runOnQemu, runOnVgic } from './conformance.ts';

export interface GuestBenchRow {
  readonly name: string;
  readonly qemu: { readonly median: number; readonly min: number; readonly max: number };
  readonly vgic: { readonly median: number; readonly min: number; readonly max: number };
  /** QEMU's ns per operation over vgic's: how many times faster vgic is. */
  readonly speedup: number;
  /** The target for this row as a minimum speed-up, when it has one. */
  readonly target?: number;
}

/** Targets: LPIs by GITS_TRANSLATER ≥ 5× QEMU; SGI self round trips ≥ QEMU. */
export const GUEST_BENCH_TARGETS: Readonly<Record<string, number>> = {
  lpi_translater: 5,
  sgi_self_poll: 1,
  sgi_self_irq: 1,
};

function stats(xs: number[]) {
  const { median, min, max } = summarize(xs);
  return { median, min, max };
}

export async function runGuestBench(trials = 3, progress?: (line: string) => void): Promise<GuestBenchRow[]> {
  checkTools();
  const dir = buildGuests();
  const programs = readManifest().filter((p) => p.kind === 'bench');
  const q: Record<string, number[]> = {};
  const v: Record<string, number[]> = {};
  for (let t = 0; t < trials; t++) {
    for (const p of programs) {
      const elf = join(dir, `${p.name}.elf`);
      // Alternating, never concurrent: on 2 cores the two would slow each other.
      for (const [side, run, into] of [
        ['qemu', runOnQemu, q],
        ['vgic', runOnVgic, v],
      ] as const) {
        const r = await run(elf, p);
        if (r.status !== 0)
          throw new Error(`${p.name} failed on ${side} (status ${r.status}):\n${r.transcript}`);
        for (const [name, ns] of Object.entries(benchValues(r.transcript))) {
          into[name] ??= [];
          into[name].push(ns);
        }
        progress?.(`trial ${t + 1}/${trials} ${p.name} on ${side} done`);
      }
    }
  }
  return Object.keys(q)
    .filter((name) => v[name] !== undefined)
    .map((name) => {
      const qs = stats(q[name]);
      const vs = stats(v[name]);
      return { name, qemu: qs, vgic: vs, speedup: qs.median / vs.median, target: GUEST_BENCH_TARGETS[name] };
    });
}

export function formatGuestBench(rows: readonly GuestBenchRow[]): string {
  const out = [
    'ns per operation, median (min..max); speed-up = QEMU / vgic',
    'benchmark          QEMU 7.2 TCG               vgic machine             speed-up  target',
    '--------------------------------------------------------------------------------------',
  ];
  const cell = (s: GuestBenchRow['qemu']) => `${s.median} (${s.min}..${s.max})`.padEnd(25);
  for (const r of rows) {
    const target = r.target === undefined ? '' : `≥${r.target}× ${r.speedup >= r.target ? 'met' : 'NOT met'}`;
    out.push(
      `${r.name.padEnd(18)} ${cell(r.qemu)} ${cell(r.vgic)} ${r.speedup.toFixed(2).padStart(7)}×  ${target}`,
    );
  }
  return out.join('\n');
}
