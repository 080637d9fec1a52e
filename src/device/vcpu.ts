/**
 * A vCPU handle for in-process TypeScript guests (tests, benchmarks, the demo, qtest): each method
 * behaves as the vCPU executing one instruction. The run loop is KVM's: the vCPU enters the guest
 * (flush: ap_list → LRs), ICC_* accesses act on the LRs as the virtual CPU interface does in
 * hardware, and anything the hardware would trap (MMIO, SGI generation, timer registers, WFI,
 * maintenance interrupts, kicks) is an exit (sync: LRs → ap_list) followed by a new entry.
 *
 * Between instructions the vCPU takes an IRQ exception when the virtual CPU interface signals one
 * and PSTATE.I is clear: the handler given to onIrq() runs with IRQs masked, as on hardware.
 *
 * Who may call: one thread per vCPU (the one "running" it). The host API is in device/vgic.ts.
 */

import { describeValue, VgicError } from '../arch/errors.ts';
import { PPI_VTIMER } from '../arch/intid.ts';
import {
  CNTV_CTL_ENABLE,
  CNTV_CTL_IMASK,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_PMR_EL1,
  ICC_SGI1R_EL1,
} from '../arch/sysreg.ts';
import { counterNow, isVirtualTime, setVirtualCounter, ticksToMs } from '../core/clock.ts';
import { gicvLastPhysIntid, gicvLine, gicvMaintenance } from '../core/gicv.ts';
import {
  ICV_DEACTIVATE_PHYS,
  ICV_DEACTIVATE_SW,
  ICV_IGNORED,
  icvEoir,
  icvIar,
  LINE_NONE,
  LINE_VFIQ,
  LINE_VIRQ,
  lastPhysIntid,
  maintenanceStatus,
  virqLine,
} from '../core/icv.ts';
import { canBlock, lockOwnerId, lockRun, unlockRun } from '../core/locks.ts';
import { dispatchSgi } from '../core/sgi.ts';
import { timerDeadline, timerPhysDeactivate, timerReached, timerUpdate } from '../core/timer.ts';
import { deactivateInSoftware, flushHwstate, syncHwstate, vcpuPendingIrq } from '../core/vgic.ts';
import { lrSlot } from '../core/vgic-v3.ts';
import { vpeMakeNonResident, vpeMakeResident } from '../core/vpe.ts';
import { GICC_NO_WORK, giccClearWork, giccFrame, giccIntid, giccResult } from '../mmio/gicc.ts';
import { dispatchRead, dispatchWrite, type Frame } from '../mmio/region.ts';
import {
  type GicState,
  S_IRQ_NESTING_LIMIT,
  S_MMIO_BAD_ACCESS,
  S_MMIO_UNMAPPED,
  S_SYSREG_UNKNOWN,
  V_EOICOUNT,
  V_EXITS,
  V_IN_GUEST,
  V_MAINT,
  V_POWER_OFF,
  V_PSTATE_F,
  V_PSTATE_I,
  V_REQUESTS,
  V_RUN_LOCK,
  V_SLEEPING,
  V_TIMER_CTL,
  V_TIMER_LEVEL,
  V_WAKE_AT,
  VCPU_STRIDE,
} from '../state/layout.ts';
import {
  EV_GICV3_CPUIF_VIRT_SET_IRQS,
  EV_GICV3_CPUIF_VIRT_SET_MAINT_IRQ,
  EV_VGIC_SYNC_HWSTATE,
  traceEmit,
  tracing,
} from '../trace/trace.ts';
import { checkUserSysreg, sysregRead, sysregWrite } from './sysregs.ts';
import { traceMmio, traceSysreg } from './trace-hooks.ts';
import type { Vgic } from './vgic.ts';

/** An in-process guest's IRQ or FIQ exception handler (see {@link VCpu.onIrq}). */
export type IrqHandler = (vcpu: VCpu) => void;
/** What a WFI ended on: a wake-up event (`'irq'`) or the timeout. */
export type WfiResult = 'irq' | 'timeout';

/**
 * The CPU interface's output lines to one vCPU's CPU (GIC spec IHI 0069, 4.1 "the CPU interface
 * signals IRQ and FIQ"): at most one is asserted at a time, for the highest-priority pending
 * interrupt that can preempt. {@link OUTPUT_NONE}, {@link OUTPUT_IRQ} or {@link OUTPUT_FIQ}.
 */
export type OutputLine = 0 | 1 | 2;
/** No output line asserted: nothing this vCPU would take. */
export const OUTPUT_NONE = 0;
/** IRQ asserted: a Group 1 interrupt the CPU takes when its PSTATE.I is clear. */
export const OUTPUT_IRQ = 1;
/** FIQ asserted: a Group 0 interrupt the CPU takes when its PSTATE.F is clear. */
export const OUTPUT_FIQ = 2;

/**
 * Called when a vCPU's output line changes level (see {@link VCpu.onOutputLine}): `line` is the
 * new level. It runs on the thread that ran the vCPU's instruction, after that instruction, with no
 * vgic lock held; it may run the vCPU's instructions (acknowledge, EOI) and is not re-entered.
 */
export type OutputLineHandler = (line: OutputLine, vcpu: VCpu) => void;

/** Deepest nesting of IRQ handlers (preemption needs a higher priority: 32 levels suffice). */
export const MAX_IRQ_NESTING = 64;

/** The trace switch, as a module-local constant (trace/trace.ts: read by every hook below). */
const trace = tracing;

/** Scratch for a 64-bit RAM load as two words (no BigInt on the access path). */
const words64 = new Uint32Array(2);

/**
 * Host misuse of a guest-instruction method (a bigint, a string or null where a number is expected)
 * throws here, before the instruction takes its run_lock; guest values themselves never throw.
 */
function badOperand(what: string, value: unknown): never {
  throw new VgicError('INVALID_ARGUMENT', `${what} must be a number, got ${describeValue(value)}`);
}

/** A 64-bit operand given as a bigint or a safe integer (both in two's complement modulo 2^64). */
function u64(what: string, value: unknown): bigint {
  if (typeof value === 'bigint') return BigInt.asUintN(64, value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt.asUintN(64, BigInt(value));
  throw new VgicError(
    'INVALID_ARGUMENT',
    `${what} must be a bigint or a safe integer, got ${describeValue(value)}`,
  );
}

function checkTimeout(timeoutMs: unknown): void {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)
    throw new VgicError(
      'INVALID_ARGUMENT',
      `wfi timeoutMs must be a number >= 0, got ${describeValue(timeoutMs)}`,
    );
}

/**
 * An ICC_* encoding (Op0 3, Op1 0, CRn 12, or ICC_PMR_EL1): a GICv2 has no system-register
 * interface (ICC_SRE_EL1.SRE reads 0 on hardware that offers one), so these are RAZ/WI, counted.
 */
function isIccSysreg(enc: number): boolean {
  return enc >>> 14 === 3 && ((enc >>> 11) & 7) === 0 && (((enc >>> 7) & 15) === 12 || enc === ICC_PMR_EL1);
}

/** wfiAsync's longest single wait, and its poll period on an unshared state. */
const ASYNC_SLICE_MS = 1000;
const UNSHARED_POLL_MS = 4;

let sleepCell: Int32Array | undefined;
function sleepMs(ms: number): void {
  sleepCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * One vCPU's view of the GIC: its CPU interface (the `ICC_*` system registers over the list
 * registers), its redistributor, its EL1 virtual timer, and its run loop. Each method is one
 * instruction of that vCPU. An outside CPU model drives it through {@link mmioRead},
 * {@link mmioWrite}, {@link readSysreg}, {@link writeSysreg}, {@link step}, {@link entryRequested}
 * and {@link onOutputLine} (README "Wiring vgic into your CPU"); in-process TypeScript guests use
 * the same methods and {@link onIrq}. Get it with {@link Vgic.vcpu}; one thread runs each vCPU.
 */
export class VCpu {
  /** The vCPU's number (0-based; also its affinity Aff0 and its redistributor's processor number). */
  readonly index: number;
  /** The GIC this vCPU belongs to. */
  readonly gic: Vgic;
  /** @internal The state and this vCPU's word base (for the system-register file). */
  readonly s: GicState;
  /** @internal */
  readonly b: number;
  /** A GICv2: the CPU interface is the GICC frame over GICH_LRs (core/gicv.ts). */
  private readonly v2: boolean;
  private handler: IrqHandler | undefined;
  private fiqHandler: IrqHandler | undefined;
  /** IRQ handlers running on this vCPU (nested when a handler unmasks IRQs). */
  private depth = 0;
  private lineHandler: OutputLineHandler | undefined;
  /** The output line level the line handler was last told (0 before its first call). */
  private reportedLine = 0;
  /** The line handler is running: its own instructions do not call it again. */
  private inLineHandler = false;
  /** High 32 bits of the last 64-bit MMIO or system register read (0 after a 32-bit one). */
  hi = 0;

  constructor(gic: Vgic, index: number) {
    this.gic = gic;
    this.index = index;
    this.s = gic.state;
    this.b = index * VCPU_STRIDE;
    this.v2 = this.s.gicv2;
    // PSTATE.I lives in the shared state and starts set (resetState): a handle made by
    // Vgic.attach must not mask a vCPU another thread is running.
  }

  // ---- Run loop ----
  //
  // Every instruction runs under the vCPU's run_lock (core/locks.ts): begin() takes it and enters
  // the guest if needed, end() takes kicks and IRQs and releases it. It is dropped around an IRQ
  // handler (whose instructions take it again), in WFI, and while an exit is emulated, so that a
  // thread halting this vCPU (to fold its LRs) waits at most one instruction.

  private lockRun(): void {
    lockRun(this.s, this.b + V_RUN_LOCK);
  }

  private unlockRun(): void {
    unlockRun(this.s, this.b + V_RUN_LOCK);
  }

  /** Before an instruction: take the run_lock; enter the guest if not in it, or if a kick asks for a new look. */
  private begin(): void {
    const s = this.s;
    const b = this.b;
    // lockRun inlined: this runs before every instruction.
    if (s.shared) {
      if (Atomics.compareExchange(s.vcpu, b + V_RUN_LOCK, 0, lockOwnerId()) !== 0) lockRun(s, b + V_RUN_LOCK);
    } else if (s.vcpu[b + V_RUN_LOCK] === 0) s.vcpu[b + V_RUN_LOCK] = 1;
    else lockRun(s, b + V_RUN_LOCK); // throws: an instruction inside an instruction
    if (s.vcpu[b + V_IN_GUEST] === 0 || s.vcpu[b + V_REQUESTS] !== 0) this.reenter();
  }

  /** Leaves the guest to emulate something (run_lock dropped): pair with reenterLocked(). */
  private exitUnlocked(): void {
    this.syncOut();
    this.unlockRun();
  }

  /** exitUnlocked() for a caller that checked the trace switch already (off): no sync event. */
  private exitQuiet(): void {
    const s = this.s;
    if (s.vcpu[this.b + V_IN_GUEST] !== 0) {
      syncHwstate(s, this.index);
      s.vcpu[this.b + V_EXITS]++;
    }
    this.unlockRun();
  }

  private reenterLocked(): void {
    this.lockRun();
    this.reenter();
  }

  /** Exit (if in the guest) and enter again: sync, handle requests and the timer, flush. */
  private reenter(): void {
    const s = this.s;
    const b = this.b;
    const v = this.index;
    if (s.vcpu[b + V_IN_GUEST] !== 0) {
      syncHwstate(s, v);
      s.vcpu[b + V_EXITS]++;
      if (trace.on !== 0) traceEmit(EV_VGIC_SYNC_HWSTATE, v);
    }
    // Cleared before flush: anything queued from here on sets it again.
    if (s.vcpu[b + V_REQUESTS] !== 0) {
      if (s.shared) Atomics.store(s.vcpu, b + V_REQUESTS, 0);
      else s.vcpu[b + V_REQUESTS] = 0;
    }
    if (s.vcpu[b + V_TIMER_CTL] & CNTV_CTL_ENABLE) timerUpdate(s, v);
    s.vcpu[b + V_EOICOUNT] = 0;
    flushHwstate(s, v);
    // GICv4.1 (vgic_v4_load): the vCPU runs, so its vPE is resident (one load when it already is).
    if (s.direct) vpeMakeResident(s, v);
  }

  /**
   * Leaves the guest: the LRs are folded back (the state is then fully in the ap_list); the next
   * instruction enters again. An outside CPU calls it when it stops
   * running this vCPU for a while (WFI, a pause, before a snapshot taken from another thread).
   */
  exit(): void {
    this.lockRun();
    this.syncOut();
    // vgic_v4_put: a stopped vCPU's vPE is not resident, and rings no doorbell.
    if (this.s.direct) vpeMakeNonResident(this.s, this.index, false);
    this.unlockRun();
    if (this.lineHandler !== undefined && !this.inLineHandler) this.reportLine();
  }

  /** WFI blocks: the vPE leaves with its doorbell enabled (kvm_vgic_vcpu_blocking → vgic_v4_put). */
  private blockVpe(): void {
    if (this.s.direct) vpeMakeNonResident(this.s, this.index, true);
  }

  private syncOut(): void {
    const s = this.s;
    if (s.vcpu[this.b + V_IN_GUEST] !== 0) {
      syncHwstate(s, this.index);
      s.vcpu[this.b + V_EXITS]++;
      if (trace.on !== 0) traceEmit(EV_VGIC_SYNC_HWSTATE, this.index);
    }
  }

  /** Whether the vCPU is in the guest (its LRs hold live state). */
  get inGuest(): boolean {
    return this.s.vcpu[this.b + V_IN_GUEST] !== 0;
  }

  /**
   * After an instruction: a kick or an armed timer that fired makes the vCPU exit and re-enter;
   * then a signalled vIRQ (Group 1) is taken if PSTATE.I is clear, a vFIQ (Group 0) if PSTATE.F is.
   * Called with the run_lock held; returns with it released.
   */
  private end(): void {
    this.endLocked();
    if (this.lineHandler !== undefined && !this.inLineHandler) this.reportLine();
  }

  private endLocked(): void {
    const s = this.s;
    const b = this.b;
    this.pollTimer();
    if (s.vcpu[b + V_REQUESTS] !== 0) this.reenter();
    if ((s.vcpu[b + V_PSTATE_I] & s.vcpu[b + V_PSTATE_F]) === 0) {
      // Looked up once: the exception taken is the one signalled here (a look is a VPT scan
      // with direct injection).
      const line = this.pendingException();
      if (line !== LINE_NONE) {
        this.takeIrqs(line);
        return;
      }
    }
    if (s.shared) Atomics.store(s.vcpu, b + V_RUN_LOCK, 0);
    else s.vcpu[b + V_RUN_LOCK] = 0;
  }

  /** An armed timer whose deadline has passed raises its output (the host's hrtimer, in KVM). */
  private pollTimer(): void {
    const s = this.s;
    const b = this.b;
    const ctl = s.vcpu[b + V_TIMER_CTL];
    if ((ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) === CNTV_CTL_ENABLE && s.vcpu[b + V_TIMER_LEVEL] === 0) {
      if (timerReached(s, this.index)) timerUpdate(s, this.index);
    }
  }

  /** The exception the vCPU would take now: a vIRQ (PSTATE.I clear) or a vFIQ (PSTATE.F clear), if handled. */
  private pendingException(): number {
    const s = this.s;
    const b = this.b;
    const line = this.v2 ? gicvLine(s, this.index) : virqLine(s, this.index);
    if (line === LINE_VIRQ)
      return s.vcpu[b + V_PSTATE_I] === 0 && this.handler !== undefined ? line : LINE_NONE;
    if (line === LINE_VFIQ)
      return s.vcpu[b + V_PSTATE_F] === 0 && this.fiqHandler !== undefined ? line : LINE_NONE;
    return LINE_NONE;
  }

  /**
   * Takes IRQ exceptions while one is signalled. A loop, not recursion: each exception return is a
   * new boundary, and a guest whose handler never quiets its device takes IRQs forever (as on
   * hardware) without growing the JS stack. Kept out of after(), which runs after every instruction.
   */
  private takeIrqs(first: number): void {
    const s = this.s;
    const b = this.b;
    let line = first;
    for (;;) {
      if (this.depth >= MAX_IRQ_NESTING) {
        // A handler that unmasks IRQs before quieting its source nests without end; on hardware
        // it would overflow the guest's stack. Stop nesting here, visibly.
        s.stats[S_IRQ_NESTING_LIMIT]++;
        this.unlockRun();
        return;
      }
      this.takeIrq(line);
      this.pollTimer();
      if (s.vcpu[b + V_REQUESTS] !== 0) this.reenter();
      line = this.pendingException();
      if (line === LINE_NONE) {
        this.unlockRun();
        return;
      }
    }
  }

  /** An LR changed state: a maintenance interrupt makes the vCPU exit and re-enter. */
  private maintenance(): void {
    // An LR that changed state is only in-guest work: no exit to emulate, the run_lock stays.
    const misr = this.v2 ? gicvMaintenance(this.s, this.index) : maintenanceStatus(this.s, this.index);
    if (misr !== 0) {
      this.s.vcpu[this.b + V_MAINT]++;
      if (trace.on !== 0) traceEmit(EV_GICV3_CPUIF_VIRT_SET_MAINT_IRQ, this.index, misr);
      this.reenter();
    }
  }

  /** Exception entry: IRQ and FIQ both mask I and F while the handler runs, as at EL1. */
  private takeIrq(line: number): void {
    if (line === LINE_NONE) return;
    const s = this.s;
    const b = this.b;
    const i = s.vcpu[b + V_PSTATE_I];
    const f = s.vcpu[b + V_PSTATE_F];
    s.vcpu[b + V_PSTATE_I] = 1;
    s.vcpu[b + V_PSTATE_F] = 1;
    this.depth++;
    if (trace.on !== 0)
      traceEmit(
        EV_GICV3_CPUIF_VIRT_SET_IRQS,
        this.index,
        line === LINE_VFIQ ? 1 : 0,
        line === LINE_VIRQ ? 1 : 0,
      );
    // The handler's instructions take the run_lock themselves.
    this.unlockRun();
    try {
      (line === LINE_VIRQ ? this.handler : this.fiqHandler)!(this);
    } catch (e) {
      // A throwing handler ends the instruction that took the exception: the error reaches the
      // caller of that instruction once, and the vCPU is left as between two instructions (no lock
      // held, PSTATE as before the exception), so the next step() or snapshot() proceeds. Whatever
      // the handler did through the vCPU (an acknowledge, say) stands, as a guest's would.
      this.depth--;
      s.vcpu[b + V_PSTATE_I] = i;
      s.vcpu[b + V_PSTATE_F] = f;
      this.releaseRunIfMine();
      throw e;
    }
    this.lockRun();
    this.depth--;
    s.vcpu[b + V_PSTATE_I] = i;
    s.vcpu[b + V_PSTATE_F] = f;
  }

  /**
   * Releases the run_lock if this thread holds it. After a throwing handler it normally does not
   * (each of the handler's instructions released it), but an instruction cut short by an exception
   * of vgic's own may have left it taken; never another thread's.
   */
  private releaseRunIfMine(): void {
    const s = this.s;
    const i = this.b + V_RUN_LOCK;
    if (s.shared) Atomics.compareExchange(s.vcpu, i, lockOwnerId(), 0);
    else s.vcpu[i] = 0;
  }

  /** Executes nothing: an instruction boundary where kicks and IRQs are taken (a NOP). */
  step(): void {
    this.begin();
    this.end();
  }

  /** Installs the guest's IRQ exception handler (Group 1 interrupts arrive as IRQs). */
  onIrq(handler: IrqHandler | undefined): void {
    if (handler !== undefined && typeof handler !== 'function')
      badOperand('onIrq handler (a function)', handler);
    this.handler = handler;
  }

  /** Installs the guest's FIQ exception handler (Group 0 interrupts arrive as FIQs). */
  onFiq(handler: IrqHandler | undefined): void {
    if (handler !== undefined && typeof handler !== 'function')
      badOperand('onFiq handler (a function)', handler);
    this.fiqHandler = handler;
  }

  /**
   * Installs (or, with `undefined`, removes) the handler told when this vCPU's output line changes
   * level: an outside CPU model (an emulator's own interpreter or JIT) drives its IRQ and FIQ
   * inputs with it, and takes the exception when its own PSTATE allows.
   *
   * When it fires: at the end of one of this vCPU's instructions ({@link step}, {@link exit},
   * {@link readSysreg}, {@link writeSysreg}, {@link mmioRead}, {@link mmioWrite}, a WFI), on the
   * thread that ran it, with every vgic lock released, and only if the level differs from the one
   * it was last told (the first call, at the next instruction, only if the level is not
   * {@link OUTPUT_NONE}). An injection from the host or another thread (an SPI, an MSI, an SGI
   * from another vCPU, the timer) changes the line at this vCPU's next entry: the outside CPU calls
   * step() at its instruction boundaries when {@link entryRequested} says so, and when its timer
   * deadline ({@link wfiSleepMs}) has passed. The handler may run instructions of this vCPU (read
   * ICC_IAR1_EL1, write ICC_EOIR1_EL1); it is not re-entered: a change they make is reported when
   * it returns (a handler that keeps changing the line keeps being told, as an IRQ storm would).
   * It is told levels, not edges: when its instructions leave the line at the level it was told
   * (it acknowledged one interrupt and another is signalled now), it is not called again; the CPU
   * reads {@link outputLine} when it unmasks (exception return), as for any level-sensitive input.
   * An exception it throws reaches the caller of the instruction once; vgic stays consistent.
   */
  onOutputLine(handler: OutputLineHandler | undefined): void {
    if (handler !== undefined && typeof handler !== 'function')
      badOperand('onOutputLine handler (a function)', handler);
    this.lineHandler = handler;
    this.reportedLine = OUTPUT_NONE;
  }

  /** Tells the line handler about every level change since its last call (no lock held). */
  private reportLine(): void {
    this.inLineHandler = true;
    try {
      for (;;) {
        const line = this.v2 ? gicvLine(this.s, this.index) : virqLine(this.s, this.index);
        const handler = this.lineHandler;
        if (line === this.reportedLine || handler === undefined) return;
        this.reportedLine = line;
        handler(line as OutputLine, this);
      }
    } finally {
      this.inLineHandler = false;
    }
  }

  /**
   * Whether something asked this vCPU to exit and enter again (KVM's vcpu requests: an injected
   * interrupt, a kick from another vCPU or thread, a changed routing): the outside CPU then calls
   * {@link step} at its next instruction boundary, which updates the output line. One load, no
   * lock: cheap enough for every instruction boundary or every translated block.
   */
  get entryRequested(): boolean {
    return this.s.vcpu[this.b + V_REQUESTS] !== 0;
  }

  /**
   * Powers the vCPU on or off as the GIC sees it (KVM_SET_MP_STATE: RUNNABLE or STOPPED; the
   * machine calls it for PSCI CPU_ON and CPU_OFF). Every vCPU starts online. An offline vCPU keeps
   * its interrupts pending (they are delivered once it is online and runs again) and `explain`
   * names it as the reason; vgic does not stop running it: the host does. Any thread.
   */
  setOnline(online: boolean): void {
    if (typeof online !== 'boolean')
      throw new VgicError('INVALID_ARGUMENT', `setOnline takes a boolean, got ${describeValue(online)}`);
    const off = online ? 0 : 1;
    if (this.s.shared) Atomics.store(this.s.vcpu, this.b + V_POWER_OFF, off);
    else this.s.vcpu[this.b + V_POWER_OFF] = off;
  }

  /** Whether the vCPU is powered on (see {@link setOnline}). */
  get online(): boolean {
    return this.s.vcpu[this.b + V_POWER_OFF] === 0;
  }

  /** PSTATE.F = 0 (msr daifclr, #1): FIQs may be taken from the next instruction boundary. */
  unmaskFiqs(): void {
    this.s.vcpu[this.b + V_PSTATE_F] = 0;
    this.step();
  }

  /** PSTATE.F = 1 (msr daifset, #1). */
  maskFiqs(): void {
    this.s.vcpu[this.b + V_PSTATE_F] = 1;
  }

  /** PSTATE.I = 0 (msr daifclr, #2): IRQs may be taken from the next instruction boundary. */
  unmaskIrqs(): void {
    this.s.vcpu[this.b + V_PSTATE_I] = 0;
    this.step();
  }

  /** PSTATE.I = 1 (msr daifset, #2). */
  maskIrqs(): void {
    this.s.vcpu[this.b + V_PSTATE_I] = 1;
  }

  /** PSTATE.I of an in-process guest (see {@link maskIrqs}, {@link unmaskIrqs}). */
  get irqsMasked(): boolean {
    return this.s.vcpu[this.b + V_PSTATE_I] !== 0;
  }

  /**
   * WFI: exits and sleeps until an interrupt is pending for this vCPU (whatever PSTATE.I is) or
   * `timeoutMs` of host time has passed. With virtual time, sleeping until the timer's deadline
   * advances virtual time to it instead. Where the thread may not block (a browser's main thread)
   * it does not sleep: it answers 'timeout' at once when nothing is pending, as a WFI may complete
   * early on hardware; wfiAsync() waits without blocking.
   */
  wfi(timeoutMs = Number.POSITIVE_INFINITY): WfiResult {
    checkTimeout(timeoutMs);
    const s = this.s;
    const wake = s.vcpu[this.b + V_WAKE_AT];
    this.exit();
    this.blockVpe();
    const start = performance.now();
    let result: WfiResult = 'timeout';
    this.setSleeping(1);
    for (;;) {
      // Read before looking: a kick after the look changes it, and the wait then returns at once.
      const seen = Atomics.load(s.vcpu, wake);
      const look = this.wfiLook(start, timeoutMs);
      if (typeof look === 'string') {
        result = look;
        break;
      }
      if (!canBlock()) break;
      if (s.shared) Atomics.wait(s.vcpu, wake, seen, look);
      else if (look === Number.POSITIVE_INFINITY)
        break; // nothing can ever wake a single thread
      else sleepMs(look);
    }
    this.setSleeping(0);
    this.step();
    return result;
  }

  /**
   * WFI that waits without blocking the thread (a browser's main thread, an event loop): resolves
   * as wfi() would return. On a shared state a kick from another thread (a Web Worker injecting)
   * wakes it through Atomics.waitAsync; on an unshared one, code of this thread that injects while
   * it waits is seen within a few milliseconds. The vCPU must not run other instructions meanwhile.
   */
  async wfiAsync(timeoutMs = Number.POSITIVE_INFINITY): Promise<WfiResult> {
    checkTimeout(timeoutMs);
    const s = this.s;
    const wake = s.vcpu[this.b + V_WAKE_AT];
    this.exit();
    this.blockVpe();
    const start = performance.now();
    let result: WfiResult = 'timeout';
    this.setSleeping(1);
    try {
      for (;;) {
        const seen = Atomics.load(s.vcpu, wake);
        const look = this.wfiLook(start, timeoutMs);
        if (typeof look === 'string') {
          result = look;
          break;
        }
        // Slices of at most ASYNC_SLICE_MS: a timer keeps a Node event loop alive (waitAsync alone
        // does not), and an unshared state has no futex to be woken on.
        const slice = Math.min(look, ASYNC_SLICE_MS);
        const waiter =
          s.shared && typeof Atomics.waitAsync === 'function'
            ? Atomics.waitAsync(s.vcpu, wake, seen, slice)
            : undefined;
        if (waiter !== undefined && !waiter.async) continue;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const delay = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waiter !== undefined ? slice : Math.min(slice, UNSHARED_POLL_MS));
        });
        await (waiter !== undefined ? Promise.race([waiter.value, delay]) : delay);
        clearTimeout(timer);
      }
    } finally {
      this.setSleeping(0);
    }
    this.step();
    return result;
  }

  private setSleeping(on: number): void {
    if (this.s.shared) Atomics.store(this.s.vcpu, this.b + V_SLEEPING, on);
  }

  /**
   * One look of a WFI: 'irq' (a wake-up event is there), 'timeout', or how long it may sleep (ms)
   * before looking again.
   */
  private wfiLook(start: number, timeoutMs: number): WfiResult | number {
    const s = this.s;
    const v = this.index;
    for (;;) {
      timerUpdate(s, v);
      if (vcpuPendingIrq(s, v)) return 'irq';
      const deadline = timerDeadline(s, v);
      // Sleep until the timer's deadline only if it is still ahead: once it has fired without
      // making an interrupt pending (the PPI is disabled or masked), it is no wake-up event.
      const ahead = deadline !== Number.POSITIVE_INFINITY && !timerReached(s, v);
      if (isVirtualTime(s) && ahead) {
        // Exactly to CVAL: the rounded deadline could land past 2^64 - 1 or short of CVAL.
        setVirtualCounter(s, s.timerCvalWords[2 * v], s.timerCvalWords[2 * v + 1]);
        continue;
      }
      const left = timeoutMs - (performance.now() - start);
      if (left <= 0) return 'timeout';
      return ahead ? Math.min(left, ticksToMs(Math.max(0, deadline - counterNow(s)))) : left;
    }
  }

  /**
   * The CPU interface's output to this vCPU's CPU, from the list registers as the last entry
   * (step(), or any access) left them, and with GICv4.1 direct injection from the vLPIs and vSGIs
   * pending in its resident vPE (virqLine; a GICv2 reads its GICH_LRs, gicvLine): 0 none, 1 IRQ (a Group 1 interrupt it would take), 2 FIQ
   * (Group 0). An outside CPU polls it after each exit and entry and drives its own IRQ/FIQ inputs
   * with it; it takes them when its PSTATE allows. Reads only: no lock, no allocation.
   */
  outputLine(): OutputLine {
    return (this.v2 ? gicvLine(this.s, this.index) : virqLine(this.s, this.index)) as OutputLine;
  }

  /**
   * Whether an interrupt this vCPU would take is pending for it (KVM's kvm_vgic_vcpu_pending_irq:
   * enabled, pending, not active, above PMR; whatever PSTATE.I says): WFI's wake-up condition,
   * without an exit. For schedulers deciding which vCPU to run.
   */
  hasPendingIrq(): boolean {
    return vcpuPendingIrq(this.s, this.index);
  }

  /**
   * A WFI that does not block the thread, for runtimes that multiplex vCPUs on one thread
   * (runtime/scheduler.ts): exits, and answers whether a wake-up event is there (an interrupt this
   * vCPU would take, whatever PSTATE.I is). The caller runs step() once it is, and otherwise
   * sleeps on the word kicks bump (V_WAKE_AT) for at most wfiSleepMs().
   */
  wfiPoll(): boolean {
    this.exit();
    this.blockVpe();
    timerUpdate(this.s, this.index);
    return vcpuPendingIrq(this.s, this.index);
  }

  /** How long a WFI may sleep before the virtual timer's deadline (Infinity: no armed timer). */
  wfiSleepMs(): number {
    const s = this.s;
    const deadline = timerDeadline(s, this.index);
    if (deadline === Number.POSITIVE_INFINITY) return deadline;
    if (timerReached(s, this.index)) return 0;
    // Not reached, though the rounded numbers may say so above 2^53: at least one tick more.
    return ticksToMs(Math.max(1, deadline - counterNow(s)));
  }

  // ---- System registers ----

  /** MRS: reads a system register (ICC_*, CNT*). Unknown registers read as zero and are counted. */
  readSysreg(enc: number): number {
    if (typeof enc !== 'number') badOperand('system register encoding', enc);
    this.begin();
    // The hottest register first, outside the big switch, so it can be inlined. It has no high
    // word: clear the one an earlier 64-bit read left (sysregRead clears it for the others).
    let value: number;
    if (enc === ICC_IAR1_EL1 && !this.v2) {
      this.hi = 0;
      value = this.iar(true);
    } else if (this.v2 && isIccSysreg(enc)) {
      this.hi = 0;
      this.s.stats[S_SYSREG_UNKNOWN]++;
      value = 0;
    } else value = sysregRead(this, enc);
    if (trace.on !== 0) traceSysreg(this.index, enc, value, this.hi, false);
    // The MRS completes before an IRQ taken at the next boundary; the handler must not clobber hi.
    const hi = this.hi;
    this.end();
    this.hi = hi;
    return value;
  }

  /** MSR: writes a system register, given as low and high 32-bit words. */
  writeSysreg(enc: number, lo: number, hi = 0): void {
    if (typeof enc !== 'number') badOperand('system register encoding', enc);
    if (typeof lo !== 'number' || typeof hi !== 'number')
      badOperand('writeSysreg value words (writeSysreg64 takes a bigint)', typeof lo !== 'number' ? lo : hi);
    this.begin();
    // The hottest registers first, outside the big switch, so they can be inlined.
    if (this.v2 && isIccSysreg(enc)) this.s.stats[S_SYSREG_UNKNOWN]++;
    else if (enc === ICC_EOIR1_EL1) this.eoir(true, lo & 0xffffff);
    else if (enc === ICC_SGI1R_EL1) this.sgi(lo >>> 0, hi >>> 0, true);
    else sysregWrite(this, enc, lo >>> 0, hi >>> 0);
    if (trace.on !== 0) traceSysreg(this.index, enc, lo, hi, true);
    this.end();
  }

  /** @internal ICC_IAR0/1_EL1 on the LRs, then maintenance. */
  iar(grp1: boolean): number {
    const intid = icvIar(this.s, this.index, grp1);
    this.maintenance();
    return intid;
  }

  /** @internal ICC_EOIR0/1_EL1. */
  eoir(grp1: boolean, intid: number): void {
    this.afterDeactivate(icvEoir(this.s, this.index, grp1, intid), intid);
  }

  /** @internal SGI generation traps: exit, dispatch, enter again (the sender may be a target too). */
  sgi(lo: number, hi: number, allowGroup1: boolean): void {
    this.exitUnlocked();
    dispatchSgi(this.s, this.index, lo, hi, allowGroup1);
    this.reenterLocked();
  }

  /** MRS with the whole 64-bit value (for registers wider than 32 bits, e.g. CNTVCT_EL0). */
  readSysreg64(enc: number): bigint {
    const lo = this.readSysreg(enc);
    return (BigInt(this.hi) << 32n) | BigInt(lo);
  }

  /** MSR with a 64-bit value (a bigint, or a safe integer). */
  writeSysreg64(enc: number, value: bigint | number): void {
    const v = u64('writeSysreg64 value', value);
    this.writeSysreg(enc, Number(v & 0xffffffffn), Number(v >> 32n));
  }

  /** @internal The work an EOIR/DIR leaves for the hypervisor side, then maintenance. */
  afterDeactivate(result: number, intid: number): void {
    if (result === ICV_IGNORED) return;
    const s = this.s;
    const v = this.index;
    if (result === ICV_DEACTIVATE_SW) {
      const slot = lrSlot(s, v, intid);
      if (slot >= 0) {
        this.exitUnlocked();
        deactivateInSoftware(s, slot);
        this.reenterLocked();
        // The timer is this vCPU's own (run_lock held again).
        if (intid === PPI_VTIMER) timerPhysDeactivate(s, v);
      }
      return;
    }
    if (result === ICV_DEACTIVATE_PHYS && (this.v2 ? gicvLastPhysIntid() : lastPhysIntid()) === PPI_VTIMER)
      timerPhysDeactivate(s, v);
    this.maintenance();
  }

  /**
   * Userspace access to the CPU interface state (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS): no guest
   * instruction is executed, nothing enters or exits. Only registers without side effects.
   */
  userReadSysreg(enc: number): number {
    checkUserSysreg(enc);
    this.lockRun();
    try {
      return sysregRead(this, enc);
    } finally {
      this.unlockRun();
    }
  }

  /** Userspace write of a CPU interface register (one of USER_SYSREGS; no instruction runs). */
  userWriteSysreg(enc: number, value: number): void {
    checkUserSysreg(enc);
    this.lockRun();
    try {
      sysregWrite(this, enc, value >>> 0, 0);
    } finally {
      this.unlockRun();
    }
  }

  // ---- MMIO and RAM ----

  /**
   * A load of `size` (1, 2, 4 or 8) bytes at guest physical `addr`: GIC frames, then RAM; anything
   * else reads as zero and is counted. Returns the low 32 bits; an 8-byte load leaves the high
   * word in `hi`.
   */
  mmioRead(addr: number, size: number): number {
    if (typeof addr !== 'number' || typeof size !== 'number')
      badOperand('mmioRead address and size', typeof addr !== 'number' ? addr : size);
    this.begin();
    const value = this.load(addr, size);
    // The load completes before an IRQ taken at the next boundary; the handler must not clobber hi.
    const hi = this.hi;
    this.end();
    this.hi = hi;
    return value;
  }

  /** A store of `size` bytes (value as lo, and hi for 8 bytes). */
  mmioWrite(addr: number, size: number, lo: number, hi = 0): void {
    if (
      typeof addr !== 'number' ||
      typeof size !== 'number' ||
      typeof lo !== 'number' ||
      typeof hi !== 'number'
    ) {
      const bad = [addr, size, lo, hi].find((x) => typeof x !== 'number');
      badOperand('mmioWrite address, size and value words (writeq takes a bigint)', bad);
    }
    this.begin();
    this.store(addr, size, lo, hi);
    this.end();
  }

  /** 8-bit MMIO load (see {@link mmioRead}). */
  readb(addr: number): number {
    return this.mmioRead(addr, 1);
  }
  /** 16-bit MMIO load. */
  readw(addr: number): number {
    return this.mmioRead(addr, 2);
  }
  /** 32-bit MMIO load. */
  readl(addr: number): number {
    return this.mmioRead(addr, 4);
  }
  /** 64-bit MMIO load, as a bigint. */
  readq(addr: number): bigint {
    const lo = this.mmioRead(addr, 8);
    return (BigInt(this.hi) << 32n) | BigInt(lo);
  }
  /** 8-bit MMIO store (see {@link mmioWrite}). */
  writeb(addr: number, value: number): void {
    this.mmioWrite(addr, 1, value);
  }
  /** 16-bit MMIO store. */
  writew(addr: number, value: number): void {
    this.mmioWrite(addr, 2, value);
  }
  /** 32-bit MMIO store. */
  writel(addr: number, value: number): void {
    this.mmioWrite(addr, 4, value);
  }
  /** 64-bit MMIO store (a bigint, or a safe integer). */
  writeq(addr: number, value: bigint | number): void {
    const v = u64('writeq value', value);
    this.mmioWrite(addr, 8, Number(v & 0xffffffffn), Number(v >> 32n));
  }

  /**
   * A GICv2 guest's access to its CPU interface: KVM maps GICV there, so nothing exits; the access
   * acts on the LRs (mmio/gicc.ts), then any deactivation work and maintenance follow, as for
   * the GICv3 ICC_* registers.
   */
  private gicc(offset: number, size: number, write: boolean, lo: number): number {
    const gic = this.gic;
    giccClearWork();
    let value = 0;
    if (write) dispatchWrite(giccFrame, gic.ctx, this.index, offset, size, lo, 0, false);
    else {
      value = dispatchRead(giccFrame, gic.ctx, this.index, offset, size, false);
      this.hi = gic.ctx.hi;
    }
    if (giccResult !== GICC_NO_WORK) this.afterDeactivate(giccResult, giccIntid);
    else this.maintenance();
    return value;
  }

  /** load()'s GIC-frame exit while tracing is on: the same steps, with their events. */
  private loadTraced(frame: Frame, size: number): number {
    const gic = this.gic;
    const fv = gic.resolvedVcpu;
    const offset = gic.resolvedOffset;
    this.exitUnlocked();
    const value = dispatchRead(frame, gic.ctx, fv < 0 ? this.index : fv, offset, size, false);
    this.hi = gic.ctx.hi;
    traceMmio(frame, fv, offset, size, value, this.hi, false);
    this.reenterLocked();
    return value;
  }

  /** store()'s GIC-frame exit while tracing is on. */
  private storeTraced(frame: Frame, size: number, lo: number, hi: number): void {
    const gic = this.gic;
    const fv = gic.resolvedVcpu;
    const offset = gic.resolvedOffset;
    this.exitUnlocked();
    dispatchWrite(frame, gic.ctx, fv < 0 ? this.index : fv, offset, size, lo, hi, false);
    traceMmio(frame, fv, offset, size, lo, hi, true);
    this.reenterLocked();
  }

  private load(addr: number, size: number): number {
    const gic = this.gic;
    this.hi = 0;
    const frame = gic.resolve(addr);
    if (frame === giccFrame) return this.gicc(gic.resolvedOffset, size, false, 0);
    if (frame !== undefined) {
      // One check of the trace switch for the whole exit (the traced twin has the sync and MMIO
      // events): on this path every hook costs a measurable share of an access.
      if (trace.on !== 0) return this.loadTraced(frame, size);
      const fv = gic.resolvedVcpu;
      this.exitQuiet();
      const value = dispatchRead(frame, gic.ctx, fv < 0 ? this.index : fv, gic.resolvedOffset, size, false);
      this.hi = gic.ctx.hi;
      this.reenterLocked();
      return value;
    }
    if (size === 1 || size === 2 || size === 4) {
      const m = gic.memory.read(addr, size);
      if (m !== undefined) return m;
    } else if (size === 8) {
      if (gic.memory.readWords(addr, words64)) {
        this.hi = words64[1];
        return words64[0];
      }
    } else {
      this.s.stats[S_MMIO_BAD_ACCESS]++;
      return 0;
    }
    this.s.stats[S_MMIO_UNMAPPED]++;
    return 0;
  }

  private store(addr: number, size: number, lo: number, hi: number): void {
    const gic = this.gic;
    const frame = gic.resolve(addr);
    if (frame === giccFrame) {
      this.gicc(gic.resolvedOffset, size, true, lo);
      return;
    }
    if (frame !== undefined) {
      if (trace.on !== 0) {
        this.storeTraced(frame, size, lo, hi);
        return;
      }
      const fv = gic.resolvedVcpu;
      this.exitQuiet();
      dispatchWrite(frame, gic.ctx, fv < 0 ? this.index : fv, gic.resolvedOffset, size, lo, hi, false);
      this.reenterLocked();
      return;
    }
    let ok = false;
    if (size === 1 || size === 2 || size === 4) ok = gic.memory.write(addr, size, lo);
    else if (size === 8) ok = gic.memory.writeWords(addr, lo, hi);
    else {
      this.s.stats[S_MMIO_BAD_ACCESS]++;
      return;
    }
    if (!ok) this.s.stats[S_MMIO_UNMAPPED]++;
  }
}
