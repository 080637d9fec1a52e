/**
 * `vgic lpi-stress`: vgic_lpi_stress's command line (-v vCPUs, -d devices, -e events per device,
 * -i iterations), `--seed-table` (the five configurations of seed 000's table, beside KVM's
 * figures), `--design` (per-its, global-lock, or both side by side) and `--irqfd` (each run also
 * with injectors signalling irqfds instead of calling injectMsi, side by side). Progress goes to stderr
 * when it is a terminal; `--json FILE` writes every run with the machine description.
 *
 * Who may call: cli/main.ts.
 */

import { parseArgs } from 'node:util';
import {
  type LpiStressConfig,
  type LpiStressDesign,
  type LpiStressInjection,
  type LpiStressResult,
  runLpiStress,
} from '../bench/lpi-stress.ts';
import type { Vgic } from '../device/vgic.ts';
import { median } from '../util/stats.ts';
import { startInspector } from './inspect-server.ts';

export const LPI_STRESS_USAGE = `  lpi-stress           KVM's vgic_lpi_stress on worker threads: injector threads send MSIs while
                       vCPU threads acknowledge them; prints "Rate: N LPIs/sec" (MSIs submitted),
                       "Handled: N LPIs/sec" (acknowledged by the guests over the same interval)
                       and the coalesced fraction, and proves none lost
      -v N             vCPUs (default 1)
      -d N             devices, one injector each (default 1)
      -e N             events per device (default 16)
      -i N             iterations: each injector sends i × e MSIs (default 1000)
      --design D       per-its (default), global-lock (v6.8-rc1's shape: one lock, one LRU
                       cache of 16 × vCPUs entries), direct (per-its + GICv4.1 direct injection:
                       every event forwarded to a vLPI), both (global-lock, per-its) or all
      --irqfd          also run each configuration with irqfds (injectors signal KVM_IRQFD-like
                       events on MSI routes; the vCPU threads consume them), side by side
      --seed-table     the five configurations of the seed's table, beside KVM's figures
                       (all three designs unless --design says otherwise)
      --seconds S      time-based: injectors go on in whole rounds until S seconds have passed
                       (default 0: exactly i iterations; seed table 1)
      --scale F        multiply the iterations by F (e.g. 0.1 for a quick look)
      --trials N       runs per configuration, median reported (default 1; seed table 3)
      --vcpu-threads N, --injector-threads N   worker threads (default: half the cores each)
      --json FILE      also write the results as JSON (e.g. bench/results/lpi-stress.json)
      --inspect PORT   the inspector page on http://127.0.0.1:PORT/ for each run's GIC (read from
                       the shared state while the worker threads run; rates that come from trace
                       events, which fire on the workers, stay empty)`;

/** Seed 000's table: KVM v6.8-rc1 vs v6.8-rc1 + the per-ITS cache series (LPIs/s). */
export const SEED_TABLE: readonly (LpiStressConfig & { readonly before: number; readonly after: number })[] =
  [
    { vcpus: 1, devices: 1, events: 1, iterations: 1000000, before: 2063296.81, after: 1362602.35 },
    { vcpus: 16, devices: 16, events: 16, iterations: 10000, before: 610678.33, after: 5200910.01 },
    { vcpus: 16, devices: 16, events: 17, iterations: 10000, before: 678361.53, after: 5890675.51 },
    { vcpus: 32, devices: 32, events: 1, iterations: 100000, before: 580918.96, after: 8304552.67 },
    { vcpus: 1, devices: 1, events: 17, iterations: 1000, before: 1512443.94, after: 1425953.8 },
  ];

export interface LpiStressRow {
  readonly config: LpiStressConfig;
  readonly design: LpiStressDesign;
  readonly injection: LpiStressInjection;
  /** Median, min and max rate over the trials (MSIs, or irqfd signals, submitted/s). */
  readonly rate: number;
  readonly minRate: number;
  readonly maxRate: number;
  /** Median, min and max LPIs acknowledged by the guests per second over the trials. */
  readonly handled: number;
  readonly minHandled: number;
  readonly maxHandled: number;
  /** Median over the trials of the timed MSIs that merged into a pending LPI (0..1). */
  readonly coalescedFraction: number;
  readonly trials: readonly LpiStressResult[];
  readonly kvm?: { readonly before: number; readonly after: number };
}

const flag = (c: LpiStressConfig) => `-v ${c.vcpus} -d ${c.devices} -e ${c.events} -i ${c.iterations}`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (f: number) => `${(f * 100).toFixed(1)}%`;
/** M/s with two decimals: the table's cells hold two figures each. */
const mega = (n: number) => (n / 1e6).toFixed(2);

/** The inspector on one run's GIC, on the same port each run (the page reconnects). */
async function inspectRun(gic: Vgic, port: number): Promise<() => Promise<void>> {
  const inspector = await startInspector(gic, { port });
  process.stderr.write(`vgic lpi-stress: inspector on ${inspector.url}\n`);
  return () => inspector.close();
}

export interface LpiStressCliResult {
  readonly text: string;
  readonly rows: LpiStressRow[];
  /** True when some run lost an MSI or an injection failed. */
  readonly failed: boolean;
}

/** Parses the lpi-stress arguments; throws TypeError with a message on misuse. */
export function parseLpiStressArgs(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      v: { type: 'string', short: 'v' },
      d: { type: 'string', short: 'd' },
      e: { type: 'string', short: 'e' },
      i: { type: 'string', short: 'i' },
      design: { type: 'string' },
      'seed-table': { type: 'boolean' },
      irqfd: { type: 'boolean' },
      scale: { type: 'string' },
      seconds: { type: 'string' },
      trials: { type: 'string' },
      'vcpu-threads': { type: 'string' },
      'injector-threads': { type: 'string' },
      json: { type: 'string' },
      inspect: { type: 'string' },
    },
    strict: true,
  });
  // Every count here is at least 1 (a run of nothing would print a rate of nothing).
  const int = (v: string | undefined, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < 1)
      throw new TypeError(`${name} takes a whole number >= 1, got '${v}'`);
    return Number(v);
  };
  const design = values.design ?? (values['seed-table'] ? 'all' : 'per-its');
  if (
    design !== 'per-its' &&
    design !== 'global-lock' &&
    design !== 'direct' &&
    design !== 'both' &&
    design !== 'all'
  ) {
    throw new TypeError(`--design takes per-its, global-lock, direct, both or all, got '${design}'`);
  }
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!(scale > 0 && scale <= 100))
    throw new TypeError(`--scale takes a number in (0, 100], got '${values.scale}'`);
  const seedTable = values['seed-table'] ?? false;
  const seconds = values.seconds === undefined ? (seedTable ? 1 : 0) : Number(values.seconds);
  if (!(seconds >= 0 && seconds <= 3600))
    throw new TypeError(`--seconds takes a number in [0, 3600], got '${values.seconds}'`);
  return {
    minMs: Math.round(seconds * 1000),
    config: {
      vcpus: int(values.v, '-v', 1),
      devices: int(values.d, '-d', 1),
      events: int(values.e, '-e', 16),
      iterations: int(values.i, '-i', 1000),
    },
    designs: (design === 'both'
      ? ['global-lock', 'per-its']
      : design === 'all'
        ? ['global-lock', 'per-its', 'direct']
        : [design]) as LpiStressDesign[],
    seedTable,
    injections: (values.irqfd ? ['msi', 'irqfd'] : ['msi']) as LpiStressInjection[],
    scale,
    trials: int(values.trials, '--trials', seedTable ? 3 : 1),
    vcpuThreads:
      values['vcpu-threads'] === undefined ? undefined : int(values['vcpu-threads'], '--vcpu-threads', 1),
    injectorThreads:
      values['injector-threads'] === undefined
        ? undefined
        : int(values['injector-threads'], '--injector-threads', 1),
    json: values.json,
    inspect: values.inspect === undefined ? undefined : int(values.inspect, '--inspect', 0),
  };
}

export async function runLpiStressCli(
  args: string[],
  progress: (line: string) => void = () => {},
): Promise<LpiStressCliResult> {
  const o = parseLpiStressArgs(args);
  const configs = o.seedTable ? SEED_TABLE : [{ ...o.config }];
  const rows: LpiStressRow[] = [];
  const total = configs.length * o.designs.length * o.injections.length * o.trials;
  let done = 0;
  for (const c of configs) {
    const config: LpiStressConfig = {
      vcpus: c.vcpus,
      devices: c.devices,
      events: c.events,
      iterations: Math.max(1, Math.round(c.iterations * o.scale)),
    };
    for (const design of o.designs) {
      // Trials interleave the injection paths, so both see the same background load.
      const byPath = o.injections.map(() => [] as LpiStressResult[]);
      for (let t = 0; t < o.trials; t++) {
        for (let k = 0; k < o.injections.length; k++) {
          const injection = o.injections[k];
          const trials = byPath[k];
          progress(
            `[${++done}/${total}] ${flag(config)} --design=${design}${injection === 'irqfd' ? ' --irqfd' : ''} trial ${t + 1}/${o.trials}`,
          );
          trials.push(
            await runLpiStress({
              ...config,
              design,
              injection,
              minMs: o.minMs,
              ...(o.vcpuThreads !== undefined ? { vcpuThreads: o.vcpuThreads } : {}),
              ...(o.injectorThreads !== undefined ? { injectorThreads: o.injectorThreads } : {}),
              ...(o.inspect !== undefined
                ? { onGic: (gic: Vgic) => inspectRun(gic, o.inspect as number) }
                : {}),
            }),
          );
        }
      }
      for (let k = 0; k < o.injections.length; k++) {
        const trials = byPath[k];
        const rates = trials.map((r) => r.rate);
        const handled = trials.map((r) => r.handled);
        rows.push({
          config,
          design,
          injection: o.injections[k],
          rate: median(rates),
          minRate: Math.min(...rates),
          maxRate: Math.max(...rates),
          handled: median(handled),
          minHandled: Math.min(...handled),
          maxHandled: Math.max(...handled),
          coalescedFraction: median(trials.map((r) => r.coalescedFraction)),
          trials,
          ...('before' in c ? { kvm: { before: c.before, after: c.after } } : {}),
        });
      }
    }
  }
  const failed = rows.some((r) => r.trials.some((t) => t.lost !== 0 || t.failed !== 0 || t.badIntids !== 0));
  return {
    text: o.seedTable && o.injections.length === 1 ? formatSeedTable(rows, o.designs) : formatRuns(rows),
    rows,
    failed,
  };
}

function formatRuns(rows: LpiStressRow[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const t = r.trials[0];
    if (rows.length > 1 || r.trials.length > 1) {
      out.push(`${flag(r.config)} --design=${r.design}${r.injection === 'irqfd' ? ' --irqfd' : ''}`);
    }
    const many = r.trials.length > 1;
    out.push(
      `Rate: ${r.rate.toFixed(2)} LPIs/sec${many ? ` (median of ${r.trials.length}; ${fmt(r.minRate)}..${fmt(r.maxRate)})` : ''}`,
      `Handled: ${r.handled.toFixed(2)} LPIs/sec${many ? ` (median of ${r.trials.length}; ${fmt(r.minHandled)}..${fmt(r.maxHandled)})` : ''}`,
      r.injection === 'irqfd'
        ? `Coalesced: ${pct(r.coalescedFraction)} of the signals (warm-up included) made no new pending LPI`
        : `Coalesced: ${pct(r.coalescedFraction)} of the timed MSIs merged into an LPI already pending`,
    );
    for (const x of r.trials.length > 1 ? [] : [t]) {
      out.push(
        `  injected ${fmt(x.injected)} (+${fmt(x.warmup)} warm-up) in ${x.elapsedMs.toFixed(1)} ms on ${x.injectorThreads} injector / ${x.vcpuThreads} vCPU threads`,
        ...(x.injection === 'irqfd'
          ? [
              `  irqfd: ${fmt(x.injected + x.warmup)} signals sent, consumed as ${fmt(x.injections)} MSI injections (eventfd coalescing)`,
            ]
          : []),
        `  answers: delivered ${fmt(x.delivered)}, coalesced ${fmt(x.coalesced)}, failed ${fmt(x.failed)}`,
        `  delivered = acknowledged ${fmt(x.acknowledged)} + merged at fold ${fmt(x.mergedAtFold)} + drained ${fmt(x.drained)} + dropped ${fmt(x.dropped)}; lost ${x.lost}`,
      );
    }
  }
  return out.join('\n');
}

function formatSeedTable(rows: LpiStressRow[], designs: readonly LpiStressDesign[]): string {
  const head = ['Configuration', 'KVM v6.8-rc1', 'KVM +series'];
  for (const d of designs) head.push(`${d} Rate`, `${d} Handled`, `${d} coalesced`);
  const lines: string[][] = [head];
  for (let i = 0; i < rows.length; i += designs.length) {
    const group = rows.slice(i, i + designs.length);
    const r0 = group[0];
    const line = [flag(r0.config), r0.kvm ? mega(r0.kvm.before) : '', r0.kvm ? mega(r0.kvm.after) : ''];
    for (const r of group) {
      line.push(
        `${mega(r.rate)} (${mega(r.minRate)}..${mega(r.maxRate)})`,
        `${mega(r.handled)} (${mega(r.minHandled)}..${mega(r.maxHandled)})`,
        pct(r.coalescedFraction),
      );
    }
    lines.push(line);
  }
  const widths = head.map((_, j) => Math.max(...lines.map((l) => l[j].length)));
  const row = (l: string[]) => `| ${l.map((c, j) => c.padEnd(widths[j])).join(' | ')} |`;
  const lost = rows.reduce((a, r) => a + r.trials.reduce((b, t) => b + Math.abs(t.lost) + t.failed, 0), 0);
  return [
    row(lines[0]),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...lines.slice(1).map(row),
    '',
    `M LPIs/s, median (min..max) of ${rows[0].trials.length} runs. Rate: MSIs submitted per second (KVM's columns are this measure);`,
    'Handled: LPIs the guests acknowledged per second over the same interval; coalesced: timed MSIs that',
    `merged into an LPI already pending. MSIs lost or failed over all runs: ${lost}.`,
  ].join('\n');
}
