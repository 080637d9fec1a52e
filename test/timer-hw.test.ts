/**
 * Review: the HW-mapped level timer PPI while it is active and its line is still asserted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CVAL_EL0,
  GicV3Guest,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  PPI_VTIMER,
  Vgic,
} from '../src/index.ts';

function rig(split: boolean) {
  const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  g.setPriority(PPI_VTIMER, 0x80);
  g.enableIrq(PPI_VTIMER);
  g.setEoiMode(split);
  // Timer fires at once and keeps its output asserted.
  cpu.writeSysreg64(CNTV_CVAL_EL0, 0n);
  cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
  return { gic, cpu, g };
}

test('GICR_ISPENDR0 shows the asserted timer as pending while it is active (level: active and pending)', () => {
  const { cpu, g } = rig(false);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER);
  const active = cpu.readl(g.sgiBase + 0x300);
  assert.ok(active & (1 << PPI_VTIMER), 'active');
  const pend = cpu.readl(g.sgiBase + 0x200);
  assert.ok(
    pend & (1 << PPI_VTIMER),
    'the timer line is still high: ISPENDR0 bit 27 must read 1 (KVM reads the physical line level)',
  );
});

test('clearing the active state of the asserted timer (GICR_ICACTIVER0) re-delivers it', () => {
  const { cpu, g } = rig(true);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER);
  cpu.writeSysreg(ICC_EOIR1_EL1, PPI_VTIMER); // priority drop only (EOImode = 1)
  cpu.writel(g.sgiBase + 0x380, 1 << PPI_VTIMER); // GICR_ICACTIVER0: deactivate instead of DIR
  for (let i = 0; i < 5; i++) cpu.step();
  // KVM: vgic_hw_irq_change_active deactivates the physical interrupt, which fires again while the
  // timer asserts its output; architecturally the level interrupt is still pending.
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER, 'timer interrupt must be taken again');
});

test('timer re-armed in the past while its interrupt is active (Linux set_next_event pattern) fires again after EOI', () => {
  const { cpu } = rig(false);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER);
  // Handler: mask the timer (line low), then program the next event, already due, and unmask (line high).
  cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | 2 /* IMASK */);
  cpu.writeSysreg64(CNTV_CVAL_EL0, 0n);
  cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
  cpu.writeSysreg(ICC_EOIR1_EL1, PPI_VTIMER);
  for (let i = 0; i < 5; i++) cpu.step();
  // KVM: deactivating the HW LR deactivates the physical PPI; the asserted timer fires again on the
  // host, which exits the vCPU and re-delivers it.
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER, 'the still-asserted timer must be delivered again');
});
