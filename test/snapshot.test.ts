import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sealSnapshot } from '../src/device/snapshot.ts';
import {
  GicV3Guest,
  ICC_AP1R0_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  Vgic,
  VgicError,
} from '../src/index.ts';
import { V_AP_HEAD, V_AP_LOCK, VCPU_STRIDE } from '../src/state/layout.ts';

/** A GIC in the middle of things: an active SGI in an LR, pending edge and level SPIs, masked IRQs. */
function busyGic(shared = true) {
  const gic = Vgic.create({ vcpus: 2, lrs: 2, time: 'virtual', shared });
  const g = [0, 1].map((i) => new GicV3Guest(gic.vcpu(i)));
  g[0].enableDistributor();
  for (const x of g) x.enableCpu();
  for (let i = 0; i < 6; i++) {
    const intid = 40 + i;
    g[0].setPriority(intid, 0x80 - 0x10 * i);
    g[0].setEdge(intid, i % 2 === 0);
    g[0].routeSpi(intid, g[1].affinity);
    g[0].enableIrq(intid);
    gic.irqLine(intid, true);
    if (i % 2 === 0) gic.irqLine(intid, false); // edge: the latch holds it
  }
  g[1].setPriority(2, 0x10);
  g[1].sendSgiSelf(2);
  const sgi = gic.vcpu(1).readSysreg(ICC_IAR1_EL1); // active, its APR bit set, its LR live
  assert.equal(sgi, 2);
  return gic;
}

/** Everything vCPU 1 acknowledges from here on, EOI'ing each (level lines are dropped on ack). */
function drain(gic: Vgic): number[] {
  const c = gic.vcpu(1);
  const out: number[] = [];
  c.writeSysreg(ICC_EOIR1_EL1, 2);
  for (;;) {
    const intid = c.readSysreg(ICC_IAR1_EL1);
    if (intid === 1023) break;
    out.push(intid, c.readSysreg(ICC_RPR_EL1));
    if (intid >= 32) gic.irqLine(intid, false);
    c.writeSysreg(ICC_EOIR1_EL1, intid);
  }
  return out;
}

describe('snapshot and restore', () => {
  test('a restored GIC continues exactly as the original', () => {
    const a = busyGic();
    const bytes = a.snapshot();
    const b = Vgic.restore(bytes);
    assert.equal(b.readCpuSysreg(1, ICC_AP1R0_EL1), a.readCpuSysreg(1, ICC_AP1R0_EL1));
    assert.notEqual(b.readCpuSysreg(1, ICC_AP1R0_EL1), 0, 'the active SGI priority was saved');
    const fromA = drain(a);
    const fromB = drain(b);
    assert.deepEqual(fromB, fromA);
    assert.deepEqual(
      fromA.filter((_, i) => i % 2 === 0),
      [45, 44, 43, 42, 41, 40],
      'all six SPIs, by priority',
    );
  });

  test('snapshot of an unshared GIC restores shared, and the other way round', () => {
    const a = busyGic(false);
    const b = Vgic.restore(a.snapshot(), { shared: true });
    assert.ok(b.state.shared);
    const c = Vgic.restore(b.snapshot(), { shared: false });
    assert.equal(c.state.shared, false);
    assert.deepEqual(drain(c), drain(a));
  });

  test('a snapshot is a copy: the original goes on independently', () => {
    const a = busyGic();
    const bytes = a.snapshot();
    drain(a);
    const b = Vgic.restore(bytes);
    assert.equal(drain(b).length, 12);
  });

  test('corrupt snapshots are refused with a VgicError', () => {
    const bytes = busyGic().snapshot();
    const corrupt = (edit: (v: Vgic) => void) => {
      const copy = Vgic.restore(bytes); // a scratch GIC to edit
      edit(copy);
      const out = new Uint8Array(copy.state.buffer).slice();
      sealSnapshot(out.buffer); // a valid checksum: the field checks must catch it
      return out;
    };
    const badMagic = bytes.slice();
    badMagic[0] ^= 0xff;
    assert.throws(
      () => Vgic.restore(badMagic),
      (e) => e instanceof VgicError && /corrupt vgic snapshot: bad magic/.test(e.message),
    );
    assert.throws(() => Vgic.restore(bytes.slice(0, 16)), VgicError);
    const cycle = corrupt((v) => {
      const s = v.state;
      const head = s.vcpu[1 * VCPU_STRIDE + V_AP_HEAD];
      s.irqApNext[head] = head;
    });
    assert.throws(() => Vgic.restore(cycle), /corrupt vgic snapshot/);
    const locked = corrupt((v) => {
      v.state.vcpu[0 * VCPU_STRIDE + V_AP_LOCK] = 7;
    });
    assert.throws(() => Vgic.restore(locked), /ap_list_lock of vCPU 0 is held/);
    const stray = corrupt((v) => {
      v.state.irqApVcpu[v.state.nSlots - 1] = 0;
    });
    assert.throws(() => Vgic.restore(stray), /corrupt vgic snapshot/);
  });
});

describe('CPU interface registers from userspace (GRP_CPU_SYSREGS)', () => {
  test('read and write without running the vCPU', () => {
    const gic = Vgic.create({ vcpus: 1 });
    gic.writeCpuSysreg(0, ICC_PMR_EL1, 0xff);
    assert.equal(gic.readCpuSysreg(0, ICC_PMR_EL1), 0xf8);
    assert.equal(gic.vcpu(0).inGuest, false, 'userspace access does not enter the guest');
    assert.equal(gic.vcpu(0).readSysreg(ICC_PMR_EL1), 0xf8, 'the guest sees it');
    gic.writeCpuSysreg(0, ICC_AP1R0_EL1, 0x10);
    assert.equal(
      gic.vcpu(0).readSysreg(ICC_RPR_EL1),
      0x20,
      'a restored active priority is the running priority',
    );
  });

  test('registers with side effects are refused', () => {
    const gic = Vgic.create({ vcpus: 1 });
    for (const enc of [ICC_IAR1_EL1, ICC_EOIR1_EL1]) {
      assert.throws(
        () => gic.readCpuSysreg(0, enc),
        (e) =>
          e instanceof VgicError && e.code === 'INVALID_REGISTER' && /allowed: ICC_PMR_EL1/.test(e.message),
      );
    }
    assert.throws(
      () => gic.writeCpuSysreg(3, ICC_PMR_EL1, 0),
      (e) => e instanceof VgicError && e.code === 'INVALID_VCPU',
    );
  });
});
