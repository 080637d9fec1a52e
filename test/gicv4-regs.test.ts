/**
 * The guest-visible GICv4.1 interface (issue 14): ID bits and frames, the V-commands and their
 * errors, GICR_VPENDBASER residency with doorbell LPIs, VMOVI/VMOVP moves, VPT and VCONF tables in
 * guest memory, vSGI pending state (GICR_VSGIR/VSGIPENDR, GICR_ISPENDR0), and snapshots of mapped
 * vPEs. The guest programs everything through MMIO and the command queue (ItsGuest's builders).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { sealSnapshot } from '../src/device/snapshot.ts';
import {
  E_ITS_V_CODES,
  GICD_CTLR,
  GICD_TYPER2,
  GICR_ICPENDR0,
  GICR_INVLPIR,
  GICR_ISACTIVER0,
  GICR_ISPENDR0,
  GICR_TYPER,
  GICR_VPENDBASER,
  GICR_VPROPBASER,
  GICR_VSGIPENDR,
  GICR_VSGIR,
  GITS_BASER,
  GITS_CBASER,
  GITS_CREADR,
  GITS_TYPER,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_SGI1R_EL1,
  type ItsStats,
  Vgic,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
} from '../src/index.ts';
import { traceSubscribe } from '../src/trace/trace.ts';
import type { VlpiInjectorResult, VlpiInjectorTask } from './fixtures/vlpi-injector.ts';
import { type LpiMachine, lpiMachine, SPURIOUS, takeAll } from './helpers/its-machine.ts';

const DEV = 1;
const VALID = 1n << 63n;
const DB = 1n << 62n;
const PENDING_LAST = 1n << 61n;
const VGRP1 = 1n << 58n;
const DOORBELL = 8300; // a physical LPI the vPEs ring

interface V4 extends LpiMachine {
  vpt: number[];
  vconf: number;
}

/** Two vCPUs with direct injection, a vPE table, device 1 with 16 events, vPE p mapped on RD p with doorbell 8300 + p. */
function setup(o: { map?: boolean; db?: number } = {}): V4 {
  const m = lpiMachine({ vcpus: 2, direct: true });
  m.its.disable();
  m.its.initVpeTable();
  m.its.enable();
  assert.ok(m.its.createDevice(DEV, 4));
  const vconf = m.alloc.alloc(0x10000);
  // vLPI properties: 8192.. enabled at priority 0x80.
  for (let i = 0; i < 256; i++) m.cpus[0].writeb(vconf + i, 0x81);
  const vpt = [m.alloc.alloc(0x10000), m.alloc.alloc(0x10000)];
  if (o.map ?? true) {
    for (const p of [0, 1])
      assert.ok(
        m.its.vmapp(p, { rd: p, vpt: vpt[p], bits: 14, vconf, db: (o.db ?? DOORBELL) + p, ptz: true }),
      );
  }
  return { ...m, vpt, vconf };
}

const vpendbaser = (m: LpiMachine, rd: number): bigint => m.cpus[rd].readq(m.guests[rd].rd + GICR_VPENDBASER);
function schedule(m: LpiMachine, rd: number, vpeid: number): void {
  m.cpus[rd].writeq(m.guests[rd].rd + GICR_VPENDBASER, VALID | VGRP1 | BigInt(vpeid));
}
function deschedule(m: LpiMachine, rd: number, db: boolean): void {
  m.cpus[rd].writeq(m.guests[rd].rd + GICR_VPENDBASER, (db ? DB : 0n) | VGRP1);
}
function ack(m: LpiMachine, rd: number): number {
  const cpu = m.cpus[rd];
  cpu.step();
  const intid = cpu.readSysreg(ICC_IAR1_EL1);
  if (intid !== SPURIOUS) cpu.writeSysreg(ICC_EOIR1_EL1, intid);
  return intid;
}
function moved(before: ItsStats, after: ItsStats): Record<string, number> {
  const d: Record<string, number> = {};
  for (const name of Object.keys(after.errors)) {
    const n = after.errors[name] - before.errors[name];
    if (n !== 0) d[name] = n;
  }
  for (const key of Object.keys(before) as (keyof ItsStats)[]) {
    if (key === 'errors') continue;
    const n = (after[key] as number) - (before[key] as number);
    if (n !== 0) d[key] = n;
  }
  return d;
}

describe('GICv4.1 frames and ID bits', () => {
  test('with direct injection: GITS_TYPER.Virtual/VMOVP/VMAPP, BASER2, GICR_TYPER.VLPIS/RVPEID, TYPER2.VIL/VID, 256K redistributors', () => {
    const m = setup({ map: false });
    const c = m.cpus[0];
    const typer = c.readq(m.its.base + GITS_TYPER);
    assert.equal(typer & 2n, 2n, 'Virtual');
    assert.equal((typer >> 37n) & 1n, 1n, 'VMOVP');
    assert.equal((typer >> 40n) & 1n, 1n, 'VMAPP (GICv4.1)');
    const b2 = c.readq(m.its.base + GITS_BASER + 16);
    assert.equal((b2 >> 56n) & 7n, 2n, 'BASER2.Type = vPE');
    assert.equal((b2 >> 48n) & 0x1fn, 7n, 'Entry_Size 8 bytes');
    assert.equal(b2 >> 63n, 1n, 'valid (initVpeTable)');
    // Redistributor 1 is 256K after redistributor 0.
    assert.equal(m.guests[1].rd - m.guests[0].rd, 0x40000);
    const rt = c.readq(VIRT_GICR_BASE + 0x40000 + GICR_TYPER);
    assert.equal((rt >> 8n) & 0xffffn, 1n, 'Processor_Number 1 at +256K');
    assert.equal(rt & 2n, 2n, 'VLPIS');
    assert.equal(rt & 0x80n, 0x80n, 'RVPEID');
    const t2 = c.readl(VIRT_GICD_BASE + GICD_TYPER2);
    assert.equal(t2 & 0x80, 0x80, 'VIL');
    assert.equal(t2 & 0x1f, 0, 'VID: 1 vPEID bit for 2 vPE slots');
    assert.equal(t2 & 0x100, 0x100, 'nASSGIcap');
    assert.equal(c.readl(VIRT_GICD_BASE + 0xffe8), 0x4b, 'GICD_PIDR2.ArchRev 4');
    // VPROPBASER: Entry_Size read-only, the rest kept; both widths.
    c.writeq(m.guests[0].rd + GICR_VPROPBASER, 0xffffffffffffffffn);
    const vp = c.readq(m.guests[0].rd + GICR_VPROPBASER);
    assert.equal((vp >> 59n) & 7n, 7n, 'Entry_Size (RO) 8 bytes');
    assert.equal(vp & 0x7fn, 0x7fn);
    assert.equal(c.readl(m.guests[0].rd + GICR_VPROPBASER + 4) >>> 27, Number(vp >> 59n) & 0x1f);
    const bad = m.gic.stats().mmioBadAccess;
    c.readw(m.guests[0].rd + GICR_VPENDBASER);
    assert.equal(m.gic.stats().mmioBadAccess, bad + 1, 'a 16-bit VPENDBASER access is refused');
  });

  test('without direct injection nothing changes: 128K redistributors, no VLPI frame, TYPER2 0, V-commands unknown', () => {
    const m = lpiMachine({ vcpus: 2 });
    const c = m.cpus[0];
    assert.equal(m.guests[1].rd - m.guests[0].rd, 0x20000);
    assert.equal(c.readq(m.its.base + GITS_TYPER) & 2n, 0n);
    assert.equal(c.readq(m.its.base + GITS_BASER + 16), 0n);
    assert.equal(c.readq(VIRT_GICR_BASE + GICR_TYPER) & 0x82n, 0n);
    assert.equal(c.readl(VIRT_GICD_BASE + GICD_TYPER2), 0);
    assert.equal(c.readl(VIRT_GICD_BASE + 0xffe8), 0x3b);
    const before = m.gic.its(0).stats();
    assert.ok(m.its.vsync(0));
    assert.deepEqual(moved(before, m.gic.its(0).stats()), { commands: 1, unknownCommands: 1 });
  });
});

describe('GICv4.1 V-commands drive the vPE engine', () => {
  test('VMAPP + VMAPTI + INT: pending in the VPT, taken by ICC_IAR1 once the vPE is resident', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    assert.ok(m.its.int(DEV, 0));
    assert.equal(ack(m, 0), SPURIOUS, 'not resident: not presented');
    schedule(m, 0, 0);
    assert.equal(vpendbaser(m, 0) >> 63n, 1n, 'Valid');
    assert.equal(vpendbaser(m, 0) & 0xffffn, 0n, 'vPEID 0');
    assert.equal(ack(m, 0), 8200);
    assert.equal(ack(m, 0), SPURIOUS, 'taken once');
    assert.equal(ack(m, 1), SPURIOUS, 'RD 1 presents nothing');
    // An MSI through the same virtual ITE (GITS_TRANSLATER path, no translation cache).
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: DEV, eventid: 0 }), 'delivered');
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: DEV, eventid: 0 }), 'delivered');
    assert.equal(ack(m, 0), 8200);
    assert.equal(ack(m, 0), SPURIOUS);
    // VMAPI: vINTID = EventID.
    assert.ok(m.its.vmapi(DEV, 9, 0));
    assert.equal(m.its.int(DEV, 9), true);
    assert.equal(ack(m, 0), SPURIOUS, 'vINTID 9 is no LPI: refused at VMAPI, INT finds no mapping');
  });

  test('doorbell: the vPE’s default doorbell LPI, once per non-residency phase, only with DB and an enabled vLPI', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    assert.ok(m.its.vmapti(DEV, 1, 8201, 0));
    schedule(m, 0, 0);
    deschedule(m, 0, true);
    assert.equal(vpendbaser(m, 0) & PENDING_LAST, 0n, 'nothing waited');
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.int(DEV, 1));
    assert.equal(vpendbaser(m, 0) & PENDING_LAST, PENDING_LAST, 'the doorbell rang');
    assert.equal(takeAll(m.cpus), `0:${DOORBELL}`, 'one doorbell for two vLPIs');
    assert.ok(m.its.int(DEV, 0));
    assert.equal(takeAll(m.cpus), '', 'spent for this phase');
    schedule(m, 0, 0);
    assert.equal(ack(m, 0), 8200);
    assert.equal(ack(m, 0), 8201);
    // Without DB: no doorbell, PendingLast still says a vLPI waits.
    deschedule(m, 0, false);
    assert.ok(m.its.int(DEV, 0));
    assert.equal(takeAll(m.cpus), '');
    // A disabled vLPI rings nothing; INV after enabling it does (a new phase).
    schedule(m, 0, 0);
    assert.equal(ack(m, 0), 8200);
    m.cpus[0].writeb(m.vconf + 9, 0x80); // 8201 disabled
    assert.ok(m.its.inv(DEV, 1));
    deschedule(m, 0, true);
    assert.ok(m.its.int(DEV, 1));
    assert.equal(takeAll(m.cpus), '', 'disabled: no doorbell');
    m.cpus[0].writeb(m.vconf + 9, 0x81);
    // GICR_INVLPIR with V (64-bit: vINTID low, V | vPEID high).
    m.cpus[0].writeq(m.guests[0].rd + GICR_INVLPIR, (1n << 63n) | 8201n);
    assert.equal(takeAll(m.cpus), `0:${DOORBELL}`, 'enabled while pending: the doorbell rings');
    schedule(m, 0, 0);
    assert.equal(ack(m, 0), 8201);
    assert.equal(m.gic.vpeStatus(0).doorbells, 2);
  });

  test('VMOVI moves a pending vLPI between vPEs without loss or duplicate; VMOVP moves the doorbell', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.vmovi(DEV, 0, 1));
    schedule(m, 0, 0);
    schedule(m, 1, 1);
    assert.equal(ack(m, 0), SPURIOUS, 'left vPE 0');
    assert.equal(ack(m, 1), 8200, 'arrived on vPE 1');
    assert.equal(ack(m, 1), SPURIOUS);
    // Later MSIs follow the ITE.
    assert.ok(m.its.int(DEV, 0));
    assert.equal(takeAll(m.cpus), '1:8200');
    // VMOVP: vPE 1 now belongs to RD 0, and so does its doorbell.
    deschedule(m, 1, true);
    assert.ok(m.its.vmovp(1, 0));
    assert.ok(m.its.int(DEV, 0));
    assert.equal(takeAll(m.cpus), `0:${DOORBELL + 1}`, 'vPE 1’s doorbell, now on RD 0');
    schedule(m, 1, 1);
    assert.equal(ack(m, 1), 8200);
  });

  test('VMAPP V=0 writes the VPT back to memory; VMAPP without PTZ reads it; VSYNC, VINVALL, INVDB complete', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.vsync(0));
    assert.equal(m.cpus[0].readb(m.vpt[0] + (8200 >> 3)) & (1 << (8200 & 7)), 0, 'cached while mapped');
    assert.ok(m.its.vmapp(0, { valid: false }));
    assert.ok(m.its.vsync(1));
    assert.equal(
      m.cpus[0].readb(m.vpt[0] + (8200 >> 3)) & (1 << (8200 & 7)),
      1 << (8200 & 7),
      'written back',
    );
    // Mapped again without PTZ: the bit comes back from memory.
    assert.ok(m.its.vmapp(0, { rd: 0, vpt: m.vpt[0], bits: 14, vconf: m.vconf, db: DOORBELL }));
    assert.ok(m.its.vinvall(0));
    assert.ok(m.its.invdb(0));
    schedule(m, 0, 0);
    assert.equal(ack(m, 0), 8200);
    // VINVALL re-reads every property: a disabled vLPI is not presented.
    m.cpus[0].writeb(m.vconf + 8, 0x80);
    assert.ok(m.its.int(DEV, 0));
    assert.equal(ack(m, 0), 8200, 'not re-read yet');
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.vinvall(0));
    assert.equal(ack(m, 0), SPURIOUS, 'disabled after VINVALL');
    // CLEAR and DISCARD of a vLPI remove its pending state.
    assert.ok(m.its.clear(DEV, 0));
    m.cpus[0].writeb(m.vconf + 8, 0x81);
    assert.ok(m.its.vinvall(0));
    assert.equal(ack(m, 0), SPURIOUS, 'CLEAR removed it');
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.discard(DEV, 0));
    assert.equal(ack(m, 0), SPURIOUS, 'DISCARD removed it');
    assert.ok(m.its.int(DEV, 0));
    assert.equal(ack(m, 0), SPURIOUS, 'and the mapping');
  });

  test('leaving residency writes the VPT back (Dirty reads 0 at once): set bits and taken ones', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    const byte = () => m.cpus[0].readb(m.vpt[0] + (8200 >> 3)) & (1 << (8200 & 7));
    schedule(m, 0, 0);
    m.cpus[0].writeb(m.vconf + 8, 0x80); // disabled: stays pending while resident
    assert.ok(m.its.inv(DEV, 0));
    assert.ok(m.its.int(DEV, 0));
    deschedule(m, 0, false);
    assert.equal(vpendbaser(m, 0) & (1n << 60n), 0n, 'Dirty 0');
    assert.equal(byte(), 1 << (8200 & 7), 'the pending vLPI is in memory');
    m.cpus[0].writeb(m.vconf + 8, 0x81);
    assert.ok(m.its.inv(DEV, 0));
    schedule(m, 0, 0);
    assert.equal(ack(m, 0), 8200);
    deschedule(m, 0, false);
    assert.equal(byte(), 0, 'taken: cleared in memory');
  });

  test('a vLPI of a resident vPE wakes its redistributor’s vCPU from WFI (its virtual IRQ line)', async () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 1));
    schedule(m, 0, 1); // vPE 1 resident on RD 0
    const cpu = m.cpus[0];
    cpu.unmaskIrqs();
    const t0 = Date.now();
    const sleeping = cpu.wfiAsync(5000);
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(m.its.int(DEV, 0));
    assert.equal(await sleeping, 'irq');
    // wfiAsync re-checks at most every second by itself: well below that, the kick woke it.
    assert.ok(Date.now() - t0 < 700, `woke after ${Date.now() - t0} ms`);
    cpu.maskIrqs();
    assert.equal(ack(m, 0), 8200);
  });

  test('VPENDBASER refuses what the spec leaves UNPREDICTABLE: an unmapped vPE, one resident elsewhere, a second one here', () => {
    const m = setup();
    m.cpus[0].writeq(m.guests[0].rd + GICR_VPENDBASER, VALID | 1n); // vPE 1 on RD 0
    assert.equal(vpendbaser(m, 0) >> 63n, 1n);
    schedule(m, 1, 1);
    assert.equal(vpendbaser(m, 1) >> 63n, 0n, 'vPE 1 is resident on RD 0 already');
    schedule(m, 0, 0);
    assert.equal(vpendbaser(m, 0) & 0xffffn, 1n, 'RD 0 keeps vPE 1');
    deschedule(m, 0, false);
    assert.ok(m.its.vmapp(1, { valid: false }));
    schedule(m, 1, 1);
    assert.equal(vpendbaser(m, 1) >> 63n, 0n, 'vPE 1 is unmapped');
  });
});

describe('GICv4.1 vSGIs: pending state through GICR_VSGIR/VSGIPENDR and GICR_ISPENDR0', () => {
  test('an SGI in nASSGIreq mode is a vSGI: VSGIPENDR shows it, ISPENDR0/ICPENDR0 set and clear it, no active state', () => {
    const m = setup({ map: false });
    const c = m.cpus[1];
    const d = VIRT_GICD_BASE + GICD_CTLR;
    c.writel(d, c.readl(d) & ~2); // nASSGIreq changes only with EnableGrp1 clear
    c.writel(d, c.readl(d) | (1 << 8));
    c.writel(d, c.readl(d) | 2);
    assert.equal(c.readl(d) & (1 << 8), 1 << 8);
    // SGI 3 to vCPU 1 from vCPU 0 (ICC_SGI1R: TargetList bit 1, INTID 3).
    m.cpus[0].writeSysreg(ICC_SGI1R_EL1, (3 << 24) | 2);
    c.writel(m.guests[1].rd + GICR_VSGIR, 1); // GICR_VSGIR: vPE 1
    assert.equal(c.readl(m.guests[1].rd + GICR_VSGIPENDR), 1 << 3, 'pending, Busy clear');
    // ISPENDR0 sets vSGI 5, ICPENDR0 clears vSGI 3: the vPE's pending bits.
    c.writel(m.guests[1].rd + GICR_ISPENDR0, 1 << 5);
    c.writel(m.guests[1].rd + GICR_ICPENDR0, 1 << 3);
    assert.equal(c.readl(m.guests[1].rd + GICR_VSGIPENDR), 1 << 5);
    assert.equal(c.readl(m.guests[1].rd + GICR_ISPENDR0) & 0xffff, 1 << 5, 'ISPENDR0 reads it too');
    assert.equal(ack(m, 1), 5);
    assert.equal(c.readl(m.guests[1].rd + GICR_VSGIPENDR), 0, 'taken: no active state');
    assert.equal(c.readl(m.guests[1].rd + GICR_ISACTIVER0) & 0xffff, 0, 'ISACTIVER0: none');
  });

  test('VSGI configures and clears a vSGI of a guest vPE', () => {
    const m = setup();
    assert.ok(m.its.vsgi(0, 2, { priority: 0x40, group1: true, enable: true }));
    assert.ok(m.its.vsgi(0, 2, { clear: true, priority: 0x40, group1: true, enable: true }));
    m.cpus[0].writel(m.guests[0].rd + GICR_VSGIR, 0);
    assert.equal(m.cpus[0].readl(m.guests[0].rd + GICR_VSGIPENDR), 0);
  });
});

describe('GICv4.1 V-command errors: counted once, skipped, the queue goes on', () => {
  const CASES: Record<string, (m: V4) => boolean> = {
    E_ITS_VMAPP_VPEID_OOR: (m) => m.its.vmapp(2, { rd: 0, vpt: m.vpt[0], bits: 14, vconf: m.vconf }),
    E_ITS_VMAPP_PROCNUM_OOR: (m) => m.its.vmapp(0, { rd: 2, vpt: m.vpt[0], bits: 14, vconf: m.vconf }),
    E_ITS_VMAPP_VPTSIZE_OOR: (m) => m.its.vmapp(0, { rd: 0, vpt: m.vpt[0], bits: 17, vconf: m.vconf }),
    E_ITS_VMAPP_DOORBELL_OOR: (m) =>
      m.its.vmapp(0, { rd: 0, vpt: m.vpt[0], bits: 14, vconf: m.vconf, db: 5 }),
    E_ITS_VMAPTI_UNMAPPED_DEVICE: (m) => m.its.vmapti(7, 0, 8200, 0),
    E_ITS_VMAPTI_ID_OOR: (m) => m.its.vmapti(DEV, 16, 8200, 0),
    E_ITS_VMAPTI_VIRTUALID_OOR: (m) => m.its.vmapti(DEV, 0, 100, 0),
    E_ITS_VMAPTI_PHYSICALID_OOR: (m) => m.its.vmapti(DEV, 0, 8200, 0, 70000),
    E_ITS_VMAPTI_UNMAPPED_VPE: (m) => m.its.vmapti(DEV, 0, 8200, 9),
    E_ITS_VMOVI_UNMAPPED_INTERRUPT: (m) => m.its.vmovi(DEV, 3, 1),
    E_ITS_VMOVI_NOT_VIRTUAL: (m) =>
      m.its.mapc(0, 0) && m.its.mapti(DEV, 4, 8400, 0) && m.its.vmovi(DEV, 4, 1),
    E_ITS_VMOVI_UNMAPPED_VPE: (m) => m.its.vmapti(DEV, 0, 8200, 0) && m.its.vmovi(DEV, 0, 1),
    E_ITS_VMOVI_PHYSICALID_OOR: (m) => m.its.raw(0x21n | (1n << 32n), 0n, 1n | (70000n << 32n)),
    E_ITS_VMOVP_UNMAPPED_VPE: (m) => m.its.vmovp(1, 0),
    E_ITS_VMOVP_PROCNUM_OOR: (m) => m.its.vmovp(0, 5),
    E_ITS_VSGI_UNMAPPED_VPE: (m) => m.its.vsgi(1, 0, { enable: true }),
    E_ITS_VSYNC_UNMAPPED_VPE: (m) => m.its.vsync(1),
    E_ITS_VINVALL_UNMAPPED_VPE: (m) => m.its.vinvall(1),
    E_ITS_INVDB_UNMAPPED_VPE: (m) => m.its.invdb(1),
    E_ITS_MOVI_VIRTUAL_INTERRUPT: (m) =>
      m.its.vmapti(DEV, 0, 8200, 0) && m.its.mapc(0, 0) && m.its.movi(DEV, 0, 0),
  };

  test('there is a case for every V-command code', () => {
    assert.deepEqual(Object.keys(CASES).sort(), E_ITS_V_CODES.map(([n]) => n).sort());
  });

  for (const [name] of E_ITS_V_CODES) {
    test(name, () => {
      // Only vPE 0 is mapped here (vPE 1 unmapped, 2 beyond the slots).
      const m = setup({ map: false });
      assert.ok(m.its.vmapp(0, { rd: 0, vpt: m.vpt[0], bits: 14, vconf: m.vconf, db: DOORBELL, ptz: true }));
      const before = m.gic.its(0).stats();
      const at = Number(m.cpus[0].readq(m.its.base + GITS_CREADR));
      assert.ok(CASES[name](m), 'CREADR reached CWRITER');
      assert.ok(Number(m.cpus[0].readq(m.its.base + GITS_CREADR)) > at);
      const d = moved(before, m.gic.its(0).stats());
      assert.equal(d[name], 1, `${name} counted once: ${JSON.stringify(d)}`);
      assert.equal(m.gic.its(0).errorCount() - Object.values(before.errors).reduce((a, b) => a + b, 0), 1);
      // The queue goes on.
      assert.ok(m.its.vsync(0));
    });
  }
});

describe('GICv4.1 snapshots keep guest-mapped vPEs', () => {
  test('a resident vPE with a pending vLPI and a non-resident one with a spent doorbell round-trip', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
    assert.ok(m.its.vmapti(DEV, 1, 8210, 1));
    schedule(m, 0, 0);
    schedule(m, 1, 1);
    deschedule(m, 1, true);
    assert.ok(m.its.int(DEV, 0));
    assert.ok(m.its.int(DEV, 1));
    assert.equal(takeAll([m.cpus[1]]), `1:${DOORBELL + 1}`);
    const snap = m.gic.snapshot();
    const ram = [{ base: m.ramBase, buffer: m.gic.memory.regions[0].bytes.buffer }];
    const g = Vgic.restore(snap, { ram });
    const cpus = [g.vcpu(0), g.vcpu(1)];
    const read = (rd: number) => cpus[rd].readq(m.guests[rd].rd + GICR_VPENDBASER);
    assert.equal(read(0) >> 63n, 1n, 'vPE 0 still resident on RD 0');
    assert.equal(read(1) & PENDING_LAST, PENDING_LAST, 'vPE 1 PendingLast kept');
    cpus[0].step();
    assert.equal(cpus[0].readSysreg(ICC_IAR1_EL1), 8200);
    cpus[1].writeq(m.guests[1].rd + GICR_VPENDBASER, VALID | VGRP1 | 1n);
    cpus[1].step();
    assert.equal(cpus[1].readSysreg(ICC_IAR1_EL1), 8210);
  });

  test('restored vPE words are checked: a mapping to a redistributor that does not exist is refused', () => {
    const m = setup();
    const snap = m.gic.snapshot();
    const ram = [{ base: m.ramBase, buffer: m.gic.memory.regions[0].bytes.buffer }];
    const forge = (edit: (g: Vgic) => void) => {
      const g = Vgic.restore(snap, { ram });
      edit(g);
      const forged = snap.slice();
      forged.set(new Uint8Array(g.state.buffer));
      sealSnapshot(forged.buffer);
      return () => Vgic.restore(forged, { ram });
    };
    assert.doesNotThrow(forge(() => {}));
    // vPE 0's mapping (word 5 of its slot) names redistributor 9.
    assert.throws(
      forge((g) => {
        g.state.vpe[5] = (1 << 31) | 9;
      }),
      /vPE 0 mapping/,
    );
    // A VPT bit beyond its VPT_size (14 bits: vINTIDs below 16384).
    assert.throws(
      forge((g) => {
        g.state.vpt[(16384 - 8192) >> 5] |= 1;
        g.state.vptSummary[(16384 - 8192) >> 10] |= 1;
        g.state.vptTop[0] |= 1 << ((16384 - 8192) >> 10);
      }),
      /beyond its VPT_size/,
    );
    // Resident with no redistributor presenting it.
    assert.throws(
      forge((g) => {
        g.state.vpe[0] = 1;
      }),
      /resident on 0 redistributors/,
    );
  });
});

describe('GICv4.1 V-commands are traced under QEMU’s names', () => {
  test('gicv3_its_cmd_vmapp / vmapti / vmovi / vmovp / vsync / vinvall, vgic_its_cmd_invdb / vsgi', () => {
    const m = setup({ map: false });
    const counts = new Map<string, number>();
    const sub = traceSubscribe('gicv3_its_cmd_v*,vgic_its_cmd_*', (e) =>
      counts.set(e.name, (counts.get(e.name) ?? 0) + 1),
    );
    try {
      for (const p of [0, 1]) assert.ok(m.its.vmapp(p, { rd: p, vpt: m.vpt[p], bits: 14, vconf: m.vconf }));
      assert.ok(m.its.vmapti(DEV, 0, 8200, 0));
      assert.ok(m.its.vmovi(DEV, 0, 1));
      assert.ok(m.its.vmovp(1, 0));
      assert.ok(m.its.vsync(0));
      assert.ok(m.its.vinvall(0));
      assert.ok(m.its.invdb(0));
      assert.ok(m.its.vsgi(0, 1, { enable: true }));
    } finally {
      sub.unsubscribe();
    }
    assert.deepEqual(Object.fromEntries([...counts].sort()), {
      gicv3_its_cmd_vinvall: 1,
      gicv3_its_cmd_vmapp: 2,
      gicv3_its_cmd_vmapti: 1,
      gicv3_its_cmd_vmovi: 1,
      gicv3_its_cmd_vmovp: 1,
      gicv3_its_cmd_vsync: 1,
      vgic_its_cmd_invdb: 1,
      vgic_its_cmd_vsgi: 1,
    });
  });
});

describe('GICv4.1: the KVM layer and the guest share the vPE slots', () => {
  test('setForwarding into a slot the guest mapped is refused; an unmapped slot is the KVM layer’s again', () => {
    const m = setup();
    assert.ok(m.its.mapc(2, 0));
    assert.ok(m.its.mapti(DEV, 5, 8500, 2));
    const msi = { doorbell: m.its.doorbell, devid: DEV, eventid: 5 };
    assert.throws(() => m.gic.setForwarding(msi), /vPE slot is the guest's/);
    assert.ok(m.its.vmapp(0, { valid: false }));
    assert.equal(m.gic.setForwarding(msi), 8500);
    m.gic.injectMsi(m.its.doorbell, DEV, 5);
    assert.equal(ack(m, 0), 8500, 'vCPU 0 runs: its KVM-layer vPE is resident and presented');
  });
});

describe('GICv4.1 virtual ITEs in the ITS table ABI', () => {
  test('saveTables keeps virtual ITEs (no collection for their vPEID); restoreTables brings them back', () => {
    const m = setup();
    assert.ok(m.its.vmapti(DEV, 3, 8203, 1));
    assert.ok(m.its.mapc(5, 0));
    assert.ok(m.its.mapti(DEV, 4, 8400, 5));
    const its = m.gic.its(0);
    m.its.disable();
    its.saveTables();
    const regs = [GITS_CBASER, GITS_BASER, GITS_BASER + 8, GITS_BASER + 16].map(
      (o) => [o, its.readReg(o, 8)] as const,
    );
    its.reset();
    // Registers as the ABI restores them, then the tables.
    for (const [o, v] of regs) its.writeReg(o, v, 8);
    its.restoreTables();
    m.its.enable();
    schedule(m, 1, 1);
    assert.equal(m.gic.injectMsi(m.its.doorbell, DEV, 3), 1, 'the virtual ITE was restored');
    assert.equal(ack(m, 1), 8203);
    assert.equal(m.gic.injectMsi(m.its.doorbell, DEV, 4), 1, 'the physical one too');
    assert.equal(takeAll(m.cpus), '0:8400');
  });
});

describe('GICv4.1 on threads: MSIs to vLPIs while the guest flips residency', { timeout: 60000 }, () => {
  test('every fresh MSI is taken exactly once; a doorbell at most once per non-residency phase', async () => {
    const EVENTS = 6;
    const m = setup();
    for (let e = 0; e < EVENTS; e++) assert.ok(m.its.vmapti(DEV, e, 8200 + e, 0));
    const task: VlpiInjectorTask = {
      buffer: m.gic.state.buffer as SharedArrayBuffer,
      map: m.gic.addressMap(),
      doorbell: m.its.doorbell,
      devid: DEV,
      events: EVENTS,
      ms: 600,
    };
    const w = new Worker(new URL('./fixtures/vlpi-injector.js', import.meta.url), { workerData: task });
    const done = new Promise<VlpiInjectorResult>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    const acks = new Array<number>(EVENTS).fill(0);
    let phases = 0;
    let doorbells = 0;
    const takeRd0 = (): void => {
      for (;;) {
        const i = ack(m, 0);
        if (i === SPURIOUS) return;
        if (i === DOORBELL) doorbells++;
        else if (i >= 8200 && i < 8200 + EVENTS) acks[i - 8200]++;
        else assert.fail(`unexpected INTID ${i}`);
      }
    };
    while (!finished) {
      schedule(m, 0, 0);
      takeRd0();
      deschedule(m, 0, phases % 2 === 0);
      phases++;
      takeRd0(); // a doorbell of this phase (the vLPIs wait in the VPT)
      await new Promise((r) => setImmediate(r));
    }
    const r = await done;
    await w.terminate();
    // The last phase: resident, take everything left.
    schedule(m, 0, 0);
    takeRd0();
    const sent = r.delivered.reduce((a, b) => a + b, 0);
    assert.equal(r.other, 0, 'every MSI found its vLPI');
    assert.ok(sent > 100, `${sent} fresh MSIs`);
    assert.ok(phases > 20, `${phases} residency phases`);
    assert.deepEqual(acks, r.delivered, 'each fresh pending state taken exactly once');
    // Rung at most once per phase with DB; a doorbell LPI rung while its last ring is still pending
    // merges into it (LPIs are edge-triggered), so the guest takes at most as many as rang.
    const rung = m.gic.vpeStatus(0).doorbells;
    assert.ok(rung <= Math.ceil(phases / 2), `${rung} doorbells in ${Math.ceil(phases / 2)} DB phases`);
    assert.ok(doorbells <= rung && doorbells >= 1, `${doorbells} doorbells taken of ${rung} rung`);
  });
});
