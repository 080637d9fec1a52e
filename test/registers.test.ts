/**
 * Distributor and redistributor register conformance (GIC IHI 0069 §12.9/§12.10, KVM's
 * vgic-mmio-v3.c): reset values, read-only registers, the kvm-unit-tests gicv2-mmio style
 * IPRIORITYR checks, RAZ/WI ranges, access width and alignment, ICFGR and the userspace
 * (save/restore) view of the pending state.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import './helpers/fc-seed.ts';
import {
  GICD_CTLR,
  GICD_ICACTIVER,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IGRPMODR,
  GICD_IIDR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GICD_ITARGETSR,
  GICD_PIDR2,
  GICD_STATUSR,
  GICD_TYPER,
  GICD_TYPER2,
  GICR_CTLR,
  GICR_ICFGR0,
  GICR_ICPENDR0,
  GICR_IGROUPR0,
  GICR_IIDR,
  GICR_IPRIORITYR0,
  GICR_ISENABLER0,
  GICR_ISPENDR0,
  GICR_PIDR2,
  GICR_STRIDE_V3,
  GICR_TYPER,
  GICR_WAKER,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  Vgic,
  VgicError,
  type VgicStats,
  type VgicV3Options,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
} from '../src/index.ts';

const GICD = VIRT_GICD_BASE;
const GICR = VIRT_GICR_BASE;
const KVM_IIDR = 0x4b00343b;
const PRI_MASK = 0xf8;

function make(opts: VgicV3Options = {}): Vgic {
  return Vgic.create({ vcpus: 4, spis: 224, lrs: 4, time: 'virtual', ...opts });
}

const rd = (v: number, base = GICR): number => base + v * GICR_STRIDE_V3;
const sgiBase = (v: number, base = GICR): number => rd(v, base) + 0x10000;

type Counter = Exclude<keyof VgicStats, 'vcpus'>;

/** How much `fn` moved each counter. */
function counted(gic: Vgic, fn: () => void): Record<Counter, number> {
  const before = gic.stats();
  fn();
  const after = gic.stats();
  const out = {} as Record<Counter, number>;
  for (const k of Object.keys(before) as (keyof VgicStats)[]) {
    if (k !== 'vcpus') out[k] = after[k] - before[k];
  }
  return out;
}

const NO_ERRORS = { mmioBadAccess: 0, mmioUnmapped: 0, mmioReadOnlyWrite: 0 };
function assertNoErrors(d: Record<Counter, number>): void {
  assert.deepEqual(
    { mmioBadAccess: d.mmioBadAccess, mmioUnmapped: d.mmioUnmapped, mmioReadOnlyWrite: d.mmioReadOnlyWrite },
    NO_ERRORS,
  );
}

/** The GICD_TYPER a vgic without LPIs must report for `spis` SPIs. */
function expectedTyper(spis: number): number {
  const itLines = (32 + spis) / 32 - 1;
  return (itLines | (9 << 19) | (1 << 25)) >>> 0;
}

describe('reset values', () => {
  test('GICD_CTLR reads ARE|DS (0x50), from the guest and from userspace', () => {
    const gic = make();
    assert.equal(gic.vcpu(0).readl(GICD + GICD_CTLR), 0x50);
    assert.equal(gic.readDistReg(GICD_CTLR), 0x50n);
  });

  test('GICD_CTLR keeps EnableGrp0/1 only: ARE and DS stay set, RWP reads 0', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_CTLR, 0xffffffff);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x53);
    cpu.writel(GICD + GICD_CTLR, 0);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x50);
    cpu.writel(GICD + GICD_CTLR, 2);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x52);
  });

  for (const spis of [32, 64, 224, 480, 960]) {
    test(`GICD_TYPER with ${spis} SPIs: ITLinesNumber, IDbits=10, No1N, no LPIS`, () => {
      const gic = make({ spis });
      const typer = gic.vcpu(0).readl(GICD + GICD_TYPER);
      assert.equal(typer & 0x1f, (32 + spis) / 32 - 1, 'ITLinesNumber');
      assert.equal((typer >>> 19) & 0x1f, 9, 'IDbits field (10 bits of INTID)');
      assert.equal((typer >>> 25) & 1, 1, 'No1N');
      assert.equal((typer >>> 17) & 1, 0, 'LPIS');
      assert.equal(typer, expectedTyper(spis));
      assert.equal(gic.readDistReg(GICD_TYPER), BigInt(expectedTyper(spis)));
    });
  }

  test('GICD_IIDR, GICD_TYPER2, GICD_PIDR2, GICD_STATUSR', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readl(GICD + GICD_IIDR), KVM_IIDR);
    assert.equal(cpu.readl(GICD + GICD_TYPER2), 0);
    assert.equal(GICD_PIDR2, 0xffe8);
    assert.equal(cpu.readl(GICD + GICD_PIDR2), 0x3b);
    assert.equal(cpu.readl(GICD + GICD_STATUSR), 0);
    // The rest of the ID block carries nothing (PIDR4-7, PIDR0/1/3, CIDR0-3).
    for (let off = 0xffd0; off < 0x10000; off += 4) {
      if (off !== GICD_PIDR2) assert.equal(cpu.readl(GICD + off), 0, `ID register 0x${off.toString(16)}`);
    }
  });

  test('GICR_TYPER with 3 vCPUs: processor number, affinity, Last only on the last', () => {
    const gic = make({ vcpus: 3 });
    for (let i = 0; i < 3; i++) {
      const cpu = gic.vcpu(i);
      const last = i === 2 ? 1 << 4 : 0;
      const lo = ((i << 8) | last) >>> 0;
      const hi = i; // Aff0 = i, Aff1 = 0
      // Every vCPU sees every redistributor.
      assert.equal(gic.vcpu(0).readl(rd(i) + GICR_TYPER), lo);
      assert.equal(cpu.readl(rd(i) + GICR_TYPER), lo);
      assert.equal(cpu.readl(rd(i) + GICR_TYPER + 4), hi);
      assert.equal(cpu.readq(rd(i) + GICR_TYPER), (BigInt(hi) << 32n) | BigInt(lo));
      assert.equal(gic.readRedistReg(i, GICR_TYPER, 8), (BigInt(hi) << 32n) | BigInt(lo));
      assert.equal(gic.readRedistReg(i, GICR_TYPER + 4), BigInt(hi));
      assert.equal(lo & 1, 0, 'PLPIS clear without LPIs');
    }
  });

  test('GICR_TYPER affinity: Aff0 = i & 15, Aff1 = i >> 4 (20 vCPUs)', () => {
    const gic = make({ vcpus: 20 });
    const cpu = gic.vcpu(0);
    for (let i = 0; i < 20; i++) {
      const typer = cpu.readq(rd(i) + GICR_TYPER);
      const aff = Number(typer >> 32n);
      assert.equal(aff & 0xff, i & 15, `Aff0 of ${i}`);
      assert.equal((aff >>> 8) & 0xff, i >> 4, `Aff1 of ${i}`);
      assert.equal(aff >>> 16, 0, `Aff2/Aff3 of ${i}`);
      assert.equal(Number((typer >> 8n) & 0xffffn), i, `Processor_Number of ${i}`);
      assert.equal(Number((typer >> 4n) & 1n), i === 19 ? 1 : 0, `Last of ${i}`);
    }
  });

  test('GICR_TYPER.Last is set on the last redistributor of each region', () => {
    const second = 0x0a000000;
    const gic = make({
      vcpus: 4,
      redistRegions: [
        { base: GICR, count: 2 },
        { base: second, count: 2 },
      ],
    });
    const cpu = gic.vcpu(0);
    const bases = [rd(0), rd(1), rd(0, second), rd(1, second)];
    bases.forEach((addr, i) => {
      const typer = cpu.readq(addr + GICR_TYPER);
      assert.equal(Number((typer >> 8n) & 0xffffn), i, `Processor_Number at 0x${addr.toString(16)}`);
      assert.equal(Number(typer >> 32n), i, `affinity of ${i}`);
      assert.equal(Number((typer >> 4n) & 1n), i % 2, `Last of ${i}`);
      assert.equal(gic.readRedistReg(i, GICR_TYPER), typer & 0xffffffffn);
    });
    // The first region holds 2 redistributors only: its third slot is not a redistributor.
    const d = counted(gic, () => assert.equal(cpu.readl(rd(2) + GICR_TYPER), 0));
    assert.equal(d.mmioUnmapped, 1);
  });

  test('GICR_TYPER.Last with a region larger than the vCPUs it holds', () => {
    const gic = make({ vcpus: 3, redistRegions: [{ base: GICR, count: 8 }] });
    const cpu = gic.vcpu(0);
    assert.deepEqual(
      [0, 1, 2].map((i) => (cpu.readl(rd(i) + GICR_TYPER) >>> 4) & 1),
      [0, 0, 1],
    );
  });

  test('GICR_IIDR, GICR_PIDR2 and GICR_CTLR', () => {
    const gic = make();
    for (let i = 0; i < 4; i++) {
      const cpu = gic.vcpu(i);
      assert.equal(cpu.readl(rd(i) + GICR_IIDR), KVM_IIDR);
      assert.equal(cpu.readl(rd(i) + GICR_PIDR2), 0x3b);
      assert.equal(cpu.readl(rd(i) + GICR_CTLR), 0, 'no LPIs: EnableLPIs, CES, IR clear');
      assert.equal(gic.readRedistReg(i, GICR_IIDR), BigInt(KVM_IIDR));
    }
  });

  test('GICR_WAKER reads 0 and ignores writes', () => {
    const gic = make();
    const cpu = gic.vcpu(1);
    assert.equal(cpu.readl(rd(1) + GICR_WAKER), 0);
    const d = counted(gic, () => {
      cpu.writel(rd(1) + GICR_WAKER, 0x2); // ProcessorSleep
      cpu.writel(rd(1) + GICR_WAKER, 0xffffffff);
    });
    assert.equal(cpu.readl(rd(1) + GICR_WAKER), 0);
    assertNoErrors(d);
  });

  test('per-IRQ reset state: group 1, disabled, not pending, priority 0, level SPIs', () => {
    const gic = make();
    const cpu = gic.vcpu(2);
    assert.equal(cpu.readl(rd(2) + GICR_IGROUPR0), 0xffffffff);
    assert.equal(cpu.readl(rd(2) + GICR_ISENABLER0), 0);
    assert.equal(cpu.readl(rd(2) + GICR_ISPENDR0), 0);
    for (let n = 1; n < 8; n++) {
      assert.equal(cpu.readl(GICD + GICD_IGROUPR + 4 * n), 0xffffffff);
      assert.equal(cpu.readl(GICD + GICD_ISENABLER + 4 * n), 0);
      assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4 * n), 0);
      assert.equal(cpu.readl(GICD + GICD_ISACTIVER + 4 * n), 0);
      assert.equal(cpu.readl(GICD + GICD_ICFGR + 8 * n), 0);
    }
    assert.equal(cpu.readl(GICD + GICD_IPRIORITYR + 32), 0);
  });
});

describe('read-only registers', () => {
  const patterns = [0xffffffff, 0xa5a55a5a, 0];

  const dist: [string, number][] = [
    ['GICD_TYPER', GICD_TYPER],
    ['GICD_IIDR', GICD_IIDR],
    ['GICD_TYPER2', GICD_TYPER2],
    ['GICD_PIDR2', GICD_PIDR2],
  ];
  for (const [name, off] of dist) {
    test(`${name} ignores writes and counts them`, () => {
      const gic = make();
      const cpu = gic.vcpu(0);
      const before = cpu.readl(GICD + off);
      for (const p of patterns) {
        const d = counted(gic, () => cpu.writel(GICD + off, p));
        assert.equal(d.mmioReadOnlyWrite, 1, `write of 0x${p.toString(16)}`);
        assert.equal(cpu.readl(GICD + off), before);
      }
    });
  }

  test('GICR_TYPER and GICR_IIDR ignore writes (32- and 64-bit) and count them', () => {
    const gic = make();
    const cpu = gic.vcpu(3);
    for (let i = 0; i < 4; i++) {
      const typer = cpu.readq(rd(i) + GICR_TYPER);
      const iidr = cpu.readl(rd(i) + GICR_IIDR);
      const pidr2 = cpu.readl(rd(i) + GICR_PIDR2);
      for (const p of patterns) {
        const d = counted(gic, () => {
          cpu.writel(rd(i) + GICR_TYPER, p);
          cpu.writel(rd(i) + GICR_TYPER + 4, p);
          cpu.writeq(rd(i) + GICR_TYPER, (BigInt(p) << 32n) | BigInt(p));
          cpu.writel(rd(i) + GICR_IIDR, p);
          cpu.writel(rd(i) + GICR_PIDR2, p);
        });
        assert.equal(d.mmioReadOnlyWrite, 5);
        assert.equal(cpu.readq(rd(i) + GICR_TYPER), typer);
        assert.equal(cpu.readl(rd(i) + GICR_IIDR), iidr);
        assert.equal(cpu.readl(rd(i) + GICR_PIDR2), pidr2);
      }
    }
  });

  test('userspace writes to GICD_TYPER do not change it either', () => {
    const gic = make({ spis: 64 });
    gic.writeDistReg(GICD_TYPER, 0xffffffff);
    assert.equal(gic.readDistReg(GICD_TYPER), BigInt(expectedTyper(64)));
  });
});

describe('IPRIORITYR (kvm-unit-tests gicv2-mmio style, on GICv3)', () => {
  const first = GICD + GICD_IPRIORITYR + 32; // first SPI word

  function setup(spis = 224) {
    const gic = make({ spis });
    const cpu = gic.vcpu(0);
    const nrIrqs = ((cpu.readl(GICD + GICD_TYPER) & 0x1f) + 1) * 32;
    return { gic, cpu, nrIrqs };
  }

  test('all 1s: the implemented mask is the same in every byte and is 0xf8 (5 bits)', () => {
    const { cpu } = setup();
    cpu.writel(first, 0xffffffff);
    const mask = cpu.readl(first);
    const b = [0, 1, 2, 3].map((i) => (mask >>> (8 * i)) & 0xff);
    assert.ok(
      b.every((x) => x === b[0]),
      `mask bytes differ: 0x${mask.toString(16)}`,
    );
    assert.equal(b[0], PRI_MASK);
    let bits = 0;
    for (let x = b[0]; x !== 0; x &= x - 1) bits++;
    assert.ok(bits >= 4, 'at least 4 priority bits');
    assert.equal(bits, 5);
  });

  test('writing 0 reads back 0', () => {
    const { cpu } = setup();
    cpu.writel(first, 0xffffffff);
    cpu.writel(first, 0);
    assert.equal(cpu.readl(first), 0);
  });

  test('0xff7fbf3f reads back as pattern & mask', () => {
    const { cpu } = setup();
    const pattern = 0xff7fbf3f;
    cpu.writel(first, pattern);
    assert.equal(cpu.readl(first), (pattern & 0xf8f8f8f8) >>> 0);
    assert.equal(cpu.readl(first), 0xf878b838);
  });

  test('byte access: readb(+1) returns byte 1, writeb to byte 2 shows in the word', () => {
    const { cpu } = setup();
    const pattern = 0xff7fbf3f;
    cpu.writel(first, pattern);
    const word = cpu.readl(first);
    for (let i = 0; i < 4; i++) assert.equal(cpu.readb(first + i), (word >>> (8 * i)) & 0xff, `byte ${i}`);
    assert.equal(cpu.readb(first + 1), 0xb8);
    cpu.writeb(first + 2, 0x1f);
    const expected = ((word & ~0x00ff0000) | ((0x1f & PRI_MASK) << 16)) >>> 0;
    assert.equal(cpu.readl(first), expected);
    assert.equal(cpu.readb(first + 2), 0x18);
  });

  for (const spis of [32, 224, 960]) {
    test(`${spis} SPIs: the word at nr_irqs is RAZ/WI, the last SPI word is writable`, () => {
      const { gic, cpu, nrIrqs } = setup(spis);
      assert.equal(nrIrqs, 32 + spis);
      const beyond = GICD + GICD_IPRIORITYR + nrIrqs;
      const d = counted(gic, () => cpu.writel(beyond, 0xffffffff));
      assertNoErrors(d);
      assert.equal(cpu.readl(beyond), 0);
      assert.equal(cpu.readb(beyond), 0);
      const last = GICD + GICD_IPRIORITYR + nrIrqs - 4;
      cpu.writel(last, 0xffffffff);
      assert.equal(cpu.readl(last), 0xf8f8f8f8);
      cpu.writeb(last + 3, 0x48);
      assert.equal(gic.readDistReg(GICD_IPRIORITYR + nrIrqs - 4), 0x48f8f8f8n);
    });
  }

  test('SGI/PPI priorities in SGI_base have the same 5-bit mask and are per vCPU', () => {
    const gic = make();
    gic.vcpu(1).writel(rd(1) + GICR_IPRIORITYR0, 0xffffffff);
    gic.vcpu(1).writeb(rd(1) + GICR_IPRIORITYR0 + 28, 0x77);
    assert.equal(gic.vcpu(1).readl(rd(1) + GICR_IPRIORITYR0), 0xf8f8f8f8);
    assert.equal(gic.vcpu(1).readb(rd(1) + GICR_IPRIORITYR0 + 28), 0x70);
    assert.equal(gic.vcpu(0).readl(rd(0) + GICR_IPRIORITYR0), 0);
    assert.equal(gic.readRedistReg(1, GICR_IPRIORITYR0), 0xf8f8f8f8n);
    assert.equal(gic.readRedistReg(2, GICR_IPRIORITYR0), 0n);
  });
});

describe('RAZ/WI', () => {
  test('the first 32 INTIDs of the GICD per-IRQ registers are RAZ/WI and leave the private IRQs alone', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const offsets = [
      GICD_IGROUPR,
      GICD_ISENABLER,
      GICD_ICENABLER,
      GICD_ISPENDR,
      GICD_ICPENDR,
      GICD_ISACTIVER,
      GICD_ICACTIVER,
      GICD_ICFGR,
      GICD_ICFGR + 4,
      GICD_IGRPMODR,
    ];
    for (let n = 0; n < 8; n++) offsets.push(GICD_IPRIORITYR + 4 * n);
    for (const off of offsets) {
      const d = counted(gic, () => cpu.writel(GICD + off, 0xffffffff));
      assertNoErrors(d);
      assert.equal(cpu.readl(GICD + off), 0, `GICD offset 0x${off.toString(16)}`);
      assert.equal(gic.readDistReg(off), 0n, `userspace GICD offset 0x${off.toString(16)}`);
    }
    cpu.writeb(GICD + GICD_IPRIORITYR + 5, 0xff);
    assert.equal(cpu.readb(GICD + GICD_IPRIORITYR + 5), 0);
    // Nothing reached vCPU 0's SGIs and PPIs.
    const sgi = rd(0);
    assert.equal(cpu.readl(sgi + GICR_ISENABLER0), 0);
    assert.equal(cpu.readl(sgi + GICR_ISPENDR0), 0);
    assert.equal(cpu.readl(sgi + GICR_IGROUPR0), 0xffffffff, 'ICENABLER/IGROUPR write of 0 ignored too');
    for (let n = 0; n < 8; n++) assert.equal(cpu.readl(sgi + GICR_IPRIORITYR0 + 4 * n), 0);
    assert.equal(cpu.readl(sgi + GICR_ICFGR0), 0xaaaaaaaa);
    assert.equal(cpu.readl(sgi + GICR_ICFGR0 + 4), 0);
  });

  test('GICD_IGROUPR0 write of 0 does not move SGIs to group 0', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_IGROUPR, 0);
    assert.equal(cpu.readl(rd(0) + GICR_IGROUPR0), 0xffffffff);
  });

  test('INTIDs beyond the implemented ones are RAZ/WI (64 SPIs)', () => {
    const gic = make({ spis: 64 }); // nr_irqs = 96
    const cpu = gic.vcpu(0);
    for (let n = 3; n < 32; n++) {
      for (const base of [GICD_IGROUPR, GICD_ISENABLER, GICD_ISPENDR, GICD_ISACTIVER]) {
        const off = base + 4 * n;
        const d = counted(gic, () => cpu.writel(GICD + off, 0xffffffff));
        assertNoErrors(d);
        assert.equal(cpu.readl(GICD + off), 0, `offset 0x${off.toString(16)}`);
      }
    }
    for (let intid = 96; intid < 1024; intid += 4) {
      cpu.writel(GICD + GICD_IPRIORITYR + intid, 0xffffffff);
      assert.equal(cpu.readl(GICD + GICD_IPRIORITYR + intid), 0, `IPRIORITYR of ${intid}`);
    }
    for (let intid = 96; intid < 1024; intid += 16) {
      cpu.writel(GICD + GICD_ICFGR + intid / 4, 0xaaaaaaaa);
      assert.equal(cpu.readl(GICD + GICD_ICFGR + intid / 4), 0, `ICFGR of ${intid}`);
    }
    // The implemented range just below is live.
    cpu.writel(GICD + GICD_ISENABLER + 8, 0x80000000);
    assert.equal(cpu.readl(GICD + GICD_ISENABLER + 8), 0x80000000);
    cpu.writel(GICD + GICD_ICENABLER + 8, 0x80000000);
    assert.equal(cpu.readl(GICD + GICD_ISENABLER + 8), 0);
  });

  test('GICD_IGRPMODR and GICD_ITARGETSR are RAZ/WI for SPIs', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    for (let n = 1; n < 8; n++) {
      const d = counted(gic, () => {
        cpu.writel(GICD + GICD_IGRPMODR + 4 * n, 0xffffffff);
        cpu.writel(GICD + GICD_ITARGETSR + 32 + 4 * n, 0xffffffff);
        cpu.writeb(GICD + GICD_ITARGETSR + 32 + 4 * n + 1, 0xff);
      });
      assertNoErrors(d);
      assert.equal(cpu.readl(GICD + GICD_IGRPMODR + 4 * n), 0);
      assert.equal(cpu.readl(GICD + GICD_ITARGETSR + 32 + 4 * n), 0);
      assert.equal(cpu.readb(GICD + GICD_ITARGETSR + 32 + 4 * n + 1), 0);
    }
    // IGRPMODR writes did not change the group either.
    assert.equal(cpu.readl(GICD + GICD_IGROUPR + 4), 0xffffffff);
  });

  test('GICD_IROUTER for INTIDs >= nr_irqs is RAZ/WI', () => {
    const gic = make({ spis: 64 }); // nr_irqs = 96
    const cpu = gic.vcpu(0);
    for (const intid of [96, 97, 500, 1019]) {
      const addr = GICD + GICD_IROUTER + 8 * intid;
      const d = counted(gic, () => {
        cpu.writeq(addr, 0x3n);
        cpu.writel(addr, 0x3);
      });
      assertNoErrors(d);
      assert.equal(cpu.readq(addr), 0n, `IROUTER of ${intid}`);
      assert.equal(cpu.readl(addr), 0);
    }
    const lastOk = GICD + GICD_IROUTER + 8 * 95;
    cpu.writeq(lastOk, 0x2n);
    assert.equal(cpu.readq(lastOk), 0x2n);
  });

  test('GICD_IROUTER keeps Aff0-2 only: the upper word and IRM are RAZ/WI', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const addr = GICD + GICD_IROUTER + 8 * 40;
    assert.equal(cpu.readq(addr), 0n, 'reset: routed to affinity 0.0.0');
    cpu.writeq(addr, 0xffffffffffffffffn);
    assert.equal(cpu.readq(addr), 0x00ffffffn);
    assert.equal(cpu.readl(addr + 4), 0);
    cpu.writeq(addr, 0x0000_00ab_8003_0201n); // Aff3 = 0xab, IRM = 1, Aff2.Aff1.Aff0 = 3.2.1
    assert.equal(cpu.readq(addr), 0x030201n);
    assert.equal(gic.readDistReg(GICD_IROUTER + 8 * 40, 8), 0x030201n);
  });

  test('GICD_IROUTER accepts 32-bit accesses to either half', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const addr = GICD + GICD_IROUTER + 8 * 33;
    const d = counted(gic, () => {
      cpu.writel(addr, 0x80000102);
      cpu.writel(addr + 4, 0xff);
    });
    assertNoErrors(d);
    assert.equal(cpu.readl(addr), 0x102);
    assert.equal(cpu.readl(addr + 4), 0);
    assert.equal(cpu.readq(addr), 0x102n);
    // A 32-bit write of the upper half leaves the lower half alone.
    cpu.writel(addr + 4, 0);
    assert.equal(cpu.readl(addr), 0x102);
  });

  test('GICD_IROUTER of the private INTIDs (0-31) is not a register', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const d = counted(gic, () => {
      cpu.writeq(GICD + GICD_IROUTER + 8 * 5, 0x1n);
      assert.equal(cpu.readq(GICD + GICD_IROUTER + 8 * 5), 0n);
    });
    assert.equal(d.mmioBadAccess, 0);
  });

  test('IROUTER routes: an SPI routed to vCPU 1 is acknowledged by vCPU 1 only', () => {
    const gic = make();
    const c0 = gic.vcpu(0);
    const c1 = gic.vcpu(1);
    c0.writel(GICD + GICD_CTLR, 2);
    c0.writeq(GICD + GICD_IROUTER + 8 * 50, 0x1n);
    c0.writeb(GICD + GICD_IPRIORITYR + 50, 0x80);
    c0.writel(GICD + GICD_ISENABLER + 4, 1 << (50 - 32));
    for (const c of [c0, c1]) {
      c.writeSysreg(ICC_PMR_EL1, 0xf0);
      c.writeSysreg(ICC_IGRPEN1_EL1, 1);
    }
    gic.irqLine(50, true);
    assert.equal(c0.readSysreg(ICC_IAR1_EL1), 1023);
    assert.equal(c1.readSysreg(ICC_IAR1_EL1), 50);
    c1.writeSysreg(ICC_EOIR1_EL1, 50);
  });
});

describe('access width and alignment', () => {
  test('16- and 64-bit accesses to GICD_CTLR read 0, are ignored and counted', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    let d = counted(gic, () => {
      assert.equal(cpu.readw(GICD + GICD_CTLR), 0);
      assert.equal(cpu.readq(GICD + GICD_CTLR), 0n);
      assert.equal(cpu.readb(GICD + GICD_CTLR), 0);
    });
    assert.equal(d.mmioBadAccess, 3);
    d = counted(gic, () => {
      cpu.writew(GICD + GICD_CTLR, 3);
      cpu.writeq(GICD + GICD_CTLR, 3n);
      cpu.writeb(GICD + GICD_CTLR, 3);
    });
    assert.equal(d.mmioBadAccess, 3);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x50, 'EnableGrp bits not set by bad-width writes');
  });

  test('16- and 64-bit and byte accesses to ISENABLER are ignored and counted', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const addr = GICD + GICD_ISENABLER + 4;
    cpu.writel(addr, 0x10);
    const d = counted(gic, () => {
      assert.equal(cpu.readw(addr), 0);
      assert.equal(cpu.readq(addr), 0n);
      assert.equal(cpu.readb(addr), 0);
      cpu.writew(addr, 0xffff);
      cpu.writeq(addr, 0xffffffffffffffffn);
      cpu.writeb(addr, 0xff);
    });
    assert.equal(d.mmioBadAccess, 6);
    assert.equal(cpu.readl(addr), 0x10);
    const r = counted(gic, () => assert.equal(cpu.readw(rd(0) + GICR_ISENABLER0), 0));
    assert.equal(r.mmioBadAccess, 1);
  });

  test('16-bit access to IPRIORITYR (8/32-bit only) is counted', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const addr = GICD + GICD_IPRIORITYR + 32;
    cpu.writel(addr, 0x10203040);
    const d = counted(gic, () => {
      assert.equal(cpu.readw(addr), 0);
      cpu.writew(addr, 0xffff);
    });
    assert.equal(d.mmioBadAccess, 2);
    assert.equal(cpu.readl(addr), 0x10203040);
  });

  test('misaligned 32-bit accesses read 0, are ignored and counted', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const prio = GICD + GICD_IPRIORITYR + 32;
    cpu.writel(prio, 0x80808080);
    cpu.writel(prio + 4, 0x80808080);
    const d = counted(gic, () => {
      for (const k of [1, 2, 3]) {
        assert.equal(cpu.readl(prio + k), 0);
        cpu.writel(prio + k, 0);
        assert.equal(cpu.readl(GICD + GICD_CTLR + k), 0);
        cpu.writel(GICD + GICD_CTLR + k, 0xffffffff);
      }
    });
    assert.equal(d.mmioBadAccess, 12);
    assert.equal(cpu.readl(prio), 0x80808080);
    assert.equal(cpu.readl(prio + 4), 0x80808080);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x50);
  });

  test('misaligned 64-bit accesses are counted (IROUTER, GICR_TYPER)', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const irouter = GICD + GICD_IROUTER + 8 * 40;
    cpu.writeq(irouter, 0x1n);
    const d = counted(gic, () => {
      assert.equal(cpu.readq(irouter + 4), 0n);
      cpu.writeq(irouter + 4, 0x3n);
      assert.equal(cpu.readq(rd(1) + GICR_TYPER + 4), 0n);
    });
    assert.equal(d.mmioBadAccess, 3);
    assert.equal(cpu.readq(irouter), 0x1n);
  });

  test('an 8-byte read of GICR_TYPER returns both halves', () => {
    const gic = make({ vcpus: 20 });
    const cpu = gic.vcpu(5);
    const d = counted(gic, () => {
      assert.equal(cpu.readq(rd(17) + GICR_TYPER), 0x0000_0101_0000_1100n);
      assert.equal(cpu.readq(rd(19) + GICR_TYPER), 0x0000_0103_0000_1310n);
    });
    assertNoErrors(d);
  });

  test('the 8-byte GICR_TYPER result survives an IRQ taken right after the load', () => {
    // The load completes before the exception is taken: a handler that itself reads system
    // registers must not clobber the high word of the interrupted readq.
    const gic = make({ vcpus: 20 });
    const cpu = gic.vcpu(17);
    cpu.writel(GICD + GICD_CTLR, 2);
    cpu.writel(rd(17) + GICR_ISENABLER0, 1 << 3);
    cpu.writeSysreg(ICC_PMR_EL1, 0xf0);
    cpu.writeSysreg(ICC_IGRPEN1_EL1, 1);
    const acked: number[] = [];
    cpu.onIrq((c) => {
      const intid = c.readSysreg(ICC_IAR1_EL1);
      acked.push(intid);
      c.writeSysreg(ICC_EOIR1_EL1, intid);
    });
    cpu.unmaskIrqs();
    gic.writeRedistReg(17, GICR_ISPENDR0, 1 << 3);
    assert.equal(cpu.readq(rd(17) + GICR_TYPER), 0x0000_0101_0000_1100n);
    assert.deepEqual(acked, [3], 'the IRQ was taken at that instruction boundary');
  });

  test('reserved offsets read 0 and count mmioUnmapped', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const reserved = [
      GICD + 0x20,
      GICD + 0x3c,
      GICD + 0xf00, // GICD_SGIR does not exist with ARE
      GICD + 0x8000,
      GICD + 0xc000,
      rd(0) + 0x30,
      rd(0) + 0x80, // between GICR_PENDBASER and GICR_INVLPIR
      rd(0) + 0x8000,
      sgiBase(0) + 0x84, // GICR_IGROUPR1 does not exist
      sgiBase(0) + 0x500,
    ];
    for (const addr of reserved) {
      const d = counted(gic, () => {
        assert.equal(cpu.readl(addr), 0, `0x${addr.toString(16)}`);
        cpu.writel(addr, 0xffffffff);
        assert.equal(cpu.readl(addr), 0);
      });
      assert.equal(d.mmioUnmapped, 3, `0x${addr.toString(16)}`);
      assert.equal(d.mmioBadAccess, 0);
    }
  });

  test('an access of an unsupported size (3, 16 bytes) is counted, not thrown', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    const d = counted(gic, () => {
      assert.equal(cpu.mmioRead(GICD + GICD_CTLR, 3), 0);
      cpu.mmioWrite(GICD + GICD_CTLR, 16, 3);
      assert.equal(cpu.mmioRead(0x1000, 3), 0); // not a device at all
    });
    assert.equal(d.mmioBadAccess, 3);
    assert.equal(cpu.readl(GICD + GICD_CTLR), 0x50);
  });

  test('host register accessors reject bad offsets and sizes with VgicError', () => {
    const gic = make();
    assert.throws(() => gic.readDistReg(0x10000), VgicError);
    assert.throws(() => gic.readDistReg(-4), VgicError);
    assert.throws(() => gic.readDistReg(0, 2 as 4), VgicError);
    assert.throws(() => gic.writeDistReg(0x10000, 0), VgicError);
    assert.throws(() => gic.readRedistReg(4, GICR_TYPER), VgicError);
    assert.throws(() => gic.readRedistReg(0, 0x20000), VgicError);
    assert.throws(() => gic.writeRedistReg(0, 0x20000, 0), VgicError);
  });

  test('property: guest accesses anywhere in the GICD/GICR frames never throw and keep the ID registers', () => {
    const frameAddr = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((o) => GICD + o),
      fc.integer({ min: 0, max: 0x1ffff }).chain((o) => fc.integer({ min: 0, max: 3 }).map((v) => rd(v) + o)),
      // Aligned offsets hit real registers far more often.
      fc.integer({ min: 0, max: 0x3fff }).map((w) => GICD + 4 * w),
      fc
        .integer({ min: 0, max: 0x7fff })
        .chain((w) => fc.integer({ min: 0, max: 3 }).map((v) => rd(v) + 4 * w)),
      // Just outside the frames.
      fc.integer({ min: -16, max: 16 }).map((d) => GICD + 0x10000 + d),
      fc.integer({ min: -16, max: 16 }).map((d) => GICR + 4 * GICR_STRIDE_V3 + d),
    );
    const access = fc.record({
      vcpu: fc.integer({ min: 0, max: 3 }),
      addr: frameAddr,
      size: fc.constantFrom(1, 2, 3, 4, 8, 16),
      write: fc.boolean(),
      lo: fc.integer({ min: 0, max: 0xffffffff }),
      hi: fc.integer({ min: 0, max: 0xffffffff }),
    });
    const user = fc.record({
      dist: fc.boolean(),
      vcpu: fc.integer({ min: 0, max: 3 }),
      word: fc.integer({ min: 0, max: 0x7fff }),
      size: fc.constantFrom(4 as const, 8 as const),
      write: fc.boolean(),
      value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    });
    fc.assert(
      fc.property(
        fc.array(access, { maxLength: 60 }),
        fc.array(user, { maxLength: 20 }),
        fc.array(fc.integer({ min: 32, max: 255 }), { maxLength: 8 }),
        (accesses, userAccesses, lines) => {
          const gic = make();
          for (const a of accesses) {
            const cpu = gic.vcpu(a.vcpu);
            if (a.write) cpu.mmioWrite(a.addr, a.size, a.lo, a.hi);
            else cpu.mmioRead(a.addr, a.size);
          }
          for (const u of userAccesses) {
            const off = (u.dist ? u.word & 0x3fff : u.word) * 4;
            // Host misuse (no register there, a width it does not allow, a value too wide) is a
            // VgicError; nothing else may escape, and the GIC must be unharmed.
            try {
              if (u.dist) {
                if (u.write) gic.writeDistReg(off, u.size === 4 ? u.value & 0xffffffffn : u.value, u.size);
                else gic.readDistReg(off, u.size);
              } else if (u.write)
                gic.writeRedistReg(u.vcpu, off, u.size === 4 ? u.value & 0xffffffffn : u.value, u.size);
              else gic.readRedistReg(u.vcpu, off, u.size);
            } catch (e) {
              if (!(e instanceof VgicError)) throw e;
            }
          }
          for (const l of lines) gic.irqLine(l, (l & 1) === 0);
          for (let v = 0; v < 4; v++) gic.vcpu(v).step();
          const cpu = gic.vcpu(0);
          assert.equal(cpu.readl(GICD + GICD_TYPER), expectedTyper(224));
          assert.equal(cpu.readl(GICD + GICD_IIDR), KVM_IIDR);
          assert.equal(cpu.readl(GICD + GICD_TYPER2), 0);
          assert.equal(cpu.readl(GICD + GICD_PIDR2), 0x3b);
          assert.equal((cpu.readl(GICD + GICD_CTLR) & 0x50) >>> 0, 0x50);
          for (let v = 0; v < 4; v++) {
            const last = v === 3 ? 0x10n : 0n;
            assert.equal(cpu.readq(rd(v) + GICR_TYPER), (BigInt(v) << 32n) | (BigInt(v) << 8n) | last);
            assert.equal(cpu.readl(rd(v) + GICR_IIDR), KVM_IIDR);
            assert.equal(cpu.readl(rd(v) + GICR_WAKER), 0);
            assert.equal(cpu.readl(rd(v) + GICR_ICFGR0), 0xaaaaaaaa);
            assert.equal(cpu.readl(rd(v) + GICR_ICFGR0 + 4), 0);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('ICFGR', () => {
  test('SGIs read as edge (0xaaaaaaaa in GICR_ICFGR0) and cannot be changed', () => {
    const gic = make();
    for (let v = 0; v < 4; v++) {
      const cpu = gic.vcpu(v);
      const addr = rd(v) + GICR_ICFGR0;
      assert.equal(cpu.readl(addr), 0xaaaaaaaa);
      cpu.writel(addr, 0);
      assert.equal(cpu.readl(addr), 0xaaaaaaaa);
      gic.writeRedistReg(v, GICR_ICFGR0, 0);
      assert.equal(gic.readRedistReg(v, GICR_ICFGR0), 0xaaaaaaaan);
    }
  });

  test('PPIs read as level and are read-only', () => {
    const gic = make();
    const cpu = gic.vcpu(1);
    const addr = rd(1) + GICR_ICFGR0 + 4;
    assert.equal(cpu.readl(addr), 0);
    cpu.writel(addr, 0xaaaaaaaa);
    assert.equal(cpu.readl(addr), 0);
    gic.writeRedistReg(1, GICR_ICFGR0 + 4, 0xaaaaaaaa);
    assert.equal(gic.readRedistReg(1, GICR_ICFGR0 + 4), 0n);
    // Still level: the PPI is pending only while its line is high.
    gic.ppiLine(1, 20, true);
    assert.equal(cpu.readl(rd(1) + GICR_ISPENDR0), 1 << 20);
    gic.ppiLine(1, 20, false);
    assert.equal(cpu.readl(rd(1) + GICR_ISPENDR0), 0);
  });

  test('SPI configuration is writable; Int_config[0] is RES0', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    for (let n = 2; n < 16; n++) {
      const addr = GICD + GICD_ICFGR + 4 * n;
      cpu.writel(addr, 0xaaaaaaaa);
      assert.equal(cpu.readl(addr), 0xaaaaaaaa);
      cpu.writel(addr, 0xffffffff);
      assert.equal(cpu.readl(addr), 0xaaaaaaaa);
      cpu.writel(addr, 0x55555555);
      assert.equal(cpu.readl(addr), 0);
      cpu.writel(addr, 0x0000000a);
      assert.equal(cpu.readl(addr), 0x0000000a);
    }
    assert.equal(gic.readDistReg(GICD_ICFGR + 8), 0x0an);
  });

  test('the configuration decides the pending semantics: edge latches, level follows the line', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_ICFGR + 8, 2 << (2 * 1)); // INTID 33 edge, INTID 34 level
    gic.irqLine(33, true);
    gic.irqLine(33, false);
    gic.irqLine(34, true);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 0b110);
    gic.irqLine(34, false);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 0b010);
  });
});

describe('userspace accessors', () => {
  test('ISPENDR shows the latch to userspace and latch|line to the guest', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    gic.irqLine(40, true); // level SPI, line high, no latch
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 1 << 8);
    assert.equal(cpu.readl(GICD + GICD_ICPENDR + 4), 1 << 8);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0n);
    cpu.writel(GICD + GICD_ISPENDR + 4, 1 << 9); // guest sets a latch
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), BigInt(1 << 9));
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), (1 << 8) | (1 << 9));
    gic.irqLine(40, false);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 1 << 9);
  });

  test('ICPENDR reads 0 from userspace and ignores userspace writes', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_ISPENDR + 4, 0xf0);
    assert.equal(gic.readDistReg(GICD_ICPENDR + 4), 0n);
    const d = counted(gic, () => gic.writeDistReg(GICD_ICPENDR + 4, 0xffffffff));
    assertNoErrors(d);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 0xf0);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0xf0n);
    // The guest's ICPENDR does clear.
    cpu.writel(GICD + GICD_ICPENDR + 4, 0x30);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 0xc0);
  });

  test('writeDistReg ISPENDR restores the latch exactly (clear bits clear it)', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_ICFGR + 8, 0xaaaaaaaa); // 32-47 edge
    gic.irqLine(35, true); // edge: latched
    gic.irqLine(44, true); // edge: latched
    gic.irqLine(60, true); // level: line only
    gic.writeDistReg(GICD_ISPENDR + 4, 0b101);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0b101n, 'latches 35 and 44 cleared, 32 and 34 set');
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), (0b101 | (1 << 28)) >>> 0);
    gic.writeDistReg(GICD_ISPENDR + 4, 0);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0n);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), (1 << 28) >>> 0, 'the line level is not the latch');
    gic.writeDistReg(GICD_ISPENDR + 4, 0xffffffff);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0xffffffffn);
    // Other words are untouched.
    assert.equal(gic.readDistReg(GICD_ISPENDR + 8), 0n);
  });

  test('restored latches are delivered to the guest', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writel(GICD + GICD_CTLR, 2);
    cpu.writel(GICD + GICD_ISENABLER + 4, 1 << 5);
    cpu.writeSysreg(ICC_PMR_EL1, 0xf0);
    cpu.writeSysreg(ICC_IGRPEN1_EL1, 1);
    gic.writeDistReg(GICD_ISPENDR + 4, 1 << 5);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 37);
    cpu.writeSysreg(ICC_EOIR1_EL1, 37);
    assert.equal(gic.readDistReg(GICD_ISPENDR + 4), 0n);
  });

  test('redistributor ISPENDR0/ICPENDR0 have the same userspace view', () => {
    const gic = make();
    const cpu = gic.vcpu(2);
    gic.ppiLine(2, 22, true); // level PPI, line high
    assert.equal(cpu.readl(rd(2) + GICR_ISPENDR0), 1 << 22);
    assert.equal(gic.readRedistReg(2, GICR_ISPENDR0), 0n);
    gic.writeRedistReg(2, GICR_ISPENDR0, (1 << 1) | (1 << 17));
    assert.equal(gic.readRedistReg(2, GICR_ISPENDR0), BigInt((1 << 1) | (1 << 17)));
    assert.equal(cpu.readl(rd(2) + GICR_ISPENDR0), (1 << 1) | (1 << 17) | (1 << 22));
    assert.equal(gic.readRedistReg(2, GICR_ICPENDR0), 0n);
    gic.writeRedistReg(2, GICR_ICPENDR0, 0xffffffff);
    assert.equal(gic.readRedistReg(2, GICR_ISPENDR0), BigInt((1 << 1) | (1 << 17)));
    gic.writeRedistReg(2, GICR_ISPENDR0, 1 << 17);
    assert.equal(gic.readRedistReg(2, GICR_ISPENDR0), BigInt(1 << 17));
    // Another vCPU's bank is untouched.
    assert.equal(gic.readRedistReg(1, GICR_ISPENDR0), 0n);
  });
});
