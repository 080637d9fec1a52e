/**
 * The KVM selftest vgic_irq's matrix on a GICv2 (the guest drives GICD/GICC by MMIO): every way of
 * injecting (edge line, level line, line level restore, ISPENDR, SPENDSGIR for SGIs, ISACTIVER)
 * × {edge, level} × {EOImode 0, 1} × {1, 4, 16 LRs}; each interrupt arrives exactly once, highest
 * priority first; then preemption with GICC_APR0 and GICC_RPR checked at each step.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICC_APR0,
  GICC_RPR,
  GICD_ISACTIVER,
  GICD_ISPENDR,
  GICD_SPENDSGIR,
  GicV2Guest,
  type VCpu,
  Vgic,
  VIRT_V2_GICD_BASE,
} from '../src/index.ts';

const SPURIOUS = 1023;
const NR_IRQS = 64;
const C = 0x08010000;
const D = VIRT_V2_GICD_BASE;

type Cmd = 'edge-irq-line' | 'irq-line-high' | 'level-info-high' | 'write-ispendr' | 'write-spendsgir';

interface Args {
  readonly level: boolean;
  readonly eoiSplit: boolean;
  readonly lrs: number;
}

class V2IrqTest {
  readonly gic: Vgic;
  readonly cpu: VCpu;
  readonly g: GicV2Guest;
  readonly received = new Array<number>(NR_IRQS).fill(0);
  readonly order: number[] = [];
  handled = 0;
  readonly args: Args;

  constructor(args: Args) {
    this.args = args;
    this.gic = Vgic.create({ gicVersion: 2, vcpus: 1, spis: NR_IRQS - 32, lrs: args.lrs, time: 'virtual' });
    this.cpu = this.gic.vcpu(0);
    this.g = new GicV2Guest(this.cpu);
    const { g } = this;
    g.enableDistributor();
    for (let i = 32; i < NR_IRQS; i++) g.setEdge(i, !args.level);
    for (let i = 0; i < NR_IRQS; i++) g.enableIrq(i);
    g.setEoiMode(args.eoiSplit);
    g.enableCpu(0xf8);
    this.cpu.onIrq(() => this.handler());
    this.cpu.unmaskIrqs();
  }

  bit(off: number, intid: number): boolean {
    return (this.cpu.readl(D + off + 4 * Math.floor(intid / 32)) & (1 << (intid % 32))) !== 0;
  }

  private handler(): void {
    const iar = this.g.iar();
    const intid = iar & 0x3ff;
    if (intid === SPURIOUS) return;
    assert.ok(this.bit(GICD_ISACTIVER, intid), `${intid} active in its handler`);
    if (this.args.level && intid >= 16) this.line(intid, false);
    if (!this.args.level || intid < 16) assert.ok(!this.bit(GICD_ISPENDR, intid), `${intid} not pending`);
    this.received[intid]++;
    this.handled++;
    this.order.push(intid);
    this.g.eoi(iar);
    assert.equal(this.cpu.readl(C + GICC_APR0), 0, 'APR0 is 0 after EOI');
    if (this.args.eoiSplit) this.g.dir(iar);
    assert.ok(!this.bit(GICD_ISACTIVER, intid), `${intid} inactive after EOI/DIR`);
  }

  line(intid: number, level: boolean): void {
    if (intid < 32) this.gic.ppiLine(0, intid, level);
    else this.gic.irqLine(intid, level);
  }

  inject(cmd: Cmd, ids: number[]): void {
    const gic = this.gic;
    switch (cmd) {
      case 'edge-irq-line':
        for (const i of ids) this.line(i, true);
        for (const i of ids) this.line(i, false);
        break;
      case 'irq-line-high':
        for (const i of ids) this.line(i, true);
        break;
      case 'level-info-high':
        for (const i of ids) {
          const base = i - (i % 32);
          gic.setLineLevel(0, base, gic.getLineLevel(0, base) | (1 << (i % 32)));
        }
        break;
      case 'write-ispendr':
        for (const i of ids) {
          const off = GICD_ISPENDR + 4 * Math.floor(i / 32);
          gic.writeDistReg(off, gic.readDistReg(off) | BigInt((1 << (i % 32)) >>> 0));
        }
        break;
      case 'write-spendsgir':
        // userspace restores an SGI's pending state per source (here: from CPU 0)
        for (const i of ids) gic.writeDistRegAs(0, GICD_SPENDSGIR + (i & ~3), 1 << (8 * (i % 4)));
        break;
    }
  }

  guestInject(first: number, num: number, cmd: Cmd): void {
    this.handled = 0;
    this.received.fill(0);
    this.order.length = 0;
    const prio = (i: number) => (i % 31) << 3;
    for (let i = first; i < first + num; i++) this.g.setPriority(i, prio(i));
    const ids = Array.from({ length: num }, (_, k) => first + k);
    this.cpu.maskIrqs();
    this.inject(cmd, ids);
    for (let guard = 0; this.handled < num; guard++) {
      assert.ok(guard < 4 * num + 16, `only ${this.handled} of ${num} arrived (${cmd})`);
      this.cpu.wfi(0);
      this.cpu.unmaskIrqs();
      this.cpu.maskIrqs();
    }
    this.cpu.unmaskIrqs();
    for (const i of ids) assert.equal(this.received[i], 1, `INTID ${i} once (${cmd})`);
    assert.equal(this.g.iar(), SPURIOUS);
    const p = this.order.map(prio);
    for (let k = 1; k < p.length; k++) assert.ok(p[k - 1] <= p[k], `priority order: ${this.order}`);
  }

  /** Descending priorities: each new one preempts; APR0/RPR follow; EOI in reverse, DIR in order. */
  preemption(first: number, num: number, cmd: Cmd): void {
    const { cpu, g } = this;
    const prioOf = (k: number) => (num - 1 - k) * 8;
    for (let k = 0; k < num; k++) g.setPriority(first + k, prioOf(k));
    cpu.maskIrqs();
    const acked: number[] = [];
    let apr = 0;
    for (let k = 0; k < num; k++) {
      this.inject(cmd, [first + k]);
      let iar = SPURIOUS;
      for (let t = 0; t < 10 && iar === SPURIOUS; t++) {
        cpu.wfi(0);
        iar = g.iar();
      }
      assert.equal(iar & 0x3ff, first + k, 'the new interrupt preempts');
      if (this.args.level && first + k >= 16) this.line(first + k, false);
      acked.push(iar);
      apr |= 1 << (prioOf(k) >> 3);
      assert.equal(cpu.readl(C + GICC_APR0) >>> 0, apr >>> 0);
      assert.equal(cpu.readl(C + GICC_RPR), prioOf(k));
    }
    for (const iar of [...acked].reverse()) g.eoi(iar);
    assert.equal(cpu.readl(C + GICC_RPR), 0xff);
    if (this.args.eoiSplit) for (const iar of acked) g.dir(iar);
    for (const iar of acked) assert.ok(!this.bit(GICD_ISACTIVER, iar & 0x3ff));
    this.handled = 0;
    cpu.unmaskIrqs();
    assert.equal(this.handled, 0, 'nothing delivered twice');
  }
}

describe('vgic_irq on a GICv2', () => {
  for (const lrs of [1, 4, 16]) {
    for (const level of [false, true]) {
      for (const eoiSplit of [false, true]) {
        test(`${level ? 'level' : 'edge'}, EOImode ${eoiSplit ? 1 : 0}, ${lrs} LRs`, () => {
          const t = new V2IrqTest({ level, eoiSplit, lrs });
          if (!level) {
            t.guestInject(0, 16, 'write-spendsgir');
            t.guestInject(32, NR_IRQS - 32, 'edge-irq-line');
            t.guestInject(32, NR_IRQS - 32, 'write-ispendr');
            t.preemption(0, 16, 'write-spendsgir');
            t.preemption(32, 31, 'edge-irq-line');
          } else {
            t.guestInject(16, 1, 'irq-line-high');
            t.guestInject(32, NR_IRQS - 32, 'irq-line-high');
            t.guestInject(32, NR_IRQS - 32, 'level-info-high');
            t.guestInject(16, 1, 'write-ispendr');
            t.guestInject(32, NR_IRQS - 32, 'write-ispendr');
            t.preemption(32, 31, 'irq-line-high');
          }
        });
      }
    }
  }

  test('an SGI pending from all 8 sources arrives 8 times, once per source, with 1 LR', () => {
    const gic = Vgic.create({ gicVersion: 2, vcpus: 8, lrs: 1, time: 'virtual' });
    const g = Array.from({ length: 8 }, (_, v) => new GicV2Guest(gic.vcpu(v)));
    g[0].enableDistributor();
    const got: number[] = [];
    g[5].enableCpu();
    gic.vcpu(5).onIrq(() => {
      const iar = g[5].iar();
      if (iar !== SPURIOUS) {
        got.push(iar >>> 10);
        g[5].eoi(iar);
      }
    });
    for (let v = 0; v < 8; v++) g[v].sendSgi(11, 1 << 5);
    gic.vcpu(5).unmaskIrqs();
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
