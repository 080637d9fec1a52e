/**
 * vgic lpi-stress on worker threads, small: every MSI's answer is accounted for, none is lost,
 * on both designs, with vCPUs on separate threads and multiplexed on one.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runLpiStress } from '../src/bench/lpi-stress.ts';
import { parseLpiStressArgs, runLpiStressCli } from '../src/cli/lpi-stress.ts';
import { VgicError } from '../src/index.ts';

function checkAccounting(r: Awaited<ReturnType<typeof runLpiStress>>): void {
  assert.equal(r.failed, 0, 'every MSI delivered or coalesced');
  assert.equal(r.badIntids, 0);
  assert.equal(r.delivered + r.coalesced + r.failed, r.injected + r.warmup, 'every answer counted');
  assert.ok(r.delivered >= 1);
  assert.equal(r.lost, 0, 'delivered = acknowledged + merged + drained + dropped');
  assert.equal(r.dropped, 0);
  assert.ok(r.rate > 0 && Number.isFinite(r.rate));
}

describe('lpi-stress', { timeout: 120000 }, () => {
  for (const design of ['per-its', 'global-lock'] as const) {
    it(`${design}: 4 vCPUs × 4 devices × 17 events, no MSI lost`, async () => {
      const r = await runLpiStress({ vcpus: 4, devices: 4, events: 17, iterations: 300, design });
      checkAccounting(r);
      assert.equal(r.injected, 4 * 17 * 300);
      assert.equal(r.vcpuThreads >= 1 && r.injectorThreads >= 1, true);
    });
  }

  it('vCPUs multiplexed on one thread (6 on 1) still acknowledge every LPI', async () => {
    const r = await runLpiStress({
      vcpus: 6,
      devices: 3,
      events: 6,
      iterations: 200,
      vcpuThreads: 1,
      injectorThreads: 1,
    });
    checkAccounting(r);
    assert.equal(r.vcpuThreads, 1);
    assert.ok(r.acknowledged + r.drained >= 1);
  });

  it('every mapped LPI reaches a vCPU: with one MSI per event, nothing coalesces away', async () => {
    // One iteration: each (device, event) is injected once after the warm-up has been acked.
    const r = await runLpiStress({ vcpus: 2, devices: 2, events: 8, iterations: 1 });
    checkAccounting(r);
    assert.ok(r.acknowledged + r.drained + r.mergedAtFold >= 1);
  });

  it('Handled counts what the guests acknowledged in the interval; --seconds makes the run time-based', async () => {
    const r = await runLpiStress({ vcpus: 2, devices: 2, events: 4, iterations: 10, minMs: 300 });
    checkAccounting(r);
    // Time-based: far more than d · e · i MSIs, whole rounds of e each, over at least 300 ms.
    assert.ok(r.elapsedMs >= 300, `elapsed ${r.elapsedMs}`);
    assert.ok(r.injected > 2 * 4 * 10 && r.injected % 4 === 0);
    // Handled can only count acknowledgements: never above what became pending.
    assert.ok(r.handled > 0, 'the guests acknowledged LPIs during the run');
    // (handled · elapsed is the count of acknowledgements in the interval, up to float rounding)
    assert.ok(Math.round((r.handled * r.elapsedMs) / 1000) <= r.acknowledged);
    assert.ok(r.handled <= r.rate);
    assert.ok(r.coalescedFraction >= 0 && r.coalescedFraction < 1);
    const cli = await runLpiStressCli(['-v', '1', '-d', '1', '-e', '2', '-i', '5', '--seconds', '0.1']);
    assert.match(cli.text, /^Rate: [\d.]+ LPIs\/sec\nHandled: [\d.]+ LPIs\/sec\nCoalesced: [\d.]+% /);
    assert.throws(() => parseLpiStressArgs(['--seconds', 'x']), /--seconds takes a number in \[0, 3600\]/);
  });

  it('rejects bad flags with a typed error that says what is allowed', async () => {
    await assert.rejects(runLpiStress({ vcpus: 0, devices: 1, events: 1, iterations: 1 }), (e: unknown) => {
      assert.ok(e instanceof VgicError);
      assert.match((e as Error).message, /vCPUs \(-v\) must be an integer in 1\.\.224/);
      return true;
    });
    await assert.rejects(
      runLpiStress({ vcpus: 1, devices: 2048, events: 64, iterations: 1 }),
      /at most 57344 LPIs/,
    );
    assert.throws(() => parseLpiStressArgs(['--design', 'rcu']), /per-its, global-lock, direct, both or all/);
    assert.throws(() => parseLpiStressArgs(['-v', 'x']), /-v takes a whole number/);
  });

  it('--seed-table --scale runs the five rows on the three designs and prints KVM beside them', async () => {
    const r = await runLpiStressCli(['--seed-table', '--scale', '0.002', '--trials', '1', '--seconds', '0']);
    assert.equal(r.failed, false);
    assert.equal(r.rows.length, 15);
    assert.deepEqual(
      r.rows.map((x) => x.design),
      Array.from({ length: 5 }, () => ['global-lock', 'per-its', 'direct']).flat(),
    );
    assert.match(r.text, /direct Rate +\| direct Handled +\| direct coalesced/);
    assert.match(r.text, /\| -v 32 -d 32 -e 1 -i 200 +\| 0\.58 +\| 8\.30 /);
    assert.match(r.text, /per-its Rate +\| per-its Handled +\| per-its coalesced/);
    assert.match(r.text, /MSIs lost or failed over all runs: 0\./);
  });
});
