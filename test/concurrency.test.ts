/**
 * Concurrency of the threaded runtime (src/runtime): N injector threads × M vCPU threads, with a
 * churn thread (vCPU 0) issuing ITS commands — MAPD unmap/remap, DISCARD, MOVI, MAPC — while MSIs
 * fly. The race of KVM's CVE-2024-26598 (an MSI hitting the translation cache while DISCARD frees
 * the LPI) is one of them. The run and its accounting: src/bench/churn.ts (also `vgic churn`), the
 * programs src/bench/churn-programs.ts.
 *
 * Properties:
 *  - no exception in any thread (rt.stop resolves, every program reported);
 *  - no deadlock: every phase ends within a bound (rt.stop(timeout) throws on timeout; the test
 *    has its own timeout too);
 *  - conservation over all LPIs: delivered = acknowledged + merged at fold + drained + dropped;
 *  - per stable LPI (never unmapped; its collection only re-targeted): every MSI answered
 *    delivered or coalesced, acked + drained ≤ delivered, and delivered ≥ 1 ⇒ acked + drained ≥ 1;
 *  - no command the churn sent failed (ITS error counters 0), GIC error counters 0.
 *
 * CONCURRENCY_MS (default 300) sets how long the MSIs fly in each run; CONCURRENCY_SEED the churn's
 * choices (default: a fixed seed per test).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ChurnConfig,
  type ChurnOutcome,
  churnTotals,
  K_ACKED,
  K_BLOCKED,
  K_BUSY,
  K_COALESCED,
  K_DELIVERED,
  K_OTHER,
  runChurn,
} from '../src/bench/churn.ts';
import { LPI_SET_NEW, lpiSetPending } from '../src/core/lpi.ts';
import { VGIC_MIN_LPI } from '../src/index.ts';
import { MSI_DELIVERED } from '../src/its/translate.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const RUN_MS = Number(process.env.CONCURRENCY_MS ?? 300);
const SEED = process.env.CONCURRENCY_SEED === undefined ? undefined : Number(process.env.CONCURRENCY_SEED);
/** Deadlock bounds (never timing assertions): generous for a loaded 2-core machine. */
const PHASE_MS = 20000;
const TEST_TIMEOUT_MS = 120000 + 2 * RUN_MS;

type RunConfig = ChurnConfig;
type RunOutcome = ChurnOutcome;

/** One churn (bench/churn.ts); with the generation wrapping, at least 1.5 s of MSIs. */
function run(cfg: RunConfig): Promise<RunOutcome> {
  return runChurn(cfg, cfg.wrapGenerations ? Math.max(RUN_MS, 1500) : RUN_MS, { phaseMs: PHASE_MS });
}

type Totals = ReturnType<typeof churnTotals>;

/** Every property of the file on one run; returns the totals (for the diagnostics). */
function check(o: RunOutcome): Totals {
  const { gic, cfg, counters, drained, reports } = o;
  const nLpis = cfg.devices * cfg.events;
  const at = (k: number, l: number) => counters[k * nLpis + l];
  const sum = (k: number) => {
    let n = 0;
    for (let l = 0; l < nLpis; l++) n += at(k, l);
    return n;
  };
  // Every program reported, none saw a stray interrupt.
  assert.equal(reports.filter((r) => r.kind === 'vcpu').length, cfg.vcpus, 'every vCPU program reported');
  assert.equal(reports.filter((r) => r.kind === 'injector').length, cfg.injectors, 'every injector reported');
  for (const r of reports.filter((x) => x.kind === 'vcpu'))
    assert.equal(r.result.bad, 0, `vCPU ${r.index}: bad INTIDs`);
  const churn = reports.find((r) => r.kind === 'vcpu' && r.index === 0)!.result;
  assert.equal(churn.sendFailed, 0, 'every churn command completed (CREADR caught up)');
  assert.ok(churn.rounds > 0, 'the churn ran');
  // The per-LPI counts and the injectors' own totals agree.
  const inj = reports.filter((r) => r.kind === 'injector');
  const injSum = (key: string) => inj.reduce((a, r) => a + (r.result[key] ?? 0), 0);
  assert.equal(sum(K_DELIVERED), injSum('delivered'));
  assert.equal(sum(K_COALESCED), injSum('coalesced'));
  assert.equal(sum(K_BLOCKED), injSum('blocked'));
  assert.equal(sum(K_BUSY), 0, 'no MSI answered busy (the ITS and every redistributor stay enabled)');
  assert.equal(sum(K_OTHER), 0, 'every MSI answer is one of the four');
  const vAcked = reports.filter((r) => r.kind === 'vcpu').reduce((a, r) => a + r.result.acked, 0);
  assert.equal(sum(K_ACKED), vAcked);

  // Error counters.
  const st = gic.stats();
  for (const k of [
    'mmioBadAccess',
    'mmioUnmapped',
    'mmioReadOnlyWrite',
    'sysregUnknown',
    'sgiNoTarget',
    'injectRejected',
    'irqNestingLimit',
    'msiNoIts',
    'lpiTableFault',
  ] as const) {
    assert.equal(st[k], 0, `gic.stats().${k}`);
  }
  const its = gic.its(0).stats();
  assert.deepEqual(
    Object.entries(its.errors).filter(([, n]) => n !== 0),
    [],
    'no ITS command failed (the churn only sends valid commands)',
  );
  assert.equal(its.commandReadFaults, 0);
  assert.equal(its.unknownCommands, 0);
  assert.equal(its.tableFaults, 0);
  assert.equal(its.msiBusy, 0);

  // The global law.
  const t = churnTotals(o);
  assert.equal(o.drainBad, 0, 'the drain found no interrupt other than our LPIs');
  assert.deepEqual(o.leftover, [], 'no LPI is left pending after the drain');
  assert.equal(t.lost, 0, `delivered = acked + merged + drained + dropped: ${JSON.stringify(t)}`);

  // Per stable LPI.
  for (let l = 0; l < cfg.stable * cfg.events; l++) {
    const d = at(K_DELIVERED, l);
    const taken = at(K_ACKED, l) + drained[l];
    const what = `stable LPI ${VGIC_MIN_LPI + l}: delivered ${d}, coalesced ${at(K_COALESCED, l)}, blocked ${at(K_BLOCKED, l)}, acked ${at(K_ACKED, l)}, drained ${drained[l]}`;
    assert.equal(at(K_BLOCKED, l), 0, `${what}: no MSI of a stable LPI is blocked`);
    assert.ok(d > 0, `${what}: it was delivered at least once`);
    assert.ok(taken <= d, `${what}: acked + drained ≤ delivered`);
    assert.ok(taken >= 1, `${what}: delivered ⇒ taken`);
  }
  // Per churned LPI: it cannot be taken more often than it was delivered either.
  for (let l = cfg.stable * cfg.events; l < nLpis; l++) {
    assert.ok(
      at(K_ACKED, l) + drained[l] <= at(K_DELIVERED, l),
      `churned LPI ${VGIC_MIN_LPI + l}: taken ≤ delivered`,
    );
  }
  return t;
}

function describe(o: RunOutcome, t: Totals): string {
  const churn = o.reports.find((r) => r.kind === 'vcpu' && r.index === 0)!.result;
  const ops = ['rounds', 'mapdUnmap', 'mapdRemap', 'discard', 'mapti', 'movi', 'mapc']
    .map((k) => `${k} ${churn[k] ?? 0}`)
    .join(', ');
  return `MSIs ${t.injected}: delivered ${t.delivered}, coalesced ${t.coalesced}, blocked ${t.blocked}; acked ${t.acked}, merged ${t.merged}, drained ${t.drained}, dropped ${t.dropped}, lost ${t.lost}; churn: ${ops}`;
}

/** The threaded runs: each is run(cfg), then every check of check() and a diagnostic line. */
const CHURN_RUNS: readonly { readonly name: string; readonly cfg: RunConfig }[] = [
  {
    name: 'churn (a): 2 injector threads × 2 vCPU threads, 4 vCPUs, 8 devices (4 stable, 4 churned) × 8 events',
    cfg: {
      vcpus: 4,
      vcpuThreads: 2,
      devices: 8,
      stable: 4,
      events: 8,
      injectors: 8,
      injectorThreads: 2,
      mode: 'mixed',
      wfi: false,
      seed: SEED ?? 1,
    },
  },
  {
    name: 'churn (b): 6 vCPUs multiplexed on 2 threads, waiting in WFI between interrupts',
    cfg: {
      vcpus: 6,
      vcpuThreads: 2,
      devices: 8,
      stable: 4,
      events: 8,
      injectors: 8,
      injectorThreads: 2,
      mode: 'mixed',
      wfi: true,
      seed: SEED ?? 2,
    },
  },
  {
    // Device 0 (one event) is stable, device 1 (one event: the stormed LPI) is churned.
    name: 'churn (c): DISCARD storm on one LPI while 2 injectors hammer it (CVE-2024-26598)',
    cfg: {
      vcpus: 2,
      vcpuThreads: 2,
      devices: 2,
      stable: 1,
      events: 1,
      injectors: 2,
      injectorThreads: 2,
      injectorDevices: [
        [1, 1, 1, 0],
        [1, 1, 1, 0],
      ],
      mode: 'discard-storm',
      wfi: false,
      seed: SEED ?? 3,
    },
  },
  {
    // Device 0 is stable, device 1 (4 events) is unmapped and remapped (MAPD V=0 / V=1 + MAPTI).
    name: 'churn (d): MAPD unmap/remap storm on one device while 2 injectors hammer its events',
    cfg: {
      vcpus: 2,
      vcpuThreads: 2,
      devices: 2,
      stable: 1,
      events: 4,
      injectors: 2,
      injectorThreads: 2,
      injectorDevices: [
        [1, 1, 0],
        [1, 1, 0],
      ],
      mode: 'mapd-storm',
      wfi: false,
      seed: SEED ?? 4,
    },
  },
  {
    // A lock-free lookup that loads the generation while a wrap clears the cache must neither
    // deliver an LPI nobody sent (a cleared entry's value is LPI 8192, a stable LPI here) nor lose
    // the MSI: the per-LPI counts and the global law below would show either.
    name: 'churn (e): as (a), with the translation-cache generation wrapping every millisecond',
    cfg: {
      vcpus: 4,
      vcpuThreads: 2,
      devices: 8,
      stable: 4,
      events: 8,
      injectors: 8,
      injectorThreads: 2,
      mode: 'mixed',
      wfi: false,
      seed: SEED ?? 5,
      wrapGenerations: true,
    },
  },
];

for (const { name, cfg } of CHURN_RUNS) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const o = await run(cfg);
    if (cfg.wrapGenerations) {
      assert.ok(o.wraps >= 5, `the generation wrapped ${o.wraps} times while the MSIs flew`);
      t.diagnostic(`generation wraps: ${o.wraps}`);
    }
    t.diagnostic(describe(o, check(o)));
  });
}

/**
 * The interleaving the threaded runs can hit, made deterministic on one thread: lpiFree
 * (src/core/lpi.ts, reached from MAPD's releaseItt, which runs before MAPD invalidates the
 * translation cache) asks haltOwnerOf which vCPU's LRs may hold the LPI, gets -1 (on no ap_list,
 * so nothing is halted), and only then takes the irq_lock. In between — here: right after that
 * read — an MSI hits the (still valid) cache entry, finds the LPI VALID, sets it pending and queues
 * it on vCPU 1, and vCPU 1 re-enters (the kick) and moves the pending state into an LR. lpiFree
 * then sees no latch (nothing counted as dropped) and frees the slot while vCPU 1's LR holds it.
 * vCPU 1 exits before its guest reads IAR (any kick or halt does that): the fold puts the pending
 * state back into the freed slot's latch (LPI_FREE_FLAGS has EDGE), the prune drops it from the
 * ap_list (not enabled), and the next MAPTI of that INTID (lpiMap, first reference) overwrites the
 * flags: a delivered MSI that is never acknowledged, drained or counted as dropped.
 * Fixed: lpiFree now clears VALID under the irq_lock before it halts, so the racing MSI is ordered
 * after the unmapping (LPI_SET_UNMAPPED; the real path then re-translates and finds no mapping).
 */
test('lpiFree vs an MSI that hits the cache and is flushed into an LR between haltOwnerOf and the irq_lock', () => {
  const m = lpiMachine({ vcpus: 2 });
  const { gic, cpus, its } = m;
  const DEV = 7;
  const intid = VGIC_MIN_LPI + 5;
  its.mapc(0, 0);
  its.mapc(1, 1);
  const itt = its.createDevice(DEV, 1);
  its.mapti(DEV, 0, intid, 1);
  its.invall(1);
  // Warm the translation cache: one MSI, taken by vCPU 1.
  assert.equal(gic.injectMsi(its.doorbell, DEV, 0), MSI_DELIVERED);
  assert.equal(takeAll(cpus), `1:${intid}`);
  for (const c of cpus) c.exit(); // the exit prunes it from vCPU 1's ap_list
  let delivered = 1;
  let acked = 1;

  const s = gic.state;
  const slot = s.lpiSlot(intid);
  const real = s.irqApVcpu;
  assert.equal(real[slot], -1, 'the LPI is on no ap_list');
  let armed = true;
  const hooked = new Proxy(real, {
    get(t, k) {
      if (armed && k === String(slot)) {
        armed = false;
        const seen = t[slot]; // haltOwnerOf's read: -1, nothing to halt
        // … the freeing thread is preempted here: another thread's MSI (its cache-hit path:
        // lpiSetPending on the slot it found; the slow path would need the its_lock this thread
        // holds), then vCPU 1's entry.
        if (lpiSetPending(s, slot) === LPI_SET_NEW) delivered++;
        cpus[1].step(); // the kick: vCPU 1 exits and re-enters, the LPI goes into an LR
        return seen;
      }
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
    set(t, k, v) {
      return Reflect.set(t, k, v, t);
    },
  });
  Object.defineProperty(s, 'irqApVcpu', { value: hooked, configurable: true });
  its.mapd(DEV, itt, 1, false); // MAPD V=0: releaseItt → lpiUnmap → lpiFree
  Object.defineProperty(s, 'irqApVcpu', { value: real, configurable: true });
  assert.equal(armed, false, 'the hook ran (inside lpiFree)');
  // Fixed (lpiFree clears VALID before it halts): the racing MSI finds the LPI unmapped.
  assert.equal(delivered, 1, 'the racing MSI is ordered after the unmapping');

  cpus[1].exit(); // vCPU 1 exits before its guest reads IAR
  its.mapd(DEV, itt, 1, true);
  its.mapti(DEV, 0, intid, 1);
  for (const x of takeAll(cpus).split(',')) if (x === `1:${intid}`) acked++;
  const st = gic.stats();
  const merged = st.vcpus.reduce((a, v) => a + v.foldMerged, 0);
  assert.equal(
    acked + merged + st.lpiPendingDropped,
    delivered,
    `delivered ${delivered} = acked ${acked} + merged ${merged} + dropped ${st.lpiPendingDropped}`,
  );
});
