/**
 * Host time and memory bounded by what is mapped, not by guest-chosen sizes (issue 13, defects 2
 * and 5): restoreTables() refuses DTEs that share one full 16-bit ITT (it used to gather every
 * entry of every walk and crash the process), saveTables() reads nothing of a mapped device that
 * maps no event, and one guest access to the ITS does a bounded amount of the command queue —
 * a full queue of the costliest commands still completes for a guest that polls CREADR.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GITS_CMD_INVALL,
  GITS_CMD_MAPD,
  GITS_CMD_MAPTI,
  GITS_CMD_MOVALL,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CWRITER,
  VgicError,
} from '../src/index.ts';
import { CMD_COST, WORK_BUDGET } from '../src/its/commands.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const q = (lo: number, hi = 0): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

/** Counts the guest-memory reads the GIC makes (entries and ranges). */
function countReads(mem: { readWords: (...a: never[]) => boolean; bytesAt: (...a: never[]) => unknown }): {
  n: number;
} {
  const c = { n: 0 };
  const rw = mem.readWords.bind(mem);
  const ba = mem.bytesAt.bind(mem);
  mem.readWords = ((...a: never[]) => {
    c.n++;
    return rw(...a);
  }) as typeof mem.readWords;
  mem.bytesAt = ((...a: never[]) => {
    c.n++;
    return ba(...a);
  }) as typeof mem.bytesAt;
  return c;
}

describe('restoreTables and saveTables in bounded memory and time', () => {
  test('700 DTEs naming one 16-bit ITT full of valid ITEs: refused with a VgicError, quickly', () => {
    const m = lpiMachine({ ramSize: 16 << 20, init: { deviceTablePages: 1 } });
    const mem = m.gic.memory;
    const itt = m.alloc.alloc(2 ** 16 * 8);
    for (let e = 0; e < 2 ** 16; e++) mem.writeWords(itt + e * 8, (8192 << 16) | 0, 1 << 16);
    mem.writeWords(m.its.collectionTable, 0, 0x80000000); // CTE: ICID 0 → vCPU 0
    for (let d = 0; d < 700; d++) {
      const field = itt / 256;
      mem.writeWords(m.its.deviceTable + d * 8, ((field << 5) | 15) >>> 0, (0x80000000 | (1 << 17)) >>> 0);
    }
    m.cpus[0].writel(m.its.base + GITS_CTLR, 0);
    const t0 = performance.now();
    assert.throws(
      () => m.gic.its(0).restoreTables(),
      (e: unknown) => e instanceof VgicError && /overlapping ITTs/.test(e.message),
    );
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
    // Nothing changed: the ITS still maps nothing.
    m.cpus[0].writel(m.its.base + GITS_CTLR, 1);
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 0, eventid: 0 }), 'blocked');
  });

  test('saveTables of 1024 mapped-but-empty 16-bit devices reads no ITT', () => {
    const m = lpiMachine({ ramSize: 16 << 20, init: { deviceTablePages: 1, cmdQueuePages: 64 } });
    const itt = m.alloc.alloc(2 ** 16 * 8);
    for (let d = 0; d < 1024; d++) assert.ok(m.its.mapd(d, itt, 16));
    // One device with events: its ITT is read up to its last ITE only.
    assert.ok(m.its.mapc(0, 0));
    const itt2 = m.its.createDevice(5000, 16);
    assert.ok(m.its.mapti(5000, 3, 8300, 0));
    assert.ok(m.its.mapti(5000, 9, 8301, 0));
    assert.equal(m.gic.its(0).errorCount(), 0);
    const reads = countReads(m.gic.memory as never);
    const t0 = performance.now();
    m.gic.its(0).saveTables();
    const ms = performance.now() - t0;
    assert.ok(reads.n < 1025 * 8, `${reads.n} guest-memory reads for 1025 devices`);
    assert.ok(ms < 2000, `saved in ${ms.toFixed(0)} ms`);
    // The saved ITT chain: event 3 → event 9 (next 6), event 9 ends it.
    assert.equal(m.gic.memory.read64(itt2 + 3 * 8), (6n << 48n) | (8300n << 16n));
    assert.equal(m.gic.memory.read64(itt2 + 9 * 8), 8301n << 16n);
  });
});

describe('one guest access does a bounded part of the command queue', () => {
  test('a full queue of the costliest commands: each access runs at most one budget, and CREADR polling completes it', (t) => {
    const N_DEV = 16;
    const m = lpiMachine({ ramSize: 64 << 20, init: { deviceTablePages: 1, cmdQueuePages: 256 } });
    const cpu = m.cpus[0];
    for (let c = 0; c < 4; c++) assert.ok(m.its.mapc(c, c));
    // Devices with a 16-bit ITT each and thousands of mapped LPIs (for INVALL and MOVALL).
    const itts: number[] = [];
    for (let d = 0; d < N_DEV; d++) itts.push(m.its.createDevice(d, 16));
    for (let e = 0; e < 4096; e++) assert.ok(m.its.mapti(N_DEV - 1, e, 8192 + e, e & 3));
    assert.equal(m.gic.its(0).errorCount(), 0);
    // Fill the whole queue (one slot stays empty): per device, MAPTI of its last event then a MAPD
    // remap (which reads the ITT up to that event and clears it all), with INVALL and MOVALL.
    const bytes = m.its.cmdqBytes;
    const slots = bytes / 32 - 1 - m.its.creadr / 32;
    const start = m.its.creadr;
    const mem = m.gic.memory;
    let at = start;
    const put = (d0: bigint, d1 = 0n, d2 = 0n, d3 = 0n): void => {
      for (const [j, w] of [d0, d1, d2, d3].entries()) mem.write64(m.its.cmdq + at + 8 * j, w);
      at = (at + 32) % bytes;
    };
    let sent = 0;
    for (let i = 0; sent < slots; i++) {
      const d = i % N_DEV;
      const kind = i % 4;
      if (kind === 0)
        put(BigInt(GITS_CMD_MAPTI) | (BigInt(d) << 32n), 65535n | (BigInt(9000 + d) << 32n), 1n);
      else if (kind === 1)
        put(BigInt(GITS_CMD_MAPD) | (BigInt(d) << 32n), 15n, BigInt(itts[d]) | (1n << 63n));
      else if (kind === 2) put(BigInt(GITS_CMD_INVALL), 0n, BigInt(i & 3));
      else put(BigInt(GITS_CMD_MOVALL), 0n, BigInt(i & 3) << 16n, BigInt((i + 1) & 3) << 16n);
      sent++;
    }
    let max = 0;
    let accesses = 0;
    const times: number[] = [];
    const timed = (fn: () => void): void => {
      const t0 = performance.now();
      fn();
      const dt = performance.now() - t0;
      times.push(dt);
      max = Math.max(max, dt);
      accesses++;
    };
    const before = m.gic.its(0).stats().commands;
    // Commands one guest access ran: at most one budget's worth (each costs at least CMD_COST).
    let most = 0;
    const ran = (fn: () => void): void => {
      const c0 = m.gic.its(0).stats().commands;
      timed(fn);
      most = Math.max(most, m.gic.its(0).stats().commands - c0);
    };
    ran(() => cpu.writeq(m.its.base + GITS_CWRITER, q(at)));
    let creadr = -1;
    for (let polls = 0; polls < 100000 && creadr !== at; polls++) {
      ran(() => {
        creadr = Number(cpu.readq(m.its.base + GITS_CREADR));
      });
    }
    assert.equal(creadr, at, 'CREADR reached CWRITER');
    assert.equal(m.gic.its(0).stats().commands - before, sent, 'every command ran');
    assert.equal(m.gic.its(0).errorCount(), 0);
    const sorted = times.slice().sort((a, b) => b - a);
    t.diagnostic(
      `slowest accesses (ms): ${sorted
        .slice(0, 8)
        .map((x) => x.toFixed(2))
        .join(' ')}; over 1 ms: ${times.filter((x) => x > 1).length}; first ${times
        .slice(0, 4)
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    t.diagnostic(`${sent} commands, ${accesses} guest accesses, the longest ${max.toFixed(3)} ms`);
    // The time itself is a benchmark's business (vgic adversarial reports per-access times); here
    // the structure that bounds it: the queue was split over many accesses, none ran more than
    // one budget of commands, and each of these commands costs what is mapped, not 2^16.
    assert.ok(most <= WORK_BUDGET / CMD_COST + 1, `one access ran ${most} commands`);
    assert.ok(
      accesses >= Math.ceil(sent / (WORK_BUDGET / CMD_COST + 1)),
      `${accesses} accesses for ${sent} commands`,
    );
    // The ITS still works: the last MAPTI of each device was remapped away; map one again.
    assert.ok(m.its.mapti(0, 1, 9500, 2));
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 0, eventid: 1 }), 'delivered');
    assert.equal(takeAll(m.cpus), '2:9500');
  });
});
