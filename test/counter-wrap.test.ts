/**
 * The counter is a 64-bit count that wraps modulo 2^64 (issue 13, defect 6): virtual time kept
 * exactly beyond 2^53, WFI to a CVAL near 2^64, huge advanceTime counts, and the timer's
 * condition CNTVCT >= CVAL compared as unsigned 64-bit numbers across the wrap.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CTL_ISTATUS,
  CNTV_CVAL_EL0,
  CNTV_TVAL_EL0,
  CNTVCT_EL0,
  GicV3Guest,
  PPI_VTIMER,
  type VCpu,
  Vgic,
  VgicError,
} from '../src/index.ts';

const TWO64 = 1n << 64n;
const MAX_STEP = 2 ** 53 - 1;

function rig() {
  const gic = Vgic.create({ vcpus: 1, spis: 32, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  g.setPriority(PPI_VTIMER, 0x80);
  g.enableIrq(PPI_VTIMER);
  return { gic, cpu };
}

const cntvct = (cpu: VCpu): bigint => cpu.readSysreg64(CNTVCT_EL0);
const istatus = (cpu: VCpu): number => cpu.readSysreg(CNTV_CTL_EL0) & CNTV_CTL_ISTATUS;

/** Advances virtual time by any non-negative bigint, in the largest steps advanceTime takes. */
function advanceBy(gic: Vgic, ticks: bigint): void {
  for (let left = ticks; left > 0n; ) {
    const step = left > BigInt(MAX_STEP) ? MAX_STEP : Number(left);
    gic.advanceTime(step);
    left -= BigInt(step);
  }
}

describe('the counter wraps modulo 2^64 exactly', () => {
  test('a WFI to CNTV_CVAL = 2^64 - 1 leaves CNTVCT = 2^64 - 1 and the timer fired', () => {
    const { gic, cpu } = rig();
    cpu.writeSysreg64(CNTV_CVAL_EL0, TWO64 - 1n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    assert.equal(cpu.wfi(), 'irq');
    assert.equal(cntvct(cpu), TWO64 - 1n);
    assert.equal(gic.counter64(), TWO64 - 1n);
    assert.equal(istatus(cpu), CNTV_CTL_ISTATUS);
    gic.advanceTime(1);
    assert.equal(cntvct(cpu), 0n, 'one more tick wraps to zero');
    assert.equal(istatus(cpu), 0, 'after the wrap CNTVCT < CVAL again: ISTATUS clear, as hardware');
  });

  test('a WFI to a CVAL just above 2^53 lands on it exactly', () => {
    const { cpu } = rig();
    const cval = (1n << 53n) + 3n;
    cpu.writeSysreg64(CNTV_CVAL_EL0, cval);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    assert.equal(cpu.wfi(), 'irq');
    assert.equal(cntvct(cpu), cval);
  });

  test('advanceTime with huge counts adds modulo 2^64; counts beyond 2^53 - 1 are refused', () => {
    const { gic, cpu } = rig();
    let expect = 0n;
    for (let i = 0; i < 2050; i++) {
      gic.advanceTime(MAX_STEP);
      expect = (expect + BigInt(MAX_STEP)) % TWO64;
    }
    assert.equal(cntvct(cpu), expect);
    assert.equal(gic.counter64(), expect);
    for (const bad of [2 ** 53, 1e300, Number.POSITIVE_INFINITY, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => gic.advanceTime(bad),
        (e) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT' && /advanceTime ticks/.test(e.message),
        `advanceTime(${bad})`,
      );
    }
    assert.equal(cntvct(cpu), expect, 'a refused count changes nothing');
  });

  test('CNTVCT reads exactly near 2^53 and near 2^64', () => {
    const { gic, cpu } = rig();
    advanceBy(gic, (1n << 53n) - 2n);
    for (let i = -2n; i <= 3n; i++) {
      assert.equal(cntvct(cpu), (1n << 53n) + i, `2^53 + ${i}`);
      gic.advanceTime(1);
    }
    advanceBy(gic, TWO64 - 3n - ((1n << 53n) + 4n));
    for (const want of [TWO64 - 3n, TWO64 - 2n, TWO64 - 1n, 0n, 1n]) {
      assert.equal(cntvct(cpu), want);
      gic.advanceTime(1);
    }
  });

  test('the timer condition is unsigned 64-bit across the wrap', () => {
    const { gic, cpu } = rig();
    advanceBy(gic, TWO64 - 10n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    cpu.writeSysreg64(CNTV_CVAL_EL0, TWO64 - 5n);
    assert.equal(istatus(cpu), 0, 'CVAL 5 ticks ahead');
    gic.advanceTime(4);
    assert.equal(istatus(cpu), 0, 'one tick before CVAL (both above 2^53: no rounding)');
    gic.advanceTime(1);
    assert.equal(istatus(cpu), CNTV_CTL_ISTATUS, 'at CVAL');
    gic.advanceTime(10); // wraps: CNTVCT = 5
    assert.equal(cntvct(cpu), 5n);
    assert.equal(istatus(cpu), 0, 'CVAL near 2^64 is above the wrapped counter');
    cpu.writeSysreg64(CNTV_CVAL_EL0, 3n);
    assert.equal(istatus(cpu), CNTV_CTL_ISTATUS, 'a CVAL below the wrapped counter fires');
  });

  test('TVAL near the wrap: CVAL = CNTVCT + TVAL modulo 2^64, TVAL reads back', () => {
    const { gic, cpu } = rig();
    advanceBy(gic, TWO64 - 10n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    cpu.writeSysreg(CNTV_TVAL_EL0, 20);
    assert.equal(cpu.readSysreg64(CNTV_CVAL_EL0), 10n, 'CVAL wrapped');
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, 20);
    assert.equal(istatus(cpu), CNTV_CTL_ISTATUS, 'CNTVCT (2^64 - 10) >= CVAL (10): fires, as hardware');
    cpu.writeSysreg(CNTV_TVAL_EL0, -20);
    assert.equal(cpu.readSysreg64(CNTV_CVAL_EL0), TWO64 - 30n);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, -20);
  });
});
