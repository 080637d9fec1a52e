/**
 * Translation-cache statistics (its/msi-stats.ts): hits, misses, fills and evictions per ITS,
 * counted in per-thread slots and summed by the dump; the cache hit rate in dumpState(),
 * dumpStateText() and qtest's dump; across worker threads no count is lost (every MSI an
 * injector sent is a hit or a miss); a snapshot keeps the totals in one unowned slot and a
 * restore refuses anything else.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runLpiStress } from '../src/bench/lpi-stress.ts';
import { QtestSession } from '../src/cli/qtest.ts';
import { Vgic, VgicError } from '../src/index.ts';
import { H_CHECKSUM, MS_HEAD, MS_OWNER, MSI_STAT_SLOTS, stateChecksum } from '../src/state/layout.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const stats = (gic: Vgic, k = 0) => gic.dumpState({ maxDevices: 0, maxLpis: 0 }).its[k].cache.stats;

describe('translation-cache statistics', () => {
  for (const shared of [true, false]) {
    test(`hits, misses, fills and the hit rate count each MSI once (${shared ? 'shared' : 'unshared'})`, () => {
      const m = lpiMachine({ shared });
      m.its.createDevice(1, 4);
      assert.ok(m.its.mapc(0, 0));
      for (let e = 0; e < 4; e++) assert.ok(m.its.mapti(1, e, 8192 + e, 0));
      assert.equal(stats(m.gic).hitRate, null, 'no translation yet');
      const msi = (e: number) => m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: e });
      for (let e = 0; e < 4; e++) assert.equal(msi(e), 'delivered');
      let st = stats(m.gic);
      assert.deepEqual(
        { hits: st.hits, misses: st.misses, fills: st.fills, evictions: st.evictions },
        { hits: 0, misses: 4, fills: 4, evictions: 0 },
      );
      takeAll(m.cpus);
      for (let i = 0; i < 12; i++) msi(i % 4);
      st = stats(m.gic);
      assert.equal(st.hits, 12);
      assert.equal(st.misses, 4);
      assert.equal(st.misses, m.gic.its(0).stats().cacheMisses, 'the ITS counts the same walks');
      assert.equal(st.hitRate, 12 / 16);
      // A failed translation walks and is not cached: a miss, no fill.
      assert.equal(msi(3000), 'blocked');
      st = stats(m.gic);
      assert.equal(st.misses, 5);
      assert.equal(st.fills, 4);
      const text = m.gic.dumpStateText();
      assert.match(text, /cache hit rate: 70\.59 % {2}hits 12 {2}misses 5 {2}fills 4 {2}evictions 0/);
    });
  }

  test('a fill that replaces a live translation is an eviction', () => {
    // Two entries: four events of one device cannot all stay.
    const m = lpiMachine({ itsCacheSize: 2 });
    m.its.createDevice(1, 4);
    assert.ok(m.its.mapc(0, 0));
    for (let e = 0; e < 4; e++) assert.ok(m.its.mapti(1, e, 8192 + e, 0));
    for (let e = 0; e < 4; e++) m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: e });
    const st = stats(m.gic);
    assert.equal(st.fills, 4);
    assert.equal(st.evictions, 2, 'events 2 and 3 took the entries of 0 and 1');
  });

  test('the baseline global LRU cache counts hits, fills and evictions too', () => {
    const m = lpiMachine({ vcpus: 1, translationCache: 'global-lru' });
    m.its.createDevice(1, 5);
    assert.ok(m.its.mapc(0, 0));
    // 16 entries per vCPU: 17 events evict the least recently used one.
    for (let e = 0; e < 17; e++) assert.ok(m.its.mapti(1, e, 8192 + e, 0));
    for (let e = 0; e < 17; e++) m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: e });
    m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: 16 });
    const st = stats(m.gic);
    assert.deepEqual(
      { hits: st.hits, misses: st.misses, fills: st.fills, evictions: st.evictions },
      { hits: 1, misses: 17, fills: 17, evictions: 1 },
    );
  });

  test('qtest: msi and dump show the cache hit rate', () => {
    const m = lpiMachine();
    m.its.createDevice(1, 2);
    assert.ok(m.its.mapc(0, 0));
    assert.ok(m.its.mapti(1, 0, 8192, 0));
    const q = new QtestSession(m.gic);
    const db = `0x${m.its.doorbell.toString(16)}`;
    assert.equal(q.execute(`msi ${db} 1 0`), 'OK delivered');
    assert.equal(q.execute(`msi ${db} 1 0`), 'OK delivered');
    assert.match(
      q.execute('dump'),
      /# cache hit rate: 50\.00 % {2}hits 1 {2}misses 1 {2}fills 1 {2}evictions 0/,
    );
    const j = JSON.parse(q.execute('dump json').slice(3));
    assert.equal(j.its[0].cache.stats.hitRate, 0.5);
  });

  test('worker threads: every MSI the injectors sent is counted once, as a hit or a miss', async () => {
    let gic: Vgic | undefined;
    const r = await runLpiStress({
      vcpus: 2,
      devices: 3,
      events: 8,
      iterations: 200,
      injectorThreads: 2,
      onGic: async (g) => {
        gic = g;
        return undefined;
      },
    });
    assert.ok(gic !== undefined);
    assert.equal(r.failed, 0);
    const st = stats(gic);
    // Injections from the guest's set-up thread (INT commands) are no MSIs: only signalMsi/injectMsi count.
    assert.equal(st.hits + st.misses, r.delivered + r.coalesced + r.failed, 'no count lost or doubled');
    assert.ok(st.hits > st.misses, `hits ${st.hits}, misses ${st.misses}`);
    // Two injector threads (and perhaps a vCPU thread for set-up walks) own slots: more than one.
    const s = (gic as unknown as { state: { msiStats: Uint32Array; msiStatStride: number } }).state;
    let owned = 0;
    for (let i = 0; i < MSI_STAT_SLOTS; i++) if (s.msiStats[i * s.msiStatStride + MS_OWNER] !== 0) owned++;
    assert.ok(owned >= 2, `${owned} slots owned`);
  });

  test('a snapshot keeps the totals; a restore goes on from them and refuses owned slots', () => {
    const m = lpiMachine();
    m.its.createDevice(1, 2);
    assert.ok(m.its.mapc(0, 0));
    assert.ok(m.its.mapti(1, 0, 8192, 0));
    for (let i = 0; i < 5; i++) m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: 0 });
    const before = stats(m.gic);
    assert.equal(before.hits, 4);
    const snap = m.gic.snapshot();
    const g2 = Vgic.restore(snap);
    assert.deepEqual(stats(g2), before, 'restored totals');
    const s2 = (g2 as unknown as { state: { msiStats: Uint32Array; msiStatStride: number } }).state;
    assert.equal(
      s2.msiStats[(MSI_STAT_SLOTS - 1) * s2.msiStatStride + MS_HEAD],
      4,
      'folded into the last slot',
    );
    // An owner word in a snapshot names a thread of another process: refused.
    const bad = snap.slice();
    const view = (g2 as unknown as { state: { msiStats: Uint32Array } }).state.msiStats;
    const at = view.byteOffset + MS_OWNER * 4;
    new DataView(bad.buffer).setUint32(at, 7, true);
    // Re-seal so that the checksum is right and the field check is what refuses.
    const sealed = resealed(bad);
    assert.throws(
      () => Vgic.restore(sealed),
      (e: unknown) => e instanceof VgicError && /translation-cache statistics slot 0 word 0/.test(e.message),
    );
  });
});

function resealed(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const w = new Int32Array(bytes.buffer);
  w[H_CHECKSUM] = stateChecksum(w);
  return bytes;
}

describe('acknowledgements and latency probes (what the inspector plots for worker threads)', () => {
  test('IARs count per vCPU; a probe times an MSI to the IAR that takes it, only while switched on', () => {
    const m = lpiMachine({ vcpus: 2 });
    m.its.createDevice(1, 2);
    assert.ok(m.its.mapc(0, 1));
    assert.ok(m.its.mapti(1, 0, 8200, 0));
    const msi = () => m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: 0 });
    msi();
    assert.equal(takeAll(m.cpus), '1:8200');
    assert.deepEqual(
      m.gic.dumpState({ maxLpis: 0 }).vcpus.map((v) => v.acks),
      [0, 1],
    );
    assert.deepEqual(m.gic.takeLatencies(), [], 'first call: the cursor starts');
    msi();
    takeAll(m.cpus);
    assert.deepEqual(m.gic.takeLatencies(), [], 'probes off: nothing timed');
    m.gic.setLatencyProbes(true);
    m.gic.takeLatencies();
    msi();
    takeAll(m.cpus);
    const lat = m.gic.takeLatencies();
    assert.equal(lat.length, 1);
    assert.ok(lat[0] >= 0 && lat[0] < 1000, `latency ${lat[0]} ms`);
    assert.deepEqual(m.gic.takeLatencies(), [], 'each latency once');
    // A probe whose LPI is never acknowledged on its vCPU is freed after a second.
    msi();
    const s = (m.gic as unknown as { state: { inspect: Int32Array; inspectTimes: Float64Array } }).state;
    const probe = s.inspect[2 + 1 * 2];
    assert.ok(probe > 0, 'armed on vCPU 1');
    s.inspectTimes[1 * 33] -= 5000;
    m.gic.takeLatencies();
    assert.equal(s.inspect[2 + 1 * 2], 0, 'stale probe freed');
    takeAll(m.cpus);
    assert.deepEqual(m.gic.takeLatencies(), []);
    assert.equal(m.gic.dumpState({ maxLpis: 0 }).vcpus[1].acks, 4);
    m.gic.setLatencyProbes(false);
    assert.equal(s.inspect[0], 0);
    // A snapshot carries no probe state.
    m.gic.setLatencyProbes(true);
    msi();
    const again = Vgic.restore(m.gic.snapshot());
    assert.equal(
      (again as unknown as { state: { inspect: Int32Array } }).state.inspect.every((w) => w === 0),
      true,
    );
  });
});
