/**
 * The ITS translation cache (kvm-vgic.md "Translation cache"): every invalidation trigger — MAPD
 * (remap and unmap), MAPC V=0, MOVI, DISCARD, MOVALL, GITS_CTLR disable, GICR_CTLR.EnableLPIs
 * clear — makes the next MSI walk the tables and follow the new mapping; what does not invalidate
 * (MAPC retarget, INV, INVALL, SYNC) still routes right; a tiny direct-mapped cache translates
 * every event; the generation wrap-around resurrects nothing; and a fast-check property runs
 * random MAPD/MAPC/MAPTI/MOVI/DISCARD/MSI sequences against a reference model of the mappings.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import './helpers/fc-seed.ts';
import {
  GITS_CTLR,
  type GicV3Guest,
  type GuestAllocator,
  type ItsGuest,
  type ItsGuestOptions,
  type LpiTables,
  type VCpu,
  type Vgic,
} from '../src/index.ts';
import { cacheInvalidate } from '../src/its/cache.ts';
import { itsInjectMsi, MSI_DELIVERED } from '../src/its/translate.ts';
import { type GicState, I_CACHE_GEN } from '../src/state/layout.ts';
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
  itt: number;
}

/** 4 vCPUs with LPIs on; collections 0..3 map to vCPUs 0..3; device 2 event 20 → LPI 8195 on vCPU 3. */
function setup(
  opts: { itsCacheSize?: number; ram?: number; init?: ItsGuestOptions; shared?: boolean } = {},
): Env {
  const m = lpiMachine({
    itsCacheSize: opts.itsCacheSize,
    ramSize: opts.ram,
    init: opts.init,
    shared: opts.shared,
  });
  const itt = m.its.createDevice(DEV, 8);
  for (let c = 0; c < 4; c++) assert.ok(m.its.mapc(c, c));
  assert.ok(m.its.mapti(DEV, EVENT, LPI, ICID));
  return { ...m, itt };
}

const take = takeAll;

const misses = (e: Env): number => e.gic.its(0).stats().cacheMisses;

/** Sends MSI (devid, eventid) and answers what happened: "v:intid", 'blocked' or 'busy'. */
function fire(e: Env, devid = DEV, eventid = EVENT): string {
  const r = e.gic.signalMsi({ doorbell: e.its.doorbell, devid, eventid });
  const got = take(e.cpus);
  if (r !== 'delivered') {
    assert.equal(got, '', `a ${r} MSI made nothing pending`);
    return r;
  }
  return got;
}

/**
 * MSI twice: the first must walk the tables (one miss) if `walk`, the second must hit (no miss).
 * Both must give `expect`. Blocked/busy MSIs are never cached, so each of them walks.
 */
function twice(e: Env, expect: string, walk = true): void {
  const m0 = misses(e);
  assert.equal(fire(e), expect, 'first MSI');
  assert.equal(
    misses(e) - m0,
    walk ? 1 : 0,
    walk ? 'the first MSI walked the tables' : 'the first MSI hit the cache',
  );
  const m1 = misses(e);
  assert.equal(fire(e), expect, 'repeat MSI');
  const cached = expect !== 'blocked' && expect !== 'busy';
  assert.equal(
    misses(e) - m1,
    cached ? 0 : 1,
    cached ? 'the repeat hit the cache' : 'a failure is not cached',
  );
}

/** A warm cache: (2, 20) was translated and is cached. */
function warm(e: Env): void {
  twice(e, `${TARGET}:${LPI}`);
}

describe('translation-cache invalidation triggers', () => {
  test('MAPD remap to a new ITT with a different LPI', () => {
    const e = setup();
    warm(e);
    const itt2 = e.its.createDevice(DEV, 8);
    assert.notEqual(itt2, e.itt);
    twice(e, 'blocked'); // the new ITT is empty
    assert.ok(e.its.mapti(DEV, EVENT, 8300, 1));
    twice(e, '1:8300');
  });

  test('MAPD remap to the same ITT: the old event is gone until it is mapped again', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.mapd(DEV, e.itt, 8));
    twice(e, 'blocked');
    assert.ok(e.its.mapti(DEV, EVENT, 8301, 0));
    twice(e, '0:8301');
  });

  test('MAPD unmap (V=0)', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.mapd(DEV, e.itt, 8, false));
    twice(e, 'blocked');
  });

  test('MAPC V=0 of the event’s collection; MAPC V=1 routes it again', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.mapc(ICID, TARGET, false));
    twice(e, 'blocked');
    assert.ok(e.its.mapc(ICID, 2));
    twice(e, `2:${LPI}`);
  });

  test('MOVI to another collection', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.movi(DEV, EVENT, 1));
    twice(e, `1:${LPI}`);
    // And back, through a collection that is later retargeted.
    assert.ok(e.its.movi(DEV, EVENT, 0));
    twice(e, `0:${LPI}`);
  });

  test('DISCARD', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.discard(DEV, EVENT));
    twice(e, 'blocked');
    // The event can be mapped again, to a new LPI.
    assert.ok(e.its.mapti(DEV, EVENT, 8302, 2));
    twice(e, '2:8302');
  });

  test('MOVALL RD3 → RD0', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.movall(TARGET, 0));
    twice(e, `0:${LPI}`);
  });

  test('MOVALL moves only the LPIs that target RD1', () => {
    const e = setup();
    assert.ok(e.its.mapti(DEV, 21, 8310, 1));
    warm(e);
    assert.equal(fire(e, DEV, 21), '1:8310');
    assert.ok(e.its.movall(TARGET, 0));
    assert.equal(fire(e, DEV, 21), '1:8310', 'an LPI on RD1 stays');
    twice(e, `0:${LPI}`);
  });

  test('GITS_CTLR disable (busy) and re-enable', () => {
    const e = setup();
    warm(e);
    e.its.disable();
    twice(e, 'busy');
    e.its.enable();
    twice(e, `${TARGET}:${LPI}`);
  });

  test('GITS_CTLR disable + enable with no MSI in between still empties the cache', () => {
    const e = setup();
    warm(e);
    e.its.disable();
    e.its.enable();
    twice(e, `${TARGET}:${LPI}`);
  });

  test('GICR_CTLR.EnableLPIs clear (busy) and set on the target redistributor', () => {
    const e = setup();
    warm(e);
    e.lpi.disable(e.guests[TARGET].rd);
    twice(e, 'busy');
    e.lpi.enable(e.guests[TARGET].rd);
    twice(e, `${TARGET}:${LPI}`);
  });

  test('GICR_CTLR.EnableLPIs cleared on another redistributor invalidates every ITS cache too', () => {
    const e = setup();
    warm(e);
    e.lpi.disable(e.guests[0].rd);
    twice(e, `${TARGET}:${LPI}`);
    e.lpi.enable(e.guests[0].rd);
    twice(e, `${TARGET}:${LPI}`, false);
  });
});

describe('what does not invalidate still routes right', () => {
  test('MAPC retarget (V=1 on a mapped collection): the cached translation follows the LPI', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.mapc(ICID, 1));
    twice(e, `1:${LPI}`, false);
  });

  test('INV, INVALL, SYNC, CLEAR and a successful INT keep the cache', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.inv(DEV, EVENT));
    assert.ok(e.its.invall(ICID));
    assert.ok(e.its.sync(TARGET));
    assert.ok(e.its.clear(DEV, EVENT));
    assert.ok(e.its.int(DEV, EVENT));
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`);
    twice(e, `${TARGET}:${LPI}`, false);
  });

  test('INV after a property change applies to cached translations', () => {
    const e = setup();
    warm(e);
    e.lpi.setConfig(LPI, 0xa0, false);
    assert.ok(e.its.inv(DEV, EVENT));
    const m = misses(e);
    assert.equal(e.gic.signalMsi({ doorbell: e.its.doorbell, devid: DEV, eventid: EVENT }), 'delivered');
    assert.equal(misses(e), m, 'a cache hit');
    assert.equal(take(e.cpus), '', 'a disabled LPI is not signalled');
    e.lpi.setConfig(LPI, 0xa0, true);
    assert.ok(e.its.inv(DEV, EVENT));
    assert.equal(take(e.cpus), `${TARGET}:${LPI}`, 'the latched MSI arrives once enabled');
  });

  test('a failing command does not disturb the cache', () => {
    const e = setup();
    warm(e);
    assert.ok(e.its.movi(DEV, 99, 1)); // E_ITS_MOVI_UNMAPPED_INTERRUPT
    assert.ok(e.its.discard(DEV, 99)); // E_ITS_DISCARD_UNMAPPED_INTERRUPT
    assert.equal(e.gic.its(0).errorCount(), 2);
    twice(e, `${TARGET}:${LPI}`, false);
  });
});

describe('cache capacity and generations', () => {
  test('a 4-entry cache translates each of 64 events on two devices correctly', () => {
    const e = setup({ itsCacheSize: 4 });
    assert.ok(e.its.createDevice(DEV, 6));
    e.its.createDevice(3, 6);
    const expect = (d: number, ev: number): string => `${(ev + d) % 4}:${8192 + 200 + d * 64 + ev}`;
    for (const d of [DEV, 3]) {
      for (let ev = 0; ev < 64; ev++) assert.ok(e.its.mapti(d, ev, 8192 + 200 + d * 64 + ev, (ev + d) % 4));
    }
    for (let round = 0; round < 3; round++) {
      for (let ev = 0; ev < 64; ev++) {
        for (const d of [DEV, 3])
          assert.equal(fire(e, d, ev), expect(d, ev), `round ${round} dev ${d} ev ${ev}`);
      }
    }
    // A working set of one fits: the same event repeated hits.
    for (let ev = 0; ev < 64; ev += 7) {
      assert.equal(fire(e, 3, ev), expect(3, ev));
      const m = misses(e);
      assert.equal(fire(e, 3, ev), expect(3, ev));
      assert.equal(misses(e), m);
    }
    // Everything still follows a MOVI (an invalidation) on the small cache.
    assert.ok(e.its.movi(3, 5, 0));
    for (let ev = 0; ev < 64; ev++) {
      assert.equal(fire(e, 3, ev), ev === 5 ? `0:${8192 + 200 + 3 * 64 + 5}` : expect(3, ev));
    }
  });

  test('the largest DeviceIDs and EventIDs (0x8000.., 0xffff) are cached and keyed exactly', () => {
    // 8 pages of device table: every one of the 2^16 DeviceIDs has a DTE.
    const e = setup({ itsCacheSize: 16, init: { deviceTablePages: 8 } });
    for (const d of [0x8000, 0xffff, 0x7fff]) e.its.createDevice(d, 16);
    const map: [number, number, number, number][] = [
      [0x8000, 0xffff, 9000, 0],
      [0xffff, 0xffff, 9001, 1],
      [0xffff, 0, 9002, 2],
      [0x7fff, 0xffff, 9003, 3],
      [0x8000, 0, 9004, 1],
    ];
    for (const [d, ev, intid, c] of map) assert.ok(e.its.mapti(d, ev, intid, c));
    assert.equal(e.gic.its(0).errorCount(), 0);
    for (let round = 0; round < 2; round++) {
      for (const [d, ev, intid, c] of map) {
        const m = misses(e);
        assert.equal(fire(e, d, ev), `${c}:${intid}`);
        assert.equal(fire(e, d, ev), `${c}:${intid}`);
        assert.ok(
          misses(e) - m <= 1,
          `dev 0x${d.toString(16)} ev 0x${ev.toString(16)}: the repeat hit the cache`,
        );
      }
    }
    assert.equal(fire(e, 0xffff, 1), 'blocked');
    assert.equal(fire(e, 0x8001, 0xffff), 'blocked');
  });

  test('a 1-entry cache still translates correctly', () => {
    const e = setup({ itsCacheSize: 1 });
    assert.ok(e.its.mapti(DEV, 21, 8400, 1));
    for (let i = 0; i < 5; i++) {
      assert.equal(fire(e), `${TARGET}:${LPI}`);
      assert.equal(fire(e, DEV, 21), '1:8400');
    }
  });

  test('the generation counter wrapping around resurrects no stale entry', () => {
    const e = setup({ itsCacheSize: 4 });
    const h = e.gic.its(0);
    warm(e);
    assert.ok(e.its.discard(DEV, EVENT)); // the cached entry is now stale
    for (let i = 0; i < 0x8000 + 10; i++) {
      h.writeReg(GITS_CTLR, 0, 4);
      h.writeReg(GITS_CTLR, 1, 4);
      if (i % 64 === 0 || i > 0x7ff0) {
        assert.equal(
          e.gic.signalMsi({ doorbell: e.its.doorbell, devid: DEV, eventid: EVENT }),
          'blocked',
          `after ${i + 1} invalidations`,
        );
      }
    }
    assert.equal(take(e.cpus), '');
    assert.ok(e.its.mapti(DEV, EVENT, 8303, 1));
    twice(e, '1:8303');
  });

  test('a lookup that read the generation while a wrap cleared the cache delivers no phantom LPI', () => {
    // The lock-free reader's view, made deterministic on one thread (an unshared state: the cache
    // code then uses plain loads and stores, which a Proxy sees): every generation the wrapping
    // invalidation publishes is recorded — a concurrent reader may load any of them — and after the
    // wrap an MSI's lookup is run with each as the generation it loaded. Before the fix the wrap
    // published 0 while the values were cleared to 0 with their keys left in place, so the reader
    // matched the cleared entry: LPI 8192 (value 0) was delivered and the MSI's own LPI lost.
    const e = setup({ shared: false });
    assert.ok(e.its.mapti(DEV, 21, 8192, 0)); // LPI 8192 is mapped: a phantom would be delivered
    const s = e.gic.state;
    const genAt = I_CACHE_GEN; // ITS 0
    s.its[genAt] = 0x7fff; // the next invalidation wraps
    twice(e, `${TARGET}:${LPI}`); // cached at the last generation before the wrap
    const published: number[] = [];
    let held = -1;
    const its = new Proxy(s.its, {
      get(t, p) {
        if (p === String(genAt) && held >= 0) {
          const g = held;
          held = -1; // the lookup's one load of the generation; the slow path reads the real one
          return g;
        }
        const v = Reflect.get(t, p, t);
        return typeof v === 'function' ? v.bind(t) : v;
      },
      set(t, p, v) {
        if (p === String(genAt)) published.push(v);
        return Reflect.set(t, p, v, t);
      },
    });
    const reader = Object.create(s, { its: { value: its } }) as GicState;
    cacheInvalidate(reader, 0);
    assert.equal(s.its[genAt], 1, 'the generation wrapped');
    assert.ok(published.length >= 1);
    for (const g of published) {
      held = g;
      const r = itsInjectMsi(reader, e.gic.memory, 0, DEV, EVENT);
      assert.equal(r, MSI_DELIVERED, `generation ${g} loaded during the wrap`);
      assert.equal(take(e.cpus), `${TARGET}:${LPI}`, `generation ${g} loaded during the wrap`);
    }
  });
});

// ---- The property: random command sequences against a reference model ----

type Op =
  | { k: 'mapd'; devid: number; valid: boolean }
  | { k: 'mapc'; icid: number; vcpu: number; valid: boolean }
  | { k: 'mapti'; devid: number; eventid: number; icid: number; variant: number }
  | { k: 'movi'; devid: number; eventid: number; icid: number }
  | { k: 'discard'; devid: number; eventid: number }
  | { k: 'msi'; devid: number; eventid: number };

const N_DEV = 2;
const EVENT_BITS = 3; // 8 events per device; eventid 8 exercises E_ITS_MAPTI_ID_OOR
const N_COLL = 3;

const devid = fc.integer({ min: 0, max: N_DEV - 1 });
/** Mostly a few events (so MSIs meet mappings), sometimes one beyond the ITT (E_ITS_MAPTI_ID_OOR). */
const eventid = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: 2 ** EVENT_BITS }), weight: 1 },
);
const icid = fc.integer({ min: 0, max: N_COLL - 1 });
/** Mostly V=1: unmapping is the rarer event. */
const valid = fc.oneof(
  { arbitrary: fc.constant(true), weight: 3 },
  { arbitrary: fc.constant(false), weight: 1 },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('mapd' as const), devid, valid }), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant('mapc' as const),
      icid,
      vcpu: fc.integer({ min: 0, max: 3 }),
      valid,
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('mapti' as const),
      devid,
      eventid,
      icid,
      variant: fc.integer({ min: 0, max: 3 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ k: fc.constant('movi' as const), devid, eventid, icid }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('discard' as const), devid, eventid }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('msi' as const), devid, eventid }), weight: 6 },
);

/** Each (devid, eventid) gets its own INTIDs (no two live ITEs share an LPI): 4 variants each. */
const intidOf = (d: number, ev: number, variant: number): number => 8192 + 64 + (d * 16 + ev) * 4 + variant;

class Model {
  /** devid → (eventid → [intid, icid]); absent: device unmapped. */
  devices = new Map<number, Map<number, [number, number]>>();
  /** icid → vCPU; absent: collection unmapped. */
  colls = new Map<number, number>();

  /** Applies a command; answers whether it fails with an E_ITS error. */
  apply(op: Exclude<Op, { k: 'msi' }>): boolean {
    switch (op.k) {
      case 'mapd':
        if (op.valid) this.devices.set(op.devid, new Map());
        else this.devices.delete(op.devid);
        return false;
      case 'mapc':
        if (op.valid) this.colls.set(op.icid, op.vcpu);
        else this.colls.delete(op.icid);
        return false;
      case 'mapti': {
        const dev = this.devices.get(op.devid);
        if (dev === undefined || op.eventid >= 2 ** EVENT_BITS) return true;
        if (!dev.has(op.eventid)) dev.set(op.eventid, [intidOf(op.devid, op.eventid, op.variant), op.icid]);
        return false;
      }
      case 'movi': {
        const ite = this.devices.get(op.devid)?.get(op.eventid);
        if (ite === undefined || !this.colls.has(ite[1]) || !this.colls.has(op.icid)) return true;
        ite[1] = op.icid;
        return false;
      }
      case 'discard': {
        const dev = this.devices.get(op.devid);
        const ite = dev?.get(op.eventid);
        if (ite === undefined || !this.colls.has(ite[1])) return true;
        dev?.delete(op.eventid);
        return false;
      }
    }
  }

  msi(d: number, ev: number): string {
    const ite = this.devices.get(d)?.get(ev);
    if (ite === undefined) return 'blocked';
    const v = this.colls.get(ite[1]);
    return v === undefined ? 'blocked' : `${v}:${ite[0]}`;
  }
}

describe('property: MSIs follow a reference model of the mappings', () => {
  test('random MAPD/MAPC/MAPTI/MOVI/DISCARD/MSI sequences', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 65536),
        fc.array(opArb, { minLength: 10, maxLength: 60, size: 'max' }),
        (cacheSize, ops) => {
          const e = setup({ itsCacheSize: cacheSize, ram: 16 << 20 });
          // Start with devices 0..N_DEV-1 mapped (device 2 remapped to 8 events) and collection c on
          // vCPU c (the set-up's collection 3 is left out of the model: it is never used).
          const model = new Model();
          for (let d = 0; d < N_DEV; d++) {
            e.its.createDevice(d, EVENT_BITS);
            model.apply({ k: 'mapd', devid: d, valid: true });
          }
          for (let c = 0; c < N_COLL; c++) model.apply({ k: 'mapc', icid: c, vcpu: c, valid: true });
          const h = e.gic.its(0);
          for (const op of ops) {
            if (op.k === 'msi') {
              assert.equal(
                fire(e, op.devid, op.eventid),
                model.msi(op.devid, op.eventid),
                `MSI ${op.devid}/${op.eventid}`,
              );
              continue;
            }
            const errors = h.errorCount();
            let ok: boolean;
            switch (op.k) {
              case 'mapd':
                ok = op.valid
                  ? e.its.createDevice(op.devid, EVENT_BITS) > 0
                  : e.its.mapd(op.devid, 0, EVENT_BITS, false);
                break;
              case 'mapc':
                ok = e.its.mapc(op.icid, op.vcpu, op.valid);
                break;
              case 'mapti':
                ok = e.its.mapti(op.devid, op.eventid, intidOf(op.devid, op.eventid, op.variant), op.icid);
                break;
              case 'movi':
                ok = e.its.movi(op.devid, op.eventid, op.icid);
                break;
              case 'discard':
                ok = e.its.discard(op.devid, op.eventid);
                break;
            }
            assert.ok(ok, 'the command was consumed');
            const fails = model.apply(op);
            assert.equal(h.errorCount() - errors, fails ? 1 : 0, `${JSON.stringify(op)} fails: ${fails}`);
          }
          // Finally every (devid, eventid) answers as the model says.
          for (let d = 0; d < N_DEV; d++) {
            for (let ev = 0; ev < 2 ** EVENT_BITS; ev++)
              assert.equal(fire(e, d, ev), model.msi(d, ev), `final ${d}/${ev}`);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
