/**
 * The concurrency churn (issue 13) on the threaded runtime: MSIs flying from injector threads
 * while a churn thread (vCPU 0, bench/churn-programs.ts) issues MAPD unmap/remap, DISCARD, MOVI
 * and MAPC under them and the guests acknowledge on their vCPU threads; optionally with the
 * translation cache's generation made to wrap every millisecond. At the end the runtime stops,
 * whatever is still pending is drained through the CPU interface, and the accounting closes:
 *
 *     delivered = acknowledged + merged at fold + drained + dropped   (lost = the difference: 0)
 *
 * and no interrupt appears that nobody sent (phantom: an INTID outside the devices' LPIs, or an
 * LPI taken more often than MSIs made it pending: 0).
 *
 * Who calls: test/concurrency.test.ts (short runs, every property asserted) and `vgic churn`
 * (cli/main.ts: runChurnLong, for seconds to hours). Runs on the main thread, which owns the GIC
 * between phases; while the threads run it touches only Atomics and, for the wraps, ITS 0's
 * generation under its its_lock.
 */

import { VIRT_GITS_BASE } from '../arch/gicv3.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import { GITS_TRANSLATER } from '../arch/its.ts';
import { ICC_EOIR1_EL1, ICC_IAR1_EL1 } from '../arch/sysreg.ts';
import { lockWord, unlockWord } from '../core/locks.ts';
import { Vgic } from '../device/vgic.ts';
import { Runtime } from '../runtime/runtime.ts';
import { I_CACHE_GEN, I_LOCK, IRQ_PENDING_LATCH, IRQ_VALID } from '../state/layout.ts';
import {
  type ChurnParams,
  K_ACKED,
  K_BLOCKED,
  K_BLOCKS,
  K_BUSY,
  K_COALESCED,
  K_DELIVERED,
  W_ACKS,
  W_CHURN_DONE,
  W_CHURN_ROUNDS,
  W_SETUP,
  W_STOP_CHURN,
  W_STOP_INJ,
} from './churn-programs.ts';

export * from './churn-programs.ts';

const RAM_BASE = 0x40000000;
const RAM_SIZE = 16 << 20;
const LPI_ID_BITS = 14;
const SPURIOUS = 1023;
/** The last translation-cache generation before a wrap (its/cache.ts GEN_MAX). */
const GEN_LAST = 0x7fff;
/** How long past `ms` the MSIs may fly while a stable LPI has not been sent yet. */
const STABLE_GRACE_MS = 30_000;

export interface ChurnConfig {
  readonly vcpus: number;
  readonly vcpuThreads: number;
  readonly devices: number;
  readonly stable: number;
  readonly events: number;
  readonly injectors: number;
  readonly injectorThreads: number;
  readonly mode: ChurnParams['mode'];
  readonly wfi: boolean;
  readonly injectorDevices?: readonly (readonly number[])[];
  readonly seed: number;
  /** Make the translation cache's generation wrap again and again while the MSIs fly. */
  readonly wrapGenerations?: boolean;
}

export interface ChurnOutcome {
  readonly gic: Vgic;
  readonly cfg: ChurnConfig;
  readonly counters: Int32Array;
  readonly drained: Int32Array;
  /** INTIDs the drain took that are none of the devices' LPIs. */
  readonly drainBad: number;
  readonly reports: { kind: string; index: number; result: Record<string, number> }[];
  /** LPI slots that still hold a pending latch after the drain (slot index, valid?). */
  readonly leftover: { lpi: number; valid: boolean }[];
  /** Generation wraps seen while the MSIs flew (wrapGenerations). */
  readonly wraps: number;
  /** How long the MSIs flew (ms). */
  readonly flewMs: number;
}

/** What the main thread sees while the MSIs fly (read with Atomics; approximate mid-run). */
export interface ChurnProgress {
  readonly elapsedMs: number;
  readonly sent: number;
  readonly delivered: number;
  readonly acked: number;
  readonly wraps: number;
  readonly rounds: number;
}

export interface ChurnRunOptions {
  /** Called every progressMs while the MSIs fly. */
  readonly progress?: (p: ChurnProgress) => void;
  readonly progressMs?: number;
  /** Deadlock bound of each phase (never a timing assertion). Default 20 s. */
  readonly phaseMs?: number;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms (deadlock?)`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Acknowledges and EOIs whatever is still pending on every vCPU, counting per LPI; returns strays. */
function drain(gic: Vgic, nLpis: number, drained: Int32Array): number {
  let bad = 0;
  for (let pass = 0; pass < 3; pass++) {
    for (let v = 0; v < gic.nVcpus; v++) {
      const cpu = gic.vcpu(v);
      cpu.maskIrqs();
      for (;;) {
        cpu.step();
        const intid = cpu.readSysreg(ICC_IAR1_EL1);
        if (intid === SPURIOUS) break;
        cpu.writeSysreg(ICC_EOIR1_EL1, intid);
        const l = intid - VGIC_MIN_LPI;
        if (l >= 0 && l < nLpis) drained[l]++;
        else bad++;
      }
      // The exit prunes: an LPI left on this ap_list for another vCPU migrates now (next pass).
      cpu.exit();
    }
  }
  return bad;
}

/**
 * Runs one churn: set-up, MSIs for `ms`, injectors stopped, churn stopped, guests settle, runtime
 * stopped, drain. With wrapGenerations, every ms (under its its_lock) ITS 0's generation jumps to
 * its last value, so the churn's next invalidation wraps: a jump forward is as safe as that many
 * invalidations (no entry carries a later generation than the current one).
 */
export async function runChurn(cfg: ChurnConfig, ms: number, o: ChurnRunOptions = {}): Promise<ChurnOutcome> {
  const phaseMs = o.phaseMs ?? 20000;
  const gic = Vgic.create({
    vcpus: cfg.vcpus,
    its: 1,
    ram: { base: RAM_BASE, size: RAM_SIZE },
    lpiIdBits: LPI_ID_BITS,
  });
  const nLpis = cfg.devices * cfg.events;
  const counters = new Int32Array(new SharedArrayBuffer(K_BLOCKS * nLpis * 4));
  const params: ChurnParams = {
    vcpus: cfg.vcpus,
    devices: cfg.devices,
    events: cfg.events,
    stable: cfg.stable,
    mode: cfg.mode,
    wfi: cfg.wfi,
    injectorDevices: cfg.injectorDevices,
    counters: counters.buffer as SharedArrayBuffer,
    seed: cfg.seed,
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    doorbell: VIRT_GITS_BASE + GITS_TRANSLATER,
    lpiIdBits: LPI_ID_BITS,
  };
  const rt = Runtime.start({
    gic,
    module: new URL('./churn-programs.js', import.meta.url),
    vcpuProgram: 'churnVcpu',
    vcpuThreads: cfg.vcpuThreads,
    injectorProgram: 'churnInjector',
    injectors: cfg.injectors,
    injectorThreads: cfg.injectorThreads,
    params,
  });
  const sum = (k: number) => {
    let n = 0;
    for (let l = 0; l < nLpis; l++) n += Atomics.load(counters, k * nLpis + l);
    return n;
  };
  try {
    if (!(await rt.waitShared(W_SETUP, 1, phaseMs)))
      throw new Error('the guest did not set the ITS up in time');
    rt.go();
    const s = gic.state;
    let wraps = 0;
    const t0 = performance.now();
    const end = t0 + ms;
    let nextProgress = t0 + (o.progressMs ?? 2000);
    // A loaded host can start an injector thread late: the MSIs fly until `ms` has passed and every
    // stable LPI has been sent at least once (the checks expect each to be delivered), within a grace.
    const graceEnd = end + STABLE_GRACE_MS;
    const stableSent = () => {
      for (let l = 0; l < cfg.stable * cfg.events; l++) {
        let n = 0;
        for (let k = 0; k < K_BLOCKS; k++) n += Atomics.load(counters, k * nLpis + l);
        if (n === 0) return false;
      }
      return true;
    };
    for (let poked = false; ; ) {
      const t = performance.now();
      if (t >= end && (t >= graceEnd || stableSent())) break;
      if (cfg.wrapGenerations) {
        lockWord(s, s.its, I_LOCK);
        if (poked && s.its[I_CACHE_GEN] < GEN_LAST) wraps++;
        Atomics.store(s.its, I_CACHE_GEN, GEN_LAST);
        unlockWord(s, s.its, I_LOCK);
        poked = true;
      }
      const now = performance.now();
      if (o.progress && now >= nextProgress) {
        nextProgress = now + (o.progressMs ?? 2000);
        o.progress({
          elapsedMs: now - t0,
          sent: sum(K_DELIVERED) + sum(K_COALESCED) + sum(K_BLOCKED) + sum(K_BUSY),
          delivered: sum(K_DELIVERED),
          acked: sum(K_ACKED),
          wraps,
          rounds: Atomics.load(rt.shared, W_CHURN_ROUNDS),
        });
      }
      await sleep(cfg.wrapGenerations ? 1 : Math.min(50, Math.max(1, end - now)));
    }
    const flewMs = performance.now() - t0;
    Atomics.store(rt.shared, W_STOP_INJ, 1);
    const injReports = await within(rt.injectorsDone(), phaseMs, 'injectors');
    if (injReports.length !== cfg.injectors)
      throw new Error(`${injReports.length} of ${cfg.injectors} injectors reported`);
    Atomics.store(rt.shared, W_STOP_CHURN, 1);
    if (!(await rt.waitShared(W_CHURN_DONE, 1, phaseMs)))
      throw new Error('the churn thread did not stop in time');
    // Let the guests take what is pending: stop once their acks have not moved for 20 ms.
    const acks = () => {
      let n = 0;
      for (let v = 0; v < cfg.vcpus; v++) n += Atomics.load(rt.shared, W_ACKS + v);
      return n;
    };
    const settleEnd = performance.now() + 3000;
    for (let last = -1; performance.now() < settleEnd; ) {
      const now = acks();
      if (now === last) break;
      last = now;
      await sleep(20);
    }
    const reports = await rt.stop(phaseMs);
    const drained = new Int32Array(nLpis);
    const drainBad = drain(gic, nLpis, drained);
    const leftover: { lpi: number; valid: boolean }[] = [];
    for (let l = 0; l < nLpis; l++) {
      const f = s.irqFlags[s.lpiBase + l];
      if (f & IRQ_PENDING_LATCH) leftover.push({ lpi: l, valid: (f & IRQ_VALID) !== 0 });
    }
    return { gic, cfg, counters, drained, drainBad, reports, leftover, wraps, flewMs };
  } catch (e) {
    await rt.stop(5000).catch(() => undefined);
    throw e;
  }
}

export interface ChurnTotals {
  injected: number;
  delivered: number;
  coalesced: number;
  blocked: number;
  busy: number;
  acked: number;
  drained: number;
  merged: number;
  dropped: number;
  /** delivered − acked − merged − drained − dropped: 0. */
  lost: number;
  /** Interrupts taken that nobody sent: stray INTIDs, or an LPI taken more often than delivered. */
  phantom: number;
}

/** The accounting of one run (no assertion: the test asserts, the CLI reports). */
export function churnTotals(o: ChurnOutcome): ChurnTotals {
  const { gic, cfg, counters, drained, reports } = o;
  const nLpis = cfg.devices * cfg.events;
  const sum = (k: number) => {
    let n = 0;
    for (let l = 0; l < nLpis; l++) n += counters[k * nLpis + l];
    return n;
  };
  const st = gic.stats();
  let drainedAll = 0;
  for (let l = 0; l < nLpis; l++) drainedAll += drained[l];
  const merged = st.vcpus.reduce((a, v) => a + v.foldMerged, 0);
  let phantom = o.drainBad;
  for (const r of reports) if (r.kind === 'vcpu') phantom += r.result.bad ?? 0;
  for (let l = 0; l < nLpis; l++)
    phantom += Math.max(0, counters[K_ACKED * nLpis + l] + drained[l] - counters[K_DELIVERED * nLpis + l]);
  return {
    injected: sum(K_DELIVERED) + sum(K_COALESCED) + sum(K_BLOCKED) + sum(K_BUSY),
    delivered: sum(K_DELIVERED),
    coalesced: sum(K_COALESCED),
    blocked: sum(K_BLOCKED),
    busy: sum(K_BUSY),
    acked: sum(K_ACKED),
    drained: drainedAll,
    merged,
    dropped: st.lpiPendingDropped,
    lost: sum(K_DELIVERED) - sum(K_ACKED) - merged - drainedAll - st.lpiPendingDropped,
    phantom,
  };
}

/** The long mode's shape: churn (e) of test/concurrency.test.ts, the generation wrapping every ms. */
export const CHURN_LONG: Omit<ChurnConfig, 'seed'> = {
  vcpus: 4,
  vcpuThreads: 2,
  devices: 8,
  stable: 4,
  events: 8,
  injectors: 8,
  injectorThreads: 2,
  mode: 'mixed',
  wfi: false,
  wrapGenerations: true,
};

export interface ChurnLongResult {
  seconds: number;
  seed: number;
  config: Omit<ChurnConfig, 'seed'>;
  flewMs: number;
  totals: ChurnTotals;
  wraps: number;
  churn: Record<string, number>;
  /** ITS command errors and GIC error counters that are not 0 (the churn sends valid commands only). */
  errors: Record<string, number>;
  leftover: number;
  failed: boolean;
}

/** `vgic churn --seconds N`: one long run, its figures, failed on any phantom, loss or error. */
export async function runChurnLong(o: {
  seconds: number;
  seed: number;
  progress?: (p: ChurnProgress) => void;
}): Promise<ChurnLongResult> {
  const cfg: ChurnConfig = { ...CHURN_LONG, seed: o.seed };
  const out = await runChurn(cfg, o.seconds * 1000, { progress: o.progress, progressMs: 2000 });
  const totals = churnTotals(out);
  const churn = out.reports.find((r) => r.kind === 'vcpu' && r.index === 0)?.result ?? {};
  const errors: Record<string, number> = {};
  const st = out.gic.stats();
  for (const k of ['mmioBadAccess', 'sysregUnknown', 'injectRejected', 'msiNoIts', 'lpiTableFault'] as const)
    if (st[k] !== 0) errors[k] = st[k];
  const its = out.gic.its(0).stats();
  for (const [k, n] of Object.entries(its.errors)) if (n !== 0) errors[`its.${k}`] = n;
  if (churn.sendFailed) errors.sendFailed = churn.sendFailed;
  return {
    seconds: o.seconds,
    seed: o.seed,
    config: CHURN_LONG,
    flewMs: Math.round(out.flewMs),
    totals,
    wraps: out.wraps,
    churn,
    errors,
    leftover: out.leftover.length,
    failed:
      totals.phantom !== 0 ||
      totals.lost !== 0 ||
      totals.busy !== 0 ||
      out.leftover.length !== 0 ||
      Object.keys(errors).length > 0,
  };
}

export function formatChurnLong(r: ChurnLongResult): string {
  const t = r.totals;
  const c = r.churn;
  const ops = ['rounds', 'mapdUnmap', 'mapdRemap', 'discard', 'mapti', 'movi', 'mapc']
    .map((k) => `${k} ${c[k] ?? 0}`)
    .join(', ');
  const lines = [
    `churn seed ${r.seed}: MSIs flew ${(r.flewMs / 1000).toFixed(1)} s (${r.config.injectors} injectors on ${r.config.injectorThreads} threads, ${r.config.vcpus} vCPUs on ${r.config.vcpuThreads} threads, ${r.config.devices} devices × ${r.config.events} events, ${r.config.stable} stable)`,
    `MSIs sent ${t.injected}: delivered ${t.delivered}, coalesced ${t.coalesced}, blocked ${t.blocked}, busy ${t.busy}`,
    `interrupts acked ${t.acked}, merged at fold ${t.merged}, drained ${t.drained}, dropped by commands ${t.dropped}`,
    `phantom interrupts ${t.phantom}, lost interrupts ${t.lost}, left pending ${r.leftover}`,
    `translation-cache generation wraps crossed ${r.wraps}`,
    `churn: ${ops}`,
  ];
  if (Object.keys(r.errors).length > 0) lines.push(`errors: ${JSON.stringify(r.errors)}`);
  lines.push(r.failed ? 'FAILED' : 'ok: no phantom, no loss');
  return lines.join('\n');
}
