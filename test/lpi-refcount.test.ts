/**
 * An LPI's reference count is shared by every ITS that maps it (KVM's refcount on a vgic_irq in
 * lpi_xa). Two ITSes run their commands concurrently, each under its own its_lock, so the count and
 * the first-map / last-unmap work must be serialised by something both take: the LPI store lock.
 * Two threads map and unmap the same LPI through two ITSes; afterwards nothing may be left over.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { checkInvariants } from '../src/bench/invariants.ts';
import { Vgic } from '../src/index.ts';
import { IRQ_VALID } from '../src/state/layout.ts';

const WORKER_URL = new URL('./fixtures/lpi-ref-worker.js', import.meta.url);

function run(task: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_URL, { workerData: task });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  });
}

test('two ITSes mapping and unmapping one LPI at once leave its reference count exact', async () => {
  const gic = Vgic.create({ vcpus: 2, spis: 32, lrs: 4, its: 2, lpiIdBits: 14, time: 'virtual' });
  const s = gic.state;
  assert.ok(s.buffer instanceof SharedArrayBuffer);
  const intid = 8192 + 77;
  const gate = new SharedArrayBuffer(4);
  const rounds = 400_000;
  await Promise.all([0, 1].map((its) => run({ buffer: s.buffer, gate, its, intid, rounds })));
  const i = intid - 8192;
  assert.equal(s.itsLpiRef[i], 0, 'ITS 0 holds no reference');
  assert.equal(s.itsLpiRef[s.nLpis + i], 0, 'ITS 1 holds no reference');
  assert.equal(s.irqLpiRef[i], 0, 'the shared count is the sum of the ITSes’ counts');
  assert.equal(s.lpiMapped[i >>> 5] & (1 << (i & 31)), 0, 'the LPI is marked unmapped');
  assert.equal(s.irqFlags[s.lpiSlot(intid)] & IRQ_VALID, 0, 'the freed LPI is not valid');
  assert.deepEqual(checkInvariants(gic), []);
});
