/**
 * Issue 12, item 1: the output-line contract an outside CPU wires to (VCpu.onOutputLine,
 * outputLine(), entryRequested). The handler is told each level change once, after the
 * instruction, with no lock held, never re-entered; injections show at the next step().
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
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
  OUTPUT_FIQ,
  OUTPUT_IRQ,
  OUTPUT_NONE,
  type OutputLine,
  PPI_VTIMER,
  Vgic,
  VgicError,
} from '../src/index.ts';

function setup(vcpus = 1) {
  const gic = Vgic.create({ vcpus, spis: 32, lrs: 4, time: 'virtual' });
  const guests = Array.from({ length: vcpus }, (_, i) => new GicV3Guest(gic.vcpu(i)));
  guests[0].enableDistributor();
  for (const g of guests) g.enableCpu();
  const cpu = gic.vcpu(0);
  const lines: OutputLine[] = [];
  cpu.onOutputLine((line) => lines.push(line));
  return { gic, cpu, g: guests[0], guests, lines };
}

test('an injected SPI raises IRQ at the next entry, once; acknowledging lowers it', () => {
  const { gic, cpu, g, lines } = setup();
  g.enableIrq(40);
  cpu.step();
  assert.deepEqual(lines, [], 'nothing pending: no call');
  assert.equal(cpu.entryRequested, false);
  gic.irqLine(40, true);
  assert.equal(cpu.entryRequested, true, 'the injection asks the vCPU to enter again');
  assert.deepEqual(lines, [], 'the line changes at the next entry, not inside irqLine');
  cpu.step();
  assert.equal(cpu.entryRequested, false);
  assert.deepEqual(lines, [OUTPUT_IRQ]);
  assert.equal(cpu.outputLine(), OUTPUT_IRQ);
  for (let i = 0; i < 10; i++) cpu.step();
  assert.deepEqual(lines, [OUTPUT_IRQ], 'a level that stays is not reported again');
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 40);
  assert.deepEqual(lines, [OUTPUT_IRQ, OUTPUT_NONE], 'the acknowledge lowers the line');
  gic.irqLine(40, false);
  cpu.writeSysreg(ICC_EOIR1_EL1, 40);
  cpu.step();
  assert.deepEqual(lines, [OUTPUT_IRQ, OUTPUT_NONE]);
});

test('a Group 0 interrupt raises FIQ; removing the handler stops the calls', () => {
  const { cpu, g, lines } = setup();
  cpu.writel(g.distBase + GICD_IGROUPR + 4, 0); // SPIs 32..63: Group 0
  cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
  cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
  g.enableIrq(41);
  g.setPending(41);
  assert.deepEqual(lines, [OUTPUT_FIQ]);
  assert.equal(cpu.readSysreg(ICC_IAR0_EL1), 41);
  cpu.writeSysreg(ICC_EOIR0_EL1, 41);
  assert.deepEqual(lines, [OUTPUT_FIQ, OUTPUT_NONE]);
  cpu.onOutputLine(undefined);
  g.setPending(41);
  assert.equal(cpu.outputLine(), OUTPUT_FIQ, 'the poll still answers');
  assert.deepEqual(lines, [OUTPUT_FIQ, OUTPUT_NONE]);
});

test('the handler may acknowledge inside; it is not re-entered; it is told levels, not edges', () => {
  const { gic, cpu, g } = setup();
  g.enableIrq(40);
  g.enableIrq(41);
  const log: string[] = [];
  let depth = 0;
  cpu.onOutputLine((line, c) => {
    assert.equal(depth, 0, 'not re-entered');
    depth++;
    log.push(`line ${line}`);
    if (line === OUTPUT_IRQ) {
      const id = c.readSysreg(ICC_IAR1_EL1);
      log.push(`ack ${id}`);
      if (id === 40) gic.irqLine(40, false);
      c.writeSysreg(ICC_EOIR1_EL1, id);
    }
    depth--;
  });
  gic.irqLine(40, true);
  gic.irqLine(41, true);
  cpu.step();
  // 41 (same priority) could not preempt 40, and is signalled again once 40 is EOIed: the level
  // the handler leaves is the level it was told (1), so it is not called again. A CPU polls the
  // level when it unmasks (exception return), as a level-sensitive input is.
  assert.deepEqual(log, ['line 1', 'ack 40']);
  assert.equal(cpu.outputLine(), OUTPUT_IRQ);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 41);
  assert.deepEqual(
    log,
    ['line 1', 'ack 40', 'line 0'],
    'not re-entered: the change inside was reported after',
  );
  gic.irqLine(41, false);
  cpu.writeSysreg(ICC_EOIR1_EL1, 41);
  assert.equal(cpu.outputLine(), OUTPUT_NONE);
});

test('an SGI from another vCPU and the virtual timer reach the line at the next step()', () => {
  const { gic, cpu, guests, lines } = setup(2);
  guests[1].sendSgi(3, [guests[0].affinity]);
  assert.equal(cpu.entryRequested, true);
  cpu.step();
  assert.deepEqual(lines, [OUTPUT_IRQ]);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 3);
  cpu.writeSysreg(ICC_EOIR1_EL1, 3);
  guests[0].enableIrq(PPI_VTIMER);
  cpu.writeSysreg64(CNTV_CVAL_EL0, gic.counter() + 1000);
  cpu.writeSysreg(CNTV_CTL_EL0, 1);
  assert.deepEqual(lines, [OUTPUT_IRQ, OUTPUT_NONE]);
  const ms = cpu.wfiSleepMs();
  assert.ok(ms > 0 && ms < Number.POSITIVE_INFINITY, `deadline ahead: ${ms} ms`);
  gic.advanceTime(1000);
  cpu.step();
  assert.deepEqual(lines, [OUTPUT_IRQ, OUTPUT_NONE, OUTPUT_IRQ]);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), PPI_VTIMER);
});

test('a throwing handler: the error reaches the caller once, and the vCPU goes on', () => {
  const { gic, cpu, g } = setup();
  g.enableIrq(40);
  let calls = 0;
  cpu.onOutputLine(() => {
    calls++;
    throw new Error('host CPU model failed');
  });
  gic.irqLine(40, true);
  assert.throws(() => cpu.step(), /host CPU model failed/);
  assert.equal(calls, 1);
  cpu.step(); // the level was reported: not again
  assert.equal(calls, 1);
  cpu.onOutputLine(undefined);
  assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 40);
  assert.ok(gic.snapshot().length > 0);
  assert.throws(() => cpu.onOutputLine(42 as never), VgicError);
});
