/**
 * The adversarial test (issue 13): a seeded stream of well-aimed and wild operations against GICs
 * of varied shapes, with the state checked after every operation (bench/invariants.ts: no lock
 * held, ap_lists against the oracle, LRs against the interrupts, the ITS's books, translation
 * caches against a table walk), a time bound per operation and the process's memory sampled. By
 * default the whole state after every operation; with `fullCheckEvery: K` every K operations, at
 * each epoch's first and last, after any that can reach the ITS books and around every
 * snapshot/restore, and in between what the operation addressed (its LPIs, the LPIs listed before
 * it, the cache of the ITS an MSI went to) besides everything outside the LPI store.
 *
 * Operations: guest MMIO of every size and alignment on every frame (GICD, GICR RD and SGI, each
 * ITS), ICC_* system registers and random encodings, guests that acknowledge and end interrupts
 * (IAR/EOIR/DIR), ITS command queues mostly of real MAPD/MAPC/MAPTI/... sequences over small id
 * ranges (so they collide) mixed with garbage, wild table bases (GITS_BASER, CBASER, PROPBASER,
 * PENDBASER anywhere: above 4 GiB, at the end of RAM, bit 31 set), guests rewriting their tables,
 * host calls with boundary and misuse arguments, snapshot/restore of clean and mutated blobs.
 *
 * Everything is drawn from one PRNG seeded by `seed`: the same seed and op count replay the same
 * run (real-time epochs aside: their counter follows the host clock). An epoch is one GIC of one
 * configuration for a few thousand operations; about a third of the epochs with an ITS are aimed
 * (World.aimed: set-ups then MSIs, no chaos that switches the cache comparison off).
 *
 * Who calls: `vgic adversarial` (cli/main.ts) and test/adversarial.test.ts (the CI smoke). Runs on
 * one thread; holds no lock between operations (the invariant checker proves it).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { paFromWords } from '../arch/addr.ts';
import { VgicError } from '../arch/errors.ts';
import {
  GICC_AEOIR,
  GICC_AIAR,
  GICC_FRAME_SIZE,
  GICD_V2_FRAME_SIZE,
  VIRT_V2_GICC_BASE,
} from '../arch/gicv2.ts';
import { GICR_CTLR, GICR_PENDBASER, GICR_PROPBASER, GICR_STRIDE_V3, VIRT_GICD_BASE } from '../arch/gicv3.ts';
import {
  GICR_STRIDE_V4,
  GICR_VPENDBASER,
  GITS_CMD_INVDB,
  GITS_CMD_VINVALL,
  GITS_CMD_VMAPI,
  GITS_CMD_VMAPP,
  GITS_CMD_VMAPTI,
  GITS_CMD_VMOVI,
  GITS_CMD_VMOVP,
  GITS_CMD_VSGI,
  GITS_CMD_VSYNC,
} from '../arch/gicv4.ts';
import {
  GITS_BASER,
  GITS_CBASER,
  GITS_CMD_CLEAR,
  GITS_CMD_DISCARD,
  GITS_CMD_INT,
  GITS_CMD_INV,
  GITS_CMD_INVALL,
  GITS_CMD_MAPC,
  GITS_CMD_MAPD,
  GITS_CMD_MAPI,
  GITS_CMD_MAPTI,
  GITS_CMD_MOVALL,
  GITS_CMD_MOVI,
  GITS_CMD_SYNC,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
  GITS_TRANSLATER,
} from '../arch/its.ts';
import {
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
  ICC_DIR_EL1,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_SGI1R_EL1,
  SYSREG_NAMES,
} from '../arch/sysreg.ts';
import { sealSnapshot } from '../device/snapshot.ts';
import type { VCpu } from '../device/vcpu.ts';
import { Vgic, type VgicV3Options } from '../device/vgic.ts';
import { GicV2Guest } from '../guest/gic-v2.ts';
import { GicV3Guest } from '../guest/gic-v3.ts';
import { GuestAllocator, ItsGuest, LpiTables } from '../guest/gic-v3-its.ts';
import { cacheGeneration } from '../its/cache.ts';
import { type CheckScope, checkCaches, checkInvariants } from './invariants.ts';
import { prng } from './prng.ts';

export interface AdversarialOptions {
  readonly ops: number;
  readonly seed: number;
  /** Fail when one operation takes longer (ms). Default 50. */
  readonly maxOpMs?: number;
  /** Fail when heapUsed / arrayBuffers grow this much (bytes) above the plateau after warm-up. */
  readonly heapBound?: number;
  readonly arrayBufferBound?: number;
  /** Print each operation from this index on (replaying a failure). */
  readonly traceFrom?: number;
  /**
   * Smaller GICs only (LPI stores of 2^14 INTIDs, translation caches up to 1024 entries): the
   * whole-state check after each operation then costs ~0.1 ms, which is what lets CI run 10^5.
   */
  readonly light?: boolean;
  /** Stop after this many seconds (the result says how many operations ran). */
  readonly seconds?: number;
  /**
   * The whole state is checked every this many operations (default 1: after every one), at the
   * first and last operation of each epoch, after every operation that can reach the ITS books
   * (commands, table bases, register writes of an ITS or RD frame, snapshot/restore) and at the
   * end; between those, only what the operation can have touched. The whole-state check costs
   * ~50 µs on the largest GICs, so K = 1000 saves only ~20 % of a run: a quicker look, whose
   * failures a replay with 1 pins to the operation that broke the state.
   */
  readonly fullCheckEvery?: number;
  /** Progress callback every 10^5 operations. */
  readonly progress?: (done: number, elapsedMs: number) => void;
}

export interface KindStats {
  count: number;
  maxMs: number;
  p999Ms: number;
  p99Ms: number;
  meanUs: number;
}

export interface AdversarialResult {
  seed: number;
  ops: number;
  epochs: number;
  failures: number;
  failure?: { op: number; epoch: number; config: string; what: string; detail: string[] };
  elapsedMs: number;
  checkMs: number;
  perKind: Record<string, KindStats>;
  maxOpMs: number;
  memory: {
    heapUsedStart: number;
    heapUsedPlateau: number;
    heapUsedMax: number;
    arrayBuffersPlateau: number;
    arrayBuffersMax: number;
    samples: number;
    /** Samples over the bound that a forced collection brought back under it. */
    collections: number;
  };
  counts: {
    hostErrors: number;
    /** GICv4.1 epochs, and LPIs forwarded by setForwarding in them. */
    directEpochs: number;
    forwarded: number;
    restoresRefused: number;
    restoresAccepted: number;
    cacheCompared: number;
    msiDelivered: number;
    acked: number;
    aimedEpochs: number;
    setups: number;
    fullChecks: number;
    scopedChecks: number;
  };
}

let gc: (() => void) | undefined;

/** A full garbage collection (V8's gc(), exposed at run time: the CLI is not started with a flag). */
function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * Is the process holding more than the limits? A sample over them may be garbage: dead GICs and
 * snapshot blobs (MBs each) wait for a major collection, which a fast run making little JS garbage
 * triggers late (the 10^7 run's first try: 484 MB of arrayBuffers, a false "memory grew"). So a
 * sample over is taken again after a full collection, and only what is still held counts.
 */
export function memoryVerdict(
  sample: () => { heapUsed: number; arrayBuffers: number },
  heapLimit: number,
  arrayBufferLimit: number,
  collect: () => void,
): { m: { heapUsed: number; arrayBuffers: number }; collected: boolean; over: boolean } {
  const over = (x: { heapUsed: number; arrayBuffers: number }) =>
    x.heapUsed > heapLimit || x.arrayBuffers > arrayBufferLimit;
  const m = sample();
  if (!over(m)) return { m, collected: false, over: false };
  collect();
  const after = sample();
  return { m: after, collected: true, over: over(after) };
}

/** Latency histogram: 16 buckets per power of two of nanoseconds, so p99.9 costs no sample store. */
class Hist {
  readonly b = new Float64Array(64 * 16);
  n = 0;
  sum = 0;
  max = 0;
  add(ms: number): void {
    const ns = Math.max(1, ms * 1e6);
    const i = Math.min(this.b.length - 1, Math.floor(Math.log2(ns) * 16));
    this.b[i]++;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }
  quantile(q: number): number {
    let want = q * this.n;
    for (let i = 0; i < this.b.length; i++) {
      want -= this.b[i];
      if (want <= 0) return 2 ** ((i + 1) / 16) / 1e6;
    }
    return this.max;
  }
}

const RAM_BASE = 0x40000000;
const U32 = 0x1_0000_0000;
const BOUNDARY = [
  0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 1020, 1023, 1024, 8191, 8192, 0xffff, 0x10000,
  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];
const ENCODINGS = Object.values(SYSREG_NAMES);
const MISUSE: unknown[] = [
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  '3',
  null,
  undefined,
  10n,
  {},
  -0,
];

interface Config {
  vcpus: number;
  lrs: number;
  its: number;
  lpiIdBits: number;
  itsCacheSize: number;
  time: 'real' | 'virtual';
  shared: boolean;
  translationCache: 'per-its' | 'global-lru';
  /** GICv4.1 direct injection: forwarding switched by the host, vPEs blocked and woken. */
  direct: boolean;
  ramSize: number;
  spis: number;
  aimed: boolean;
  /** 2: a GICv2 (no ITS; GICD/GICC frames, GICD_SGIR, the GICC acknowledge path). */
  gicVersion: 2 | 3;
}

/** The guest's side of one epoch: where its tables are, what it acknowledged. */
interface World {
  gic: Vgic;
  cfg: Config;
  cpus: VCpu[];
  /** GICv3 guest drivers (empty on a GICv2), or the GICv2 ones (empty on a GICv3). */
  guests: GicV3Guest[];
  v2guests: GicV2Guest[];
  itsGuests: ItsGuest[];
  lpi: LpiTables | undefined;
  rdBase: number;
  ittArea: number[];
  bigItt: number[];
  /** GICv4.1 epochs: two 64K VPTs the V-commands' VMAPP names (written back by VMAPP V=0). */
  vptArea: number;
  /** (ITS, DeviceID, EventID) the guest asked to map: MSIs aim at them. */
  mapped: [number, number, number][];
  acked: number[][];
  /** Some table or queue base was pointed anywhere since the last re-initialisation. */
  wild: boolean;
  /** Per ITS: the cache generation at which the guest rewrote tables (its cache may disagree). */
  tamperGen: number[];
  /**
   * An aimed epoch: no wild base, no tampering, no garbage command, no write that moves a table
   * base or switches an ITS or RD off; complete MAPD+MAPC+MAPTI set-ups followed by MSIs. Chaos
   * switches the cache comparison off until a re-initialisation; these epochs keep it on, so
   * deliveries and cache-against-walk comparisons add up over a long run.
   */
  aimed: boolean;
  /** ITS k, DeviceID d (k << 16 | d) the set-up op has mapped (it remaps one only sometimes). */
  setupDevs: Set<number>;
}

/** Calls of an operation kind exempt from the time bound while V8 compiles it. */
/** A redistributor's stride: 256K with GICv4.1 (the VLPI_base frame), else 128K. */
const rdStride = (x: World): number => (x.cfg.direct ? GICR_STRIDE_V4 : GICR_STRIDE_V3);

const WARM_CALLS = 20;
const ITT_DEV_BYTES = 2 ** 8 * 8; // event bits up to 8 in the aimed area
const AIMED_DEVS = 16;

export function runAdversarial(o: AdversarialOptions): AdversarialResult {
  const rnd = prng(o.seed);
  // GICv4.1 choices come from their own stream, so epochs without direct injection draw exactly
  // what they drew before it existed.
  const rndDirect = prng((o.seed ^ 0x5bd1e995) >>> 0);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  const chance = (p: number) => rnd() < p;
  const u32 = () => (chance(0.3) ? pick(BOUNDARY) : Math.floor(rnd() * U32)) >>> 0;
  const maxOpMs = o.maxOpMs ?? 50;
  const hists = new Map<string, Hist>();
  const counts = {
    hostErrors: 0,
    directEpochs: 0,
    forwarded: 0,
    restoresRefused: 0,
    restoresAccepted: 0,
    cacheCompared: 0,
    msiDelivered: 0,
    acked: 0,
    aimedEpochs: 0,
    setups: 0,
    fullChecks: 0,
    scopedChecks: 0,
  };
  const fullEvery = Math.max(1, Math.floor(o.fullCheckEvery ?? 1));
  /**
   * What the current operation addressed, for the scoped check: LPI INTIDs it named (EOIR, DIR,
   * IAR's answer), the ITS whose translation cache an MSI moves, or `heavy` (anything: the whole
   * state is checked). The LPIs listed before it are re-checked too: an exit can free them.
   */
  const touched = { intids: [] as number[], its: -1, heavy: false, lpiAll: false };
  let listedBefore: number[] = [];
  let epochFirst = false;
  let checkMs = 0;
  let epochs = 0;
  let w: World | undefined;
  let epochLeft = 0;
  let desc = '';
  /** Violations found by a check inside an operation, and the time it took (not the operation's). */
  let settledBad: string[] = [];
  let insideCheckMs = 0;
  const mem0 = process.memoryUsage();
  const memory = {
    heapUsedStart: mem0.heapUsed,
    heapUsedPlateau: 0,
    heapUsedMax: 0,
    arrayBuffersPlateau: 0,
    arrayBuffersMax: 0,
    samples: 0,
    collections: 0,
  };
  const warmup = Math.min(Math.max(20_000, o.ops / 10), o.ops);
  const heapBound = o.heapBound ?? 96 << 20;
  const abBound = o.arrayBufferBound ?? 256 << 20;
  const t0 = performance.now();

  const result = (failure?: AdversarialResult['failure']): AdversarialResult => {
    const perKind: Record<string, KindStats> = {};
    let maxAll = 0;
    for (const [k, h] of [...hists].sort()) {
      perKind[k] = {
        count: h.n,
        maxMs: round(h.max),
        p999Ms: round(Math.min(h.quantile(0.999), h.max)),
        p99Ms: round(Math.min(h.quantile(0.99), h.max)),
        meanUs: round((h.sum / Math.max(1, h.n)) * 1000),
      };
      maxAll = Math.max(maxAll, h.max);
    }
    return {
      seed: o.seed,
      ops: failure ? failure.op : done,
      epochs,
      failures: failure ? 1 : 0,
      ...(failure ? { failure } : {}),
      elapsedMs: Math.round(performance.now() - t0),
      checkMs: Math.round(checkMs),
      perKind,
      maxOpMs: round(maxAll),
      memory,
      counts,
    };
  };

  let done = 0;
  const deadline = o.seconds !== undefined ? t0 + o.seconds * 1000 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < o.ops; i++, done = i) {
    if (i % 1000 === 0 && performance.now() > deadline) {
      // Stopped early: the state the last operation left is checked whole too.
      if (w && i % fullEvery !== 0) {
        const last = w;
        const bad = checkInvariants(last.gic);
        const caches = checkCaches(
          last.gic,
          (k) => last.wild || last.tamperGen[k] === cacheGeneration(last.gic.state, k),
        );
        counts.fullChecks++;
        if (bad.length > 0 || caches.bad.length > 0)
          return result({
            op: i - 1,
            epoch: epochs,
            config: JSON.stringify(last.cfg),
            what: `invariants broken (the whole-state check at the stop): ${desc}`,
            detail: [...bad, ...caches.bad],
          });
      }
      break;
    }
    if (w === undefined || epochLeft-- <= 0) {
      w = newWorld(rnd);
      epochs++;
      epochLeft = 1000 + int(5000);
      epochFirst = true;
      if (w.aimed) counts.aimedEpochs++;
    }
    const world = w;
    let kind = '';
    let settled = false;
    let fail: string | undefined;
    touched.intids.length = 0;
    touched.its = -1;
    touched.heavy = epochFirst;
    touched.lpiAll = false;
    epochFirst = false;
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    try {
      const r = step(world);
      kind = r.kind;
      settled = r.settled;
      if (r.next) w = r.next;
    } catch (e) {
      fail = `threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`;
    }
    const ms = performance.now() - start - insideCheckMs;
    const insideMs = insideCheckMs;
    checkMs += insideCheckMs;
    insideCheckMs = 0;
    if (o.traceFrom !== undefined && i >= o.traceFrom)
      console.log(`op ${i} [${kind}] ${desc} (${ms.toFixed(3)} ms)`);
    let h = hists.get(kind);
    if (!h) {
      h = new Hist();
      hists.set(kind, h);
    }
    h.add(ms);
    const failure = (what: string, detail: string[] = []) =>
      result({
        op: i,
        epoch: epochs,
        config: JSON.stringify(w?.cfg),
        what: `${what}: [${kind}] ${desc}`,
        detail,
      });
    if (fail !== undefined) return failure(fail);
    // The first calls of a kind run cold (V8 compiles them): the bound is for the warm code.
    // Wall and CPU time both over the bound: the shared cores' other tenants stretch wall time alone.
    // snapshot()/restore() copy and check the whole state (5 MB with 2^16 LPI INTIDs): a host
    // call at migration, bounded at 4x a guest access's bound.
    const bound = kind === 'restore' || kind === 'snapshot' ? 4 * maxOpMs : maxOpMs;
    // CPU time only when wall time is over: getrusage costs as much as a small operation.
    if (ms > bound && h.n > WARM_CALLS) {
      const cpu1 = process.cpuUsage(cpu0);
      const cpuMs = (cpu1.user + cpu1.system) / 1000 - insideMs;
      if (cpuMs > bound)
        return failure(`operation took ${ms.toFixed(1)} ms, ${cpuMs.toFixed(1)} ms CPU (bound ${bound} ms)`);
    }
    const c0 = performance.now();
    if (settledBad.length > 0) return failure('invariants broken right after snapshot/restore', settledBad);
    const wc = w;
    const whole = touched.heavy || i % fullEvery === fullEvery - 1 || i === o.ops - 1 || epochLeft <= 0;
    let scope: CheckScope | undefined;
    if (whole) counts.fullChecks++;
    else {
      counts.scopedChecks++;
      const base = wc.gic.state.lpiBase;
      const lpiSlots = listedBefore;
      for (const intid of touched.intids) if (intid >= 8192) lpiSlots.push(base + intid - 8192);
      scope = { lpiSlots, books: false, lpiAll: touched.lpiAll };
    }
    listedBefore = [];
    const bad = checkInvariants(w.gic, { settled, scope, listedOut: listedBefore });
    const caches = checkCaches(
      w.gic,
      (k) => (!whole && k !== touched.its) || wc.wild || wc.tamperGen[k] === cacheGeneration(wc.gic.state, k),
    );
    counts.cacheCompared += caches.compared;
    checkMs += performance.now() - c0;
    if (bad.length > 0 || caches.bad.length > 0) return failure('invariants broken', [...bad, ...caches.bad]);
    if (i % 1000 === 999) {
      memory.samples++;
      if (i < warmup) {
        const m = process.memoryUsage();
        memory.heapUsedPlateau = Math.max(memory.heapUsedPlateau, m.heapUsed);
        memory.arrayBuffersPlateau = Math.max(memory.arrayBuffersPlateau, m.arrayBuffers);
      } else {
        const v = memoryVerdict(
          () => process.memoryUsage(),
          memory.heapUsedPlateau + heapBound,
          memory.arrayBuffersPlateau + abBound,
          collectGarbage,
        );
        const m = v.m;
        if (v.collected) memory.collections++;
        memory.heapUsedMax = Math.max(memory.heapUsedMax, m.heapUsed);
        memory.arrayBuffersMax = Math.max(memory.arrayBuffersMax, m.arrayBuffers);
        if (v.over)
          return failure(
            `memory grew: heapUsed ${mb(m.heapUsed)} MB, arrayBuffers ${mb(m.arrayBuffers)} MB (plateau ${mb(memory.heapUsedPlateau)} / ${mb(memory.arrayBuffersPlateau)} MB)`,
          );
      }
    }
    if (o.progress && i % 100_000 === 99_999) o.progress(i + 1, performance.now() - t0);
  }
  return result();

  // ---- operations ----

  function step(x: World): { kind: string; settled: boolean; next?: World } {
    // Weighted so that interrupts flow: chaos (wild bases, tampering, control-register noise) is
    // rare enough, and re-initialisation frequent enough, that most epochs deliver and take LPIs.
    const r = rnd();
    const lpis = x.cfg.its > 0;
    if (x.aimed) {
      if (r < 0.1) return { kind: mmio(x), settled: false };
      if (r < 0.15) return { kind: sysreg(x), settled: false };
      if (r < 0.33) return { kind: ackEoi(x), settled: false };
      if (r < 0.36) return { kind: inject(x), settled: false };
      // Command churn low enough that a set-up lives for a few hundred MSIs.
      if (r < 0.4) return { kind: itsQueue(x), settled: false };
      if (r < 0.48 || x.mapped.length === 0) return { kind: itsSetup(x), settled: false };
      if (r < 0.82) return { kind: msi(x), settled: false };
      if (r < 0.88) return { kind: host(x), settled: false };
      if (r < 0.92) return { kind: timeOp(x), settled: false };
      if (r < 0.9205) return { kind: reinit(x), settled: false };
      if (r < 0.925) return snapRestore(x);
      return { kind: stepCpu(x), settled: false };
    }
    if (r < 0.15) return { kind: mmio(x), settled: false };
    if (r < 0.23) return { kind: sysreg(x), settled: false };
    if (r < 0.43) return { kind: ackEoi(x), settled: false };
    if (r < 0.51) return { kind: inject(x), settled: false };
    if (lpis && r < 0.65) return { kind: itsQueue(x), settled: false };
    if (lpis && r < 0.75) return { kind: msi(x), settled: false };
    if (r < 0.85) return { kind: host(x), settled: false };
    if (r < 0.9) return { kind: timeOp(x), settled: false };
    if (r < 0.92 && lpis) return { kind: wildBase(x), settled: false };
    if (r < 0.93 && lpis) return { kind: tamper(x), settled: false };
    if (r < 0.935) return { kind: reinit(x), settled: false };
    if (r < 0.945) return snapRestore(x);
    return { kind: stepCpu(x), settled: false };
  }

  function cpu(x: World): VCpu {
    return x.cpus[int(x.cpus.length)];
  }

  function frameAddr(x: World): { addr: number; frame: string; off: number } {
    const r = rnd();
    if (x.cfg.gicVersion === 2) {
      if (r < 0.6) {
        const off = chance(0.8)
          ? (gicdOff() & 0xfff) | (chance(0.2) ? 0xf00 : 0)
          : int(GICD_V2_FRAME_SIZE + 16);
        return { addr: VIRT_GICD_BASE + off, frame: 'gicd', off };
      }
      const off = chance(0.8) ? pick(GICC_OFFS) : int(GICC_FRAME_SIZE + 16);
      return { addr: VIRT_V2_GICC_BASE + off, frame: 'gicc', off };
    }
    if (r < 0.3)
      return { addr: VIRT_GICD_BASE + (chance(0.7) ? gicdOff() : int(0x10000)), frame: 'gicd', off: -1 };
    if (r < 0.7 || x.cfg.its === 0) {
      const v = int(x.cfg.vcpus + (chance(0.05) ? 1 : 0));
      const sgi = chance(0.5);
      const rdOff = chance(0.8) ? pick(GICR_QUIET_OFFS) : pick(GICR_OFFS);
      const off = (sgi ? 0x10000 : 0) + (chance(0.7) ? (sgi ? gicdOff() & 0xfff : rdOff) : int(0x10000));
      return { addr: x.rdBase + v * rdStride(x) + off, frame: sgi ? 'gicr-sgi' : 'gicr-rd', off };
    }
    const k = int(x.cfg.its);
    const off = chance(0.8) ? (chance(0.8) ? pick(ITS_QUIET_OFFS) : pick(ITS_OFFS)) : int(0x20000);
    return { addr: x.gic.its(k).base + off, frame: 'its', off };
  }

  function gicdOff(): number {
    const r = rnd();
    if (r < 0.05) return int(0x20) & ~3;
    if (r < 0.7) return 0x80 + int(0xd00 - 0x80);
    if (r < 0.9) return 0x6100 + int(0x1f00);
    return 0xffd0 + int(0x30);
  }

  function mmio(x: World): string {
    if (x.cfg.direct && chance(0.08)) {
      // GICv4.1 residency: a GICR_VPENDBASER write (vPEID mostly a slot; Valid, DB, vGrp1En).
      const c = cpu(x);
      const at = x.rdBase + int(x.cfg.vcpus) * rdStride(x) + GICR_VPENDBASER;
      const lo = chance(0.9) ? int(x.cfg.vcpus) : u32();
      const hi =
        ((chance(0.5) ? 1 << 31 : 0) | (chance(0.5) ? 1 << 30 : 0) | (chance(0.8) ? 1 << 26 : 0)) >>> 0;
      desc = `write VPENDBASER ${hex(at)} value ${hex(hi)}:${hex(lo)}`;
      touched.heavy = true;
      c.mmioWrite(at, 8, lo, hi);
      return 'mmio-gicr-rd';
    }
    const { addr: a0, frame, off: off0 } = frameAddr(x);
    const size = pick([1, 2, 4, 4, 4, 8, 8, 3, 16]);
    // Mostly aligned; sometimes off by a few bytes.
    const addr = chance(0.85) ? a0 - (a0 % Math.min(size, 8)) : a0 + int(8);
    const off = off0 + addr - a0;
    const c = cpu(x);
    let write = chance(0.5);
    // An aimed epoch's guest keeps its ITS and RD registers sane: such a write becomes a read.
    if (write && x.aimed && (frame === 'gicr-rd' || frame === 'its'))
      write = (frame === 'its' ? ITS_QUIET_OFFS : GICR_QUIET_OFFS).includes(off);
    if (write && (frame === 'gicr-rd' || frame === 'its') && touchesBase(frame, off, addr, size))
      x.wild = true;
    // GICD and SGI frames hold no LPI state; anything else written may (or lies beyond the last RD).
    if (write && !(frame === 'gicd' || (frame === 'gicr-sgi' && addr < x.rdBase + x.cfg.vcpus * rdStride(x))))
      touched.heavy = true;
    desc = `${write ? 'write' : 'read'} ${frame} ${hex(addr)} size ${size}`;
    if (!write) {
      c.mmioRead(addr, size);
    } else {
      const lo = u32();
      const hi = u32();
      desc += ` value ${hex(hi)}:${hex(lo)}`;
      c.mmioWrite(addr, size, lo, hi);
    }
    return `mmio-${frame}`;
  }

  function sysreg(x: World): string {
    const c = cpu(x);
    const enc = chance(0.85) ? pick(ENCODINGS) : int(0x10000);
    if (chance(0.5)) {
      desc = `read sysreg ${hex(enc)} on vCPU ${c.index}`;
      touched.intids.push(c.readSysreg(enc));
    } else {
      // SGIs: a valid target list mostly, so they arrive.
      const lo = enc === ICC_SGI1R_EL1 && chance(0.7) ? int(0x10000) : u32();
      const hi = enc === ICC_SGI1R_EL1 && chance(0.7) ? (int(16) << 24) | (chance(0.2) ? 1 << 8 : 0) : u32();
      desc = `write sysreg ${hex(enc)} ${hex(hi)}:${hex(lo)} on vCPU ${c.index}`;
      touched.intids.push(lo);
      c.writeSysreg(enc, lo, hi);
    }
    return 'sysreg';
  }

  /** A guest that takes its interrupts: IAR, then EOIR (or DIR after a split EOI), in LIFO order. */
  function ackEoi(x: World): string {
    if (x.cfg.gicVersion === 2) return ackEoiV2(x);
    const c = cpu(x);
    const st = x.acked[c.index];
    const r = rnd();
    if (r < 0.45 || st.length === 0) {
      const grp1 = chance(0.85);
      const intid = c.readSysreg(grp1 ? ICC_IAR1_EL1 : ICC_IAR0_EL1);
      desc = `IAR${grp1 ? 1 : 0} on vCPU ${c.index} → ${intid}`;
      touched.intids.push(intid);
      if (intid < 1020 || intid >= 8192) {
        counts.acked++;
        if (st.length < 64) st.push(grp1 ? intid : -intid - 1);
      }
      return 'iar';
    }
    if (r < 0.95) {
      const top = chance(0.9) ? (st.pop() ?? 0) : pick([...BOUNDARY, 8192 + int(64)]);
      const grp1 = top >= 0;
      const intid = grp1 ? top : -top - 1;
      desc = `EOIR${grp1 ? 1 : 0} ${intid} on vCPU ${c.index}`;
      touched.intids.push(intid);
      c.writeSysreg(grp1 ? ICC_EOIR1_EL1 : ICC_EOIR0_EL1, intid >>> 0);
      if (chance(0.3)) c.writeSysreg(ICC_DIR_EL1, intid >>> 0); // a split-EOI guest (or a wrong one)
      return 'eoi';
    }
    desc = `DIR of a random INTID on vCPU ${c.index}`;
    const dir = chance(0.5) ? int(64) : u32();
    touched.intids.push(dir);
    c.writeSysreg(ICC_DIR_EL1, dir);
    return 'dir';
  }

  /** GICv2: GICC_IAR/AIAR, then EOIR/AEOIR with the IAR value (source CPU included), DIR sometimes. */
  function ackEoiV2(x: World): string {
    const c = cpu(x);
    const g = x.v2guests[c.index];
    const st = x.acked[c.index];
    const r = rnd();
    if (r < 0.45 || st.length === 0) {
      const alias = chance(0.2);
      const iar = alias ? c.readl(VIRT_V2_GICC_BASE + GICC_AIAR) : g.iar();
      desc = `GICC_${alias ? 'A' : ''}IAR on vCPU ${c.index} → ${hex(iar)}`;
      touched.intids.push(iar & 0x3ff);
      if ((iar & 0x3ff) < 1020) {
        counts.acked++;
        if (st.length < 64) st.push(iar);
      }
      return 'iar';
    }
    if (r < 0.95) {
      const top = chance(0.9) ? (st.pop() ?? 0) : pick(BOUNDARY) >>> 0;
      desc = `GICC_EOIR ${hex(top)} on vCPU ${c.index}`;
      touched.intids.push(top & 0x3ff);
      if (chance(0.2)) c.writel(VIRT_V2_GICC_BASE + GICC_AEOIR, top);
      else g.eoi(top);
      if (chance(0.3)) g.dir(top);
      return 'eoi';
    }
    const dir = chance(0.5) ? int(64) | (int(8) << 10) : u32();
    desc = `GICC_DIR ${hex(dir)} on vCPU ${c.index}`;
    touched.intids.push(dir & 0x3ff);
    g.dir(dir);
    return 'dir';
  }

  function inject(x: World): string {
    const r = rnd();
    if (r < 0.6) {
      const intid = 32 + int(x.cfg.spis);
      const level = chance(0.5);
      desc = `irqLine(${intid}, ${level})`;
      x.gic.irqLine(intid, level);
    } else {
      const v = int(x.cfg.vcpus);
      const intid = 16 + int(16);
      const level = chance(0.5);
      desc = `ppiLine(${v}, ${intid}, ${level})`;
      try {
        x.gic.ppiLine(v, intid, level);
      } catch (e) {
        hostError(e); // the timer's PPI belongs to the timer
      }
    }
    return 'inject';
  }

  /** Writes a few commands at CWRITER of ITS k's queue (wherever CBASER says it is) and moves CWRITER. */
  function itsQueue(x: World): string {
    const k = int(x.cfg.its);
    const n = 1 + int(chance(0.1) ? 64 : 6);
    const cmds: { words: bigint[]; name: string }[] = [];
    for (let j = 0; j < n; j++) cmds.push(command(x, k));
    queue(x, k, cmds, !x.aimed && chance(0.03));
    return 'its-queue';
  }

  /** Writes commands at CWRITER of ITS k's queue (wherever CBASER says it is), then moves CWRITER. */
  function queue(x: World, k: number, cmds: { words: bigint[]; name: string }[], wildCwriter: boolean): void {
    touched.heavy = true;
    const c = x.cpus[0];
    const base = x.gic.its(k).base;
    const cbaser = c.readq(base + GITS_CBASER);
    const q = paFromWords(Number(cbaser & 0xffffffffn), Number(cbaser >> 32n), 0xffff0000, 0xffff);
    const size = (Number(cbaser & 0xffn) + 1) * 4096;
    let cw = Number(c.readq(base + GITS_CWRITER) & 0xfffe0n) % size;
    for (const { words } of cmds) {
      for (let d = 0; d < 4; d++) c.writeq(q + cw + 8 * d, words[d]);
      cw = (cw + 32) % size;
    }
    desc = `ITS ${k} queue ${cmds.map((m) => m.name).join(' ')}`;
    c.writeq(base + GITS_CWRITER, BigInt(wildCwriter ? u32() & 0xfffe0 : cw));
    for (let p = 0; p < 3; p++) c.readq(base + GITS_CREADR); // a driver polls for completion
  }

  /**
   * A driver's complete set-up of one interrupt: MAPD (the device's first time, or sometimes again,
   * which drops its ITEs), MAPC, MAPTI, SYNC; MSIs then aim at it.
   */
  function itsSetup(x: World): string {
    const k = int(x.cfg.its);
    const dev = int(AIMED_DEVS - 1); // not 15, whose ITT the big-ITT MAPDs move
    const ev = int(8);
    const icid = int(4);
    const lpi = 8192 + int(Math.min(1024, 2 ** x.cfg.lpiIdBits - 8192));
    const rd = int(x.cfg.vcpus);
    const B = BigInt;
    const cmds: { words: bigint[]; name: string }[] = [];
    const key = (k << 16) | dev;
    if (!x.setupDevs.has(key) || chance(0.05)) {
      x.setupDevs.add(key);
      const itt = B(x.ittArea[k] + dev * ITT_DEV_BYTES) & 0xffffffffff00n;
      cmds.push({
        words: [B(GITS_CMD_MAPD) | (B(dev) << 32n), 7n, itt | (1n << 63n), 0n],
        name: `MAPD(${dev},8,V)`,
      });
    }
    cmds.push(
      {
        words: [B(GITS_CMD_MAPC), 0n, B(icid) | (B(rd) << 16n) | (1n << 63n), 0n],
        name: `MAPC(${icid},${rd})`,
      },
      {
        words: [B(GITS_CMD_MAPTI) | (B(dev) << 32n), B(ev) | (B(lpi) << 32n), B(icid), 0n],
        name: `MAPTI(${dev},${ev},${lpi},${icid})`,
      },
      { words: [B(GITS_CMD_SYNC), 0n, B(rd) << 16n, 0n], name: 'SYNC' },
    );
    queue(x, k, cmds, false);
    if (x.mapped.length < 256) x.mapped.push([k, dev, ev]);
    else x.mapped[int(256)] = [k, dev, ev];
    counts.setups++;
    return 'its-setup';
  }

  function command(x: World, k: number): { words: bigint[]; name: string } {
    const r = rnd();
    // Small id ranges so commands collide: mostly 4 devices, 4 events, 4 collections.
    const dev = chance(0.7) ? int(4) : chance(0.7) ? int(AIMED_DEVS) : chance(0.5) ? int(0x10000) : u32();
    const ev = chance(0.7) ? int(4) : chance(0.8) ? int(8) : chance(0.5) ? int(0x10000) : u32();
    const icid = chance(0.7) ? int(4) : chance(0.8) ? int(8) : u32() & 0xffff;
    const lpi = chance(0.9) ? 8192 + int(64) : chance(0.5) ? 8192 + int(2 ** x.cfg.lpiIdBits) : u32();
    const rd = chance(0.95) ? int(x.cfg.vcpus) : int(0x10000);
    const B = BigInt;
    const dw0 = (op: number, d = dev) => B(op) | (B(d >>> 0) << 32n);
    if (r < 0.08) {
      // Device 15 may take a big ITT (up to 2^16 events, its own area); beyond 16 bits MAPD refuses.
      const big = dev === AIMED_DEVS - 1 && chance(0.3);
      const bits = big ? 9 + int(10) : chance(0.98) ? 1 + int(8) : 17 + int(16);
      const valid = chance(0.8);
      let itt: number;
      if (big) itt = x.bigItt[k];
      else if (x.aimed) itt = x.ittArea[k] + (dev % AIMED_DEVS) * ITT_DEV_BYTES;
      else if (chance(0.97) && dev < AIMED_DEVS) itt = x.ittArea[k] + dev * ITT_DEV_BYTES;
      else {
        itt = wildAddr(x) & ~0xff;
        x.wild = true;
      }
      // An aimed guest gives each device its own ITT (sharing one is UNPREDICTABLE).
      const d = x.aimed ? dev % AIMED_DEVS : dev;
      if (x.aimed) x.setupDevs.delete((k << 16) | d); // the next set-up maps it again
      return {
        words: [
          dw0(GITS_CMD_MAPD, d),
          B(bits - 1),
          (B(itt) & 0xffffffffff00n) | (valid ? 1n << 63n : 0n),
          0n,
        ],
        name: `MAPD(${d},${bits},${valid ? 'V' : '-'})`,
      };
    }
    if (r < 0.2) {
      const valid = chance(0.95);
      return {
        words: [B(GITS_CMD_MAPC), 0n, B(icid) | (B(rd) << 16n) | (valid ? 1n << 63n : 0n), 0n],
        name: `MAPC(${icid},${rd})`,
      };
    }
    // An aimed epoch's MSIs aim at complete set-ups only (most of these MAPTIs name no device).
    if (r < 0.5 && !x.aimed) {
      if (x.mapped.length < 256) x.mapped.push([k, dev, ev]);
      else x.mapped[int(256)] = [k, dev, ev];
    }
    if (r < 0.5)
      return {
        words: [dw0(GITS_CMD_MAPTI), B(ev >>> 0) | (B(lpi >>> 0) << 32n), B(icid), 0n],
        name: `MAPTI(${dev},${ev},${lpi},${icid})`,
      };
    if (r < 0.58)
      return { words: [dw0(GITS_CMD_MAPI), B(ev >>> 0), B(icid), 0n], name: `MAPI(${dev},${ev})` };
    if (r < 0.64)
      return { words: [dw0(GITS_CMD_MOVI), B(ev >>> 0), B(icid), 0n], name: `MOVI(${dev},${ev},${icid})` };
    const devEv: [number, string][] = [
      [GITS_CMD_DISCARD, 'DISCARD'],
      [GITS_CMD_CLEAR, 'CLEAR'],
      [GITS_CMD_INT, 'INT'],
      [GITS_CMD_INV, 'INV'],
    ];
    if (r < 0.82) {
      const [op, name] = pick(devEv);
      return { words: [dw0(op), B(ev >>> 0), 0n, 0n], name: `${name}(${dev},${ev})` };
    }
    if (r < 0.86) return { words: [B(GITS_CMD_INVALL), 0n, B(icid), 0n], name: `INVALL(${icid})` };
    if (r < 0.89) return { words: [B(GITS_CMD_SYNC), 0n, B(rd) << 16n, 0n], name: 'SYNC' };
    if (r < 0.92) {
      const rd2 = chance(0.95) ? int(x.cfg.vcpus) : int(0x10000);
      return { words: [B(GITS_CMD_MOVALL), 0n, B(rd) << 16n, B(rd2) << 16n], name: `MOVALL(${rd},${rd2})` };
    }
    if (x.aimed) return { words: [B(GITS_CMD_SYNC), 0n, B(rd) << 16n, 0n], name: 'SYNC' };
    if (x.cfg.direct && chance(0.6)) return vcommand(x, dev, ev, lpi, rd);
    // Garbage: random words, a random opcode. A MAPD among them would name an ITT anywhere.
    const g = [0, 1, 2, 3].map(() => (B(u32()) << 32n) | B(u32()));
    if ((g[0] & 0xffn) === B(GITS_CMD_MAPD)) x.wild = true;
    return { words: g, name: `garbage(${hex(Number(g[0] & 0xffn))})` };
  }

  /** GICv4.1 V-commands with colliding fields (vPEIDs mostly in range, vINTIDs mostly small). */
  function vcommand(
    x: World,
    dev: number,
    ev: number,
    lpi: number,
    rd: number,
  ): { words: bigint[]; name: string } {
    const B = BigInt;
    const vpe = chance(0.9) ? int(x.cfg.vcpus) : int(0x10000);
    const db = chance(0.3) ? 1023 : lpi;
    const r = rnd();
    if (r < 0.25) {
      const valid = chance(0.8);
      const bits = chance(0.9) ? 14 + int(x.cfg.lpiIdBits - 13) : int(256);
      const vpt = x.vptArea + (vpe & 1) * 0x10000;
      const vconf = B((x.lpi as LpiTables).propBase) & 0xfffffffff0000n;
      return {
        words: [
          B(GITS_CMD_VMAPP) | (chance(0.9) ? 1n << 8n : 0n) | (chance(0.5) ? 1n << 9n : 0n) | vconf,
          B(db >>> 0) | (B(vpe) << 32n),
          (B(rd) << 16n) | (valid ? 1n << 63n : 0n),
          (B(vpt) & 0xfffffffff0000n) | B((bits - 1) & 0xff),
        ],
        name: `VMAPP(${vpe},${rd},${bits},${valid ? 'V' : '-'})`,
      };
    }
    const dw0 = (op: number) => B(op) | (B(dev >>> 0) << 32n);
    if (r < 0.5) {
      if (x.mapped.length < 256) x.mapped.push([int(x.cfg.its), dev, ev]);
      return {
        words: [dw0(GITS_CMD_VMAPTI), B(ev >>> 0) | (B(vpe) << 32n), B(lpi >>> 0) | (B(db >>> 0) << 32n), 0n],
        name: `VMAPTI(${dev},${ev},${lpi},${vpe})`,
      };
    }
    if (r < 0.6)
      return {
        words: [dw0(GITS_CMD_VMOVI), B(ev >>> 0) | (B(vpe) << 32n), 0n, 0n],
        name: `VMOVI(${dev},${ev},${vpe})`,
      };
    if (r < 0.7)
      return {
        words: [
          B(GITS_CMD_VMOVP),
          B(vpe) << 32n,
          (B(rd) << 16n) | (chance(0.3) ? 1n << 63n : 0n),
          B(db >>> 0),
        ],
        name: `VMOVP(${vpe},${rd})`,
      };
    if (r < 0.8) {
      const sgi = int(16);
      return {
        words: [
          B(GITS_CMD_VSGI) | (B(u32() & 0xff) << 20n) | (B(u32() & 7) << 8n) | (B(sgi) << 32n),
          B(vpe) << 32n,
          0n,
          0n,
        ],
        name: `VSGI(${vpe},${sgi})`,
      };
    }
    const op = pick([GITS_CMD_VSYNC, GITS_CMD_VINVALL, GITS_CMD_INVDB, GITS_CMD_VMAPI]);
    return { words: [dw0(op), B(ev >>> 0) | (B(vpe) << 32n), 0n, 0n], name: `V(${hex(op)},${vpe})` };
  }

  function msi(x: World): string {
    // Mostly an event the guest mapped (it may have been unmapped since), else anything.
    const m = x.mapped.length > 0 && chance(x.aimed ? 0.95 : 0.8) ? pick(x.mapped) : undefined;
    const k = m ? m[0] : int(x.cfg.its);
    const dev = m ? m[1] : chance(0.9) ? int(AIMED_DEVS) : u32();
    const ev = m ? m[2] : chance(0.9) ? int(8) : u32();
    // A stale translation could make any LPI pending: the whole store, not the books.
    touched.its = k;
    touched.lpiAll = true;
    if (chance(0.2)) {
      desc = `GITS_TRANSLATER write ${ev} on ITS ${k}`;
      cpu(x).writel(x.gic.its(k).base + GITS_TRANSLATER, ev);
      return 'msi';
    }
    const doorbell = chance(0.95) ? x.gic.its(k).doorbell : u32();
    desc = `signalMsi(${hex(doorbell)}, ${dev}, ${ev})`;
    try {
      const res = x.gic.signalMsi({ doorbell, devid: dev, eventid: ev });
      desc += ` → ${res}`;
      if (res === 'delivered') counts.msiDelivered++;
    } catch (e) {
      hostError(e);
    }
    return 'msi';
  }

  /** Host API calls with valid, boundary and misuse arguments: only VgicError may come out. */
  function host(x: World): string {
    const g = x.gic;
    const arg = (valid: () => unknown): unknown => (chance(0.85) ? valid() : pick(MISUSE));
    const r = rnd();
    const calls: [string, () => unknown][] = [
      [
        'irqLine',
        () =>
          g.irqLine(
            arg(() => (chance(0.9) ? 32 + int(x.cfg.spis + 8) : pick(BOUNDARY))) as number,
            chance(0.5),
          ),
      ],
      [
        'ppiLine',
        () => g.ppiLine(arg(() => int(x.cfg.vcpus + 1)) as number, arg(() => int(40)) as number, chance(0.5)),
      ],
      [
        'setLineLevel',
        () =>
          g.setLineLevel(
            arg(() => int(x.cfg.vcpus)) as number,
            arg(() => 32 * int(x.cfg.spis / 32 + 2)) as number,
            arg(u32) as number,
          ),
      ],
      [
        'getLineLevel',
        () =>
          g.getLineLevel(
            arg(() => int(x.cfg.vcpus)) as number,
            arg(() => 32 * int(x.cfg.spis / 32 + 2)) as number,
          ),
      ],
      ['readDistReg', () => g.readDistReg(arg(() => gicdOff() & ~3) as number, pick([4, 8, 4]) as 4 | 8)],
      [
        'writeDistReg',
        () =>
          g.writeDistReg(arg(() => gicdOff() & ~3) as number, arg(u32) as number, pick([4, 8, 4]) as 4 | 8),
      ],
      [
        'readRedistReg',
        () =>
          g.readRedistReg(
            arg(() => int(x.cfg.vcpus)) as number,
            arg(() => pick(GICR_OFFS)) as number,
            pick([4, 8]) as 4 | 8,
          ),
      ],
      [
        'writeRedistReg',
        () => {
          const off = arg(() => pick(GICR_OFFS)) as number;
          if (off === GICR_PROPBASER || off === GICR_PENDBASER) x.wild = true;
          g.writeRedistReg(
            arg(() => int(x.cfg.vcpus)) as number,
            off,
            arg(u32) as number,
            pick([4, 8]) as 4 | 8,
          );
        },
      ],
      [
        'readCpuSysreg',
        () =>
          touched.intids.push(
            g.readCpuSysreg(arg(() => int(x.cfg.vcpus)) as number, arg(() => pick(ENCODINGS)) as number),
          ),
      ],
      [
        'writeCpuSysreg',
        () => {
          const v = arg(() => int(x.cfg.vcpus)) as number;
          const enc = arg(() => pick(ENCODINGS)) as number;
          const value = arg(u32);
          if (typeof value === 'number') touched.intids.push(value);
          g.writeCpuSysreg(v, enc, value as number);
        },
      ],
      [
        'advanceTime',
        () => g.advanceTime(arg(() => (chance(0.95) ? int(1e6) : pick([0, 2 ** 53 - 1, 2 ** 40]))) as number),
      ],
      ['counter', () => g.counter64()],
      ['stats', () => g.stats()],
    ];
    if (x.cfg.gicVersion === 2) {
      calls.push(
        [
          'readCpuReg',
          () => g.readCpuReg(arg(() => int(x.cfg.vcpus)) as number, arg(() => pick(GICC_OFFS)) as number),
        ],
        [
          'writeCpuReg',
          () =>
            g.writeCpuReg(
              arg(() => int(x.cfg.vcpus)) as number,
              arg(() => pick(GICC_OFFS)) as number,
              arg(u32) as number,
            ),
        ],
        [
          'readDistRegAs',
          () =>
            g.readDistRegAs(arg(() => int(x.cfg.vcpus)) as number, arg(() => gicdOff() & 0xffc) as number),
        ],
        [
          'writeDistRegAs',
          () =>
            g.writeDistRegAs(
              arg(() => int(x.cfg.vcpus)) as number,
              arg(() => (chance(0.3) ? 0xf00 + 4 * int(12) : gicdOff() & 0xffc)) as number,
              arg(u32) as number,
            ),
        ],
      );
    }
    if (x.cfg.its > 0) {
      const k = int(x.cfg.its);
      calls.push(
        ['itsReadReg', () => g.its(k).readReg(arg(() => pick(ITS_OFFS)) as number, pick([4, 8]) as 4 | 8)],
        [
          'itsWriteReg',
          () => {
            const off = arg(() => pick(ITS_OFFS)) as number;
            if (typeof off === 'number' && touchesBase('its', off, off, 8)) x.wild = true;
            g.its(k).writeReg(off, arg(u32) as number, pick([4, 8]) as 4 | 8);
          },
        ],
        ['savePendingTables', () => g.savePendingTables()],
        ['saveTables', () => g.its(k).saveTables()],
        [
          'restoreTables',
          () => {
            x.wild = true; // saved chains in guest memory are trusted only as far as they check out
            g.its(k).restoreTables();
          },
        ],
        ['itsStats', () => g.its(k).stats()],
      );
    }
    if (x.cfg.direct) {
      // Forwarding of mostly-mapped (device, event) pairs, and vCPUs blocking (non-resident with
      // the doorbell) between their instructions: the VPT rules are checked after each.
      const d = rndDirect;
      const msi = () => ({
        doorbell: d() < 0.95 ? x.gic.itsBases[Math.floor(d() * x.cfg.its)] + GITS_TRANSLATER : u32(),
        devid: d() < 0.9 ? Math.floor(d() * (AIMED_DEVS - 1)) : u32(),
        eventid: d() < 0.9 ? Math.floor(d() * 8) : u32(),
      });
      calls.push(
        [
          'setForwarding',
          () => {
            g.setForwarding(arg(msi) as ReturnType<typeof msi>);
            counts.forwarded++;
          },
        ],
        ['unsetForwarding', () => g.unsetForwarding(arg(msi) as ReturnType<typeof msi>)],
        [
          'setForwarding',
          () => {
            g.setForwarding(msi());
            counts.forwarded++;
          },
        ],
        ['vpeStatus', () => g.vpeStatus(arg(() => Math.floor(d() * x.cfg.vcpus)) as number)],
        ['wfiPoll', () => x.cpus[Math.floor(d() * x.cfg.vcpus)].wfiPoll()],
      );
    }
    let [name, call] = calls[Math.floor(r * calls.length)];
    // An aimed epoch's host leaves table bases and saved tables alone (they would make it wild).
    if (x.aimed && AIMED_HOST_SKIP.has(name)) [name, call] = ['stats', () => g.stats()];
    desc = `host ${name}`;
    if (HEAVY_HOST.has(name)) touched.heavy = true;
    try {
      call();
    } catch (e) {
      hostError(e);
    }
    return 'host';
  }

  function hostError(e: unknown): void {
    if (!(e instanceof VgicError)) throw e;
    counts.hostErrors++;
  }

  function timeOp(x: World): string {
    const c = cpu(x);
    const r = rnd();
    if (r < 0.4) {
      const ahead = BigInt(chance(0.8) ? int(5000) : u32());
      desc = `timer on vCPU ${c.index} in ${ahead}`;
      c.writeSysreg64(CNTV_CVAL_EL0, (x.gic.counter64() + ahead) & 0xffffffffffffffffn);
      c.writeSysreg(CNTV_CTL_EL0, chance(0.8) ? 1 : int(8));
      return 'timer';
    }
    if (x.cfg.time === 'virtual') {
      const t = chance(0.97) ? int(10_000) : pick([2 ** 53 - 1, 2 ** 32, 2 ** 52]);
      desc = `advanceTime(${t})`;
      x.gic.advanceTime(t);
    } else desc = 'real time: no advance';
    return 'time';
  }

  function stepCpu(x: World): string {
    const c = cpu(x);
    if (chance(0.3)) {
      desc = `wfiPoll on vCPU ${c.index}`;
      c.wfiPoll();
    } else {
      desc = `step vCPU ${c.index}`;
      c.step();
    }
    return 'step';
  }

  /** A guest points a table or queue base anywhere: above 4 GiB, at the end of RAM, bit 31 set. */
  function wildBase(x: World): string {
    x.wild = true;
    touched.heavy = true;
    const c = cpu(x);
    const addr = wildAddr(x);
    const lo = ((addr % U32) & ~0xfff) | int(256);
    const hi = Math.floor(addr / U32) | (chance(0.8) ? 0x80000000 : 0) | (chance(0.1) ? u32() : 0);
    const r = rnd();
    if (r < 0.6) {
      const k = int(x.cfg.its);
      const reg = pick([GITS_CBASER, GITS_BASER, GITS_BASER + 8]);
      const base = x.gic.its(k).base;
      if (chance(0.5)) c.writel(base + GITS_CTLR, 0); // BASER/CBASER are writable only while disabled
      desc = `ITS ${k} reg ${hex(reg)} = ${hex(hi >>> 0)}:${hex(lo >>> 0)}`;
      c.mmioWrite(base + reg, 8, lo >>> 0, hi >>> 0);
      if (chance(0.7)) c.writel(base + GITS_CTLR, GITS_CTLR_ENABLED);
    } else {
      const v = int(x.cfg.vcpus);
      const rd = x.rdBase + v * rdStride(x);
      const reg = pick([GICR_PROPBASER, GICR_PENDBASER]);
      if (chance(0.5)) c.writel(rd + GICR_CTLR, 0);
      desc = `GICR ${v} reg ${hex(reg)} = ${hex(hi >>> 0)}:${hex(lo >>> 0)}`;
      c.mmioWrite(rd + reg, 8, lo >>> 0, (hi & 0x7fffffff) >>> 0);
      if (chance(0.7)) c.writel(rd + GICR_CTLR, 1);
    }
    return 'wild-base';
  }

  /** The guest rewrites its device table, an ITT or its collection table behind the ITS's back. */
  function tamper(x: World): string {
    const k = int(x.cfg.its);
    const it = x.itsGuests[k];
    const where = pick([
      it.deviceTable,
      x.ittArea[k],
      it.collectionTable,
      x.ittArea[k] + int(AIMED_DEVS) * ITT_DEV_BYTES,
    ]);
    const at = where + 8 * int(chance(0.7) ? 32 : 4096);
    const value = chance(0.5) ? 0n : (BigInt(u32()) << 32n) | BigInt(u32());
    desc = `tamper ITS ${k} table word at ${hex(at)} = ${value}`;
    touched.heavy = true;
    x.cpus[0].writeq(at, value);
    x.tamperGen[k] = cacheGeneration(x.gic.state, k);
    return 'tamper';
  }

  /** The guest re-initialises its LPI tables and ITSes with sane values (back to aimed operation). */
  function reinit(x: World): string {
    desc = 'reinit: distributor, CPU interfaces, SPIs, LPI tables, ITSes';
    touched.heavy = true;
    guestSetup(x);
    if (x.cfg.its > 0) setupLpis(x, true);
    // Zeroed device tables: the ITS maps nothing any more.
    x.setupDevs.clear();
    if (x.aimed) x.mapped.length = 0;
    return 'reinit';
  }

  function guestSetup(x: World): void {
    if (x.cfg.gicVersion === 2) {
      const g = x.v2guests;
      g[0].enableDistributor();
      for (const gg of g) gg.enableCpu();
      for (let n = 32; n < 32 + Math.min(x.cfg.spis, 64); n++) {
        g[0].setPriority(n, (n * 8) & 0xf8);
        g[0].setEdge(n, n % 3 === 0);
        g[0].setTargets(n, n % 5 === 0 ? 0xff : 1 << (n % x.cfg.vcpus));
        g[0].enableIrq(n);
      }
      for (const gg of g) for (let n = 0; n < 32; n++) gg.enableIrq(n);
      return;
    }
    x.guests[0].enableDistributor();
    for (const g of x.guests) g.enableCpu();
    // Enable and route some SPIs, PPIs and SGIs, with varied priorities, edge and level.
    for (let n = 32; n < 32 + Math.min(x.cfg.spis, 64); n++) {
      x.guests[0].setPriority(n, (n * 8) & 0xf8);
      x.guests[0].setEdge(n, n % 3 === 0);
      x.guests[0].routeSpi(n, x.guests[n % x.cfg.vcpus].affinity);
      x.guests[0].enableIrq(n);
    }
    for (const g of x.guests) for (let n = 0; n < 32; n++) g.enableIrq(n);
  }

  function snapRestore(x: World): { kind: string; settled: boolean; next?: World } {
    desc = 'snapshot';
    touched.heavy = true;
    const blob = x.gic.snapshot();
    // Settled only until the next instruction: a vCPU that re-enters holds state in its LRs again.
    settledCheck(x.gic, 'after snapshot()');
    if (chance(0.3)) return { kind: 'snapshot', settled: false };
    const mutated = chance(0.5);
    if (mutated) {
      const words = new Int32Array(blob.buffer);
      const n = 1 + int(3);
      for (let e = 0; e < n; e++) {
        const wi = int(words.length);
        if (chance(0.5)) words[wi] ^= 1 << int(32);
        else words[wi] = pick(BOUNDARY) | 0;
      }
      if (chance(0.9)) sealSnapshot(blob.buffer);
      desc = `restore of a mutated snapshot (${n} words)`;
    } else desc = 'snapshot + restore';
    let gic: Vgic;
    try {
      gic = Vgic.restore(blob, { ...x.gic.addressMap(), shared: x.cfg.shared });
    } catch (e) {
      if (!(e instanceof VgicError) || !mutated) throw e;
      counts.restoresRefused++;
      return { kind: 'restore', settled: false };
    }
    counts.restoresAccepted++;
    settledCheck(gic, 'after restore()'); // before the guest's next instruction refills the LRs
    return { kind: 'restore', settled: false, next: adopt(x, gic) };
  }

  /** A GIC right after snapshot() or restore(): every interrupt on exactly its oracle's list. */
  function settledCheck(gic: Vgic, when: string): void {
    const c0 = performance.now();
    const bad = checkInvariants(gic, { settled: true });
    if (bad.length > 0) settledBad = [when, ...bad];
    insideCheckMs += performance.now() - c0;
  }

  function wildAddr(x: World): number {
    const end = RAM_BASE + x.cfg.ramSize;
    const r = rnd();
    if (r < 0.25) return end - 8 * int(64); // at the end of RAM
    if (r < 0.45) return U32 + int(2 ** 20) * 4096; // above 4 GiB
    if (r < 0.6) return 0x80000000 + int(2 ** 19) * 4096; // bit 31 set
    if (r < 0.7) return 2 ** 47 + int(2 ** 20) * 4096;
    if (r < 0.8) return int(2 ** 20) * 4096;
    return RAM_BASE + int(x.cfg.ramSize / 4096) * 4096; // anywhere in RAM, over other tables
  }

  // ---- worlds ----

  function newWorld(r: () => number): World {
    const i = (n: number) => Math.floor(r() * n);
    // One world in five is a GICv2 (no ITS; at most 8 vCPUs).
    const v2 = r() < 0.2;
    const its = v2 ? 0 : [0, 1, 1, 2][i(4)];
    const cfg: Config = {
      gicVersion: v2 ? 2 : 3,
      vcpus: [1, 2, 2, 8][i(4)],
      lrs: [1, 4, 4, 16][i(4)],
      its,
      lpiIdBits: its === 0 || o.light ? 14 : [14, 14, 14, 15, 16][i(5)],
      itsCacheSize: o.light ? [16, 1024][i(2)] : [16, 1024, 65536][i(3)],
      time: r() < 0.25 ? 'real' : 'virtual',
      shared: r() < 0.5,
      translationCache: its > 0 && r() < 0.2 ? 'global-lru' : 'per-its',
      direct: its > 0 && rndDirect() < 0.3,
      ramSize: 8 << 20,
      spis: [32, 64, 224][i(3)],
      aimed: its > 0 && r() < 0.35,
    };
    // Half the GICv4.1 epochs are aimed, so that forwarding finds mapped LPIs to act on.
    if (cfg.direct && !cfg.aimed && rndDirect() < 0.5) cfg.aimed = true;
    const opts: VgicV3Options = {
      ...(v2 ? { gicVersion: 2 as const } : {}),
      vcpus: cfg.vcpus,
      lrs: cfg.lrs,
      spis: cfg.spis,
      its: cfg.its,
      shared: cfg.shared,
      time: cfg.time,
      ram: { base: RAM_BASE, size: cfg.ramSize },
      ...(cfg.its > 0
        ? { lpiIdBits: cfg.lpiIdBits, itsCacheSize: cfg.itsCacheSize, translationCache: cfg.translationCache }
        : {}),
      ...(cfg.direct ? { directInjection: 'gicv4.1' as const } : {}),
    };
    const gic = Vgic.create(opts);
    if (cfg.direct) counts.directEpochs++;
    const x = adopt(undefined, gic, cfg);
    guestSetup(x);
    if (cfg.its > 0) setupLpis(x, false);
    return x;
  }

  /** Rebuilds the guest's view around a GIC (a new one, or one restored from `prev`'s snapshot). */
  function adopt(prev: World | undefined, gic: Vgic, cfg0?: Config): World {
    const cfg = cfg0 ?? (prev as World).cfg;
    const rdBase = gic.addressMap().redistRegions?.[0]?.base ?? 0;
    const cpus = Array.from({ length: gic.nVcpus }, (_, v) => gic.vcpu(v));
    const v2 = gic.gicVersion === 2;
    const guests = v2 ? [] : cpus.map((c) => new GicV3Guest(c, VIRT_GICD_BASE, rdBase));
    const v2guests = v2 ? cpus.map((c) => new GicV2Guest(c)) : [];
    if (prev) {
      // The guest's memory layout carries over: same RAM, same tables.
      const itsGuests = prev.itsGuests.map((it, k) => rebindIts(it, cpus[0], gic.its(k).base));
      const lpi =
        prev.lpi &&
        (Object.assign(Object.create(LpiTables.prototype), prev.lpi, { cpu: cpus[0] }) as LpiTables);
      return {
        ...prev,
        gic,
        cpus,
        guests,
        v2guests,
        itsGuests,
        lpi,
        acked: cpus.map(() => []),
        tamperGen: prev.tamperGen.map(() => -1),
      };
    }
    return {
      gic,
      cfg,
      cpus,
      guests,
      v2guests,
      itsGuests: [],
      lpi: undefined,
      rdBase,
      ittArea: [],
      bigItt: [],
      vptArea: 0,
      mapped: [],
      acked: cpus.map(() => []),
      wild: false,
      tamperGen: Array.from({ length: cfg.its }, () => -1),
      aimed: cfg.aimed,
      setupDevs: new Set(),
    };
  }

  function rebindIts(it: ItsGuest, c: VCpu, base: number): ItsGuest {
    const n = new ItsGuest(c, it.alloc, base);
    n.cmdq = it.cmdq;
    n.cmdqBytes = it.cmdqBytes;
    n.deviceTable = it.deviceTable;
    n.collectionTable = it.collectionTable;
    return n;
  }

  /** LPI tables and every ITS, from scratch (`again`: tables already allocated, re-programmed). */
  function setupLpis(x: World, again: boolean): void {
    const c = x.cpus[0];
    for (const g of x.guests) c.writel(g.rd + GICR_CTLR, 0);
    if (!again) {
      const alloc = new GuestAllocator(RAM_BASE, x.cfg.ramSize);
      x.lpi = new LpiTables(c, alloc, x.cfg.vcpus, x.cfg.lpiIdBits);
      x.lpi.fillConfig();
      for (let k = 0; k < x.cfg.its; k++) {
        const it = new ItsGuest(c, alloc, x.gic.its(k).base);
        it.init({ indirect: rnd() < 0.3 });
        if (x.cfg.direct) it.initVpeTable();
        x.itsGuests.push(it);
        x.ittArea.push(alloc.alloc(AIMED_DEVS * ITT_DEV_BYTES + 0x10000));
        x.bigItt.push(alloc.alloc(2 ** 16 * 8));
      }
      if (x.cfg.direct) x.vptArea = alloc.alloc(0x20000);
    }
    const lpi = x.lpi as LpiTables;
    x.guests.forEach((g, v) => {
      lpi.program(g.rd, v);
      lpi.enable(g.rd);
    });
    x.itsGuests.forEach((it, k) => {
      const base = x.gic.its(k).base;
      c.writel(base + GITS_CTLR, 0);
      if (again) {
        // Invalid first: the ITS forgets what it mapped through whatever tables it had; then a
        // zeroed flat device table, the collection table and the queue where the guest keeps them.
        c.writeq(base + GITS_BASER, 0n);
        c.writeq(base + GITS_BASER + 8, 0n);
        x.gic.memory.fillZero(it.deviceTable, 0x10000);
        it.writeBaser(0, it.deviceTable, 1, false);
        it.writeBaser(1, it.collectionTable, 1, false);
        c.writeq(base + GITS_CBASER, BigInt(it.cmdq) | BigInt(it.cmdqBytes / 4096 - 1) | (1n << 63n));
        c.writeq(base + GITS_CWRITER, 0n);
      }
      // A two-level device table: a level-2 page for the aimed DeviceIDs.
      if (!again && (c.readq(base + GITS_BASER) >> 62n) & 1n) it.mapL2Page(0);
      it.enable();
    });
    x.wild = false;
    x.tamperGen = x.tamperGen.map(() => -1);
  }
}

/** Host calls that reach the LPI store or the ITS books: the whole state is checked after them. */
const HEAVY_HOST = new Set([
  'writeRedistReg',
  'itsWriteReg',
  'savePendingTables',
  'saveTables',
  'restoreTables',
]);

const AIMED_HOST_SKIP = new Set(['writeRedistReg', 'itsWriteReg', 'restoreTables']);

/** GICR RD-frame registers (and neighbours) the guest aims at. */
const GICR_OFFS = [0x0, 0x4, 0x8, 0xc, 0x10, 0x14, 0x40, 0x48, 0x70, 0x78, 0xa0, 0xb0, 0xc0, 0xffe8, 0xfff8];
/** Registers whose writes do not switch the ITS or the redistributor off or move its tables. */
const ITS_QUIET_OFFS = [0x4, 0x8, 0xc, 0x88, 0x90, 0x94, 0xffe8, 0x10040, 0x10044];
const GICR_QUIET_OFFS = [0x4, 0x8, 0xc, 0x10, 0x14, 0x40, 0x48, 0xa0, 0xb0, 0xc0, 0xffe8];
const ITS_OFFS = [
  0x0, 0x4, 0x8, 0xc, 0x80, 0x84, 0x88, 0x8c, 0x90, 0x94, 0x100, 0x104, 0x108, 0x10c, 0x130, 0x138, 0xffe8,
  0x10040, 0x10044,
];

/** Does a write reach a table or queue base register (which the engine then treats as wild)? */
function touchesBase(frame: string, off: number, addr: number, size: number): boolean {
  const o = off >= 0 ? off : addr;
  const hit = (reg: number) => o < reg + 8 && o + size > reg;
  if (frame === 'gicr-rd') return hit(GICR_PROPBASER) || hit(GICR_PENDBASER);
  return hit(GITS_CBASER) || hit(GITS_BASER) || hit(GITS_BASER + 8);
}

/** The GICv2 CPU interface's registers (arch/gicv2.ts), for MMIO and GRP_CPU_REGS. */
const GICC_OFFS = [
  0x0, 0x4, 0x8, 0xc, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x28, 0xd0, 0xd4, 0xe0, 0xfc, 0x1000,
];
const hex = (n: number): string => `0x${n.toString(16)}`;
const round = (x: number): number => Math.round(x * 1000) / 1000;
const mb = (b: number): number => Math.round(b / 2 ** 20);

/** A result as text: the verdict, the replay command on failure, per-kind times, memory. */
export function formatAdversarial(r: AdversarialResult): string {
  const lines: string[] = [];
  lines.push(
    `adversarial seed ${r.seed}: ${r.ops} operations in ${r.epochs} epochs, ${(r.elapsedMs / 1000).toFixed(1)} s (checks ${(r.checkMs / 1000).toFixed(1)} s), ${r.failures} failures`,
  );
  if (r.failure) {
    const f = r.failure;
    lines.push(`FAILED at operation ${f.op} (epoch ${f.epoch}, ${f.config}): ${f.what}`);
    for (const d of f.detail) lines.push(`  ${d}`);
    lines.push(`replay: vgic adversarial --seed ${r.seed} --ops ${f.op + 1} --trace-from ${f.op}`);
  }
  lines.push('kind            count      mean µs   p99 ms  p99.9 ms   max ms');
  for (const [k, s] of Object.entries(r.perKind)) {
    lines.push(
      `${k.padEnd(14)} ${String(s.count).padStart(9)} ${s.meanUs.toFixed(1).padStart(10)} ${s.p99Ms.toFixed(3).padStart(8)} ${s.p999Ms.toFixed(3).padStart(9)} ${s.maxMs.toFixed(3).padStart(8)}`,
    );
  }
  const m = r.memory;
  lines.push(
    `memory: heapUsed ${mb(m.heapUsedStart)} MB at start, plateau ${mb(m.heapUsedPlateau)} MB, max after warm-up ${mb(m.heapUsedMax)} MB; arrayBuffers plateau ${mb(m.arrayBuffersPlateau)} MB, max ${mb(m.arrayBuffersMax)} MB (${m.samples} samples, ${m.collections} over the bound until a forced collection)`,
  );
  const c = r.counts;
  lines.push(
    `host VgicErrors ${c.hostErrors}, restores accepted ${c.restoresAccepted} / refused ${c.restoresRefused}, cache entries compared ${c.cacheCompared}, MSIs delivered ${c.msiDelivered}, interrupts acknowledged ${c.acked}, aimed epochs ${c.aimedEpochs} (${c.setups} MAPD+MAPC+MAPTI set-ups), GICv4.1 epochs ${c.directEpochs} (${c.forwarded} LPIs forwarded)`,
  );
  lines.push(`checks: ${c.fullChecks} of the whole state, ${c.scopedChecks} of what the operation touched`);
  return lines.join('\n');
}
