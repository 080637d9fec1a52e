/**
 * The system-register file of a vCPU as the guest sees it: the GICv3 CPU interface (ICC_* as the
 * virtual interface over the list registers, GIC IHI 0069 §12.2 / §12.7) and the EL1 virtual timer
 * (CNTV_*, CNTVCT_EL0, CNTFRQ_EL0). One function per direction, one case per register.
 * Unknown registers read as zero and ignore writes, counted in stats.sysregUnknown.
 *
 * Who may call: device/vcpu.ts, on the thread running the vCPU.
 */

import { describeValue, VgicError } from '../arch/errors.ts';
import {
  VGIC_PRI_BITS,
  VGIC_PRI_MASK,
  VMCR_CBPR,
  VMCR_ENG0,
  VMCR_ENG1,
  VMCR_EOIM,
  VMCR_PMR_SHIFT,
} from '../arch/ich.ts';
import {
  CNTFRQ_EL0,
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
  CNTV_TVAL_EL0,
  CNTVCT_EL0,
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
  ICC_ASGI1R_EL1,
  ICC_BPR0_EL1,
  ICC_BPR1_EL1,
  ICC_CTLR_CBPR,
  ICC_CTLR_EL1,
  ICC_CTLR_EOIMODE,
  ICC_CTLR_PRIBITS_SHIFT,
  ICC_DIR_EL1,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_HPPIR0_EL1,
  ICC_HPPIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN0_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  ICC_SGI0R_EL1,
  ICC_SGI1R_EL1,
  ICC_SRE_EL1,
  sysregName,
} from '../arch/sysreg.ts';
import { CNTFRQ_HZ, counterHi, counterRead } from '../core/clock.ts';
import { icvDir, icvHppir, readVbpr, runningPriority, writeVbpr } from '../core/icv.ts';
import { readCntvCtl, readCntvTval, writeCntvCtl, writeCntvCval, writeCntvTval } from '../core/timer.ts';
import { S_SYSREG_UNKNOWN, V_AP0R0, V_AP1R0, V_VMCR } from '../state/layout.ts';
import type { VCpu } from './vcpu.ts';

/** @internal What the register file needs of a vCPU (its internal members: not in the .d.ts). */
type SysregCpu = Pick<VCpu, 's' | 'b' | 'index' | 'hi' | 'iar' | 'eoir' | 'sgi' | 'afterDeactivate'>;

/** ICC_CTLR_EL1's read-only fields: PRIbits = 5 bits - 1, IDbits = 16 bits (0), A3V = 0, SEIS = 0. */
const ICC_CTLR_RO = (VGIC_PRI_BITS - 1) << ICC_CTLR_PRIBITS_SHIFT;
/** ICC_SRE_EL1: SRE, DFB, DIB set and fixed (system-register interface only). */
const ICC_SRE_VALUE = 0x7;

/** The CPU-interface registers userspace may save and restore (KVM's vgic_v3_cpu_sysreg_descs). */
export const USER_SYSREGS: readonly number[] = [
  ICC_PMR_EL1,
  ICC_BPR0_EL1,
  ICC_BPR1_EL1,
  ICC_CTLR_EL1,
  ICC_SRE_EL1,
  ICC_IGRPEN0_EL1,
  ICC_IGRPEN1_EL1,
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
];

/** @internal Throws unless `enc` is one of USER_SYSREGS. */
export function checkUserSysreg(enc: number): void {
  if (typeof enc !== 'number' || !USER_SYSREGS.includes(enc)) {
    throw new VgicError(
      'INVALID_REGISTER',
      `${typeof enc === 'number' ? sysregName(enc) : describeValue(enc)} is not a CPU interface register userspace can access; allowed: ${USER_SYSREGS.map(sysregName).join(', ')}`,
    );
  }
}

/** @internal MRS of `enc` on the vCPU (run_lock held). */
export function sysregRead(cpu: SysregCpu, enc: number): number {
  const s = cpu.s;
  const v = cpu.index;
  const b = cpu.b;
  cpu.hi = 0;
  switch (enc) {
    case ICC_IAR1_EL1:
    case ICC_IAR0_EL1:
      return cpu.iar(enc === ICC_IAR1_EL1);
    case ICC_HPPIR1_EL1:
      return icvHppir(s, v, true);
    case ICC_HPPIR0_EL1:
      return icvHppir(s, v, false);
    case ICC_RPR_EL1:
      return runningPriority(s, v);
    case ICC_PMR_EL1:
      return (s.vcpu[b + V_VMCR] >>> VMCR_PMR_SHIFT) & 0xff;
    case ICC_BPR0_EL1:
      return readVbpr(s, v, false);
    case ICC_BPR1_EL1:
      return readVbpr(s, v, true);
    case ICC_CTLR_EL1: {
      const vmcr = s.vcpu[b + V_VMCR];
      return ICC_CTLR_RO | (vmcr & VMCR_CBPR ? ICC_CTLR_CBPR : 0) | (vmcr & VMCR_EOIM ? ICC_CTLR_EOIMODE : 0);
    }
    case ICC_SRE_EL1:
      return ICC_SRE_VALUE;
    case ICC_IGRPEN0_EL1:
      return s.vcpu[b + V_VMCR] & VMCR_ENG0 ? 1 : 0;
    case ICC_IGRPEN1_EL1:
      return s.vcpu[b + V_VMCR] & VMCR_ENG1 ? 1 : 0;
    case ICC_AP0R0_EL1:
      return s.vcpu[b + V_AP0R0] >>> 0;
    case ICC_AP1R0_EL1:
      return s.vcpu[b + V_AP1R0] >>> 0;
    case ICC_AP0R1_EL1:
    case ICC_AP0R2_EL1:
    case ICC_AP0R3_EL1:
    case ICC_AP1R1_EL1:
    case ICC_AP1R2_EL1:
    case ICC_AP1R3_EL1:
      return 0; // 5 priority bits: only APR0 is implemented
    case ICC_EOIR0_EL1:
    case ICC_EOIR1_EL1:
    case ICC_DIR_EL1:
    case ICC_SGI0R_EL1:
    case ICC_SGI1R_EL1:
    case ICC_ASGI1R_EL1:
      return 0; // write-only
    case CNTFRQ_EL0:
      return CNTFRQ_HZ;
    case CNTVCT_EL0: {
      const lo = counterRead(s);
      cpu.hi = counterHi;
      return lo;
    }
    case CNTV_CTL_EL0:
      return readCntvCtl(s, v);
    case CNTV_CVAL_EL0:
      cpu.hi = s.timerCvalWords[2 * v + 1];
      return s.timerCvalWords[2 * v];
    case CNTV_TVAL_EL0:
      return readCntvTval(s, v) >>> 0;
    default:
      s.stats[S_SYSREG_UNKNOWN]++;
      return 0;
  }
}

/** @internal MSR of `enc` on the vCPU (run_lock held). */
export function sysregWrite(cpu: SysregCpu, enc: number, lo: number, hi: number): void {
  const s = cpu.s;
  const v = cpu.index;
  const b = cpu.b;
  switch (enc) {
    case ICC_EOIR1_EL1:
    case ICC_EOIR0_EL1:
      cpu.eoir(enc === ICC_EOIR1_EL1, lo & 0xffffff);
      return;
    case ICC_DIR_EL1:
      cpu.afterDeactivate(icvDir(s, v, lo & 0xffffff), lo & 0xffffff);
      return;
    case ICC_PMR_EL1: {
      const vmcr = s.vcpu[b + V_VMCR] & ~(0xff << VMCR_PMR_SHIFT);
      s.vcpu[b + V_VMCR] = vmcr | ((lo & VGIC_PRI_MASK) << VMCR_PMR_SHIFT);
      return;
    }
    case ICC_BPR0_EL1:
      writeVbpr(s, v, false, lo);
      return;
    case ICC_BPR1_EL1:
      writeVbpr(s, v, true, lo);
      return;
    case ICC_CTLR_EL1: {
      let vmcr = s.vcpu[b + V_VMCR] & ~(VMCR_CBPR | VMCR_EOIM);
      if (lo & ICC_CTLR_CBPR) vmcr |= VMCR_CBPR;
      if (lo & ICC_CTLR_EOIMODE) vmcr |= VMCR_EOIM;
      s.vcpu[b + V_VMCR] = vmcr;
      return;
    }
    case ICC_IGRPEN0_EL1:
      s.vcpu[b + V_VMCR] = lo & 1 ? s.vcpu[b + V_VMCR] | VMCR_ENG0 : s.vcpu[b + V_VMCR] & ~VMCR_ENG0;
      return;
    case ICC_IGRPEN1_EL1:
      s.vcpu[b + V_VMCR] = lo & 1 ? s.vcpu[b + V_VMCR] | VMCR_ENG1 : s.vcpu[b + V_VMCR] & ~VMCR_ENG1;
      return;
    case ICC_AP0R0_EL1:
      s.vcpu[b + V_AP0R0] = lo;
      return;
    case ICC_AP1R0_EL1:
      s.vcpu[b + V_AP1R0] = lo;
      return;
    case ICC_AP0R1_EL1:
    case ICC_AP0R2_EL1:
    case ICC_AP0R3_EL1:
    case ICC_AP1R1_EL1:
    case ICC_AP1R2_EL1:
    case ICC_AP1R3_EL1:
    case ICC_SRE_EL1:
      return; // WI
    case ICC_SGI1R_EL1:
    case ICC_SGI0R_EL1:
    case ICC_ASGI1R_EL1:
      cpu.sgi(lo, hi, enc === ICC_SGI1R_EL1);
      return;
    case CNTV_CTL_EL0:
      writeCntvCtl(s, v, lo);
      return;
    case CNTV_CVAL_EL0:
      writeCntvCval(s, v, lo, hi);
      return;
    case CNTV_TVAL_EL0:
      writeCntvTval(s, v, lo);
      return;
    case ICC_IAR0_EL1:
    case ICC_IAR1_EL1:
    case ICC_HPPIR0_EL1:
    case ICC_HPPIR1_EL1:
    case ICC_RPR_EL1:
    case CNTFRQ_EL0:
    case CNTVCT_EL0:
      return; // read-only
    default:
      s.stats[S_SYSREG_UNKNOWN]++;
  }
}
