/**
 * The ITS's error paths (kvm-vgic.md "ITS commands" and "Bad commands"): every E_ITS_* condition
 * provoked by a real command on the queue, counted exactly once, skipped without stalling the
 * queue (CREADR passes it) and followed by a command that works; ignored opcodes; a queue outside
 * RAM; KVM_SIGNAL_MSI's 'delivered' / 'blocked' / 'busy' answers; the GITS_* register rules
 * (CBASER and BASER ignored while enabled, enabling refused while a table is invalid).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  E_ITS_CODES,
  E_ITS_V_CODES,
  GITS_BASER,
  GITS_BASER_HI_VALID,
  GITS_CBASER,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CWRITER,
  type GicV3Guest,
  type GuestAllocator,
  type ItsGuest,
  type ItsStats,
  type LpiTables,
  type VCpu,
  type Vgic,
  VgicError,
} from '../src/index.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const DEV = 2;
const EVENT = 20;
const LPI = 8195;
const ICID = 3;
const TARGET = 3;

interface Env {
  gic: Vgic;
  cpus: VCpu[];
  guests: GicV3Guest[];
  alloc: GuestAllocator;
  lpi: LpiTables;
  its: ItsGuest;
}

/** The brief's working set-up: 4 vCPUs, LPIs on everywhere, device 2 event 20 → LPI 8195 on vCPU 3. */
function setup(): Env {
  const m = lpiMachine();
  assert.ok(m.its.createDevice(DEV, 8));
  assert.ok(m.its.mapc(ICID, TARGET));
  assert.ok(m.its.mapti(DEV, EVENT, LPI, ICID));
  return m;
}

const take = takeAll;
/** The physical commands' codes (the V-commands' are test/gicv4-regs.test.ts's). */
const PHYSICAL_CODES = E_ITS_CODES.filter(([n]) => !E_ITS_V_CODES.some(([m]) => m === n));

function msi(e: Env, devid = DEV, eventid = EVENT): string {
  return e.gic.signalMsi({ doorbell: e.its.doorbell, devid, eventid });
}

/** The counters that moved between two snapshots (errors by name, the rest by field). */
function moved(before: ItsStats, after: ItsStats): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [name] of E_ITS_CODES) {
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

/** The command's queue slot was consumed: CREADR moved by one command (32 bytes). */
function creadr(e: Env): number {
  return Number(e.gic.its(0).readReg(GITS_CREADR));
}

/** INT on the known-good mapping, then its LPI is taken on vCPU 3: the queue still works. */
function assertQueueWorks(e: Env): void {
  assert.equal(take(e.cpus), '', 'nothing pending before the good command');
  assert.ok(e.its.int(DEV, EVENT), 'the good command was consumed');
  assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
  assert.equal(msi(e), 'delivered');
  assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
}

/**
 * Each E_ITS_* condition, with the command that provokes it. `prep` runs before the snapshot
 * (set-up commands that must succeed).
 */
const CASES: Record<string, { prep?: (e: Env) => void; bad: (e: Env) => boolean }> = {
  E_ITS_MOVI_UNMAPPED_INTERRUPT: { bad: (e) => e.its.movi(DEV, 99, ICID) },
  E_ITS_MOVI_UNMAPPED_COLLECTION: { bad: (e) => e.its.movi(DEV, EVENT, 7) },
  E_ITS_INT_UNMAPPED_INTERRUPT: { bad: (e) => e.its.int(DEV, 99) },
  E_ITS_CLEAR_UNMAPPED_INTERRUPT: { bad: (e) => e.its.clear(5, 0) },
  // The default device table is one 64K page: 8192 DTEs.
  E_ITS_MAPD_DEVICE_OOR: { bad: (e) => e.its.mapd(9000, e.alloc.alloc(256, 256), 1) },
  // Size = 16 means 17 EventID bits; GITS_TYPER.IDbits is 16.
  E_ITS_MAPD_ITTSIZE_OOR: { bad: (e) => e.its.mapd(4, e.alloc.alloc(256, 256), 17) },
  E_ITS_MAPC_PROCNUM_OOR: { bad: (e) => e.its.mapc(5, 4) },
  // The default collection table is one 64K page: 8192 CTEs.
  E_ITS_MAPC_COLLECTION_OOR: { bad: (e) => e.its.mapc(9000, 1) },
  E_ITS_MAPTI_UNMAPPED_DEVICE: { bad: (e) => e.its.mapti(5, 0, 8200, ICID) },
  // Device 2 has 8 EventID bits.
  E_ITS_MAPTI_ID_OOR: { bad: (e) => e.its.mapti(DEV, 256, 8200, ICID) },
  E_ITS_MAPTI_PHYSICALID_OOR: { bad: (e) => e.its.mapti(DEV, 21, 8191, ICID) },
  E_ITS_INV_UNMAPPED_INTERRUPT: { bad: (e) => e.its.inv(DEV, 21) },
  E_ITS_INVALL_UNMAPPED_COLLECTION: { bad: (e) => e.its.invall(9) },
  E_ITS_MOVALL_PROCNUM_OOR: { bad: (e) => e.its.movall(0, 4) },
  E_ITS_DISCARD_UNMAPPED_INTERRUPT: { bad: (e) => e.its.discard(DEV, 21) },
};

describe('E_ITS conditions: counted once, skipped, the queue goes on', () => {
  test('there is a case for every E_ITS code', () => {
    assert.deepEqual(Object.keys(CASES).sort(), PHYSICAL_CODES.map(([n]) => n).sort());
    assert.equal(PHYSICAL_CODES.length, 15);
  });

  for (const [name] of PHYSICAL_CODES) {
    test(name, () => {
      const e = setup();
      CASES[name].prep?.(e);
      const before = e.gic.its(0).stats();
      const at = creadr(e);
      assert.ok(CASES[name].bad(e), 'CREADR reached CWRITER: the queue did not stall');
      assert.equal(creadr(e), at + 32, 'CREADR advanced past the failing command');
      assert.equal(e.gic.its(0).readReg(GITS_CTLR, 4) & 1n, 1n, 'the ITS stays enabled');
      assert.deepEqual(moved(before, e.gic.its(0).stats()), { [name]: 1, commands: 1 });
      assertQueueWorks(e);
    });
  }

  test('MAPTI pINTID at the PROPBASER limit (2^14 with IDbits 13) is PHYSICALID_OOR; one below maps', () => {
    const e = setup();
    const before = e.gic.its(0).stats();
    assert.ok(e.its.mapti(DEV, 21, 16384, ICID));
    assert.deepEqual(moved(before, e.gic.its(0).stats()), { E_ITS_MAPTI_PHYSICALID_OOR: 1, commands: 1 });
    assert.ok(e.its.mapti(DEV, 22, 16383, ICID));
    assert.equal(msi(e, DEV, 22), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:16383`);
  });

  test('MAPD of DeviceID 2^16 is DEVICE_OOR even when the device table covers every DeviceID', () => {
    const e = setup();
    e.its.disable();
    e.its.writeBaser(0, e.alloc.alloc(8 * 0x10000), 8, false);
    e.its.enable();
    const before = e.gic.its(0).stats();
    assert.ok(e.its.mapd(0x10000, e.alloc.alloc(256, 256), 1));
    assert.ok(e.its.mapd(0xffff, e.alloc.alloc(256, 256), 1));
    assert.deepEqual(moved(before, e.gic.its(0).stats()), { E_ITS_MAPD_DEVICE_OOR: 1, commands: 2 });
    assert.ok(e.its.mapc(0, 0));
    assert.ok(e.its.mapti(0xffff, 1, 8200, 0));
    assert.equal(msi(e, 0xffff, 1), 'delivered');
    assert.equal(take(e.cpus), '0:8200');
  });

  test('INT, and an MSI, on an ITE whose collection is unmapped: INT_UNMAPPED_INTERRUPT / blocked', () => {
    const e = setup();
    assert.ok(e.its.mapc(ICID, TARGET, false));
    const before = e.gic.its(0).stats();
    assert.ok(e.its.int(DEV, EVENT));
    assert.equal(msi(e), 'blocked');
    assert.deepEqual(moved(before, e.gic.its(0).stats()), {
      E_ITS_INT_UNMAPPED_INTERRUPT: 1,
      commands: 1,
      cacheMisses: 1,
      msiBlocked: 1,
    });
    assert.equal(take(e.cpus), '');
    // CLEAR and INV only need the ITE: they succeed.
    assert.ok(e.its.clear(DEV, EVENT));
    assert.ok(e.its.inv(DEV, EVENT));
    assert.equal(e.gic.its(0).errorCount(), 1);
    assert.ok(e.its.mapc(ICID, TARGET));
    assertQueueWorks(e);
  });

  test('MOVI from an ITE whose own collection is unmapped is MOVI_UNMAPPED_COLLECTION', () => {
    const e = setup();
    assert.ok(e.its.mapc(1, 1));
    assert.ok(e.its.mapc(ICID, TARGET, false));
    const before = e.gic.its(0).stats();
    assert.ok(e.its.movi(DEV, EVENT, 1));
    assert.deepEqual(moved(before, e.gic.its(0).stats()), {
      E_ITS_MOVI_UNMAPPED_COLLECTION: 1,
      commands: 1,
    });
    assert.ok(e.its.mapc(ICID, TARGET));
    assertQueueWorks(e);
  });

  test('DISCARD of an ITE whose collection is unmapped is DISCARD_UNMAPPED_INTERRUPT', () => {
    const e = setup();
    assert.ok(e.its.mapc(ICID, TARGET, false));
    const before = e.gic.its(0).stats();
    assert.ok(e.its.discard(DEV, EVENT));
    assert.deepEqual(moved(before, e.gic.its(0).stats()), {
      E_ITS_DISCARD_UNMAPPED_INTERRUPT: 1,
      commands: 1,
    });
    // The ITE survived: remapping the collection routes the event again.
    assert.ok(e.its.mapc(ICID, TARGET));
    assertQueueWorks(e);
  });

  test('a run of failing commands in one CWRITER write is all consumed, each counted', () => {
    const e = setup();
    const before = e.gic.its(0).stats();
    // Queue three bad commands by hand, then publish them with a single CWRITER write.
    const cmdq = e.its.cmdq;
    const start = creadr(e);
    const cmds: bigint[][] = [
      [0x01n | (2n << 32n), 99n, 3n, 0n], // MOVI unmapped event
      [0x03n | (2n << 32n), 99n, 0n, 0n], // INT unmapped event
      [0x0dn, 0n, 9n, 0n], // INVALL unmapped collection
    ];
    cmds.forEach((c, i) => {
      c.forEach((dw, j) => {
        e.cpus[0].writeq(cmdq + start + 32 * i + 8 * j, dw);
      });
    });
    e.cpus[0].writeq(e.its.base + GITS_CWRITER, BigInt(start + 96));
    assert.equal(creadr(e), start + 96);
    assert.deepEqual(moved(before, e.gic.its(0).stats()), {
      E_ITS_MOVI_UNMAPPED_INTERRUPT: 1,
      E_ITS_INT_UNMAPPED_INTERRUPT: 1,
      E_ITS_INVALL_UNMAPPED_COLLECTION: 1,
      commands: 3,
    });
    // Resynchronise the guest library's CWRITER with the queue (it did not see these commands).
    (e.its as unknown as { cwriter: number }).cwriter = start + 96;
    assertQueueWorks(e);
  });
});

describe('ignored commands', () => {
  for (const [what, opcode] of [
    ['an unknown opcode (0x3f)', 0x3fn],
    ['GICv4 VMAPP (0x29)', 0x29n],
    ['GICv4 VMAPTI (0x2a)', 0x2an],
  ] as const) {
    test(`${what} is ignored and counted in unknownCommands`, () => {
      const e = setup();
      const before = e.gic.its(0).stats();
      const at = creadr(e);
      assert.ok(e.its.raw(opcode | (2n << 32n), 20n, 1n << 63n, 0n));
      assert.equal(creadr(e), at + 32);
      assert.deepEqual(moved(before, e.gic.its(0).stats()), { unknownCommands: 1, commands: 1 });
      assertQueueWorks(e);
    });
  }

  test('SYNC succeeds and changes nothing', () => {
    const e = setup();
    const before = e.gic.its(0).stats();
    assert.ok(e.its.sync(TARGET));
    assert.deepEqual(moved(before, e.gic.its(0).stats()), { commands: 1 });
    assertQueueWorks(e);
  });

  test('a command queue outside RAM: each command is a read fault, CREADR still advances', () => {
    const e = setup();
    e.its.disable();
    // A valid CBASER at 0x20000000 (no RAM there: RAM starts at 0x40000000), one 4K page.
    e.cpus[0].writeq(e.its.base + GITS_CBASER, (1n << 63n) | 0x20000000n);
    assert.equal(creadr(e), 0, 'a CBASER write resets CREADR');
    e.its.enable();
    assert.equal(e.gic.its(0).enabled, true);
    const before = e.gic.its(0).stats();
    e.cpus[0].writeq(e.its.base + GITS_CWRITER, 64n);
    assert.equal(creadr(e), 64);
    assert.deepEqual(moved(before, e.gic.its(0).stats()), { commandReadFaults: 2 });
    // Back to a queue in RAM: the mappings made before are intact and commands run again.
    e.its.disable();
    e.cpus[0].writeq(e.its.base + GITS_CBASER, (1n << 63n) | BigInt(e.its.cmdq) | 15n);
    (e.its as unknown as { cwriter: number }).cwriter = 0;
    e.its.enable();
    assertQueueWorks(e);
  });
});

describe('signalMsi answers', () => {
  test("'delivered' on the mapped event, to vCPU 3 only", () => {
    const e = setup();
    const before = e.gic.its(0).stats();
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
    assert.deepEqual(moved(before, e.gic.its(0).stats()), { cacheMisses: 1 });
  });

  test("'blocked' for an unmapped event, an unmapped device, an out-of-range event", () => {
    const e = setup();
    const before = e.gic.its(0).stats();
    assert.equal(msi(e, DEV, 21), 'blocked');
    assert.equal(msi(e, 7, 0), 'blocked');
    assert.equal(msi(e, DEV, 256), 'blocked');
    assert.equal(msi(e, DEV, 0x10000), 'blocked');
    assert.equal(msi(e, 0x10000, EVENT), 'blocked');
    assert.equal(take(e.cpus), '');
    const d = moved(before, e.gic.its(0).stats());
    assert.equal(d.msiBlocked, 5);
    assert.equal(d.msiBusy, undefined);
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
  });

  test("'blocked' when the event's collection is unmapped (MAPC V=0)", () => {
    const e = setup();
    assert.ok(e.its.mapc(ICID, TARGET, false));
    assert.equal(msi(e), 'blocked');
    assert.ok(e.its.mapc(ICID, 1));
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `1:${LPI}`);
  });

  test("'busy' while the ITS is disabled; 'delivered' again once it is enabled", () => {
    const e = setup();
    assert.equal(msi(e), 'delivered'); // warm the translation cache first
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
    e.its.disable();
    assert.equal(e.gic.its(0).enabled, false);
    const before = e.gic.its(0).stats();
    assert.equal(msi(e), 'busy');
    assert.equal(msi(e, DEV, 21), 'busy', 'busy is checked before the mapping');
    assert.equal(moved(before, e.gic.its(0).stats()).msiBusy, 2);
    assert.equal(take(e.cpus), '');
    e.its.enable();
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
  });

  test("'busy' while the target redistributor's LPIs are disabled", () => {
    const e = setup();
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
    e.lpi.disable(e.guests[TARGET].rd);
    const before = e.gic.its(0).stats();
    assert.equal(msi(e), 'busy');
    assert.equal(moved(before, e.gic.its(0).stats()).msiBusy, 1);
    assert.equal(take(e.cpus), '');
    // Another redistributor's LPIs being off does not matter.
    assert.ok(e.its.mapc(1, 1));
    assert.ok(e.its.mapti(DEV, 21, 8300, 1));
    assert.equal(msi(e, DEV, 21), 'delivered');
    assert.equal(take(e.cpus), '1:8300');
    e.lpi.enable(e.guests[TARGET].rd);
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
  });

  test('INT to a vCPU with LPIs disabled is not an E_ITS error (busy, as -EBUSY)', () => {
    const e = setup();
    e.lpi.disable(e.guests[TARGET].rd);
    const before = e.gic.its(0).stats();
    assert.ok(e.its.int(DEV, EVENT));
    const d = moved(before, e.gic.its(0).stats());
    assert.equal(d.E_ITS_INT_UNMAPPED_INTERRUPT, undefined);
    assert.equal(d.commands, 1);
    assert.equal(take(e.cpus), '');
  });

  test("a doorbell that is no ITS's: 'blocked', counted in msiNoIts", () => {
    const e = setup();
    const before = e.gic.stats().msiNoIts;
    const its0 = e.gic.its(0).stats();
    assert.equal(e.gic.signalMsi({ doorbell: e.its.doorbell + 4, devid: DEV, eventid: EVENT }), 'blocked');
    assert.equal(e.gic.signalMsi({ doorbell: e.its.base, devid: DEV, eventid: EVENT }), 'blocked');
    assert.equal(e.gic.signalMsi({ doorbell: 0x40000000, devid: DEV, eventid: EVENT }), 'blocked');
    assert.equal(e.gic.stats().msiNoIts, before + 3);
    assert.deepEqual(moved(its0, e.gic.its(0).stats()), {}, 'the ITS saw nothing');
    assert.equal(take(e.cpus), '');
  });

  test('a devid or eventid that is not a 32-bit unsigned integer throws VgicError', () => {
    const e = setup();
    const doorbell = e.its.doorbell;
    for (const devid of [1.5, -1, 2 ** 32, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => e.gic.signalMsi({ doorbell, devid, eventid: EVENT }), VgicError, `devid ${devid}`);
    }
    for (const eventid of [0.5, -1, 2 ** 32]) {
      assert.throws(
        () => e.gic.signalMsi({ doorbell, devid: DEV, eventid }),
        VgicError,
        `eventid ${eventid}`,
      );
    }
    assert.throws(
      () => e.gic.signalMsi({ doorbell, devid: '2' as unknown as number, eventid: EVENT }),
      VgicError,
    );
    assert.equal(take(e.cpus), '');
    assert.equal(msi(e), 'delivered');
  });
});

describe('GITS registers', () => {
  test('GITS_CBASER writes are ignored while the ITS is enabled (guest and userspace)', () => {
    const e = setup();
    const h = e.gic.its(0);
    const cbaser = h.readReg(GITS_CBASER);
    const at = creadr(e);
    assert.notEqual(at, 0);
    e.cpus[0].writeq(e.its.base + GITS_CBASER, (1n << 63n) | 0x20000000n);
    h.writeReg(GITS_CBASER, 0n);
    e.cpus[0].writel(e.its.base + GITS_CBASER + 4, 0);
    assert.equal(h.readReg(GITS_CBASER), cbaser);
    assert.equal(creadr(e), at, 'CREADR was not reset');
    assert.equal(Number(h.readReg(GITS_CWRITER, 4)), at, 'CWRITER was not reset');
    assertQueueWorks(e);
  });

  test('GITS_CWRITER read as 64 bits has RES0 upper bits (CREADR once leaked into 63:32)', () => {
    const e = setup();
    const at = creadr(e);
    assert.notEqual(at, 0);
    assert.equal(e.gic.its(0).readReg(GITS_CWRITER), BigInt(at));
    assert.equal(e.cpus[0].readq(e.its.base + GITS_CWRITER), BigInt(at));
  });

  test('GITS_BASER0/1 writes are ignored while the ITS is enabled; mappings survive', () => {
    const e = setup();
    const h = e.gic.its(0);
    const b0 = h.readReg(GITS_BASER);
    const b1 = h.readReg(GITS_BASER + 8);
    for (const n of [0, 1]) {
      h.writeReg(GITS_BASER + 8 * n, 0n);
      e.cpus[0].writeq(e.its.base + GITS_BASER + 8 * n, 0x50000000n | (2n << 8n));
      e.cpus[0].writel(e.its.base + GITS_BASER + 8 * n + 4, 0);
    }
    assert.equal(h.readReg(GITS_BASER), b0);
    assert.equal(h.readReg(GITS_BASER + 8), b1);
    assert.equal(msi(e), 'delivered');
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
    assertQueueWorks(e);
  });

  for (const [what, offset] of [
    ['GITS_BASER0', GITS_BASER],
    ['GITS_BASER1', GITS_BASER + 8],
    ['GITS_CBASER', GITS_CBASER],
  ] as const) {
    test(`enabling GITS_CTLR is refused while ${what} is invalid`, () => {
      const e = setup();
      const h = e.gic.its(0);
      e.its.disable();
      const good = h.readReg(offset);
      assert.equal(good >> 63n, 1n);
      e.cpus[0].writel(e.its.base + offset + 4, Number((good >> 32n) & 0x7fffffffn));
      assert.equal(h.readReg(offset) >> 63n, 0n, `${what}.Valid is clear`);
      e.its.enable();
      assert.equal(h.enabled, false, 'the enable was refused');
      assert.equal(h.readReg(GITS_CTLR, 4) & 1n, 0n);
      assert.equal(msi(e), 'busy');
      // Valid again: the enable goes through.
      e.cpus[0].writel(e.its.base + offset + 4, Number(good >> 32n));
      if (offset === GITS_CBASER) (e.its as unknown as { cwriter: number }).cwriter = 0; // CBASER reset the queue
      e.its.enable();
      assert.equal(h.enabled, true);
      assert.equal(h.readReg(GITS_CTLR, 4) & 1n, 1n);
    });
  }

  test('GITS_CTLR enable with a valid CBASER alone (both BASERs invalid) is refused', () => {
    const e = setup();
    const h = e.gic.its(0);
    e.its.disable();
    for (const n of [0, 1]) {
      const v = h.readReg(GITS_BASER + 8 * n);
      h.writeReg(GITS_BASER + 8 * n, v & ~(BigInt(GITS_BASER_HI_VALID) << 32n));
    }
    e.its.enable();
    assert.equal(h.enabled, false);
  });

  test('a device table made invalid and valid again (same address) holds no device (once resurrected them)', () => {
    const e = setup();
    const h = e.gic.its(0);
    e.its.disable();
    const good = h.readReg(GITS_BASER);
    h.writeReg(GITS_BASER, good & ~(BigInt(GITS_BASER_HI_VALID) << 32n));
    h.writeReg(GITS_BASER, good);
    e.its.enable();
    assert.equal(h.enabled, true);
    // KVM: the device list was freed, device 2 is unknown, the MSI is blocked. (vgic answers
    // 'delivered' for an LPI that is no longer mapped: nothing is taken on any vCPU.)
    assert.equal(msi(e), 'blocked');
    assert.equal(take(e.cpus), '');
  });

  test('after reset() and re-initialising the ITS at the same tables, no old device is mapped (once resurrected)', () => {
    const e = setup();
    const h = e.gic.its(0);
    const b0 = h.readReg(GITS_BASER);
    const b1 = h.readReg(GITS_BASER + 8);
    const cb = h.readReg(GITS_CBASER);
    h.reset();
    assert.equal(h.enabled, false);
    h.writeReg(GITS_CBASER, cb);
    h.writeReg(GITS_BASER, b0);
    h.writeReg(GITS_BASER + 8, b1);
    h.writeReg(GITS_CTLR, 1, 4);
    assert.equal(h.enabled, true);
    (e.its as unknown as { cwriter: number }).cwriter = 0; // CBASER was rewritten
    assert.ok(e.its.mapc(ICID, TARGET));
    // The device list was freed by the reset: device 2 is unknown, the MSI is blocked.
    assert.equal(msi(e), 'blocked');
    assert.equal(take(e.cpus), '');
  });
});
