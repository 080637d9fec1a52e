/**
 * Two GICv2 guests at once, each with 8 vCPUs on two worker threads, IPI-ing each other through
 * GICD_SGIR (target lists and TargetListFilter 1 broadcasts): every SGI arrives exactly once, at
 * the right vCPU, with the sender's CPUID in GICC_IAR; afterwards both GICs hold the invariants.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkInvariants } from '../src/bench/invariants.ts';
import { Vgic } from '../src/index.ts';
import { Runtime } from '../src/runtime/index.ts';
import { BAD, DONE, N, RECV, ROUNDS, targetsOf } from './fixtures/gicv2-ipi-programs.ts';

test('two GICv2 guests, 8 vCPUs each on worker threads: every IPI arrives once with its source CPUID', async () => {
  const gics = [0, 1].map(() => Vgic.create({ gicVersion: 2, vcpus: N, lrs: 4, shared: true }));
  const rts = gics.map((gic) =>
    Runtime.start({
      gic,
      module: new URL('./fixtures/gicv2-ipi-programs.js', import.meta.url),
      vcpuProgram: 'ipiVcpu',
      vcpuThreads: 2,
    }),
  );
  for (const rt of rts) rt.go();
  for (const rt of rts) {
    for (let v = 0; v < N; v++) assert.ok(await rt.waitShared(DONE + v, 1, 60_000), `vCPU ${v} finished`);
  }
  for (const rt of rts) await rt.stop(30_000);
  const want = new Array<number>(N * N).fill(0);
  for (let s = 0; s < N; s++) {
    for (let r = 0; r < ROUNDS; r++) {
      const t = targetsOf(s, r);
      for (let d = 0; d < N; d++) if (t & (1 << d)) want[N * d + s]++;
    }
  }
  gics.forEach((gic, k) => {
    const w = rts[k].shared;
    assert.equal(w[BAD], 0, `guest ${k}: no wrong INTID or source`);
    assert.deepEqual(
      Array.from(w.subarray(RECV, RECV + N * N)),
      want,
      `guest ${k}: exact counts per (target, source)`,
    );
    assert.deepEqual(checkInvariants(gic), [], `guest ${k}: invariants`);
  });
});
