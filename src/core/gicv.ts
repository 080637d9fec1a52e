/**
 * The GICv2 virtual CPU interface (GICV_*, GIC IHI 0048B §5.3-5.4) over a vCPU's GICH_LR list
 * registers: what a GICv2 guest's accesses to its CPU interface frame do in hardware, KVM mapping
 * GICV there. The GICv3 counterpart over ICH_LR<n>_EL2 is icv.ts; both keep the same LR masks
 * (V_LR_PEND, V_LR_ACT, V_LR_GRP0, V_LR_SORTED) and the CPU interface state in ICH_VMCR_EL2 form,
 * whose low bits are GICV_CTLR's (EnableGrp0/1, AckCtl, FIQEn, CBPR, EOImode). GICH_APR (one
 * register for both groups, 5 priority bits) is V_AP1R0.
 *
 * Group 0 interrupts are signalled as IRQs unless GICV_CTLR.FIQEn is set, Group 1 as IRQs (§5.4).
 * GICV_IAR acknowledges Group 0, and Group 1 only with AckCtl (else it reads 1022); GICV_AIAR
 * acknowledges Group 1 only. The SGI source travels in [12:10] of IAR and EOIR.
 *
 * Who may call: the thread running vCPU `v`, while v is in the guest (LRs loaded). No locks.
 */

import {
  GICC_CTLR_ACKCTL,
  GICC_CTLR_FIQEN,
  GICC_INTID_MASK,
  GICH_LR_ACTIVE,
  GICH_LR_CPUID_MASK,
  GICH_LR_EOI,
  GICH_LR_GROUP1,
  GICH_LR_HW,
  GICH_LR_PENDING,
  GICH_LR_PHYSID_CPUID_SHIFT,
  GICH_LR_STATE,
  GICH_LR_VIRTUALID,
  INTID_GRP1_SPURIOUS,
} from '../arch/gicv2.ts';
import {
  HCR_LRENPIE,
  HCR_NPIE,
  HCR_UIE,
  MISR_EOI,
  MISR_LRENP,
  MISR_NP,
  MISR_U,
  PRIO_IDLE,
  VGIC_PRI_BITS,
  VMCR_ENG0,
  VMCR_ENG1,
  VMCR_EOIM,
  VMCR_PMR_SHIFT,
} from '../arch/ich.ts';
import { INTID_SECURE, INTID_SPURIOUS } from '../arch/intid.ts';
import {
  type GicState,
  V_AP1R0,
  V_EOICOUNT,
  V_HCR,
  V_LR_ACT,
  V_LR_EOI,
  V_LR_GRP0,
  V_LR_PEND,
  V_LR_SORTED,
  V_USED_LRS,
  V_VMCR,
  VCPU_STRIDE,
} from '../state/layout.ts';
import {
  gprioMask,
  ICV_DEACTIVATE_PHYS,
  ICV_DEACTIVATE_SW,
  ICV_DONE,
  ICV_IGNORED,
  LINE_NONE,
  LINE_VFIQ,
  LINE_VIRQ,
  runningPriority,
} from './icv.ts';
import { ackSeen } from './inspect.ts';
import { lrV2Priority } from './vgic-v2.ts';

const APR_SHIFT = 8 - VGIC_PRI_BITS;

/** The highest-priority pending LR of an enabled group, or -1 (equal priorities: lowest INTID). */
export function gicvHppiIndex(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const vmcr = s.vcpu[b + V_VMCR];
  const g0 = s.vcpu[b + V_LR_GRP0];
  const cand = s.vcpu[b + V_LR_PEND] & ((vmcr & VMCR_ENG0 ? g0 : 0) | (vmcr & VMCR_ENG1 ? ~g0 : 0));
  if (cand === 0) return -1;
  if (s.vcpu[b + V_LR_SORTED] !== 0) return 31 - Math.clz32(cand & -cand);
  const base = s.lrIndex(v, 0);
  let best = -1;
  let prio = 0xff;
  let bestIntid = 0;
  for (let m = cand; m !== 0; m &= m - 1) {
    const n = 31 - Math.clz32(m & -m);
    const lr = s.lr[base + 2 * n];
    const p = lrV2Priority(lr);
    const intid = lr & GICH_LR_VIRTUALID;
    if (p < prio || (p === prio && intid < bestIntid)) {
      prio = p;
      best = n;
      bestIntid = intid;
    }
  }
  return best;
}

/** Above the priority mask, and preempts the running priority (group priority through the BPRs). */
function canPreempt(s: GicState, v: number, n: number): boolean {
  const lr = s.lr[s.lrIndex(v, n)];
  const prio = lrV2Priority(lr);
  const pmr = (s.vcpu[v * VCPU_STRIDE + V_VMCR] >>> VMCR_PMR_SHIFT) & 0xff;
  if (prio >= pmr) return false;
  const rprio = runningPriority(s, v);
  if (rprio === PRIO_IDLE) return true;
  const mask = gprioMask(s, v, (lr & GICH_LR_GROUP1) !== 0);
  return (prio & mask) < (rprio & mask);
}

/** The interrupt lines to the PE: LINE_VIRQ, LINE_VFIQ (Group 0 with FIQEn) or LINE_NONE. */
export function gicvLine(s: GicState, v: number): number {
  if (s.vcpu[v * VCPU_STRIDE + V_USED_LRS] === 0) return LINE_NONE;
  const n = gicvHppiIndex(s, v);
  if (n < 0 || !canPreempt(s, v, n)) return LINE_NONE;
  if (s.lr[s.lrIndex(v, n)] & GICH_LR_GROUP1) return LINE_VIRQ;
  return s.vcpu[v * VCPU_STRIDE + V_VMCR] & GICC_CTLR_FIQEN ? LINE_VFIQ : LINE_VIRQ;
}

/** The IAR/HPPIR value of an LR: INTID, and an SGI's source CPU in [12:10]. */
const iarValue = (lr: number): number => {
  const intid = lr & GICH_LR_VIRTUALID;
  return intid < 16 ? intid | (lr & GICH_LR_CPUID_MASK) : intid;
};

/**
 * What GICV_IAR (alias false) or GICV_AIAR (alias true) would return for LR n: -1 if it may be
 * acknowledged, else the spurious INTID the register reads.
 */
function refusal(s: GicState, v: number, n: number, alias: boolean): number {
  if (n < 0) return INTID_SPURIOUS;
  const grp1 = (s.lr[s.lrIndex(v, n)] & GICH_LR_GROUP1) !== 0;
  if (alias) return grp1 ? -1 : INTID_SPURIOUS;
  if (grp1 && (s.vcpu[v * VCPU_STRIDE + V_VMCR] & GICC_CTLR_ACKCTL) === 0) return INTID_GRP1_SPURIOUS;
  return -1;
}

/** GICV_IAR / GICV_AIAR: acknowledge the best pending interrupt. */
export function gicvIar(s: GicState, v: number, alias: boolean): number {
  const n = gicvHppiIndex(s, v);
  const no = refusal(s, v, n, alias);
  if (no >= 0) return no;
  if (!canPreempt(s, v, n)) return INTID_SPURIOUS;
  const i = s.lrIndex(v, n);
  const lr = s.lr[i];
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_LR_PEND] &= ~(1 << n);
  s.lr[i] = ((lr & ~GICH_LR_PENDING) | GICH_LR_ACTIVE) >>> 0;
  s.vcpu[b + V_LR_ACT] |= 1 << n;
  const prio = lrV2Priority(lr) & gprioMask(s, v, (lr & GICH_LR_GROUP1) !== 0);
  s.vcpu[b + V_AP1R0] |= 1 << (prio >>> APR_SHIFT);
  ackSeen(s, v, lr & GICH_LR_VIRTUALID);
  return iarValue(lr);
}

/** GICV_HPPIR / GICV_AHPPIR: the best pending interrupt, without acknowledging it. */
export function gicvHppir(s: GicState, v: number, alias: boolean): number {
  const n = gicvHppiIndex(s, v);
  const no = refusal(s, v, n, alias);
  return no >= 0 ? no : iarValue(s.lr[s.lrIndex(v, n)]);
}

/** Priority drop: clear the highest active priority (GICH_APR's lowest set bit). */
function dropPriority(s: GicState, v: number): boolean {
  const i = v * VCPU_STRIDE + V_AP1R0;
  const apr = s.vcpu[i];
  if (apr === 0) return false;
  s.vcpu[i] = apr & (apr - 1);
  return true;
}

/** The active LR holding this INTID (and, for an SGI, this source), or -1. */
function findActive(s: GicState, v: number, value: number): number {
  const intid = value & GICC_INTID_MASK;
  const want = intid < 16 ? intid | (value & GICH_LR_CPUID_MASK) : intid;
  const base = s.lrIndex(v, 0);
  for (let m = s.vcpu[v * VCPU_STRIDE + V_LR_ACT]; m !== 0; m &= m - 1) {
    const n = 31 - Math.clz32(m & -m);
    if (iarValue(s.lr[base + 2 * n]) === want) return n;
  }
  return -1;
}

let physIntid = 0;
/** The physical INTID of the last ICV_DEACTIVATE_PHYS answer. */
export const gicvLastPhysIntid = (): number => physIntid;

function deactivateLr(s: GicState, v: number, n: number): number {
  const i = s.lrIndex(v, n);
  const lr = s.lr[i];
  s.lr[i] = (lr & ~GICH_LR_ACTIVE) >>> 0;
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_LR_ACT] &= ~(1 << n);
  if (lr & GICH_LR_PENDING) {
    s.vcpu[b + V_LR_PEND] |= 1 << n;
    s.vcpu[b + V_LR_SORTED] = 0;
  }
  if (lr & GICH_LR_HW) {
    physIntid = (lr >>> GICH_LR_PHYSID_CPUID_SHIFT) & 0x3ff;
    return ICV_DEACTIVATE_PHYS;
  }
  return ICV_DONE;
}

/** An INTID field naming a special INTID (1020-1023) or none at all (beyond 1023 cannot be written). */
const special = (value: number): boolean => (value & GICC_INTID_MASK) >= INTID_SECURE;

/** GICV_EOIR / GICV_AEOIR: priority drop, and deactivation unless EOImode. */
export function gicvEoir(s: GicState, v: number, value: number): number {
  if (special(value)) return ICV_IGNORED;
  if (!dropPriority(s, v)) return ICV_IGNORED;
  const b = v * VCPU_STRIDE;
  const eoimode = (s.vcpu[b + V_VMCR] & VMCR_EOIM) !== 0;
  const n = findActive(s, v, value);
  if (n < 0) {
    s.vcpu[b + V_EOICOUNT] = (s.vcpu[b + V_EOICOUNT] + 1) & 31;
    return eoimode ? ICV_DONE : ICV_DEACTIVATE_SW;
  }
  return eoimode ? ICV_DONE : deactivateLr(s, v, n);
}

/** GICV_DIR: deactivation with EOImode = 1 (UNPREDICTABLE otherwise: ignored). */
export function gicvDir(s: GicState, v: number, value: number): number {
  if (special(value)) return ICV_IGNORED;
  const b = v * VCPU_STRIDE;
  if ((s.vcpu[b + V_VMCR] & VMCR_EOIM) === 0) return ICV_IGNORED;
  const n = findActive(s, v, value);
  if (n < 0) {
    s.vcpu[b + V_EOICOUNT] = (s.vcpu[b + V_EOICOUNT] + 1) & 31;
    return ICV_DEACTIVATE_SW;
  }
  return deactivateLr(s, v, n);
}

/** GICH_MISR (§5.3.5): the maintenance conditions that hold (the same bits as ICH_MISR_EL2). */
export function gicvMaintenance(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const hcr = s.vcpu[b + V_HCR];
  const used = s.vcpu[b + V_USED_LRS];
  if (used === 0 || (hcr === 0 && s.vcpu[b + V_LR_EOI] === 0)) return 0;
  const base = s.lrIndex(v, 0);
  let valid = 0;
  let pending = 0;
  let misr = 0;
  for (let n = 0; n < used; n++) {
    const lr = s.lr[base + 2 * n];
    if (lr & GICH_LR_STATE) {
      valid++;
      if (lr & GICH_LR_PENDING) pending++;
    } else if ((lr & (GICH_LR_HW | GICH_LR_EOI)) === GICH_LR_EOI) {
      misr |= MISR_EOI;
    }
  }
  if (hcr & HCR_UIE && valid <= 1) misr |= MISR_U;
  if (hcr & HCR_NPIE && pending === 0) misr |= MISR_NP;
  if (hcr & HCR_LRENPIE && s.vcpu[b + V_EOICOUNT] !== 0) misr |= MISR_LRENP;
  return misr;
}
