import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { GicV3Guest, Vgic } from '../src/index.ts';

test('a vCPU asleep in WFI is woken by an injection from another thread', async () => {
  const gic = Vgic.create({ vcpus: 1 });
  const g = new GicV3Guest(gic.vcpu(0));
  g.enableDistributor();
  g.enableCpu();
  g.routeSpi(40, g.affinity);
  g.enableIrq(40);
  const worker = new Worker(new URL('./fixtures/kick-worker.js', import.meta.url), {
    workerData: { buffer: gic.state.buffer, intid: 40, delayMs: 50 },
  });
  const online = new Promise((resolve) => worker.once('online', resolve));
  await online;
  const t0 = performance.now();
  const r = gic.vcpu(0).wfi(10_000); // blocks this thread in Atomics.wait until kicked
  const slept = performance.now() - t0;
  assert.equal(r, 'irq');
  assert.ok(slept < 5_000, `woken by the kick, not the timeout (slept ${slept.toFixed(1)} ms)`);
  assert.equal(g.ack(), 40);
  await new Promise((resolve) => worker.once('exit', resolve));
});
