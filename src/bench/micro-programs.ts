/**
 * The guest programs of the threaded micro-benchmarks (bench/micro-threads.ts), after
 * kvm-unit-tests' arm/micro-bench.c: ipi, ipi_wfi, lpi and timer_10ms. One vCPU program for every
 * test; params.test says which.
 *
 * vCPU 0 is the benchmark's "primary": it runs warm-up iterations, then `trials` timed passes of
 * `iterations` exec()s, timing each exec with performance.now() into the shared Float64Array
 * params.latencies (trial-major, ns). vCPU 1 (ipi, ipi_wfi, lpi) is the "secondary" whose IRQ
 * handler acknowledges (ICC_IAR1_EL1), completes (ICC_EOIR1_EL1) and then bumps W_ACKS; vCPU 0's
 * exec() ends when it sees the bump. The secondary spins (cpu_relax: step, yield YIELD) in ipi and
 * lpi, and sleeps in WFI between interrupts in ipi_wfi. timer_10ms runs on vCPU 0 alone: its
 * handler masks the timer before EOI, and exec() waits in WFI.
 *
 * Shared words (ProgramContext.shared): W_READY (vCPUs set up), W_ACKS (interrupts vCPU 1 has
 * handled), W_DONE (1: vCPU 0 finished, 2: it gave up because the runtime stopped), W_AFFINITY
 * (vCPU 1's affinity, read from its own GICR_TYPER, as kvm-unit-tests' cpus[] table holds MPIDRs),
 * W_PING (xcore).
 *
 * xcore is no GIC test: vCPU 0's exec() writes W_PING and waits for vCPU 1's thread to copy it into
 * W_ACKS — two cache-line transfers between the cores, the floor under every threaded test (an IPI
 * crosses at least twice: the interrupt one way, the handler's answer back), timed as they are.
 *
 * Who may call: runtime workers import this module (compiled) by URL.
 */

import { GICD_CTLR, GICD_CTLR_ENABLE_GRP1, GICD_CTLR_NASSGIREQ, VIRT_GITS_BASE } from '../arch/gicv3.ts';
import { PPI_VTIMER } from '../arch/intid.ts';
import { GITS_CMD_INT, GITS_CREADR, GITS_CWRITER, GITS_TRANSLATER, ITS_CMD_SIZE } from '../arch/its.ts';
import {
  CNTFRQ_EL0,
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CTL_IMASK,
  CNTV_CVAL_EL0,
  CNTVCT_EL0,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_SGI1R_EL1,
} from '../arch/sysreg.ts';
import type { VCpu } from '../device/vcpu.ts';
import { GicV3Guest } from '../guest/gic-v3.ts';
import { GuestAllocator, ItsGuest, LpiTables } from '../guest/gic-v3-its.ts';
import { type ProgramContext, until, WFI, YIELD, type Yield } from '../runtime/program.ts';

export type ThreadedTest = 'ipi' | 'ipi_wfi' | 'ipi_hw' | 'lpi' | 'timer_10ms' | 'xcore';

export interface MicroThreadParams {
  readonly test: ThreadedTest;
  readonly iterations: number;
  readonly warmup: number;
  readonly trials: number;
  /** Float64Array over it: trials × iterations per-exec latencies in ns (timer: the overshoot above 10 ms). */
  readonly latencies: SharedArrayBuffer;
  readonly ramBase: number;
  readonly ramSize: number;
  readonly lpiIdBits: number;
  /** lpi with direct injection: the host forwards the LPI once mapped (Vgic.setForwarding). */
  readonly forward?: boolean;
}

export const W_READY = 0;
export const W_ACKS = 1;
export const W_DONE = 2;
export const W_AFFINITY = 3; // vCPU 1's affinity (its GICR_TYPER), published for vCPU 0's SGIs
export const W_PING = 4; // xcore: the count vCPU 0's thread wrote, answered in W_ACKS

export const IPI_SGI = 1;
/** kvm-unit-tests' lpi test: device 2, event 20 → LPI 8199 on collection 1 (vCPU 1). */
export const LPI_DEVICE = 2;
export const LPI_EVENT = 20;
export const LPI_INTID = 8199;
export const LPI_COLLECTION = 1;

const SPURIOUS = 1023;

/** ICC_SGI1R_EL1 (low word) for SGI `sgi` to the CPU with this affinity. */
function sgi1r(sgi: number, affinity: number): number {
  return ((sgi << 24) | (((affinity >>> 8) & 0xff) << 16) | (1 << (affinity & 0xf))) >>> 0;
}

export function* microVcpu(cpu: VCpu, ctx: ProgramContext): Generator<Yield, void, void> {
  const p = ctx.params as MicroThreadParams;
  if (p.test === 'timer_10ms') yield* timerPrimary(cpu, ctx, p);
  else if (cpu.index === 0) yield* primary(cpu, ctx, p);
  else yield* secondary(cpu, ctx, p);
}

/**
 * Instruction boundaries the spinning secondary runs between two yields to its thread's
 * scheduler: a guest's cpu_relax() loop runs many boundaries per host scheduling decision, and a
 * generator resumption plus a scheduler round cost more than a boundary (docs/perf-direct.md).
 */
const SPIN_STEPS = 64;

/** cpu_relax() `n` times: instruction boundaries where kicks and IRQs are taken. A plain function (optimised on-stack, which a generator's body is not). */
function spin(cpu: VCpu, n: number): number {
  for (let i = 0; i < n; i++) cpu.step();
  return n;
}

/** xcore's answer loop polls W_PING this many times between two yields. */
const PONG_POLLS = 4096;

/** xcore on vCPU 1's thread: copies every new W_PING into W_ACKS; returns the last one seen. */
function pong(sh: Int32Array, seen: number, polls: number): number {
  let last = seen;
  for (let i = 0; i < polls; i++) {
    const v = Atomics.load(sh, W_PING);
    if (v !== last) {
      last = v;
      Atomics.store(sh, W_ACKS, v);
    }
  }
  return last;
}

/** vCPU 1: takes SGI 1 (ipi, ipi_wfi) or LPI 8199 (lpi) and counts it in W_ACKS. */
function* secondary(cpu: VCpu, ctx: ProgramContext, p: MicroThreadParams): Generator<Yield, void, void> {
  const sh = ctx.shared;
  const g = new GicV3Guest(cpu);
  g.enableCpu();
  if (p.test === 'lpi') {
    const lpi = new LpiTables(cpu, new GuestAllocator(p.ramBase, p.ramSize), 2, p.lpiIdBits);
    lpi.program(g.rd, cpu.index);
    lpi.enable(g.rd);
  }
  if (p.test === 'xcore') {
    Atomics.add(sh, W_READY, 1);
    let seen = 0;
    while (!ctx.stopping) {
      seen = pong(sh, seen, PONG_POLLS);
      yield YIELD;
    }
    ctx.result.received = seen;
    ctx.result.bad = 0;
    return;
  }
  const want = p.test === 'lpi' ? LPI_INTID : IPI_SGI;
  let received = 0;
  let bad = 0;
  cpu.onIrq((c) => {
    const intid = c.readSysreg(ICC_IAR1_EL1);
    if (intid === SPURIOUS) return;
    c.writeSysreg(ICC_EOIR1_EL1, intid);
    if (intid === want) {
      received++;
      Atomics.store(sh, W_ACKS, received);
    } else bad++;
  });
  cpu.unmaskIrqs();
  Atomics.store(sh, W_AFFINITY, g.affinity);
  Atomics.add(sh, W_READY, 1);
  let steps = 0;
  if (p.test === 'ipi_wfi') {
    while (!ctx.stopping) yield WFI;
  } else {
    while (!ctx.stopping) {
      steps += spin(cpu, SPIN_STEPS);
      yield YIELD;
    }
  }
  cpu.maskIrqs();
  ctx.result.received = received;
  ctx.result.bad = bad;
  ctx.result.steps = steps;
}

/**
 * vCPU 0's wait for vCPU 1's answer polls this many times between two yields: the guest spins on a
 * flag, as kvm-unit-tests' primary does; a generator resumption and a scheduler round per poll
 * would add their own ~0.1–0.5 µs to every exec (measured with xcore).
 */
const WAIT_POLLS = 4096;

/** Whether W_ACKS reached `sent` within `polls` loads (a plain function: optimised on-stack). */
function waitAcks(sh: Int32Array, sent: number, polls: number): boolean {
  for (let i = 0; i < polls; i++) if (Atomics.load(sh, W_ACKS) >= sent) return true;
  return false;
}

/** vCPU 0 of ipi, ipi_wfi and lpi: set-up, then warm-up and timed exec()s. */
function* primary(cpu: VCpu, ctx: ProgramContext, p: MicroThreadParams): Generator<Yield, void, void> {
  const sh = ctx.shared;
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  if (p.test === 'ipi_hw') {
    // GICv4.1 vSGIs (kvm-unit-tests' ipi_hw on a GICv4.1 host): nASSGIreq, with EnableGrp1 clear.
    cpu.writel(g.distBase + GICD_CTLR, 0);
    cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_NASSGIREQ);
    cpu.writel(g.distBase + GICD_CTLR, GICD_CTLR_NASSGIREQ | GICD_CTLR_ENABLE_GRP1);
  }
  let its: ItsGuest | undefined;
  let cwriter = 0;
  if (p.test === 'lpi') {
    // Allocated in the same order as vCPU 1's, so both agree on the LPI tables.
    const alloc = new GuestAllocator(p.ramBase, p.ramSize);
    const lpi = new LpiTables(cpu, alloc, 2, p.lpiIdBits);
    lpi.program(g.rd, cpu.index);
    lpi.enable(g.rd);
    yield* until(() => Atomics.load(sh, W_READY) >= 1);
    lpi.setConfig(LPI_INTID);
    its = new ItsGuest(cpu, alloc);
    its.init();
    its.enable();
    its.mapc(LPI_COLLECTION, 1);
    its.createDevice(LPI_DEVICE, 5);
    its.mapti(LPI_DEVICE, LPI_EVENT, LPI_INTID, LPI_COLLECTION);
    its.invall(LPI_COLLECTION);
    // GICv4.1: the INT command sets the vLPI's VPT bit; vCPU 1 takes it without an exit.
    if (p.forward) {
      ctx.gic.setForwarding({
        doorbell: VIRT_GITS_BASE + GITS_TRANSLATER,
        devid: LPI_DEVICE,
        eventid: LPI_EVENT,
      });
    }
    cwriter = its.creadr;
  }
  yield* until(() => Atomics.load(sh, W_READY) >= 1);
  const toCpu1 = sgi1r(IPI_SGI, Atomics.load(sh, W_AFFINITY));
  const lat = new Float64Array(p.latencies);
  let sent = 0;
  let failed = 0;
  let gaveUp = false;
  const total = p.warmup + p.trials * p.iterations;
  let trialStart = 0;
  for (let i = 0; i < total && !gaveUp; i++) {
    const k = i - p.warmup; // timed index (negative: warm-up)
    if (k >= 0 && k % p.iterations === 0) trialStart = performance.now();
    const t0 = performance.now();
    // exec(): the IPI or the ITS INT command, then wait for vCPU 1's handler.
    if (p.test === 'xcore') Atomics.store(sh, W_PING, sent + 1);
    else if (its === undefined) cpu.writeSysreg(ICC_SGI1R_EL1, toCpu1);
    else {
      cwriter = itsInt(cpu, its, cwriter);
      if (cwriter < 0) {
        failed++;
        cwriter = its.creadr;
      }
    }
    sent++;
    while (!waitAcks(sh, sent, WAIT_POLLS)) {
      if (ctx.stopping) {
        gaveUp = true;
        break;
      }
      yield YIELD;
    }
    const t1 = performance.now();
    if (k >= 0) {
      lat[k] = (t1 - t0) * 1e6;
      if ((k + 1) % p.iterations === 0)
        ctx.result[`total${(k + 1) / p.iterations - 1}`] = (t1 - trialStart) * 1e6;
    }
  }
  ctx.result.sent = sent;
  ctx.result.failed = failed;
  Atomics.store(sh, W_DONE, gaveUp ? 2 : 1);
}

/**
 * its_send_int: the INT command (4 doublewords: opcode | DeviceID << 32, EventID, 0, 0) written at
 * CWRITER, CWRITER advanced (wrapping), CREADR polled until it has passed the command. Returns the
 * new CWRITER, or -1 if CREADR did not get there. The same 64-bit stores and loads as
 * ItsGuest.int, issued as (lo, hi) words: ItsGuest builds and splits BigInts on every call, which
 * costs the guest ~300 ns that are JavaScript's, not the ITS's.
 */
function itsInt(cpu: VCpu, its: ItsGuest, cwriter: number): number {
  const at = its.cmdq + cwriter;
  cpu.mmioWrite(at, 8, GITS_CMD_INT, LPI_DEVICE);
  cpu.mmioWrite(at + 8, 8, LPI_EVENT, 0);
  cpu.mmioWrite(at + 16, 8, 0, 0);
  cpu.mmioWrite(at + 24, 8, 0, 0);
  const next = (cwriter + ITS_CMD_SIZE) % its.cmdqBytes;
  cpu.mmioWrite(its.base + GITS_CWRITER, 8, next, 0);
  for (let i = 0; i < 1000; i++)
    if ((cpu.mmioRead(its.base + GITS_CREADR, 8) & 0xfffe0) === next) return next;
  return -1;
}

/** timer_10ms on vCPU 0: CVAL = now + CNTFRQ/100, enable, WFI until the handler ran. */
function* timerPrimary(cpu: VCpu, ctx: ProgramContext, p: MicroThreadParams): Generator<Yield, void, void> {
  const sh = ctx.shared;
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  g.setPriority(PPI_VTIMER, 0xa0);
  g.enableIrq(PPI_VTIMER);
  let fired = 0;
  let bad = 0;
  cpu.onIrq((c) => {
    const intid = c.readSysreg(ICC_IAR1_EL1);
    if (intid === SPURIOUS) return;
    // Quiet the device before EOI (the timer is a level-sensitive, HW-mapped PPI).
    if (intid === PPI_VTIMER) {
      c.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
      fired++;
    } else bad++;
    c.writeSysreg(ICC_EOIR1_EL1, intid);
  });
  cpu.unmaskIrqs();
  const ticks = cpu.readSysreg(CNTFRQ_EL0) / 100;
  const periodNs = 1e7; // 10 ms: what timer_post subtracts per iteration
  const lat = new Float64Array(p.latencies);
  let armed = 0;
  let gaveUp = false;
  const total = p.warmup + p.trials * p.iterations;
  let trialStart = 0;
  for (let i = 0; i < total && !gaveUp; i++) {
    const k = i - p.warmup;
    if (k >= 0 && k % p.iterations === 0) trialStart = performance.now();
    const t0 = performance.now();
    const cval = Number(cpu.readSysreg64(CNTVCT_EL0)) + ticks;
    cpu.writeSysreg(CNTV_CVAL_EL0, cval % 2 ** 32, Math.floor(cval / 2 ** 32));
    cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
    armed++;
    while (fired < armed) {
      if (ctx.stopping) {
        gaveUp = true;
        break;
      }
      yield WFI;
    }
    const t1 = performance.now();
    if (k >= 0) {
      lat[k] = (t1 - t0) * 1e6 - periodNs;
      if ((k + 1) % p.iterations === 0) {
        ctx.result[`total${(k + 1) / p.iterations - 1}`] = (t1 - trialStart) * 1e6 - p.iterations * periodNs;
      }
    }
  }
  cpu.writeSysreg(CNTV_CTL_EL0, 0);
  cpu.maskIrqs();
  ctx.result.sent = armed;
  ctx.result.received = fired;
  ctx.result.bad = bad;
  ctx.result.failed = 0;
  Atomics.store(sh, W_DONE, gaveUp ? 2 : 1);
}
