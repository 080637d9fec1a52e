/**
 * The baseline translation cache (translationCache: 'global-lru', its/global-cache.ts): one LRU
 * cache of 16 × vCPUs entries shared by every ITS behind one lock, as Linux v6.8-rc1. It must
 * deliver exactly what the per-ITS design delivers; hold 16 entries per vCPU and evict the least
 * recently used one; be emptied by every invalidation of any ITS; be rejected when misnamed; and be
 * the design a GIC attached to or restored from the same state reports.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sealSnapshot } from '../src/device/snapshot.ts';
import { ItsGuest, type TranslationCacheDesign, Vgic, VgicError } from '../src/index.ts';
import { GCE_ITS, GCE_WORDS } from '../src/state/layout.ts';
import { type LpiMachine, lpiMachine, takeAll } from './helpers/its-machine.ts';

const DEV = 2;
/** Vgic.injectMsi's answers. */
const MSI_DELIVERED = 1;
const MSI_COALESCED = 2;
const MSI_BLOCKED = 0;
const MSI_BUSY = -1;

const misses = (m: LpiMachine, k = 0): number => m.gic.its(k).stats().cacheMisses;

/** Valid entries of the global cache (they form the head of the MRU order). */
function cached(m: LpiMachine): number {
  const s = m.gic.state;
  let n = 0;
  while (n < s.globalCacheSize && s.globalCacheEntry[s.globalCacheOrder[n] * GCE_WORDS + GCE_ITS] !== 0) n++;
  return n;
}

/** MSI (devid, eventid) to ITS 0, then the acks: "v:intid", 'blocked' or 'busy', and whether it missed. */
function fire(m: LpiMachine, eventid: number, devid = DEV, doorbell = m.its.doorbell): string {
  const r = m.gic.injectMsi(doorbell, devid, eventid);
  const got = takeAll(m.cpus);
  if (r === MSI_BLOCKED || r === MSI_BUSY) {
    assert.equal(got, '', 'a refused MSI makes nothing pending');
    return r === MSI_BLOCKED ? 'blocked' : 'busy';
  }
  assert.equal(r, MSI_DELIVERED);
  return got;
}

/** fire, asserting whether the translation walked the tables (missed the cache). */
function fireExpect(m: LpiMachine, eventid: number, expect: string, miss: boolean, why: string): void {
  const m0 = misses(m);
  assert.equal(fire(m, eventid), expect, why);
  assert.equal(misses(m) - m0, miss ? 1 : 0, `${why}: ${miss ? 'a miss' : 'a hit'}`);
}

const global = (o: Parameters<typeof lpiMachine>[0] = {}): LpiMachine =>
  lpiMachine({ ...o, translationCache: 'global-lru' });

/** One device, collection c → vCPU c, events 0..n-1 → LPI 8292 + ev on collection ev % nVcpus. */
function mapEvents(m: LpiMachine, n: number): void {
  m.its.createDevice(DEV, 6);
  for (let c = 0; c < m.cpus.length; c++) assert.ok(m.its.mapc(c, c));
  for (let ev = 0; ev < n; ev++) assert.ok(m.its.mapti(DEV, ev, 8292 + ev, ev % m.cpus.length));
}

const lpiOf = (m: LpiMachine, ev: number): string => `${ev % m.cpus.length}:${8292 + ev}`;

describe('global-lru delivers what per-its delivers', () => {
  /** A scripted run; each line: step, what injectMsi answered, what the vCPUs acknowledged, misses. */
  function script(design: TranslationCacheDesign): string[] {
    const m = lpiMachine({ translationCache: design });
    assert.equal(m.gic.translationCache, design);
    const out: string[] = [];
    const msi = (label: string, ev: number, dev = DEV): void => {
      const r = m.gic.injectMsi(m.its.doorbell, dev, ev);
      out.push(`${label}: ${r} [${takeAll(m.cpus)}] misses=${misses(m)}`);
    };
    const cmd = (label: string, ok: boolean): void => {
      assert.ok(ok, label);
      out.push(`${label} [${takeAll(m.cpus)}]`);
    };
    m.its.createDevice(DEV, 8);
    for (let c = 0; c < 4; c++) cmd(`MAPC ${c}`, m.its.mapc(c, c));
    cmd('MAPTI 20', m.its.mapti(DEV, 20, 8195, 3));
    cmd('MAPTI 21', m.its.mapti(DEV, 21, 8196, 1));
    msi('msi 20', 20);
    msi('msi 20 again', 20);
    msi('msi 21', 21);
    // Two MSIs before the ack: the second merges into the pending state.
    const a = m.gic.injectMsi(m.its.doorbell, DEV, 20);
    const b = m.gic.injectMsi(m.its.doorbell, DEV, 20);
    out.push(`msi 20 twice: ${a},${b} [${takeAll(m.cpus)}] misses=${misses(m)}`);
    cmd('INT 21', m.its.int(DEV, 21));
    cmd('DISCARD 21', m.its.discard(DEV, 21));
    msi('msi 21 discarded', 21);
    cmd('MOVI 20 → 1', m.its.movi(DEV, 20, 1));
    msi('msi 20 moved', 20);
    cmd('MAPC 1 → RD2', m.its.mapc(1, 2));
    msi('msi 20 retargeted', 20);
    cmd('MAPC 1 V=0', m.its.mapc(1, 2, false));
    msi('msi 20 collection unmapped', 20);
    cmd('MAPC 1 → RD0', m.its.mapc(1, 0));
    msi('msi 20 collection remapped', 20);
    msi('msi unknown device', 0, 7);
    m.its.disable();
    msi('msi 20 ITS disabled', 20);
    m.its.enable();
    msi('msi 20 ITS enabled', 20);
    cmd('MAPD unmap', m.its.mapd(DEV, 0, 8, false));
    msi('msi 20 device unmapped', 20);
    m.its.createDevice(DEV, 8);
    cmd('MAPTI 20 again', m.its.mapti(DEV, 20, 8197, 2));
    msi('msi 20 remapped', 20);
    msi('msi 20 remapped again', 20);
    assert.equal(m.gic.its(0).errorCount(), 0);
    return out;
  }

  test('a scripted MAPD/MAPC/MAPTI/MSI/INT/DISCARD/MOVI sequence: same answers, acks and misses', () => {
    const perIts = script('per-its');
    const globalLru = script('global-lru');
    assert.deepEqual(globalLru, perIts);
    // And both are right (not merely alike).
    const msis = perIts.filter((l) => l.startsWith('msi') || l.startsWith('INT'));
    assert.deepEqual(msis, [
      'msi 20: 1 [3:8195] misses=1',
      'msi 20 again: 1 [3:8195] misses=1',
      'msi 21: 1 [1:8196] misses=2',
      'msi 20 twice: 1,2 [3:8195] misses=2',
      'INT 21 [1:8196]',
      'msi 21 discarded: 0 [] misses=3',
      'msi 20 moved: 1 [1:8195] misses=4',
      'msi 20 retargeted: 1 [2:8195] misses=4',
      'msi 20 collection unmapped: 0 [] misses=5',
      'msi 20 collection remapped: 1 [0:8195] misses=6',
      'msi unknown device: 0 [] misses=7',
      'msi 20 ITS disabled: -1 [] misses=8',
      'msi 20 ITS enabled: 1 [0:8195] misses=9',
      'msi 20 device unmapped: 0 [] misses=10',
      'msi 20 remapped: 1 [2:8197] misses=11',
      'msi 20 remapped again: 1 [2:8197] misses=11',
    ]);
  });

  test('global-lru translates through the global cache, not the per-ITS one', () => {
    const m = global();
    mapEvents(m, 8);
    for (let ev = 0; ev < 8; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `first MSI ${ev}`);
    for (let ev = 0; ev < 8; ev++) fireExpect(m, ev, lpiOf(m, ev), false, `second MSI ${ev}`);
    assert.equal(cached(m), 8);
    assert.ok(
      m.gic.state.itsCache.every((w) => w === 0),
      'the per-ITS cache is never filled',
    );
  });

  test('a coalesced MSI on a hit answers MSI_COALESCED and the LPI arrives once', () => {
    const m = global({ vcpus: 1 });
    mapEvents(m, 1);
    fireExpect(m, 0, '0:8292', true, 'warm');
    const m0 = misses(m);
    assert.equal(m.gic.injectMsi(m.its.doorbell, DEV, 0), MSI_DELIVERED);
    for (let i = 0; i < 5; i++) assert.equal(m.gic.injectMsi(m.its.doorbell, DEV, 0), MSI_COALESCED);
    assert.equal(misses(m), m0, 'all hits');
    assert.equal(takeAll(m.cpus), '0:8292');
  });
});

describe('capacity 16 × vCPUs, least recently used out', () => {
  test('1 vCPU: 16 entries hold 16 events; a 17th evicts the least recently used', () => {
    const m = global({ vcpus: 1 });
    assert.equal(m.gic.state.globalCacheSize, 16);
    mapEvents(m, 17);
    for (let ev = 0; ev < 16; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `fill ${ev}`);
    for (let ev = 0; ev < 16; ev++) fireExpect(m, ev, lpiOf(m, ev), false, `16 fit: ${ev}`);
    fireExpect(m, 16, lpiOf(m, 16), true, 'the 17th event');
    assert.equal(cached(m), 16);
    fireExpect(m, 0, lpiOf(m, 0), true, 'event 0 was the least recently used: evicted');
    fireExpect(m, 16, lpiOf(m, 16), false, 'the 17th stayed');
  });

  test('per-its keeps the 17th-event case cached (the comparison the test above relies on)', () => {
    const m = lpiMachine({ vcpus: 1 });
    mapEvents(m, 17);
    for (let ev = 0; ev < 17; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `fill ${ev}`);
    fireExpect(m, 0, lpiOf(m, 0), false, 'event 0 still cached');
  });

  test('re-touching an entry makes it most recently used: the next eviction takes another', () => {
    const m = global({ vcpus: 1 });
    mapEvents(m, 17);
    for (let ev = 0; ev < 16; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `fill ${ev}`);
    fireExpect(m, 0, lpiOf(m, 0), false, 're-touch event 0');
    fireExpect(m, 16, lpiOf(m, 16), true, 'the 17th event evicts event 1, not 0');
    fireExpect(m, 0, lpiOf(m, 0), false, 'event 0 kept');
    fireExpect(m, 1, lpiOf(m, 1), true, 'event 1 evicted');
  });

  test('17 events cycled through 16 entries miss every time (the LRU cliff)', () => {
    const m = global({ vcpus: 1 });
    mapEvents(m, 17);
    for (let round = 0; round < 3; round++) {
      for (let ev = 0; ev < 17; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `round ${round} event ${ev}`);
    }
  });

  test('2 vCPUs: 32 entries', () => {
    const m = global({ vcpus: 2 });
    assert.equal(m.gic.state.globalCacheSize, 32);
    mapEvents(m, 33);
    for (let ev = 0; ev < 32; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `fill ${ev}`);
    for (let ev = 0; ev < 32; ev++) fireExpect(m, ev, lpiOf(m, ev), false, `32 fit: ${ev}`);
    fireExpect(m, 32, lpiOf(m, 32), true, 'the 33rd');
    fireExpect(m, 0, lpiOf(m, 0), true, 'evicted');
  });
});

describe('every invalidation empties the global cache; the next MSI follows the new mapping', () => {
  const DEV_EV = 5;
  const LPI = 8292 + DEV_EV;
  /** 4 vCPUs, events 0..7 mapped (event 5 → LPI 8297 on vCPU 1), all cached. */
  function warm(): LpiMachine {
    const m = global();
    mapEvents(m, 8);
    for (let ev = 0; ev < 8; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `warm ${ev}`);
    assert.equal(cached(m), 8);
    return m;
  }

  test('DISCARD', () => {
    const m = warm();
    assert.ok(m.its.discard(DEV, DEV_EV));
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, 'blocked', true, 'discarded');
    fireExpect(m, 0, lpiOf(m, 0), true, 'another event walks again');
    assert.ok(m.its.mapti(DEV, DEV_EV, 8400, 2));
    fireExpect(m, DEV_EV, '2:8400', true, 'mapped again');
    fireExpect(m, DEV_EV, '2:8400', false, 'and cached');
  });

  test('MAPD unmap', () => {
    const m = warm();
    assert.ok(m.its.mapd(DEV, 0, 6, false));
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, 'blocked', true, 'device unmapped');
    fireExpect(m, DEV_EV, 'blocked', true, 'a failure is not cached');
  });

  test('MOVI', () => {
    const m = warm();
    assert.ok(m.its.movi(DEV, DEV_EV, 3));
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, `3:${LPI}`, true, 'moved');
    fireExpect(m, DEV_EV, `3:${LPI}`, false, 'cached');
  });

  test('MAPC V=0, then V=1 to another redistributor', () => {
    const m = warm();
    assert.ok(m.its.mapc(1, 1, false));
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, 'blocked', true, 'collection unmapped');
    assert.ok(m.its.mapc(1, 2));
    fireExpect(m, DEV_EV, `2:${LPI}`, true, 'collection remapped');
    fireExpect(m, DEV_EV, `2:${LPI}`, false, 'cached');
  });

  test('GITS_CTLR disable', () => {
    const m = warm();
    m.its.disable();
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, 'busy', true, 'ITS disabled');
    m.its.enable();
    fireExpect(m, DEV_EV, `1:${LPI}`, true, 'enabled again');
    fireExpect(m, DEV_EV, `1:${LPI}`, false, 'cached');
  });

  test('GICR_CTLR.EnableLPIs cleared on a redistributor', () => {
    const m = warm();
    m.lpi.disable(m.guests[1].rd);
    assert.equal(cached(m), 0, 'emptied');
    fireExpect(m, DEV_EV, 'busy', true, 'target LPIs disabled');
    m.lpi.enable(m.guests[1].rd);
    fireExpect(m, DEV_EV, `1:${LPI}`, true, 'enabled again');
  });

  test('INV, SYNC and a MAPC retarget do not invalidate', () => {
    const m = warm();
    assert.ok(m.its.inv(DEV, DEV_EV));
    assert.ok(m.its.sync(1));
    assert.ok(m.its.mapc(1, 3));
    assert.equal(cached(m), 8);
    fireExpect(m, DEV_EV, `3:${LPI}`, false, 'a hit follows the retargeted LPI');
  });
});

describe('one cache for every ITS', () => {
  /** 1 vCPU (16 entries), two ITSes; the same DeviceID/EventID maps to LPI 8200 on ITS 0, 8201 on ITS 1. */
  function twoIts(design: TranslationCacheDesign) {
    const m = lpiMachine({ vcpus: 1, its: 2, redistBase: 0x080c0000, translationCache: design });
    const its1 = new ItsGuest(m.cpus[0], m.alloc, m.gic.itsBases[1]);
    its1.init();
    its1.enable();
    for (const its of [m.its, its1]) {
      its.createDevice(DEV, 6);
      assert.ok(its.mapc(0, 0));
    }
    for (let ev = 0; ev < 16; ev++) {
      assert.ok(m.its.mapti(DEV, ev, 8200 + 2 * ev, 0));
      assert.ok(its1.mapti(DEV, ev, 8201 + 2 * ev, 0));
    }
    return { m, its1 };
  }

  test('the ITS is part of the key: equal DeviceID/EventID on two ITSes do not alias', () => {
    const { m, its1 } = twoIts('global-lru');
    for (let i = 0; i < 2; i++) {
      assert.equal(fire(m, 3), '0:8206');
      assert.equal(fire(m, 3, DEV, its1.doorbell), '0:8207');
    }
    assert.equal(misses(m, 0), 1);
    assert.equal(misses(m, 1), 1);
  });

  test("ITS 1's translations evict ITS 0's: 16 entries are shared", () => {
    const { m, its1 } = twoIts('global-lru');
    for (let ev = 0; ev < 16; ev++) assert.equal(fire(m, ev), `0:${8200 + 2 * ev}`);
    assert.equal(misses(m, 0), 16);
    assert.equal(fire(m, 0, DEV, its1.doorbell), '0:8201');
    assert.equal(fire(m, 0), '0:8200');
    assert.equal(misses(m, 0), 17, "ITS 0's least recently used entry went to ITS 1");
  });

  test("an invalidation on ITS 1 drops ITS 0's entries too (per-its keeps them)", () => {
    for (const design of ['global-lru', 'per-its'] as const) {
      const { m, its1 } = twoIts(design);
      assert.equal(fire(m, 4), '0:8208');
      assert.equal(fire(m, 4, DEV, its1.doorbell), '0:8209');
      assert.ok(its1.discard(DEV, 4));
      const m0 = misses(m, 0);
      assert.equal(fire(m, 4), '0:8208', design);
      assert.equal(misses(m, 0) - m0, design === 'global-lru' ? 1 : 0, design);
    }
  });
});

describe('option and shared state', () => {
  test('an unknown translationCache is INVALID_CONFIG naming the allowed values', () => {
    for (const its of [1, 0]) {
      assert.throws(
        () => Vgic.create({ its, translationCache: 'lru' as TranslationCacheDesign }),
        (e: unknown) =>
          e instanceof VgicError &&
          e.code === 'INVALID_CONFIG' &&
          e.message.includes("'per-its'") &&
          e.message.includes("'global-lru'") &&
          e.message.includes('lru'),
      );
    }
  });

  test('default per-its; global-lru without an ITS is accepted and ignored', () => {
    assert.equal(Vgic.create({ its: 1 }).translationCache, 'per-its');
    assert.equal(Vgic.create({ its: 1, translationCache: 'per-its' }).state.globalCacheSize, 0);
    const noIts = Vgic.create({ translationCache: 'global-lru' });
    assert.equal(noIts.translationCache, 'per-its');
    assert.equal(noIts.state.globalLru, false);
  });

  test('Vgic.attach of the buffer reports the same design and shares the one cache', () => {
    const m = global({ vcpus: 2 });
    mapEvents(m, 4);
    fireExpect(m, 1, lpiOf(m, 1), true, 'warm');
    const other = Vgic.attach(m.gic.state.buffer);
    assert.equal(other.translationCache, 'global-lru');
    assert.equal(other.state.globalLru, true);
    assert.equal(other.state.globalCacheSize, 32);
    // The attached GIC has no RAM: only a hit in the shared cache can translate.
    assert.equal(other.injectMsi(m.its.doorbell, DEV, 1), MSI_DELIVERED);
    assert.equal(misses(m), 1, 'a hit through the attached GIC');
    assert.equal(takeAll(m.cpus), lpiOf(m, 1));
    assert.equal(Vgic.attach(lpiMachine({ vcpus: 2 }).gic.state.buffer).translationCache, 'per-its');
  });

  test('snapshot/restore keeps the design and the cache; a broken MRU order is rejected', () => {
    const m = global({ vcpus: 1 });
    mapEvents(m, 3);
    for (let ev = 0; ev < 3; ev++) fireExpect(m, ev, lpiOf(m, ev), true, `warm ${ev}`);
    const bytes = m.gic.snapshot();
    const copy = Vgic.restore(bytes, { shared: false });
    assert.equal(copy.translationCache, 'global-lru');
    assert.deepEqual(Array.from(copy.state.globalCacheOrder), Array.from(m.gic.state.globalCacheOrder));
    assert.equal(copy.injectMsi(m.its.doorbell, DEV, 2), MSI_DELIVERED, 'a hit: the copy has no RAM');
    const order = m.gic.state.globalCacheOrder;
    const bad = bytes.slice();
    new Int32Array(bad.buffer, order.byteOffset, order.length)[1] = order[0];
    sealSnapshot(bad.buffer); // a valid checksum: the field check must catch it
    assert.throws(
      () => Vgic.restore(bad),
      (e: unknown) => e instanceof VgicError && /global translation-cache order/.test(e.message),
    );
  });
});
