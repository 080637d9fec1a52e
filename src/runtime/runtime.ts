/**
 * The threaded runtime: vCPUs and injectors on worker threads over one shared GIC state.
 *
 *   main thread                 vCPU threads (T)                 injector threads (I)
 *   Runtime.start ──────────▶   vCPU v runs on thread v mod T    injector d on thread d mod I
 *   Runtime.go    ── C_GO ──▶   (guest code: programs)           start injecting
 *   injectorsDone ◀─ message ─────────────────────────────────   done
 *   Runtime.stop  ── C_STOP ─▶  programs end, LRs fold back ──▶  results
 *
 * Every thread attaches to the same SharedArrayBuffer (Vgic.attach) and guest RAM, so an MSI from
 * an injector thread reaches a vCPU thread through the ap_list and a kick, as in KVM. Threads
 * default to the available cores. A worker that dies has its vCPUs' run_locks cleared, so the host
 * API never waits for a thread that is gone.
 *
 * Who may call: the host (CLI, benchmarks, tests), from the main thread.
 */

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkInt, VgicError } from '../arch/errors.ts';
import { kickVcpu } from '../core/irq.ts';
import type { Vgic } from '../device/vgic.ts';
import { V_RUN_LOCK, V_SLEEPING, VCPU_STRIDE } from '../state/layout.ts';
import { C_EPOCH, C_GO, C_STOP, C_USER, CONTROL_WORDS, USER_WORDS } from './program.ts';
import type { WorkerInit, WorkerReport } from './worker.ts';

export type { WorkerReport as ProgramReport } from './worker.ts';

export interface RuntimeOptions {
  /** A GIC created with shared: true (the default). */
  readonly gic: Vgic;
  /** URL of the compiled program module (e.g. new URL('./programs.js', import.meta.url)). */
  readonly module: string | URL;
  /** Export name of the vCPU program (every vCPU of `vcpus` runs it). */
  readonly vcpuProgram?: string;
  /** vCPUs to run (default: all, when vcpuProgram is given). */
  readonly vcpus?: readonly number[];
  readonly vcpuThreads?: number;
  readonly injectorProgram?: string;
  readonly injectors?: number;
  readonly injectorThreads?: number;
  /** Given to every program (structured-cloned). */
  readonly params?: unknown;
}

interface Thread {
  readonly worker: Worker;
  readonly vcpus: readonly number[];
  readonly injectors: readonly number[];
  readonly done: Promise<WorkerReport[]>;
}

export class Runtime {
  readonly gic: Vgic;
  /** The programs' shared words (ProgramContext.shared), seen from the main thread. */
  readonly shared: Int32Array;
  private readonly control: Int32Array;
  private readonly threads: Thread[];
  private failure: Error | undefined;

  private constructor(gic: Vgic, control: Int32Array, threads: Thread[]) {
    this.gic = gic;
    this.control = control;
    this.shared = control.subarray(C_USER, C_USER + USER_WORDS);
    this.threads = threads;
  }

  /** Default thread count: the available cores. */
  static defaultThreads(): number {
    return Math.max(1, os.availableParallelism());
  }

  static start(o: RuntimeOptions): Runtime {
    const gic = o.gic;
    const s = gic.state;
    if (!s.shared) {
      throw new VgicError(
        'INVALID_CONFIG',
        'a runtime needs a GIC created with shared: true (its state is shared by threads)',
      );
    }
    const cores = Runtime.defaultThreads();
    const vcpus =
      o.vcpuProgram === undefined ? [] : [...(o.vcpus ?? Array.from({ length: s.nVcpus }, (_, v) => v))];
    for (const v of vcpus) checkInt('INVALID_VCPU', 'vCPU', v, 0, s.nVcpus - 1);
    if (new Set(vcpus).size !== vcpus.length) throw new VgicError('INVALID_VCPU', 'a vCPU is listed twice');
    const nInj =
      o.injectorProgram === undefined
        ? 0
        : checkInt('INVALID_ARGUMENT', 'injectors', o.injectors ?? 1, 0, 4096);
    const vt = checkInt('INVALID_ARGUMENT', 'vcpuThreads', o.vcpuThreads ?? cores, 1, 256);
    const it = checkInt('INVALID_ARGUMENT', 'injectorThreads', o.injectorThreads ?? cores, 1, 256);
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
    const map = gic.addressMap();
    for (const r of map.ram ?? []) {
      if (!(r.buffer instanceof SharedArrayBuffer)) {
        throw new VgicError(
          'INVALID_CONFIG',
          `RAM at ${r.base.toString(16)} is not a SharedArrayBuffer: threads cannot share it`,
        );
      }
    }
    const module = String(o.module);
    const plan: { vcpus: number[]; injectors: number[] }[] = [];
    const nv = Math.min(vt, vcpus.length);
    for (let t = 0; t < nv; t++) plan.push({ vcpus: vcpus.filter((_, i) => i % nv === t), injectors: [] });
    const ni = Math.min(it, nInj);
    for (let t = 0; t < ni; t++) {
      plan.push({
        vcpus: [],
        injectors: Array.from({ length: nInj }, (_, d) => d).filter((d) => d % ni === t),
      });
    }
    const threads = plan.map((p) => {
      const init: WorkerInit = {
        state: s.buffer as SharedArrayBuffer,
        map,
        control: control.buffer as SharedArrayBuffer,
        module,
        vcpuProgram: o.vcpuProgram,
        injectorProgram: o.injectorProgram,
        vcpus: p.vcpus,
        injectors: p.injectors,
        params: o.params,
      };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
      const done = new Promise<WorkerReport[]>((resolve, reject) => {
        let reported: WorkerReport[] | undefined;
        worker.once('message', (m: WorkerReport[]) => {
          reported = m;
        });
        worker.once('error', (e) => reject(e));
        worker.once('exit', (code) => {
          if (reported !== undefined) resolve(reported);
          else {
            // Whatever it held is nobody's now: no host call may wait for it.
            for (const v of p.vcpus) {
              Atomics.store(s.vcpu, v * VCPU_STRIDE + V_RUN_LOCK, 0);
              Atomics.store(s.vcpu, v * VCPU_STRIDE + V_SLEEPING, 0);
            }
            reject(new Error(`runtime worker exited with code ${code} before reporting`));
          }
        });
      });
      return { worker, vcpus: p.vcpus, injectors: p.injectors, done };
    });
    const rt = new Runtime(gic, control, threads);
    for (const t of threads) {
      t.done.catch((e: Error) => {
        rt.failure ??= e;
        rt.signal(C_STOP);
      });
    }
    return rt;
  }

  private signal(word: number): void {
    Atomics.store(this.control, word, 1);
    Atomics.add(this.control, C_EPOCH, 1);
    Atomics.notify(this.control, C_EPOCH);
  }

  /** Lets injectors start (ProgramContext.started). */
  go(): void {
    this.signal(C_GO);
  }

  /** Resolves true once shared[word] ≥ value, false after timeoutMs (without blocking the event loop). */
  async waitShared(word: number, value: number, timeoutMs: number): Promise<boolean> {
    checkInt('INVALID_ARGUMENT', 'shared word', word, 0, USER_WORDS - 1);
    const end = performance.now() + timeoutMs;
    for (;;) {
      if (Atomics.load(this.shared, word) >= value) return true;
      if (this.failure !== undefined) throw this.failure;
      const left = end - performance.now();
      if (left <= 0) return false;
      await new Promise((r) => setTimeout(r, Math.min(left, 2)));
    }
  }

  /** The injectors' reports, once every injector thread has ended. */
  async injectorsDone(): Promise<WorkerReport[]> {
    const mine = this.threads.filter((t) => t.injectors.length > 0).map((t) => t.done);
    return (await Promise.all(mine)).flat();
  }

  /**
   * Asks every program to end, wakes vCPUs in WFI, and waits for all threads (at most timeoutMs,
   * then they are terminated and this throws). Returns every program's report.
   */
  async stop(timeoutMs = 30000): Promise<WorkerReport[]> {
    this.signal(C_STOP);
    const s = this.gic.state;
    for (let v = 0; v < s.nVcpus; v++) kickVcpu(s, v);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VgicError('INVALID_ARGUMENT', `runtime did not stop within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return (await Promise.race([Promise.all(this.threads.map((t) => t.done)), timeout])).flat();
    } catch (e) {
      await Promise.all(this.threads.map((t) => t.worker.terminate()));
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}
