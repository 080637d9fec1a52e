/**
 * The loop of one runtime thread: round-robin over its programs (runtime/program.ts). vCPUs that
 * wait for interrupts and programs that wait for other threads cost nothing: when no program on
 * the thread can make progress, the thread sleeps in Atomics.wait on one futex word, which kicks to
 * any of its vCPUs bump (V_WAKE_AT points every vCPU of the thread at the same word), for at most
 * the nearest timer deadline and never more than IDLE_SLEEP_MS (control changes and other threads'
 * flags are seen within that). Never an unbounded spin: a program that spins is the guest's choice,
 * and it ends when the runtime stops.
 *
 * Who may call: runtime/worker.ts (one scheduler per thread).
 */

import type { VCpu } from '../device/vcpu.ts';
import { type GicState, V_SLEEPING, V_WAKE, V_WAKE_AT, VCPU_STRIDE } from '../state/layout.ts';
import { C_EPOCH, C_STOP, IDLE, WFI, type Yield } from './program.ts';

const IDLE_SLEEP_MS = 1;
/** Rounds of nothing-but-IDLE before sleeping: a flag set by another thread is usually seen spinning. */
const IDLE_SPINS = 64;

export interface Task {
  readonly gen: Generator<Yield, void, void>;
  /** The vCPU a vCPU program runs (undefined for injectors). */
  readonly cpu: VCpu | undefined;
  done: boolean;
  waiting: boolean; // in WFI
}

/** Points every vCPU of `tasks` at the first one's V_WAKE: one futex word per thread. */
export function shareWakeWord(s: GicState, cpus: readonly VCpu[]): number {
  if (cpus.length === 0) return -1;
  const w = cpus[0].index * VCPU_STRIDE + V_WAKE;
  for (const c of cpus) s.vcpu[c.index * VCPU_STRIDE + V_WAKE_AT] = w;
  return w;
}

export function runTasks(tasks: Task[], s: GicState, wakeWord: number, control: Int32Array): void {
  let live = tasks.length;
  let idleRounds = 0;
  while (live > 0) {
    let progress = false;
    for (let j = 0; j < tasks.length; j++) {
      const t = tasks[j];
      if (t.done) continue;
      const cpu = t.cpu;
      if (t.waiting) {
        // A stopping runtime ends WFIs too (a spurious wake-up is architecturally allowed).
        if (!cpu!.wfiPoll() && Atomics.load(control, C_STOP) === 0) continue;
        t.waiting = false;
        cpu!.step(); // the wake-up: an unmasked IRQ is taken here
      }
      const r = t.gen.next();
      if (r.done) {
        t.done = true;
        live--;
        // A finished vCPU leaves the guest: its LRs are folded back for whoever looks next.
        cpu?.exit();
        progress = true;
        continue;
      }
      if (r.value === WFI && cpu !== undefined) t.waiting = true;
      else if (r.value !== IDLE) progress = true;
    }
    if (progress) {
      idleRounds = 0;
      continue;
    }
    if (++idleRounds < IDLE_SPINS) continue;
    idleRounds = 0;
    sleep(tasks, s, wakeWord, control);
  }
}

/** Nothing can progress: sleep until a kick, a control change, the nearest timer, or 1 ms. */
function sleep(tasks: Task[], s: GicState, wakeWord: number, control: Int32Array): void {
  let ms = IDLE_SLEEP_MS;
  if (wakeWord < 0) {
    Atomics.wait(control, C_EPOCH, Atomics.load(control, C_EPOCH), ms);
    return;
  }
  const seen = Atomics.load(s.vcpu, wakeWord);
  for (const t of tasks) {
    if (t.done || !t.waiting) continue;
    const b = t.cpu!.index * VCPU_STRIDE;
    Atomics.store(s.vcpu, b + V_SLEEPING, 1);
    ms = Math.min(ms, t.cpu!.wfiSleepMs());
  }
  // Re-check after raising V_SLEEPING: a kick before it has already queued the work we look for.
  let ready = false;
  for (const t of tasks) if (!t.done && t.waiting && t.cpu!.wfiPoll()) ready = true;
  if (!ready && ms > 0) Atomics.wait(s.vcpu, wakeWord, seen, ms);
  for (const t of tasks) {
    if (!t.done && t.waiting) Atomics.store(s.vcpu, t.cpu!.index * VCPU_STRIDE + V_SLEEPING, 0);
  }
}
