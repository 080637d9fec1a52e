/**
 * The threaded micro-benchmarks (bench/micro-threads.ts) with small N: what they measure must
 * have happened. Every IPI and LPI vCPU 0 sent was taken exactly once by vCPU 1's handler (on
 * another worker thread), every timer arm fired exactly once, with the right INTIDs; every
 * per-iteration latency is there, finite and positive (the timer's overshoot above 10 ms is ≥ 0).
 * No timing thresholds: these hosts are shared and noisy.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ThreadedTest } from '../src/bench/micro-programs.ts';
import { runThreadedTest, type ThreadedMicroResult } from '../src/bench/micro-threads.ts';

const N = 200;
const TRIALS = 2;
const WARMUP = 20;

function checkResult(r: ThreadedMicroResult, name: string, n: number): void {
  assert.equal(r.name, name);
  assert.equal(r.errors, 0, `${name}: errors`);
  assert.equal(r.iterations, n);
  assert.equal(r.trials, TRIALS);
  // Warm-up and timed passes: each one sent, each one received once.
  assert.equal(r.sent, WARMUP + TRIALS * n, `${name}: sent`);
  assert.equal(r.received, r.sent, `${name}: received exactly what was sent`);
  const lat = r.latencies;
  assert.ok(lat, 'latencies kept');
  assert.equal(lat.length, TRIALS * n);
  for (let i = 0; i < lat.length; i++) {
    assert.ok(Number.isFinite(lat[i]), `${name}: latency ${i} is ${lat[i]}`);
    if (name === 'timer_10ms') assert.ok(lat[i] >= 0, `${name}: overshoot ${i} is ${lat[i]} ns`);
    else assert.ok(lat[i] > 0, `${name}: latency ${i} is ${lat[i]} ns`);
  }
  for (const k of ['totalNs', 'avgNs', 'minAvgNs', 'maxAvgNs', 'p50Ns', 'p99Ns'] as const) {
    assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${name}: ${k} = ${r[k]}`);
  }
  assert.ok(r.minAvgNs <= r.avgNs && r.avgNs <= r.maxAvgNs, `${name}: median trial within min..max`);
  assert.ok(r.p50Ns <= r.p99Ns, `${name}: p50 ≤ p99`);
  const sorted = lat.slice().sort();
  assert.equal(
    r.p50Ns,
    sorted[Math.ceil(0.5 * sorted.length) - 1],
    `${name}: p50 is the nearest-rank median`,
  );
  // A pass's total holds its N timed execs (and the loop around them).
  let pass = 0;
  for (let i = 0; i < n; i++) pass += lat[i];
  assert.ok(r.maxAvgNs * n >= pass - 1, `${name}: the first pass's total is below its execs' sum`);
}

describe('threaded micro-benchmarks (vCPU 0 and vCPU 1 on two worker threads)', () => {
  for (const name of ['xcore', 'ipi', 'ipi_wfi', 'lpi'] as ThreadedTest[]) {
    test(`${name}: ${N} × ${TRIALS} + ${WARMUP}, every interrupt taken once by vCPU 1`, async () => {
      const r = await runThreadedTest(name, {
        iterations: N,
        trials: TRIALS,
        warmup: WARMUP,
        keepLatencies: true,
        timeoutMs: 20000,
      });
      checkResult(r, name, N);
    });
  }

  test('timer_10ms: every arm fires once, overshoot above 10 ms is never negative', async () => {
    const n = 10;
    const r = await runThreadedTest('timer_10ms', {
      timerIterations: n,
      trials: TRIALS,
      warmup: WARMUP,
      keepLatencies: true,
      timeoutMs: 20000,
    });
    checkResult(r, 'timer_10ms', n);
  });

  test('a run that cannot finish reports an error instead of hanging', async () => {
    // 1 ms is too short for 10 × 10 ms of timer: vCPU 0 is stopped mid-way.
    const r = await runThreadedTest('timer_10ms', {
      timerIterations: 10,
      trials: 1,
      warmup: 0,
      timeoutMs: 1,
    });
    assert.ok(r.errors > 0);
  });

  test('vgic micro-bench --only ipi,lpi --json writes the threaded rows with p50 and p99', () => {
    const dir = fileURLToPath(new URL('./tmp/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = `${dir}micro-threads.json`;
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const run = spawnSync(
      process.execPath,
      [cli, 'micro-bench', '--only', 'ipi,lpi', '--iterations', '100', '--json', file],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^ipi\s+100\s/m);
    assert.match(run.stdout, /^lpi\s+100\s/m);
    assert.doesNotMatch(run.stdout, /^eoi/m);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      results: { name: string; iterations: number; errors: number; [k: string]: unknown }[];
    };
    assert.deepEqual(
      doc.results.map((r) => r.name),
      ['ipi', 'lpi'],
    );
    for (const r of doc.results) {
      assert.equal(r.iterations, 100);
      assert.equal(r.errors, 0);
      for (const k of ['totalNs', 'avgNs', 'p50Ns', 'p99Ns', 'minAvgNs', 'maxAvgNs']) {
        assert.equal(typeof r[k], 'number', `${r.name}.${k}`);
      }
      assert.equal(r.latencies, undefined, 'no per-iteration arrays in the JSON');
    }
    const bad = spawnSync(process.execPath, [cli, 'micro-bench', '--only', 'nope'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown test 'nope'/);
  });
});
