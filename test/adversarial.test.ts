/**
 * The adversarial test's CI smoke (issue 13): 10^5 operations of bench/adversarial.ts over fixed
 * seeds, on the smaller GIC shapes (`light`), every invariant checked after each operation, no
 * operation over 50 ms, memory bounded. The long mode is `vgic adversarial --ops 10000000`.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAdversarial, runAdversarial } from '../src/bench/adversarial.ts';

const SEEDS = [1, 2, 3, 4];
const OPS = Number(process.env.VGIC_ADVERSARIAL_OPS ?? 25_000);

for (const seed of SEEDS) {
  test(`adversarial smoke, seed ${seed}: ${OPS} operations, no failure`, () => {
    const r = runAdversarial({ ops: OPS, seed, light: true, maxOpMs: 50 });
    const text = formatAdversarial(r);
    console.log(text.replace(/^/gm, '# '));
    assert.equal(r.failures, 0, text);
    assert.equal(r.ops, OPS);
  });
}
