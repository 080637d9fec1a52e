/**
 * The guest and injector programs of `vgic lpi-stress`, after KVM's vgic_lpi_stress selftest
 * (tools/testing/selftests/kvm/arm64/vgic_lpi_stress.c; ../shared/reference/kvm-vgic.md §2).
 *
 * Guest (every vCPU): GIC CPU interface on, LPIs enabled on its redistributor, an IRQ handler that
 * acknowledges, checks INTID ≥ 8192 and EOIs. vCPU 0 then waits for the others and sets the ITS up:
 * MAPC (collection = vCPU) per vCPU, MAPD per device, MAPTI per event with collections
 * round-robin, INVALL on every collection. Then every vCPU spins (cpu_relax, no WFI) until stopped.
 * Injector d: i × e MSIs (devid d, eventid 0..e-1; whole rounds more until `minMs` have passed),
 * each answer counted. With `forward` (--design direct) vCPU 0 forwards every (device, event) to
 * GICv4.1 direct injection once mapped; with `wfiEvery` the vCPUs execute WFI now and then (vPE
 * residency transitions). With `irqfds` (lpi-stress
 * --irqfd) an injector only signals irqfd d·e + eventid (device/irqfd.ts: GSI d·e + eventid routes
 * to that MSI), and every vCPU thread's run loop consumes the signals between guest instructions
 * (IrqfdSet.drain), as a vCPU thread would pick work up on KVM's run path.
 *
 * Who may call: runtime workers import this module (compiled) by URL.
 */

import { VGIC_MIN_LPI } from '../arch/intid.ts';
import { ICC_EOIR1_EL1, ICC_IAR1_EL1 } from '../arch/sysreg.ts';
import { IrqfdSet } from '../device/irqfd.ts';
import type { VCpu } from '../device/vcpu.ts';
import type { Vgic } from '../device/vgic.ts';
import { MSI_COALESCED, MSI_DELIVERED } from '../device/vgic.ts';
import { enableLpisOnVcpu, ItsGuest } from '../guest/gic-v3-its.ts';
import { type ProgramContext, until, WFI, YIELD, type Yield } from '../runtime/program.ts';

export interface LpiStressParams {
  readonly vcpus: number;
  readonly devices: number;
  readonly events: number;
  readonly iterations: number;
  readonly ramBase: number;
  readonly ramSize: number;
  readonly doorbell: number;
  readonly lpiIdBits: number;
  /** MSIs each injector sends before the timed run (JIT warm-up; counted, not timed). */
  readonly warmup: number;
  /** The irqfd set (IrqfdSet.buffer) when injectors signal irqfds instead of calling injectMsi. */
  readonly irqfds?: SharedArrayBuffer;
  /**
   * Each injector goes on sending whole rounds of e MSIs after its i iterations until this many
   * ms have passed since its first timed MSI (0: exactly i iterations, the selftest's run).
   */
  readonly minMs: number;
  /** Forward every (device, event) to direct injection once mapped (--design=direct). */
  readonly forward: boolean;
  /**
   * Every this many steps the vCPU executes WFI (0: it only spins, as the selftest's guests do):
   * with direct injection each WFI makes its vPE non-resident with the doorbell, the next step
   * resident again — residency transitions under fire.
   */
  readonly wfiEvery: number;
}

/** Shared words (ProgramContext.shared). */
export const W_READY = 0; // vCPUs with LPIs enabled
export const W_SETUP = 1; // 1 once vCPU 0 has mapped everything
export const W_WARM = 2; // injectors done warming up
export const W_ACKS = 8; // + v: LPIs vCPU v has acknowledged so far
export const MAX_STRESS_VCPUS = 224;

/** MSIs an injector sends between yields (other devices on its thread run meanwhile). */
const INJECT_CHUNK = 64;

const SPURIOUS = 1023;

/** What a vCPU's IRQ handler has counted (one object per vCPU, allocated once). */
interface Acks {
  acked: number;
  bad: number;
}

/**
 * Instruction boundaries a spinning vCPU runs between two yields to its thread's scheduler, at
 * most, and how many in a row that take no interrupt end the run early (so that vCPUs sharing a
 * thread each get their turn soon after an LPI reaches them). A real vCPU executes many
 * cpu_relax() loops between two host scheduling decisions; one generator resumption and one
 * scheduler round per boundary cost more than the boundary itself (profile in docs/perf-direct.md).
 */
const SPIN_STEPS = 256;
const SPIN_IDLE = 2;

/**
 * The selftest guest's spin loop (`while (!done) cpu_relax();`): up to `max` instruction
 * boundaries (step(): kicks taken, IRQs taken and handled), ending early after SPIN_IDLE in a row
 * that took nothing. With irqfds the vCPU thread consumes the signals between two instructions.
 * A plain function, not inlined in the generator: V8 optimises a hot loop in a plain function
 * (on-stack replacement) and not in a generator's body. Returns the boundaries run; lastDrain
 * goes to `out[0]`.
 */
function spin(cpu: VCpu, a: Acks, max: number, irqfds: IrqfdSet | undefined, out: Float64Array): number {
  let n = 0;
  let idle = 0;
  while (n < max) {
    const before = a.acked + a.bad;
    cpu.step();
    n++;
    if (irqfds !== undefined && irqfds.drain() > 0) out[0] = performance.timeOrigin + performance.now();
    if (a.acked + a.bad !== before) idle = 0;
    else if (++idle >= SPIN_IDLE) break;
  }
  return n;
}

export function* lpiStressVcpu(cpu: VCpu, ctx: ProgramContext): Generator<Yield, void, void> {
  const p = ctx.params as LpiStressParams;
  const sh = ctx.shared;
  const { alloc, lpi } = enableLpisOnVcpu(cpu, p);
  const a: Acks = { acked: 0, bad: 0 };
  const slot = W_ACKS + cpu.index;
  // The selftest's guest_irq_handler: one IAR, a check, one EOIR per exception.
  cpu.onIrq((c) => {
    const intid = c.readSysreg(ICC_IAR1_EL1);
    if (intid === SPURIOUS) return;
    if (intid >= VGIC_MIN_LPI) a.acked++;
    else a.bad++;
    c.writeSysreg(ICC_EOIR1_EL1, intid);
    sh[slot] = a.acked;
  });
  Atomics.add(sh, W_READY, 1);
  if (cpu.index === 0) {
    yield* until(() => Atomics.load(sh, W_READY) >= p.vcpus);
    lpi.fillConfig();
    const its = new ItsGuest(cpu, alloc);
    its.init();
    its.enable();
    for (let v = 0; v < p.vcpus; v++) its.mapc(v, v);
    const eventBits = Math.max(1, Math.ceil(Math.log2(p.events)));
    for (let d = 0; d < p.devices; d++) its.createDevice(d, eventBits);
    let n = 0;
    for (let d = 0; d < p.devices; d++) {
      for (let e = 0; e < p.events; e++, n++) its.mapti(d, e, VGIC_MIN_LPI + n, n % p.vcpus);
    }
    for (let v = 0; v < p.vcpus; v++) its.invall(v);
    if (p.forward) {
      // The host's side (KVM_IRQFD with a vLPI mapping): every MSI becomes a vLPI of its target.
      for (let d = 0; d < p.devices; d++) {
        for (let e = 0; e < p.events; e++)
          ctx.gic.setForwarding({ doorbell: p.doorbell, devid: d, eventid: e });
      }
    }
    Atomics.store(sh, W_SETUP, 1);
  }
  cpu.unmaskIrqs();
  let steps = 0;
  const irqfds = p.irqfds === undefined ? undefined : IrqfdSet.attach(p.irqfds);
  irqfds?.bindGic(ctx.gic);
  // With irqfds: when this thread last consumed a signal (the end of the irqfd run).
  const lastDrain = new Float64Array(1);
  let wfis = 0;
  while (!ctx.stopping) {
    // With wfiEvery, the run stops at the next multiple of it: a WFI every wfiEvery boundaries.
    const max = p.wfiEvery > 0 ? p.wfiEvery - (steps % p.wfiEvery) : SPIN_STEPS;
    steps += spin(cpu, a, Math.min(max, SPIN_STEPS), irqfds, lastDrain);
    if (p.wfiEvery > 0 && steps % p.wfiEvery === 0) {
      wfis++;
      yield WFI;
    } else yield YIELD;
  }
  ctx.result.lastDrain = lastDrain[0];
  ctx.result.steps = steps;
  ctx.result.wfis = wfis;
  cpu.maskIrqs();
  ctx.result.acked = a.acked;
  ctx.result.bad = a.bad;
}

/** Answers of a run of MSIs, accumulated by injectBurst. */
interface Tally {
  delivered: number;
  coalesced: number;
  failed: number;
}

/**
 * `n` MSIs of device `d`, events round-robin from `first`. A plain function, not inlined in the
 * generator: V8 does not optimise a hot loop inside a generator's body (no on-stack replacement
 * there), and this loop is the benchmark.
 */
function injectBurst(
  gic: Vgic,
  doorbell: number,
  d: number,
  events: number,
  first: number,
  n: number,
  t: Tally,
): void {
  let e = first;
  for (let j = 0; j < n; j++) {
    const r = gic.injectMsi(doorbell, d, e);
    if (r === MSI_COALESCED) t.coalesced++;
    else if (r === MSI_DELIVERED) t.delivered++;
    else t.failed++;
    if (++e === events) e = 0;
  }
}

/** signalBurst: injectBurst's loop on irqfds (device d's event e is irqfd d·events + e). */
function signalBurst(set: IrqfdSet, d: number, events: number, first: number, n: number, t: Tally): void {
  const base = d * events;
  let e = first;
  for (let j = 0; j < n; j++) {
    set.signal(base + e);
    if (++e === events) e = 0;
  }
  t.delivered += n;
}

/** The LPIs every vCPU has acknowledged so far (each vCPU publishes its own count). */
function ackSum(sh: Int32Array, vcpus: number): number {
  let n = 0;
  for (let v = 0; v < vcpus; v++) n += Atomics.load(sh, W_ACKS + v);
  return n;
}

export function* lpiStressInjector(ctx: ProgramContext): Generator<Yield, void, void> {
  const p = ctx.params as LpiStressParams;
  const gic = ctx.gic;
  const d = ctx.index;
  const t: Tally = { delivered: 0, coalesced: 0, failed: 0 };
  const irqfds = p.irqfds === undefined ? undefined : IrqfdSet.attach(p.irqfds);
  const burst = (first: number, n: number) => {
    if (irqfds === undefined) injectBurst(gic, p.doorbell, d, p.events, first, n, t);
    else signalBurst(irqfds, d, p.events, first, n, t);
  };
  yield* until(() => Atomics.load(ctx.shared, W_SETUP) !== 0);
  burst(0, p.warmup);
  Atomics.add(ctx.shared, W_WARM, 1);
  const warmDelivered = t.delivered;
  const warmCoalesced = t.coalesced;
  yield* until(() => ctx.started);
  const acksStart = ackSum(ctx.shared, p.vcpus);
  const t0 = performance.timeOrigin + performance.now();
  // i × e MSIs, events in order, in bursts of whole iterations of about INJECT_CHUNK MSIs; then
  // more bursts until minMs have passed, so that one descheduling does not decide the rate.
  const perBurst = Math.max(1, Math.floor(INJECT_CHUNK / p.events));
  let sent = 0;
  for (let i = 0; i < p.iterations; i += perBurst) {
    const n = Math.min(perBurst, p.iterations - i) * p.events;
    burst(0, n);
    sent += n;
    yield YIELD;
  }
  const deadline = t0 + p.minMs;
  while (performance.timeOrigin + performance.now() < deadline) {
    burst(0, perBurst * p.events);
    sent += perBurst * p.events;
    yield YIELD;
  }
  ctx.result.start = t0;
  ctx.result.end = performance.timeOrigin + performance.now();
  // With irqfds, `delivered` counts signals sent (their MSIs' answers are the consumers'), and
  // `sent` the timed signals.
  ctx.result.acksStart = acksStart;
  ctx.result.acksEnd = ackSum(ctx.shared, p.vcpus);
  ctx.result.sent = sent;
  ctx.result.timedDelivered = t.delivered - warmDelivered;
  ctx.result.timedCoalesced = t.coalesced - warmCoalesced;
  ctx.result.delivered = t.delivered;
  ctx.result.coalesced = t.coalesced;
  ctx.result.failed = t.failed;
}
