/**
 * What runs on the runtime's worker threads: *programs*. A vCPU program is the guest code of one
 * vCPU; an injector program is a device (or the VMM) injecting interrupts. Both are generator
 * functions, so that one thread can run many of them: a program yields at the points where a real
 * CPU could be descheduled, and says what it is doing there.
 *
 *   yield YIELD  — it made progress or spins (a guest's cpu_relax): run it again soon
 *   yield WFI    — (vCPU programs) wait for interrupt: resumed after the vCPU has a wake-up event
 *                  and has taken it (its IRQ handler ran)
 *   yield IDLE   — waits for another thread (a barrier, a flag): the thread may sleep briefly
 *
 * Programs live in ES modules that a worker imports by URL (compiled .js) and name by export.
 * Who may call: runtime/worker.ts runs them; program modules (bench/, tests) define them.
 */

import type { VCpu } from '../device/vcpu.ts';
import type { Vgic } from '../device/vgic.ts';

export const YIELD = 0;
export const WFI = 1;
export const IDLE = 2;

export type Yield = typeof YIELD | typeof WFI | typeof IDLE;

/** Numbers a program reports when it ends (summed or listed by the caller). */
export type ProgramResult = Record<string, number>;

export interface ProgramContext {
  /** This thread's handle on the shared GIC. */
  readonly gic: Vgic;
  /** vCPU index (vCPU programs) or injector index (injector programs). */
  readonly index: number;
  /** Parameters given to Runtime.start (structured-cloned). */
  readonly params: unknown;
  /** Words shared by every program and the main thread (USER_WORDS of them), for their own protocol. */
  readonly shared: Int32Array;
  /** True once the main thread asked programs to finish (Runtime.stop). */
  readonly stopping: boolean;
  /** True once the main thread said go (Runtime.go): injectors start then. */
  readonly started: boolean;
  /** Filled by the program; reported when it ends. */
  readonly result: ProgramResult;
}

export type VcpuProgram = (cpu: VCpu, ctx: ProgramContext) => Generator<Yield, void, void>;
export type InjectorProgram = (ctx: ProgramContext) => Generator<Yield, void, void>;

// ---- the control block: one SharedArrayBuffer per runtime ----
export const C_GO = 0; // set by Runtime.go
export const C_STOP = 1; // set by Runtime.stop
export const C_EPOCH = 2; // bumped and notified on every change above: idle threads sleep on it
export const C_USER = 16; // first word of ProgramContext.shared
export const USER_WORDS = 240;
export const CONTROL_WORDS = C_USER + USER_WORDS;

/** Waits (inside a program) until `cond()` holds, yielding IDLE meanwhile. */
export function* until(cond: () => boolean): Generator<Yield, void, void> {
  while (!cond()) yield IDLE;
}
