/**
 * The EL1 virtual timer (Arm ARM D11.2: CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTV_TVAL_EL0) wired to PPI 27
 * as a HW-mapped, level-sensitive interrupt, as KVM's arch_timer.c maps it:
 * the timer's output is the "physical line"; deactivating the virtual interrupt deactivates the
 * physical one, which fires again if the line is still high (re-sampling on deactivation).
 *
 * Who may call: the thread running the vCPU (timer registers are per-PE state, no lock).
 */

import { PPI_VTIMER } from '../arch/intid.ts';
import { CNTV_CTL_ENABLE, CNTV_CTL_IMASK, CNTV_CTL_ISTATUS } from '../arch/sysreg.ts';
import { type GicState, IRQ_LINE_LEVEL, V_TIMER_CTL, V_TIMER_LEVEL, VCPU_STRIDE } from '../state/layout.ts';
import { counterAtLeast, counterHi, counterRead } from './clock.ts';
import { injectIrqSlot, queueIrqUnlock } from './irq.ts';
import { lockIrq } from './locks.ts';

/** The timer's output line: enabled, not masked, and the counter has reached CVAL. */
export function timerLineLevel(s: GicState, v: number): boolean {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL];
  if ((ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) !== CNTV_CTL_ENABLE) return false;
  return counterAtLeast(s, s.timerCvalWords[2 * v], s.timerCvalWords[2 * v + 1]);
}

/** The timer's condition alone (CNTVCT >= CVAL, unsigned 64-bit), whatever CNTV_CTL says. */
export function timerReached(s: GicState, v: number): boolean {
  return counterAtLeast(s, s.timerCvalWords[2 * v], s.timerCvalWords[2 * v + 1]);
}

/** kvm_timer_update_irq: feed a change of the timer's output to the GIC. */
export function timerUpdate(s: GicState, v: number): void {
  const level = timerLineLevel(s, v);
  const i = v * VCPU_STRIDE + V_TIMER_LEVEL;
  if ((s.vcpu[i] !== 0) === level) return;
  s.vcpu[i] = level ? 1 : 0;
  injectIrqSlot(s, s.slotOf(v, PPI_VTIMER), level);
}

/**
 * The guest deactivated the HW-mapped timer interrupt: the physical interrupt is deactivated and
 * fires again at once if the timer still asserts its output.
 */
export function timerPhysDeactivate(s: GicState, v: number): void {
  if (!timerLineLevel(s, v)) return;
  // The physical interrupt fires again: the line is high whatever the GIC last recorded (it may
  // already say high if the timer was re-armed while the interrupt was active), and the vCPU must
  // look again (queueIrqUnlock kicks it even when the interrupt is already on its ap_list).
  const slot = s.slotOf(v, PPI_VTIMER);
  lockIrq(s, slot);
  s.irqFlags[slot] |= IRQ_LINE_LEVEL;
  queueIrqUnlock(s, slot);
}

/** The counter value at which the timer will fire, or Infinity if it is not armed to fire. */
export function timerDeadline(s: GicState, v: number): number {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL];
  if ((ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) !== CNTV_CTL_ENABLE) return Number.POSITIVE_INFINITY;
  return s.timerCval[v];
}

export function readCntvCtl(s: GicState, v: number): number {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL] & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
  const fired = (ctl & CNTV_CTL_ENABLE) !== 0 && timerReached(s, v);
  return fired ? ctl | CNTV_CTL_ISTATUS : ctl;
}

export function writeCntvCtl(s: GicState, v: number, value: number): void {
  s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL] = value & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
  timerUpdate(s, v);
}

function setCval(s: GicState, v: number, lo: number, hi: number): void {
  s.timerCvalWords[2 * v] = lo;
  s.timerCvalWords[2 * v + 1] = hi;
  // Rounded above 2^53: a deadline for sleeping, never the timer's condition (timerReached).
  s.timerCval[v] = (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
}

/** CNTV_CVAL_EL0 as (lo, hi) words, kept exactly. */
export function writeCntvCval(s: GicState, v: number, lo: number, hi: number): void {
  setCval(s, v, lo >>> 0, hi >>> 0);
  timerUpdate(s, v);
}

/** CNTV_TVAL_EL0 reads the low 32 bits of CVAL - CNTVCT, signed (exact from the low words). */
export function readCntvTval(s: GicState, v: number): number {
  return (s.timerCvalWords[2 * v] - counterRead(s)) | 0;
}

/** Writing TVAL sets CVAL = (CNTVCT + SignExtend(TVAL)) mod 2^64. */
export function writeCntvTval(s: GicState, v: number, value: number): void {
  // In words: the low sum is in (-2^31, 2^33), so its carry (or borrow) into the high word is exact.
  const lo = counterRead(s) + (value | 0);
  setCval(s, v, lo >>> 0, (counterHi + Math.floor(lo / 0x1_0000_0000)) >>> 0);
  timerUpdate(s, v);
}
