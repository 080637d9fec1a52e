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
  GICR_PENDBASER_HI_PTZ,
  GICR_PENDBASER_HI_RW,
  GICR_PENDBASER_LO_RW,
  GICR_PROPBASER_HI_RW,
  GICR_PROPBASER_LO_RW,
} from '../arch/its.ts';
import { disableLpis, enableLpis, invallLpis, updateLpiConfig } from '../core/lpi.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import { cacheInvalidateAll } from '../its/cache.ts';
import {
  D_PROPBASER_HI,
  D_PROPBASER_LO,
  type GicState,
  H_FLAGS,
  RD_LAST,
  V_LPI_CTLR,
  V_PENDBASER_HI,
  V_PENDBASER_LO,
  V_RD_FLAGS,
  VCPU_STRIDE,
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

/** GICR_INVLPIR: re-read one LPI's property byte. */
const writeInvlpir: WriteFn = (c, v, at, _len, value) => {
  const s = c.s;
  if (at !== 0 || !lpisOn(s, v)) return;
  const slot = s.lpiSlot(value >>> 0);
  if (slot >= 0 && s.irqLpiRef[slot - s.lpiBase] !== 0) updateLpiConfig(s, c.mem, slot);
};

/** GICR_INVALLR: re-read the property bytes of every LPI that targets this redistributor. */
const writeInvallr: WriteFn = (c, v, at) => {
  if (at === 0 && lpisOn(c.s, v)) invallLpis(c.s, c.mem, v);
};

/** GICR_TYPER: low word Processor_Number, Last, PLPIS; high word Aff3.Aff2.Aff1.Aff0. */
const readTyper: ReadFn = (c, v, at) => {
  if (at === 4) return vcpuAffinity(v);
  const s = c.s;
  const last = s.vcpu[v * VCPU_STRIDE + V_RD_FLAGS] & RD_LAST ? GICR_TYPER_LAST : 0;
  return ((v << GICR_TYPER_PROCNUM_SHIFT) | last | (hasLpis(s.header[H_FLAGS]) ? GICR_TYPER_PLPIS : 0)) >>> 0;
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
  reg('GICR_IDREGS', GICR_IDREGS, 0x30, W32, { read: (_c, _v, at) => readIdReg(at) }),
  ...g.sharedPerIrqRegisters('GICR', GICR_SGI_BASE, N),
  reg('GICR_NSACR', GICR_NSACR, 4, W32, { read: g.readRaz, write: g.writeWi }),
];

export const redistributorFrame = buildFrame('GICR', GICR_STRIDE_V3, regs, () => N);
