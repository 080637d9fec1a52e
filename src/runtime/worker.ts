/**
 * Entry of a runtime worker thread (started by runtime/runtime.ts from the compiled .js): attaches
 * to the shared GIC state and guest RAM, imports the program module, and runs its vCPU and
 * injector programs with the scheduler until they all end; then posts their results.
 *
 * Who may call: only `new Worker(...)` in runtime/runtime.ts.
 */

import { parentPort, threadId, workerData } from 'node:worker_threads';
import { Vgic, type VgicAddressMap } from '../device/vgic.ts';
import {
  C_GO,
  C_STOP,
  C_USER,
  type InjectorProgram,
  type ProgramContext,
  type ProgramResult,
  USER_WORDS,
  type VcpuProgram,
} from './program.ts';
import { runTasks, shareWakeWord, type Task } from './scheduler.ts';

export interface WorkerInit {
  readonly state: SharedArrayBuffer;
  readonly map: VgicAddressMap;
  readonly control: SharedArrayBuffer;
  readonly module: string;
  readonly vcpuProgram?: string;
  readonly injectorProgram?: string;
  readonly vcpus: readonly number[];
  readonly injectors: readonly number[];
  readonly params: unknown;
}

export interface WorkerReport {
  readonly kind: 'vcpu' | 'injector';
  readonly index: number;
  readonly result: ProgramResult;
}

const init = workerData as WorkerInit;
// Node's threadId is unique in the process and never 0 here (the main thread's): + 1 keeps it
// clear of MAIN_OWNER_ID's 1.
const gic = Vgic.attach(init.state, { ...init.map, ownerId: threadId + 1 });
const control = new Int32Array(init.control);
const shared = control.subarray(C_USER, C_USER + USER_WORDS);
const mod = (await import(init.module)) as Record<string, unknown>;

function program<T>(name: string | undefined): T {
  const p = name === undefined ? undefined : mod[name];
  if (typeof p !== 'function') throw new TypeError(`${init.module} has no program export ${String(name)}`);
  return p as T;
}

function context(index: number): ProgramContext {
  return {
    gic,
    index,
    params: init.params,
    shared,
    result: {},
    get stopping() {
      return Atomics.load(control, C_STOP) !== 0;
    },
    get started() {
      return Atomics.load(control, C_GO) !== 0;
    },
  };
}

const cpus = init.vcpus.map((v) => gic.vcpu(v));
const wake = shareWakeWord(gic.state, cpus);
const tasks: Task[] = [];
const reports: { kind: 'vcpu' | 'injector'; index: number; ctx: ProgramContext }[] = [];
if (cpus.length > 0) {
  const vp = program<VcpuProgram>(init.vcpuProgram);
  for (const cpu of cpus) {
    const ctx = context(cpu.index);
    tasks.push({ gen: vp(cpu, ctx), cpu, done: false, waiting: false });
    reports.push({ kind: 'vcpu', index: cpu.index, ctx });
  }
}
if (init.injectors.length > 0) {
  const ip = program<InjectorProgram>(init.injectorProgram);
  for (const d of init.injectors) {
    const ctx = context(d);
    tasks.push({ gen: ip(ctx), cpu: undefined, done: false, waiting: false });
    reports.push({ kind: 'injector', index: d, ctx });
  }
}
runTasks(tasks, gic.state, wake, control);
const out: WorkerReport[] = reports.map((r) => ({ kind: r.kind, index: r.index, result: r.ctx.result }));
parentPort!.postMessage(out);
