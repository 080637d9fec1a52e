/**
 * The EL1 physical timer (Arm ARM D11.2: CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0) of vgic's
 * machine, whose output drives PPI 30 as on QEMU virt. vgic itself models the virtual timer (the
 * one KVM gives guests, core/timer.ts); QEMU's own timers never fire inside Unicorn, so the
 * machine keeps this one. CNTPCT_EL0 reads vgic's counter (CNTVOFF is 0).
 *
 * Who may call: the machine, on its thread.
 */

import type { Vgic } from '../device/vgic.ts';

export const PPI_PTIMER = 30;
export const CNTPCT_EL0 = (3 << 14) | (3 << 11) | (14 << 7) | (0 << 3) | 1;
export const CNTP_TVAL_EL0 = (3 << 14) | (3 << 11) | (14 << 7) | (2 << 3) | 0;
export const CNTP_CTL_EL0 = (3 << 14) | (3 << 11) | (14 << 7) | (2 << 3) | 1;
export const CNTP_CVAL_EL0 = (3 << 14) | (3 << 11) | (14 << 7) | (2 << 3) | 2;

const CTL_ENABLE = 1;
const CTL_IMASK = 2;
const CTL_ISTATUS = 4;

export class PhysTimer {
  private readonly ctl: Uint8Array;
  private readonly cval: Float64Array;
  private readonly level: Uint8Array;

  private readonly gic: Vgic;

  constructor(gic: Vgic, vcpus: number) {
    this.gic = gic;
    this.ctl = new Uint8Array(vcpus);
    this.cval = new Float64Array(vcpus);
    this.level = new Uint8Array(vcpus);
  }

  /** Reads one of the registers above: the value's low and high words. */
  read(cpu: number, enc: number, out: Uint32Array, lo: number): void {
    const now = this.gic.counter();
    let v = 0;
    if (enc === CNTPCT_EL0) v = now;
    else if (enc === CNTP_CVAL_EL0) v = this.cval[cpu];
    else if (enc === CNTP_CTL_EL0) v = this.ctl[cpu] | (now >= this.cval[cpu] ? CTL_ISTATUS : 0);
    else if (enc === CNTP_TVAL_EL0) {
      // TVAL is the signed 32-bit distance to CVAL.
      out[lo] = (this.cval[cpu] - now) | 0;
      out[lo + 1] = 0;
      return;
    }
    out[lo] = v >>> 0;
    out[lo + 1] = Math.floor(v / 2 ** 32) >>> 0;
  }

  write(cpu: number, enc: number, lo: number, hi: number): void {
    if (enc === CNTP_CTL_EL0) this.ctl[cpu] = lo & (CTL_ENABLE | CTL_IMASK);
    else if (enc === CNTP_CVAL_EL0) this.cval[cpu] = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    else if (enc === CNTP_TVAL_EL0) this.cval[cpu] = this.gic.counter() + (lo | 0);
    this.update(cpu);
  }

  /** Recomputes the timer's output and drives PPI 30 when it changes. */
  update(cpu: number): void {
    const c = this.ctl[cpu];
    const fire = (c & (CTL_ENABLE | CTL_IMASK)) === CTL_ENABLE && this.gic.counter() >= this.cval[cpu];
    const level = fire ? 1 : 0;
    if (level !== this.level[cpu]) {
      this.level[cpu] = level;
      this.gic.ppiLine(cpu, PPI_PTIMER, fire);
    }
  }

  /** Counter ticks until this CPU's timer fires (Infinity when disarmed or already firing). */
  ticksToFire(cpu: number): number {
    if ((this.ctl[cpu] & (CTL_ENABLE | CTL_IMASK)) !== CTL_ENABLE || this.level[cpu] === 1) return Infinity;
    return Math.max(0, this.cval[cpu] - this.gic.counter());
  }
}
