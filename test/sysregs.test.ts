/**
 * The ICC_* CPU interface system registers as a guest sees them (GIC IHI 0069 §12.2, through the
 * virtual CPU interface of §12.7), the sysreg name helpers, and CNTFRQ_EL0.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import './helpers/fc-seed.ts';
import {
  CNTFRQ_EL0,
  CNTVCT_EL0,
  GICD_CTLR,
  GICR_IGROUPR0,
  GICR_IPRIORITYR0,
  GICR_ISENABLER0,
  GICR_ISPENDR0,
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
  ICC_BPR0_EL1,
  ICC_BPR1_EL1,
  ICC_CTLR_CBPR,
  ICC_CTLR_EL1,
  ICC_CTLR_EOIMODE,
  ICC_DIR_EL1,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_HPPIR0_EL1,
  ICC_HPPIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN0_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  ICC_SGI1R_EL1,
  ICC_SRE_EL1,
  parseSysreg,
  SYSREG_NAMES,
  sysreg,
  sysregName,
  type VCpu,
  Vgic,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
} from '../src/index.ts';

const GICD = VIRT_GICD_BASE;

function make(vcpus = 2): Vgic {
  return Vgic.create({ vcpus, spis: 64, lrs: 4, time: 'virtual' });
}

/** Enables the distributor and the CPU interface of `cpu` for both groups, PMR 0xf0. */
function enableCpuif(cpu: VCpu): void {
  cpu.writel(GICD + GICD_CTLR, 3);
  cpu.writeSysreg(ICC_PMR_EL1, 0xf0);
  cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
  cpu.writeSysreg(ICC_IGRPEN1_EL1, 1);
}

/** Configures SGI `sgi` of `cpu`: priority `prio`, enabled, in `group`. */
function setupSgi(cpu: VCpu, sgi: number, prio: number, group: 0 | 1 = 1): void {
  const rd = VIRT_GICR_BASE + cpu.index * 0x20000;
  cpu.writeb(rd + GICR_IPRIORITYR0 + sgi, prio);
  const groups = cpu.readl(rd + GICR_IGROUPR0);
  cpu.writel(rd + GICR_IGROUPR0, group ? groups | (1 << sgi) : groups & ~(1 << sgi));
  cpu.writel(rd + GICR_ISENABLER0, 1 << sgi);
}

/** Makes SGI `sgi` pending (from the host, as a restore would). */
function pend(gic: Vgic, v: number, sgi: number): void {
  gic.writeRedistReg(v, GICR_ISPENDR0, Number(gic.readRedistReg(v, GICR_ISPENDR0)) | (1 << sgi));
}

/** Configures SGI `sgi` and makes it pending. */
function pendSgi(gic: Vgic, cpu: VCpu, sgi: number, prio: number, group: 0 | 1 = 1): void {
  setupSgi(cpu, sgi, prio, group);
  pend(gic, cpu.index, sgi);
}

function unknownDelta(gic: Vgic, fn: () => void): number {
  const before = gic.stats().sysregUnknown;
  fn();
  return gic.stats().sysregUnknown - before;
}

describe('ICC_PMR_EL1', () => {
  test('resets to 0 and keeps 5 bits (0xff reads back 0xf8)', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readSysreg(ICC_PMR_EL1), 0);
    cpu.writeSysreg(ICC_PMR_EL1, 0xff);
    assert.equal(cpu.readSysreg(ICC_PMR_EL1), 0xf8);
    cpu.writeSysreg(ICC_PMR_EL1, 0x87);
    assert.equal(cpu.readSysreg(ICC_PMR_EL1), 0x80);
    cpu.writeSysreg(ICC_PMR_EL1, 0xffffff08, 0xffffffff); // RES0 upper bits
    assert.equal(cpu.readSysreg(ICC_PMR_EL1), 0x08);
  });

  test('is per vCPU', () => {
    const gic = make();
    gic.vcpu(0).writeSysreg(ICC_PMR_EL1, 0xf0);
    assert.equal(gic.vcpu(1).readSysreg(ICC_PMR_EL1), 0);
    assert.equal(gic.vcpu(0).readSysreg(ICC_PMR_EL1), 0xf0);
  });

  test('masks delivery: an interrupt of priority >= PMR is not acknowledged', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    enableCpuif(cpu);
    pendSgi(gic, cpu, 2, 0x80);
    cpu.writeSysreg(ICC_PMR_EL1, 0x80);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 1023);
    cpu.writeSysreg(ICC_PMR_EL1, 0x88);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 2);
    cpu.writeSysreg(ICC_EOIR1_EL1, 2);
  });
});

describe('ICC_BPR0_EL1 / ICC_BPR1_EL1', () => {
  test('reset to their minimums, BPR0 = 2 and BPR1 = 3', () => {
    const cpu = make().vcpu(0);
    assert.equal(cpu.readSysreg(ICC_BPR0_EL1), 2);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 3);
  });

  test('writing below the minimum reads back the minimum', () => {
    const cpu = make().vcpu(0);
    for (const v of [0, 1]) {
      cpu.writeSysreg(ICC_BPR0_EL1, v);
      assert.equal(cpu.readSysreg(ICC_BPR0_EL1), 2, `BPR0 <- ${v}`);
    }
    for (const v of [0, 1, 2]) {
      cpu.writeSysreg(ICC_BPR1_EL1, v);
      assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 3, `BPR1 <- ${v}`);
    }
  });

  test('values from the minimum to 7 are kept; only bits 2:0 are implemented', () => {
    const cpu = make().vcpu(0);
    for (let v = 2; v <= 7; v++) {
      cpu.writeSysreg(ICC_BPR0_EL1, v);
      assert.equal(cpu.readSysreg(ICC_BPR0_EL1), v);
    }
    for (let v = 3; v <= 7; v++) {
      cpu.writeSysreg(ICC_BPR1_EL1, v);
      assert.equal(cpu.readSysreg(ICC_BPR1_EL1), v);
    }
    cpu.writeSysreg(ICC_BPR0_EL1, 0xfc);
    assert.equal(cpu.readSysreg(ICC_BPR0_EL1), 4);
    cpu.writeSysreg(ICC_BPR1_EL1, 0xfd);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 5);
  });

  test('with CBPR = 1, BPR1 reads BPR0 + 1 (saturating) and ignores writes', () => {
    const cpu = make().vcpu(0);
    cpu.writeSysreg(ICC_BPR1_EL1, 6);
    cpu.writeSysreg(ICC_BPR0_EL1, 4);
    cpu.writeSysreg(ICC_CTLR_EL1, ICC_CTLR_CBPR);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 5);
    cpu.writeSysreg(ICC_BPR1_EL1, 3);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 5, 'BPR1 write ignored');
    cpu.writeSysreg(ICC_BPR0_EL1, 2);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 3);
    cpu.writeSysreg(ICC_BPR0_EL1, 7);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 7, 'saturates at 7');
    assert.equal(cpu.readSysreg(ICC_BPR0_EL1), 7);
    cpu.writeSysreg(ICC_CTLR_EL1, 0);
    assert.equal(cpu.readSysreg(ICC_BPR1_EL1), 6, 'BPR1 kept its own value');
  });
});

describe('ICC_CTLR_EL1', () => {
  test('PRIbits (bits 10:8) = 4: five priority bits', () => {
    const cpu = make().vcpu(0);
    const ctlr = cpu.readSysreg(ICC_CTLR_EL1);
    assert.equal((ctlr >>> 8) & 7, 4);
    assert.equal(ctlr & 3, 0, 'CBPR and EOImode reset to 0');
  });

  test('EOImode and CBPR are writable, the other fields are read-only', () => {
    const cpu = make().vcpu(0);
    const ro = cpu.readSysreg(ICC_CTLR_EL1);
    cpu.writeSysreg(ICC_CTLR_EL1, 0xffffffff, 0xffffffff);
    assert.equal(cpu.readSysreg(ICC_CTLR_EL1), (ro | ICC_CTLR_CBPR | ICC_CTLR_EOIMODE) >>> 0);
    cpu.writeSysreg(ICC_CTLR_EL1, ICC_CTLR_EOIMODE);
    assert.equal(cpu.readSysreg(ICC_CTLR_EL1), (ro | ICC_CTLR_EOIMODE) >>> 0);
    cpu.writeSysreg(ICC_CTLR_EL1, ICC_CTLR_CBPR);
    assert.equal(cpu.readSysreg(ICC_CTLR_EL1), (ro | ICC_CTLR_CBPR) >>> 0);
    cpu.writeSysreg(ICC_CTLR_EL1, ~(ICC_CTLR_CBPR | ICC_CTLR_EOIMODE) >>> 0);
    assert.equal(cpu.readSysreg(ICC_CTLR_EL1), ro);
  });

  test('EOImode = 1 splits priority drop (EOIR) from deactivation (DIR)', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    enableCpuif(cpu);
    cpu.writeSysreg(ICC_CTLR_EL1, ICC_CTLR_EOIMODE);
    pendSgi(gic, cpu, 4, 0x40);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 4);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0x40);
    cpu.writeSysreg(ICC_EOIR1_EL1, 4);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff, 'priority dropped');
    assert.equal(Number(gic.readRedistReg(0, 0x10300)) & (1 << 4), 1 << 4, 'still active');
    cpu.writeSysreg(ICC_DIR_EL1, 4);
    assert.equal(Number(gic.readRedistReg(0, 0x10300)) & (1 << 4), 0, 'deactivated');
  });
});

describe('other CPU interface registers', () => {
  test('ICC_SRE_EL1 reads 7 and ignores writes', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readSysreg(ICC_SRE_EL1), 7);
    for (const v of [0, 1, 0xffffffff]) {
      cpu.writeSysreg(ICC_SRE_EL1, v);
      assert.equal(cpu.readSysreg(ICC_SRE_EL1), 7);
    }
    assert.equal(gic.stats().sysregUnknown, 0);
  });

  test('ICC_IGRPEN0/1_EL1 keep bit 0 only, independently', () => {
    const cpu = make().vcpu(0);
    assert.equal(cpu.readSysreg(ICC_IGRPEN0_EL1), 0);
    assert.equal(cpu.readSysreg(ICC_IGRPEN1_EL1), 0);
    cpu.writeSysreg(ICC_IGRPEN1_EL1, 0xffffffff);
    assert.equal(cpu.readSysreg(ICC_IGRPEN1_EL1), 1);
    assert.equal(cpu.readSysreg(ICC_IGRPEN0_EL1), 0);
    cpu.writeSysreg(ICC_IGRPEN0_EL1, 3);
    assert.equal(cpu.readSysreg(ICC_IGRPEN0_EL1), 1);
    cpu.writeSysreg(ICC_IGRPEN1_EL1, 2);
    assert.equal(cpu.readSysreg(ICC_IGRPEN1_EL1), 0);
    assert.equal(cpu.readSysreg(ICC_IGRPEN0_EL1), 1);
    cpu.writeSysreg(ICC_IGRPEN0_EL1, 0);
    assert.equal(cpu.readSysreg(ICC_IGRPEN0_EL1), 0);
  });

  test('idle: RPR = 0xff, IAR0/1 = 1023, HPPIR0/1 = 1023, APRs = 0', () => {
    const gic = make();
    const cpu = gic.vcpu(1);
    enableCpuif(cpu);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 1023);
    assert.equal(cpu.readSysreg(ICC_IAR0_EL1), 1023);
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 1023);
    assert.equal(cpu.readSysreg(ICC_HPPIR0_EL1), 1023);
    assert.equal(cpu.readSysreg(ICC_AP0R0_EL1), 0);
    assert.equal(cpu.readSysreg(ICC_AP1R0_EL1), 0);
  });

  test('HPPIR/IAR follow the group of the highest-priority pending interrupt', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    enableCpuif(cpu);
    pendSgi(gic, cpu, 5, 0x20, 0);
    pendSgi(gic, cpu, 6, 0x60, 1);
    assert.equal(cpu.readSysreg(ICC_HPPIR0_EL1), 5);
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 1023);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 1023, 'the best one is Group 0');
    assert.equal(cpu.readSysreg(ICC_IAR0_EL1), 5);
    assert.equal(cpu.readSysreg(ICC_AP0R0_EL1), 1 << (0x20 >> 3));
    cpu.writeSysreg(ICC_EOIR0_EL1, 5);
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 6);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 6);
    assert.equal(cpu.readSysreg(ICC_AP1R0_EL1), 1 << (0x60 >> 3));
    cpu.writeSysreg(ICC_EOIR1_EL1, 6);
    assert.equal(cpu.readSysreg(ICC_AP1R0_EL1), 0);
  });

  test('writes to IAR, HPPIR and RPR are ignored', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    enableCpuif(cpu);
    pendSgi(gic, cpu, 7, 0xa0);
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 7);
    cpu.writeSysreg(ICC_IAR1_EL1, 7);
    cpu.writeSysreg(ICC_IAR0_EL1, 7);
    cpu.writeSysreg(ICC_HPPIR1_EL1, 0);
    cpu.writeSysreg(ICC_RPR_EL1, 0);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 7, 'still pending, not acknowledged');
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 7);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xa0);
    cpu.writeSysreg(ICC_RPR_EL1, 0xff);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xa0);
    assert.equal(cpu.readSysreg(ICC_AP1R0_EL1), 1 << (0xa0 >> 3));
    cpu.writeSysreg(ICC_EOIR1_EL1, 7);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
    assert.equal(gic.stats().sysregUnknown, 0);
  });

  test('AP0R1-3 / AP1R1-3 read 0 and ignore writes; write-only registers read 0', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    for (const r of [
      ICC_AP0R1_EL1,
      ICC_AP0R2_EL1,
      ICC_AP0R3_EL1,
      ICC_AP1R1_EL1,
      ICC_AP1R2_EL1,
      ICC_AP1R3_EL1,
    ]) {
      cpu.writeSysreg(r, 0xffffffff);
      assert.equal(cpu.readSysreg(r), 0, sysregName(r));
    }
    for (const r of [ICC_EOIR0_EL1, ICC_EOIR1_EL1, ICC_DIR_EL1, ICC_SGI1R_EL1]) {
      assert.equal(cpu.readSysreg(r), 0, sysregName(r));
    }
    assert.equal(gic.stats().sysregUnknown, 0);
  });

  test('an unknown encoding reads 0, ignores writes and counts sysregUnknown', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const enc = sysreg(3, 0, 12, 15, 7);
    assert.equal(
      unknownDelta(gic, () => assert.equal(cpu.readSysreg(enc), 0)),
      1,
    );
    assert.equal(
      unknownDelta(gic, () => cpu.writeSysreg(enc, 0xffffffff)),
      1,
    );
    assert.equal(cpu.readSysreg(ICC_PMR_EL1), 0, 'the write went nowhere');
    assert.equal(
      unknownDelta(gic, () => {
        cpu.readSysreg(sysreg(3, 0, 4, 6, 1)); // next to ICC_PMR_EL1
        cpu.readSysreg(sysreg(3, 4, 12, 12, 5)); // ICC_SRE_EL2: not for an EL1 guest
      }),
      2,
    );
  });

  test('CNTFRQ_EL0 reads 62.5 MHz and ignores writes', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readSysreg(CNTFRQ_EL0), 62_500_000);
    cpu.writeSysreg(CNTFRQ_EL0, 1);
    assert.equal(cpu.readSysreg(CNTFRQ_EL0), 62_500_000);
    assert.equal(cpu.readSysreg64(CNTFRQ_EL0), 62_500_000n);
  });

  test('a 64-bit register read survives an IRQ taken right after the MRS', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    enableCpuif(cpu);
    const ticks = 5 * 2 ** 32 + 12345;
    gic.advanceTime(ticks);
    const acked: number[] = [];
    cpu.onIrq((c) => {
      const intid = c.readSysreg(ICC_IAR1_EL1);
      acked.push(intid);
      c.writeSysreg(ICC_EOIR1_EL1, intid);
    });
    setupSgi(cpu, 9, 0x80);
    cpu.unmaskIrqs();
    assert.deepEqual(acked, []);
    pend(gic, 0, 9);
    assert.equal(cpu.readSysreg64(CNTVCT_EL0), BigInt(ticks));
    assert.deepEqual(acked, [9]);
  });
});

describe('sysreg names', () => {
  test('parseSysreg and sysregName round-trip every name in SYSREG_NAMES', () => {
    const names = Object.keys(SYSREG_NAMES);
    assert.ok(names.length >= 31);
    for (const name of names) {
      const enc = SYSREG_NAMES[name];
      assert.equal(parseSysreg(name), enc, name);
      assert.equal(parseSysreg(name.toLowerCase()), enc, `${name} in lower case`);
      assert.equal(sysregName(enc), name);
    }
    assert.equal(new Set(Object.values(SYSREG_NAMES)).size, names.length, 'encodings are distinct');
  });

  test('known encodings', () => {
    assert.equal(SYSREG_NAMES.ICC_PMR_EL1, sysreg(3, 0, 4, 6, 0));
    assert.equal(SYSREG_NAMES.ICC_IAR1_EL1, sysreg(3, 0, 12, 12, 0));
    assert.equal(SYSREG_NAMES.ICC_SGI1R_EL1, sysreg(3, 0, 12, 11, 5));
    assert.equal(SYSREG_NAMES.CNTFRQ_EL0, sysreg(3, 3, 14, 0, 0));
    // KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS packing: Op0[15:14] Op1[13:11] CRn[10:7] CRm[6:3] Op2[2:0].
    assert.equal(ICC_PMR_EL1, 0xc230);
    assert.equal(ICC_IAR1_EL1, 0xc660);
  });

  test("the generic form 's3_0_c12_c12_0' parses, and unknown encodings print in it", () => {
    assert.equal(parseSysreg('s3_0_c12_c12_0'), ICC_IAR1_EL1);
    assert.equal(parseSysreg('S3_0_C12_C12_0'), ICC_IAR1_EL1);
    assert.equal(sysregName(ICC_IAR1_EL1), 'ICC_IAR1_EL1');
    const unknown = sysreg(3, 0, 12, 15, 7);
    assert.equal(sysregName(unknown), 's3_0_c12_c15_7');
    assert.equal(parseSysreg(sysregName(unknown)), unknown);
  });

  test('invalid names parse to -1', () => {
    for (const bad of [
      '',
      'ICC_FOO_EL1',
      's4_0_c0_c0_0',
      's3_8_c0_c0_0',
      's3_0_c16_c0_0',
      's3_0_c0_c0_8',
      's3_0_c12',
    ]) {
      assert.equal(parseSysreg(bad), -1, JSON.stringify(bad));
    }
  });

  test('property: parseSysreg(sysregName(enc)) === enc for every encoding', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 7 }),
        (op0, op1, crn, crm, op2) => {
          const enc = sysreg(op0, op1, crn, crm, op2);
          assert.equal(parseSysreg(sysregName(enc)), enc);
          assert.equal(parseSysreg(`s${op0}_${op1}_c${crn}_c${crm}_${op2}`), enc);
        },
      ),
      { numRuns: 500 },
    );
  });
});
