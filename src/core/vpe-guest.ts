/**
 * Guest-mapped vPEs (GIC IHI 0069 GICv4.1: VMAPP, the vLPI configuration and pending tables,
 * GICR_VPENDBASER residency, doorbell LPIs): what the guest-visible interface — the V-commands
 * (its/vcommands.ts) and the VLPI_base frame (mmio/gicr.ts) — does to the one vPE engine of
 * core/vpe.ts. vPEID n is vPE slot n (n < the number of vCPUs: GICD_TYPER2.VID bounds it); a slot
 * the guest maps (VPE_MAP) leaves the KVM layer's control: it is resident only while a
 * redistributor's GICR_VPENDBASER names it (V_VPE_ON), and its doorbell is the physical LPI VMAPP
 * named, made pending on the vPE's redistributor at most once per non-residency phase.
 *
 * The GIC may cache a mapped vPE's tables (§5.3 "VMAPP"): the VPT is read at VMAPP (unless PTZ)
 * into the slot's bits and written back at VMAPP V=0; the VCONF property bytes are read at VMAPP,
 * INV, VINVALL, GICR_INVLPIR/INVALLR with V. A residency change is complete when the write ends
 * (GICR_VPENDBASER.Dirty never reads 1).
 *
 * Who may call: its/vcommands.ts and its/translate.ts with the ITS's its_lock held (commands and
 * MSIs of different ITSes may run at once: the VPT bits are atomics as for the KVM path);
 * mmio/gicr.ts for a vCPU's own redistributor.
 */

import { DOORBELL_NONE } from '../arch/gicv4.ts';
import { VMCR_ENG0, VMCR_ENG1 } from '../arch/ich.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  type GicState,
  S_LPI_TABLE_FAULT,
  V_VPE_ON,
  VCPU_STRIDE,
  VPE_DB,
  VPE_DB_EN,
  VPE_DB_FIRED,
  VPE_DOORBELLS,
  VPE_MAP,
  VPE_MAP_V,
  VPE_PENDING_LAST,
  VPE_RESIDENT_ON,
  VPE_STATE,
  VPE_STRIDE,
  VPE_VALID,
  VPE_VCONF_HI,
  VPE_VCONF_LO,
  VPE_VPT_HI,
  VPE_VPT_LO,
  VPE_VPT_SIZE,
  VPE_VSGI,
  VPE_VSGI_CFG,
  VPE_VSGI_PRIO,
} from '../state/layout.ts';
import { kickVcpu } from './irq.ts';
import { lpiDoorbellMap, lpiDoorbellUnmap, lpiRetarget, lpiSetPending, updateLpiConfig } from './lpi.ts';
import { enterResidency, leaveResidency, vptSet, vptTake } from './vpe.ts';

/** Whether vPEID p names a slot the guest mapped with VMAPP. */
export function gvpeMapped(s: GicState, p: number): boolean {
  return p >= 0 && p < s.nVcpus && s.direct && (s.vpe[p * VPE_STRIDE + VPE_MAP] & VPE_MAP_V) !== 0;
}

/** The redistributor (vCPU) a mapped vPE belongs to (VMAPP/VMOVP RDbase). */
export function gvpeRd(s: GicState, p: number): number {
  return s.vpe[p * VPE_STRIDE + VPE_MAP] & 0xffff;
}

const addrOf = (s: GicState, p: number, lo: number): number =>
  (s.vpe[p * VPE_STRIDE + lo] >>> 0) + (s.vpe[p * VPE_STRIDE + lo + 1] >>> 0) * 2 ** 32;

/** vLPIs of p's VPT the store can hold: min(2^VPT bits, 8192 + nLpis) - 8192 (0 below 14 bits). */
function vlpiCount(s: GicState, p: number): number {
  const bits = s.vpe[p * VPE_STRIDE + VPE_VPT_SIZE];
  return Math.max(0, Math.min(2 ** bits - VGIC_MIN_LPI, s.nLpis));
}

/** Empties slot p: VPT bits and summaries, vSGIs, property bytes. */
function clearSlot(s: GicState, p: number): void {
  s.vpt.fill(0, p * s.vptWords, (p + 1) * s.vptWords);
  s.vptSummary.fill(0, p * s.vptSummaryWords, (p + 1) * s.vptSummaryWords);
  s.vptTop.fill(0, p * s.vptTopWords, (p + 1) * s.vptTopWords);
  s.vprop.fill(0, p * s.nLpis, (p + 1) * s.nLpis);
  const b = p * VPE_STRIDE;
  s.vpe[b + VPE_VSGI] = 0;
  s.vpe[b + VPE_VSGI_CFG] = 0;
  for (let j = 0; j < 4; j++) s.vpe[b + VPE_VSGI_PRIO + j] = 0;
}

/**
 * Re-reads p's vLPI property bytes from its VCONF table (one byte per vLPI from INTID 8192, as
 * GICR_PROPBASER's table). Bytes outside RAM read as disabled (counted once). Returns the work
 * (bytes read / 8).
 */
export function gvpeReadConfig(s: GicState, mem: GuestMemory, p: number): number {
  const n = vlpiCount(s, p);
  const base = addrOf(s, p, VPE_VCONF_LO);
  const bytes = n > 0 ? mem.bytesAt(base, n) : undefined;
  const at = p * s.nLpis;
  if (bytes !== undefined) s.vprop.set(bytes, at);
  else {
    if (n > 0) s.stats[S_LPI_TABLE_FAULT]++;
    s.vprop.fill(0, at, at + n);
  }
  s.vprop.fill(0, at + n, at + s.nLpis);
  ringIfPending(s, p);
  return n >>> 3;
}

/** INV / GICR_INVLPIR with V: re-reads one vLPI's property byte. */
export function gvpeInv(s: GicState, mem: GuestMemory, p: number, vintid: number): void {
  const i = vintid - VGIC_MIN_LPI;
  if (i < 0 || i >= vlpiCount(s, p)) return;
  const b = mem.read(addrOf(s, p, VPE_VCONF_LO) + i, 1);
  if (b === undefined) {
    s.stats[S_LPI_TABLE_FAULT]++;
    return;
  }
  const was = s.vprop[p * s.nLpis + i];
  s.vprop[p * s.nLpis + i] = b;
  if ((was & 1) === 0 && b & 1 && s.vpt[p * s.vptWords + (i >>> 5)] & (1 << (i & 31))) ringIfPending(s, p);
}

/** A non-resident vPE with an enabled vLPI or vSGI pending rings its doorbell (once per phase). */
function ringIfPending(s: GicState, p: number): void {
  if (loadState(s, p) & VPE_VALID) return;
  const at = p * s.nLpis;
  const w0 = p * s.vptWords;
  for (let wi = 0; wi < s.vptWords; wi++) {
    for (let m = s.vpt[w0 + wi]; m !== 0; m &= m - 1) {
      if (s.vprop[at + (wi << 5) + 31 - Math.clz32(m & -m)] & 1) {
        gvpeDoorbell(s, p);
        return;
      }
    }
  }
  if (s.vpe[p * VPE_STRIDE + VPE_VSGI] & s.vpe[p * VPE_STRIDE + VPE_VSGI_CFG] & 0xffff) gvpeDoorbell(s, p);
}

function loadState(s: GicState, p: number): number {
  return s.shared ? Atomics.load(s.vpe, p * VPE_STRIDE + VPE_STATE) : s.vpe[p * VPE_STRIDE + VPE_STATE];
}

/**
 * The doorbell of a mapped vPE: if it left with DB set and has not rung this phase, PendingLast is
 * set and its default doorbell LPI (unless 1023) is made pending on its redistributor.
 */
export function gvpeDoorbell(s: GicState, p: number): void {
  const at = p * VPE_STRIDE + VPE_STATE;
  for (;;) {
    const st = loadState(s, p);
    if ((st & (VPE_VALID | VPE_DB_EN | VPE_DB_FIRED)) !== VPE_DB_EN) return;
    const now = st | VPE_DB_FIRED | VPE_PENDING_LAST;
    if (!s.shared) {
      s.vpe[at] = now;
      break;
    }
    if (Atomics.compareExchange(s.vpe, at, st, now) === st) break;
  }
  if (s.shared) Atomics.add(s.vpe, p * VPE_STRIDE + VPE_DOORBELLS, 1);
  else s.vpe[p * VPE_STRIDE + VPE_DOORBELLS]++;
  const db = s.vpe[p * VPE_STRIDE + VPE_DB];
  const slot = db === DOORBELL_NONE ? -1 : s.lpiSlot(db);
  if (slot >= 0) lpiSetPending(s, slot);
}

/**
 * A vLPI of mapped vPE p made pending (an MSI through a virtual ITE, INT). A vINTID beyond the
 * vPE's VPT_size is dropped (returns 0); else 1 if the bit was set now, 2 if it was pending.
 */
export function gvpeSetPending(s: GicState, p: number, vintid: number): number {
  const i = vintid - VGIC_MIN_LPI;
  if (i < 0 || i >= vlpiCount(s, p)) return 0;
  if (!vptSet(s, p, i)) return 2;
  // An MSI through another ITS races VMAPP V=0 (each ITS has its own its_lock): the unmap clears
  // VPE_MAP before it empties the slot, so a bit set after its check is taken back here.
  if (s.shared && (Atomics.load(s.vpe, p * VPE_STRIDE + VPE_MAP) & VPE_MAP_V) === 0) {
    vptTake(s, p, i);
    return 0;
  }
  const st = loadState(s, p);
  // Resident: the vCPU of its redistributor takes it; kick it out of a WFI (the virtual IRQ line).
  if (st & VPE_VALID) kickVcpu(s, s.vpe[p * VPE_STRIDE + VPE_RESIDENT_ON]);
  else if (s.vprop[p * s.nLpis + i] & 1) gvpeDoorbell(s, p);
  return 1;
}

/** CLEAR / DISCARD of a vLPI: takes its VPT bit. Returns whether it was pending. */
export function gvpeClear(s: GicState, p: number, vintid: number): boolean {
  const i = vintid - VGIC_MIN_LPI;
  return i >= 0 && i < s.nLpis && vptTake(s, p, i);
}

/** VMOVI: a vLPI's pending state follows it from vPE p to vPE q (no loss, no duplicate). */
export function gvpeMove(s: GicState, p: number, q: number, vintid: number): void {
  if (p !== q && gvpeClear(s, p, vintid)) gvpeSetPending(s, q, vintid);
}

/**
 * VMAPP V=1: slot p becomes a guest vPE on redistributor rd with doorbell `db`, a VPT of 2^bits
 * vINTIDs at vptAddr (read unless ptz) and vLPI properties at vconf. A slot mapped already is
 * unmapped first (its VPT written back). Returns the work done (bytes read / 8).
 */
export function gvpeMap(
  s: GicState,
  mem: GuestMemory,
  p: number,
  rd: number,
  db: number,
  vptAddr: number,
  bits: number,
  vconf: number,
  ptz: boolean,
): number {
  if (gvpeMapped(s, p)) gvpeUnmap(s, mem, p);
  const b = p * VPE_STRIDE;
  // The KVM layer's vPE of this slot is no longer presented by its vCPU (nor resident).
  const on = p * VCPU_STRIDE + V_VPE_ON;
  if (s.vcpu[on] === p + 1) s.vcpu[on] = 0;
  clearSlot(s, p);
  s.vpe[b + VPE_STATE] = 0;
  s.vpe[b + VPE_DB] = db;
  s.vpe[b + VPE_VPT_SIZE] = bits;
  s.vpe[b + VPE_VPT_LO] = vptAddr % 2 ** 32;
  s.vpe[b + VPE_VPT_HI] = Math.floor(vptAddr / 2 ** 32);
  s.vpe[b + VPE_VCONF_LO] = vconf % 2 ** 32;
  s.vpe[b + VPE_VCONF_HI] = Math.floor(vconf / 2 ** 32);
  s.vpe[b + VPE_MAP] = VPE_MAP_V | rd;
  let work = 0;
  const n = vlpiCount(s, p);
  if (!ptz && n > 0) {
    // The first 1K of a VPT (INTIDs 0-8191) is IMPLEMENTATION DEFINED: not read.
    const bytes = mem.bytesAt(vptAddr + 1024, Math.ceil(n / 8));
    if (bytes === undefined) s.stats[S_LPI_TABLE_FAULT]++;
    else {
      for (let j = 0; j < bytes.length; j++) {
        for (let m = bytes[j]; m !== 0; m &= m - 1) {
          const i = j * 8 + 31 - Math.clz32(m & -m);
          if (i < n) vptSet(s, p, i);
        }
      }
      work += bytes.length >>> 3;
    }
  }
  const slot = db === DOORBELL_NONE ? -1 : s.lpiSlot(db);
  if (slot >= 0) lpiDoorbellMap(s, mem, slot, rd);
  return work + gvpeReadConfig(s, mem, p);
}

/**
 * VMAPP V=0: the vPE's pending vLPIs are written back to its VPT in guest memory (what the spec
 * lets a GIC cache is written out when the mapping goes), the slot returns to the KVM layer.
 * Unmapping a resident vPE is UNPREDICTABLE; here it first leaves residency.
 */
export function gvpeUnmap(s: GicState, mem: GuestMemory, p: number): number {
  const b = p * VPE_STRIDE;
  for (let r = 0; r < s.nVcpus; r++) {
    if (s.vcpu[r * VCPU_STRIDE + V_VPE_ON] === p + 1 && (loadState(s, p) & VPE_VALID) !== 0)
      gvpeDeschedule(s, undefined, r, false);
  }
  const n = writeBackVpt(s, mem, p);
  // Unmapped first (see gvpeSetPending), then emptied.
  if (s.shared) Atomics.store(s.vpe, b + VPE_MAP, 0);
  else s.vpe[b + VPE_MAP] = 0;
  const db = s.vpe[b + VPE_DB];
  const slot = db === DOORBELL_NONE ? -1 : s.lpiSlot(db);
  if (slot >= 0) lpiDoorbellUnmap(s, slot);
  clearSlot(s, p);
  s.vpe[b + VPE_MAP] = 0;
  s.vpe[b + VPE_STATE] = 0;
  s.vpe[b + VPE_DB] = DOORBELL_NONE;
  s.vpe.fill(0, b + VPE_VPT_SIZE, b + VPE_VCONF_HI + 1);
  s.vpe[b + VPE_RESIDENT_ON] = 0;
  const on = p * VCPU_STRIDE + V_VPE_ON;
  if (s.vcpu[on] === 0) s.vcpu[on] = p + 1;
  return n >>> 5;
}

/**
 * Writes p's pending vLPIs into its VPT in guest memory (from INTID 8192; the first 1K, IMPLEMENTATION
 * DEFINED, untouched): what the VPT holds once a vPE left residency (Dirty reads 0) or was unmapped.
 * The slot stays authoritative while the vPE is mapped. Returns the vLPIs covered.
 */
export function writeBackVpt(s: GicState, mem: GuestMemory, p: number): number {
  const n = vlpiCount(s, p);
  const vpt = addrOf(s, p, VPE_VPT_LO) + 1024;
  const len = Math.ceil(n / 8);
  const bytes = len > 0 ? mem.bytesAt(vpt, len) : undefined;
  if (bytes === undefined) {
    if (len > 0) s.stats[S_LPI_TABLE_FAULT]++;
    return n;
  }
  // Only the bytes that differ are written (a de-residency of a quiet vPE writes nothing): the
  // view reads, GuestMemory.write writes (the dirty log sees every change).
  for (let j = 0; j < len; j++) {
    const i = j * 8;
    let b = (s.vpt[p * s.vptWords + (i >>> 5)] >>> (i & 31)) & 0xff;
    if (i + 8 > n) b &= (1 << (n - i)) - 1;
    if (bytes[j] !== b) mem.write(vpt + j, 1, b);
  }
  return n;
}

/** VMOVP: the vPE now belongs to redistributor rd (its doorbell LPI follows); a new doorbell if db ≥ 0. */
export function gvpeMoveRd(s: GicState, mem: GuestMemory, p: number, rd: number, db: number): void {
  const b = p * VPE_STRIDE;
  s.vpe[b + VPE_MAP] = VPE_MAP_V | rd;
  const old = s.vpe[b + VPE_DB];
  const oldSlot = old === DOORBELL_NONE ? -1 : s.lpiSlot(old);
  if (db >= 0 && db !== old) {
    if (oldSlot >= 0) lpiDoorbellUnmap(s, oldSlot);
    s.vpe[b + VPE_DB] = db;
    const slot = db === DOORBELL_NONE ? -1 : s.lpiSlot(db);
    if (slot >= 0) lpiDoorbellMap(s, mem, slot, rd);
    if (slot >= 0 && s.irqRouter[slot] === -1) lpiRetarget(s, slot, rd, -1);
  } else if (oldSlot >= 0 && s.irqRouter[oldSlot] === -1) lpiRetarget(s, oldSlot, rd, -1);
}

/** INVDB: the doorbell LPI's configuration is re-read. */
export function gvpeInvDb(s: GicState, mem: GuestMemory, p: number): void {
  const db = s.vpe[p * VPE_STRIDE + VPE_DB];
  const slot = db === DOORBELL_NONE ? -1 : s.lpiSlot(db);
  if (slot >= 0 && s.irqLpiRef[slot - s.lpiBase] !== 0) updateLpiConfig(s, mem, slot);
}

/** VSGI: vSGI `sgi` of p: priority, group, enable; with clear, its pending state goes. */
export function gvpeVsgi(
  s: GicState,
  p: number,
  sgi: number,
  prio: number,
  group1: boolean,
  enable: boolean,
  clear: boolean,
): void {
  const b = p * VPE_STRIDE;
  let cfg = s.vpe[b + VPE_VSGI_CFG] & ~((1 << sgi) | (1 << (16 + sgi)));
  if (enable) cfg |= 1 << sgi;
  if (group1) cfg |= 1 << (16 + sgi);
  s.vpe[b + VPE_VSGI_CFG] = cfg;
  const w = b + VPE_VSGI_PRIO + (sgi >>> 2);
  const sh = (sgi & 3) * 8;
  s.vpe[w] = (s.vpe[w] & ~(0xff << sh)) | ((prio & 0xff) << sh);
  const bit = 1 << sgi;
  if (clear) {
    if (s.shared) Atomics.and(s.vpe, b + VPE_VSGI, ~bit);
    else s.vpe[b + VPE_VSGI] &= ~bit;
  } else if (enable && s.vpe[b + VPE_VSGI] & bit) ringIfPending(s, p);
}

/**
 * GICR_VPENDBASER write with Valid on redistributor r: vPE p becomes resident there. Refused
 * (false: the write is ignored, the spec's UNPREDICTABLE) unless p is mapped, not resident
 * elsewhere, and r has no guest vPE resident.
 */
export function gvpeSchedule(s: GicState, r: number, p: number): boolean {
  if (!gvpeMapped(s, p) || loadState(s, p) & VPE_VALID) return false;
  const cur = s.vcpu[r * VCPU_STRIDE + V_VPE_ON] - 1;
  if (cur >= 0 && s.vpe[cur * VPE_STRIDE + VPE_MAP] !== 0 && loadState(s, cur) & VPE_VALID) return false;
  s.vcpu[r * VCPU_STRIDE + V_VPE_ON] = p + 1;
  s.vpe[p * VPE_STRIDE + VPE_RESIDENT_ON] = r;
  enterResidency(s, p);
  return true;
}

/**
 * GICR_VPENDBASER write without Valid on r: the guest vPE resident there leaves, with its
 * doorbell requested (DB) or not, its VPT written back to memory; PendingLast says whether an enabled interrupt of a group `vmcr`
 * enables (VENG0/VENG1: GICR_VPENDBASER's vGrp0En/vGrp1En) waits. r's CPU
 * interface presents the KVM layer's vPE of its vCPU again (unless the guest mapped that slot).
 */
export function gvpeDeschedule(
  s: GicState,
  mem: GuestMemory | undefined,
  r: number,
  db: boolean,
  vmcr = VMCR_ENG0 | VMCR_ENG1,
): void {
  const on = r * VCPU_STRIDE + V_VPE_ON;
  const p = s.vcpu[on] - 1;
  if (p < 0 || s.vpe[p * VPE_STRIDE + VPE_MAP] === 0 || (loadState(s, p) & VPE_VALID) === 0) return;
  leaveResidency(s, p, db, 0x100, vmcr);
  if (mem !== undefined) writeBackVpt(s, mem, p);
  s.vcpu[on] = s.vpe[r * VPE_STRIDE + VPE_MAP] === 0 ? r + 1 : 0;
}

/** The vPE slot resident by the guest on redistributor r, or -1. */
export function gvpeResidentOn(s: GicState, r: number): number {
  const p = s.vcpu[r * VCPU_STRIDE + V_VPE_ON] - 1;
  return p >= 0 && s.vpe[p * VPE_STRIDE + VPE_MAP] !== 0 && loadState(s, p) & VPE_VALID ? p : -1;
}
