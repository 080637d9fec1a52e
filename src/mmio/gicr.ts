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
  GICR_CTLR_IR,
  GICR_IDREGS,
  GICR_IIDR,
  GICR_NSACR,
  GICR_SGI_BASE,
  GICR_STATUSR,
  GICR_STRIDE_V3,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_TYPER_PLPIS,
  GICR_TYPER_PROCNUM_SHIFT,
  GICR_WAKER,
  W32,
  W64,
} from '../arch/gicv3.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import { H_FLAGS, RD_LAST, V_RD_FLAGS, VCPU_STRIDE } from '../state/layout.ts';
import { FLAG_LPIS, readIdReg } from './gicd.ts';
import * as g from './irq-regs.ts';
import { buildFrame, type ReadFn, type RegisterDesc, reg } from './region.ts';

const hasLpis = (flags: number): boolean => (flags & FLAG_LPIS) !== 0;

const readCtlr: ReadFn = (c) => (hasLpis(c.s.header[H_FLAGS]) ? GICR_CTLR_IR | GICR_CTLR_CES : 0);

/** GICR_TYPER: low word Processor_Number, Last, PLPIS; high word Aff3.Aff2.Aff1.Aff0. */
const readTyper: ReadFn = (c, v, at) => {
  if (at === 4) return vcpuAffinity(v);
  const s = c.s;
  const last = s.vcpu[v * VCPU_STRIDE + V_RD_FLAGS] & RD_LAST ? GICR_TYPER_LAST : 0;
  return ((v << GICR_TYPER_PROCNUM_SHIFT) | last | (hasLpis(s.header[H_FLAGS]) ? GICR_TYPER_PLPIS : 0)) >>> 0;
};

const N = 32;

const regs: RegisterDesc[] = [
  reg('GICR_CTLR', GICR_CTLR, 4, W32, { read: readCtlr, write: g.writeWi }),
  reg('GICR_IIDR', GICR_IIDR, 4, W32, { read: () => GIC_IIDR }),
  reg('GICR_TYPER', GICR_TYPER, 8, W32 | W64, { read: readTyper }),
  reg('GICR_STATUSR', GICR_STATUSR, 4, W32, { read: g.readRaz, write: g.writeWi }),
  reg('GICR_WAKER', GICR_WAKER, 4, W32, { read: g.readRaz, write: g.writeWi }),
  reg('GICR_IDREGS', GICR_IDREGS, 0x30, W32, { read: (_c, _v, at) => readIdReg(at) }),
  ...g.sharedPerIrqRegisters('GICR', GICR_SGI_BASE, N),
  reg('GICR_NSACR', GICR_NSACR, 4, W32, { read: g.readRaz, write: g.writeWi }),
];

export const redistributorFrame = buildFrame('GICR', GICR_STRIDE_V3, regs, () => N);
