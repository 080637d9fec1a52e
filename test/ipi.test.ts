/**
 * kvm-unit-tests arm/gic.c, GICv3 flavour: the `ipi` test (self, target-list, broadcast from
 * CPU1 with SGI 1) judged with check_acked's rules, and the `active` test (clearing the active
 * state of an SGI through GICR_ICACTIVER0 while it sits in a list register).
 *
 * Every vCPU runs in this thread; "waiting for interrupts" is stepping every vCPU through
 * instruction boundaries, where each takes its pending IRQ exceptions.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICR_ISACTIVER0,
  GicV3Guest,
  ICC_AP1R0_EL1,
  ICC_EOIR1_EL1,
  ICC_RPR_EL1,
  ICC_SGI1R_EL1,
  type VCpu,
  Vgic,
} from '../src/index.ts';

const IPI_SENDER = 1;
const IPI_IRQ = 1;
const SPURIOUS = 1023;
/** kvm-unit-tests waits up to 50 polls; here a poll is one instruction boundary on every CPU. */
const POLLS = 50;

interface AckStats {
  acked: number[];
  badIrq: number[];
  spurious: number[];
}

interface AckVerdict {
  missing: number;
  extra: number;
  unexpected: number;
  wrongIrq: number;
}

/** check_acked: every CPU in `mask` acked exactly once, nobody else acked, all with IPI_IRQ. */
function judgeAcks(stats: AckStats, mask: ReadonlySet<number>): AckVerdict {
  const v: AckVerdict = { missing: 0, extra: 0, unexpected: 0, wrongIrq: 0 };
  stats.acked.forEach((n, cpu) => {
    if (mask.has(cpu)) {
      if (n === 0) v.missing++;
      else if (n > 1) v.extra++;
    } else if (n !== 0) {
      v.unexpected++;
    }
    if (stats.badIrq[cpu] !== -1) v.wrongIrq++;
  });
  return v;
}

const PASS: AckVerdict = { missing: 0, extra: 0, unexpected: 0, wrongIrq: 0 };

class IpiMachine {
  readonly gic: Vgic;
  readonly cpus: VCpu[];
  readonly guests: GicV3Guest[];
  /** MPIDR affinity of each CPU, as each reads it from its own GICR_TYPER. */
  readonly affinity: number[];
  readonly stats: AckStats;

  constructor(nCpus: number, handler: 'eoi' | 'clear-active' = 'eoi') {
    this.gic = Vgic.create({ vcpus: nCpus, spis: 224, lrs: 4, time: 'virtual' });
    this.cpus = Array.from({ length: nCpus }, (_, i) => this.gic.vcpu(i));
    this.guests = this.cpus.map((c) => new GicV3Guest(c));
    this.affinity = this.guests.map((g) => g.affinity);
    this.stats = {
      acked: new Array(nCpus).fill(0),
      badIrq: new Array(nCpus).fill(-1),
      spurious: new Array(nCpus).fill(0),
    };
    this.guests[0].enableDistributor();
    this.guests.forEach((g, i) => {
      g.enableCpu();
      this.cpus[i].onIrq(() => (handler === 'eoi' ? this.ipiHandler(i) : this.clearActiveHandler(i)));
      this.cpus[i].unmaskIrqs();
    });
  }

  /** ipi_handler: ack, EOI, count. */
  private ipiHandler(cpu: number): void {
    const g = this.guests[cpu];
    const irq = g.ack();
    if (irq === SPURIOUS) {
      this.stats.spurious[cpu]++;
      return;
    }
    g.eoi(irq);
    this.stats.acked[cpu]++;
    if (irq !== IPI_IRQ) this.stats.badIrq[cpu] = irq;
  }

  /** ipi_clear_active_handler: ack, then clear the active state through GICR_ICACTIVER0 (SGI_base), no EOI. */
  private clearActiveHandler(cpu: number): void {
    const g = this.guests[cpu];
    const irq = g.ack();
    if (irq === SPURIOUS) {
      this.stats.spurious[cpu]++;
      return;
    }
    g.cpu.writel(g.rd + 0x10000 + 0x380, 1 << IPI_IRQ);
    this.stats.acked[cpu]++;
    if (irq !== IPI_IRQ) this.stats.badIrq[cpu] = irq;
  }

  resetStats(): void {
    this.stats.acked.fill(0);
    this.stats.badIrq.fill(-1);
  }

  /** Lets every CPU run POLLS instruction boundaries (the "wait 5 s, then 100 ms more" of check_acked). */
  run(polls = POLLS): void {
    for (let p = 0; p < polls; p++) for (const c of this.cpus) c.step();
  }

  checkAcked(mask: ReadonlySet<number>): void {
    this.run();
    assert.deepEqual(judgeAcks(this.stats, mask), PASS, `acks ${JSON.stringify(this.stats.acked)}`);
    assert.deepEqual(this.stats.spurious, new Array(this.cpus.length).fill(0), 'no spurious IRQs');
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('check_acked semantics', () => {
  const stats = (acked: number[], badIrq = acked.map(() => -1)): AckStats => ({
    acked,
    badIrq,
    spurious: acked.map(() => 0),
  });
  const mask = new Set([0, 2]);

  test('exactly one ack on each expected CPU passes', () => {
    assert.deepEqual(judgeAcks(stats([1, 0, 1, 0]), mask), PASS);
  });
  test('a missing ack fails', () => {
    assert.equal(judgeAcks(stats([1, 0, 0, 0]), mask).missing, 1);
  });
  test('two acks on one CPU are "extra"', () => {
    assert.equal(judgeAcks(stats([1, 0, 2, 0]), mask).extra, 1);
  });
  test('an ack on a CPU outside the mask is "unexpected"', () => {
    assert.equal(judgeAcks(stats([1, 1, 1, 0]), mask).unexpected, 1);
  });
  test('a wrong INTID fails', () => {
    assert.equal(judgeAcks(stats([1, 0, 1, 0], [-1, -1, 3, -1]), mask).wrongIrq, 1);
  });
});

for (const nCpus of [4, 8, 20]) {
  describe(`gicv3-ipi with ${nCpus} vCPUs (sender CPU${IPI_SENDER}, SGI ${IPI_IRQ})`, () => {
    test('affinities: Aff0 = id % 16, Aff1 = id / 16', () => {
      const m = new IpiMachine(nCpus);
      assert.deepEqual(
        m.affinity,
        range(nCpus).map((i) => ((i >> 4) << 8) | (i & 15)),
      );
    });

    test('self', () => {
      const m = new IpiMachine(nCpus);
      m.guests[IPI_SENDER].sendSgiSelf(IPI_IRQ);
      m.checkAcked(new Set([IPI_SENDER]));
    });

    test('target-list (CPUs of the opposite parity)', () => {
      const m = new IpiMachine(nCpus);
      const targets = range(nCpus).filter((i) => (i & 1) !== (IPI_SENDER & 1));
      m.guests[IPI_SENDER].sendSgi(
        IPI_IRQ,
        targets.map((i) => m.affinity[i]),
      );
      m.checkAcked(new Set(targets));
    });

    test('broadcast (IRM: all but the sender)', () => {
      const m = new IpiMachine(nCpus);
      m.guests[IPI_SENDER].broadcastSgi(IPI_IRQ);
      m.checkAcked(new Set(range(nCpus).filter((i) => i !== IPI_SENDER)));
    });

    test('self, target-list and broadcast in sequence on one machine', () => {
      const m = new IpiMachine(nCpus);
      const g = m.guests[IPI_SENDER];
      g.sendSgiSelf(IPI_IRQ);
      m.checkAcked(new Set([IPI_SENDER]));
      m.resetStats();
      const targets = range(nCpus).filter((i) => (i & 1) !== (IPI_SENDER & 1));
      g.sendSgi(
        IPI_IRQ,
        targets.map((i) => m.affinity[i]),
      );
      m.checkAcked(new Set(targets));
      m.resetStats();
      g.broadcastSgi(IPI_IRQ);
      m.checkAcked(new Set(range(nCpus).filter((i) => i !== IPI_SENDER)));
    });
  });
}

describe('gicv3-ipi with Aff1 != 0 (20 vCPUs)', () => {
  test('one SGI1R write with Aff1 = 0 reaches only cluster 0; Aff1 = 1 reaches CPUs 16..19', () => {
    const m = new IpiMachine(20);
    const cpu = m.cpus[IPI_SENDER];
    // Target list 0b1111 in cluster Aff1 = 0: CPUs 0..3.
    cpu.writeSysreg(ICC_SGI1R_EL1, (IPI_IRQ << 24) | 0xf);
    m.checkAcked(new Set([0, 1, 2, 3]));
    m.resetStats();
    // Target list 0b1111 in cluster Aff1 = 1: CPUs 16..19.
    cpu.writeSysreg(ICC_SGI1R_EL1, (IPI_IRQ << 24) | (1 << 16) | 0xf);
    m.checkAcked(new Set([16, 17, 18, 19]));
    m.resetStats();
    // Aff1 = 1, Aff0 = 4: no such CPU (only 20 exist): nobody gets it.
    cpu.writeSysreg(ICC_SGI1R_EL1, (IPI_IRQ << 24) | (1 << 16) | (1 << 4));
    m.checkAcked(new Set());
  });

  test('the target-list test needs two SGI1R writes and delivers to every even CPU', () => {
    const m = new IpiMachine(20);
    const targets = range(20).filter((i) => (i & 1) === 0);
    const clusters = new Set(targets.map((i) => m.affinity[i] >> 8));
    assert.deepEqual([...clusters].sort(), [0, 1]);
    const sender = m.cpus[IPI_SENDER];
    const writes: number[] = [];
    const write = sender.writeSysreg.bind(sender);
    sender.writeSysreg = (enc: number, lo: number, hi?: number) => {
      if (enc === ICC_SGI1R_EL1) writes.push(lo);
      write(enc, lo, hi);
    };
    m.guests[IPI_SENDER].sendSgi(
      IPI_IRQ,
      targets.map((i) => m.affinity[i]),
    );
    m.checkAcked(new Set(targets));
    // Aff1 = 0 with Aff0 0,2,..,14, and Aff1 = 1 with Aff0 0 and 2.
    assert.deepEqual(writes.map((lo) => [(lo >>> 16) & 0xff, lo & 0xffff]).sort(), [
      [0, 0x5555],
      [1, 0x0005],
    ]);
  });
});

describe('gicv3-active', () => {
  test('clearing the active state of an SGI in an LR (GICR_ICACTIVER0, SGI_base) does not hang', () => {
    const m = new IpiMachine(4, 'clear-active');
    const cpu = m.cpus[0];
    const g = m.guests[0];
    g.sendSgiSelf(IPI_IRQ);
    m.checkAcked(new Set([0]));

    // The SGI is no longer active, from the guest's and from userspace's point of view.
    assert.equal(cpu.readl(g.sgiBase + 0x300) & (1 << IPI_IRQ), 0, 'GICR_ISACTIVER0 (guest)');
    assert.equal(
      m.gic.readRedistReg(0, GICR_ISACTIVER0) & BigInt(1 << IPI_IRQ),
      0n,
      'GICR_ISACTIVER0 (user)',
    );
    // The handler never EOI'd: its priority is still active in the APR.
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xa0);
    assert.notEqual(cpu.readSysreg(ICC_AP1R0_EL1), 0);

    // A second self-IPI at the same priority cannot preempt the running priority...
    m.resetStats();
    g.sendSgiSelf(IPI_IRQ);
    m.run();
    assert.equal(m.stats.acked[0], 0, 'held back by the running priority');
    assert.notEqual(cpu.readl(g.sgiBase + 0x200) & (1 << IPI_IRQ), 0, 'but pending');

    // ...until the priority drop (EOIR; the interrupt itself is already inactive).
    cpu.writeSysreg(ICC_EOIR1_EL1, IPI_IRQ);
    m.checkAcked(new Set([0]));
    assert.equal(cpu.readl(g.sgiBase + 0x300) & (1 << IPI_IRQ), 0, 'inactive again');

    cpu.writeSysreg(ICC_EOIR1_EL1, IPI_IRQ);
    assert.equal(cpu.readSysreg(ICC_AP1R0_EL1), 0);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
    assert.equal(cpu.readl(g.sgiBase + 0x200) & (1 << IPI_IRQ), 0, 'nothing pending');
  });
});
