/**
 * Issue 12, item 4: an exception thrown by a host callback (an IRQ or FIQ handler, a runtime
 * program) reaches the caller once, releases every lock it held and leaves the GIC consistent:
 * the next step(), snapshot() and ordinary delivery work, shared or not. Also the guest-instruction
 * methods' host misuse (a bigint or null where a number goes) is a VgicError thrown before any lock.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP0,
  GICD_CTLR_ENABLE_GRP1,
  GICD_IGROUPR,
  GITS_CTLR,
  GicV3Guest,
  ICC_EOIR0_EL1,
  ICC_IAR0_EL1,
  ICC_IGRPEN0_EL1,
  ICC_PMR_EL1,
  Vgic,
  VgicError,
} from '../src/index.ts';
import { Runtime } from '../src/runtime/index.ts';
import { checkInvariants } from './helpers/invariants.ts';

function setup(shared: boolean) {
  const gic = Vgic.create({ vcpus: 2, spis: 32, shared, time: 'virtual' });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  new GicV3Guest(gic.vcpu(1)).enableCpu();
  return { gic, cpu, g };
}

class HandlerError extends Error {}

for (const shared of [true, false]) {
  describe(`a throwing handler (${shared ? 'shared' : 'unshared'} state)`, () => {
    test('the error reaches step() once; step, snapshot, restore and delivery go on', () => {
      const { gic, cpu, g } = setup(shared);
      const taken: number[] = [];
      let fail = true;
      cpu.onIrq(() => {
        const id = g.ack();
        taken.push(id);
        if (id === 40) gic.irqLine(40, false); // the device drops its level line before the EOI
        g.eoi(id);
        if (fail) throw new HandlerError(`handler failed at ${id}`);
      });
      cpu.unmaskIrqs();
      g.routeSpi(40, g.affinity);
      g.enableIrq(40);
      gic.irqLine(40, true);
      assert.throws(() => cpu.step(), HandlerError);
      // Once: the next boundary has nothing to take, and it does not throw again.
      cpu.step();
      assert.deepEqual(taken, [40]);
      assert.equal(cpu.irqsMasked, false, 'PSTATE.I as before the exception');
      assert.deepEqual(checkInvariants(gic), []);
      const snap = gic.snapshot();
      const copy = Vgic.restore(snap, { shared });
      assert.deepEqual(checkInvariants(copy), []);
      // Ordinary operation: an SGI and the SPI again, no throw.
      fail = false;
      g.sendSgiSelf(3);
      gic.irqLine(40, true);
      cpu.step();
      assert.deepEqual(taken, [40, 3, 40]);
      // The other vCPU and the host API were never affected.
      gic.vcpu(1).step();
      gic.writeCpuSysreg(1, ICC_PMR_EL1, 0xf0);
      assert.deepEqual(checkInvariants(gic), []);
    });

    test('a handler that throws while the interrupt is still active leaves it active, not wedged', () => {
      const { gic, cpu, g } = setup(shared);
      cpu.onIrq(() => {
        g.ack();
        throw new HandlerError('before EOI');
      });
      cpu.unmaskIrqs();
      assert.throws(() => g.sendSgiSelf(5), HandlerError); // taken at the SGI write's boundary
      // Active, so not taken again; the guest (host) can finish it by hand.
      cpu.step();
      assert.deepEqual(checkInvariants(gic), []);
      g.eoi(5);
      cpu.step();
      gic.snapshot();
      assert.deepEqual(checkInvariants(gic), []);
    });

    test('a throwing handler nested inside another unwinds both', () => {
      const { gic, cpu, g } = setup(shared);
      g.setPriority(2, 0x80);
      g.setPriority(1, 0x40); // SGI 1 preempts SGI 2
      let depth = 0;
      const log: string[] = [];
      cpu.onIrq(() => {
        const id = g.ack();
        log.push(`take ${id} at depth ${++depth}`);
        try {
          if (id === 2) {
            cpu.unmaskIrqs();
            g.sendSgiSelf(1); // taken inside: its handler throws
          } else throw new HandlerError(`inner ${id}`);
        } finally {
          depth--;
          cpu.maskIrqs();
          g.eoi(id);
        }
      });
      cpu.unmaskIrqs();
      assert.throws(() => g.sendSgiSelf(2), /inner 1/);
      assert.deepEqual(log, ['take 2 at depth 1', 'take 1 at depth 2']);
      assert.equal(cpu.irqsMasked, false);
      cpu.step();
      gic.snapshot();
      assert.deepEqual(checkInvariants(gic), []);
    });

    test('a throwing FIQ handler (Group 0) is contained the same way', () => {
      const { gic, cpu, g } = setup(shared);
      cpu.writel(g.distBase + GICD_IGROUPR + 4, 0); // SPIs 32..63: Group 0
      cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
      cpu.writeSysreg(ICC_IGRPEN0_EL1, 1);
      let fiqs = 0;
      cpu.onFiq((c) => {
        const id = c.readSysreg(ICC_IAR0_EL1);
        c.writeSysreg(ICC_EOIR0_EL1, id);
        if (++fiqs === 1) throw new HandlerError('fiq');
      });
      cpu.unmaskFiqs();
      g.enableIrq(40);
      assert.throws(() => g.setPending(40), HandlerError);
      cpu.step();
      gic.snapshot();
      g.setPending(40);
      assert.equal(fiqs, 2);
      assert.deepEqual(checkInvariants(gic), []);
    });
  });
}

describe('host misuse of the guest-instruction methods throws VgicError before any lock', () => {
  for (const shared of [true, false]) {
    test(`bigints, strings and null where numbers go (${shared ? 'shared' : 'unshared'})`, () => {
      const { gic, cpu } = setup(shared);
      const bad: [string, () => unknown][] = [
        ['readSysreg(bigint)', () => cpu.readSysreg(1n as never)],
        ['writeSysreg(enc, bigint)', () => cpu.writeSysreg(ICC_PMR_EL1, 0xf0n as never)],
        ['writeSysreg(enc, lo, null)', () => cpu.writeSysreg(ICC_PMR_EL1, 0, null as never)],
        ['mmioRead(null, 4)', () => cpu.mmioRead(null as never, 4)],
        ['writel(addr, bigint)', () => cpu.writel(0x08000000, 1n as never)],
        ['writeq(addr, "1")', () => cpu.writeq(0x08000000, '1' as never)],
        ['writeSysreg64(enc, 1.5)', () => cpu.writeSysreg64(ICC_PMR_EL1, 1.5 as never)],
        ['onIrq(5)', () => cpu.onIrq(5 as never)],
        ['wfi(NaN)', () => cpu.wfi(Number.NaN)],
      ];
      for (const [name, f] of bad) {
        assert.throws(f, (e: unknown) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT', name);
      }
      cpu.step();
      gic.snapshot();
      assert.deepEqual(checkInvariants(gic), []);
    });
  }

  test('its.writeReg(GITS_CTLR, 1) with the default size writes GITS_CTLR (4 bytes)', () => {
    const gic = Vgic.create({ its: 1, ram: { size: 1 << 20 } });
    gic.its(0).writeReg(GITS_CTLR, 0);
    assert.equal(gic.its(0).readReg(GITS_CTLR) >> 31n, 1n, 'GITS_CTLR.Quiescent reads as 1');
    assert.throws(() => gic.its(0).writeReg(GITS_CTLR, 1, 8), VgicError, 'an explicit 8 still refused');
  });
});

test('a runtime program whose handler throws: stop() rejects once, the GIC goes on', async () => {
  const gic = Vgic.create({ vcpus: 1, spis: 32 });
  const rt = Runtime.start({
    gic,
    module: new URL('./fixtures/throwing-programs.js', import.meta.url),
    vcpuProgram: 'throwingVcpu',
    vcpuThreads: 1,
  });
  assert.ok(await rt.waitShared(0, 1, 10_000), 'the program started');
  gic.ppiLine(0, 20, true); // a device's level PPI, which the program enabled
  // The runtime's failure: any later wait on it, and stop(), report that one error.
  const failed = /program handler failed on vCPU 0 at INTID 20/;
  await assert.rejects(rt.waitShared(1, 1, 10_000), failed);
  await assert.rejects(rt.stop(10_000), failed);
  // The worker is gone: the main thread takes over the vCPU and the GIC.
  gic.snapshot();
  assert.deepEqual(checkInvariants(gic), []);
  gic.ppiLine(0, 20, false); // the device quiets (its handler never got to)
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  cpu.onIrq(() => g.eoi(g.ack()));
  g.sendSgiSelf(2);
  cpu.step();
  assert.deepEqual(checkInvariants(gic), []);
});
