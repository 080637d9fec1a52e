/**
 * `vgic linux-bench`: Debian's kernel with the same busybox initramfs on QEMU 7.2 TCG and on vgic's
 * machine, alternating in one run (the host's noise hits both), timed from each process's console
 * by one clock (machine/linux-bench.ts): host seconds from start to `Run /init`, to the first
 * userspace line and to power-off, plus two workloads inside the guest, timed by the host between
 * the marker lines the guest prints (a 20,000-iteration shell loop, 50 fork/exec of /bin/true).
 * Both run as child processes (`vgic linux --script`), so process start-up counts on both sides.
 *
 * Who calls: src/cli/main.ts. Needs qemu-system-aarch64, the CPU addon and the cached assets.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LINUX_BASE_APPEND } from '../cli/linux.ts';
import { buildLinuxInitramfs } from '../machine/initramfs.ts';
import { ensureLinuxAssets } from '../machine/linux-assets.ts';
import {
  type BootTiming,
  LINUX_MILESTONES,
  type Milestone,
  POWER_OFF,
  qemuLinuxCommand,
  timeCommand,
} from '../machine/linux-bench.ts';
import { summarize } from '../util/stats.ts';

/** What the guest runs: markers around each workload, then power-off. */
export const LINUX_BENCH_SCRIPT = [
  'echo BENCH-LOOP-START',
  'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done',
  'echo BENCH-LOOP-END',
  'echo BENCH-FORK-START',
  'for j in $(seq 50); do /bin/true; done',
  'echo BENCH-FORK-END',
].join('\n');

const MARKS: readonly Milestone[] = [
  ...LINUX_MILESTONES,
  { name: 'loop-start', pattern: /^BENCH-LOOP-START$/ },
  { name: 'loop-end', pattern: /^BENCH-LOOP-END$/ },
  { name: 'fork-start', pattern: /^BENCH-FORK-START$/ },
  { name: 'fork-end', pattern: /^BENCH-FORK-END$/ },
];

/** The figures of one boot, host ms (NaN when not reached). */
export interface LinuxBootFigures {
  readonly runInit: number;
  readonly userspace: number;
  readonly powerOff: number;
  readonly shellLoop: number;
  readonly forkExec: number;
}

export const FIGURES: readonly (keyof LinuxBootFigures)[] = [
  'runInit',
  'userspace',
  'powerOff',
  'shellLoop',
  'forkExec',
];

function figures(t: BootTiming): LinuxBootFigures {
  const m = (k: string) => t.milestones[k] ?? Number.NaN;
  return {
    runInit: m('run-init'),
    userspace: m('userspace'),
    powerOff: m(POWER_OFF),
    shellLoop: m('loop-end') - m('loop-start'),
    forkExec: m('fork-end') - m('fork-start'),
  };
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function spread(xs: number[]): Spread {
  const { median, min, max } = summarize(xs.filter((x) => Number.isFinite(x)));
  return { median, min, max };
}

export interface LinuxBenchRow {
  readonly smp: number;
  readonly figure: keyof LinuxBootFigures;
  readonly qemu: Spread;
  readonly vgic: Spread;
}

export interface LinuxBenchResult {
  readonly kernel: string;
  readonly trials: number;
  readonly rows: readonly LinuxBenchRow[];
  readonly runs: {
    readonly machine: 'qemu' | 'vgic';
    readonly smp: number;
    readonly figures: LinuxBootFigures;
  }[];
}

export interface LinuxBenchOptions {
  readonly trials?: number;
  readonly smps?: readonly number[];
  readonly log?: (line: string) => void;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Runs the comparison; QEMU and vgic alternate, each trial in the other order than the last. */
export async function runLinuxBench(opts: LinuxBenchOptions = {}): Promise<LinuxBenchResult> {
  const trials = opts.trials ?? 3;
  const smps = opts.smps ?? [1, 2];
  const log = opts.log ?? (() => {});
  const assets = await ensureLinuxAssets({ log });
  const dir = mkdtempSync(join(tmpdir(), 'vgic-linux-bench-'));
  const runs: LinuxBenchResult['runs'] = [];
  try {
    const initrd = join(dir, 'initrd');
    writeFileSync(
      initrd,
      buildLinuxInitramfs({ busybox: readFileSync(assets.busybox), script: LINUX_BENCH_SCRIPT }),
    );
    for (let t = 0; t < trials; t++) {
      for (const smp of smps) {
        const qemu = qemuLinuxCommand({
          kernel: assets.kernel,
          initrd,
          smp,
          memory: '512M',
          append: LINUX_BASE_APPEND,
        });
        const vgic = [
          process.execPath,
          CLI,
          'linux',
          '--smp',
          String(smp),
          '-m',
          '512M',
          '--script',
          LINUX_BENCH_SCRIPT,
        ];
        const order: ['qemu' | 'vgic', string[]][] = [
          ['qemu', qemu],
          ['vgic', vgic],
        ];
        if (t % 2 === 1) order.reverse();
        for (const [machine, argv] of order) {
          const r = await timeCommand(argv, { milestones: MARKS, timeoutMs: 600_000 });
          const f = figures(r);
          runs.push({ machine, smp, figures: f });
          const s = (ms: number) => (ms / 1000).toFixed(2);
          log(
            `trial ${t + 1}/${trials} smp ${smp} ${machine.padEnd(4)}: /init ${s(f.runInit)} s, userspace ` +
              `${s(f.userspace)} s, power-off ${s(f.powerOff)} s, loop ${s(f.shellLoop)} s, fork/exec ${s(f.forkExec)} s` +
              (r.exitCode === 0 ? '' : ` (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`),
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: LinuxBenchRow[] = [];
  for (const smp of smps) {
    for (const figure of FIGURES) {
      const of = (machine: 'qemu' | 'vgic') =>
        spread(runs.filter((r) => r.machine === machine && r.smp === smp).map((r) => r.figures[figure]));
      rows.push({ smp, figure, qemu: of('qemu'), vgic: of('vgic') });
    }
  }
  return { kernel: assets.version, trials, rows, runs };
}

const LABEL: Record<keyof LinuxBootFigures, string> = {
  runInit: 'Run /init',
  userspace: 'first userspace line',
  powerOff: 'power-off',
  shellLoop: 'shell loop 20,000 (in guest)',
  forkExec: '50 fork/exec (in guest)',
};

/** The table: host seconds, median (min..max), and vgic / QEMU of the medians. */
export function formatLinuxBench(r: LinuxBenchResult): string {
  const s = (x: Spread) =>
    Number.isFinite(x.median)
      ? `${(x.median / 1000).toFixed(2)} (${(x.min / 1000).toFixed(2)}..${(x.max / 1000).toFixed(2)})`
      : 'not reached';
  const lines = [
    `Debian ${r.kernel}, busybox initramfs, 512 MiB; host seconds, median (min..max) of ${r.trials}; ratio = vgic / QEMU`,
    `${'smp'.padEnd(4)}${'what'.padEnd(32)}${'QEMU 7.2 TCG'.padEnd(22)}${'vgic machine'.padEnd(22)}ratio`,
  ];
  for (const row of r.rows) {
    const ratio = row.vgic.median / row.qemu.median;
    lines.push(
      `${String(row.smp).padEnd(4)}${LABEL[row.figure].padEnd(32)}${s(row.qemu).padEnd(22)}${s(row.vgic).padEnd(22)}` +
        (Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-'),
    );
  }
  return lines.join('\n');
}
