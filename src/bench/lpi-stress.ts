/**
 * `vgic lpi-stress`: KVM's vgic_lpi_stress on the threaded runtime (runtime/), with its flags and
 * its measure: Rate = devices · events · iterations / elapsed, from the first injector's first
 * timed MSI until the last one has sent its i × e MSIs (injection throughput; guest delivery is
 * not in the rate, as in the selftest). Each injector first sends untimed warm-up MSIs: a fresh
 * worker's code is cold.
 *
 * It also proves no MSI was lost. Every MSI's answer is counted: delivered (the LPI became
 * pending), coalesced (it was pending already) or failed (must be 0). Once the injectors are done
 * the guests go on acknowledging until the counts settle; then the runtime stops and whatever is
 * still pending is drained through the CPU interface here. For every pending state created:
 *
 *     delivered = acknowledged + merged at fold + drained + dropped   (lost = the difference: 0)
 *
 * where "merged at fold" counts LPIs injected again while the previous pending state still sat
 * in a list register (stats().vcpus[].foldMerged) and "dropped" pending states an ITS command
 * removed (stats().lpiPendingDropped: DISCARD, CLEAR, unmapping; none here).
 *
 * `--irqfd` (injection 'irqfd'): each (device, event) is a GSI routed to its MSI (KVM_SET_GSI_ROUTING
 * with devid) with an irqfd; injectors signal the irqfds (device/irqfd.ts: an atomic add and or, no
 * call into the GIC) and the vCPU threads consume them between guest instructions. The rate is then
 * signals / elapsed, elapsed ending when the last signal was consumed (the vCPU threads' last drain
 * that found one); a drain injects once per
 * signalled irqfd (eventfd coalescing), so `injections` ≤ signals, and no signal may be lost:
 * signals consumed = signals sent, checked in `lost` with the MSI accounting below.
 *
 * Rate says how fast MSIs were *submitted*; most of them (94–99.8% on the seed's rows) only merge
 * into an LPI that is already pending. What the guests receive is **Handled**: LPIs acknowledged
 * by the vCPUs (ICC_IAR1) per second over the same interval — the acknowledgement counts every
 * vCPU publishes, read by the first injector as it starts and by the last one as it ends — and
 * the coalesced fraction (timed MSIs that merged / timed MSIs) says how far the two differ.
 * `minMs` makes the run time-based: each injector goes on in whole rounds of e MSIs until that
 * long has passed, so one descheduling of a thread does not decide the figure.
 *
 * `--design=direct` is the per-its design with GICv4.1 direct injection (core/vpe.ts): once vCPU 0
 * has mapped everything, every (device, event) is forwarded (Vgic.setForwarding, KVM's
 * kvm_vgic_v4_set_forwarding for a passed-through device), so an MSI sets a VPT bit and the
 * spinning guests take it with ICC_IAR1 without list register, ap_list or exit.
 *
 * `--design=global-lock` runs the v6.8-rc1 shape (one global lock, one global LRU translation
 * cache of 16 × vCPUs entries, every injection under the irq_lock) as the baseline.
 *
 * Who may call: the CLI (cli/lpi-stress.ts) and tests.
 */

import os from 'node:os';
import { checkInt, VgicError } from '../arch/errors.ts';
import { VIRT_GITS_BASE } from '../arch/gicv3.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import { GITS_TRANSLATER } from '../arch/its.ts';
import { ICC_EOIR1_EL1, ICC_IAR1_EL1 } from '../arch/sysreg.ts';
import { IrqfdSet } from '../device/irqfd.ts';
import { KVM_IRQ_ROUTING_MSI, KVM_MAX_IRQ_ROUTES, KVM_MSI_VALID_DEVID } from '../device/kvm-uapi.ts';
import { Vgic, type VgicV3Options } from '../device/vgic.ts';
import { Runtime } from '../runtime/runtime.ts';
import { checkInvariants } from './invariants.ts';
import { type LpiStressParams, MAX_STRESS_VCPUS, W_ACKS, W_SETUP, W_WARM } from './lpi-stress-programs.ts';

export type LpiStressDesign = 'per-its' | 'global-lock' | 'direct';
/** How injectors inject: KVM_SIGNAL_MSI (injectMsi) or irqfds (KVM_IRQFD on MSI routes). */
export type LpiStressInjection = 'msi' | 'irqfd';

export interface LpiStressConfig {
  readonly vcpus: number;
  readonly devices: number;
  readonly events: number;
  readonly iterations: number;
}

export interface LpiStressOptions extends LpiStressConfig {
  readonly design?: LpiStressDesign;
  /** Default 'msi'. 'irqfd': devices × events ≤ 4096 (KVM_MAX_IRQ_ROUTES). */
  readonly injection?: LpiStressInjection;
  /**
   * Minimum timed interval (ms): injectors send whole rounds beyond i until it has passed
   * (default 0: exactly d · e · i MSIs, the selftest's run).
   */
  readonly minMs?: number;
  /**
   * Every this many steps each vCPU executes WFI (default 0: spin only). With direct injection each
   * WFI is a non-residency phase with the doorbell enabled (tests: residency transitions under fire).
   */
  readonly wfiEvery?: number;
  /**
   * direct only: while the injectors run, the main thread switches forwarding off and on again
   * for every (device, event), round after round (tests: pending state moved while MSIs fly).
   */
  readonly toggleForwarding?: boolean;
  /** Worker threads for the vCPUs and for the injectors (default: half the cores each, at least 1). */
  readonly vcpuThreads?: number;
  readonly injectorThreads?: number;
  /**
   * Called with the GIC before the threads start (the CLI's --inspect attaches the inspector to
   * its shared state); the function it returns is awaited when the run ends.
   */
  readonly onGic?: (gic: Vgic) => Promise<(() => Promise<void>) | undefined>;
}

export interface LpiStressResult extends LpiStressConfig {
  readonly design: LpiStressDesign;
  readonly injection: LpiStressInjection;
  /** irqfd: MSIs the consumers injected (one per signalled irqfd per drain); msi: = answers. */
  readonly injections: number;
  readonly vcpuThreads: number;
  readonly injectorThreads: number;
  /** MSIs/s: injected / elapsed (vgic_lpi_stress's "Rate": submitted, not received). */
  readonly rate: number;
  /** LPIs/s the guests acknowledged over the same interval (ICC_IAR1 reads returning an LPI). */
  readonly handled: number;
  /** Timed MSIs that merged into an already-pending LPI / timed MSIs (0..1). */
  readonly coalescedFraction: number;
  readonly elapsedMs: number;
  /**
   * From the first injector's first timed MSI (or signal) to the last one's last: the device side
   * (= elapsedMs with injectMsi; with irqfds elapsed runs on to the last signal's consumption).
   */
  readonly injectorMs: number;
  /** MSIs (or irqfd signals) in the timed run (d · e · i, more when minMs made the injectors go on). */
  readonly injected: number;
  /** Untimed MSIs sent first (each injector warms its code up); in the accounting below. */
  readonly warmup: number;
  /** Answers over injected + warmup: delivered + coalesced + failed = injected + warmup. */
  readonly delivered: number;
  readonly coalesced: number;
  readonly failed: number;
  readonly acknowledged: number;
  readonly mergedAtFold: number;
  readonly drained: number;
  /** Pending states removed by ITS commands (stats().lpiPendingDropped; none in this test). */
  readonly dropped: number;
  /** delivered − acknowledged − mergedAtFold − drained − dropped: must be 0. */
  readonly lost: number;
  /** Interrupts below 8192 taken by the guests: must be 0. */
  readonly badIntids: number;
  readonly cacheMisses: number;
  /** direct: doorbells rung over the run, WFIs executed, and forwarding rounds switched. */
  readonly doorbells: number;
  readonly wfis: number;
  /** Whole-state invariants (bench/invariants.ts) broken at the end, after the drain: must be empty. */
  readonly violations: readonly string[];
  /** Per vCPU: doorbells beyond its WFIs (a doorbell rung twice in one blocked phase): must be 0. */
  readonly extraDoorbells: number;
  readonly toggleRounds: number;
}

const RAM_BASE = 0x40000000;
const RAM_SIZE = 32 << 20;
const LPI_ID_BITS = 16;
const SETUP_TIMEOUT_MS = 60000;
const SETTLE_MS = 20;
const SETTLE_MAX_MS = 5000;
const SPURIOUS = 1023;
/** Untimed MSIs per injector first: a fresh worker's code is cold (the selftest runs compiled C). */
const WARMUP_MSIS = 20000;

function checkConfig(o: LpiStressOptions): void {
  checkInt('INVALID_ARGUMENT', 'vCPUs (-v)', o.vcpus, 1, MAX_STRESS_VCPUS);
  checkInt('INVALID_ARGUMENT', 'devices (-d)', o.devices, 1, 4096);
  checkInt('INVALID_ARGUMENT', 'events per device (-e)', o.events, 1, 65536);
  checkInt('INVALID_ARGUMENT', 'iterations (-i)', o.iterations, 1, 2 ** 31 - 1);
  if (o.minMs !== undefined) checkInt('INVALID_ARGUMENT', 'minimum time (ms)', o.minMs, 0, 3600000);
  const lpis = o.devices * o.events;
  if (lpis > 2 ** LPI_ID_BITS - VGIC_MIN_LPI) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `devices × events must be at most ${2 ** LPI_ID_BITS - VGIC_MIN_LPI} LPIs, got ${lpis}`,
    );
  }
  if (o.injection !== undefined && o.injection !== 'msi' && o.injection !== 'irqfd') {
    throw new VgicError('INVALID_ARGUMENT', `injection must be 'msi' or 'irqfd', got ${String(o.injection)}`);
  }
  if (o.injection === 'irqfd' && lpis > KVM_MAX_IRQ_ROUTES) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `--irqfd routes one GSI per (device, event): devices × events must be at most ${KVM_MAX_IRQ_ROUTES}, got ${lpis}`,
    );
  }
  if (
    o.design !== undefined &&
    o.design !== 'per-its' &&
    o.design !== 'global-lock' &&
    o.design !== 'direct'
  ) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `design must be 'per-its', 'global-lock' or 'direct', got ${String(o.design)}`,
    );
  }
}

/** One vgic_lpi_stress run on a new GIC. */
export async function runLpiStress(o: LpiStressOptions): Promise<LpiStressResult> {
  checkConfig(o);
  const design = o.design ?? 'per-its';
  const cores = Math.max(1, os.availableParallelism());
  // The cores are split between the two pools: the guests spin (as the selftest's do), so a pool
  // of `cores` threads each would put twice as many busy threads as cores on the machine, and
  // the injectors would get half of it (measured: 2 + 2 threads on 2 cores injects about half as
  // fast as 1 + 1).
  const vDefault = Math.max(1, Math.floor(cores / 2));
  const vcpuThreads = Math.min(o.vcpuThreads ?? vDefault, o.vcpus);
  const injectorThreads = Math.min(o.injectorThreads ?? Math.max(1, cores - vDefault), o.devices);
  const opts = {
    vcpus: o.vcpus,
    its: 1,
    ram: { base: RAM_BASE, size: RAM_SIZE },
    lpiIdBits: LPI_ID_BITS,
    translationCache: design === 'global-lock' ? 'global-lru' : 'per-its',
    ...(design === 'direct' ? { directInjection: 'gicv4.1' as const } : {}),
  } satisfies VgicV3Options;
  const gic = Vgic.create(opts);
  const injection = o.injection ?? 'msi';
  const doorbell = VIRT_GITS_BASE + GITS_TRANSLATER;
  const irqfds = injection === 'irqfd' ? irqfdsFor(gic, o, doorbell) : undefined;
  const detach = o.onGic ? await o.onGic(gic) : undefined;
  const params: LpiStressParams = {
    vcpus: o.vcpus,
    devices: o.devices,
    events: o.events,
    iterations: o.iterations,
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    doorbell,
    lpiIdBits: LPI_ID_BITS,
    warmup: Math.min(WARMUP_MSIS, o.events * o.iterations),
    ...(irqfds !== undefined ? { irqfds: irqfds.buffer as SharedArrayBuffer } : {}),
    minMs: o.minMs ?? 0,
    forward: design === 'direct',
    wfiEvery: o.wfiEvery ?? 0,
  };
  const rt = Runtime.start({
    gic,
    module: new URL('./lpi-stress-programs.js', import.meta.url),
    vcpuProgram: 'lpiStressVcpu',
    injectorProgram: 'lpiStressInjector',
    injectors: o.devices,
    vcpuThreads,
    injectorThreads,
    params,
  });
  try {
    if (!(await rt.waitShared(W_SETUP, 1, SETUP_TIMEOUT_MS))) {
      throw new Error(`lpi-stress: the guest did not set the ITS up within ${SETUP_TIMEOUT_MS} ms`);
    }
    if (!(await rt.waitShared(W_WARM, o.devices, SETUP_TIMEOUT_MS))) {
      throw new Error(`lpi-stress: the injectors did not warm up within ${SETUP_TIMEOUT_MS} ms`);
    }
    const missesBefore = gic.its(0).stats().cacheMisses;
    rt.go();
    const injDone = rt.injectorsDone();
    let toggleRounds = 0;
    if (o.toggleForwarding && design === 'direct') {
      let finished = false;
      injDone.then(
        () => {
          finished = true;
        },
        () => {
          finished = true;
        },
      );
      while (!finished) {
        for (let d = 0; d < o.devices; d++) {
          for (let e = 0; e < o.events; e++) {
            const msi = { doorbell: params.doorbell, devid: d, eventid: e };
            gic.unsetForwarding(msi);
            gic.setForwarding(msi);
          }
        }
        toggleRounds++;
        await new Promise((r) => setImmediate(r));
      }
    }
    const inj = await injDone;
    // From the first injector's first timed MSI to the last one's last: a sleeping thread's
    // wake-up after go() is not injection time.
    let first = inj[0].result;
    let last = inj[0].result;
    for (const r of inj) {
      if (r.result.start < first.start) first = r.result;
      if (r.result.end > last.end) last = r.result;
    }
    const t0 = first.start;
    let t1 = last.end;
    const injectorMs = t1 - t0;
    const handledAcks = last.acksEnd - first.acksStart;
    const warmup = o.devices * params.warmup;
    const injected = inj.reduce((a, r) => a + (r.result.sent ?? 0), 0);
    if (irqfds !== undefined) {
      // Wait until the vCPU threads have consumed every signal; the end of the run is the time of
      // their last drain that consumed one (each vCPU program records it), not this poll's.
      const end = performance.now() + SETTLE_MAX_MS;
      while (irqfds.stats().signals < injected + warmup && performance.now() < end) {
        await new Promise((r) => setTimeout(r, 0));
      }
    }
    // Let the guests catch up: stop once their acknowledgements have not moved for SETTLE_MS.
    const acks = () => {
      let n = 0;
      for (let v = 0; v < o.vcpus; v++) n += Atomics.load(rt.shared, W_ACKS + v);
      return n;
    };
    const settleEnd = performance.now() + SETTLE_MAX_MS;
    for (let last = -1; performance.now() < settleEnd; ) {
      const now = acks();
      if (now === last) break;
      last = now;
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    }
    const reports = await rt.stop();
    if (irqfds !== undefined) {
      for (const r of reports) if (r.kind === 'vcpu') t1 = Math.max(t1, r.result.lastDrain ?? 0);
      // Whatever the vCPU threads left (nothing, unless the settle timed out) is consumed here.
      irqfds.bindGic(gic);
      irqfds.drain();
      irqfds.unbindGic();
    }
    const cacheMisses = gic.its(0).stats().cacheMisses - missesBefore;
    const sum = (kind: string, key: string) =>
      reports.filter((r) => r.kind === kind).reduce((a, r) => a + (r.result[key] ?? 0), 0);
    const drained = drain(gic);
    const violations = checkInvariants(gic, { settled: false });
    const stats = gic.stats();
    // Direct injection: pending states merged by forwarding moves count as merges too.
    const mergedAtFold =
      stats.vcpus.reduce((a, v) => a + v.foldMerged, 0) +
      (design === 'direct'
        ? Array.from({ length: o.vcpus }, (_, v) => gic.vpeStatus(v).merged).reduce((a, b) => a + b, 0)
        : 0);
    const fd = irqfds?.stats();
    const delivered = fd !== undefined ? fd.msiDelivered : sum('injector', 'delivered');
    const acknowledged = sum('vcpu', 'acked');
    // irqfd: the signals that made no new pending LPI (eventfd coalescing, or an MSI that merged),
    // warm-up included (the consumers' counts are not split at the start of the timed run).
    const coalescedFraction =
      fd !== undefined
        ? (fd.signals - fd.msiDelivered) / Math.max(1, fd.signals)
        : sum('injector', 'timedCoalesced') /
          Math.max(1, sum('injector', 'timedCoalesced') + sum('injector', 'timedDelivered'));
    const elapsedMs = t1 - t0;
    // irqfd: signals sent but never consumed are lost too.
    const unconsumed = fd !== undefined ? injected + warmup - fd.signals : 0;
    return {
      vcpus: o.vcpus,
      devices: o.devices,
      events: o.events,
      iterations: o.iterations,
      design,
      injection,
      injections: fd !== undefined ? fd.injections : injected + warmup,
      vcpuThreads,
      injectorThreads,
      rate: injected / (elapsedMs / 1000),
      // Over the interval its two ack counts bound: the injectors' (elapsed with injectMsi).
      handled: handledAcks / (injectorMs / 1000),
      coalescedFraction,
      elapsedMs,
      injectorMs,
      injected,
      warmup,
      delivered,
      coalesced: fd !== undefined ? fd.msiCoalesced : sum('injector', 'coalesced'),
      failed: fd !== undefined ? fd.msiFailed + fd.failed : sum('injector', 'failed'),
      acknowledged,
      mergedAtFold,
      drained,
      dropped: stats.lpiPendingDropped,
      lost: delivered - acknowledged - mergedAtFold - drained - stats.lpiPendingDropped + unconsumed,
      badIntids: sum('vcpu', 'bad'),
      cacheMisses,
      doorbells:
        design === 'direct'
          ? Array.from({ length: o.vcpus }, (_, v) => gic.vpeStatus(v).doorbells).reduce((a, b) => a + b, 0)
          : 0,
      wfis: sum('vcpu', 'wfis'),
      // Each WFI is at most one non-residency phase with the doorbell (the vCPU is made resident
      // again before its next instruction), so a vCPU's doorbells never exceed its WFIs.
      extraDoorbells:
        design === 'direct'
          ? reports
              .filter((r) => r.kind === 'vcpu')
              .reduce((a, r) => a + Math.max(0, gic.vpeStatus(r.index).doorbells - (r.result.wfis ?? 0)), 0)
          : 0,
      toggleRounds,
      violations,
    };
  } catch (e) {
    await rt.stop(5000).catch(() => undefined);
    throw e;
  } finally {
    await detach?.();
  }
}

/** KVM_SET_GSI_ROUTING + KVM_IRQFD for lpi-stress --irqfd: irqfd d·e + ev → MSI (devid d, data ev). */
function irqfdsFor(gic: Vgic, o: LpiStressConfig, doorbell: number): IrqfdSet {
  const n = o.devices * o.events;
  const set = IrqfdSet.create({ nSpis: gic.nrIrqs - 32, maxIrqfds: Math.ceil(n / 32) * 32 });
  const routes = [];
  for (let g = 0; g < n; g++) {
    routes.push({
      gsi: g,
      type: KVM_IRQ_ROUTING_MSI,
      flags: KVM_MSI_VALID_DEVID,
      address: doorbell,
      data: g % o.events,
      devid: Math.floor(g / o.events),
    } as const);
  }
  set.setGsiRouting(routes, true);
  for (let g = 0; g < n; g++) {
    if (set.assign(g) !== g) throw new Error('lpi-stress: irqfds are assigned in order');
  }
  return set;
}

/** Acknowledges and EOIs, on every vCPU, whatever is still pending; returns how many LPIs. */
function drain(gic: Vgic): number {
  let n = 0;
  for (let v = 0; v < gic.nVcpus; v++) {
    const cpu = gic.vcpu(v);
    cpu.maskIrqs();
    for (;;) {
      cpu.step();
      const intid = cpu.readSysreg(ICC_IAR1_EL1);
      if (intid === SPURIOUS) break;
      cpu.writeSysreg(ICC_EOIR1_EL1, intid);
      if (intid >= VGIC_MIN_LPI) n++;
    }
    cpu.exit();
  }
  return n;
}
