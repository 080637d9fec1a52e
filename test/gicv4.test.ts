/**
 * GICv4.1 direct injection (core/vpe.ts, its/forwarding.ts): forwarded MSIs set VPT bits that a
 * resident vCPU takes with ICC_IAR1 without list register or exit; a blocked vCPU gets its doorbell
 * once per blocked phase; setForwarding / unsetForwarding and MOVI move pending state without loss
 * or duplication; DISCARD drops it (counted); snapshots and the pending-table save keep it.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GICD_CTLR, GICD_TYPER2, GICR_ISENABLER0, GICR_ISPENDR0, VIRT_GICD_BASE } from '../src/arch/gicv3.ts';
import { ICC_EOIR1_EL1, ICC_HPPIR1_EL1, ICC_IAR1_EL1 } from '../src/arch/sysreg.ts';
import { checkInvariants } from '../src/bench/invariants.ts';
import { runLpiStress } from '../src/bench/lpi-stress.ts';
import { runThreadedTest } from '../src/bench/micro-threads.ts';
import { sealSnapshot } from '../src/device/snapshot.ts';
import { MSI_COALESCED, MSI_DELIVERED, Vgic } from '../src/device/vgic.ts';
import { GicV3Guest } from '../src/guest/gic-v3.ts';
import { enableLpisOnVcpu, ItsGuest, type LpiTables } from '../src/guest/gic-v3-its.ts';
import { VgicError } from '../src/index.ts';
import { FLAG_DIRECT, FLAG_GICV2, H_FLAGS } from '../src/state/layout.ts';

const RAM = 0x40000000;
const RAM_SIZE = 16 << 20;
const DB = 0x08090040;
const SPURIOUS = 1023;

interface Setup {
  gic: Vgic;
  its: ItsGuest;
  lpi: LpiTables;
}

/** n vCPUs, device 0 with `events` events: event e is LPI 8192 + e on vCPU e % n, priority 0xa0. */
function setup(n = 2, events = 8, shared = false): Setup {
  const gic = Vgic.create({
    vcpus: n,
    its: 1,
    ram: { base: RAM, size: RAM_SIZE },
    lpiIdBits: 16,
    directInjection: 'gicv4.1',
    shared,
  });
  const p = { ramBase: RAM, ramSize: RAM_SIZE, vcpus: n, lpiIdBits: 16 };
  let first: ReturnType<typeof enableLpisOnVcpu> | undefined;
  for (let v = 0; v < n; v++) {
    const r = enableLpisOnVcpu(gic.vcpu(v), p);
    first ??= r;
  }
  const { alloc, lpi } = first!;
  lpi.fillConfig();
  const its = new ItsGuest(gic.vcpu(0), alloc);
  its.init();
  its.enable();
  for (let v = 0; v < n; v++) its.mapc(v, v);
  its.createDevice(0, 4);
  for (let e = 0; e < events; e++) its.mapti(0, e, 8192 + e, e % n);
  for (let v = 0; v < n; v++) its.invall(v);
  for (let v = 0; v < n; v++) gic.vcpu(v).exit();
  return { gic, its, lpi };
}

const msi = (eventid: number) => ({ doorbell: DB, devid: 0, eventid });

/** Acknowledges and EOIs everything vCPU v has now (IRQs masked); returns the INTIDs in order. */
function drain(gic: Vgic, v: number): number[] {
  const cpu = gic.vcpu(v);
  const out: number[] = [];
  for (;;) {
    const intid = cpu.readSysreg(ICC_IAR1_EL1);
    if (intid === SPURIOUS) break;
    out.push(intid);
    cpu.writeSysreg(ICC_EOIR1_EL1, intid);
  }
  return out;
}

describe('GICv4.1 direct injection', () => {
  it('a forwarded MSI to a running vCPU is taken by ICC_IAR1 from the VPT: no LR, no exit', () => {
    const { gic } = setup();
    assert.equal(gic.directInjection, 'gicv4.1');
    const cpu = gic.vcpu(0);
    cpu.step();
    assert.equal(gic.vpeStatus(0).resident, true);
    assert.equal(gic.setForwarding(msi(0)), 8192);
    const exits = gic.stats().vcpus[0].exits;
    assert.equal(gic.injectMsi(DB, 0, 0), MSI_DELIVERED);
    assert.equal(gic.injectMsi(DB, 0, 0), MSI_COALESCED, 'a second MSI merges into the VPT bit');
    assert.equal(gic.vpeStatus(0).pending, 1);
    assert.equal(cpu.outputLine(), 1, 'the vLPI is signalled as vIRQ');
    assert.equal(cpu.readSysreg(ICC_HPPIR1_EL1), 8192);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 8192);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS, 'taken once');
    cpu.writeSysreg(ICC_EOIR1_EL1, 8192);
    assert.equal(gic.stats().vcpus[0].exits, exits, 'no exit on the whole path');
    assert.equal(gic.vpeStatus(0).directAcks, 1);
    assert.equal(gic.vpeStatus(0).pending, 0);
    assert.equal(cpu.outputLine(), 0);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('the CPU interface presents the highest priority among LRs and vLPIs (ties: lowest INTID)', () => {
    const { gic, its, lpi } = setup(1, 4);
    const cpu = gic.vcpu(0);
    gic.setForwarding(msi(1));
    gic.setForwarding(msi(3));
    lpi.setConfig(8192 + 3, 0x20); // vLPI above everything
    lpi.setConfig(8192 + 2, 0x40); // software LPI next
    for (let e = 0; e < 4; e++) its.inv(0, e);
    cpu.maskIrqs();
    for (const e of [0, 1, 2, 3]) gic.injectMsi(DB, 0, e);
    // 8195 (vLPI, 0x20), 8194 (LR, 0x40), then 0xa0: 8192 (LR) before 8193 (vLPI) by INTID.
    assert.deepEqual(drain(gic, 0), [8195, 8194, 8192, 8193]);
    assert.equal(gic.vpeStatus(0).directAcks, 2);
  });

  it('a disabled vLPI stays pending and is not presented; a higher running priority masks it', () => {
    const { gic, its, lpi } = setup(1, 2);
    const cpu = gic.vcpu(0);
    gic.setForwarding(msi(0));
    lpi.setConfig(8192, 0xa0, false);
    its.inv(0, 0);
    cpu.maskIrqs();
    gic.injectMsi(DB, 0, 0);
    assert.deepEqual(drain(gic, 0), []);
    assert.equal(gic.vpeStatus(0).pending, 1);
    lpi.setConfig(8192, 0xa0, true);
    its.inv(0, 0);
    // A software LPI at 0x80 is active: the vLPI at 0xa0 cannot preempt it.
    lpi.setConfig(8193, 0x80);
    its.inv(0, 1);
    gic.injectMsi(DB, 0, 1);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 8193);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), SPURIOUS);
    cpu.writeSysreg(ICC_EOIR1_EL1, 8193);
    assert.deepEqual(drain(gic, 0), [8192]);
  });

  it('a vLPI pending while disabled rings the blocked vCPU doorbell when INV enables it', () => {
    const { gic, its, lpi } = setup(2, 2);
    gic.setForwarding(msi(1)); // vCPU 1
    lpi.setConfig(8193, 0xa0, false);
    its.inv(0, 1); // from vCPU 0
    const c1 = gic.vcpu(1);
    c1.maskIrqs();
    c1.step();
    assert.equal(c1.wfiPoll(), false);
    gic.injectMsi(DB, 0, 1);
    assert.equal(gic.vpeStatus(1).doorbells, 0, 'disabled: no doorbell');
    assert.equal(c1.wfiPoll(), false);
    lpi.setConfig(8193, 0xa0, true);
    its.inv(0, 1);
    assert.equal(gic.vpeStatus(1).doorbells, 1);
    assert.equal(c1.wfiPoll(), true);
    c1.step();
    assert.deepEqual(drain(gic, 1), [8193]);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('a blocked vCPU gets its doorbell once per non-residency phase; a stopped one none', () => {
    const { gic } = setup(2, 4);
    gic.setForwarding(msi(1)); // vCPU 1
    gic.setForwarding(msi(3)); // vCPU 1
    const cpu = gic.vcpu(1);
    cpu.step();
    assert.equal(cpu.wfiPoll(), false, 'nothing pending: the WFI would sleep');
    let st = gic.vpeStatus(1);
    assert.deepEqual([st.resident, st.doorbellEnabled, st.doorbellSpent], [false, true, false]);
    gic.injectMsi(DB, 0, 1);
    gic.injectMsi(DB, 0, 3);
    gic.injectMsi(DB, 0, 1);
    st = gic.vpeStatus(1);
    assert.equal(st.doorbells, 1, 'one doorbell for the phase, however many vLPIs');
    assert.equal(st.pendingLast, true);
    assert.equal(cpu.wfiPoll(), true, 'the doorbell wakes the WFI');
    assert.equal(gic.vpeStatus(1).doorbells, 1, 'polling again rings nothing');
    cpu.maskIrqs();
    cpu.step(); // runs: resident, a new phase
    assert.equal(gic.vpeStatus(1).resident, true);
    assert.equal(gic.vpeStatus(1).pendingLast, false);
    assert.deepEqual(drain(gic, 1), [8193, 8195]);
    assert.equal(cpu.wfiPoll(), false);
    gic.injectMsi(DB, 0, 1);
    assert.equal(gic.vpeStatus(1).doorbells, 2, 'the next blocked phase has its own doorbell');
    cpu.step();
    assert.deepEqual(drain(gic, 1), [8193]);
    // Stopped (exit without WFI): non-resident, doorbell disabled.
    cpu.exit();
    gic.injectMsi(DB, 0, 1);
    st = gic.vpeStatus(1);
    assert.deepEqual([st.resident, st.doorbellEnabled, st.doorbells, st.pending], [false, false, 2, 1]);
    // A WFI after the stop: the waiting vLPI makes PendingLast (no doorbell needed).
    assert.equal(cpu.wfiPoll(), true);
    assert.equal(gic.vpeStatus(1).doorbells, 2);
    cpu.step();
    assert.deepEqual(drain(gic, 1), [8193]);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('the WFI sleeping on another thread is woken by the doorbell (real futex)', async () => {
    const { gic } = setup(1, 1, true);
    gic.setForwarding(msi(0));
    const cpu = gic.vcpu(0);
    cpu.maskIrqs();
    setTimeout(() => gic.injectMsi(DB, 0, 0), 30);
    const r = await cpu.wfiAsync(5000);
    assert.equal(r, 'irq');
    assert.equal(gic.vpeStatus(0).doorbells, 1);
    assert.deepEqual(drain(gic, 0), [8192]);
  });

  it('setForwarding and unsetForwarding move one pending state, never two or none', () => {
    const { gic } = setup(2, 4);
    const v1 = gic.vcpu(1);
    v1.maskIrqs();
    assert.equal(gic.injectMsi(DB, 0, 1), MSI_DELIVERED); // software latch, vCPU 1 not running
    gic.setForwarding(msi(1));
    assert.equal(gic.vpeStatus(1).pending, 1, 'the latch became the VPT bit');
    assert.equal(gic.injectMsi(DB, 0, 1), MSI_COALESCED);
    gic.unsetForwarding(msi(1));
    assert.equal(gic.vpeStatus(1).pending, 0, 'the VPT bit became the latch');
    assert.equal(gic.injectMsi(DB, 0, 1), MSI_COALESCED);
    assert.deepEqual(drain(gic, 1), [8193]);
    assert.deepEqual(drain(gic, 1), []);
    gic.unsetForwarding(msi(1)); // not forwarded: nothing changes
    assert.equal(gic.injectMsi(DB, 0, 1), MSI_DELIVERED);
    assert.deepEqual(drain(gic, 1), [8193]);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('MOVI moves a pending vLPI to the new vPE (VMOVI); DISCARD drops it and ends forwarding', () => {
    const { gic, its } = setup(2, 4);
    gic.setForwarding(msi(0)); // on vCPU 0
    gic.injectMsi(DB, 0, 0);
    assert.equal(gic.vpeStatus(0).pending, 1);
    its.movi(0, 0, 1);
    gic.vcpu(0).exit();
    assert.equal(gic.vpeStatus(0).pending, 0);
    assert.equal(gic.vpeStatus(1).pending, 1);
    gic.vcpu(0).maskIrqs();
    gic.vcpu(1).maskIrqs();
    assert.deepEqual(drain(gic, 0), []);
    assert.deepEqual(drain(gic, 1), [8192]);
    // Still forwarded, now to vCPU 1.
    gic.injectMsi(DB, 0, 0);
    assert.equal(gic.vpeStatus(1).pending, 1);
    const dropped = gic.stats().lpiPendingDropped;
    its.discard(0, 0);
    assert.equal(gic.vpeStatus(1).pending, 0);
    assert.equal(gic.stats().lpiPendingDropped, dropped + 1, 'the dropped pending state is counted');
    its.mapti(0, 0, 8192, 0);
    gic.vcpu(0).exit();
    assert.equal(gic.injectMsi(DB, 0, 0), MSI_DELIVERED);
    assert.equal(gic.vpeStatus(0).pending, 0, 'remapped, it is no vLPI until forwarded again');
    assert.deepEqual(drain(gic, 0), [8192]);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('the invariant checker sees a VPT bit on the wrong vPE and a resident vPE with a doorbell', () => {
    const { gic } = setup(2, 4);
    gic.setForwarding(msi(0)); // vCPU 0
    gic.injectMsi(DB, 0, 0);
    assert.deepEqual(checkInvariants(gic), []);
    const s = gic.state;
    s.vpt[s.vptWords] |= 1; // LPI 8192 on vPE 1 too
    s.vptSummary[s.vptSummaryWords] |= 1;
    s.vptTop[s.vptTopWords] |= 1;
    s.vpe[0] = 1 | 2; // Valid with the doorbell enabled
    const bad = checkInvariants(gic);
    assert.ok(bad.includes('vPE 1: VPT bit of LPI 8192, no vLPI of it'), bad.join('; '));
    assert.ok(bad.includes('resident vPE 0 carries non-residency bits (3)'), bad.join('; '));
  });

  it('snapshot and restore keep forwarded LPIs and their VPT bits; a forged VPT bit is refused', () => {
    const { gic } = setup(2, 4);
    gic.setForwarding(msi(2)); // vCPU 0
    gic.injectMsi(DB, 0, 2);
    gic.vcpu(0).step(); // running: resident
    assert.equal(gic.vpeStatus(0).resident, true);
    const bytes = gic.snapshot();
    const ram = gic.memory.regions[0].bytes.buffer;
    const back = Vgic.restore(bytes, { ram: [{ base: RAM, buffer: ram }] });
    assert.equal(back.directInjection, 'gicv4.1');
    assert.equal(back.vpeStatus(0).pending, 1);
    assert.equal(back.vpeStatus(0).resident, false, 'no vCPU of a restored GIC runs yet');
    back.vcpu(0).maskIrqs();
    assert.deepEqual(drain(back, 0), [8194]);
    assert.equal(back.injectMsi(DB, 0, 2), MSI_DELIVERED);
    assert.equal(back.vpeStatus(0).pending, 1, 'still forwarded after restore');
    // A VPT bit of an LPI that is no vLPI of that vPE would deliver it twice.
    const forged = bytes.slice();
    const forge = (edit: (g: Vgic) => void) => {
      const g = Vgic.restore(bytes, { ram: [{ base: RAM, buffer: ram }] });
      edit(g);
      forged.set(new Uint8Array(g.state.buffer));
      sealSnapshot(forged.buffer);
      return () => Vgic.restore(forged, { ram: [{ base: RAM, buffer: ram }] });
    };
    // vPE 1, LPI 8194 (a vLPI of vPE 0), summarised and counted: only the ownership rule objects.
    const bit = (g: Vgic) => {
      g.state.vpt[g.state.vptWords] |= 1 << 2;
      g.state.vptSummary[g.state.vptSummaryWords] |= 1;
      g.state.vptTop[g.state.vptTopWords] |= 1;
    };
    assert.throws(forge(bit), /vPE 1: VPT bit of LPI 8194, which is no vLPI of it/);
    assert.throws(
      forge((g) => {
        g.state.vpt[g.state.vptWords] |= 1 << 2;
      }),
      /vPE 1: VPT word 0 is not in its summary/,
    );
    assert.throws(
      forge((g) => {
        g.state.vptTop[0] = 0;
      }),
      /vPE 0: VPT summary word 0 is not in its top level/,
    );
    assert.throws(
      forge((g) => {
        g.state.irqTarget[g.state.lpiSlot(8194)] = -1; // a vLPI on no vPE
      }),
      /forwarded LPI 8194 \(target -1\)/,
    );
  });

  it('the pending-table save writes forwarded LPIs’ VPT bits (the ITS ABI keeps them)', () => {
    const { gic, lpi } = setup(1, 4);
    gic.setForwarding(msi(3));
    gic.injectMsi(DB, 0, 3);
    gic.savePendingTables();
    assert.equal(lpi.isPending(0, 8195), true);
    assert.equal(lpi.isPending(0, 8194), false);
    assert.equal(gic.vpeStatus(0).pending, 1, 'a save does not consume');
  });

  it('host misuse is refused with what is allowed', () => {
    assert.throws(
      () => Vgic.create({ vcpus: 1, directInjection: 'gicv4.1' }),
      (e: unknown) => e instanceof VgicError && /needs an ITS/.test(e.message),
    );
    assert.throws(
      () => Vgic.create({ vcpus: 1, its: 1, directInjection: 'gicv4' as 'gicv4.1' }),
      /directInjection must be 'gicv4.1' or unset/,
    );
    const plain = Vgic.create({ vcpus: 1, its: 1, ram: { base: RAM, size: RAM_SIZE } });
    assert.equal(plain.directInjection, undefined);
    assert.throws(() => plain.setForwarding(msi(0)), /needs a GIC created with directInjection: 'gicv4.1'/);
    assert.throws(() => plain.vpeStatus(0), /vpeStatus needs directInjection/);
    const { gic } = setup(1, 2);
    assert.throws(
      () => gic.setForwarding({ doorbell: 0x1000, devid: 0, eventid: 0 }),
      (e: unknown) =>
        e instanceof VgicError && e.code === 'INVALID_ADDRESS' && /no ITS's GITS_TRANSLATER/.test(e.message),
    );
    assert.throws(
      () => gic.setForwarding(msi(7)),
      /device 0 event 7 does not translate on ITS 0 \(no valid mapping/,
    );
    assert.throws(() => gic.setForwarding({ doorbell: DB, devid: -1, eventid: 0 }), /MSI devid/);
    assert.throws(() => gic.unsetForwarding(null as never), /takes \{ doorbell, devid, eventid \}/);
  });

  it('a GICv2 has no vPEs: gicVersion 2 with directInjection is refused, in options and in a snapshot', () => {
    assert.throws(
      () => Vgic.create({ gicVersion: 2, vcpus: 2, directInjection: 'gicv4.1' }),
      (e: unknown) => e instanceof VgicError && /needs a GICv3 with an ITS/.test(e.message),
    );
    // The two header flags are distinct bits, and a snapshot claiming both is refused.
    assert.equal(FLAG_DIRECT & FLAG_GICV2, 0);
    const { gic } = setup(1, 2);
    const forged = gic.snapshot().slice();
    const h = new Int32Array(forged.buffer);
    assert.equal(h[H_FLAGS] & FLAG_DIRECT, FLAG_DIRECT);
    h[H_FLAGS] |= FLAG_GICV2;
    sealSnapshot(forged.buffer);
    assert.throws(() => Vgic.restore(forged), /header flags/);
  });
});

describe('GICv4.1 vSGIs (GICD_CTLR.nASSGIreq)', () => {
  /** Two vCPUs with their CPU interfaces on; vSGIs switched on by vCPU 0 (EnableGrp1 cleared first). */
  function vsgiSetup(on = true) {
    const { gic } = setup(2, 1);
    const g0 = new GicV3Guest(gic.vcpu(0));
    const g1 = new GicV3Guest(gic.vcpu(1));
    const c0 = gic.vcpu(0);
    if (on) {
      c0.writel(VIRT_GICD_BASE + GICD_CTLR, 0);
      c0.writel(VIRT_GICD_BASE + GICD_CTLR, 1 << 8);
      c0.writel(VIRT_GICD_BASE + GICD_CTLR, (1 << 8) | 2);
    }
    return { gic, g0, g1 };
  }

  it('nASSGIcap is advertised; nASSGIreq changes only while EnableGrp1 is clear', () => {
    const { gic } = vsgiSetup(false);
    const c0 = gic.vcpu(0);
    assert.equal(c0.readl(VIRT_GICD_BASE + GICD_TYPER2) & (1 << 8), 1 << 8);
    assert.equal(c0.readl(VIRT_GICD_BASE + GICD_CTLR) & 2, 2, 'EnableGrp1 set by the guest library');
    c0.writel(VIRT_GICD_BASE + GICD_CTLR, (1 << 8) | 2);
    assert.equal(c0.readl(VIRT_GICD_BASE + GICD_CTLR) & (1 << 8), 0, 'ignored with EnableGrp1 set');
    c0.writel(VIRT_GICD_BASE + GICD_CTLR, 0);
    c0.writel(VIRT_GICD_BASE + GICD_CTLR, 1 << 8);
    assert.equal(c0.readl(VIRT_GICD_BASE + GICD_CTLR) & (1 << 8), 1 << 8);
    c0.writel(VIRT_GICD_BASE + GICD_CTLR, (1 << 8) | 2);
    c0.writel(VIRT_GICD_BASE + GICD_CTLR, 2);
    assert.equal(c0.readl(VIRT_GICD_BASE + GICD_CTLR) & (1 << 8), 1 << 8, 'kept: EnableGrp1 was set');
    const plain = Vgic.create({ vcpus: 1 });
    plain.vcpu(0).writel(VIRT_GICD_BASE + GICD_CTLR, 1 << 8);
    assert.equal(plain.vcpu(0).readl(VIRT_GICD_BASE + GICD_CTLR) & (1 << 8), 0, 'RES0 without GICv4.1');
    assert.equal(plain.vcpu(0).readl(VIRT_GICD_BASE + GICD_TYPER2), 0);
  });

  it('a vSGI reaches a running vCPU without LR or exit, has no active state, and its pending state is readable', () => {
    const { gic, g0, g1 } = vsgiSetup();
    const c1 = gic.vcpu(1);
    c1.maskIrqs();
    c1.step();
    const exits = gic.stats().vcpus[1].exits;
    g0.sendSgi(3, [1]);
    g0.sendSgi(3, [1]); // merges: still one pending
    assert.equal(gic.vcpu(0).readl(g1.sgiBase + (GICR_ISPENDR0 - 0x10000)) & 0xffff, 1 << 3);
    assert.equal(c1.outputLine(), 1);
    assert.equal(c1.readSysreg(ICC_IAR1_EL1), 3);
    // No active state: sent again, it is pending again at once, and taken again (nested).
    g0.sendSgi(3, [1]);
    assert.equal(c1.readSysreg(ICC_IAR1_EL1), SPURIOUS, 'same priority as the running one: no preemption');
    c1.writeSysreg(ICC_EOIR1_EL1, 3);
    assert.equal(c1.readSysreg(ICC_IAR1_EL1), 3);
    c1.writeSysreg(ICC_EOIR1_EL1, 3);
    assert.equal(c1.readSysreg(ICC_IAR1_EL1), SPURIOUS);
    assert.equal(gic.stats().vcpus[1].exits, exits, 'the receiver never exited');
    assert.equal(gic.vcpu(0).readl(g1.sgiBase + (GICR_ISPENDR0 - 0x10000)) & 0xffff, 0);
    assert.deepEqual(checkInvariants(gic), []);
  });

  it('a vSGI to a blocked vCPU rings its doorbell once; a disabled one stays pending silently', () => {
    const { gic, g0, g1 } = vsgiSetup();
    const c1 = gic.vcpu(1);
    c1.maskIrqs();
    c1.step();
    g1.disableIrq(5);
    assert.equal(c1.wfiPoll(), false);
    g0.sendSgi(5, [1]);
    assert.equal(gic.vpeStatus(1).doorbells, 0, 'disabled: no doorbell');
    assert.equal(c1.wfiPoll(), false);
    // vCPU 0 enables SGI 5 in vCPU 1's redistributor: now it rings.
    gic.vcpu(0).writel(g1.sgiBase + (GICR_ISENABLER0 - 0x10000), 1 << 5);
    assert.equal(gic.vpeStatus(1).doorbells, 1);
    g0.sendSgi(2, [1]);
    g0.sendSgi(4, [1]);
    assert.equal(gic.vpeStatus(1).doorbells, 1, 'once per phase');
    assert.equal(c1.wfiPoll(), true);
    c1.step();
    assert.deepEqual(drain(gic, 1), [2, 4, 5]);
  });
});

describe('GICv4.1 direct injection on threads (lpi-stress --design direct)', { timeout: 120000 }, () => {
  function accounted(r: Awaited<ReturnType<typeof runLpiStress>>): void {
    assert.equal(r.failed, 0, 'every MSI delivered or coalesced');
    assert.equal(r.badIntids, 0);
    assert.equal(r.delivered + r.coalesced, r.injected + r.warmup, 'every answer counted');
    assert.equal(r.lost, 0, 'delivered = acknowledged + merged + drained + dropped: none lost or duplicated');
    assert.equal(r.dropped, 0);
    assert.deepEqual(r.violations, [], 'the whole state holds its invariants after the run');
  }

  it('spinning vCPUs take vLPIs from their VPTs; none lost', async () => {
    const r = await runLpiStress({ vcpus: 4, devices: 4, events: 17, iterations: 300, design: 'direct' });
    accounted(r);
    assert.ok(r.acknowledged >= 1);
    assert.equal(r.mergedAtFold, 0, 'no LR was involved');
  });

  it('residency transitions under fire: vCPUs block in WFI and wake while MSIs fly; a doorbell at most once per phase', async () => {
    const r = await runLpiStress({
      vcpus: 3,
      devices: 3,
      events: 5,
      iterations: 50,
      minMs: 400,
      design: 'direct',
      wfiEvery: 2,
    });
    accounted(r);
    assert.ok(r.wfis > 100, `the vCPUs blocked ${r.wfis} times`);
    assert.ok(r.doorbells >= 1, 'blocked vCPUs were woken by doorbells');
    assert.equal(r.extraDoorbells, 0, 'no vCPU rang more doorbells than it had blocked phases');
  });

  it('forwarding switched off and on while MSIs fly: pending state moves, nothing lost or duplicated', async () => {
    const r = await runLpiStress({
      vcpus: 2,
      devices: 2,
      events: 6,
      iterations: 50,
      minMs: 400,
      design: 'direct',
      toggleForwarding: true,
      wfiEvery: 3,
    });
    accounted(r);
    assert.ok(r.toggleRounds >= 10, `${r.toggleRounds} rounds of unset/set`);
    assert.equal(r.extraDoorbells, 0);
  });

  it('micro-bench ipi_hw: vSGIs between two threads, every one taken', async () => {
    const r = await runThreadedTest('ipi_hw', { design: 'direct', iterations: 300, trials: 1, warmup: 50 });
    assert.equal(r.name, 'ipi_hw');
    assert.equal(r.errors, 0);
    assert.equal(r.received, r.sent);
  });

  it('micro-bench lpi/direct: the INT command sets the vLPI, vCPU 1 takes every one', async () => {
    const r = await runThreadedTest('lpi', { design: 'direct', iterations: 300, trials: 1, warmup: 50 });
    assert.equal(r.name, 'lpi/direct');
    assert.equal(r.errors, 0);
    assert.equal(r.received, r.sent);
  });
});
