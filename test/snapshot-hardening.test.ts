/**
 * Snapshot format v2 (issue 13, defect 1): corrupt snapshots are refused with a VgicError or
 * restore a GIC that holds every invariant and keeps working. Named regressions first, then 10^4
 * seeded mutants of snapshots of GICs in interesting states.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { prng } from '../src/bench/prng.ts';
import { FLAG_VIRTUAL_TIME } from '../src/core/clock.ts';
import { sealSnapshot } from '../src/device/snapshot.ts';
import {
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CVAL_EL0,
  CNTVCT_EL0,
  GITS_BASER_HI_VALID,
  GITS_CBASER,
  GITS_CMD_MAPD,
  GITS_CREADR,
  GITS_CWRITER,
  GicV3Guest,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_PMR_EL1,
  PPI_VTIMER,
  Vgic,
  VgicError,
} from '../src/index.ts';
import {
  C_EPOCH_MS,
  computeLayout,
  D_LPI_LOCK,
  H_FLAGS,
  H_ITS_CACHE,
  H_VERSION,
  I_BASER0_HI,
  I_CMD_LOCK,
  I_CREADR,
  I_CTLR,
  I_LOCK,
  ITS_DEVICES,
  V_VMCR,
  VCPU_STRIDE,
} from '../src/state/layout.ts';
import { checkInvariants } from './helpers/invariants.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const RAM_BASE = 0x40000000;
const RAM_SIZE = 2 << 20;

interface Saved {
  readonly name: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly ram?: ArrayBuffer;
  readonly nIts: number;
}

/**
 * Two vCPUs, an ITS with eight LPIs mapped over two collections, MSIs pending, SPIs pending
 * (edge and level, more than the 2 LRs), one active in an LR of vCPU 1, SGIs, the timer armed on
 * vCPU 0 and fired on vCPU 1.
 */
function itsState(): Saved {
  const m = lpiMachine({ vcpus: 2, lpiIdBits: 14, itsCacheSize: 64, ramSize: RAM_SIZE });
  const { gic, its, guests, cpus } = m;
  its.createDevice(2, 8);
  assert.ok(its.mapc(0, 0));
  assert.ok(its.mapc(1, 1));
  for (let i = 0; i < 8; i++) assert.ok(its.mapti(2, i, 8192 + i, i % 2));
  for (let i = 0; i < 6; i++) gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: 2, eventid: i });
  takeAll([cpus[0]]); // some LPIs delivered, others stay pending
  gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: 2, eventid: 0 });
  busyDevices(gic, guests);
  return {
    name: 'its',
    bytes: gic.snapshot(),
    ram: gic.memory.regions[0].bytes.buffer as ArrayBuffer,
    nIts: 1,
  };
}

/**
 * The ITS's books under load: six devices (one mapping nothing, one unmapped again, one with a
 * DISCARDed event), 150 ITEs over 130 LPIs (some LPIs named by two ITEs), four collections.
 */
function manyState(): Saved {
  const m = lpiMachine({ vcpus: 2, lpiIdBits: 14, itsCacheSize: 256, ramSize: RAM_SIZE * 2 });
  const { gic, its, cpus } = m;
  for (let c = 0; c < 4; c++) assert.ok(its.mapc(c, c % 2));
  let lpi = 8192;
  for (const [dev, bits, events] of [
    [1, 5, 32],
    [3, 5, 30],
    [7, 6, 40],
    [9, 4, 0],
    [12, 5, 28],
    [20, 5, 20],
  ] as const) {
    its.createDevice(dev, bits);
    for (let e = 0; e < events; e++) {
      // Every fifth ITE of device 12 names an LPI another device maps too.
      const intid = dev === 12 && e % 5 === 0 ? 8192 + e : lpi++;
      assert.ok(its.mapti(dev, e, intid, e % 4));
    }
  }
  assert.ok(its.discard(7, 3));
  assert.ok(its.mapd(20, 0, 5, false));
  for (let e = 0; e < 40; e += 3) gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: 7, eventid: e });
  takeAll([cpus[1]]);
  for (let e = 0; e < 30; e += 4) gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: 3, eventid: e });
  return {
    name: 'many',
    bytes: gic.snapshot(),
    ram: gic.memory.regions[0].bytes.buffer as ArrayBuffer,
    nIts: 1,
  };
}

function busyDevices(gic: Vgic, g: GicV3Guest[]): void {
  for (let i = 0; i < 5; i++) {
    const intid = 40 + i;
    g[0].setPriority(intid, 0x80 - 0x10 * i);
    g[0].setEdge(intid, i % 2 === 0);
    g[0].routeSpi(intid, g[1].affinity);
    g[0].enableIrq(intid);
    gic.irqLine(intid, true);
  }
  g[1].setPriority(3, 0x10);
  g[1].sendSgiSelf(3);
  g[0].sendSgi(5, [g[1].affinity]);
  assert.equal(gic.vcpu(1).readSysreg(ICC_IAR1_EL1), 3, 'SGI 3 active in an LR');
  for (const [v, ahead] of [
    [0, 1000n],
    [1, 0n],
  ] as const) {
    g[v].setPriority(PPI_VTIMER, 0x40);
    g[v].enableIrq(PPI_VTIMER);
    const c = gic.vcpu(v);
    c.writeSysreg64(CNTV_CVAL_EL0, c.readSysreg64(CNTVCT_EL0) + ahead);
    c.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    c.step();
  }
}

/** Three vCPUs, no ITS, real time: SPIs, SGIs, active interrupts, timers. */
function plainState(): Saved {
  const gic = Vgic.create({ vcpus: 3, lrs: 2, spis: 64 });
  const g = [0, 1, 2].map((i) => new GicV3Guest(gic.vcpu(i)));
  g[0].enableDistributor();
  for (const x of g) x.enableCpu();
  busyDevices(gic, g);
  g[2].sendSgiSelf(1);
  return { name: 'plain', bytes: gic.snapshot(), nIts: 0 };
}

function restore(x: Saved, bytes: Uint8Array, shared = false): Vgic {
  return Vgic.restore(bytes, { shared, ...(x.ram ? { ram: [{ base: RAM_BASE, buffer: x.ram }] } : {}) });
}

/** A copy of `x` edited through a scratch GIC's state, resealed so only the field checks can object. */
function edited(x: Saved, edit: (gic: Vgic) => void, extra = 0): Uint8Array<ArrayBuffer> {
  const scratch = restore(x, x.bytes);
  edit(scratch);
  const out = new Uint8Array(scratch.state.buffer.byteLength + extra);
  out.set(new Uint8Array(scratch.state.buffer));
  sealSnapshot(out.buffer);
  return out;
}

const devEv = (k: number, dev: number): number => k * ITS_DEVICES + dev;

/** Queues one command on ITS 0 of a restored GIC (the queue its guest programmed) and runs it. */
function sendCmd(gic: Vgic, dw0: bigint, dw1: bigint, dw2: bigint, dw3 = 0n): void {
  const c = gic.vcpu(0);
  const base = gic.its(0).base;
  const cbaser = c.readq(base + GITS_CBASER);
  const q = Number(cbaser & 0xffffffffff000n);
  const size = (Number(cbaser & 0xffn) + 1) * 4096;
  const w = Number(c.readq(base + GITS_CWRITER) & 0xfffe0n);
  for (const [i, d] of [dw0, dw1, dw2, dw3].entries()) c.writeq(q + w + 8 * i, d);
  c.writeq(base + GITS_CWRITER, BigInt((w + 32) % size));
  for (let i = 0; i < 100 && c.readq(base + GITS_CREADR) !== c.readq(base + GITS_CWRITER); i++);
}

const refused = (bytes: Uint8Array, x: Saved, re: RegExp) =>
  assert.throws(
    () => restore(x, bytes, true),
    (e) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT' && re.test(e.message),
  );

describe('snapshot format v2: named corruptions are refused', () => {
  const its = itsState();
  const plain = plainState();
  const many = manyState();

  test('the snapshots themselves restore and hold every invariant', () => {
    for (const x of [its, plain, many]) {
      const gic = restore(x, x.bytes, true);
      assert.deepEqual(checkInvariants(gic, { settled: true }), [], x.name);
    }
  });

  test('a stale its_lock (signalMsi would never return) and a stale cmd_lock (a GITS_CWRITER write would not)', () => {
    refused(
      edited(its, (g) => {
        g.state.its[I_LOCK] = 77;
      }),
      its,
      /its_lock of ITS 0 is held/,
    );
    refused(
      edited(its, (g) => {
        g.state.its[I_CMD_LOCK] = 77;
      }),
      its,
      /cmd_lock of ITS 0 is held/,
    );
  });

  test('a stale LPI store lock (the next MAPTI or DISCARD would never return)', () => {
    refused(
      edited(its, (g) => {
        g.state.dist[D_LPI_LOCK] = 77;
      }),
      its,
      /the LPI store lock is held/,
    );
  });

  test('irqTarget out of range', () => {
    for (const t of [2, 99, -2]) {
      refused(
        edited(its, (g) => {
          g.state.irqTarget[g.state.slotOf(0, 41)] = t;
        }),
        its,
        /SPI 41 routed to 0x1 targets vCPU/,
      );
    }
    refused(
      edited(its, (g) => {
        g.state.irqTarget[g.state.lpiSlot(8193)] = 5;
      }),
      its,
      /LPI 8193 targets vCPU 5/,
    );
  });

  test('irqIntid 5000 (IAR would return it)', () => {
    refused(
      edited(its, (g) => {
        g.state.irqIntid[g.state.slotOf(0, 42)] = 5000;
      }),
      its,
      /says INTID 5000, not 42/,
    );
  });

  test('clock -1e300: refused in real time, harmless in virtual time', () => {
    refused(
      edited(plain, (g) => {
        g.state.clock[C_EPOCH_MS] = -1e300;
      }),
      plain,
      /real-time clock epoch -1e\+300/,
    );
    refused(
      edited(plain, (g) => {
        g.state.clock[C_EPOCH_MS] = Number.NaN;
      }),
      plain,
      /clock epoch NaN/,
    );
    // In virtual time the word is no counter: CNTVCT stays what was saved.
    const saved = restore(its, its.bytes).vcpu(0).readSysreg64(CNTVCT_EL0);
    const gic = restore(
      its,
      edited(its, (g) => {
        g.state.clock[C_EPOCH_MS] = -1e300;
      }),
    );
    assert.equal(gic.vcpu(0).readSysreg64(CNTVCT_EL0), saved);
  });

  test('ICH_VMCR with unimplemented PMR bits (ICC_PMR_EL1 would read them)', () => {
    refused(
      edited(its, (g) => {
        g.state.vcpu[VCPU_STRIDE + V_VMCR] |= 0x07 << 24;
      }),
      its,
      /ICH_VMCR of vCPU 1 .* unimplemented bits/,
    );
    assert.equal(restore(its, its.bytes).readCpuSysreg(1, ICC_PMR_EL1) & 7, 0);
  });

  test('a larger buffer, a smaller declared cache, a truncated one', () => {
    refused(
      edited(its, () => {}, 8),
      its,
      /bytes, header says \d+; the geometry it declares needs exactly/,
    );
    refused(
      edited(its, (g) => {
        g.state.header[H_ITS_CACHE] = 32;
      }),
      its,
      /the geometry it declares needs exactly/,
    );
    refused(its.bytes.slice(0, its.bytes.length - 8), its, /the geometry it declares needs exactly/);
  });

  test('lpiMapped disagreeing with the references (a clear bit hides a mapped LPI from MAPC/MOVALL/INVALL)', () => {
    const s0 = restore(many, many.bytes).state;
    const mappedIdx = 5; // LPI 8197, mapped by device 1
    assert.ok(s0.irqLpiRef[mappedIdx] > 0);
    refused(
      edited(many, (g) => {
        g.state.lpiMapped[0] &= ~(1 << mappedIdx);
      }),
      many,
      /mapped-LPI bitmap word 0 is/,
    );
    const free = s0.nLpis - 1;
    assert.equal(s0.irqLpiRef[free], 0);
    refused(
      edited(many, (g) => {
        g.state.lpiMapped[free >>> 5] |= 1 << (free & 31);
      }),
      many,
      new RegExp(`mapped-LPI bitmap word ${free >>> 5} is`),
    );
  });

  test('itsDevEvents out of bounds or set for a device that is not mapped', () => {
    for (const n of [-1, 0x10001, 0x7fffffff]) {
      refused(
        edited(many, (g) => {
          g.state.itsDevEvents[devEv(0, 7)] = n;
        }),
        many,
        new RegExp(`device 7 of ITS 0 \\(mapped\\) counts ${n} ITEs`),
      );
    }
    for (const dev of [20, 2, 65535]) {
      refused(
        edited(many, (g) => {
          g.state.itsDevEvents[devEv(0, dev)] = 1;
        }),
        many,
        new RegExp(`device ${dev} of ITS 0 \\(not mapped\\) counts 1 ITEs`),
      );
    }
  });

  test('itsDevLive set while the device table is invalid, or references without one', () => {
    refused(
      edited(many, (g) => {
        g.state.its[I_CTLR] = 0;
        g.state.its[I_BASER0_HI] &= ~GITS_BASER_HI_VALID;
      }),
      many,
      /device 1 of ITS 0 is mapped without a valid device table/,
    );
    refused(
      edited(many, (g) => {
        g.state.its[I_CTLR] = 0;
        g.state.its[I_BASER0_HI] &= ~GITS_BASER_HI_VALID;
        g.state.itsDevLive.fill(0);
        g.state.itsDevEvents.fill(0);
      }),
      many,
      /ITS 0 holds references to LPI 8192 without a valid device table/,
    );
  });

  test('counts the ITT disagrees with, and live bits of unmapped DTEs, are tolerated: unmapping stays bounded and correct', () => {
    for (const edit of [
      (g: Vgic) => {
        g.state.itsDevEvents[devEv(0, 7)] = 1; // fewer than the ITT holds
      },
      (g: Vgic) => {
        g.state.itsDevEvents[devEv(0, 3)] = 0x10000; // more than its 32 events
      },
      (g: Vgic) => {
        g.state.itsDevLive[0] |= 1 << 2; // device 2: live bit, zero DTE in RAM
      },
    ]) {
      const gic = restore(many, edited(many, edit));
      assert.deepEqual(checkInvariants(gic, { settled: true }), []);
      for (const dev of [1, 2, 3, 7, 9, 12])
        gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: dev, eventid: 1 });
      for (const dev of [1, 2, 3, 7, 9, 12])
        sendCmd(gic, BigInt(GITS_CMD_MAPD) | (BigInt(dev) << 32n), 4n, 0n);
      for (let v = 0; v < gic.nVcpus; v++) gic.vcpu(v).step();
      assert.deepEqual(checkInvariants(gic), []);
      const again = gic.snapshot();
      const back = restore(many, again);
      assert.deepEqual(checkInvariants(back, { settled: true }), []);
      for (const dev of [1, 2, 3, 7, 9, 12]) assert.equal(back.state.itsDevEvents[devEv(0, dev)], 0);
    }
  });

  test('MAPTI after the guest cleared the ITE keeps the count within the ITT (it grew without bound)', () => {
    const m = lpiMachine({ vcpus: 1, lpiIdBits: 14, itsCacheSize: 64, ramSize: RAM_SIZE });
    assert.ok(m.its.mapc(0, 0));
    const itt = m.its.createDevice(4, 1); // 2 events
    for (let i = 0; i < 50; i++) {
      assert.ok(m.its.mapti(4, 0, 8192 + (i % 10), 0));
      m.cpus[0].writeq(itt, 0n); // behind the ITS's back
    }
    const s = m.gic.state;
    assert.ok(s.itsDevEvents[devEv(0, 4)] <= 2, `count ${s.itsDevEvents[devEv(0, 4)]}`);
    const gic = Vgic.restore(m.gic.snapshot(), {
      ram: [{ base: RAM_BASE, buffer: m.gic.memory.regions[0].bytes.buffer as ArrayBuffer }],
    });
    assert.deepEqual(checkInvariants(gic, { settled: true }), []);
  });

  test('a changed byte breaks the checksum; format v1 and unknown versions are named', () => {
    const flipped = its.bytes.slice();
    flipped[flipped.length - 1] ^= 1;
    refused(flipped, its, /checksum 0x[0-9a-f]+ does not match/);
    refused(
      edited(its, (g) => {
        g.state.header[H_VERSION] = 3;
      }),
      its,
      /snapshot format v1 \(vgic state version 3\) is not accepted/,
    );
    refused(
      edited(its, (g) => {
        g.state.header[H_VERSION] = 9;
      }),
      its,
      /state version 9, snapshot format 2 is not supported/,
    );
    assert.throws(
      () => Vgic.restore('x' as unknown as Uint8Array),
      (e) => e instanceof VgicError && /must be a Uint8Array, got x \(string\)/.test(e.message),
    );
  });
});

const BOUNDARY = [
  0, 1, -1, 2, 3, 0x7f, 0xff, 0x100, 5000, 0xffff, 0x10000, 0x7fffffff, -0x80000000, 1023, 8192,
];

/**
 * A mutant of `x`: 1-3 edits (a bit flip, or a word overwritten with a boundary value) in sections
 * picked uniformly (so the small, dense sections are hit as often as the large tables), or a
 * truncation or extension; resealed (checksum recomputed) in 4 of 5 cases.
 */
function mutant(x: Saved, rnd: () => number): { bytes: Uint8Array<ArrayBuffer>; sealed: boolean } {
  const src = x.bytes;
  const r = rnd();
  let bytes: Uint8Array<ArrayBuffer>;
  if (r < 0.05) {
    const delta = 8 * (1 + Math.floor(rnd() * 4)) * (rnd() < 0.5 ? -1 : 1);
    bytes = new Uint8Array(Math.max(0, src.length + delta));
    bytes.set(src.subarray(0, Math.min(src.length, bytes.length)));
  } else {
    bytes = src.slice();
    const words = new Int32Array(bytes.buffer);
    const { offsets } = layoutOf(x);
    const names = Object.keys(offsets).filter((n) => sectionWords(x, n) > 0);
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      const name = names[Math.floor(rnd() * names.length)];
      // Half the time a word that holds something (a live device's count, a mapped LPI's bits, a
      // linked slot): uniform picks in the large sparse tables would almost always hit zeros.
      const live = liveWords(x, name);
      const w =
        live.length > 0 && rnd() < 0.5
          ? live[Math.floor(rnd() * live.length)]
          : offsets[name] / 4 + Math.floor(rnd() * sectionWords(x, name));
      if (rnd() < 0.5) words[w] ^= 1 << Math.floor(rnd() * 32);
      else {
        const v = BOUNDARY[Math.floor(rnd() * BOUNDARY.length)];
        words[w] = rnd() < 0.2 ? v + words[w] : v;
      }
    }
  }
  const sealed = rnd() < 0.8 && bytes.length >= 48;
  if (sealed) sealSnapshot(bytes.buffer);
  return { bytes, sealed };
}

const layouts = new Map<string, ReturnType<typeof computeLayout> & { next: Record<string, number> }>();
function layoutOf(x: Saved) {
  let l = layouts.get(x.name);
  if (!l) {
    const g = restore(x, x.bytes);
    const s = g.state;
    const base = computeLayout({
      nVcpus: s.nVcpus,
      nSpis: s.nSpis,
      nLrs: s.nLrs,
      nLpis: s.nLpis,
      nIts: s.nIts,
      itsCache: s.itsCacheSize,
      globalCache: s.globalCacheSize,
    });
    const names = Object.keys(base.offsets);
    const next: Record<string, number> = {};
    names.forEach((n, i) => {
      next[n] = i + 1 < names.length ? base.offsets[names[i + 1]] : base.byteLength;
    });
    l = { ...base, next };
    layouts.set(x.name, l);
  }
  return l;
}
const live = new Map<string, Int32Array>();
/** The non-zero words of a section of `x` (absolute word indices). */
function liveWords(x: Saved, name: string): Int32Array {
  const key = `${x.name}/${name}`;
  let l = live.get(key);
  if (!l) {
    const words = new Int32Array(x.bytes.buffer, x.bytes.byteOffset, x.bytes.byteLength >>> 2);
    const from = layoutOf(x).offsets[name] / 4;
    const found: number[] = [];
    for (let w = from; w < from + sectionWords(x, name); w++) if (words[w] !== 0) found.push(w);
    l = Int32Array.from(found);
    live.set(key, l);
  }
  return l;
}

/** Words a section spans (its padding included). */
function sectionWords(x: Saved, name: string): number {
  const l = layoutOf(x);
  return (l.next[name] - l.offsets[name]) / 4;
}

/** A few operations of every kind; none may throw or hang (an unshared GIC throws on a stale lock). */
function exercise(gic: Vgic, x: Saved): void {
  if (x.nIts > 0) {
    for (let e = 0; e < 10; e += 3) gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: 2, eventid: e });
    const cwriter = gic.its(0).base + GITS_CWRITER;
    const c0 = gic.vcpu(0);
    // Rewriting CWRITER runs whatever lies between CREADR and it: with a corrupt CREADR, stale commands.
    c0.writeq(cwriter, BigInt(gic.state.its[I_CREADR]) + 32n);
    c0.writeq(cwriter, c0.readq(cwriter));
  }
  gic.irqLine(41, false);
  gic.irqLine(42, true);
  for (let v = 0; v < gic.nVcpus; v++) {
    const c = gic.vcpu(v);
    c.step();
    for (let i = 0; i < 4; i++) {
      const a = c.readSysreg(ICC_IAR1_EL1);
      if (a !== 1023) c.writeSysreg(ICC_EOIR1_EL1, a);
      const b = c.readSysreg(ICC_IAR0_EL1);
      if (b !== 1023) c.writeSysreg(ICC_EOIR0_EL1, b);
    }
  }
  if (gic.state.header[H_FLAGS] & FLAG_VIRTUAL_TIME) gic.advanceTime(2000);
  for (let v = 0; v < gic.nVcpus; v++) gic.vcpu(v).step();
}

describe('snapshot format v2: 10^4 mutants are refused or restore a working GIC', () => {
  test('seeded mutants (bit flips, boundary words, truncation and extension, resealed or not)', () => {
    const states = [itsState(), plainState(), manyState()];
    const N = Number(process.env.VGIC_MUTANTS ?? 10_000);
    const rnd = prng(Number(process.env.VGIC_SEED ?? 0x5eed13));
    const count = { refusedChecksum: 0, refusedFields: 0, accepted: 0, unsealedAccepted: 0 };
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const x = states[i % states.length];
      const { bytes, sealed } = mutant(x, rnd);
      let gic: Vgic;
      try {
        gic = restore(x, bytes);
      } catch (e) {
        if (!(e instanceof VgicError)) assert.fail(`mutant ${i} (${x.name}): restore threw ${String(e)}`);
        if (/checksum/.test(e.message)) count.refusedChecksum++;
        else count.refusedFields++;
        continue;
      }
      count.accepted++;
      const changed = bytes.length !== x.bytes.length || bytes.some((b, j) => b !== x.bytes[j]);
      if (!sealed && changed) count.unsealedAccepted++;
      const before = checkInvariants(gic, { settled: true });
      assert.deepEqual(before, [], `mutant ${i} (${x.name}) restored with broken invariants`);
      try {
        exercise(gic, x);
      } catch (e) {
        assert.fail(`mutant ${i} (${x.name}): an operation threw ${String(e)}`);
      }
      assert.deepEqual(checkInvariants(gic), [], `mutant ${i} (${x.name}) after operations`);
      const again = gic.snapshot();
      assert.deepEqual(checkInvariants(gic, { settled: true }), [], `mutant ${i} (${x.name}) settled`);
      restore(x, again); // what a restored GIC saves restores
    }
    const ms = performance.now() - t0;
    console.log(`# ${N} mutants in ${ms.toFixed(0)} ms: ${JSON.stringify(count)}`);
    assert.equal(count.unsealedAccepted, 0, 'a mutant with a stale checksum was accepted');
    assert.ok(count.accepted > 0 && count.refusedFields > 0, 'both outcomes are exercised');
  });
});
