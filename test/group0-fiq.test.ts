/**
 * A Group 0 virtual interrupt is a vFIQ (ICH_VMCR_EL2.VFIQEn is RES1 with the system
 * register interface; QEMU: "G0 are always FIQ"), so it must not run the guest's IRQ handler.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP0,
  GICD_CTLR_ENABLE_GRP1,
  GICD_IGROUPR,
  GicV3Guest,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN0_EL1,
  Vgic,
} from '../src/index.ts';

test('a pending Group 0 interrupt does not take the IRQ exception (it is a vFIQ)', () => {
  const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  cpu.writel(g.distBase + GICD_IGROUPR + 4, 0); // SPIs 32..63: Group 0
  cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
  cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
  g.setPriority(40, 0x80);
  g.enableIrq(40);
  g.setPending(40);
  let calls = 0;
  cpu.onIrq((c) => {
    if (++calls > 100)
      throw new Error('IRQ handler re-entered forever: IAR1 reads 1023 for a Group 0 interrupt');
    const id = c.readSysreg(ICC_IAR1_EL1) & 0xffffff;
    if (id !== 1023) c.writeSysreg(ICC_EOIR1_EL1, id);
  });
  cpu.unmaskIrqs(); // PSTATE.I = 0; PSTATE.F stays masked
  cpu.step();
  assert.equal(calls, 0, 'a Group 0 interrupt must not be signalled as vIRQ');
});

test('Group 0 interrupts arrive through the FIQ handler (ICC_IAR0_EL1), Group 1 through the IRQ handler', () => {
  const gic = Vgic.create({ vcpus: 1, spis: 32, lrs: 4, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  cpu.writel(g.distBase + GICD_IGROUPR + 4, ~(1 << 9)); // SPI 41 Group 0, SPI 40 Group 1
  cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
  cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
  const log: string[] = [];
  cpu.onIrq((c) => {
    const id = c.readSysreg(ICC_IAR1_EL1);
    log.push(`irq ${id}`);
    c.writeSysreg(ICC_EOIR1_EL1, id);
  });
  cpu.onFiq((c) => {
    const id = c.readSysreg(ICC_IAR0_EL1);
    log.push(`fiq ${id}`);
    c.writeSysreg(ICC_EOIR0_EL1, id);
  });
  g.setPriority(40, 0x80);
  g.setPriority(41, 0x40);
  g.enableIrq(40);
  g.enableIrq(41);
  g.setPending(40);
  g.setPending(41);
  cpu.unmaskIrqs();
  assert.deepEqual(log, [], 'the Group 0 interrupt is the highest priority: only a vFIQ is signalled');
  cpu.unmaskFiqs();
  assert.deepEqual(log, ['fiq 41', 'irq 40']);
});
