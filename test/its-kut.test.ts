/**
 * kvm-unit-tests' ITS checks (arm/gic.c: its-introspection, its-trigger, its-pending-migration,
 * its-migrate-unmapped-collection) ported onto vgic, plus command-queue wrap, a two-level device
 * table, two ITSes and a CPU's GITS_TRANSLATER write.
 *
 * Every vCPU runs in this thread with IRQs masked; "waiting for interrupts" is each CPU reading
 * ICC_IAR1_EL1 until 1023 and EOI-ing what it got (check_lpi_stats: the expected LPI on the
 * expected PE, nothing anywhere else).
 *
 * "Migration" is done two ways: the whole state (Vgic.snapshot + a copy of RAM + Vgic.restore), and
 * KVM's ABI (SAVE_PENDING_TABLES + ITS SAVE_TABLES, RAM copy, a fresh GIC whose registers are
 * written through the userspace API, ITS RESTORE_TABLES).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP1,
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_PENDBASER,
  GICR_PROPBASER,
  GITS_BASER,
  GITS_BASER_TYPE_COLLECTION,
  GITS_BASER_TYPE_DEVICE,
  GITS_CBASER,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
  GITS_IIDR,
  GITS_TYPER,
  GicV3Guest,
  type GuestAllocator,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ItsGuest,
  LPI_PROP_DEFAULT,
  LpiTables,
  type VCpu,
  Vgic,
  type VgicV3Options,
} from '../src/index.ts';
import { lpiMachine } from './helpers/its-machine.ts';

const SPURIOUS = 1023;
const RAM_BASE = 0x40000000;
const RAM_SIZE = 8 << 20;

interface Machine {
  gic: Vgic;
  opts: VgicV3Options;
  redistBase: number | undefined;
  cpus: VCpu[];
  guests: GicV3Guest[];
  alloc: GuestAllocator;
  lpi: LpiTables;
  its: ItsGuest;
}

interface SetupOptions {
  vcpus?: number;
  its?: number;
  redistBase?: number;
  init?: Parameters<ItsGuest['init']>[0];
}

/** its_enable_defaults: GIC defaults on every CPU, LPI tables, EnableLPIs everywhere, ITS 0 on. */
function setup(o: SetupOptions = {}): Machine {
  // As the guest's tables (IDbits 13), and a small cache: every migration copies the state.
  const m = lpiMachine({
    vcpus: o.vcpus,
    its: o.its,
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    lpiIdBits: 14,
    itsCacheSize: 1024,
    redistBase: o.redistBase,
    init: o.init,
  });
  return { ...m, redistBase: o.redistBase };
}

/** its_setup1: dev 2 ev 20 → LPI 8195 → coll 3 → PE3; dev 7 ev 255 → LPI 8196 → coll 2 → PE2. */
function itsSetup1(m: Machine): void {
  const its = m.its;
  assert.ok(its.mapd(2, m.alloc.alloc(256 * 8, 256), 8));
  assert.ok(its.mapd(7, m.alloc.alloc(256 * 8, 256), 8));
  assert.ok(its.mapc(3, 3));
  assert.ok(its.mapc(2, 2));
  assert.ok(its.invall(3));
  assert.ok(its.invall(2));
  assert.ok(its.mapti(2, 20, 8195, 3));
  assert.ok(its.mapti(7, 255, 8196, 2));
}

/** Acks (IAR + EOIR) everything pending on one CPU, in order. */
function drain(cpu: VCpu): number[] {
  const got: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const irq = cpu.readSysreg(ICC_IAR1_EL1) & 0xffffff;
    if (irq === SPURIOUS) return got;
    got.push(irq);
    cpu.writeSysreg(ICC_EOIR1_EL1, irq);
  }
  throw new Error(`CPU ${cpu.index} never ran dry`);
}

/**
 * What every CPU acks, in rounds until a round finds nothing (a CPU's exit may hand an LPI to a CPU
 * drained before it, as when MOVI moves an LPI off the ap_list it sits on).
 */
function drainAll(m: Machine): number[][] {
  const got: number[][] = m.cpus.map(() => []);
  let quiet = 0;
  for (let round = 0; round < 100; round++) {
    let any = false;
    m.cpus.forEach((c, i) => {
      const ids = drain(c);
      if (ids.length > 0) any = true;
      got[i].push(...ids);
    });
    // Two quiet rounds: the first may have moved an LPI to a CPU already drained in it.
    quiet = any ? 0 : quiet + 1;
    if (quiet === 2) return got;
  }
  throw new Error('interrupts kept coming');
}

/** check_lpi_stats: exactly `intid` once on `pe`, nothing elsewhere. */
function expectLpi(m: Machine, pe: number, intid: number, what: string): void {
  const want: number[][] = m.cpus.map((_, i) => (i === pe ? [intid] : []));
  assert.deepEqual(drainAll(m), want, what);
}

function expectNothing(m: Machine, what: string): void {
  assert.deepEqual(
    drainAll(m),
    m.cpus.map(() => []),
    what,
  );
}

function errors(m: Machine, name: string, k = 0): number {
  return m.gic.its(k).stats().errors[name];
}

/** The same guest objects re-pointed at another GIC's vCPUs (the guest's memory came along). */
function rebind(m: Machine, gic: Vgic): Machine {
  const cpus = Array.from({ length: gic.nVcpus }, (_, i) => gic.vcpu(i));
  const guests = cpus.map((c) => new GicV3Guest(c, undefined, m.redistBase));
  const lpi: LpiTables = Object.assign(Object.create(LpiTables.prototype), m.lpi, { cpu: cpus[0] });
  const its: ItsGuest = Object.assign(Object.create(ItsGuest.prototype), m.its, { cpu: cpus[0] });
  return { ...m, gic, cpus, guests, lpi, its };
}

/** A copy of the guest RAM in a new buffer. */
function copyRam(gic: Vgic): SharedArrayBuffer {
  const src = gic.memory.regions[0].bytes;
  const buf = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(buf).set(src);
  return buf;
}

/** Migration by the whole state: snapshot + RAM copy + restore. */
function migrateSnapshot(m: Machine): Machine {
  const bytes = m.gic.snapshot();
  const buffer = copyRam(m.gic);
  const gic = Vgic.restore(bytes, { its: m.opts.its, ram: [{ base: RAM_BASE, buffer }] });
  return rebind(m, gic);
}

/**
 * Migration through KVM's ABI: SAVE_PENDING_TABLES, SAVE_TABLES, RAM copy, then a new GIC whose
 * registers are restored through the userspace API. `lpisFirst`: QEMU's order (the redistributors,
 * EnableLPIs included, before the ITS) instead of restoring EnableLPIs after RESTORE_TABLES.
 */
function migrateAbi(m: Machine, lpisFirst = false): Machine {
  const src = m.gic;
  src.savePendingTables();
  for (let k = 0; k < src.nIts; k++) src.its(k).saveTables();
  const n = src.nVcpus;
  const gicdCtlr = src.readDistReg(GICD_CTLR);
  const prop = src.readRedistReg(0, GICR_PROPBASER, 8);
  const pend = Array.from({ length: n }, (_, v) => src.readRedistReg(v, GICR_PENDBASER, 8));
  const rdCtlr = Array.from({ length: n }, (_, v) => src.readRedistReg(v, GICR_CTLR));
  const pmr = Array.from({ length: n }, (_, v) => src.readCpuSysreg(v, ICC_PMR_EL1));
  const grpen = Array.from({ length: n }, (_, v) => src.readCpuSysreg(v, ICC_IGRPEN1_EL1));
  const itsRegs = Array.from({ length: src.nIts }, (_, k) => {
    const it = src.its(k);
    return {
      iidr: it.readReg(GITS_IIDR, 4),
      cbaser: it.readReg(GITS_CBASER),
      creadr: it.readReg(GITS_CREADR),
      cwriter: it.readReg(GITS_CWRITER),
      baser: [it.readReg(GITS_BASER), it.readReg(GITS_BASER + 8)],
      ctlr: it.readReg(GITS_CTLR, 4),
    };
  });
  const ram = src.memory.regions[0].bytes;

  const dst = Vgic.create(m.opts);
  dst.memory.regions[0].bytes.set(ram);
  dst.writeDistReg(GICD_CTLR, gicdCtlr);
  for (let v = 0; v < n; v++) {
    dst.writeCpuSysreg(v, ICC_PMR_EL1, pmr[v]);
    dst.writeCpuSysreg(v, ICC_IGRPEN1_EL1, grpen[v]);
    dst.writeRedistReg(v, GICR_PROPBASER, prop, 8);
    dst.writeRedistReg(v, GICR_PENDBASER, pend[v], 8);
  }
  const restoreLpiCtlr = () => {
    for (let v = 0; v < n; v++) dst.writeRedistReg(v, GICR_CTLR, rdCtlr[v]);
  };
  if (lpisFirst) restoreLpiCtlr();
  itsRegs.forEach((r, k) => {
    const it = dst.its(k);
    it.writeReg(GITS_IIDR, r.iidr, 4);
    it.writeReg(GITS_CBASER, r.cbaser);
    it.writeReg(GITS_CREADR, r.creadr);
    it.writeReg(GITS_CWRITER, r.cwriter);
    it.writeReg(GITS_BASER, r.baser[0]);
    it.writeReg(GITS_BASER + 8, r.baser[1]);
    it.restoreTables();
  });
  if (!lpisFirst) restoreLpiCtlr();
  itsRegs.forEach((r, k) => {
    dst.its(k).writeReg(GITS_CTLR, r.ctlr, 4);
  });
  return rebind(m, dst);
}

const MIGRATIONS: readonly [string, (m: Machine) => Machine][] = [
  ['snapshot', migrateSnapshot],
  ['KVM ABI, EnableLPIs after RESTORE_TABLES', (m) => migrateAbi(m, false)],
  ['KVM ABI, EnableLPIs before the ITS (QEMU order)', (m) => migrateAbi(m, true)],
];

// ---------------------------------------------------------------------------------------------

describe('its-introspection', () => {
  test('IIDR and TYPER are read-only; TYPER and BASER fields', () => {
    const m = setup({ vcpus: 1 });
    const cpu = m.cpus[0];
    const base = m.its.base;
    const iidr = cpu.readl(base + GITS_IIDR);
    const typer = cpu.readq(base + GITS_TYPER);
    for (const pattern of [0xffffffff, 0xa5a55a5a, 0]) {
      cpu.writel(base + GITS_IIDR, pattern);
      cpu.writel(base + GITS_TYPER, pattern);
      cpu.writel(base + GITS_TYPER + 4, pattern);
      cpu.writeq(base + GITS_TYPER, BigInt(pattern) * 0x100000001n);
      assert.equal(cpu.readl(base + GITS_IIDR), iidr, `IIDR after writing ${pattern.toString(16)}`);
      assert.equal(cpu.readq(base + GITS_TYPER), typer, `TYPER after writing ${pattern.toString(16)}`);
    }
    assert.equal(typer & 1n, 1n, 'TYPER.Physical');
    const devBits = Number((typer >> 13n) & 0x1fn) + 1;
    const idBits = Number((typer >> 8n) & 0x1fn) + 1;
    const cil = Number((typer >> 36n) & 1n);
    const cidBits = cil ? Number((typer >> 32n) & 0xfn) + 1 : 16;
    assert.ok(devBits > 1, `Devbits ${devBits}`);
    assert.ok(idBits > 1, `IDbits ${idBits}`);
    assert.equal(cil, 0, 'CIL');
    assert.equal(cidBits, 16);
    assert.equal(Number((typer >> 4n) & 0xfn) + 1, 8, 'ITT_entry_size');

    const fresh = Vgic.create({ vcpus: 1, its: 1, ram: { size: 1 << 20 } });
    const expectBaser = (n: number, type: number) => {
      const b = fresh.vcpu(0).readq(fresh.its(0).base + GITS_BASER + 8 * n);
      assert.equal(Number((b >> 56n) & 7n), type, `BASER${n}.Type`);
      assert.equal(Number((b >> 48n) & 0x1fn) + 1, 8, `BASER${n}.Entry_Size`);
      assert.equal(Number((b >> 8n) & 3n), 2, `BASER${n}.Page_Size is 64K`);
      // kvm-unit-tests writes 4K (0): the page size is fixed at 64K.
      fresh.vcpu(0).writeq(fresh.its(0).base + GITS_BASER + 8 * n, b & ~(3n << 8n));
      const after = fresh.vcpu(0).readq(fresh.its(0).base + GITS_BASER + 8 * n);
      assert.equal(Number((after >> 8n) & 3n), 2, `BASER${n}.Page_Size stays 64K`);
      assert.equal(Number((after >> 56n) & 7n), type, `BASER${n}.Type stays`);
    };
    expectBaser(0, GITS_BASER_TYPE_DEVICE);
    expectBaser(1, GITS_BASER_TYPE_COLLECTION);
    for (let n = 2; n < 8; n++)
      assert.equal(fresh.vcpu(0).readq(fresh.its(0).base + GITS_BASER + 8 * n), 0n, `BASER${n}`);
  });
});

describe('its-trigger', () => {
  test('int: each INT reaches only its PE with its INTID', () => {
    const m = setup();
    itsSetup1(m);
    assert.ok(m.its.int(2, 20));
    expectLpi(m, 3, 8195, 'dev=2, eventid=20 -> lpi=8195, col=3');
    assert.ok(m.its.int(7, 255));
    expectLpi(m, 2, 8196, 'dev=7, eventid=255 -> lpi=8196, col=2');
    assert.equal(m.gic.its(0).errorCount(), 0);
  });

  test('inv/invall: a disabled LPI is not delivered; re-enabled it is by the end of INVALL', () => {
    const m = setup();
    itsSetup1(m);
    m.lpi.setConfig(8195, 0xa0, false);
    assert.ok(m.its.inv(2, 20));
    assert.ok(m.its.int(2, 20));
    expectNothing(m, 'dev2/eventid=20 does not trigger any LPI');

    m.lpi.setConfig(8195, 0xa0, true);
    assert.ok(m.its.int(2, 20));
    // Early delivery is allowed, so nothing is checked before the invalidation.
    assert.ok(m.its.invall(3));
    expectLpi(m, 3, 8195, 'dev2/eventid=20 pending LPI is received');

    assert.ok(m.its.int(2, 20));
    expectLpi(m, 3, 8195, 'dev2/eventid=20 now triggers an LPI');
    assert.equal(m.gic.its(0).errorCount(), 0);
  });

  test('mapd valid=false: INT delivers nothing', () => {
    const m = setup();
    itsSetup1(m);
    assert.ok(m.its.mapd(2, 0, 8, false));
    assert.ok(m.its.int(2, 20));
    expectNothing(m, 'no LPI after device unmap');
    assert.equal(errors(m, 'E_ITS_INT_UNMAPPED_INTERRUPT'), 1);
    // The other device is untouched.
    assert.ok(m.its.int(7, 255));
    expectLpi(m, 2, 8196, 'dev7 still works');
  });
});

/** test_its_pending_migration up to the migration: 256 LPIs pending in RAM, LPIs re-enabled. */
function pendingSetup(enable = true): { m: Machine; pe0: number; pe1: number } {
  const m = setup();
  const n = m.cpus.length;
  const pe0 = n - 1;
  const pe1 = n - 2;
  const its = m.its;
  assert.ok(its.mapc(pe0, pe0));
  assert.ok(its.mapc(pe1, pe1));
  assert.ok(its.invall(pe0));
  assert.ok(its.invall(pe1));
  its.createDevice(2, 8);
  m.lpi.disable(m.guests[pe0].rd);
  m.lpi.disable(m.guests[pe1].rd);
  for (let i = 0; i < 256; i++) {
    const pe = i % 2 ? pe0 : pe1;
    assert.ok(its.mapti(2, i, 8192 + i, pe));
    m.lpi.setConfig(8192 + i);
    m.lpi.setPending(pe, 8192 + i, true);
  }
  assert.ok(its.invall(pe0));
  assert.ok(its.invall(pe1));
  for (const pe of [pe0, pe1]) {
    const rd = m.guests[pe].rd;
    const v = m.cpus[0].readq(rd + GICR_PENDBASER);
    assert.equal(v & (1n << 62n), 0n, 'PENDBASER.PTZ reads as zero');
    m.cpus[0].writeq(rd + GICR_PENDBASER, v & ~(1n << 62n));
    assert.equal(m.cpus[0].readq(rd + GICR_PENDBASER), v);
  }
  if (enable) {
    m.lpi.enable(m.guests[pe0].rd);
    m.lpi.enable(m.guests[pe1].rd);
  }
  return { m, pe0, pe1 };
}

function checkPendingDelivered(m: Machine, pe0: number, pe1: number): void {
  const got = drainAll(m);
  got.forEach((ids, cpu) => {
    if (cpu !== pe0 && cpu !== pe1) assert.deepEqual(ids, [], `CPU ${cpu} got nothing`);
  });
  for (const pe of [pe0, pe1]) {
    const ids = got[pe];
    assert.equal(ids.length, 128, `PE ${pe} got 128 LPIs`);
    assert.equal(new Set(ids).size, 128, `PE ${pe}: no LPI twice`);
    for (const id of ids) {
      const i = id - 8192;
      assert.ok(i >= 0 && i < 256, `PE ${pe}: ${id} is one of ours`);
      assert.equal(i % 2 ? pe0 : pe1, pe, `LPI ${id} on the right PE`);
    }
  }
  expectNothing(m, 'and nothing more');
}

describe('its-pending-migration', () => {
  test('without migration: the 256 pending bits become 128 LPIs on each PE', () => {
    const { m, pe0, pe1 } = pendingSetup();
    // Reading the bits into the LPIs consumed them.
    for (let i = 0; i < 256; i++) assert.equal(m.lpi.isPending(i % 2 ? pe0 : pe1, 8192 + i), false);
    checkPendingDelivered(m, pe0, pe1);
  });

  for (const [name, migrate] of MIGRATIONS) {
    test(`migration (${name}): 128 LPIs on each PE`, () => {
      const { m, pe0, pe1 } = pendingSetup();
      const d = migrate(m);
      checkPendingDelivered(d, pe0, pe1);
      // The ITS still translates after the migration.
      assert.ok(d.its.int(2, 1));
      expectLpi(d, pe0, 8193, 'INT after migration');
    });

    // The migration comes before the guest sets EnableLPIs: the bits it wrote must survive
    // (SAVE_PENDING_TABLES once cleared them: the LPIs were mapped but not latched).
    test(`migration (${name}) while EnableLPIs = 0: the pending bits survive`, () => {
      const { m, pe0, pe1 } = pendingSetup(false);
      const d = migrate(m);
      for (let i = 0; i < 256; i++)
        assert.ok(d.lpi.isPending(i % 2 ? pe0 : pe1, 8192 + i), `LPI ${8192 + i} still pending in RAM`);
      expectNothing(d, 'nothing before EnableLPIs');
      d.lpi.enable(d.guests[pe0].rd);
      d.lpi.enable(d.guests[pe1].rd);
      checkPendingDelivered(d, pe0, pe1);
    });
  }
});

describe('its-migrate-unmapped-collection', () => {
  for (const [name, migrate] of MIGRATIONS) {
    test(`migration (${name})`, () => {
      const m = setup();
      itsSetup1(m);
      const pe0 = 0;
      // MAPTI with the collection unmapped (collection 0 was never MAPC'd).
      assert.ok(m.its.mapti(2, 0, 8192, pe0));
      m.lpi.setConfig(8192, 0xa0, true);
      assert.equal(m.gic.its(0).errorCount(), 0, 'MAPTI into an unmapped collection is accepted');
      assert.ok(m.its.int(2, 0));
      expectNothing(m, 'an LPI in an unmapped collection goes nowhere');

      const errs = m.gic.its(0).errorCount(); // the INT: E_ITS_INT_UNMAPPED_INTERRUPT
      assert.equal(errors(m, 'E_ITS_INT_UNMAPPED_INTERRUPT'), 1);
      const d = migrate(m);
      assert.ok(d.its.mapc(0, pe0));
      assert.ok(d.its.invall(0));
      assert.equal(d.gic.its(0).errorCount(), name === 'snapshot' ? errs : 0, 'MAPC and INVALL succeed');

      assert.ok(d.its.int(7, 255));
      expectLpi(d, 2, 8196, 'dev7/eventid=255 triggered LPI 8196 on PE #2 after migration');
      assert.equal(d.cpus[0].readb(d.lpi.propBase), LPI_PROP_DEFAULT, 'config of LPI 8192 migrated');
      assert.ok(d.its.int(2, 0));
      expectLpi(d, pe0, 8192, 'dev2/eventid=0 triggered LPI 8192 on PE0');
      assert.ok(d.its.int(2, 20));
      expectLpi(d, 3, 8195, 'dev2/eventid=20 still on PE3');
    });
  }
});

describe('its extras', () => {
  test('command queue of one page wraps: > 128 commands, all processed, CREADR wraps to 0', () => {
    const m = setup({ init: { cmdQueuePages: 1 } });
    itsSetup1(m); // 8 commands
    const before = m.gic.its(0).stats().commands;
    let wrapped = 0;
    for (let i = 0; i < 300; i++) {
      const cmd = i % 3;
      const ok = cmd === 0 ? m.its.int(2, 20) : cmd === 1 ? m.its.sync(3) : m.its.inv(7, 255);
      assert.ok(ok, `command ${i} completed`);
      const creadr = m.its.creadr;
      assert.equal(creadr, ((8 + i + 1) * 32) % 4096, `CREADR after command ${i}`);
      if (creadr === 0) wrapped++;
      if (cmd === 0) expectLpi(m, 3, 8195, `INT ${i}`);
    }
    assert.equal(wrapped, 2);
    assert.equal(m.gic.its(0).stats().commands - before, 300);
    assert.equal(m.gic.its(0).errorCount(), 0);
    assert.equal(Number(m.gic.its(0).readReg(GITS_CWRITER)), m.its.creadr);
  });

  // Regression: the high word of GITS_CWRITER used to read CREADR.
  test('GITS_CWRITER and GITS_CREADR read as 64-bit registers: bits 63:20 are RES0', () => {
    const m = setup({ vcpus: 1 });
    itsSetup1(m);
    const cwriter = m.cpus[0].readq(m.its.base + GITS_CWRITER);
    const creadr = m.cpus[0].readq(m.its.base + GITS_CREADR);
    assert.equal(creadr, 8n * 32n);
    assert.equal(cwriter, 8n * 32n, 'guest readq of CWRITER');
    assert.equal(m.gic.its(0).readReg(GITS_CWRITER), 8n * 32n, 'userspace read of CWRITER');
  });

  test('two-level device table: a device in the second L2 page works; an invalid L1 entry is OOR', () => {
    const m = setup({ init: { indirect: true } });
    const baser0 = m.cpus[0].readq(m.its.base + GITS_BASER);
    assert.equal((baser0 >> 62n) & 1n, 1n, 'BASER0.Indirect');
    const dev = 8192 + 5; // L1 entry 1
    m.its.mapL2Page(dev);
    m.its.createDevice(dev, 4);
    assert.ok(m.its.mapc(1, 1));
    assert.ok(m.its.mapti(dev, 9, 8300, 1));
    assert.equal(m.gic.its(0).errorCount(), 0);
    assert.ok(m.its.int(dev, 9));
    expectLpi(m, 1, 8300, 'INT dev 8197');
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: dev, eventid: 9 }), 'delivered');
    expectLpi(m, 1, 8300, 'MSI dev 8197');

    const far = 3 * 8192 + 1; // L1 entry 3 is invalid
    m.its.createDevice(far, 4);
    assert.equal(errors(m, 'E_ITS_MAPD_DEVICE_OOR'), 1);
    assert.ok(m.its.mapti(far, 0, 8301, 1));
    assert.equal(errors(m, 'E_ITS_MAPTI_UNMAPPED_DEVICE'), 1);
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: far, eventid: 0 }), 'blocked');
    expectNothing(m, 'nothing from the unmapped device');

    // The two-level table survives both migrations.
    for (const [name, migrate] of MIGRATIONS) {
      const d = migrate(m);
      assert.ok(d.its.int(dev, 9), name);
      expectLpi(d, 1, 8300, `INT dev 8197 after ${name}`);
    }
  });

  test('two ITSes translate their own devices independently', () => {
    const m = setup({ its: 2, redistBase: 0x080c0000 });
    assert.equal(m.gic.its(1).base, 0x080a0000);
    assert.equal(m.guests[3].rd, 0x080c0000 + 3 * 0x20000);
    const its1 = new ItsGuest(m.cpus[1], m.alloc, 0x080a0000);
    its1.init();
    its1.enable();
    const its0 = m.its;
    // Same DeviceID/EventID on both ITSes, different LPIs and PEs.
    its0.createDevice(2, 4);
    its1.createDevice(2, 4);
    assert.ok(its0.mapc(0, 1));
    assert.ok(its1.mapc(0, 2));
    assert.ok(its0.mapti(2, 3, 8200, 0));
    assert.ok(its1.mapti(2, 3, 8201, 0));
    // A device only ITS 1 knows.
    its1.createDevice(5, 2);
    assert.ok(its1.mapti(5, 1, 8202, 0));

    assert.equal(m.gic.signalMsi({ doorbell: its0.doorbell, devid: 2, eventid: 3 }), 'delivered');
    expectLpi(m, 1, 8200, 'ITS 0 dev 2');
    assert.equal(m.gic.signalMsi({ doorbell: its1.doorbell, devid: 2, eventid: 3 }), 'delivered');
    expectLpi(m, 2, 8201, 'ITS 1 dev 2');
    assert.equal(m.gic.signalMsi({ doorbell: its1.doorbell, devid: 5, eventid: 1 }), 'delivered');
    expectLpi(m, 2, 8202, 'ITS 1 dev 5');
    assert.equal(m.gic.signalMsi({ doorbell: its0.doorbell, devid: 5, eventid: 1 }), 'blocked');
    expectNothing(m, 'ITS 0 has no device 5');
    assert.ok(its1.int(2, 3));
    expectLpi(m, 2, 8201, 'INT on ITS 1');

    // Unmapping the device on ITS 0 leaves ITS 1's alone.
    assert.ok(its0.mapd(2, 0, 4, false));
    assert.equal(m.gic.signalMsi({ doorbell: its0.doorbell, devid: 2, eventid: 3 }), 'blocked');
    assert.equal(m.gic.signalMsi({ doorbell: its1.doorbell, devid: 2, eventid: 3 }), 'delivered');
    expectLpi(m, 2, 8201, 'ITS 1 dev 2 after ITS 0 unmapped its dev 2');
    assert.equal(m.gic.its(0).errorCount() + m.gic.its(1).errorCount(), 0);
  });

  test('two ITSes mapping one LPI: DISCARD on one keeps the other mapping', () => {
    const m = setup({ its: 2, redistBase: 0x080c0000 });
    const its1 = new ItsGuest(m.cpus[1], m.alloc, 0x080a0000);
    its1.init();
    its1.enable();
    const its0 = m.its;
    its0.createDevice(2, 4);
    its1.createDevice(3, 4);
    assert.ok(its0.mapc(0, 1));
    assert.ok(its1.mapc(0, 1));
    assert.ok(its0.mapti(2, 0, 8210, 0));
    assert.ok(its1.mapti(3, 0, 8210, 0));
    assert.ok(its0.discard(2, 0));
    assert.equal(m.gic.signalMsi({ doorbell: its0.doorbell, devid: 2, eventid: 0 }), 'blocked');
    assert.equal(m.gic.signalMsi({ doorbell: its1.doorbell, devid: 3, eventid: 0 }), 'delivered');
    expectLpi(m, 1, 8210, 'ITS 1 still maps LPI 8210');
    assert.equal(m.gic.its(0).errorCount() + m.gic.its(1).errorCount(), 0);
  });

  test('two ITSes survive both migrations', () => {
    const m = setup({ its: 2, redistBase: 0x080c0000 });
    const its1 = new ItsGuest(m.cpus[1], m.alloc, 0x080a0000);
    its1.init();
    its1.enable();
    m.its.createDevice(2, 4);
    its1.createDevice(2, 4);
    assert.ok(m.its.mapc(0, 1));
    assert.ok(its1.mapc(0, 2));
    assert.ok(m.its.mapti(2, 3, 8200, 0));
    assert.ok(its1.mapti(2, 3, 8201, 0));
    for (const [name, migrate] of MIGRATIONS) {
      const d = migrate(m);
      assert.equal(d.gic.signalMsi({ doorbell: 0x08090040, devid: 2, eventid: 3 }), 'delivered', name);
      expectLpi(d, 1, 8200, `ITS 0 after ${name}`);
      assert.equal(d.gic.signalMsi({ doorbell: 0x080b0040, devid: 2, eventid: 3 }), 'delivered', name);
      expectLpi(d, 2, 8201, `ITS 1 after ${name}`);
    }
  });

  test('a CPU write to GITS_TRANSLATER is an MSI from DeviceID 0', () => {
    const m = setup();
    m.its.createDevice(0, 4);
    assert.ok(m.its.mapc(5, 2));
    assert.ok(m.its.mapti(0, 7, 8250, 5));
    m.guests[1].cpu.writel(m.its.doorbell, 7);
    expectLpi(m, 2, 8250, 'TRANSLATER write from CPU 1');
    m.its.translate(7);
    expectLpi(m, 2, 8250, 'TRANSLATER write from CPU 0');
    m.its.translate(8); // unmapped event
    expectNothing(m, 'an unmapped event goes nowhere');
    // A 16-bit write works too.
    m.cpus[3].writew(m.its.doorbell, 7);
    expectLpi(m, 2, 8250, '16-bit TRANSLATER write');
  });

  test('property bytes: priority order on one PE, PMR masking, MOVI moves a pending LPI', () => {
    const m = setup();
    itsSetup1(m);
    assert.ok(m.its.mapti(2, 0, 8192, 3));
    m.lpi.setConfig(8195, 0xc0);
    m.lpi.setConfig(8192, 0x40);
    assert.ok(m.its.invall(3));
    assert.ok(m.its.int(2, 20));
    assert.ok(m.its.int(2, 0));
    assert.deepEqual(drainAll(m), [[], [], [], [8192, 8195]], 'highest priority first');
    m.lpi.setConfig(8195, 0xf0); // not below PMR 0xf0
    assert.ok(m.its.inv(2, 20));
    assert.ok(m.its.int(2, 20));
    expectNothing(m, 'masked by PMR');
    assert.ok(m.its.movi(2, 20, 2));
    m.lpi.setConfig(8195, 0xa0);
    assert.ok(m.its.inv(2, 20));
    expectLpi(m, 2, 8195, 'the pending LPI followed MOVI to PE2');
    assert.equal(m.gic.its(0).errorCount(), 0);
  });

  test('EnableLPIs 1 -> 0 keeps a pending LPI in the table; 0 -> 1 delivers it', () => {
    const m = setup();
    itsSetup1(m);
    assert.ok(m.its.int(2, 20));
    m.lpi.disable(m.guests[3].rd);
    assert.equal(m.lpi.isPending(3, 8195), true, 'written back to the pending table');
    expectNothing(m, 'nothing while LPIs are off');
    assert.ok(m.its.int(2, 20)); // refused: the target has LPIs off
    assert.equal(m.gic.its(0).stats().msiBusy, 1);
    m.lpi.enable(m.guests[3].rd);
    assert.equal(m.lpi.isPending(3, 8195), false, 'consumed at enable');
    expectLpi(m, 3, 8195, 'delivered once after EnableLPIs');
  });

  test('GITS_CTLR.Enable and GICR_CTLR.EnableLPIs read back', () => {
    const m = setup({ vcpus: 2 });
    assert.equal(m.cpus[0].readl(m.its.base + GITS_CTLR) & GITS_CTLR_ENABLED, GITS_CTLR_ENABLED);
    assert.equal(m.cpus[0].readl(m.guests[1].rd + GICR_CTLR) & GICR_CTLR_ENABLE_LPIS, GICR_CTLR_ENABLE_LPIS);
    assert.equal(
      m.gic.readDistReg(GICD_CTLR) & BigInt(GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1),
      BigInt(GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1),
    );
  });
});

/** Two ITSes (ITS 1 at 0x080A0000, redistributors at 0x080C0000), both mapping LPI 8210 to PE1. */
function sharedLpi(): { m: Machine; its1: ItsGuest } {
  const m = setup({ its: 2, redistBase: 0x080c0000 });
  const its1 = new ItsGuest(m.cpus[1], m.alloc, 0x080a0000);
  its1.init();
  its1.enable();
  m.its.createDevice(2, 4);
  its1.createDevice(3, 4);
  assert.ok(m.its.mapc(0, 1));
  assert.ok(its1.mapc(0, 1));
  assert.ok(m.its.mapti(2, 0, 8210, 0));
  assert.ok(its1.mapti(3, 0, 8210, 0));
  return { m, its1 };
}

describe('ITS reset and table invalidation', () => {
  test('resetting one ITS keeps an LPI another ITS still maps', () => {
    const { m } = sharedLpi();
    m.gic.its(1).reset();
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 2, eventid: 0 }), 'delivered');
    expectLpi(m, 1, 8210, 'ITS 0 still maps LPI 8210');
  });

  test('clearing BASER0.Valid on one ITS keeps an LPI another ITS still maps', () => {
    const { m, its1 } = sharedLpi();
    its1.disable();
    const at = its1.base + GITS_BASER;
    m.cpus[1].writeq(at, m.cpus[1].readq(at) & ~(1n << 63n));
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 2, eventid: 0 }), 'delivered');
    expectLpi(m, 1, 8210, 'ITS 0 still maps LPI 8210');
  });

  test("resetting the ITS that mapped an LPI first releases that ITS's reference", () => {
    const { m, its1 } = sharedLpi();
    m.gic.its(0).reset();
    assert.ok(its1.discard(3, 0));
    assert.equal(m.gic.state.irqLpiRef[8210 - 8192], 0, 'no ITE maps LPI 8210 any more');
    // Observable: a new first mapping takes the LPI's bit from the pending table.
    m.lpi.disable(m.guests[1].rd);
    m.lpi.setPending(1, 8210, true);
    m.lpi.enable(m.guests[1].rd);
    assert.ok(its1.mapti(3, 1, 8210, 0));
    expectLpi(m, 1, 8210, 'the pending bit is read when LPI 8210 is mapped again');
  });

  test('a device table made invalid then valid again does not translate to freed LPIs', () => {
    const m = setup();
    itsSetup1(m);
    m.its.disable();
    const at = m.its.base + GITS_BASER;
    const b0 = m.cpus[0].readq(at);
    m.cpus[0].writeq(at, b0 & ~(1n << 63n));
    m.cpus[0].writeq(at, b0);
    m.its.enable();
    // KVM: the devices are gone (INT fails with E_ITS_INT_UNMAPPED_INTERRUPT, the MSI is blocked).
    // Either way, what the ITS reports must match what the PE sees.
    assert.ok(m.its.int(2, 20));
    const intFailed = errors(m, 'E_ITS_INT_UNMAPPED_INTERRUPT') === 1;
    const got = drainAll(m);
    assert.deepEqual(got, intFailed ? [[], [], [], []] : [[], [], [], [8195]], 'INT outcome');
    const r = m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 7, eventid: 255 });
    assert.deepEqual(drainAll(m), r === 'delivered' ? [[], [], [8196], []] : [[], [], [], []], `MSI ${r}`);
  });
});
