/**
 * The threaded micro-benchmarks of kvm-unit-tests' arm/micro-bench.c, on the worker-thread
 * runtime (runtime/): vCPU 0 and vCPU 1 each on their own worker thread, over one shared GIC.
 * The guest programs are in bench/micro-programs.ts.
 *
 * - ipi: vCPU 0 writes ICC_SGI1R_EL1 (SGI 1 to vCPU 1), then spins until vCPU 1's IRQ handler
 *   (ICC_IAR1_EL1, ICC_EOIR1_EL1) has bumped a shared word. vCPU 1 spins (cpu_relax: no WFI), so
 *   the SGI reaches a running vCPU: a kick, an exit and an entry on its own thread.
 * - ipi_wfi: the same, but vCPU 1 waits in WFI between IPIs (yield WFI). The runtime's scheduler
 *   polls for a wake-up event for 64 rounds (IDLE_SPINS) before its thread sleeps on the futex word
 *   kicks bump, as KVM's halt polling does, so back-to-back IPIs often find vCPU 1 still polling;
 *   the ones that find it asleep pay a futex wake-up (the p99).
 * - ipi_hw (design 'direct' only): ipi with GICv4.1 vSGIs (GICD_CTLR.nASSGIreq): the SGI goes
 *   straight into vCPU 1's vPE, which takes it without exit, list register or active state.
 * - lpi: vCPU 0's exec() is an ITS INT command (device 2, event 20 → LPI 8199 on collection 1 =
 *   vCPU 1): the command written into the queue, GITS_CWRITER advanced, GITS_CREADR polled until
 *   it has passed the command; then the wait for vCPU 1's handler, as in ipi (vCPU 1 spins).
 * - timer_10ms: vCPU 0 alone: CNTV_CVAL_EL0 = CNTVCT_EL0 + CNTFRQ/100, CNTV_CTL_EL0 = ENABLE,
 *   WFI until the handler (which masks the timer before EOI) ran. As timer_post does, 10 ms is
 *   subtracted per iteration: the numbers are the overshoot above 10 ms. Real time.
 *
 * - xcore: no GIC: vCPU 0's exec() writes a shared word and spins until vCPU 1's thread has copied
 *   it into another (micro-programs.ts): the cross-core round trip every other test pays at least
 *   once, measured with the same timing, so that a run says which placement of the two threads
 *   (cores sharing a cache or not) its other rows got.
 *
 * Each exec() is timed on vCPU 0's thread with performance.now(): totalNs is one timed pass of N
 * exec()s (kvm-unit-tests' total; the median pass when trials > 1), avgNs = totalNs / N, and p50Ns
 * and p99Ns are percentiles (nearest rank) of the per-exec latencies of every timed pass. Before
 * the timed passes the same runtime runs `warmup` exec()s (JIT, caches). vCPU 1 counts what its
 * handler took: errors = |sent − received| + wrong INTIDs + ITS commands CREADR did not pass.
 *
 * Who may call: bench/micro.ts (runMicroBench), tests.
 */

import { checkInt } from '../arch/errors.ts';
import { Vgic } from '../device/vgic.ts';
import { Runtime } from '../runtime/runtime.ts';
import { median, percentileSorted } from '../util/stats.ts';
import type { MicroResult } from './micro.ts';
import { type MicroThreadParams, type ThreadedTest, W_DONE } from './micro-programs.ts';

export const THREADED_TESTS: readonly ThreadedTest[] = [
  'xcore',
  'ipi',
  'ipi_wfi',
  'ipi_hw',
  'lpi',
  'timer_10ms',
];

export interface ThreadedMicroOptions {
  /** 'direct': the lpi test's LPI is forwarded to GICv4.1 direct injection (reported as lpi/direct). */
  readonly design?: 'software' | 'direct';
  /** exec()s per timed pass for ipi, ipi_wfi and lpi (default 65536). */
  readonly iterations?: number;
  /** exec()s per timed pass for timer_10ms (default 256, as kvm-unit-tests). */
  readonly timerIterations?: number;
  /** Timed passes per test (default: per test, see DEFAULT_TRIALS). */
  readonly trials?: number;
  /** Untimed exec()s first (default: min(N, 4096); timer_10ms: 8). */
  readonly warmup?: number;
  readonly only?: readonly string[];
  /** Called as each test starts (a line for a progress display). */
  readonly progress?: (line: string) => void;
  /** Give up (errors = 1 more) when vCPU 0 has not finished by then (default: generous, from N). */
  readonly timeoutMs?: number;
  /** Return the per-exec latencies too (ThreadedMicroResult.latencies; not for JSON). */
  readonly keepLatencies?: boolean;
}

export interface ThreadedMicroResult extends MicroResult {
  readonly p50Ns: number;
  readonly p99Ns: number;
  /** IPIs / INT commands / timer arms by vCPU 0, warm-up included. */
  readonly sent: number;
  /** Interrupts vCPU 1's handler (timer_10ms: vCPU 0's) took with the expected INTID. */
  readonly received: number;
  /** Per-exec latencies of the timed passes in ns, in order (with keepLatencies). */
  readonly latencies?: Float64Array;
}

/** Timed passes by default: cheap tests get several, the slow ones one (after the warm-up). */
const DEFAULT_TRIALS: Record<ThreadedTest, number> = {
  xcore: 5,
  ipi: 5,
  ipi_wfi: 3,
  ipi_hw: 5,
  lpi: 5,
  timer_10ms: 1,
};

const RAM_BASE = 0x40000000;
const RAM_SIZE = 32 << 20;
const LPI_ID_BITS = 16;

function makeGic(test: ThreadedTest, direct: boolean): Vgic {
  if (test === 'timer_10ms') return Vgic.create({ vcpus: 1, time: 'real' });
  if (test === 'lpi' || test === 'ipi_hw') {
    return Vgic.create({
      vcpus: 2,
      time: 'real',
      its: 1,
      ram: { base: RAM_BASE, size: RAM_SIZE },
      lpiIdBits: LPI_ID_BITS,
      ...(direct || test === 'ipi_hw' ? { directInjection: 'gicv4.1' as const } : {}),
    });
  }
  return Vgic.create({ vcpus: 2, time: 'real' });
}

/** Runs one threaded test on a new GIC and runtime. */
export async function runThreadedTest(
  test: ThreadedTest,
  o: ThreadedMicroOptions = {},
): Promise<ThreadedMicroResult> {
  const timer = test === 'timer_10ms';
  const direct = test === 'lpi' && o.design === 'direct';
  const iterations = timer ? (o.timerIterations ?? 256) : (o.iterations ?? 65536);
  const trials = o.trials ?? DEFAULT_TRIALS[test];
  const warmup = o.warmup ?? (timer ? 8 : Math.min(iterations, 4096));
  checkInt('INVALID_ARGUMENT', 'iterations', iterations, 1, 2 ** 24);
  checkInt('INVALID_ARGUMENT', 'trials', trials, 1, 1000);
  checkInt('INVALID_ARGUMENT', 'warm-up iterations', warmup, 0, 2 ** 24);
  const latencies = new SharedArrayBuffer(8 * iterations * trials);
  const params: MicroThreadParams = {
    test,
    iterations,
    warmup,
    trials,
    latencies,
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    lpiIdBits: LPI_ID_BITS,
    forward: direct,
  };
  const gic = makeGic(test, direct);
  const rt = Runtime.start({
    gic,
    module: new URL('./micro-programs.js', import.meta.url),
    vcpuProgram: 'microVcpu',
    vcpus: timer ? [0] : [0, 1],
    vcpuThreads: timer ? 1 : 2,
    params,
  });
  // Generous: 10 ms per timer exec, and 1 ms per IPI would be a thousand times too slow already.
  const budgetMs = o.timeoutMs ?? 30000 + (warmup + iterations * trials) * (timer ? 20 : 1);
  let finished: boolean;
  try {
    finished = await rt.waitShared(W_DONE, 1, budgetMs);
  } catch (e) {
    await rt.stop(5000).catch(() => undefined);
    throw e;
  }
  const reports = await rt.stop();
  const r0 = reports.find((r) => r.kind === 'vcpu' && r.index === 0)?.result ?? {};
  const r1 = timer ? r0 : (reports.find((r) => r.kind === 'vcpu' && r.index === 1)?.result ?? {});
  const sent = r0.sent ?? 0;
  const received = r1.received ?? 0;
  const done = finished && Atomics.load(rt.shared, W_DONE) === 1;
  const errors = Math.abs(sent - received) + (r1.bad ?? 0) + (r0.failed ?? 0) + (done ? 0 : 1);
  const totals: number[] = [];
  for (let k = 0; k < trials; k++) if (r0[`total${k}`] !== undefined) totals.push(r0[`total${k}`]);
  const timed = totals.length * iterations;
  const lat = new Float64Array(latencies, 0, timed);
  const sorted = lat.slice().sort();
  const avgs = totals.map((t) => t / iterations);
  return {
    name: direct ? `${test}/direct` : test,
    iterations,
    trials,
    totalNs: totals.length ? median(totals) : Number.NaN,
    avgNs: totals.length ? median(avgs) : Number.NaN,
    minAvgNs: Math.min(...avgs),
    maxAvgNs: Math.max(...avgs),
    p50Ns: percentileSorted(sorted, 50),
    p99Ns: percentileSorted(sorted, 99),
    errors,
    sent,
    received,
    ...(o.keepLatencies ? { latencies: lat.slice() } : {}),
  };
}

/** The threaded tests selected by `only` (all when not given), one after the other. */
export async function runThreadedMicro(o: ThreadedMicroOptions = {}): Promise<ThreadedMicroResult[]> {
  const out: ThreadedMicroResult[] = [];
  for (const t of THREADED_TESTS) {
    if (o.only && !o.only.includes(t)) continue;
    // ipi_hw needs GICv4.1's direct vSGIs: it runs with --design direct only.
    if (t === 'ipi_hw' && o.design !== 'direct') continue;
    o.progress?.(`micro-bench: ${t} (threaded)`);
    out.push(await runThreadedTest(t, o));
  }
  return out;
}
