/**
 * GICv4.1 virtual PEs (GIC IHI 0069 §5.3 "Virtual LPIs" and §9.10 GICR_VPENDBASER): what the
 * redistributor and ITS hardware do for direct injection, driven by vgic's KVM layer as KVM's
 * vgic-v4.c drives a GIC-700. One vPE per vCPU. Each vPE has a virtual pending table (VPT: one
 * bit per LPI, in the state buffer, `vpt`) and a residency word (`vpe`, VPE_STATE):
 *
 * - resident (GICR_VPENDBASER.Valid): the vCPU runs; the CPU interface (core/icv.ts) presents its
 *   pending vLPIs beside the list registers and ICV_IAR1 takes one from the VPT, with no ap_list,
 *   no list register and no exit;
 * - non-resident: a vLPI made pending raises the vPE's doorbell — a kick of its vCPU — at most
 *   once per non-residency phase, and only when the doorbell was enabled as it left (blocking in
 *   WFI; not when it stops). PendingLast says a vLPI waited when it left or the doorbell rang.
 *
 * A forwarded LPI (irqFlags.FORWARDED, KVM's irq->hw for a vLPI) keeps its pending state in its
 * target's VPT, never in PENDING_LATCH. An MSI sets the VPT bit without a lock; whoever moves the
 * bit (VMOVI on a retarget, unforwarding, DISCARD) changes the target or flag under the irq_lock
 * first and then takes the bit with an atomic and-not, so a bit is consumed exactly once: by
 * ICV_IAR1, by a move, or by the MSI itself when it finds, re-reading, that the LPI moved under it.
 *
 * The VPT summary (one bit per VPT word) and its top level (one bit per summary word) are set after
 * the bit below them and cleared only by a scan that then re-reads what is below, so a scan never
 * misses a bit an MSI finished setting. Scans leave a few bits over empty words set (a vLPI taken
 * and raised again keeps its path: STALE_SUMMARY_BITS) and prune them when there are more, so an
 * idle vPE's CPU interface answers from the top level or after a few loads.
 *
 * Who may call: the MSI path (any thread, no lock), the vCPU's own thread (residency, the CPU
 * interface), ITS commands and the host API with the LPI's irq_lock free (they take it).
 */

import { GICD_CTLR_NASSGIREQ } from '../arch/gicv3.ts';
import { VMCR_ENG0, VMCR_ENG1, VMCR_PMR_SHIFT } from '../arch/ich.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  D_CTLR,
  type GicState,
  IRQ_ENABLED,
  IRQ_FORWARDED,
  IRQ_GROUP1,
  IRQ_PENDING_LATCH,
  IRQ_VALID,
  V_VMCR,
  V_VPE_ON,
  VCPU_STRIDE,
  VPE_ACKS,
  VPE_DB_EN,
  VPE_DB_FIRED,
  VPE_DOORBELLS,
  VPE_MAP,
  VPE_MERGED,
  VPE_PENDING_LAST,
  VPE_STATE,
  VPE_STRIDE,
  VPE_VALID,
  VPE_VSGI,
  VPE_VSGI_CFG,
  VPE_VSGI_PRIO,
} from '../state/layout.ts';
import { kickVcpu, queueIrqUnlock } from './irq.ts';
import { lockIrq, unlockIrq } from './locks.ts';

/** vpeInject results (the same values as lpi.ts's LPI_SET_*). */
export const VPE_SET_NEW = 1;
export const VPE_SET_COALESCED = 2;
/** The LPI is not (or no longer) forwarded: the caller takes the software path. */
export const VPE_NOT_FORWARDED = 0;

// ---- the VPT's bits ----

/** Sets LPI i's bit in v's VPT; true if it was clear (then summarised). */
export function vptSet(s: GicState, v: number, i: number): boolean {
  const w = v * s.vptWords + (i >>> 5);
  const bit = 1 << (i & 31);
  if (s.shared) {
    if (Atomics.or(s.vpt, w, bit) & bit) return false;
    const sw = v * s.vptSummaryWords + (i >>> 10);
    const sbit = 1 << ((i >>> 5) & 31);
    if ((Atomics.load(s.vptSummary, sw) & sbit) === 0) Atomics.or(s.vptSummary, sw, sbit);
    const tw = v * s.vptTopWords + (i >>> 15);
    const tbit = 1 << ((i >>> 10) & 31);
    if ((Atomics.load(s.vptTop, tw) & tbit) === 0) Atomics.or(s.vptTop, tw, tbit);
    return true;
  }
  if (s.vpt[w] & bit) return false;
  s.vpt[w] |= bit;
  s.vptSummary[v * s.vptSummaryWords + (i >>> 10)] |= 1 << ((i >>> 5) & 31);
  s.vptTop[v * s.vptTopWords + (i >>> 15)] |= 1 << ((i >>> 10) & 31);
  return true;
}

/** Takes LPI i's bit from v's VPT; true if this call cleared it (exactly one taker per set). */
export function vptTake(s: GicState, v: number, i: number): boolean {
  const w = v * s.vptWords + (i >>> 5);
  const bit = 1 << (i & 31);
  if (s.shared) {
    return (Atomics.and(s.vpt, w, ~bit) & bit) !== 0;
  }
  if ((s.vpt[w] & bit) === 0) return false;
  s.vpt[w] &= ~bit;
  return true;
}

/** vLPIs pending in v's VPT (a count of its bits: the host API's view, not a hot path). */
export function vptCount(s: GicState, v: number): number {
  let n = 0;
  for (let wi = 0; wi < s.vptWords; wi++) {
    for (let m = s.vpt[v * s.vptWords + wi]; m !== 0; m &= m - 1) n++;
  }
  return n;
}

/** Whether LPI i is pending in v's VPT. */
export function vptPending(s: GicState, v: number, i: number): boolean {
  return (s.vpt[v * s.vptWords + (i >>> 5)] & (1 << (i & 31))) !== 0;
}

// ---- the MSI path ----

/**
 * The doorbell: a vLPI of v became pending while v is not resident. Rings (kicks v) if v left with
 * its doorbell enabled and it has not rung in this phase; sets PendingLast.
 */
function doorbell(s: GicState, v: number): void {
  const at = v * VPE_STRIDE + VPE_STATE;
  if (!s.shared) {
    const st = s.vpe[at];
    if ((st & (VPE_VALID | VPE_DB_EN | VPE_DB_FIRED)) !== VPE_DB_EN) return;
    s.vpe[at] = st | VPE_DB_FIRED | VPE_PENDING_LAST;
    s.vpe[v * VPE_STRIDE + VPE_DOORBELLS]++;
    kickVcpu(s, v);
    return;
  }
  for (;;) {
    const st = Atomics.load(s.vpe, at);
    if ((st & (VPE_VALID | VPE_DB_EN | VPE_DB_FIRED)) !== VPE_DB_EN) return;
    if (Atomics.compareExchange(s.vpe, at, st, st | VPE_DB_FIRED | VPE_PENDING_LAST) === st) break;
  }
  Atomics.add(s.vpe, v * VPE_STRIDE + VPE_DOORBELLS, 1);
  kickVcpu(s, v);
}

/**
 * An MSI (or INT) to forwarded LPI `slot`: set its bit in its target's VPT. No lock. Returns
 * VPE_SET_NEW / VPE_SET_COALESCED, or VPE_NOT_FORWARDED when the LPI is not forwarded (the caller
 * takes the software path, under the irq_lock).
 */
export function vpeInject(s: GicState, slot: number): number {
  const i = slot - s.lpiBase;
  for (;;) {
    // Plain reads decide the common case (a set bit: coalesced), as lpiSetPending's fast path; the
    // atomic or below orders everything after it, and the re-check reads atomically.
    const f = s.irqFlags[slot];
    if ((f & (IRQ_FORWARDED | IRQ_VALID)) !== (IRQ_FORWARDED | IRQ_VALID)) return VPE_NOT_FORWARDED;
    const v = s.irqTarget[slot];
    if (v < 0) return VPE_NOT_FORWARDED;
    // A set bit has not been taken by the CPU interface yet: merging into it loses no edge, and a
    // plain read keeps a flood of MSIs from writing the line the vCPU's thread reads.
    if (s.vpt[v * s.vptWords + (i >>> 5)] & (1 << (i & 31))) return VPE_SET_COALESCED;
    const fresh = vptSet(s, v, i);
    if (!s.shared) {
      if (fresh && (s.vpe[v * VPE_STRIDE + VPE_STATE] & VPE_VALID) === 0 && f & IRQ_ENABLED) doorbell(s, v);
      return fresh ? VPE_SET_NEW : VPE_SET_COALESCED;
    }
    // Re-read: a mover changes the flag or target before it takes the bit. If it changed, the bit
    // just set may be stranded on the old vPE: take it back (unless the mover already took it)
    // and deliver again along the new route.
    const f2 = Atomics.load(s.irqFlags, slot);
    if ((f2 & IRQ_FORWARDED) !== 0 && Atomics.load(s.irqTarget, slot) === v) {
      if (fresh && (Atomics.load(s.vpe, v * VPE_STRIDE + VPE_STATE) & VPE_VALID) === 0 && f2 & IRQ_ENABLED)
        doorbell(s, v);
      return fresh ? VPE_SET_NEW : VPE_SET_COALESCED;
    }
    // Not fresh: merged into a pending state someone else set. Fresh but taken: the taker (the
    // CPU interface, or a mover carrying it along) holds this MSI's pending state.
    if (!fresh) return VPE_SET_COALESCED;
    if (!vptTake(s, v, i)) return VPE_SET_NEW;
  }
}

/**
 * A direct interrupt of v was just enabled (INV/INVALL re-reading an LPI's property byte, or a
 * GICR_ISENABLER0 write for a vSGI): if it is pending while v is not resident, this is the moment
 * its doorbell rings (at most once per phase, as always).
 */
export function vpeEnabled(s: GicState, v: number): void {
  if (v >= 0 && (loadState(s, v) & VPE_VALID) === 0) doorbell(s, v);
}

/**
 * A move found a pending state where it put one (the latch an LR's fold set beside a VPT bit, or
 * a VPT bit an in-flight MSI set): two become one, counted so every MSI's fate still adds up.
 */
function countMerge(s: GicState, v: number): void {
  if (s.shared) Atomics.add(s.vpe, v * VPE_STRIDE + VPE_MERGED, 1);
  else s.vpe[v * VPE_STRIDE + VPE_MERGED]++;
}

// ---- forwarding (kvm_vgic_v4_set_forwarding / unset_forwarding) and moves ----

/**
 * Forwards mapped LPI `slot` (target ≥ 0): its pending latch moves into its target's VPT. Returns
 * false if it cannot be (not mapped, collection unmapped, the target's vPE slot mapped by the
 * guest); true if forwarded (or already was).
 * Caller holds no irq_lock.
 */
export function vpeForward(s: GicState, slot: number): boolean {
  lockIrq(s, slot);
  const f = s.irqFlags[slot];
  const v = s.irqTarget[slot];
  // A slot the guest mapped (VMAPP) holds the guest's vINTIDs: no host LPI is forwarded into it.
  if ((f & IRQ_VALID) === 0 || v < 0 || s.vpe[v * VPE_STRIDE + VPE_MAP] !== 0) {
    unlockIrq(s, slot);
    return false;
  }
  if ((f & IRQ_FORWARDED) === 0) {
    // The latch, if set, becomes the VPT bit: one pending state before, one after. An LR that
    // holds an earlier pending state keeps it (delivered from there, as KVM leaves it).
    storeFlags(s, slot, (f | IRQ_FORWARDED) & ~IRQ_PENDING_LATCH);
    if (f & IRQ_PENDING_LATCH) {
      if (!vptSet(s, v, slot - s.lpiBase)) countMerge(s, v);
      else if ((loadState(s, v) & VPE_VALID) === 0 && f & IRQ_ENABLED) doorbell(s, v);
    }
  }
  unlockIrq(s, slot);
  return true;
}

/**
 * Stops forwarding LPI `slot`: a VPT bit becomes the pending latch and the LPI is queued on the
 * software path. Returns whether it was forwarded. Caller holds no irq_lock.
 */
export function vpeUnforward(s: GicState, slot: number): boolean {
  lockIrq(s, slot);
  const f = s.irqFlags[slot];
  if ((f & IRQ_FORWARDED) === 0) {
    unlockIrq(s, slot);
    return false;
  }
  storeFlags(s, slot, f & ~IRQ_FORWARDED);
  const v = s.irqTarget[slot];
  if (v >= 0 && vptTake(s, v, slot - s.lpiBase)) {
    if (f & IRQ_PENDING_LATCH) countMerge(s, v);
    s.irqFlags[slot] |= IRQ_PENDING_LATCH;
    queueIrqUnlock(s, slot);
  } else unlockIrq(s, slot);
  return true;
}

/**
 * VMOVI: forwarded LPI `slot` now targets `to` (the caller set irqTarget under the irq_lock,
 * which it still holds); its VPT bit follows from `from`. A target of -1 (collection unmapped)
 * cannot hold a vLPI: the LPI stops being forwarded and its pending state goes to the latch.
 */
export function vpeMoveLocked(s: GicState, slot: number, from: number, to: number): void {
  const i = slot - s.lpiBase;
  if (to < 0) {
    const f = s.irqFlags[slot] & ~IRQ_FORWARDED;
    storeFlags(s, slot, f);
    if (from >= 0 && vptTake(s, from, i)) {
      if (f & IRQ_PENDING_LATCH) countMerge(s, from);
      s.irqFlags[slot] |= IRQ_PENDING_LATCH;
    }
    return;
  }
  if (from >= 0 && from !== to && vptTake(s, from, i)) {
    if (!vptSet(s, to, i)) countMerge(s, to);
    else if ((loadState(s, to) & VPE_VALID) === 0 && s.irqFlags[slot] & IRQ_ENABLED) doorbell(s, to);
  }
}

/**
 * The LPI is being freed or its pending state cleared (DISCARD, CLEAR, unmapping): take its VPT
 * bit. With `unforward` the FORWARDED flag goes too. Caller holds the irq_lock. Returns whether a
 * pending state was removed.
 */
export function vpeDropLocked(s: GicState, slot: number, unforward: boolean): boolean {
  const f = s.irqFlags[slot];
  if ((f & IRQ_FORWARDED) === 0) return false;
  if (unforward) storeFlags(s, slot, f & ~IRQ_FORWARDED);
  const v = s.irqTarget[slot];
  return v >= 0 && vptTake(s, v, slot - s.lpiBase);
}

// ---- residency (GICR_VPENDBASER) ----

/** vgic_v4_load: v is scheduled (its vCPU runs). A new phase: doorbell and PendingLast clear. */
export function vpeMakeResident(s: GicState, v: number): void {
  const at = v * VPE_STRIDE + VPE_STATE;
  if (s.vpe[at] === VPE_VALID || s.vpe[v * VPE_STRIDE + VPE_MAP] !== 0) return;
  if (s.shared) Atomics.store(s.vpe, at, VPE_VALID);
  else s.vpe[at] = VPE_VALID;
}

/**
 * vgic_v4_put: v is descheduled, with its doorbell enabled when it blocks (WFI) and not when it
 * stops. Already non-resident, it may only gain the doorbell (a WFI after a stop). PendingLast is
 * set if an enabled vLPI waits; the doorbell is then spent for this phase (nothing to ring for).
 */
export function vpeMakeNonResident(s: GicState, v: number, db: boolean): void {
  // A slot the guest mapped (VMAPP) is made resident and not by its GICR_VPENDBASER writes only.
  if (s.vpe[v * VPE_STRIDE + VPE_MAP] !== 0) return;
  const vmcr = s.vcpu[v * VCPU_STRIDE + V_VMCR];
  leaveResidency(s, v, db, (vmcr >>> VMCR_PMR_SHIFT) & 0xff, vmcr);
}

/**
 * Slot p leaves residency (GICR_VPENDBASER.Valid 1 → 0), with its doorbell enabled or not.
 * PendingLast is set if an enabled interrupt above `below` waits, of a group `vmcr` enables
 * (ICH_VMCR_EL2's VENG0/VENG1 bits); the doorbell is then spent for this phase. Returns whether
 * PendingLast is set.
 */
export function leaveResidency(s: GicState, v: number, db: boolean, below: number, vmcr: number): boolean {
  const at = v * VPE_STRIDE + VPE_STATE;
  const st = loadState(s, v);
  if (st & VPE_VALID) {
    if (s.shared) Atomics.store(s.vpe, at, db ? VPE_DB_EN : 0);
    else s.vpe[at] = db ? VPE_DB_EN : 0;
  } else if (db && (st & VPE_DB_EN) === 0) {
    if (s.shared) Atomics.or(s.vpe, at, VPE_DB_EN);
    else s.vpe[at] |= VPE_DB_EN;
  } else return (st & VPE_PENDING_LAST) !== 0;
  // After the store (seq_cst): an MSI that set a bit and still saw v resident is seen by this scan;
  // one that saw it non-resident rings the doorbell itself.
  // Above the vCPU's priority mask: what a WFI would wake for (kvm_vgic_vcpu_pending_irq).
  if (slotBest(s, v, vmcr, below) >= 0) {
    if (s.shared) Atomics.or(s.vpe, at, VPE_PENDING_LAST | VPE_DB_FIRED);
    else s.vpe[at] |= VPE_PENDING_LAST | VPE_DB_FIRED;
    return true;
  }
  return false;
}

/**
 * Slot p becomes resident (GICR_VPENDBASER.Valid 0 → 1, or the KVM layer's vgic_v4_load): a new
 * phase, doorbell and PendingLast clear.
 */
export function enterResidency(s: GicState, p: number): void {
  if (s.shared) Atomics.store(s.vpe, p * VPE_STRIDE + VPE_STATE, VPE_VALID);
  else s.vpe[p * VPE_STRIDE + VPE_STATE] = VPE_VALID;
}

/** The vPE slot vCPU v's CPU interface presents (GICR_VPENDBASER of its redistributor), or -1. */
export function vpeOn(s: GicState, v: number): number {
  return s.vcpu[v * VCPU_STRIDE + V_VPE_ON] - 1;
}

function loadState(s: GicState, v: number): number {
  return s.shared ? Atomics.load(s.vpe, v * VPE_STRIDE + VPE_STATE) : s.vpe[v * VPE_STRIDE + VPE_STATE];
}

function storeFlags(s: GicState, slot: number, f: number): void {
  if (s.shared) Atomics.store(s.irqFlags, slot, f);
  else s.irqFlags[slot] = f;
}

/**
 * Whether v is resident and its VPT's top level has a bit set (a load or three: the CPU
 * interface's idle check; a scan clears the top bits of words it finds empty).
 */
export function vpeResidentPending(s: GicState, cpu: number): boolean {
  const v = s.vcpu[cpu * VCPU_STRIDE + V_VPE_ON] - 1;
  if (v < 0) return false;
  const b = v * VPE_STRIDE;
  if ((s.vpe[b + VPE_STATE] & VPE_VALID) === 0) return false;
  if (s.vpe[b + VPE_VSGI] !== 0) return true;
  const t = v * s.vptTopWords;
  for (let j = 0; j < s.vptTopWords; j++) if (s.vptTop[t + j] !== 0) return true;
  return false;
}

/** PendingLast: a vLPI waited when v left, or its doorbell rang (KVM's its_vpe.pending_last). */
export function vpePendingLast(s: GicState, v: number): boolean {
  // A guest-mapped vPE's PendingLast is its GICR_VPENDBASER's; its doorbell is a physical LPI.
  return (loadState(s, v) & VPE_PENDING_LAST) !== 0 && s.vpe[v * VPE_STRIDE + VPE_MAP] === 0;
}

// ---- the CPU interface's view ----

let bestPrio = 0xff;
let bestGrp1 = true;
/** The priority of the interrupt the last vpeBest() / directBest() returned. */
export const vpeBestPriority = (): number => bestPrio;
/** Its group (vLPIs are Group 1; a vSGI has its SGI's group). */
export const vpeBestGroup1 = (): boolean => bestGrp1;

// ---- vSGIs (GICv4.1: GICD_CTLR.nASSGIreq) ----

/** Whether this VM's SGIs are direct vSGIs: direct injection and GICD_CTLR.nASSGIreq. */
export function vsgiMode(s: GicState): boolean {
  return s.direct && (s.dist[D_CTLR] & GICD_CTLR_NASSGIREQ) !== 0;
}

/**
 * A vSGI to v (VSGI / GICR_VSGIR on hardware; KVM's vgic_v4 SGI path): sets its pending bit, no
 * lock; a non-resident vPE's doorbell rings if the SGI is enabled. Returns whether it was clear.
 */
export function vpeSetVsgi(s: GicState, v: number, sgi: number): boolean {
  const at = v * VPE_STRIDE + VPE_VSGI;
  const bit = 1 << sgi;
  if (s.shared) {
    if (Atomics.or(s.vpe, at, bit) & bit) return false;
  } else {
    if (s.vpe[at] & bit) return false;
    s.vpe[at] |= bit;
  }
  if ((loadState(s, v) & VPE_VALID) === 0 && s.irqFlags[s.slotOf(v, sgi)] & IRQ_ENABLED) doorbell(s, v);
  return true;
}

/** Clears (takes) vSGI `sgi` of v; true if this call cleared it. */
export function vpeTakeVsgi(s: GicState, v: number, sgi: number): boolean {
  const at = v * VPE_STRIDE + VPE_VSGI;
  const bit = 1 << sgi;
  if (s.shared) return (Atomics.and(s.vpe, at, ~bit) & bit) !== 0;
  if ((s.vpe[at] & bit) === 0) return false;
  s.vpe[at] &= ~bit;
  return true;
}

/**
 * The best direct interrupt of the vPE vCPU v's CPU interface presents, below priority `below`:
 * its enabled vSGIs of enabled groups, then its vLPIs (Group 1) — a vSGI's INTID is lower, so it
 * wins a tie. Returns the INTID or -1; vpeBestPriority() / vpeBestGroup1() describe it.
 */
export function directBest(s: GicState, v: number, below: number): number {
  const p = s.vcpu[v * VCPU_STRIDE + V_VPE_ON] - 1;
  return p < 0 ? -1 : slotBest(s, p, s.vcpu[v * VCPU_STRIDE + V_VMCR], below);
}

/**
 * The best direct interrupt of vPE slot p, with the group enables of `vmcr`. A slot the KVM layer
 * owns takes its vSGIs' configuration from its vCPU's SGI registers and its vLPIs' from the LPIs'
 * (one VM); a guest-mapped vPE from the VSGI command and its VCONF table (vprop).
 */
function slotBest(s: GicState, p: number, vmcr: number, below: number): number {
  if (s.vpe[p * VPE_STRIDE + VPE_MAP] !== 0) return guestSlotBest(s, p, vmcr, below);
  let best = -1;
  let prio = below;
  let grp1 = true;
  const pend = s.vpe[p * VPE_STRIDE + VPE_VSGI];
  for (let m = pend; m !== 0; m &= m - 1) {
    const sgi = 31 - Math.clz32(m & -m);
    const slot = p * 32 + sgi;
    const f = s.irqFlags[slot];
    if ((f & IRQ_ENABLED) === 0 || (vmcr & (f & IRQ_GROUP1 ? VMCR_ENG1 : VMCR_ENG0)) === 0) continue;
    const pr = s.irqPriority[slot];
    if (pr < prio) {
      prio = pr;
      best = sgi;
      grp1 = (f & IRQ_GROUP1) !== 0;
    }
  }
  if (vmcr & VMCR_ENG1) {
    const l = vpeBest(s, p, prio);
    if (l >= 0) return l; // vpeBest set bestPrio; vLPIs are Group 1
  }
  if (best < 0) return -1;
  bestPrio = prio;
  bestGrp1 = grp1;
  return best;
}

/** slotBest of a guest-mapped vPE: vSGI configuration from VSGI, vLPI properties from vprop. */
function guestSlotBest(s: GicState, p: number, vmcr: number, below: number): number {
  let best = -1;
  let prio = below;
  let grp1 = true;
  const cfg = s.vpe[p * VPE_STRIDE + VPE_VSGI_CFG];
  for (let m = s.vpe[p * VPE_STRIDE + VPE_VSGI]; m !== 0; m &= m - 1) {
    const sgi = 31 - Math.clz32(m & -m);
    const g1 = (cfg & (1 << (16 + sgi))) !== 0;
    if ((cfg & (1 << sgi)) === 0 || (vmcr & (g1 ? VMCR_ENG1 : VMCR_ENG0)) === 0) continue;
    const pr = (s.vpe[p * VPE_STRIDE + VPE_VSGI_PRIO + (sgi >>> 2)] >>> ((sgi & 3) * 8)) & 0xff;
    if (pr < prio) {
      prio = pr;
      best = sgi;
      grp1 = g1;
    }
  }
  if (vmcr & VMCR_ENG1) {
    const l = vpeBestGuest(s, p, prio);
    if (l >= 0) return l;
  }
  if (best < 0) return -1;
  bestPrio = prio;
  bestGrp1 = grp1;
  return best;
}

/**
 * vpeBest for a guest-mapped vPE: priority and enable from its vprop bytes (the VCONF table's
 * cached property bytes), vINTIDs within its VPT_size.
 */
function vpeBestGuest(s: GicState, v: number, below: number): number {
  const tBase = v * s.vptTopWords;
  const sBase = v * s.vptSummaryWords;
  const wBase = v * s.vptWords;
  const pBase = v * s.nLpis;
  let best = -1;
  let prio = below;
  for (let tw = 0; tw < s.vptTopWords; tw++) {
    for (let top = s.vptTop[tBase + tw]; top !== 0; top &= top - 1) {
      const tb = 31 - Math.clz32(top & -top);
      const sw = (tw << 5) + tb;
      let sum = s.vptSummary[sBase + sw];
      if (sum === 0) {
        clearSummaryBit(s, s.vptTop, tBase + tw, tb, s.vptSummary, sBase + sw);
        continue;
      }
      for (; sum !== 0; sum &= sum - 1) {
        const sb = 31 - Math.clz32(sum & -sum);
        const wi = (sw << 5) + sb;
        let word = s.vpt[wBase + wi];
        if (word === 0) {
          clearSummaryBit(s, s.vptSummary, sBase + sw, sb, s.vpt, wBase + wi);
          continue;
        }
        for (; word !== 0; word &= word - 1) {
          const i = (wi << 5) + 31 - Math.clz32(word & -word);
          const prop = s.vprop[pBase + i];
          if ((prop & 1) === 0) continue;
          const pr = prop & 0xfc;
          if (pr < prio) {
            prio = pr;
            best = i;
          }
        }
      }
    }
  }
  if (best < 0) return -1;
  bestPrio = prio;
  bestGrp1 = true;
  return VGIC_MIN_LPI + best;
}

/**
 * Summary and top bits a scan may find stale (set over an empty word) before it prunes them. A
 * stale bit costs a scan one load; clearing it costs the scan two atomics and the next MSI to that
 * word two more (it sets the bit again), on cache lines both threads then write. A vPE whose few
 * vLPIs are taken and re-raised all the time keeps its bits; one whose VPT drained for good gets
 * its summary cleared by the first scan that walks more than this many empty entries.
 */
const STALE_SUMMARY_BITS = 8;

/**
 * The highest-priority enabled vLPI pending in v's VPT with a priority below `below`, or -1 (its
 * priority: vpeBestPriority()). Equal priorities go to the lowest INTID. Summary bits of words
 * found empty stay set (see STALE_SUMMARY_BITS) unless there are many of them. Cost: the summary
 * words plus the pending bits.
 */
export function vpeBest(s: GicState, v: number, below: number): number {
  const tBase = v * s.vptTopWords;
  const sBase = v * s.vptSummaryWords;
  const wBase = v * s.vptWords;
  let best = -1;
  let prio = below;
  let stale = 0;
  for (let tw = 0; tw < s.vptTopWords; tw++) {
    for (let top = s.vptTop[tBase + tw]; top !== 0; top &= top - 1) {
      const tb = 31 - Math.clz32(top & -top);
      const sw = (tw << 5) + tb;
      let sum = s.vptSummary[sBase + sw];
      if (sum === 0) {
        stale++;
        continue;
      }
      for (; sum !== 0; sum &= sum - 1) {
        const sb = 31 - Math.clz32(sum & -sum);
        const wi = (sw << 5) + sb;
        let word = s.vpt[wBase + wi];
        if (word === 0) {
          stale++;
          continue;
        }
        for (; word !== 0; word &= word - 1) {
          const slot = s.lpiBase + (wi << 5) + 31 - Math.clz32(word & -word);
          if ((s.irqFlags[slot] & IRQ_ENABLED) === 0) continue;
          const p = s.irqPriority[slot];
          if (p < prio) {
            prio = p;
            best = slot;
          }
        }
      }
    }
  }
  if (stale > STALE_SUMMARY_BITS) pruneSummary(s, v);
  if (best < 0) return -1;
  bestPrio = prio;
  bestGrp1 = true;
  return VGIC_MIN_LPI + best - s.lpiBase;
}

/** Clears v's summary and top bits over empty words (each re-read after: see the file comment). */
function pruneSummary(s: GicState, v: number): void {
  const tBase = v * s.vptTopWords;
  const sBase = v * s.vptSummaryWords;
  const wBase = v * s.vptWords;
  for (let tw = 0; tw < s.vptTopWords; tw++) {
    for (let top = s.vptTop[tBase + tw]; top !== 0; top &= top - 1) {
      const tb = 31 - Math.clz32(top & -top);
      const sw = (tw << 5) + tb;
      for (let sum = s.vptSummary[sBase + sw]; sum !== 0; sum &= sum - 1) {
        const sb = 31 - Math.clz32(sum & -sum);
        const wi = (sw << 5) + sb;
        if (s.vpt[wBase + wi] === 0) clearSummaryBit(s, s.vptSummary, sBase + sw, sb, s.vpt, wBase + wi);
      }
      if (s.vptSummary[sBase + sw] === 0)
        clearSummaryBit(s, s.vptTop, tBase + tw, tb, s.vptSummary, sBase + sw);
    }
  }
}

/**
 * A summary bit whose word was found empty: clear it, then re-read the word and set it again if
 * an MSI filled the word meanwhile (it sets the word before the summary: nothing is missed).
 */
function clearSummaryBit(
  s: GicState,
  sums: Int32Array,
  at: number,
  bit: number,
  words: Int32Array,
  w: number,
): void {
  if (!s.shared) {
    sums[at] &= ~(1 << bit);
    return;
  }
  Atomics.and(sums, at, ~(1 << bit));
  if (Atomics.load(words, w) !== 0) Atomics.or(sums, at, 1 << bit);
}

/** ICV_IAR1 takes vLPI `intid` from the VPT of the vPE slot `v` (vpeOn); false if a move took it first. */
export function vpeAck(s: GicState, v: number, intid: number): boolean {
  if (!vptTake(s, v, intid - VGIC_MIN_LPI)) return false;
  s.vpe[v * VPE_STRIDE + VPE_ACKS]++;
  return true;
}
