/**
 * Micro-benchmarks with kvm-unit-tests' arm/micro-bench.c semantics: N calls of one guest
 * operation between two clock reads; total and average ns.
 *
 * Single-thread tests (this file). Each runs `trials` times after a warm-up; the median trial is
 * reported with min and max (these hosts are noisy). Each runs on a shared state and on an
 * unshared one (/unshared):
 * - mmio_read_vgic: a load of GICD_IIDR (an MMIO exit handled by the distributor frame)
 * - eoi: an ICC_EOIR1_EL1 write of INTID 1023 (ignored by the CPU interface)
 * - sgi_self: ICC_SGI1R_EL1 to self, ICC_IAR1_EL1, ICC_EOIR1_EL1 (the full round trip)
 * - ipi_inprocess: vCPU 0 sends SGI 1 to vCPU 1, which acks and EOIs it (same thread)
 *
 * Threaded tests (bench/micro-threads.ts, on the worker-thread runtime; vCPU 0 and vCPU 1 on two
 * threads): xcore (the cross-core round trip alone), ipi, ipi_wfi, ipi_hw (GICv4.1 vSGIs, with design direct), lpi, timer_10ms. They also
 * report p50 and p99 of the per-iteration latency (each exec() timed with performance.now()); see
 * that file for their exact semantics.
 *
 * Who may call: the CLI.
 */

import os from 'node:os';
import { GICD_IIDR, VIRT_GICD_BASE } from '../arch/gicv3.ts';
import { ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_SGI1R_EL1 } from '../arch/sysreg.ts';
import { Vgic } from '../device/vgic.ts';
import { GicV3Guest } from '../guest/gic-v3.ts';
import { median } from '../util/stats.ts';
import { runThreadedMicro, THREADED_TESTS, type ThreadedMicroResult } from './micro-threads.ts';

export interface MicroResult {
  readonly name: string;
  readonly iterations: number;
  readonly trials: number;
  /** Median trial. */
  readonly totalNs: number;
  readonly avgNs: number;
  readonly minAvgNs: number;
  readonly maxAvgNs: number;
  /** Operations that did not behave (e.g. an SGI not acknowledged): must be 0. */
  readonly errors: number;
  /** Per-iteration latency percentiles (threaded tests only). */
  readonly p50Ns?: number;
  readonly p99Ns?: number;
}

export interface MicroBenchOptions {
  /** Calls per trial (threaded timer_10ms: timerIterations). */
  readonly iterations?: number;
  /** Trials of the single-thread tests (default 11). */
  readonly trials?: number;
  /** Timed passes of the threaded tests (default: micro-threads.ts's per-test defaults). */
  readonly threadedTrials?: number;
  /** 'direct': the threaded lpi test uses GICv4.1 direct injection (row lpi/direct). */
  readonly design?: 'software' | 'direct';
  /** Iterations of timer_10ms (default 256, as kvm-unit-tests; 10 ms each). */
  readonly timerIterations?: number;
  /** Test names to run (a name without /unshared runs both variants). */
  readonly only?: readonly string[];
  /** Called as each test starts (a line for a progress display). */
  readonly progress?: (line: string) => void;
}

const SINGLE_THREAD_TESTS = ['mmio_read_vgic', 'eoi', 'sgi_self', 'ipi_inprocess'];

/** Every test name `only` accepts. */
export const MICRO_TEST_NAMES: readonly string[] = [
  ...SINGLE_THREAD_TESTS,
  ...SINGLE_THREAD_TESTS.map((n) => `${n}/unshared`),
  ...THREADED_TESTS,
];

interface MicroTest {
  readonly name: string;
  /** Runs the operation n times. Each test has its own loop so the call site stays monomorphic. */
  readonly loop: (n: number) => void;
  readonly errors: () => number;
}

function setup(shared: boolean): MicroTest[] {
  const gic = Vgic.create({ vcpus: 2, time: 'virtual', shared });
  const sfx = shared ? '' : '/unshared';
  const g0 = new GicV3Guest(gic.vcpu(0));
  const g1 = new GicV3Guest(gic.vcpu(1));
  g0.enableDistributor();
  g0.enableCpu();
  g1.enableCpu();
  const c0 = gic.vcpu(0);
  const c1 = gic.vcpu(1);
  const iidr = VIRT_GICD_BASE + GICD_IIDR;
  const selfSgi = (1 << 24) | (1 << (g0.affinity & 0xf)) | (((g0.affinity >>> 8) & 0xff) << 16);
  const toCpu1 = (1 << 24) | (1 << (g1.affinity & 0xf)) | (((g1.affinity >>> 8) & 0xff) << 16);
  let bad = 0;
  return [
    {
      name: `mmio_read_vgic${sfx}`,
      loop: (n) => {
        for (let i = 0; i < n; i++) c0.readl(iidr);
      },
      errors: () => 0,
    },
    {
      name: `eoi${sfx}`,
      loop: (n) => {
        for (let i = 0; i < n; i++) c0.writeSysreg(ICC_EOIR1_EL1, 1023);
      },
      errors: () => 0,
    },
    {
      name: `sgi_self${sfx}`,
      loop: (n) => {
        for (let i = 0; i < n; i++) {
          c0.writeSysreg(ICC_SGI1R_EL1, selfSgi);
          const intid = c0.readSysreg(ICC_IAR1_EL1);
          if (intid !== 1) bad++;
          c0.writeSysreg(ICC_EOIR1_EL1, intid);
        }
      },
      errors: () => bad,
    },
    {
      name: `ipi_inprocess${sfx}`,
      loop: (n) => {
        for (let i = 0; i < n; i++) {
          c0.writeSysreg(ICC_SGI1R_EL1, toCpu1);
          const intid = c1.readSysreg(ICC_IAR1_EL1);
          if (intid !== 1) bad++;
          c1.writeSysreg(ICC_EOIR1_EL1, intid);
        }
      },
      errors: () => bad,
    },
  ];
}

/** The single-thread tests, then the threaded ones (those selected by `only`). */
export async function runMicroBench(
  o: MicroBenchOptions = {},
): Promise<(MicroResult | ThreadedMicroResult)[]> {
  const results: (MicroResult | ThreadedMicroResult)[] = runSingleThread(o);
  const threaded = await runThreadedMicro({
    iterations: o.iterations,
    timerIterations: o.timerIterations,
    trials: o.threadedTrials,
    only: o.only,
    progress: o.progress,
    design: o.design,
  });
  return [...results, ...threaded];
}

function runSingleThread(o: MicroBenchOptions): MicroResult[] {
  const iterations = o.iterations ?? 65536;
  const trials = o.trials ?? 11;
  const results: MicroResult[] = [];
  for (const t of [...setup(true), ...setup(false)]) {
    if (o.only && !o.only.includes(t.name) && !o.only.includes(t.name.replace('/unshared', ''))) continue;
    o.progress?.(`micro-bench: ${t.name} (${trials} trials of ${iterations})`);
    t.loop(iterations); // warm-up: let the JIT settle
    const before = t.errors();
    const totals: number[] = [];
    for (let k = 0; k < trials; k++) {
      const t0 = performance.now();
      t.loop(iterations);
      totals.push((performance.now() - t0) * 1e6);
    }
    const avgs = totals.map((x) => x / iterations);
    results.push({
      name: t.name,
      iterations,
      trials,
      totalNs: median(totals),
      avgNs: median(avgs),
      minAvgNs: Math.min(...avgs),
      maxAvgNs: Math.max(...avgs),
      errors: t.errors() - before,
    });
  }
  return results;
}

/**
 * kvm-unit-tests' table (name, total ns, avg ns), plus the spread over trials and, for threaded
 * tests, the per-iteration p50 and p99.
 */
export function formatMicroBench(rs: readonly MicroResult[]): string {
  const lines = [
    `${'name'.padEnd(24)}${'iterations'.padStart(11)}${'total ns'.padStart(16)}${'avg ns'.padStart(12)}${'min'.padStart(10)}${'max'.padStart(10)}${'p50 ns'.padStart(10)}${'p99 ns'.padStart(10)}`,
    '-'.repeat(103),
  ];
  const opt = (x: number | undefined) => (x === undefined ? '' : x.toFixed(0)).padStart(10);
  for (const r of rs) {
    lines.push(
      `${r.name.padEnd(24)}${String(r.iterations).padStart(11)}${r.totalNs.toFixed(0).padStart(16)}${r.avgNs.toFixed(1).padStart(12)}${r.minAvgNs.toFixed(1).padStart(10)}${r.maxAvgNs.toFixed(1).padStart(10)}${opt(r.p50Ns)}${opt(r.p99Ns)}${r.errors ? `  ERRORS ${r.errors}` : ''}`,
    );
  }
  return lines.join('\n');
}

export function machineDescription() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}
