/**
 * The high word of a read never leaks from an earlier 64-bit access (issue 13, defect 7):
 * ICC_IAR1_EL1's fast path used to keep the high word CNTVCT left. Every readable ICC_* / CNT*
 * register after a 64-bit read with a non-zero high word, and every GICD/GICR/ITS offset at every
 * width after one.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CNTV_CVAL_EL0,
  CNTVCT_EL0,
  GICD_FRAME_SIZE,
  GICR_STRIDE_V3,
  GITS_FRAME_SIZE,
  GicV3Guest,
  SYSREG_NAMES,
  type VCpu,
  Vgic,
} from '../src/index.ts';

/** Registers with a 64-bit value: their high word is architectural, not a leak. */
const WIDE: Readonly<Record<string, (cpu: VCpu) => number>> = {
  CNTVCT_EL0: (cpu) => Number(cpu.gic.counter64() >> 32n),
  CNTV_CVAL_EL0: (cpu) => cpu.gic.state.timerCvalWords[2 * cpu.index + 1],
};

function rig() {
  const gic = Vgic.create({ vcpus: 2, its: 1, ram: { size: 1 << 20 }, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  // CNTVCT and CVAL with non-zero high words: 64-bit reads that leave something to leak.
  gic.advanceTime(0x1234_5678_9abc);
  cpu.writeSysreg64(CNTV_CVAL_EL0, 0xabcd_0000_0000_0001n);
  return { gic, cpu };
}

/** Primes cpu.hi with a non-zero high word through a 64-bit system-register read. */
function prime(cpu: VCpu, enc = CNTVCT_EL0): void {
  cpu.readSysreg64(enc);
  assert.notEqual(cpu.hi, 0);
}

describe('no stale high word after a 64-bit access', () => {
  test('every readable ICC_* and CNT* register reads its architectural high word', () => {
    const { cpu } = rig();
    for (const [name, enc] of Object.entries(SYSREG_NAMES)) {
      for (const primer of [CNTVCT_EL0, CNTV_CVAL_EL0]) {
        prime(cpu, primer);
        const value = cpu.readSysreg64(enc);
        const want = WIDE[name]?.(cpu) ?? 0;
        assert.equal(Number(value >> 32n), want, `${name} after a 64-bit read`);
      }
    }
  });

  test('ICC_IAR1_EL1 right after CNTVCT returns 1023 with a zero high word', () => {
    const { cpu } = rig();
    prime(cpu);
    assert.equal(cpu.readSysreg64(SYSREG_NAMES.ICC_IAR1_EL1), 1023n);
  });

  test('every GICD, GICR and ITS offset at widths 1, 2, 4 and 8', () => {
    const { gic, cpu } = rig();
    const frames = [
      { name: 'GICD', base: gic.distBase, size: GICD_FRAME_SIZE },
      { name: 'GICR1', base: gic.redistRegions[0].base + GICR_STRIDE_V3, size: GICR_STRIDE_V3 },
      { name: 'ITS', base: gic.itsBases[0], size: GITS_FRAME_SIZE },
    ];
    for (const f of frames) {
      for (let off = 0; off < f.size; off += 4) {
        for (const width of [1, 2, 4]) {
          prime(cpu);
          cpu.mmioRead(f.base + off, width);
          if (cpu.hi !== 0)
            assert.fail(`${f.name}+0x${off.toString(16)} width ${width}: high word ${cpu.hi}`);
        }
        if (off % 8 !== 0) continue;
        // A 64-bit read's high word is the register's: the same whatever the previous access left.
        prime(cpu, CNTVCT_EL0);
        const lo1 = cpu.mmioRead(f.base + off, 8);
        const hi1 = cpu.hi;
        prime(cpu, CNTV_CVAL_EL0);
        const lo2 = cpu.mmioRead(f.base + off, 8);
        if (hi1 !== cpu.hi || lo1 !== lo2)
          assert.fail(`${f.name}+0x${off.toString(16)} width 8 depends on the last read`);
      }
    }
    // Host register reads go through the same dispatcher.
    prime(cpu);
    assert.equal(gic.readDistReg(0x6100, 8) >> 32n, 0n, 'GICD_IROUTER32: Aff3 and IRM are RAZ');
  });
});
