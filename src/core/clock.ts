/**
 * The generic timer's system counter as vgic sees it (Arm ARM D11.1): CNTVCT at CNTFRQ ticks/s,
 * a 64-bit count that wraps modulo 2^64 as hardware's does.
 * Real time follows the host's monotonic clock; virtual time moves only when the host (or a WFI
 * waiting for a timer) advances it, which makes runs deterministic.
 * The mode and the values live in the state buffer, so every thread reads the same counter.
 *
 * Representation: virtual time is two uint32 words (CW_LO, CW_HI), so every value up to 2^64 - 1
 * is exact and wrapping is a carry; a float64 would lose ticks beyond 2^53 (a WFI to a CVAL near
 * 2^64 used to leave CNTVCT = 2^64). Real time is computed as a float64 from the epoch, exact while
 * below 2^53 ticks (4.5 years after the epoch; restore refuses an epoch that would break that).
 * Readers that need the exact value use counterRead() (low word returned, high word in
 * counterHi); comparisons against CVAL use counterAtLeast(), which costs two loads in virtual time.
 *
 * Who may call: any thread; no lock (the clock words are written by the host only).
 */

import { C_EPOCH_MS, CW_HI, CW_LO, type GicState, H_FLAGS } from '../state/layout.ts';

/** QEMU virt's and most Arm servers' CNTFRQ_EL0: 62.5 MHz. */
export const CNTFRQ_HZ = 62_500_000;
const TICKS_PER_MS = CNTFRQ_HZ / 1000;
const TWO32 = 0x1_0000_0000;
/** Real time stays exact (below 2^53 ticks) this long after its epoch. */
export const REAL_TIME_SPAN_MS = 2 ** 53 / TICKS_PER_MS;
/** H_FLAGS bit: the counter is virtual (host-advanced). */
export const FLAG_VIRTUAL_TIME = 1 << 0;

export const nowMs = (): number => performance.timeOrigin + performance.now();

export function initClock(s: GicState, virtual: boolean): void {
  if (virtual) s.header[H_FLAGS] |= FLAG_VIRTUAL_TIME;
  else s.header[H_FLAGS] &= ~FLAG_VIRTUAL_TIME;
  s.clock[C_EPOCH_MS] = nowMs();
  s.clockWords[CW_LO] = 0;
  s.clockWords[CW_HI] = 0;
}

export function isVirtualTime(s: GicState): boolean {
  return (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) !== 0;
}

function realTicks(s: GicState): number {
  // The large epoch values are subtracted first: timeOrigin + now() as one epoch-sized double
  // would only resolve about 0.24 µs (15 ticks).
  return Math.floor((performance.timeOrigin - s.clock[C_EPOCH_MS] + performance.now()) * TICKS_PER_MS);
}

/**
 * CNTVCT_EL0 now as a number: exact below 2^53, rounded above (for durations and deadlines only;
 * use counterRead / counterAtLeast where every bit matters).
 */
export function counterNow(s: GicState): number {
  if (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) return s.clockWords[CW_HI] * TWO32 + s.clockWords[CW_LO];
  return realTicks(s);
}

/** High word of the last counterRead() (per thread: module state, no allocation). */
export let counterHi = 0;

/** CNTVCT_EL0 exactly: returns the low 32 bits and leaves the high 32 bits in counterHi. */
export function counterRead(s: GicState): number {
  if (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) {
    counterHi = s.clockWords[CW_HI];
    return s.clockWords[CW_LO];
  }
  const t = realTicks(s);
  counterHi = Math.floor(t / TWO32) >>> 0;
  return t >>> 0;
}

/** CNTVCT >= (hi:lo), as unsigned 64-bit numbers (the timer's condition, Arm ARM D11.2.4). */
export function counterAtLeast(s: GicState, lo: number, hi: number): boolean {
  if (s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) {
    const chi = s.clockWords[CW_HI];
    return chi > hi || (chi === hi && s.clockWords[CW_LO] >= lo);
  }
  // Real time is below 2^53: a CVAL at or above 2^53 rounds to at least 2^53, so this stays exact.
  return realTicks(s) >= hi * TWO32 + lo;
}

/** Moves virtual time forward by `ticks` (an integer in 0..2^53-1), modulo 2^64 (host only). */
export function advanceVirtualTicks(s: GicState, ticks: number): void {
  const lo = s.clockWords[CW_LO] + (ticks % TWO32);
  s.clockWords[CW_HI] = (s.clockWords[CW_HI] + Math.floor(ticks / TWO32) + (lo >= TWO32 ? 1 : 0)) >>> 0;
  s.clockWords[CW_LO] = lo >>> 0;
}

/** Sets virtual time to (hi:lo) exactly (a WFI sleeping until its timer's CVAL). */
export function setVirtualCounter(s: GicState, lo: number, hi: number): void {
  s.clockWords[CW_HI] = hi >>> 0;
  s.clockWords[CW_LO] = lo >>> 0;
}

export function ticksToMs(ticks: number): number {
  return ticks / TICKS_PER_MS;
}
