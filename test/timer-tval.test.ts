/**
 * Review: CNTV_TVAL_EL0 writes set CVAL = CNTVCT + SignExtend(TVAL) in 64-bit arithmetic (Arm ARM
 * D11.2.4): a negative TVAL larger than the counter wraps CVAL to the top of the 64-bit range,
 * which the counter has not reached, so the timer condition is false.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CTL_ISTATUS,
  CNTV_CVAL_EL0,
  CNTV_TVAL_EL0,
  Vgic,
} from '../src/index.ts';

test('TVAL = -105 at CNTVCT = 100 wraps CVAL to 2^64 - 5: the timer must not fire', () => {
  const gic = Vgic.create({ vcpus: 1, spis: 32, time: 'virtual' });
  const cpu = gic.vcpu(0);
  gic.advanceTime(100);
  cpu.writeSysreg(CNTV_TVAL_EL0, -105 >>> 0);
  cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
  assert.equal(cpu.readSysreg(CNTV_CTL_EL0) & CNTV_CTL_ISTATUS, 0, 'CNTVCT (100) < CVAL: ISTATUS = 0');
  assert.equal(cpu.readSysreg64(CNTV_CVAL_EL0), (1n << 64n) - 5n, 'CVAL = (100 - 105) mod 2^64');
});
