/**
 * GICv2 register semantics (GIC IHI 0048B §4.3-4.4, KVM's vgic-mmio-v2.c, QEMU's arm_gic.c):
 * reset values, banked registers, ITARGETSR routing and retargeting while pending, the GICD_SGIR
 * filters, per-source SGI pending state (CPENDSGIR/SPENDSGIR, several sources at once, the CPUID in
 * GICC_IAR), the CPU interface frame (PMR, BPR/ABPR, AckCtl, AIAR, FIQEn, EOImode + DIR, APR/RPR),
 * access widths and alignment, GICv3-only paths refused, GRP_CPU_REGS and snapshots.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatAdversarial, runAdversarial } from '../src/bench/adversarial.ts';
import {
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
  GICC_ABPR,
  GICC_AEOIR,
  GICC_AHPPIR,
  GICC_AIAR,
  GICC_APR0,
  GICC_BPR,
  GICC_CTLR,
  GICC_CTLR_ACKCTL,
  GICC_CTLR_FIQEN,
  GICC_EOIR,
  GICC_HPPIR,
  GICC_IAR,
  GICC_IIDR,
  GICC_NSAPR0,
  GICC_PMR,
  GICC_RPR,
  GICD_CPENDSGIR,
  GICD_CTLR,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IIDR,
  GICD_IPRIORITYR,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GICD_ITARGETSR,
  GICD_SGIR,
  GICD_SPENDSGIR,
  GICD_TYPER,
  GicV2Guest,
  ICC_IAR1_EL1,
  ICC_PMR_EL1,
  ICC_SRE_EL1,
  Vgic,
  VgicError,
  type VgicV3Options,
  VIRT_V2_GICC_BASE,
  VIRT_V2_GICD_BASE,
} from '../src/index.ts';

const D = VIRT_V2_GICD_BASE;
const C = VIRT_V2_GICC_BASE;
const SPURIOUS = 1023;

function make(opts: VgicV3Options = {}): Vgic {
  return Vgic.create({ gicVersion: 2, vcpus: 4, spis: 64, lrs: 4, time: 'virtual', ...opts });
}

/** Every vCPU with its distributor and CPU interface on, PMR 0xf0, a recording IRQ handler. */
function guests(gic: Vgic, handle = true): { g: GicV2Guest[]; got: number[][] } {
  const g: GicV2Guest[] = [];
  const got: number[][] = [];
  for (let v = 0; v < gic.nVcpus; v++) {
    const cpu = gic.vcpu(v);
    const gg = new GicV2Guest(cpu);
    gg.enableCpu(0xf0);
    g.push(gg);
    got.push([]);
    if (handle) {
      cpu.onIrq(() => {
        const iar = gg.iar();
        if ((iar & 0x3ff) >= 1020) return;
        got[v].push(iar);
        gg.eoi(iar);
      });
    }
  }
  g[0].enableDistributor();
  return { g, got };
}

const runAll = (gic: Vgic) => {
  for (let v = 0; v < gic.nVcpus; v++) gic.vcpu(v).unmaskIrqs();
};

describe('GICv2 distributor: reset values and identification', () => {
  test('CTLR, TYPER (ITLinesNumber, CPUNumber), IIDR, PIDR2 and their read-only-ness', () => {
    const gic = make({ vcpus: 3, spis: 64 });
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readl(D + GICD_CTLR), 0);
    const typer = cpu.readl(D + GICD_TYPER);
    assert.equal(typer & 0x1f, (32 + 64) / 32 - 1, 'ITLinesNumber');
    assert.equal((typer >>> 5) & 7, 2, 'CPUNumber = vCPUs - 1');
    assert.equal(typer & ~0xff, 0, 'no SecurityExtn, no LSPI');
    assert.equal(cpu.readl(D + GICD_IIDR), 0x4b00343b);
    assert.equal(cpu.readl(D + 0xfe8), 0x2b, 'PIDR2.ArchRev = 2');
    for (const v of [0xffffffff, 0xa5a55a5a, 0]) {
      cpu.writel(D + GICD_TYPER, v);
      cpu.writel(D + GICD_IIDR, v);
      cpu.writel(D + 0xfe8, v);
    }
    assert.equal(cpu.readl(D + GICD_TYPER), typer);
    assert.equal(cpu.readl(D + GICD_IIDR), 0x4b00343b);
    assert.equal(cpu.readl(D + 0xfe8), 0x2b);
    assert.equal(gic.stats().mmioReadOnlyWrite, 9);
    cpu.writel(D + GICD_CTLR, 0xffffffff);
    assert.equal(cpu.readl(D + GICD_CTLR), 1, 'only Enable is implemented');
  });

  test('interrupts reset to Group 0, SGIs enabled and edge, PPIs level, priorities 0', () => {
    const gic = make();
    const cpu = gic.vcpu(1);
    assert.equal(cpu.readl(D + GICD_IGROUPR), 0);
    assert.equal(cpu.readl(D + GICD_IGROUPR + 4), 0);
    assert.equal(cpu.readl(D + GICD_ISENABLER), 0xffff, 'SGIs enabled at reset (KVM, QEMU)');
    assert.equal(cpu.readl(D + GICD_ICFGR), 0xaaaaaaaa, 'SGIs edge');
    assert.equal(cpu.readl(D + GICD_ICFGR + 4), 0, 'PPIs level');
    assert.equal(cpu.readl(D + GICD_IPRIORITYR + 32), 0);
    assert.equal(cpu.readl(D + GICD_ISPENDR), 0);
  });

  test('ITARGETSR0-7 are banked and read-only: each CPU reads its own bit', () => {
    const gic = make({ vcpus: 4 });
    for (let v = 0; v < 4; v++) {
      const cpu = gic.vcpu(v);
      const want = (1 << v) * 0x01010101;
      for (let w = 0; w < 8; w++) assert.equal(cpu.readl(D + GICD_ITARGETSR + 4 * w), want >>> 0);
      cpu.writel(D + GICD_ITARGETSR, 0xffffffff);
      cpu.writeb(D + GICD_ITARGETSR + 5, 0xff);
      assert.equal(cpu.readl(D + GICD_ITARGETSR), want >>> 0);
      assert.equal(cpu.readb(D + GICD_ITARGETSR + 29), 1 << v);
      assert.equal(new GicV2Guest(cpu).cpuId, v);
    }
    // The host sees vCPU 0's bank, or any vCPU's through readDistRegAs.
    assert.equal(Number(gic.readDistReg(GICD_ITARGETSR)), 0x01010101);
    assert.equal(gic.readDistRegAs(2, GICD_ITARGETSR), 0x04040404);
  });

  test('SPI ITARGETSR: empty at reset with several CPUs, RAZ/WI with one; bits of absent CPUs dropped', () => {
    const gic = make({ vcpus: 3 });
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readl(D + GICD_ITARGETSR + 32), 0);
    cpu.writel(D + GICD_ITARGETSR + 32, 0xff07_0402 | 0);
    assert.equal(cpu.readl(D + GICD_ITARGETSR + 32), 0x07070402, 'only CPUs 0-2 exist');
    cpu.writeb(D + GICD_ITARGETSR + 35, 0x0c);
    assert.equal(cpu.readb(D + GICD_ITARGETSR + 35), 0x04);
    // One CPU interface: ITARGETSR RAZ/WI, every SPI goes to it (IHI 0048B §4.3.12, QEMU).
    const uni = make({ vcpus: 1 });
    const u = uni.vcpu(0);
    u.writel(D + GICD_ITARGETSR + 32, 0x02020202);
    assert.equal(u.readl(D + GICD_ITARGETSR + 32), 0);
    assert.equal(u.readl(D + GICD_ITARGETSR), 0);
    const ug = new GicV2Guest(u);
    ug.enableDistributor();
    ug.enableCpu();
    ug.setEdge(40, true);
    ug.enableIrq(40);
    uni.irqLine(40, true);
    assert.equal(ug.iar(), 40, 'delivered to the only CPU');
  });
});

describe('GICv2 routing: ITARGETSR', () => {
  test('an SPI goes to the lowest CPU of its targets; an empty list forwards it nowhere', () => {
    const gic = make();
    const { g, got } = guests(gic);
    runAll(gic);
    g[0].setEdge(40, true);
    g[0].enableIrq(40);
    g[0].setPriority(40, 0x80);
    gic.irqLine(40, true);
    for (let v = 0; v < 4; v++) gic.vcpu(v).step();
    assert.deepEqual(got, [[], [], [], []], 'no target: not delivered');
    assert.equal(Number(gic.readDistReg(GICD_ISPENDR + 4)) & (1 << 8), 1 << 8, 'but pending');
    g[0].setTargets(40, 0b1100);
    for (let v = 0; v < 4; v++) gic.vcpu(v).step();
    assert.deepEqual(got, [[], [], [40], []], 'pending SPI delivered once a target is named');
  });

  test('retargeting while pending moves the interrupt to the new CPU', () => {
    const gic = make();
    const { g, got } = guests(gic);
    g[0].setEdge(41, true);
    g[0].enableIrq(41);
    g[0].setTargets(41, 0b0001);
    // vCPU 0 has IRQs masked: the SPI waits in its LRs.
    gic.irqLine(41, true);
    gic.vcpu(0).step();
    assert.equal(gic.vcpu(0).outputLine(), 1, 'signalled to vCPU 0');
    g[1].setTargets(41, 0b0100);
    assert.equal(gic.vcpu(0).outputLine(), 0, 'gone from vCPU 0');
    gic.vcpu(2).unmaskIrqs();
    assert.deepEqual(got[2], [41]);
    gic.vcpu(0).unmaskIrqs();
    assert.deepEqual(got[0], [], 'delivered once, to the new target');
  });
});

describe('GICv2 SGIs', () => {
  test('GICD_SGIR filters: the list, all but self, self; 3 is reserved; CPUID in IAR', () => {
    const gic = make();
    const { g, got } = guests(gic);
    runAll(gic);
    g[1].sendSgi(3, 0b1001, 0);
    g[2].sendSgi(4, 0, 1);
    g[3].sendSgi(5, 0xff, 2);
    g[0].sendSgi(6, 0xff, 3);
    for (let v = 0; v < 4; v++) gic.vcpu(v).step();
    const sgi = (id: number, src: number) => (src << 10) | id;
    assert.deepEqual(got[0], [sgi(3, 1), sgi(4, 2)]);
    assert.deepEqual(got[1], [sgi(4, 2)]);
    assert.deepEqual(got[2], []);
    assert.deepEqual(
      got[3],
      [sgi(3, 1), sgi(4, 2), sgi(5, 3)].sort((a, b) => (a & 0x3ff) - (b & 0x3ff)),
    );
    assert.equal(gic.stats().sgiNoTarget, 0);
    g[0].sendSgi(1, 0xf0, 0);
    assert.equal(gic.stats().sgiNoTarget, 1, 'targets beyond the CPUs are dropped and counted');
  });

  test('one SGI pending from several sources: SPENDSGIR shows them, each is delivered with its CPUID', () => {
    const gic = make();
    const { g, got } = guests(gic);
    for (const src of [2, 0, 1]) g[src].sendSgi(7, 0b1000);
    const target = gic.vcpu(3);
    // SPENDSGIR1 (SGIs 4-7): byte 3 is SGI 7, a bit per source.
    assert.equal(target.readl(D + GICD_SPENDSGIR + 4), 0x07000000);
    assert.equal(target.readb(D + GICD_CPENDSGIR + 7), 0x07);
    assert.equal(target.readl(D + GICD_ISPENDR) & (1 << 7), 1 << 7);
    target.unmaskIrqs();
    assert.deepEqual(got[3], [7, (1 << 10) | 7, (2 << 10) | 7], 'lowest source first, one at a time');
    assert.equal(target.readl(D + GICD_SPENDSGIR + 4), 0);
  });

  test('several sources stay separate in the LRs: IAR, then EOIR names the source', () => {
    const gic = make();
    const { g } = guests(gic, false);
    g[0].sendSgi(2, 0b0010);
    g[2].sendSgi(2, 0b0010);
    const cpu = gic.vcpu(1);
    const a = g[1].iar();
    assert.equal(a, 2, 'from CPU 0');
    assert.equal(g[1].iar(), SPURIOUS, 'the second source waits for the first to be handled');
    g[1].eoi(a);
    const b = g[1].iar();
    assert.equal(b, (2 << 10) | 2, 'then CPU 2');
    assert.equal(cpu.readl(D + GICD_ISACTIVER) & 4, 4);
    g[1].eoi(b);
    assert.equal(cpu.readl(D + GICD_ISACTIVER) & 4, 0);
    assert.equal(g[1].iar(), SPURIOUS);
  });

  test('CPENDSGIR removes a source; the last one removed leaves the SGI not pending', () => {
    const gic = make();
    const { g, got } = guests(gic);
    g[0].sendSgi(9, 0b0100);
    g[1].sendSgi(9, 0b0100);
    const cpu = gic.vcpu(2);
    cpu.step();
    cpu.writeb(D + GICD_CPENDSGIR + 9, 0x01);
    assert.equal(cpu.readb(D + GICD_SPENDSGIR + 9), 0x02);
    cpu.unmaskIrqs();
    assert.deepEqual(got[2], [(1 << 10) | 9]);
    cpu.maskIrqs();
    g[3].sendSgi(9, 0b0100);
    g[0].sendSgi(9, 0b0100);
    cpu.writel(D + GICD_CPENDSGIR + 8, 0xff00);
    assert.equal(cpu.readl(D + GICD_ISPENDR) & (1 << 9), 0, 'no source left: not pending');
    cpu.unmaskIrqs();
    assert.deepEqual(got[2], [(1 << 10) | 9], 'the cleared sources are not delivered');
  });

  test('SPENDSGIR sets sources (byte and word); ISPENDR/ICPENDR ignore SGIs', () => {
    const gic = make();
    const { got } = guests(gic);
    const cpu = gic.vcpu(0);
    cpu.writel(D + GICD_ISPENDR, 0xffff);
    assert.equal(cpu.readl(D + GICD_ISPENDR), 0, 'ISPENDR does not make SGIs pending');
    cpu.writeb(D + GICD_SPENDSGIR + 1, 0x08);
    cpu.writel(D + GICD_SPENDSGIR + 12, 0x0200_0000);
    assert.equal(cpu.readl(D + GICD_SPENDSGIR), 0x0800);
    cpu.writel(D + GICD_ICPENDR, 0xffff);
    assert.equal(cpu.readl(D + GICD_ISPENDR), (1 << 1) | (1 << 15), 'ICPENDR does not clear them');
    cpu.unmaskIrqs();
    assert.deepEqual(got[0], [(3 << 10) | 1, (1 << 10) | 15]);
  });
});

describe('GICv2 CPU interface (GICC)', () => {
  test('reset values and IIDR; IAR reads 1023 when nothing is pending', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readl(C + GICC_CTLR), 0);
    assert.equal(cpu.readl(C + GICC_PMR), 0);
    assert.equal(cpu.readl(C + GICC_BPR), 2);
    assert.equal(cpu.readl(C + GICC_ABPR), 3);
    assert.equal(cpu.readl(C + GICC_RPR), 0xff);
    assert.equal(cpu.readl(C + GICC_IIDR), 0x04b2043b);
    assert.equal(cpu.readl(C + GICC_IAR), SPURIOUS);
    assert.equal(cpu.readl(C + GICC_HPPIR), SPURIOUS);
    assert.equal(cpu.readl(C + GICC_APR0), 0);
    cpu.writel(C + GICC_PMR, 0xff);
    assert.equal(cpu.readl(C + GICC_PMR), 0xf8, '5 priority bits');
    cpu.writel(C + GICC_BPR, 0);
    assert.equal(cpu.readl(C + GICC_BPR), 2, 'BPR at least 2');
    cpu.writel(C + GICC_NSAPR0, 0xffffffff);
    assert.equal(cpu.readl(C + GICC_NSAPR0), 0, 'NSAPRn RAZ/WI');
    cpu.writel(C + GICC_APR0 + 4, 0xffffffff);
    assert.equal(cpu.readl(C + GICC_APR0 + 4), 0, 'APR1-3 RAZ/WI with 32 priority levels');
  });

  test('priority order, preemption through BPR, APR and RPR, EOI in reverse order', () => {
    const gic = make({ vcpus: 1 });
    const { g } = guests(gic, false);
    for (const [id, prio] of [
      [40, 0x80],
      [41, 0x40],
      [42, 0x20],
    ]) {
      g[0].setEdge(id, true);
      g[0].setPriority(id, prio);
      g[0].enableIrq(id);
    }
    gic.irqLine(40, true);
    const a = g[0].iar();
    assert.equal(a, 40);
    assert.equal(gic.vcpu(0).readl(C + GICC_RPR), 0x80);
    assert.equal(gic.vcpu(0).readl(C + GICC_APR0) >>> 0, 1 << (0x80 >> 3));
    gic.irqLine(41, true);
    assert.equal(g[0].iar(), 41, 'higher priority preempts');
    // BPR 7: one group priority, nothing preempts any more.
    gic.vcpu(0).writel(C + GICC_BPR, 7);
    gic.irqLine(42, true);
    assert.equal(gic.vcpu(0).readl(C + GICC_HPPIR), 42);
    assert.equal(g[0].iar(), SPURIOUS, 'no preemption with BPR 7');
    gic.vcpu(0).writel(C + GICC_BPR, 2);
    assert.equal(g[0].iar(), 42);
    g[0].eoi(42);
    g[0].eoi(41);
    assert.equal(gic.vcpu(0).readl(C + GICC_RPR), 0x80);
    g[0].eoi(40);
    assert.equal(gic.vcpu(0).readl(C + GICC_RPR), 0xff);
    assert.equal(gic.vcpu(0).readl(D + GICD_ISACTIVER + 4), 0);
  });

  test('Group 1: IAR reads 1022 without AckCtl, AIAR/AHPPIR acknowledge it; Group 0 as FIQ with FIQEn', () => {
    const gic = make({ vcpus: 1 });
    const { g } = guests(gic, false);
    const cpu = gic.vcpu(0);
    g[0].setEdge(50, true);
    g[0].enableIrq(50);
    g[0].setGroup1(50, true);
    gic.irqLine(50, true);
    assert.equal(cpu.readl(C + GICC_HPPIR), 1022);
    assert.equal(cpu.readl(C + GICC_AHPPIR), 50);
    assert.equal(cpu.readl(C + GICC_IAR), 1022);
    assert.equal(cpu.readl(C + GICC_AIAR), 50);
    cpu.writel(C + GICC_AEOIR, 50);
    assert.equal(cpu.readl(D + GICD_ISACTIVER + 4), 0);
    cpu.writel(C + GICC_CTLR, cpu.readl(C + GICC_CTLR) | GICC_CTLR_ACKCTL);
    gic.irqLine(50, true);
    assert.equal(cpu.readl(C + GICC_IAR), 50, 'AckCtl: IAR acknowledges Group 1');
    cpu.writel(C + GICC_EOIR, 50);
    // Group 0 is an IRQ unless FIQEn.
    g[0].setEdge(51, true);
    g[0].enableIrq(51);
    gic.irqLine(51, true);
    cpu.step();
    assert.equal(cpu.outputLine(), 1);
    cpu.writel(C + GICC_CTLR, cpu.readl(C + GICC_CTLR) | GICC_CTLR_FIQEN);
    assert.equal(cpu.outputLine(), 2, 'FIQEn: Group 0 as FIQ');
    assert.equal(cpu.readl(C + GICC_AIAR), SPURIOUS, 'AIAR does not acknowledge Group 0');
    assert.equal(cpu.readl(C + GICC_IAR), 51);
    cpu.writel(C + GICC_EOIR, 51);
  });

  test('EOImode 1: EOIR drops priority, DIR deactivates', () => {
    const gic = make({ vcpus: 1 });
    const { g } = guests(gic, false);
    const cpu = gic.vcpu(0);
    g[0].setEoiMode(true);
    g[0].setEdge(45, true);
    g[0].enableIrq(45);
    gic.irqLine(45, true);
    const iar = g[0].iar();
    g[0].eoi(iar);
    assert.equal(cpu.readl(C + GICC_RPR), 0xff);
    assert.equal(cpu.readl(D + GICD_ISACTIVER + 4), 1 << 13, 'still active');
    g[0].dir(iar);
    assert.equal(cpu.readl(D + GICD_ISACTIVER + 4), 0);
  });

  test('the timer (HW-mapped PPI 27) fires, is acknowledged and deactivated through GICC', () => {
    const gic = make({ vcpus: 1 });
    const { g, got } = guests(gic, false);
    const cpu = gic.vcpu(0);
    cpu.onIrq(() => {
      const iar = g[0].iar();
      got[0].push(iar);
      cpu.writeSysreg(CNTV_CTL_EL0, 0); // quiet the timer, then EOI
      g[0].eoi(iar);
    });
    g[0].enableIrq(27);
    cpu.writeSysreg64(CNTV_CVAL_EL0, 100n);
    cpu.writeSysreg(CNTV_CTL_EL0, 1);
    gic.advanceTime(200);
    cpu.unmaskIrqs();
    assert.deepEqual(got[0], [27]);
  });
});

describe('GICv2 access rules', () => {
  test('byte access where the spec allows it; other widths, misalignment and 64-bit are RAZ/WI, counted', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    cpu.writeb(D + GICD_IPRIORITYR + 33, 0xff);
    assert.equal(cpu.readl(D + GICD_IPRIORITYR + 32), 0xf800);
    assert.equal(cpu.readb(D + GICD_IPRIORITYR + 33), 0xf8);
    let bad = gic.stats().mmioBadAccess;
    const badAccesses: [() => unknown, string][] = [
      [() => cpu.writeb(D + GICD_ISENABLER + 4, 0xff), 'ISENABLER byte'],
      [() => cpu.readw(D + GICD_IPRIORITYR + 32), 'IPRIORITYR halfword'],
      [() => cpu.readl(D + GICD_IPRIORITYR + 33), 'unaligned word'],
      [() => cpu.readq(D + GICD_ISENABLER), 'ISENABLER 64-bit'],
      [() => cpu.writeb(D + GICD_SGIR, 1), 'SGIR byte'],
      [() => cpu.readb(C + GICC_IAR), 'GICC byte'],
      [() => cpu.writew(C + GICC_PMR, 0xff), 'GICC halfword'],
      [() => cpu.readq(C + GICC_CTLR), 'GICC 64-bit'],
    ];
    for (const [f, what] of badAccesses) {
      f();
      assert.equal(gic.stats().mmioBadAccess, ++bad, what);
    }
    assert.equal(cpu.readl(D + GICD_ISENABLER + 4), 0);
    assert.equal(cpu.readl(C + GICC_PMR), 0);
    assert.equal(cpu.readl(D + 0xd00), 0, 'no IGRPMODR on a GICv2');
    assert.equal(cpu.readl(D + GICD_IPRIORITYR + 32 + 64), 0, 'beyond the implemented INTIDs');
    assert.equal(cpu.readl(C + 0x2000 - 4), 0);
    assert.ok(gic.stats().mmioUnmapped >= 2);
  });

  test('ICC_* system registers do not exist on a GICv2: RAZ/WI, counted; the timer registers do', () => {
    const gic = make();
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readSysreg(ICC_SRE_EL1), 0);
    cpu.writeSysreg(ICC_PMR_EL1, 0xf0);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 0);
    assert.equal(gic.stats().sysregUnknown, 3);
    assert.equal(cpu.readl(C + GICC_PMR), 0);
    cpu.writeSysreg(CNTV_CTL_EL0, 1);
    assert.equal(cpu.readSysreg(CNTV_CTL_EL0) & 1, 1);
  });

  test('the host API refuses GICv3-only paths and bad GICv2 options', () => {
    const gic = make();
    const refused = (f: () => unknown, re: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof VgicError && re.test(e.message));
    refused(() => gic.readRedistReg(0, 0), /GICv2 has no redistributors/);
    refused(() => gic.writeRedistReg(0, 0, 0), /GICv2 has no redistributors/);
    refused(() => gic.readCpuSysreg(0, ICC_PMR_EL1), /ICC_\*/);
    refused(() => gic.its(0), /no ITS/);
    refused(() => Vgic.create({ gicVersion: 2, vcpus: 9 }), /at most 8/);
    refused(() => Vgic.create({ gicVersion: 2, its: 1 }), /no ITS/);
    refused(
      () => Vgic.create({ gicVersion: 2, redistRegions: [{ base: 0x080a0000, count: 1 }] }),
      /redistributors/,
    );
    refused(() => Vgic.create({ cpuBase: 0x08010000 }), /GICv2 option/);
    refused(() => Vgic.create({ gicVersion: 2, cpuBase: 0x08010800 }), /4K-aligned/);
    refused(() => Vgic.create({ gicVersion: 2, cpuBase: 0x08000000 }), /overlaps/);
    refused(() => Vgic.create({ gicVersion: 4 as 3 }), /gicVersion must be 2 or 3/);
    refused(() => Vgic.create().readCpuReg(0, 0), /for a GICv2/);
    refused(() => gic.readCpuReg(0, GICC_IAR), /no GICC \(userspace\) register/);
    refused(() => gic.readCpuReg(4, 0), /vcpu/);
  });
});

describe('GICv2 userspace access and save/restore', () => {
  test('GRP_CPU_REGS: CTLR, PMR as VMPriMask, BPR, ABPR, APR0, IIDR', () => {
    const gic = make();
    const cpu = gic.vcpu(1);
    cpu.writel(C + GICC_PMR, 0xa8);
    cpu.writel(C + GICC_CTLR, 0x201);
    assert.equal(gic.readCpuReg(1, GICC_PMR), 0xa8 >> 3);
    assert.equal(gic.readCpuReg(1, GICC_CTLR), 0x201);
    gic.writeCpuReg(1, GICC_PMR, 0x1f);
    assert.equal(cpu.readl(C + GICC_PMR), 0xf8);
    gic.writeCpuReg(1, GICC_BPR, 4);
    gic.writeCpuReg(1, GICC_ABPR, 5);
    gic.writeCpuReg(1, GICC_APR0, 0x10);
    assert.equal(cpu.readl(C + GICC_BPR), 4);
    assert.equal(cpu.readl(C + GICC_ABPR), 5);
    assert.equal(cpu.readl(C + GICC_APR0), 0x10);
    assert.equal(gic.readCpuReg(1, GICC_IIDR), 0x04b2043b);
    assert.equal(gic.readCpuReg(0, GICC_PMR), 0, 'per vCPU');
  });

  test('a snapshot keeps pending sources and active state; the restored GIC delivers the rest', () => {
    const gic = make();
    const { g } = guests(gic, false);
    g[0].sendSgi(3, 0b0010);
    g[2].sendSgi(3, 0b0010);
    g[3].sendSgi(3, 0b0010);
    const first = g[1].iar();
    assert.equal(first, 3);
    g[0].setEdge(40, true);
    g[0].enableIrq(40);
    g[0].setTargets(40, 0b0010);
    gic.irqLine(40, true);
    const bytes = gic.snapshot();
    const r = Vgic.restore(bytes);
    assert.equal(r.gicVersion, 2);
    const rg = new GicV2Guest(r.vcpu(1));
    assert.equal(r.readDistRegAs(1, GICD_SPENDSGIR), 0x0c000000, 'sources 2 and 3 still pending');
    assert.equal(r.readDistRegAs(1, GICD_ISACTIVER) & (1 << 3), 1 << 3, 'SGI 3 active from CPU 0');
    rg.eoi(first);
    const got: number[] = [];
    for (let i = 0; i < 4; i++) {
      const iar = rg.iar();
      if (iar === SPURIOUS) break;
      got.push(iar);
      rg.eoi(iar);
    }
    assert.deepEqual(got, [(2 << 10) | 3, (3 << 10) | 3, 40]);
  });

  test('restore refuses a GICv2 SGI pending without a source, and an SPI target its ITARGETSR does not name', () => {
    const gic = make();
    new GicV2Guest(gic.vcpu(0)).enableDistributor();
    const bytes = gic.snapshot();
    const spiSlot = gic.state.spiBase + 8;
    const sgiSlot = 3;
    // Mutations through a restored GIC's state, then its snapshot (which seals a new checksum).
    const g2 = Vgic.restore(bytes);
    g2.state.irqFlags[sgiSlot] |= 2; // latch without a source
    assert.throws(() => Vgic.restore(g2.snapshot()), /SGI 3 of slot 3/);
    const g3 = Vgic.restore(bytes);
    g3.state.irqTarget[spiSlot] = 1;
    assert.throws(() => Vgic.restore(g3.snapshot()), /ITARGETSR/);
  });
});

describe('GICv2 under adversarial operations', () => {
  // Seeds whose first epochs build GICv2 worlds (a fifth of the worlds are GICv2): guest MMIO on
  // both frames, GICD_SGIR, the GICC acknowledge path, host calls, snapshots and mutated restores,
  // with the whole state checked (src/bench/invariants.ts) after every operation.
  for (const seed of [9, 19, 35]) {
    test(`seed ${seed}: 3000 operations with GICv2 worlds, no failure`, () => {
      const r = runAdversarial({ ops: 3000, seed, light: true, maxOpMs: 200 });
      assert.equal(r.failure, undefined, formatAdversarial(r));
      assert.ok((r.perKind['mmio-gicc']?.count ?? 0) > 0, 'a GICv2 world ran');
    });
  }
});

describe('GICv2 active SGIs', () => {
  test('an SGI made active through ISACTIVER is active from the accessing CPU (KVM active_source)', () => {
    const gic = make();
    guests(gic, false);
    const cpu = gic.vcpu(2);
    cpu.writel(D + GICD_ISACTIVER, 1 << 6);
    assert.equal(cpu.readl(D + GICD_ISACTIVER) & (1 << 6), 1 << 6);
    // Its list register carries CPUID 2, the ID an EOIR or DIR of it names (GICH_LR[12:10]).
    const s = gic.state;
    let lr = -1;
    for (let n = 0; n < s.nLrs; n++) {
      const w = s.lr[s.lrIndex(2, n)];
      if ((w & 0x3ff) === 6 && w & (1 << 29)) lr = w;
    }
    assert.ok(lr !== -1, 'SGI 6 is in an active LR of vCPU 2');
    assert.equal((lr >>> 10) & 7, 2);
  });
});
