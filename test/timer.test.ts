/**
 * The EL1 virtual timer (CNTV_*) wired to PPI 27 as a HW-mapped, level-sensitive interrupt, as
 * KVM's arch timer maps it: the timer's output is the "physical line", deactivating the virtual
 * interrupt deactivates the physical one, which fires again while the line is still high.
 * Mostly with time: 'virtual' (the counter moves only when advanced, or when a WFI sleeps until the
 * timer's deadline); one test with real time.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CNTFRQ_EL0,
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CTL_IMASK,
  CNTV_CTL_ISTATUS,
  CNTV_CVAL_EL0,
  CNTV_TVAL_EL0,
  CNTVCT_EL0,
  GICR_ISACTIVER0,
  GICR_ISPENDR0,
  GicV3Guest,
  ICC_IAR1_EL1,
  ICC_RPR_EL1,
  PPI_VTIMER,
  type VCpu,
  Vgic,
} from '../src/index.ts';

const SPURIOUS = 1023;
const TICKS_PER_MS = 62_500;

interface TimerRig {
  gic: Vgic;
  cpu: VCpu;
  g: GicV3Guest;
  /** Timer IRQs taken, in order. */
  irqs: number[];
}

/**
 * One vCPU, GIC enabled, PPI 27 enabled at priority 0x80, IRQs unmasked. The handler acks,
 * records, calls `body` (with the INTID), then EOIs (and DIRs with EOImode 1).
 */
function rig(
  opts: { time?: 'real' | 'virtual'; split?: boolean; body?: (r: TimerRig, n: number) => void } = {},
): TimerRig {
  const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: opts.time ?? 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  g.setPriority(PPI_VTIMER, 0x80);
  g.enableIrq(PPI_VTIMER);
  g.setEoiMode(opts.split ?? false);
  const r: TimerRig = { gic, cpu, g, irqs: [] };
  cpu.onIrq(() => {
    const intid = g.ack();
    if (intid === SPURIOUS) return;
    r.irqs.push(intid);
    opts.body?.(r, intid);
    g.eoi(intid);
    if (opts.split) g.dir(intid);
  });
  cpu.unmaskIrqs();
  return r;
}

const cntvct = (cpu: VCpu): bigint => cpu.readSysreg64(CNTVCT_EL0);
const setCval = (cpu: VCpu, cval: bigint): void => cpu.writeSysreg64(CNTV_CVAL_EL0, cval);
const ctl = (cpu: VCpu): number => cpu.readSysreg(CNTV_CTL_EL0);
const steps = (cpu: VCpu, n = 20): void => {
  for (let i = 0; i < n; i++) cpu.step();
};
const timerPending = (r: TimerRig): boolean => (r.cpu.readl(r.g.sgiBase + 0x200) & (1 << PPI_VTIMER)) !== 0;
const timerActive = (r: TimerRig): boolean => (r.cpu.readl(r.g.sgiBase + 0x300) & (1 << PPI_VTIMER)) !== 0;

describe('virtual timer (time: virtual)', () => {
  test('CNTFRQ is 62.5 MHz and the counter only moves when advanced', () => {
    const { gic, cpu } = rig();
    assert.equal(cpu.readSysreg(CNTFRQ_EL0), 62_500_000);
    const t0 = cntvct(cpu);
    steps(cpu, 100);
    assert.equal(cntvct(cpu), t0);
    gic.advanceTime(12345);
    assert.equal(cntvct(cpu), t0 + 12345n);
  });

  test('PPI 27 is HW-mapped and level-sensitive', () => {
    const { gic, cpu, g } = rig();
    assert.ok(gic.isHwMapped(0, PPI_VTIMER));
    assert.equal(
      (cpu.readl(g.sgiBase + 0xc00 + 4 * 1) >>> (2 * (PPI_VTIMER - 16) + 1)) & 1,
      0,
      'ICFGR1: level',
    );
  });

  test('CVAL in the future: no IRQ, ISTATUS clear; past it: pending, ISTATUS set, delivered', () => {
    const r = rig();
    const { gic, cpu } = r;
    cpu.maskIrqs();
    setCval(cpu, cntvct(cpu) + 1000n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    steps(cpu);
    assert.equal(ctl(cpu) & CNTV_CTL_ISTATUS, 0);
    assert.ok(!timerPending(r), 'not pending before CVAL');
    gic.advanceTime(999);
    steps(cpu);
    assert.ok(!timerPending(r), 'not pending one tick before CVAL');
    assert.deepEqual(r.irqs, []);

    gic.advanceTime(1);
    cpu.step();
    assert.equal(ctl(cpu) & CNTV_CTL_ISTATUS, CNTV_CTL_ISTATUS, 'ISTATUS at CVAL');
    assert.ok(timerPending(r), 'PPI 27 pending (guest view of GICR_ISPENDR0)');
    assert.deepEqual(r.irqs, [], 'IRQs masked: not taken yet');

    // The handler masks the timer, so this is the only delivery.
    r.cpu.onIrq(() => {
      const intid = r.g.ack();
      r.irqs.push(intid);
      cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
      r.g.eoi(intid);
    });
    cpu.unmaskIrqs();
    steps(cpu);
    assert.deepEqual(r.irqs, [PPI_VTIMER]);
    assert.ok(!timerPending(r) && !timerActive(r));
    // ISTATUS still reports the condition; IMASK only masks the output.
    assert.equal(ctl(cpu), CNTV_CTL_ENABLE | CNTV_CTL_IMASK | CNTV_CTL_ISTATUS);
  });

  for (const split of [false, true]) {
    test(`a handler that masks the timer (IMASK) before EOI gets exactly one IRQ (EOImode ${split ? 1 : 0})`, () => {
      const r = rig({
        split,
        body: (x) => x.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK),
      });
      setCval(r.cpu, cntvct(r.cpu) + 500n);
      r.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
      r.gic.advanceTime(600);
      steps(r.cpu, 50);
      assert.deepEqual(r.irqs, [PPI_VTIMER]);
      assert.equal(r.cpu.readSysreg(ICC_RPR_EL1), 0xff);
      assert.equal(r.gic.readRedistReg(0, GICR_ISACTIVER0) & BigInt(1 << PPI_VTIMER), 0n);
    });

    test(`a handler that does not reprogram the timer gets it again after each deactivation (EOImode ${split ? 1 : 0})`, () => {
      const r = rig({
        split,
        body: (x, n) => {
          assert.equal(n, PPI_VTIMER);
          // The third time, the handler finally quietens the timer (disables it).
          if (x.irqs.length === 3) x.cpu.writeSysreg(CNTV_CTL_EL0, 0);
        },
      });
      setCval(r.cpu, cntvct(r.cpu) + 100n);
      r.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
      r.gic.advanceTime(100);
      steps(r.cpu, 50);
      assert.deepEqual(r.irqs, [PPI_VTIMER, PPI_VTIMER, PPI_VTIMER]);
      assert.ok(!timerPending(r) && !timerActive(r));
      assert.equal(r.cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS);
    });
  }

  test('reprogramming CVAL into the future in the handler: one IRQ now, the next at the new CVAL', () => {
    const r = rig({ body: (x) => setCval(x.cpu, cntvct(x.cpu) + 1000n) });
    setCval(r.cpu, 50n);
    r.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    r.gic.advanceTime(50);
    steps(r.cpu);
    assert.equal(r.irqs.length, 1);
    r.gic.advanceTime(999);
    steps(r.cpu);
    assert.equal(r.irqs.length, 1, 'not before the new CVAL');
    r.gic.advanceTime(1);
    steps(r.cpu);
    assert.equal(r.irqs.length, 2);
  });

  test('TVAL reads CVAL - CNTVCT as a signed 32-bit value; a TVAL write sets CVAL = CNTVCT + TVAL', () => {
    const { gic, cpu } = rig();
    gic.advanceTime(1_000_000);
    const now = cntvct(cpu);
    setCval(cpu, now + 1000n);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, 1000);
    gic.advanceTime(1500);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, -500, 'negative once CVAL has passed');
    // CVAL - CNTVCT = 2^32 + 7: TVAL shows the low 32 bits.
    setCval(cpu, cntvct(cpu) + 0x1_0000_0007n);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, 7);
    // CVAL - CNTVCT = 2^31: reads as -2^31.
    setCval(cpu, cntvct(cpu) + 0x8000_0000n);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, -0x8000_0000);

    cpu.writeSysreg(CNTV_TVAL_EL0, 2000);
    assert.equal(cpu.readSysreg64(CNTV_CVAL_EL0), cntvct(cpu) + 2000n);
    assert.equal(cpu.readSysreg(CNTV_TVAL_EL0) | 0, 2000);
    // TVAL is signed: -100 puts CVAL in the past, so an enabled timer fires at once.
    cpu.writeSysreg(CNTV_TVAL_EL0, -100 >>> 0);
    assert.equal(cpu.readSysreg64(CNTV_CVAL_EL0), cntvct(cpu) - 100n);
    cpu.maskIrqs();
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    assert.equal(ctl(cpu) & CNTV_CTL_ISTATUS, CNTV_CTL_ISTATUS);
  });

  test('a TVAL-programmed timer fires after TVAL ticks', () => {
    const r = rig({ body: (x) => x.cpu.writeSysreg(CNTV_CTL_EL0, 0) });
    r.cpu.writeSysreg(CNTV_TVAL_EL0, 10_000);
    r.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    r.gic.advanceTime(9_999);
    steps(r.cpu);
    assert.deepEqual(r.irqs, []);
    r.gic.advanceTime(1);
    steps(r.cpu);
    assert.deepEqual(r.irqs, [PPI_VTIMER]);
  });

  test('WFI with an armed timer returns "irq" and advances virtual time to the deadline', () => {
    const r = rig({ body: (x) => x.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK) });
    const { cpu } = r;
    const t0 = cntvct(cpu);
    const deadline = t0 + 10n * BigInt(TICKS_PER_MS); // 10 ms of guest time
    setCval(cpu, deadline);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    const start = performance.now();
    assert.equal(cpu.wfi(), 'irq');
    assert.ok(performance.now() - start < 1000, 'virtual time: no real sleep');
    assert.equal(cntvct(cpu), deadline, 'time jumped exactly to CVAL');
    assert.deepEqual(r.irqs, [PPI_VTIMER], 'the IRQ is taken when WFI completes');
  });

  test('WFI with IRQs masked still wakes for the timer; the IRQ is taken after unmasking', () => {
    const r = rig({ body: (x) => x.cpu.writeSysreg(CNTV_CTL_EL0, 0) });
    const { cpu } = r;
    cpu.maskIrqs();
    setCval(cpu, cntvct(cpu) + 5000n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    assert.equal(cpu.wfi(), 'irq');
    assert.deepEqual(r.irqs, []);
    cpu.unmaskIrqs();
    assert.deepEqual(r.irqs, [PPI_VTIMER]);
  });

  test('WFI with nothing armed and a 10 ms timeout returns "timeout" without moving time', () => {
    const { cpu } = rig();
    const t0 = cntvct(cpu);
    const start = performance.now();
    assert.equal(cpu.wfi(10), 'timeout');
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 9 && elapsed < 2000, `waited ${elapsed} ms`);
    assert.equal(cntvct(cpu), t0);
  });

  test('WFI with a masked timer (IMASK) does not jump to its deadline and times out', () => {
    const { cpu } = rig();
    const t0 = cntvct(cpu);
    setCval(cpu, t0 + 1000n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
    assert.equal(cpu.wfi(10), 'timeout');
    assert.equal(cntvct(cpu), t0);
  });

  test('WFI with a fired timer whose PPI is disabled at the GIC times out (no wake-up event)', () => {
    const r = rig();
    const { cpu, g } = r;
    g.disableIrq(PPI_VTIMER);
    setCval(cpu, cntvct(cpu) + 1000n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    const start = performance.now();
    assert.equal(cpu.wfi(10), 'timeout');
    assert.ok(performance.now() - start < 2000);
    assert.deepEqual(r.irqs, []);
    // The line is high: enabling the PPI delivers it.
    r.cpu.onIrq(() => {
      const intid = g.ack();
      r.irqs.push(intid);
      cpu.writeSysreg(CNTV_CTL_EL0, 0);
      g.eoi(intid);
    });
    g.enableIrq(PPI_VTIMER);
    steps(cpu);
    assert.deepEqual(r.irqs, [PPI_VTIMER]);
  });

  test('the timer PPI cannot be driven from userspace', () => {
    const { gic } = rig();
    assert.throws(() => gic.ppiLine(0, PPI_VTIMER, true), { name: 'VgicError', code: 'INVALID_INTID' });
  });

  test('disabling the timer while its IRQ is pending withdraws it', () => {
    const r = rig();
    const { cpu } = r;
    cpu.maskIrqs();
    setCval(cpu, 10n);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    r.gic.advanceTime(10);
    cpu.step();
    assert.ok(timerPending(r));
    cpu.writeSysreg(CNTV_CTL_EL0, 0);
    assert.ok(!timerPending(r), 'the level line dropped');
    cpu.unmaskIrqs();
    steps(cpu);
    assert.deepEqual(r.irqs, []);
    assert.equal(r.gic.readRedistReg(0, GICR_ISPENDR0) & BigInt(1 << PPI_VTIMER), 0n);
  });
});

describe('virtual timer (time: real)', () => {
  test('a timer 2 ms ahead is delivered after a WFI', () => {
    const r = rig({ time: 'real', body: (x) => x.cpu.writeSysreg(CNTV_CTL_EL0, 0) });
    const { cpu } = r;
    const cval = cntvct(cpu) + 2n * BigInt(TICKS_PER_MS);
    setCval(cpu, cval);
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    const start = performance.now();
    let result = cpu.wfi(1000);
    // A WFI may complete early (architecturally allowed), so wait again if it did.
    for (let i = 0; i < 10 && r.irqs.length === 0; i++) result = cpu.wfi(1000);
    const elapsed = performance.now() - start;
    assert.equal(result, 'irq');
    assert.deepEqual(r.irqs, [PPI_VTIMER]);
    assert.ok(cntvct(cpu) >= cval, 'delivered at or after CVAL');
    assert.ok(elapsed >= 1.5 && elapsed < 900, `took ${elapsed} ms`);
  });
});
