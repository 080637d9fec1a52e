/**
 * The KVM selftest vgic_irq (tools/testing/selftests/kvm/arm64/vgic_irq.c) as vgic tests: the
 * guest asks "the host" to inject interrupts in one of several ways and checks that each arrives
 * exactly once, for {edge, level} × {EOImode 0, EOImode 1}; then preemption, invalid INTIDs,
 * restoring active state, and the two-vCPU tests asym_dir and group_en. Here the guest code and
 * the host code run in the same thread: a "hypercall" is a direct call.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP0,
  GICD_CTLR_ENABLE_GRP1,
  GICD_ISACTIVER,
  GICD_ISPENDR,
  GICR_ISACTIVER0,
  GICR_ISPENDR0,
  GicV3Guest,
  ICC_AP1R0_EL1,
  ICC_CTLR_EL1,
  ICC_DIR_EL1,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN0_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  type VCpu,
  Vgic,
  VgicError,
} from '../src/index.ts';

const SPURIOUS = 1023;
const MIN_SGI = 0;
const MIN_PPI = 16;
const MIN_SPI = 32;
const KVM_NUM_PRIOS = 32;
const CPU_PRIO_MASK = 0xf8;
const IRQ_DEFAULT_PRIO_REG = 0xf0;
/** The selftest's default: 64 INTIDs (32 SPIs). */
const NR_IRQS = 64;

type InjectCmd = 'edge-irq-line' | 'irq-line-high' | 'level-info-high' | 'write-ispendr' | 'write-isactiver';

interface InjectDesc {
  readonly cmd: InjectCmd;
  readonly sgi: boolean;
  readonly ppi: boolean;
  readonly spi: boolean;
}

/** The selftest's tables of which method can inject which kind of interrupt (irqfd is not modelled). */
const INJECT_EDGE_FNS: readonly InjectDesc[] = [
  { cmd: 'edge-irq-line', sgi: false, ppi: false, spi: true },
  { cmd: 'write-ispendr', sgi: true, ppi: false, spi: true },
];
const INJECT_LEVEL_FNS: readonly InjectDesc[] = [
  { cmd: 'irq-line-high', sgi: false, ppi: true, spi: true },
  { cmd: 'level-info-high', sgi: false, ppi: true, spi: true },
  { cmd: 'write-ispendr', sgi: false, ppi: true, spi: true },
];
const SET_ACTIVE_FN: InjectDesc = { cmd: 'write-isactiver', sgi: true, ppi: true, spi: true };

/** Timer PPIs cannot be injected from userspace. */
const PPI_EXCLUDE = new Set([26, 27, 28, 30]);

interface Args {
  readonly nrIrqs: number;
  readonly eoiSplit: boolean;
  readonly level: boolean;
}

/** One vCPU running the selftest's guest_code, plus the host side answering its requests. */
class VgicIrqTest {
  readonly gic: Vgic;
  readonly cpu: VCpu;
  readonly g: GicV3Guest;
  readonly args: Args;
  handled = 0;
  readonly received: number[];
  /** INTIDs in the order the handler acked them. */
  readonly order: number[] = [];

  constructor(args: Args, lrs = 4) {
    this.args = args;
    this.gic = Vgic.create({ vcpus: 1, spis: args.nrIrqs - 32, lrs, time: 'virtual' });
    this.cpu = this.gic.vcpu(0);
    this.g = new GicV3Guest(this.cpu);
    this.received = new Array(args.nrIrqs).fill(0);
    this.guestInit();
  }

  // ---- guest side ----

  private guestInit(): void {
    const { g, cpu, args } = this;
    g.enableDistributor();
    g.enableCpu();
    for (let i = MIN_SPI; i < args.nrIrqs; i++) g.setEdge(i, !args.level);
    for (let i = 0; i < args.nrIrqs; i++) g.enableIrq(i);
    g.setEoiMode(args.eoiSplit);
    this.resetPriorities();
    cpu.writeSysreg(ICC_PMR_EL1, CPU_PRIO_MASK);
    cpu.onIrq(() => this.irqHandler());
    cpu.unmaskIrqs();
  }

  resetPriorities(): void {
    for (let i = 0; i < this.args.nrIrqs; i++) this.g.setPriority(i, IRQ_DEFAULT_PRIO_REG);
  }

  resetStats(): void {
    this.handled = 0;
    this.received.fill(0);
    this.order.length = 0;
  }

  private bitAddr(intid: number, gicdOffset: number): number {
    return intid < 32
      ? this.g.sgiBase + gicdOffset
      : this.g.distBase + gicdOffset + 4 * Math.floor(intid / 32);
  }

  /** gic_irq_get_active: a guest read of ISACTIVER. */
  isActive(intid: number): boolean {
    return (this.cpu.readl(this.bitAddr(intid, GICD_ISACTIVER)) & (1 << (intid % 32))) !== 0;
  }

  /** gic_irq_get_pending: a guest read of ISPENDR. */
  isPending(intid: number): boolean {
    return (this.cpu.readl(this.bitAddr(intid, GICD_ISPENDR)) & (1 << (intid % 32))) !== 0;
  }

  readAp1r0(): number {
    return this.cpu.readSysreg(ICC_AP1R0_EL1);
  }

  eoi(intid: number): void {
    this.cpu.writeSysreg(ICC_EOIR1_EL1, intid);
  }

  dir(intid: number): void {
    this.cpu.writeSysreg(ICC_DIR_EL1, intid);
  }

  iar(): number {
    return this.cpu.readSysreg(ICC_IAR1_EL1) & 0xffffff;
  }

  assertIarEmpty(): void {
    assert.equal(this.iar(), SPURIOUS, 'IAR is empty');
  }

  /** guest_irq_generic_handler. */
  private irqHandler(): void {
    const { args } = this;
    const intid = this.iar();
    if (intid === SPURIOUS) return;
    assert.ok(this.isActive(intid), `INTID ${intid} is active in its handler`);
    if (!args.level) assert.ok(!this.isPending(intid), `edge INTID ${intid} is not pending in its handler`);
    if (args.level) this.setIrqLine(intid, false);
    assert.ok(intid < args.nrIrqs, `INTID ${intid} in range`);
    this.received[intid]++;
    this.handled++;
    this.order.push(intid);
    this.eoi(intid);
    assert.equal(this.readAp1r0(), 0, 'AP1R0 is 0 after EOI');
    if (args.eoiSplit) this.dir(intid);
    assert.ok(!this.isActive(intid), `INTID ${intid} is inactive after EOI/DIR`);
    assert.ok(!this.isPending(intid), `INTID ${intid} is not pending after EOI/DIR`);
  }

  /** wait_for_and_activate_irq: WFI, then poll the IAR (IRQs masked). */
  waitForAndActivateIrq(): number {
    for (let tries = 0; tries < 100; tries++) {
      this.cpu.wfi(0);
      const intid = this.iar();
      if (intid !== SPURIOUS) return intid;
    }
    assert.fail('no interrupt arrived');
  }

  // ---- host side ----

  /** KVM_IRQ_LINE: SPIs by INTID, PPIs on vCPU 0. */
  setIrqLine(intid: number, level: boolean): void {
    if (intid < 32) this.gic.ppiLine(0, intid, level);
    else this.gic.irqLine(intid, level);
  }

  /** vgic_poke_irq: read-modify-write of a per-IRQ register through the userspace accessors. */
  private poke(intid: number, gicdOffset: number, gicrOffset: number): void {
    const bit = BigInt(1 << (intid % 32)) & 0xffffffffn;
    if (intid < 32) {
      const v = this.gic.readRedistReg(0, gicrOffset);
      this.gic.writeRedistReg(0, gicrOffset, v | bit);
    } else {
      const off = gicdOffset + 4 * Math.floor(intid / 32);
      this.gic.writeDistReg(off, this.gic.readDistReg(off) | bit);
    }
  }

  /** run_guest_cmd. */
  inject(cmd: InjectCmd, first: number, num: number): void {
    const ids = Array.from({ length: num }, (_, i) => first + i);
    switch (cmd) {
      case 'edge-irq-line':
        for (const i of ids) this.setIrqLine(i, true);
        for (const i of ids) this.setIrqLine(i, false);
        break;
      case 'irq-line-high':
        for (const i of ids) this.setIrqLine(i, true);
        break;
      case 'level-info-high':
        for (const i of ids) {
          const base = i - (i % 32);
          this.gic.setLineLevel(0, base, this.gic.getLineLevel(0, base) | (1 << (i % 32)));
        }
        break;
      case 'write-ispendr':
        for (const i of ids) this.poke(i, GICD_ISPENDR, GICR_ISPENDR0);
        break;
      case 'write-isactiver':
        for (const i of ids) this.poke(i, GICD_ISACTIVER, GICR_ISACTIVER0);
        break;
    }
  }

  // ---- the selftest's test bodies ----

  /** guest_inject: priorities (i % 31) << 3, inject with IRQs masked, then take them all. */
  guestInject(first: number, num: number, cmd: InjectCmd): void {
    const { cpu } = this;
    this.resetStats();
    const prio = (i: number) => (i % (KVM_NUM_PRIOS - 1)) << 3;
    for (let i = first; i < first + num; i++) this.g.setPriority(i, prio(i));
    cpu.maskIrqs();
    this.inject(cmd, first, num);
    for (let guard = 0; this.handled < num; guard++) {
      assert.ok(guard < 4 * num + 16, `only ${this.handled} of ${num} interrupts arrived`);
      cpu.wfi(0);
      cpu.unmaskIrqs(); // the IRQ exception is taken at this boundary
      cpu.maskIrqs();
    }
    cpu.unmaskIrqs();
    cpu.step();
    assert.equal(this.handled, num);
    for (let i = first; i < first + num; i++) assert.equal(this.received[i], 1, `INTID ${i} arrived once`);
    this.assertIarEmpty();
    // The GIC presents the highest-priority pending interrupt first.
    const prios = this.order.map(prio);
    for (let k = 1; k < prios.length; k++) {
      assert.ok(prios[k - 1] <= prios[k], `delivery order by priority: ${this.order.join(',')}`);
    }
    this.resetPriorities();
  }

  /** test_injection. */
  testInjection(f: InjectDesc): void {
    const n = this.args.nrIrqs;
    if (f.sgi) {
      this.guestInject(MIN_SGI, 1, f.cmd);
      this.guestInject(0, 16, f.cmd);
    }
    if (f.ppi) this.guestInject(MIN_PPI, 1, f.cmd);
    if (f.spi) {
      this.guestInject(MIN_SPI, 1, f.cmd);
      this.guestInject(n - 1, 1, f.cmd);
      this.guestInject(MIN_SPI, n - MIN_SPI, f.cmd);
    }
  }

  /**
   * test_inject_preemption: descending priorities so that intid + 1 preempts intid; each is
   * acked by polling the IAR with IRQs masked, then all are EOI'd in reverse order (and DIR'd in
   * forward order with EOImode 1). AP1R0 and RPR are checked along the way.
   */
  injectPreemption(first: number, num: number, exclude: ReadonlySet<number>, cmd: InjectCmd): void {
    const { cpu, args } = this;
    const prioOf = (i: number) => (num - 1 - i) * 8;
    for (let i = 0; i < num; i++) this.g.setPriority(first + i, prioOf(i));
    cpu.maskIrqs();
    const acked: number[] = [];
    let ap1r = 0;
    for (let i = 0; i < num; i++) {
      const intid = first + i;
      if (exclude.has(intid)) continue;
      this.inject(cmd, intid, 1);
      const got = this.waitForAndActivateIrq();
      assert.equal(got, intid, 'each new interrupt preempts the running one');
      if (args.level) this.setIrqLine(intid, false);
      acked.push(intid);
      ap1r |= 1 << (prioOf(i) >> 3);
      assert.equal(this.readAp1r0() >>> 0, ap1r >>> 0, `AP1R0 after acking ${intid}`);
      assert.equal(cpu.readSysreg(ICC_RPR_EL1), prioOf(i), `RPR after acking ${intid}`);
    }
    for (const intid of [...acked].reverse()) {
      this.eoi(intid);
      ap1r &= ~(1 << (prioOf(intid - first) >> 3));
      assert.equal(this.readAp1r0() >>> 0, ap1r >>> 0, `AP1R0 after EOI of ${intid}`);
      const rpr = ap1r === 0 ? 0xff : (31 - Math.clz32(ap1r & -ap1r)) << 3;
      assert.equal(cpu.readSysreg(ICC_RPR_EL1), rpr, `RPR after EOI of ${intid}`);
      if (!args.eoiSplit) assert.ok(!this.isActive(intid), `${intid} deactivated by EOIR`);
    }
    if (args.eoiSplit) {
      for (const intid of acked) {
        assert.ok(this.isActive(intid), `${intid} still active until DIR (EOImode 1)`);
        this.dir(intid);
      }
    }
    this.resetStats();
    cpu.unmaskIrqs();
    for (const intid of acked) assert.ok(!this.isActive(intid), `${intid} inactive`);
    assert.equal(this.readAp1r0(), 0);
    this.assertIarEmpty();
    assert.equal(this.handled, 0, 'nothing was delivered again');
    this.resetPriorities();
  }

  /** test_preemption. */
  testPreemption(f: InjectDesc): void {
    if (f.sgi) this.injectPreemption(MIN_SGI, 16, new Set(), f.cmd);
    if (f.ppi) this.injectPreemption(MIN_PPI, 16, PPI_EXCLUDE, f.cmd);
    if (f.spi) this.injectPreemption(MIN_SPI, 31, new Set(), f.cmd);
  }

  /** test_injection_failure: bad INTIDs are refused and inject nothing. */
  testInjectionFailure(): void {
    this.resetStats();
    for (const bad of [this.args.nrIrqs, 1020, 1023, 1024, 1120, 5120, 0xffffffff]) {
      for (const level of [true, false]) {
        assert.throws(
          () => this.gic.irqLine(bad, level),
          (e: unknown) => e instanceof VgicError && e.code === 'INVALID_INTID',
          `irqLine(${bad}) is rejected`,
        );
      }
      this.cpu.step();
      assert.equal(this.handled, 0);
      this.assertIarEmpty();
    }
  }

  /**
   * guest_restore_active: userspace sets interrupts active (as a migration restore would), the
   * guest sets the matching AP1R0 bits, then EOIs (and DIRs) them from the highest priority down.
   */
  restoreActive(first: number, num: number): void {
    const { cpu, args } = this;
    this.resetStats();
    for (let i = 0; i < num; i++) this.g.setPriority(first + i, (num - 1 - i) * 8);
    for (let i = 0; i < num; i++) {
      this.inject('write-isactiver', first + i, 1);
      this.cpu.writeSysreg(ICC_AP1R0_EL1, (this.readAp1r0() | (1 << i)) >>> 0);
    }
    for (let i = 0; i < num; i++) {
      assert.ok(this.isActive(first + i), `${first + i} restored active`);
      assert.ok(!this.isPending(first + i), `${first + i} not pending`);
    }
    assert.equal(this.handled, 0, 'an active interrupt is not delivered');
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0);
    for (let i = num - 1; i >= 0; i--) {
      this.eoi(first + i);
      if (args.eoiSplit) this.dir(first + i);
    }
    for (let i = 0; i < num; i++) assert.ok(!this.isActive(first + i), `${first + i} inactive`);
    assert.equal(this.readAp1r0(), 0);
    this.assertIarEmpty();
    cpu.step();
    assert.equal(this.handled, 0, 'nothing was delivered');
    this.resetPriorities();
  }

  testRestoreActive(): void {
    this.restoreActive(MIN_SGI, 16);
    this.restoreActive(MIN_PPI, 16);
    this.restoreActive(MIN_SPI, 31);
  }
}

const describeDesc = (f: InjectDesc): string =>
  `${f.cmd} (${[f.sgi && 'SGI', f.ppi && 'PPI', f.spi && 'SPI'].filter(Boolean).join('/')})`;

for (const level of [false, true]) {
  for (const eoiSplit of [false, true]) {
    const args: Args = { nrIrqs: NR_IRQS, eoiSplit, level };
    describe(`vgic_irq ${level ? 'level' : 'edge'}, EOImode ${eoiSplit ? 1 : 0}`, () => {
      for (const f of level ? INJECT_LEVEL_FNS : INJECT_EDGE_FNS) {
        test(`${describeDesc(f)}: injection, each delivered exactly once`, () => {
          new VgicIrqTest(args).testInjection(f);
        });
        test(`${describeDesc(f)}: preemption`, () => {
          new VgicIrqTest(args).testPreemption(f);
        });
      }
      test('invalid INTIDs are rejected by irqLine', () => {
        new VgicIrqTest(args).testInjectionFailure();
      });
      test(`${describeDesc(SET_ACTIVE_FN)}: restore active state`, () => {
        new VgicIrqTest(args).testRestoreActive();
      });
      test('the whole sequence on one vCPU, as the selftest runs it', () => {
        const t = new VgicIrqTest(args);
        for (const f of level ? INJECT_LEVEL_FNS : INJECT_EDGE_FNS) {
          t.testInjection(f);
          t.testPreemption(f);
          t.testInjectionFailure();
        }
        t.testRestoreActive();
      });
    });
  }
}

describe('vgic_irq with 224 SPIs', () => {
  for (const level of [false, true]) {
    test(`all SPIs at once (${level ? 'level' : 'edge'}), 4 LRs`, () => {
      const t = new VgicIrqTest({ nrIrqs: 256, eoiSplit: level, level });
      t.guestInject(MIN_SPI, 224, level ? 'irq-line-high' : 'edge-irq-line');
      t.guestInject(255, 1, 'write-ispendr');
    });
  }
});

describe('level-sensitive re-sampling', () => {
  for (const eoiSplit of [false, true]) {
    for (const intid of [MIN_PPI + 7, MIN_SPI + 5]) {
      test(`${intid < 32 ? 'PPI' : 'SPI'} ${intid}, EOImode ${eoiSplit ? 1 : 0}: re-delivered while the line stays high, not after it is lowered`, () => {
        const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: 'virtual' });
        const cpu = gic.vcpu(0);
        const g = new GicV3Guest(cpu);
        g.enableDistributor();
        g.enableCpu();
        if (intid >= 32) g.setEdge(intid, false);
        g.enableIrq(intid);
        g.setPriority(intid, 0x80);
        g.setEoiMode(eoiSplit);
        const line = (lvl: boolean) => (intid < 32 ? gic.ppiLine(0, intid, lvl) : gic.irqLine(intid, lvl));
        let delivered = 0;
        cpu.onIrq(() => {
          const got = g.ack();
          if (got === SPURIOUS) return;
          assert.equal(got, intid);
          delivered++;
          // The device is serviced on the third delivery only.
          if (delivered === 3) line(false);
          g.eoi(got);
          if (eoiSplit) g.dir(got);
        });
        cpu.unmaskIrqs();
        line(true);
        for (let i = 0; i < 20; i++) cpu.step();
        assert.equal(delivered, 3);
        assert.equal(cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS);
      });
    }
  }

  test('a level line raised and lowered before the guest looks is not delivered', () => {
    const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: 'virtual' });
    const cpu = gic.vcpu(0);
    const g = new GicV3Guest(cpu);
    g.enableDistributor();
    g.enableCpu();
    g.setEdge(40, false);
    g.enableIrq(40);
    g.setPriority(40, 0x80);
    cpu.step();
    gic.irqLine(40, true);
    gic.irqLine(40, false);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS);
  });
});

describe('vgic_irq two-vCPU tests', () => {
  test('asym_dir: vCPU0 acks and EOIs an SPI, vCPU1 deactivates it with DIR', () => {
    const gic = Vgic.create({ vcpus: 2, spis: 32, lrs: 4, time: 'virtual' });
    const cpus = [gic.vcpu(0), gic.vcpu(1)];
    const gs = cpus.map((c) => new GicV3Guest(c));
    gs[0].enableDistributor();
    for (const [i, g] of gs.entries()) {
      g.enableCpu();
      g.setEoiMode(true);
      cpus[i].writeSysreg(ICC_PMR_EL1, CPU_PRIO_MASK);
    }
    const c0 = cpus[0];
    const g0 = gs[0];
    const activeBit = () => c0.readl(g0.distBase + GICD_ISACTIVER + 4) & 1;
    for (let round = 0; round < 2; round++) {
      g0.enableIrq(MIN_SPI);
      g0.setPending(MIN_SPI);
      let intid = SPURIOUS;
      for (let i = 0; i < 10 && intid === SPURIOUS; i++) {
        c0.wfi(0);
        intid = g0.ack();
      }
      assert.equal(intid, MIN_SPI, `round ${round}: vCPU0 acks the SPI`);
      g0.eoi(intid);
      assert.equal(c0.readSysreg(ICC_RPR_EL1), 0xff, 'priority dropped');
      assert.equal(activeBit(), 1, 'still active after EOIR with EOImode 1');
      // vCPU1 deactivates an interrupt that sits in vCPU0's list registers.
      gs[1].dir(MIN_SPI);
      cpus[1].step();
      assert.equal(activeBit(), 0, 'inactive after DIR on the other vCPU');
      assert.equal(c0.readSysreg(ICC_IAR1_EL1), SPURIOUS);
      assert.equal(cpus[1].readSysreg(ICC_IAR1_EL1), SPURIOUS);
    }
  });

  test('group_en: a Group 0 SGI stays pending until ICC_IGRPEN0_EL1 is set', () => {
    const gic = Vgic.create({ vcpus: 2, spis: 32, lrs: 4, time: 'virtual' });
    const cpu = gic.vcpu(0);
    const g = new GicV3Guest(cpu);
    g.enableDistributor();
    // The selftest library enables the distributor with ARE_NS | EnableGrp1A | EnableGrp1
    // (bits 4, 1, 0), which with DS = 1 enables both groups.
    cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1 | GICD_CTLR_ENABLE_GRP0);
    g.enableCpu();
    gic.vcpu(1).step();
    new GicV3Guest(gic.vcpu(1)).enableCpu();
    cpu.writeSysreg(ICC_CTLR_EL1, 0);
    cpu.writeSysreg(ICC_PMR_EL1, CPU_PRIO_MASK);
    // SGI0 is Group 0, which is disabled at the CPU interface.
    const igroupr0 = g.sgiBase + 0x80;
    cpu.writel(igroupr0, cpu.readl(igroupr0) & ~1);
    for (let intid = 0; intid < MIN_PPI; intid++) {
      g.setPriority(intid, (intid + 1) * 8);
      g.enableIrq(intid);
      g.setPending(intid);
    }
    const seen: number[] = [];
    for (let i = 1; i < MIN_PPI; i++) {
      let intid = SPURIOUS;
      for (let t = 0; t < 10 && intid === SPURIOUS; t++) {
        cpu.wfi(0);
        intid = g.ack();
      }
      assert.ok(intid < MIN_PPI && intid !== 0, `a Group 1 SGI, got ${intid}`);
      seen.push(intid);
      g.eoi(intid);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 15 }, (_, i) => i + 1),
      'in priority order',
    );
    assert.ok(cpu.readl(g.sgiBase + 0x200) & 1, 'SGI0 pending');
    assert.equal(cpu.readl(g.sgiBase + 0x300) & 1, 0, 'SGI0 not active');
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS);
    assert.equal(cpu.readSysreg(ICC_IAR0_EL1), SPURIOUS);

    cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
    let intid = SPURIOUS;
    for (let t = 0; t < 10 && intid === SPURIOUS; t++) intid = cpu.readSysreg(ICC_IAR0_EL1);
    assert.equal(intid, 0, 'SGI0 acked through ICC_IAR0_EL1');
    cpu.writeSysreg(ICC_EOIR0_EL1, 0);
    assert.equal(cpu.readl(g.sgiBase + 0x300) & 1, 0, 'SGI0 deactivated by EOIR0');
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
  });
});

describe('distributor group enable', () => {
  test('GICD_CTLR.EnableGrp1 = 0 holds SPIs back; setting it again delivers them', () => {
    const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 2, time: 'virtual' });
    const cpu = gic.vcpu(0);
    const g = new GicV3Guest(cpu);
    g.enableDistributor();
    g.enableCpu();
    const spis = [33, 40, 50, 63];
    for (const [k, i] of spis.entries()) {
      g.setEdge(i, true);
      g.enableIrq(i);
      g.setPriority(i, 0x20 + 8 * k);
    }
    const got: number[] = [];
    cpu.onIrq(() => {
      const i = g.ack();
      if (i === SPURIOUS) return;
      got.push(i);
      g.eoi(i);
    });
    cpu.unmaskIrqs();
    cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE);
    for (const i of spis) gic.irqLine(i, true);
    for (const i of spis) gic.irqLine(i, false);
    assert.equal(cpu.wfi(0), 'timeout', 'WFI is not woken');
    for (let i = 0; i < 10; i++) cpu.step();
    assert.deepEqual(got, []);
    assert.equal(
      Number(gic.readDistReg(GICD_ISPENDR + 4)) >>> 0,
      ((1 << 1) | (1 << 8) | (1 << 18) | (1 << 31)) >>> 0,
    );

    cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    for (let i = 0; i < 10; i++) cpu.step();
    assert.deepEqual(got, spis);
    assert.equal(Number(gic.readDistReg(GICD_ISPENDR + 4)), 0);
  });
});
