/**
 * The generic timer's system counter as vgic sees it (Arm ARM D11.1): CNTVCT at CNTFRQ ticks/s.
 * Real time follows the host's monotonic clock; virtual time moves only when the host (or a WFI
 * waiting for a timer) advances it, which makes runs deterministic.
 * The mode and the values live in the state buffer, so every thread reads the same counter.
 *
 * Who may call: any thread; no lock (the clock words are written by the host only).
 */

import { C_EPOCH_MS, C_VIRTUAL_TICKS, type GicState, H_FLAGS } from '../state/layout.ts';

/** QEMU virt's and most Arm servers' CNTFRQ_EL0: 62.5 MHz. */
export const CNTFRQ_HZ = 62_500_000;
const TICKS_PER_MS = CNTFRQ_HZ / 1000;
/** H_FLAGS bit: the counter is virtual (host-advanced). */
export const FLAG_VIRTUAL_TIME = 1 << 0;

const nowMs = (): number => performance.timeOrigin + performance.now();

export function initClock(s: GicState, virtual: boolean): void {
  if (virtual) s.header[H_FLAGS] |= FLAG_VIRTUAL_TIME;
  else s.header[H_FLAGS] &= ~FLAG_VIRTUAL_TIME;
  s.clock[C_EPOCH_MS] = nowMs();
  s.clock[C_VIRTUAL_TICKS] = 0;
}

export function isVirtualTime(s: GicState): boolean {
  return (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) !== 0;
}

/** CNTVCT_EL0 now. A number: exact below 2^53 ticks (about 4.5 years at 62.5 MHz). */
export function counterNow(s: GicState): number {
  if (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) return s.clock[C_VIRTUAL_TICKS];
  // The large epoch values are subtracted first: timeOrigin + now() as one epoch-sized double
  // would only resolve about 0.24 µs (15 ticks).
  return Math.floor((performance.timeOrigin - s.clock[C_EPOCH_MS] + performance.now()) * TICKS_PER_MS);
}

/** Moves virtual time forward by `ticks` (host only). */
export function advanceVirtualTicks(s: GicState, ticks: number): void {
  s.clock[C_VIRTUAL_TICKS] += ticks;
}

export function ticksToMs(ticks: number): number {
  return ticks / TICKS_PER_MS;
}
