/**
 * The dirty log (memory/guest-memory.ts; KVM_MEM_LOG_DIRTY_PAGES and KVM_GET_DIRTY_LOG for the
 * pages the GIC writes, seed 004's KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP): every write through guest
 * memory marks its 4K page while logging is on, reads never do, a read clears; the GIC's writes
 * (ITEs, ITS table save, pending-table save) are logged and its reads (command queue, tables) are
 * not. Then a live migration: pre-copy all RAM with the log on, let the guest change its ITS
 * mapping, stop, save the ITS tables and pending tables, copy only the dirty pages, restore into a
 * new GIC in KVM's order, and compare behaviour — and check that no page outside the log changed.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDirtyLogBench, runDirtyLogBench } from '../src/bench/dirty-log.ts';
import {
  GICR_CTLR,
  GICR_PENDBASER,
  GICR_PROPBASER,
  GITS_BASER,
  GITS_CBASER,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CWRITER,
  GITS_IIDR,
  GicV3Guest,
  GuestMemory,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KvmError,
  KvmVm,
  Vgic,
  VgicError,
} from '../src/index.ts';
import { DIRTY_PAGE_SHIFT } from '../src/memory/guest-memory.ts';
import { type LpiMachine, lpiMachine, takeAll } from './helpers/its-machine.ts';

const PAGE = 2 ** DIRTY_PAGE_SHIFT;
const BASE = 0x40000000;

const pages = (m: GuestMemory, base = BASE): number[] =>
  GuestMemory.dirtyPages(base, m.getDirtyLog(base)).map((a) => (a - base) / PAGE);

describe('GuestMemory dirty log', () => {
  test('writes mark pages only while logging is on; reads never; a read of the log clears it', () => {
    const m = new GuestMemory();
    m.addRam(BASE, 64 * PAGE);
    m.write(BASE + 5, 1, 1);
    assert.deepEqual(pages(m), [], 'logging off: nothing');
    m.setDirtyLogging(BASE, true);
    assert.equal(m.dirtyLogging(BASE), true);
    m.write(BASE + 3 * PAGE + 4, 4, 0xdeadbeef);
    m.writeWords(BASE + 7 * PAGE - 4, 1, 2); // straddles pages 6 and 7
    m.write64(BASE + 40 * PAGE, 5n);
    m.fillZero(BASE + 33 * PAGE, 2 * PAGE);
    m.read(BASE + 9 * PAGE, 4);
    m.readWords(BASE + 10 * PAGE, new Uint32Array(2));
    assert.equal(m.write(BASE + 64 * PAGE, 4, 1), false, 'outside RAM: no write, no mark');
    assert.deepEqual(pages(m), [3, 6, 7, 33, 34, 40]);
    assert.deepEqual(pages(m), [], 'the read cleared the log');
    m.write(BASE + 63 * PAGE, 1, 1);
    m.setDirtyLogging(BASE, false);
    m.write(BASE + 62 * PAGE, 1, 1);
    assert.deepEqual(pages(m), [63], 'turning logging off keeps what was logged, logs no more');
    m.setDirtyLogging(BASE, true);
    assert.deepEqual(pages(m), [], 'turning it on starts clean');
    assert.throws(() => m.getDirtyLog(BASE + PAGE), VgicError);
  });

  test('a GIC attached elsewhere (addressMap) marks the same log', () => {
    const gic = Vgic.create({ ram: { base: BASE, size: 1 << 20 } });
    const other = Vgic.attach(gic.state.buffer, gic.addressMap());
    gic.memory.setDirtyLogging(BASE, true);
    other.memory.write(BASE + 17 * PAGE, 4, 1);
    assert.deepEqual(pages(gic.memory), [17]);
  });
});

function cmdqPage(m: LpiMachine): number {
  const cwriter = Number(m.gic.its(0).readReg(GITS_CWRITER));
  return (m.its.cmdq + cwriter - BASE) >>> DIRTY_PAGE_SHIFT;
}

describe("the GIC's own writes", () => {
  test('command processing reads the queue and tables without dirtying them; MAPTI writes its ITE', () => {
    const m = lpiMachine({ vcpus: 2 });
    const itt = m.its.createDevice(3, 4);
    assert.ok(m.its.mapc(0, 1));
    m.gic.memory.setDirtyLogging(BASE, true);
    // INVALL: the ITS reads the command, the collection, the property table: only the guest's
    // own store of the command into the queue is in the log.
    let q = cmdqPage(m);
    assert.ok(m.its.invall(0));
    assert.deepEqual(pages(m.gic.memory), [q]);
    // MAPTI: the ITS writes the ITE into the device's ITT (vgic keeps ITEs in guest memory).
    q = cmdqPage(m);
    assert.ok(m.its.mapti(3, 2, 8300, 0));
    const ittPage = (itt + 2 * 8 - BASE) >>> DIRTY_PAGE_SHIFT;
    assert.deepEqual(
      pages(m.gic.memory),
      [q, ittPage].sort((a, b) => a - b),
    );
  });

  test('SAVE_TABLES and SAVE_PENDING_TABLES dirty exactly the table pages they write', () => {
    const m = lpiMachine({ vcpus: 2 });
    m.its.createDevice(3, 4);
    assert.ok(m.its.mapc(0, 1));
    assert.ok(m.its.mapti(3, 2, 8300, 0));
    m.gic.memory.setDirtyLogging(BASE, true);
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 3, eventid: 2 }), 'delivered');
    assert.deepEqual(pages(m.gic.memory), [], 'an MSI writes no guest memory');
    m.gic.savePendingTables();
    const pend = m.lpi.pendBases[1] + (8300 >>> 3);
    assert.deepEqual(pages(m.gic.memory), [(pend - BASE) >>> DIRTY_PAGE_SHIFT]);
    m.gic.its(0).saveTables();
    const got = pages(m.gic.memory);
    const dte = (m.its.deviceTable + 3 * 8 - BASE) >>> DIRTY_PAGE_SHIFT;
    const cte = (m.its.collectionTable - BASE) >>> DIRTY_PAGE_SHIFT;
    for (const p of [dte, cte]) assert.ok(got.includes(p), `page ${p} is in ${got}`);
    assert.ok(got.length <= 4, `only table pages: ${got}`);
  });
});

describe('live migration with the dirty log', () => {
  test('pre-copy, guest changes, stop, save, copy only dirty pages, restore elsewhere: same behaviour', () => {
    const ramSize = 64 << 20;
    const src = lpiMachine({ vcpus: 4, ramSize });
    const mem = src.gic.memory;
    // Before migration starts: some mapping.
    src.its.createDevice(2, 8);
    assert.ok(src.its.mapc(0, 1));
    assert.ok(src.its.mapc(3, 3));
    assert.ok(src.its.mapti(2, 20, 8195, 3));
    // Migration starts: log on, the first pass copies all RAM while the guest still runs.
    mem.setDirtyLogging(BASE, true);
    const copy = Uint8Array.from(mem.bytesAt(BASE, ramSize) as Uint8Array);
    // The guest goes on: more devices and events, an unmapping, a pending LPI it has not taken.
    src.its.createDevice(40, 16);
    src.its.createDevice(5, 4);
    assert.ok(src.its.mapc(7, 2));
    assert.ok(src.its.mapti(2, 21, 8196, 0));
    assert.ok(src.its.mapti(40, 65535, 8192, 3));
    assert.ok(src.its.mapti(40, 0, 16383, 7));
    assert.ok(src.its.mapti(5, 1, 8200, 7));
    assert.ok(src.its.discard(5, 1));
    assert.equal(src.gic.signalMsi({ doorbell: src.its.doorbell, devid: 2, eventid: 20 }), 'delivered');
    // Stop: save the ITS tables and the pending tables (GIC writes), then the last pass.
    src.gic.its(0).saveTables();
    src.gic.savePendingTables();
    const dirty = GuestMemory.dirtyPages(BASE, mem.getDirtyLog(BASE));
    const total = ramSize / PAGE;
    assert.ok(dirty.length > 0 && dirty.length < total / 100, `${dirty.length} of ${total} pages dirty`);
    const srcBytes = mem.bytesAt(BASE, ramSize) as Uint8Array;
    for (const a of dirty) copy.set(srcBytes.subarray(a - BASE, a - BASE + PAGE), a - BASE);
    // The log missed nothing: with the dirty pages copied, the copy is the source's RAM.
    assert.ok(Buffer.from(copy.buffer).equals(Buffer.from(srcBytes)), 'a page changed outside the dirty log');

    // Elsewhere: a new GIC over the copied RAM, registers restored in KVM's order.
    const dst = Vgic.create({ vcpus: 4, its: 1, ram: { base: BASE, size: ramSize }, time: 'virtual' });
    (dst.memory.bytesAt(BASE, ramSize) as Uint8Array).set(copy);
    const cpus = [0, 1, 2, 3].map((i) => dst.vcpu(i));
    const guests = cpus.map((c) => new GicV3Guest(c));
    guests[0].enableDistributor();
    for (const g of guests) g.enableCpu();
    for (let v = 0; v < 4; v++) {
      dst.writeRedistReg(v, GICR_PROPBASER, src.gic.readRedistReg(v, GICR_PROPBASER, 8), 8);
      dst.writeRedistReg(v, GICR_PENDBASER, src.gic.readRedistReg(v, GICR_PENDBASER, 8), 8);
    }
    const from = src.gic.its(0);
    const to = dst.its(0);
    to.writeReg(GITS_IIDR, from.readReg(GITS_IIDR, 4), 4);
    to.writeReg(GITS_CBASER, from.readReg(GITS_CBASER));
    to.writeReg(GITS_CWRITER, from.readReg(GITS_CWRITER));
    to.writeReg(GITS_CREADR, from.readReg(GITS_CREADR));
    to.writeReg(GITS_BASER, from.readReg(GITS_BASER));
    to.writeReg(GITS_BASER + 8, from.readReg(GITS_BASER + 8));
    to.restoreTables();
    for (let v = 0; v < 4; v++) dst.writeRedistReg(v, GICR_CTLR, src.gic.readRedistReg(v, GICR_CTLR) & 1n);
    to.writeReg(GITS_CTLR, from.readReg(GITS_CTLR, 4) & 1n, 4);

    // The LPI left pending at the source is pending here, from the saved pending table.
    assert.equal(takeAll(cpus), '3:8195');
    assert.equal(takeAll(src.cpus), '3:8195');
    const probes: [number, number][] = [
      [2, 20],
      [2, 21],
      [2, 22],
      [40, 65535],
      [40, 0],
      [40, 1],
      [5, 1],
      [5, 0],
      [3, 0],
    ];
    const answer = (gic: Vgic, c: typeof cpus, doorbell: number, d: number, e: number) => {
      const r = gic.signalMsi({ doorbell, devid: d, eventid: e });
      return `${d}/${e}=${r === 'delivered' ? takeAll(c) : r}`;
    };
    const want = probes.map(([d, e]) => answer(src.gic, src.cpus, src.its.doorbell, d, e));
    const got = probes.map(([d, e]) => answer(dst, cpus, dst.its(0).doorbell, d, e));
    assert.deepEqual(got, want);
    assert.deepEqual(want.slice(0, 5), [
      '2/20=3:8195',
      '2/21=1:8196',
      '2/22=blocked',
      '40/65535=3:8192',
      '40/0=2:16383',
    ]);
  });
});

test('dirty-log-bench runs every pattern with logging off and on', () => {
  const rows = runDirtyLogBench({ writes: 5000, trials: 2 });
  assert.deepEqual(
    rows.map((r) => `${r.pattern}/${r.logging}`),
    ['sequential/false', 'sequential/true', 'page-stride/false', 'page-stride/true'],
  );
  assert.ok(rows.every((r) => r.ns > 0 && r.minNs <= r.ns && r.ns <= r.maxNs));
  assert.match(formatDirtyLogBench(rows), /^sequential {3}logging off {2}[\d.]+ ns\/write/);
});

describe('KVM_CLEAR_DIRTY_LOG with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', () => {
  const RAM_PAGES = 200; // not a multiple of 64 or 32: the last range is short
  const vmWithRam = () =>
    KvmVm.fromVgic(Vgic.create({ vcpus: 1, ram: { base: BASE, size: RAM_PAGES * PAGE }, time: 'virtual' }));
  const dirtyOf = (bitmap: Uint32Array) => GuestMemory.dirtyPages(BASE, bitmap).map((a) => (a - BASE) / PAGE);
  const errno = (f: () => unknown, want: string) =>
    assert.throws(f, (e: unknown) => e instanceof KvmError && e.errno === want, `expected ${want}`);

  test('GET leaves the log set, CLEAR clears only the pages it names, a later write is logged again', () => {
    const vm = vmWithRam();
    const mem = vm.gic.memory;
    vm.enableManualDirtyLogProtect(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
    vm.setDirtyLogging(BASE, true);
    for (const p of [1, 63, 64, 130, 199]) mem.write(BASE + p * PAGE, 4, p);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 64, 130, 199]);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 64, 130, 199], 'GET does not clear');
    // Clear pages 64..127 as named (64 only; 65 is named but clean), leave 1 and 63 alone.
    const bm = new Uint32Array(2);
    bm[0] = 0b11;
    vm.clearDirtyLog(BASE, 64, 64, bm);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 130, 199]);
    // The last range may be short of 64 pages: 192..199; bits past it are ignored.
    vm.clearDirtyLog(BASE, 192, 8, Uint32Array.of(0xffffffff));
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 130]);
    mem.write(BASE + 64 * PAGE + 8, 4, 9);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 64, 130], 'a write after CLEAR is logged');
    // Without manual protect GET reads and clears, as before.
    vm.enableManualDirtyLogProtect(0);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), [1, 63, 64, 130]);
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), []);
  });

  test('KVM_DIRTY_LOG_INITIALLY_SET: logging starts with every page dirty, and no page past the region', () => {
    const vm = vmWithRam();
    vm.enableManualDirtyLogProtect(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET);
    vm.setDirtyLogging(BASE, true);
    const all = dirtyOf(vm.getDirtyLog(BASE));
    assert.equal(all.length, RAM_PAGES);
    assert.equal(all[RAM_PAGES - 1], RAM_PAGES - 1);
    vm.clearDirtyLog(BASE, 0, RAM_PAGES, vm.getDirtyLog(BASE));
    assert.deepEqual(dirtyOf(vm.getDirtyLog(BASE)), []);
  });

  test("KVM's errors: logging off ENOENT, misaligned or outside ranges EINVAL, short bitmap EFAULT, bad flags EINVAL", () => {
    const vm = vmWithRam();
    errno(() => vm.getDirtyLog(BASE), 'ENOENT');
    errno(() => vm.clearDirtyLog(BASE, 0, 64, new Uint32Array(2)), 'ENOENT');
    vm.setDirtyLogging(BASE, true);
    for (const [first, n] of [
      [1, 64], // first_page not a multiple of 64
      [32, 64],
      [0, 63], // num_pages not a multiple of 64 short of the end
      [0, 201], // past the region
      [256, 0], // first_page past the region
      [192, 9],
      [-64, 64],
      [0, Number.NaN],
    ]) {
      errno(() => vm.clearDirtyLog(BASE, first, n, new Uint32Array(8)), 'EINVAL');
    }
    errno(() => vm.clearDirtyLog(BASE, 0, 128, new Uint32Array(3)), 'EFAULT');
    vm.clearDirtyLog(BASE, 192, 0, new Uint32Array(0)); // an empty range: KVM accepts it
    for (const f of [4, 1.5, -1, 7]) errno(() => vm.enableManualDirtyLogProtect(f), 'EINVAL');
    assert.equal(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 168);
    assert.throws(() => vm.gic.memory.clearDirtyLog(BASE, 3, 64, new Uint32Array(2)), VgicError);
  });
});
