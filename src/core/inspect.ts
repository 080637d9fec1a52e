/**
 * What the inspector page plots for vCPUs that run on other threads (issue 16): acknowledgements
 * per vCPU (V_ACKS, a statistic every IAR counts) and the acknowledge latency of MSIs, measured by
 * probes in the state buffer, so the thread that samples them (the inspector's, usually the main
 * thread) needs no trace events from the worker threads where the vCPUs and injectors run.
 *
 * A probe times one interrupt per vCPU at a time, and only while an inspector has switched them
 * on (`inspect[IN_ON]`): an MSI that makes an LPI newly pending claims its target's free probe
 * (compare-exchange), writes the time and the slot; the IAR that returns that LPI on that vCPU
 * writes now − start into the vCPU's ring of latencies and frees the probe. A sample, not a
 * census: MSIs arriving while the probe is busy are not timed. A probe whose LPI was taken before
 * the probe was published, moved or discarded is freed by the sampler after PROBE_STALE_MS
 * (probeSweep). Times are host ms, performance.timeOrigin + performance.now(): comparable across
 * threads.
 *
 * Cost while no inspector samples: one load and branch per IAR and per MSI that sets a pending
 * state (plus the V_ACKS increment per IAR, by the vCPU's own thread).
 *
 * Who may call: core/icv.ts and core/gicv.ts (ackSeen, the vCPU's thread, run_lock held),
 * its/translate.ts (probeMsi, any thread, no lock), device/ (the sampler: probeSwitch, probeRead,
 * probeSweep). Locks: none; the probe word is claimed and freed by compare-exchange.
 */

import {
  type GicState,
  IN_COUNT,
  IN_HEAD,
  IN_ON,
  IN_PROBE,
  IN_RING,
  IN_VCPU_WORDS,
  IT_VCPU_WORDS,
  V_ACKS,
  VCPU_STRIDE,
} from '../state/layout.ts';

/** A probe older than this (host ms) lost its interrupt: the sampler frees it. */
export const PROBE_STALE_MS = 1000;

const now = (): number => performance.timeOrigin + performance.now();

function cas(s: GicState, i: number, from: number, to: number): boolean {
  if (s.shared) return Atomics.compareExchange(s.inspect, i, from, to) === from;
  if (s.inspect[i] !== from) return false;
  s.inspect[i] = to;
  return true;
}

/** An IAR of vCPU v returned `intid` (not 1020..1023). The vCPU's thread. */
export function ackSeen(s: GicState, v: number, intid: number): void {
  s.vcpu[v * VCPU_STRIDE + V_ACKS]++;
  if (s.inspect[IN_ON] !== 0) probeAck(s, v, intid);
}

function probeAck(s: GicState, v: number, intid: number): void {
  const p = IN_HEAD + v * IN_VCPU_WORDS;
  const armed = s.inspect[p + IN_PROBE];
  if (armed <= 0 || s.irqIntid[armed - 1] !== intid) return;
  const t = v * IT_VCPU_WORDS;
  const lat = now() - s.inspectTimes[t];
  if (!cas(s, p + IN_PROBE, armed, -1)) return; // the sampler freed it meanwhile
  const n = s.inspect[p + IN_COUNT];
  s.inspectTimes[t + 1 + (n % IN_RING)] = lat;
  // The count after the value: a sampler that sees the count sees the value.
  if (s.shared) Atomics.store(s.inspect, p + IN_COUNT, n + 1);
  else s.inspect[p + IN_COUNT] = n + 1;
  if (s.shared) Atomics.store(s.inspect, p + IN_PROBE, 0);
  else s.inspect[p + IN_PROBE] = 0;
}

/** An MSI made LPI `slot` newly pending: time it if its target's probe is free. Any thread. */
export function probeMsi(s: GicState, slot: number): void {
  if (s.inspect[IN_ON] === 0) return;
  const v = s.irqTarget[slot];
  if (v < 0 || v >= s.nVcpus) return;
  const p = IN_HEAD + v * IN_VCPU_WORDS + IN_PROBE;
  if (s.inspect[p] !== 0 || !cas(s, p, 0, -1)) return;
  s.inspectTimes[v * IT_VCPU_WORDS] = now();
  if (s.shared) Atomics.store(s.inspect, p, slot + 1);
  else s.inspect[p] = slot + 1;
}

/** Switches the probes on or off (the inspector, at start and close). Any thread. */
export function probeSwitch(s: GicState, on: boolean): void {
  if (s.shared) Atomics.store(s.inspect, IN_ON, on ? 1 : 0);
  else s.inspect[IN_ON] = on ? 1 : 0;
  if (on) return;
  for (let v = 0; v < s.nVcpus; v++)
    cas(s, IN_HEAD + v * IN_VCPU_WORDS + IN_PROBE, s.inspect[IN_HEAD + v * IN_VCPU_WORDS + IN_PROBE], 0);
}

/**
 * The latencies vCPU v wrote since count `since` (at most the ring's last IN_RING), and the count
 * to pass next time. Any thread: a sample (a value being overwritten may be read).
 */
export function probeRead(s: GicState, v: number, since: number): { latencies: number[]; count: number } {
  const count = s.shared
    ? Atomics.load(s.inspect, IN_HEAD + v * IN_VCPU_WORDS + IN_COUNT)
    : s.inspect[IN_HEAD + v * IN_VCPU_WORDS + IN_COUNT];
  const from = Math.max(since, count - IN_RING);
  const latencies: number[] = [];
  for (let n = from; n < count; n++) latencies.push(s.inspectTimes[v * IT_VCPU_WORDS + 1 + (n % IN_RING)]);
  return { latencies, count };
}

/** Frees probes armed more than PROBE_STALE_MS ago (their interrupt was not acknowledged there). */
export function probeSweep(s: GicState): void {
  const t = now();
  for (let v = 0; v < s.nVcpus; v++) {
    const p = IN_HEAD + v * IN_VCPU_WORDS + IN_PROBE;
    const armed = s.inspect[p];
    if (armed > 0 && t - s.inspectTimes[v * IT_VCPU_WORDS] > PROBE_STALE_MS) cas(s, p, armed, 0);
  }
}
