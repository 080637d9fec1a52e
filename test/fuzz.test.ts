import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import './helpers/fc-seed.ts';
import {
  GIC_IIDR,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  SYSREG_NAMES,
  Vgic,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
} from '../src/index.ts';

const ENCODINGS = Object.values(SYSREG_NAMES);

type Op =
  | { k: 'mmio'; cpu: number; addr: number; size: number; value: number; write: boolean }
  | { k: 'sysreg'; cpu: number; enc: number; value: number; hi: number; write: boolean }
  | { k: 'spi'; intid: number; level: boolean }
  | { k: 'mask'; cpu: number; masked: boolean }
  | { k: 'time'; ticks: number }
  | { k: 'wfi'; cpu: number };

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const cpuArb = fc.integer({ min: 0, max: 2 });
// Addresses concentrated on the GIC frames (and their edges), some anywhere.
const addrArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((o) => VIRT_GICD_BASE + o),
  fc.integer({ min: 0, max: 3 * 0x20000 + 0x100 }).map((o) => VIRT_GICR_BASE + o),
  fc.integer({ min: 0, max: 2 ** 48 }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant('mmio' as const),
    cpu: cpuArb,
    addr: addrArb,
    size: fc.constantFrom(1, 2, 3, 4, 8, 16),
    value: u32,
    write: fc.boolean(),
  }),
  fc.record({
    k: fc.constant('sysreg' as const),
    cpu: cpuArb,
    enc: fc.oneof(fc.constantFrom(...ENCODINGS), fc.integer({ min: 0, max: 0xffff })),
    value: u32,
    hi: u32,
    write: fc.boolean(),
  }),
  fc.record({
    k: fc.constant('spi' as const),
    intid: fc.integer({ min: 32, max: 255 }),
    level: fc.boolean(),
  }),
  fc.record({ k: fc.constant('mask' as const), cpu: cpuArb, masked: fc.boolean() }),
  fc.record({ k: fc.constant('time' as const), ticks: fc.integer({ min: 0, max: 1e6 }) }),
  fc.record({ k: fc.constant('wfi' as const), cpu: cpuArb }),
);

test('random guest and host activity never throws, hangs or corrupts the state', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 1, max: 16 }), (ops, lrs) => {
      const gic = Vgic.create({ vcpus: 3, lrs, time: 'virtual', shared: false });
      let irqs = 0;
      for (let v = 0; v < 3; v++) {
        const cpu = gic.vcpu(v);
        // A handler that acks and EOIs whatever arrives, and gives up after a bound (a storm is fine).
        cpu.onIrq((c) => {
          if (++irqs > 10_000) return;
          const id = c.readSysreg(ICC_IAR1_EL1);
          c.writeSysreg(ICC_EOIR1_EL1, id);
        });
      }
      for (const op of ops) {
        switch (op.k) {
          case 'mmio':
            if (op.write) gic.vcpu(op.cpu).mmioWrite(op.addr, op.size, op.value, op.value ^ 0x5a5a5a5a);
            else gic.vcpu(op.cpu).mmioRead(op.addr, op.size);
            break;
          case 'sysreg':
            if (op.write) gic.vcpu(op.cpu).writeSysreg(op.enc, op.value, op.hi);
            else gic.vcpu(op.cpu).readSysreg(op.enc);
            break;
          case 'spi':
            gic.irqLine(op.intid, op.level);
            break;
          case 'mask':
            if (op.masked) gic.vcpu(op.cpu).maskIrqs();
            else gic.vcpu(op.cpu).unmaskIrqs();
            break;
          case 'time':
            gic.advanceTime(op.ticks);
            break;
          case 'wfi':
            gic.vcpu(op.cpu).wfi(0);
            break;
        }
      }
      // Internal consistency: the snapshot validator accepts the state (ap_lists, locks, LRs).
      const copy = Vgic.restore(gic.snapshot(), { shared: false });
      assert.equal(copy.vcpu(0).readl(VIRT_GICD_BASE + 8), GIC_IIDR);
      assert.equal(gic.vcpu(2).readl(VIRT_GICD_BASE + 8), GIC_IIDR, 'ID registers survive');
    }),
    { numRuns: 150 },
  );
});
