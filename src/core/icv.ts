/**
 * The virtual CPU interface (ICV_* registers, GIC IHI 0069 §12.7) over a vCPU's list registers:
 * what the hardware does when a guest with ICH_HCR_EL2.En accesses ICC_* at EL1. vgic is that
 * hardware, so this file follows the architecture's pseudocode (HighestPriorityVirtualInterrupt,
 * CanSignalVirtualInterrupt, VPriorityGroup, ...) as QEMU's arm_gicv3_cpuif.c does.
 *
 * Group priority uses ICH_VMCR_EL2.VBPR0/1 (VCBPR shares BPR0). Active priorities live in
 * ICH_AP0R0/ICH_AP1R0 (5 priority bits: 32 levels, one register each).
 *
 * Who may call: the thread running vCPU `v`, while v is in the guest (LRs loaded). No locks.
 */

import {
  HCR_LRENPIE,
  HCR_NPIE,
  HCR_UIE,
  LR_HI_ACTIVE,
  LR_HI_EOI,
  LR_HI_GROUP,
  LR_HI_HW,
  LR_HI_PENDING,
  LR_HI_PINTID_MASK,
  LR_HI_PRIORITY_SHIFT,
  LR_HI_STATE,
  MISR_EOI,
  MISR_LRENP,
  MISR_NP,
  MISR_U,
  PRIO_IDLE,
  VGIC_MIN_BPR0,
  VGIC_PRI_BITS,
  VMCR_BPR_MASK,
  VMCR_BPR0_SHIFT,
  VMCR_BPR1_SHIFT,
  VMCR_CBPR,
  VMCR_ENG0,
  VMCR_ENG1,
  VMCR_EOIM,
  VMCR_PMR_SHIFT,
} from '../arch/ich.ts';
import { INTID_SECURE, INTID_SPURIOUS, VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  type GicState,
  V_AP0R0,
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
import { ackSeen } from './inspect.ts';
import {
  directBest,
  vpeAck,
  vpeBestGroup1,
  vpeBestPriority,
  vpeOn,
  vpeResidentPending,
  vpeTakeVsgi,
  vsgiMode,
} from './vpe.ts';

/** Shift from a priority value to its APR bit: 8 - PREbits. */
const APR_SHIFT = 8 - VGIC_PRI_BITS;

export const lrPriority = (hi: number): number => (hi >>> LR_HI_PRIORITY_SHIFT) & 0xff;

/** ICV_BPR0/1 as the guest reads them (VCBPR makes BPR1 read BPR0 + 1, saturating at 7). */
export function readVbpr(s: GicState, v: number, grp1: boolean): number {
  const vmcr = s.vcpu[v * VCPU_STRIDE + V_VMCR];
  if (!grp1) return (vmcr >>> VMCR_BPR0_SHIFT) & VMCR_BPR_MASK;
  if (vmcr & VMCR_CBPR) return Math.min(((vmcr >>> VMCR_BPR0_SHIFT) & VMCR_BPR_MASK) + 1, 7);
  return (vmcr >>> VMCR_BPR1_SHIFT) & VMCR_BPR_MASK;
}

/** Writes VBPR0/1; values below the minimum become the minimum. With VCBPR, BPR1 writes are ignored. */
export function writeVbpr(s: GicState, v: number, grp1: boolean, value: number): void {
  const i = v * VCPU_STRIDE + V_VMCR;
  const vmcr = s.vcpu[i];
  if (grp1 && vmcr & VMCR_CBPR) return;
  const min = grp1 ? VGIC_MIN_BPR0 + 1 : VGIC_MIN_BPR0;
  const bpr = Math.max(value & VMCR_BPR_MASK, min);
  const shift = grp1 ? VMCR_BPR1_SHIFT : VMCR_BPR0_SHIFT;
  s.vcpu[i] = (vmcr & ~(VMCR_BPR_MASK << shift)) | (bpr << shift);
}

/** VPriorityGroup: the mask keeping the group-priority bits of a priority for a group. */
export function gprioMask(s: GicState, v: number, grp1: boolean): number {
  const vmcr = s.vcpu[v * VCPU_STRIDE + V_VMCR];
  let bpr: number;
  if (grp1 && (vmcr & VMCR_CBPR) === 0) bpr = ((vmcr >>> VMCR_BPR1_SHIFT) & VMCR_BPR_MASK) - 1;
  else bpr = (vmcr >>> VMCR_BPR0_SHIFT) & VMCR_BPR_MASK;
  return (0xff << (bpr + 1)) & 0xff;
}

/** The running priority: the highest active priority in the APRs, or 0xff when idle (ICV_RPR_EL1). */
export function runningPriority(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const apr = s.vcpu[b + V_AP0R0] | s.vcpu[b + V_AP1R0];
  if (apr === 0) return PRIO_IDLE;
  return (31 - Math.clz32(apr & -apr)) << APR_SHIFT;
}

/**
 * HighestPriorityVirtualInterrupt: index of the best pending LR of an enabled group, or -1.
 * Only Pending LRs of enabled groups are candidates (V_LR_PEND, V_LR_GRP0); when flush left them
 * in priority order the lowest one is the answer (ties go to the lowest LR, as a scan finds).
 */
export function hppviIndex(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const vmcr = s.vcpu[b + V_VMCR];
  const g0 = s.vcpu[b + V_LR_GRP0];
  const cand = s.vcpu[b + V_LR_PEND] & ((vmcr & VMCR_ENG0 ? g0 : 0) | (vmcr & VMCR_ENG1 ? ~g0 : 0));
  if (cand === 0) return -1;
  if (s.vcpu[b + V_LR_SORTED] !== 0) return 31 - Math.clz32(cand & -cand);
  const base = s.lrIndex(v, 0);
  let best = -1;
  let prio = 0xff; // a priority of 0xff is never signalled (architecturally correct)
  // Equal priorities go to the lowest INTID, as QEMU's GICv3 and the GIC-500/600 choose:
  // deterministic, whatever order the interrupts were queued in.
  let bestIntid = 0;
  for (let m = cand; m !== 0; m &= m - 1) {
    const n = 31 - Math.clz32(m & -m);
    const p = lrPriority(s.lr[base + 2 * n + 1]);
    const intid = s.lr[base + 2 * n];
    if (p < prio || (p === prio && intid < bestIntid)) {
      prio = p;
      best = n;
      bestIntid = intid;
    }
  }
  return best;
}

/** CanSignalVirtualInterrupt for LR n: above the priority mask, and preempts the running priority. */
function canPreempt(s: GicState, v: number, n: number): boolean {
  const hi = s.lr[s.lrIndex(v, n) + 1];
  return canPreemptPrio(s, v, lrPriority(hi), (hi & LR_HI_GROUP) !== 0);
}

function canPreemptPrio(s: GicState, v: number, prio: number, grp1: boolean): boolean {
  const vpmr = (s.vcpu[v * VCPU_STRIDE + V_VMCR] >>> VMCR_PMR_SHIFT) & 0xff;
  if (prio >= vpmr) return false;
  const rprio = runningPriority(s, v);
  if (rprio === PRIO_IDLE) return true;
  const mask = gprioMask(s, v, grp1);
  return (prio & mask) < (rprio & mask);
}

/**
 * Direct injection (core/vpe.ts): the best pending vSGI or vLPI of v's resident vPE if it beats LR
 * n (the LRs' best, or -1) — a lower priority value, or equal and a lower INTID — else -1. Its
 * priority and group: vpeBestPriority(), vpeBestGroup1(). The caller checked vpeResidentPending().
 */
function directWins(s: GicState, v: number, n: number): number {
  if (n < 0) return directBest(s, v, 0x100);
  const i = s.lrIndex(v, n);
  const lp = lrPriority(s.lr[i + 1]);
  const intid = directBest(s, v, lp + 1);
  if (intid < 0) return -1;
  return vpeBestPriority() < lp || intid < s.lr[i] ? intid : -1;
}

/** Values of virqLine(): what the virtual CPU interface signals to the PE. */
export const LINE_NONE = 0;
export const LINE_VIRQ = 1;
export const LINE_VFIQ = 2;

/**
 * The vIRQ/vFIQ lines: the highest-priority pending LR, if it can preempt, is signalled as vIRQ
 * when it is Group 1 and as vFIQ when it is Group 0 (with the system-register interface
 * ICH_VMCR_EL2.VFIQEn is RES1: Group 0 virtual interrupts are always FIQs).
 */
export function virqLine(s: GicState, v: number): number {
  if (s.direct && vpeResidentPending(s, v)) {
    const n = s.vcpu[v * VCPU_STRIDE + V_USED_LRS] === 0 ? -1 : hppviIndex(s, v);
    if (directWins(s, v, n) >= 0) {
      const grp1 = vpeBestGroup1();
      if (!canPreemptPrio(s, v, vpeBestPriority(), grp1)) return LINE_NONE;
      return grp1 ? LINE_VIRQ : LINE_VFIQ;
    }
  }
  if (s.vcpu[v * VCPU_STRIDE + V_USED_LRS] === 0) return LINE_NONE;
  const n = hppviIndex(s, v);
  if (n < 0 || !canPreempt(s, v, n)) return LINE_NONE;
  return s.lr[s.lrIndex(v, n) + 1] & LR_HI_GROUP ? LINE_VIRQ : LINE_VFIQ;
}

/** ICV_IAR0/1_EL1: acknowledge the best pending interrupt of this group, or read 1023. */
export function icvIar(s: GicState, v: number, grp1: boolean): number {
  const n = hppviIndex(s, v);
  if (s.direct && vpeResidentPending(s, v)) {
    const vintid = directWins(s, v, n);
    if (vintid >= 0) return iarDirect(s, v, grp1, vintid);
  }
  if (n < 0) return INTID_SPURIOUS;
  const i = s.lrIndex(v, n);
  const hi = s.lr[i + 1];
  if (((hi & LR_HI_GROUP) !== 0) !== grp1 || !canPreempt(s, v, n)) return INTID_SPURIOUS;
  const intid = s.lr[i];
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_LR_PEND] &= ~(1 << n);
  if (intid >= INTID_SECURE && intid <= INTID_SPURIOUS) {
    s.lr[i + 1] = hi & ~LR_HI_PENDING; // special INTIDs go from pending to invalid
    return intid;
  }
  const prio = lrPriority(hi) & gprioMask(s, v, grp1);
  s.lr[i + 1] = ((hi & ~LR_HI_PENDING) | LR_HI_ACTIVE) >>> 0;
  s.vcpu[b + V_LR_ACT] |= 1 << n;
  s.vcpu[v * VCPU_STRIDE + (grp1 ? V_AP1R0 : V_AP0R0)] |= 1 << (prio >>> APR_SHIFT);
  ackSeen(s, v, intid);
  return intid;
}

/**
 * ICV_IAR0/1 of a vLPI from the VPT or of a vSGI: no LR, no ap_list, no exit. Neither has an
 * active state, so only its priority becomes active (EOIR drops it; there is nothing to
 * deactivate). One a move took meanwhile reads as spurious (the interface changed under the read).
 */
function iarDirect(s: GicState, v: number, grp1: boolean, intid: number): number {
  const prio = vpeBestPriority();
  const g = vpeBestGroup1();
  if (g !== grp1 || !canPreemptPrio(s, v, prio, g)) return INTID_SPURIOUS;
  const on = vpeOn(s, v);
  if (!(intid < 16 ? vpeTakeVsgi(s, on, intid) : vpeAck(s, on, intid))) return INTID_SPURIOUS;
  s.vcpu[v * VCPU_STRIDE + (g ? V_AP1R0 : V_AP0R0)] |= 1 << ((prio & gprioMask(s, v, g)) >>> APR_SHIFT);
  ackSeen(s, v, intid);
  return intid;
}

/** ICV_HPPIR0/1_EL1: the best pending interrupt if it is of this group, else 1023. */
export function icvHppir(s: GicState, v: number, grp1: boolean): number {
  const n = hppviIndex(s, v);
  if (s.direct && vpeResidentPending(s, v)) {
    const vintid = directWins(s, v, n);
    if (vintid >= 0) return vpeBestGroup1() === grp1 ? vintid : INTID_SPURIOUS;
  }
  if (n < 0) return INTID_SPURIOUS;
  const i = s.lrIndex(v, n);
  return ((s.lr[i + 1] & LR_HI_GROUP) !== 0) === grp1 ? s.lr[i] : INTID_SPURIOUS;
}

/**
 * Priority drop: clear the highest active priority bit (Group 0 first on a tie).
 * Returns the dropped priority, or 0xff if nothing was active.
 */
function dropPriority(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const ap0 = s.vcpu[b + V_AP0R0];
  const ap1 = s.vcpu[b + V_AP1R0];
  if ((ap0 | ap1) === 0) return PRIO_IDLE;
  const c0 = ap0 === 0 ? 32 : 31 - Math.clz32(ap0 & -ap0);
  const c1 = ap1 === 0 ? 32 : 31 - Math.clz32(ap1 & -ap1);
  if (c0 <= c1) {
    s.vcpu[b + V_AP0R0] = ap0 & (ap0 - 1);
    return c0 << APR_SHIFT;
  }
  s.vcpu[b + V_AP1R0] = ap1 & (ap1 - 1);
  return c1 << APR_SHIFT;
}

/** The LR holding `intid` in an active state, or -1 (only Active LRs are looked at: V_LR_ACT). */
function findActive(s: GicState, v: number, intid: number): number {
  const base = s.lrIndex(v, 0);
  for (let m = s.vcpu[v * VCPU_STRIDE + V_LR_ACT]; m !== 0; m &= m - 1) {
    const n = 31 - Math.clz32(m & -m);
    if (s.lr[base + 2 * n] === intid) return n;
  }
  return -1;
}

/** Result of an EOIR/DIR: nothing more to do, or work for the hypervisor side (core/vgic.ts). */
export const ICV_DONE = 0;
/** The interrupt is not in an LR: deactivate it in software (EOIcount / trapped DIR). */
export const ICV_DEACTIVATE_SW = 1;
/** A HW LR was deactivated: deactivate the physical interrupt (lastPhysIntid()). */
export const ICV_DEACTIVATE_PHYS = 2;
/** Nothing changed (a special INTID, or nothing active): no maintenance to evaluate. */
export const ICV_IGNORED = 3;

let physIntid = 0;
/** The pINTID of the last ICV_DEACTIVATE_PHYS result. */
export const lastPhysIntid = (): number => physIntid;

function deactivateLr(s: GicState, v: number, n: number): number {
  const i = s.lrIndex(v, n) + 1;
  const hi = s.lr[i];
  s.lr[i] = (hi & ~LR_HI_ACTIVE) >>> 0;
  const b = v * VCPU_STRIDE;
  s.vcpu[b + V_LR_ACT] &= ~(1 << n);
  if (hi & LR_HI_PENDING) {
    // Active+Pending becomes Pending: a candidate again, possibly out of priority order.
    s.vcpu[b + V_LR_PEND] |= 1 << n;
    s.vcpu[b + V_LR_SORTED] = 0;
  }
  if (hi & LR_HI_HW) {
    physIntid = hi & LR_HI_PINTID_MASK;
    return ICV_DEACTIVATE_PHYS;
  }
  return ICV_DONE;
}

/** ICV_EOIR0/1_EL1. Special and out-of-range INTIDs are ignored (no priority drop). */
export function icvEoir(s: GicState, v: number, grp1: boolean, intid: number): number {
  if (intid >= INTID_SECURE && intid < VGIC_MIN_LPI) return ICV_IGNORED;
  const dropped = dropPriority(s, v);
  if (dropped === PRIO_IDLE) return ICV_IGNORED;
  const n = findActive(s, v, intid);
  if (n < 0) {
    // An LPI outside the LRs, or a vSGI, has nothing to deactivate (no active state): no EOIcount.
    if (intid >= VGIC_MIN_LPI || (intid < 16 && vsgiMode(s))) return ICV_DONE;
    const b = v * VCPU_STRIDE;
    s.vcpu[b + V_EOICOUNT] = (s.vcpu[b + V_EOICOUNT] + 1) & 31;
    return s.vcpu[b + V_VMCR] & VMCR_EOIM ? ICV_DONE : ICV_DEACTIVATE_SW;
  }
  const hi = s.lr[s.lrIndex(v, n) + 1];
  if (((hi & LR_HI_GROUP) !== 0) === grp1 && (lrPriority(hi) & gprioMask(s, v, grp1)) === dropped) {
    if ((s.vcpu[v * VCPU_STRIDE + V_VMCR] & VMCR_EOIM) === 0) return deactivateLr(s, v, n);
  }
  return ICV_DONE;
}

/** ICV_DIR_EL1: deactivation, only meaningful with EOImode = 1. */
export function icvDir(s: GicState, v: number, intid: number): number {
  if (intid >= INTID_SECURE && intid < VGIC_MIN_LPI) return ICV_IGNORED;
  if ((s.vcpu[v * VCPU_STRIDE + V_VMCR] & VMCR_EOIM) === 0) return ICV_IGNORED;
  const n = findActive(s, v, intid);
  if (n < 0) {
    if (intid >= VGIC_MIN_LPI || (intid < 16 && vsgiMode(s))) return ICV_IGNORED;
    const b = v * VCPU_STRIDE;
    s.vcpu[b + V_EOICOUNT] = (s.vcpu[b + V_EOICOUNT] + 1) & 31;
    return ICV_DEACTIVATE_SW;
  }
  return deactivateLr(s, v, n);
}

/**
 * ICH_MISR_EL2: which maintenance conditions hold. A non-zero value means the maintenance interrupt
 * fires, which makes the vCPU exit (sync) and re-enter (flush).
 */
export function maintenanceStatus(s: GicState, v: number): number {
  const b = v * VCPU_STRIDE;
  const hcr = s.vcpu[b + V_HCR];
  const used = s.vcpu[b + V_USED_LRS];
  // Nothing armed: no maintenance interrupt can fire.
  if (used === 0 || (hcr === 0 && s.vcpu[b + V_LR_EOI] === 0)) return 0;
  const base = s.lrIndex(v, 0);
  let valid = 0;
  let pending = 0;
  let misr = 0;
  for (let n = 0; n < used; n++) {
    const hi = s.lr[base + 2 * n + 1];
    if (hi & LR_HI_STATE) {
      valid++;
      if (hi & LR_HI_PENDING) pending++;
    } else if ((hi & (LR_HI_HW | LR_HI_EOI)) === LR_HI_EOI) {
      misr |= MISR_EOI;
    }
  }
  if (hcr & HCR_UIE && valid <= 1) misr |= MISR_U;
  if (hcr & HCR_NPIE && pending === 0) misr |= MISR_NP;
  if (hcr & HCR_LRENPIE && s.vcpu[b + V_EOICOUNT] !== 0) misr |= MISR_LRENP;
  return misr;
}
