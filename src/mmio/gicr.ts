/**
 * The GICv3 redistributor frames (GIC IHI 0069 §12.10): RD_base (control, identification, LPI
 * configuration) and SGI_base (the per-IRQ registers of the PE's SGIs and PPIs), 64K each.
 * GICR_WAKER reads as awake and delivery is never gated on it, as in KVM: guests and test suites
 * that never write it must still get interrupts.
 *
 * Who may call: device/ through the dispatcher, with `vcpu` = the redistributor's vCPU.
 */

import {
  GIC_IIDR,
  GICR_CTLR,
  GICR_CTLR_CES,
  GICR_CTLR_ENABLE_LPIS,
  GICR_CTLR_IR,
  GICR_CTLR_RWP,
  GICR_IDREGS,
  GICR_IIDR,
  GICR_INVALLR,
  GICR_INVLPIR,
  GICR_NSACR,
  GICR_PENDBASER,
  GICR_PROPBASER,
  GICR_SGI_BASE,
  GICR_STATUSR,
  GICR_STRIDE_V3,
  GICR_SYNCR,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_TYPER_PLPIS,
  GICR_TYPER_PROCNUM_SHIFT,
  GICR_WAKER,
  W32,
  W64,
} from '../arch/gicv3.ts';
import {
  GICR_INV_HI_V,
  GICR_STRIDE_V4,
  GICR_TYPER_RVPEID,
  GICR_TYPER_VLPIS,
  GICR_VPENDBASER,
  GICR_VPROPBASER,
  GICR_VSGIPENDR,
  GICR_VSGIR,
  ITS_VPE_ENTRY_SIZE,
  VPENDBASER_HI_DB,
  VPENDBASER_HI_PENDING_LAST,
  VPENDBASER_HI_VALID,
  VPENDBASER_HI_VGRP0EN,
  VPENDBASER_HI_VGRP1EN,
  VPENDBASER_LO_VPEID,
  VPROPBASER_HI_ESZ_SHIFT,
  VPROPBASER_HI_RW,
  VPROPBASER_LO_RW,
} from '../arch/gicv4.ts';
import { VMCR_ENG0, VMCR_ENG1 } from '../arch/ich.ts';
import {
  GICR_PENDBASER_HI_PTZ,
  GICR_PENDBASER_HI_RW,
  GICR_PENDBASER_LO_RW,
  GICR_PROPBASER_HI_RW,
  GICR_PROPBASER_LO_RW,
} from '../arch/its.ts';
import { disableLpis, enableLpis, invallLpis, updateLpiConfig } from '../core/lpi.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import {
  gvpeDeschedule,
  gvpeInv,
  gvpeMapped,
  gvpeReadConfig,
  gvpeResidentOn,
  gvpeSchedule,
} from '../core/vpe-guest.ts';
import { cacheInvalidateAll } from '../its/cache.ts';
import {
  D_PROPBASER_HI,
  D_PROPBASER_LO,
  type GicState,
  H_FLAGS,
  RD_LAST,
  V_INV_LO,
  V_LPI_CTLR,
  V_PENDBASER_HI,
  V_PENDBASER_LO,
  V_RD_FLAGS,
  V_VPENDBASER,
  V_VPROPBASER_HI,
  V_VPROPBASER_LO,
  V_VSGIR,
  VCPU_STRIDE,
  VPE_PENDING_LAST,
  VPE_STATE,
  VPE_STRIDE,
  VPE_VSGI,
} from '../state/layout.ts';
import { FLAG_LPIS, readIdReg } from './gicd.ts';
import * as g from './irq-regs.ts';
import { buildFrame, type ReadFn, type RegisterDesc, reg, type WriteFn } from './region.ts';

const hasLpis = (flags: number): boolean => (flags & FLAG_LPIS) !== 0;

const readCtlr: ReadFn = (c, v) =>
  hasLpis(c.s.header[H_FLAGS]) ? c.s.vcpu[v * VCPU_STRIDE + V_LPI_CTLR] | GICR_CTLR_IR | GICR_CTLR_CES : 0;

/**
 * GICR_CTLR.EnableLPIs (vgic_mmio_write_v3r_ctlr): each transition runs once (a compare-exchange
 * from the old state, RWP while disabling). Disabling writes the pending latches back to the
 * pending table and invalidates every ITS's translation cache.
 */
const writeCtlr: WriteFn = (c, v, _at, _len, value) => {
  const s = c.s;
  if (!hasLpis(s.header[H_FLAGS])) return;
  const i = v * VCPU_STRIDE + V_LPI_CTLR;
  if (value & GICR_CTLR_ENABLE_LPIS) {
    if (Atomics.compareExchange(s.vcpu, i, 0, GICR_CTLR_ENABLE_LPIS) !== 0) return;
    enableLpis(s, c.mem, v);
  } else {
    if (Atomics.compareExchange(s.vcpu, i, GICR_CTLR_ENABLE_LPIS, GICR_CTLR_RWP) !== GICR_CTLR_ENABLE_LPIS)
      return;
    disableLpis(s, c.mem, v);
    cacheInvalidateAll(s);
    Atomics.store(s.vcpu, i, 0);
  }
};

const lpisOn = (s: GicState, v: number): boolean =>
  (s.vcpu[v * VCPU_STRIDE + V_LPI_CTLR] & GICR_CTLR_ENABLE_LPIS) !== 0;

/** GICR_PROPBASER: one register shared by all redistributors; ignored while this one has LPIs on. */
const readPropbaser: ReadFn = (c, _v, at) => c.s.dist[at === 0 ? D_PROPBASER_LO : D_PROPBASER_HI];
const writePropbaser: WriteFn = (c, v, at, _len, value) => {
  if (!hasLpis(c.s.header[H_FLAGS]) || lpisOn(c.s, v)) return;
  if (at === 0) c.s.dist[D_PROPBASER_LO] = value & GICR_PROPBASER_LO_RW;
  else c.s.dist[D_PROPBASER_HI] = value & GICR_PROPBASER_HI_RW;
};

/** GICR_PENDBASER: PTZ reads as zero (it only matters when LPIs get enabled). */
const readPendbaser: ReadFn = (c, v, at) =>
  at === 0
    ? c.s.vcpu[v * VCPU_STRIDE + V_PENDBASER_LO]
    : c.s.vcpu[v * VCPU_STRIDE + V_PENDBASER_HI] & ~GICR_PENDBASER_HI_PTZ;
const writePendbaser: WriteFn = (c, v, at, _len, value) => {
  if (!hasLpis(c.s.header[H_FLAGS]) || lpisOn(c.s, v)) return;
  if (at === 0) c.s.vcpu[v * VCPU_STRIDE + V_PENDBASER_LO] = value & GICR_PENDBASER_LO_RW;
  else c.s.vcpu[v * VCPU_STRIDE + V_PENDBASER_HI] = value & GICR_PENDBASER_HI_RW;
};

/**
 * GICR_INVLPIR: re-read one LPI's property byte (the low word's write). GICv4.1 (direct
 * injection): a high word with V (bit 31) then re-reads vINTID (the low word) of the vPE its
 * vPEID names; the low word acted as a physical invalidation already, which changes nothing
 * cached (it re-reads a byte).
 */
const writeInvlpir: WriteFn = (c, v, at, _len, value) => {
  const s = c.s;
  if (at !== 0) {
    if (s.direct && value & GICR_INV_HI_V) {
      const p = value & 0xffff;
      if (gvpeMapped(s, p)) gvpeInv(s, c.mem, p, s.vcpu[v * VCPU_STRIDE + V_INV_LO] >>> 0);
    }
    return;
  }
  if (s.direct) s.vcpu[v * VCPU_STRIDE + V_INV_LO] = value;
  if (!lpisOn(s, v)) return;
  const slot = s.lpiSlot(value >>> 0);
  if (slot >= 0 && s.irqLpiRef[slot - s.lpiBase] !== 0) updateLpiConfig(s, c.mem, slot);
};

/**
 * GICR_INVALLR: re-read the property bytes of every LPI that targets this redistributor (the low
 * word's write); GICv4.1: a high word with V re-reads every vLPI's of the vPE its vPEID names.
 */
const writeInvallr: WriteFn = (c, v, at, _len, value) => {
  const s = c.s;
  if (at !== 0) {
    if (s.direct && value & GICR_INV_HI_V) {
      const p = value & 0xffff;
      if (gvpeMapped(s, p)) gvpeReadConfig(s, c.mem, p);
    }
    return;
  }
  if (lpisOn(s, v)) invallLpis(s, c.mem, v);
};

// ---- GICv4.1 VLPI_base frame (direct injection only) ----

/** GICR_VPROPBASER (4.1 format): a view of the vPE configuration table; Entry_Size is RO. */
const readVpropbaser: ReadFn = (c, v, at) =>
  c.s.vcpu[v * VCPU_STRIDE + (at === 0 ? V_VPROPBASER_LO : V_VPROPBASER_HI)];
const writeVpropbaser: WriteFn = (c, v, at, _len, value) => {
  const b = v * VCPU_STRIDE;
  if (at === 0) c.s.vcpu[b + V_VPROPBASER_LO] = value & VPROPBASER_LO_RW;
  else
    c.s.vcpu[b + V_VPROPBASER_HI] =
      (value & VPROPBASER_HI_RW) | ((ITS_VPE_ENTRY_SIZE - 1) << VPROPBASER_HI_ESZ_SHIFT);
};

/**
 * GICR_VPENDBASER (4.1 format). Valid reads 1 while a guest vPE is resident here; PendingLast is
 * the last named vPE's once it left; Dirty is always 0 (residency changes complete in the write).
 */
const readVpendbaser: ReadFn = (c, v, at) => {
  const s = c.s;
  const last = s.vcpu[v * VCPU_STRIDE + V_VPENDBASER];
  const p = last & VPENDBASER_LO_VPEID;
  if (at === 0) return p;
  let hi = 0;
  if (last & (1 << 16)) hi |= VPENDBASER_HI_VGRP0EN;
  if (last & (1 << 17)) hi |= VPENDBASER_HI_VGRP1EN;
  if (gvpeResidentOn(s, v) >= 0) hi |= VPENDBASER_HI_VALID;
  else {
    if (last & (1 << 18)) hi |= VPENDBASER_HI_DB;
    if (p < s.nVcpus && gvpeMapped(s, p) && (s.vpe[p * VPE_STRIDE + VPE_STATE] & VPE_PENDING_LAST) !== 0)
      hi |= VPENDBASER_HI_PENDING_LAST;
  }
  return hi >>> 0;
};

/**
 * GICR_VPENDBASER write: the low word (vPEID) is kept; the high word acts — Valid 0 → 1 makes the
 * named vPE resident (ignored if it is not mapped, resident elsewhere, or another is resident
 * here: UNPREDICTABLE), Valid 1 → 0 makes it leave (DB: its doorbell is wanted).
 */
const writeVpendbaser: WriteFn = (c, v, at, _len, value) => {
  const s = c.s;
  const w = v * VCPU_STRIDE + V_VPENDBASER;
  if (at === 0) {
    // The vPEID of a resident vPE cannot change under it (UNPREDICTABLE): kept.
    if (gvpeResidentOn(s, v) < 0)
      s.vcpu[w] = (s.vcpu[w] & ~VPENDBASER_LO_VPEID) | (value & VPENDBASER_LO_VPEID);
    return;
  }
  const g0 = (value & VPENDBASER_HI_VGRP0EN) !== 0;
  const g1 = (value & VPENDBASER_HI_VGRP1EN) !== 0;
  const db = (value & VPENDBASER_HI_DB) !== 0;
  const p = s.vcpu[w] & VPENDBASER_LO_VPEID;
  const resident = gvpeResidentOn(s, v);
  if (value & VPENDBASER_HI_VALID) {
    if (resident >= 0 || !gvpeSchedule(s, v, p)) return;
    s.vcpu[w] = p | (g0 ? 1 << 16 : 0) | (g1 ? 1 << 17 : 0);
  } else if (resident >= 0) {
    const last = s.vcpu[w];
    gvpeDeschedule(s, c.mem, v, db, (last & (1 << 16) ? VMCR_ENG0 : 0) | (last & (1 << 17) ? VMCR_ENG1 : 0));
    s.vcpu[w] = resident | (last & (3 << 16)) | (db ? 1 << 18 : 0);
  } else {
    s.vcpu[w] =
      (s.vcpu[w] & VPENDBASER_LO_VPEID) | (g0 ? 1 << 16 : 0) | (g1 ? 1 << 17 : 0) | (db ? 1 << 18 : 0);
  }
};

/** GICR_VSGIR: names the vPE whose vSGI pending bits GICR_VSGIPENDR then reports. */
const writeVsgir: WriteFn = (c, v, _at, _len, value) => {
  c.s.vcpu[v * VCPU_STRIDE + V_VSGIR] = value & 0xffff;
};

/** GICR_VSGIPENDR: Busy never reads 1 (the query completed in the GICR_VSGIR write); Pending 15:0. */
const readVsgipendr: ReadFn = (c, v) => {
  const s = c.s;
  const p = s.vcpu[v * VCPU_STRIDE + V_VSGIR];
  return p < s.nVcpus ? s.vpe[p * VPE_STRIDE + VPE_VSGI] & 0xffff : 0;
};

/**
 * GICR_TYPER: low word Processor_Number, Last, PLPIS, and with direct injection VLPIS and RVPEID
 * (GICv4.1: VPENDBASER names a vPEID); high word Aff3.Aff2.Aff1.Aff0.
 */
const readTyper: ReadFn = (c, v, at) => {
  if (at === 4) return vcpuAffinity(v);
  const s = c.s;
  const last = s.vcpu[v * VCPU_STRIDE + V_RD_FLAGS] & RD_LAST ? GICR_TYPER_LAST : 0;
  const v4 = s.direct ? GICR_TYPER_VLPIS | GICR_TYPER_RVPEID : 0;
  return (
    ((v << GICR_TYPER_PROCNUM_SHIFT) | last | v4 | (hasLpis(s.header[H_FLAGS]) ? GICR_TYPER_PLPIS : 0)) >>> 0
  );
};

const N = 32;

const regs: RegisterDesc[] = [
  reg('GICR_CTLR', GICR_CTLR, 4, W32, { read: readCtlr, write: writeCtlr }),
  reg('GICR_IIDR', GICR_IIDR, 4, W32, { read: () => GIC_IIDR }),
  reg('GICR_TYPER', GICR_TYPER, 8, W32 | W64, { read: readTyper }),
  reg('GICR_STATUSR', GICR_STATUSR, 4, W32, { read: g.readRaz, write: g.writeWi }),
  reg('GICR_WAKER', GICR_WAKER, 4, W32, { read: g.readRaz, write: g.writeWi }),
  reg('GICR_PROPBASER', GICR_PROPBASER, 8, W32 | W64, { read: readPropbaser, write: writePropbaser }),
  reg('GICR_PENDBASER', GICR_PENDBASER, 8, W32 | W64, { read: readPendbaser, write: writePendbaser }),
  reg('GICR_INVLPIR', GICR_INVLPIR, 8, W32 | W64, { read: g.readRaz, write: writeInvlpir }),
  reg('GICR_INVALLR', GICR_INVALLR, 8, W32 | W64, { read: g.readRaz, write: writeInvallr }),
  reg('GICR_SYNCR', GICR_SYNCR, 4, W32, { read: g.readRaz }),
  reg('GICR_IDREGS', GICR_IDREGS, 0x30, W32, { read: (c, _v, at) => readIdReg(at, c.s) }),
  ...g.sharedPerIrqRegisters('GICR', GICR_SGI_BASE, N),
  reg('GICR_NSACR', GICR_NSACR, 4, W32, { read: g.readRaz, write: g.writeWi }),
];

export const redistributorFrame = buildFrame('GICR', GICR_STRIDE_V3, regs, () => N);

/** The GICv4.1 redistributor (direct injection): RD_base, SGI_base, VLPI_base, a reserved frame. */
export const redistributorFrameV4 = buildFrame(
  'GICR',
  GICR_STRIDE_V4,
  [
    ...regs,
    reg('GICR_VPROPBASER', GICR_VPROPBASER, 8, W32 | W64, { read: readVpropbaser, write: writeVpropbaser }),
    reg('GICR_VPENDBASER', GICR_VPENDBASER, 8, W32 | W64, { read: readVpendbaser, write: writeVpendbaser }),
    reg('GICR_VSGIR', GICR_VSGIR, 4, W32, { read: g.readRaz, write: writeVsgir }),
    reg('GICR_VSGIPENDR', GICR_VSGIPENDR, 4, W32, { read: readVsgipendr }),
  ],
  () => N,
);
