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
import { type GicState, V_TIMER_CTL, V_TIMER_LEVEL, VCPU_STRIDE } from '../state/layout.ts';
import { counterNow } from './clock.ts';
import { injectIrqSlot } from './irq.ts';

/** The timer's output line: enabled, not masked, and the counter has reached CVAL. */
export function timerLineLevel(s: GicState, v: number): boolean {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL];
  if ((ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) !== CNTV_CTL_ENABLE) return false;
  return counterNow(s) >= s.timerCval[v];
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
  if (timerLineLevel(s, v)) injectIrqSlot(s, s.slotOf(v, PPI_VTIMER), true);
}

/** The counter value at which the timer will fire, or Infinity if it is not armed to fire. */
export function timerDeadline(s: GicState, v: number): number {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL];
  if ((ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) !== CNTV_CTL_ENABLE) return Number.POSITIVE_INFINITY;
  return s.timerCval[v];
}

export function readCntvCtl(s: GicState, v: number): number {
  const ctl = s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL] & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
  const fired = (ctl & CNTV_CTL_ENABLE) !== 0 && counterNow(s) >= s.timerCval[v];
  return fired ? ctl | CNTV_CTL_ISTATUS : ctl;
}

export function writeCntvCtl(s: GicState, v: number, value: number): void {
  s.vcpu[v * VCPU_STRIDE + V_TIMER_CTL] = value & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
  timerUpdate(s, v);
}

/** CNTV_CVAL_EL0 as (lo, hi) words; values at or above 2^53 saturate (unreachable by the counter). */
export function writeCntvCval(s: GicState, v: number, lo: number, hi: number): void {
  const val = (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
  s.timerCval[v] = Math.min(val, Number.MAX_SAFE_INTEGER);
  timerUpdate(s, v);
}

/** CNTV_TVAL_EL0 reads CVAL - CNTVCT as a signed 32-bit value. */
export function readCntvTval(s: GicState, v: number): number {
  return (s.timerCval[v] - counterNow(s)) | 0;
}

/** Writing TVAL sets CVAL = CNTVCT + SignExtend(TVAL). */
export function writeCntvTval(s: GicState, v: number, value: number): void {
  s.timerCval[v] = Math.max(0, counterNow(s) + (value | 0));
  timerUpdate(s, v);
}
