/**
 * The GICv3 distributor frame (GIC IHI 0069 §12.9), as KVM's vgic-mmio-v3.c describes it:
 * ARE and DS always set, EnableGrp0/EnableGrp1, writes take effect at once (RWP reads 0).
 * The per-IRQ registers cover SPIs only: their first 32 INTIDs, and every INTID beyond the
 * implemented ones, are RAZ/WI (the dispatcher enforces this).
 *
 * Who may call: device/ through the dispatcher (mmio/region.ts).
 */

import {
  GIC_IIDR,
  GIC_PIDR2_ARCH_GICV3,
  GIC_PIDR2_ARCH_GICV4,
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_DS,
  GICD_CTLR_ENABLE_GRP0,
  GICD_CTLR_ENABLE_GRP1,
  GICD_CTLR_NASSGIREQ,
  GICD_FRAME_SIZE,
  GICD_IDREGS,
  GICD_IIDR,
  GICD_IROUTER,
  GICD_ITARGETSR,
  GICD_NSACR,
  GICD_STATUSR,
  GICD_TYPER,
  GICD_TYPER_IDBITS_SHIFT,
  GICD_TYPER_LPIS,
  GICD_TYPER_NO1N,
  GICD_TYPER2,
  GICD_TYPER2_NASSGICAP,
  W8,
  W32,
  W64,
} from '../arch/gicv3.ts';
import { GICD_TYPER2_VIL, vpeIdBits } from '../arch/gicv4.ts';
import { VGIC_FIRST_SPI, VGIC_MIN_LPI } from '../arch/intid.ts';
import { irqIsPendingEnabled, queueIrqUnlock } from '../core/irq.ts';
import { lockIrq } from '../core/locks.ts';
import { vcpuByAffinity } from '../core/sgi.ts';
import { D_CTLR, type GicState, H_FLAGS, IRQ_GROUP1 } from '../state/layout.ts';
import * as g from './irq-regs.ts';
import { buildFrame, perIrq, type ReadFn, type RegisterDesc, reg, type WriteFn } from './region.ts';

/** H_FLAGS bit: the GIC has LPIs (an ITS): GICD_TYPER.LPIS and IDbits = 16. */
export const FLAG_LPIS = 1 << 1;

const readCtlr: ReadFn = (c) => (c.s.dist[D_CTLR] & (3 | GICD_CTLR_NASSGIREQ)) | GICD_CTLR_ARE | GICD_CTLR_DS;

/**
 * GICD_CTLR write. Enabling a group re-offers every pending interrupt of that group to the target
 * oracle: while the group was disabled the oracle sent them nowhere.
 */
const writeCtlr: WriteFn = (c, _v, _at, _len, value) => {
  const s = c.s;
  const old = s.dist[D_CTLR];
  let now = value & (GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
  // nASSGIreq (GICv4.1 vSGIs, only with nASSGIcap) is RW only while EnableGrp1 is clear: it
  // keeps its value otherwise, so SGIs never change path with a group enabled.
  if (s.direct) {
    const keep = old & GICD_CTLR_ENABLE_GRP1 ? old : value;
    now |= keep & GICD_CTLR_NASSGIREQ;
  }
  s.dist[D_CTLR] = now;
  const enabled = now & ~old;
  if (enabled !== 0) requeueGroups(s, enabled);
};

export function requeueGroups(s: GicState, enabledBits: number): void {
  for (let slot = 0; slot < s.nSlots; slot++) {
    const f = s.irqFlags[slot];
    if (!irqIsPendingEnabled(f)) continue;
    const bit = f & IRQ_GROUP1 ? GICD_CTLR_ENABLE_GRP1 : GICD_CTLR_ENABLE_GRP0;
    if ((enabledBits & bit) === 0) continue;
    lockIrq(s, slot);
    queueIrqUnlock(s, slot);
  }
}

/** GICD_TYPER: ITLinesNumber from the SPIs, IDbits (16 with LPIs, else 10), LPIS, No1N. */
export function gicdTyper(s: GicState): number {
  const lpis = (s.header[H_FLAGS] & FLAG_LPIS) !== 0;
  const itLines = s.nrIrqs / 32 - 1;
  const idbits = lpis ? Math.log2(VGIC_MIN_LPI + s.nLpis) : 10;
  return (
    (itLines | ((idbits - 1) << GICD_TYPER_IDBITS_SHIFT) | (lpis ? GICD_TYPER_LPIS : 0) | GICD_TYPER_NO1N) >>>
    0
  );
}

/**
 * GICD_TYPER2: 0 without direct injection; with it nASSGIcap, VIL and VID = the vPEID bits - 1
 * (vPEIDs name vPE slots, one per vCPU: core/vpe-guest.ts).
 */
export function gicdTyper2(s: GicState): number {
  if (!s.direct) return 0;
  return GICD_TYPER2_NASSGICAP | GICD_TYPER2_VIL | (vpeIdBits(s.nVcpus) - 1);
}

/** GICD_IROUTER<n>: Aff0-2 are kept (Aff3 and Interrupt_Routing_Mode are RAZ/WI, as KVM). */
const readIrouter: ReadFn = (c, _v, at) => {
  const s = c.s;
  const intid = VGIC_FIRST_SPI + (at >>> 3);
  if (intid >= s.nrIrqs || (at & 4) !== 0) return 0;
  const r = s.irqRouter[s.slotOf(0, intid)];
  // Stored as Aff2 << 16 | Aff1 << 8 | Aff0, which is also the register's low word layout.
  return r >>> 0;
};

const writeIrouter: WriteFn = (c, _v, at, _len, value) => {
  const s = c.s;
  const intid = VGIC_FIRST_SPI + (at >>> 3);
  if (intid >= s.nrIrqs || (at & 4) !== 0) return;
  const slot = s.slotOf(0, intid);
  const aff = value & 0xffffff;
  lockIrq(s, slot);
  s.irqRouter[slot] = aff;
  s.irqTarget[slot] = vcpuByAffinity(s, 0, aff >>> 16, (aff >>> 8) & 0xff, aff & 0xff);
  // A pending interrupt may now belong elsewhere: the oracle decides at queue and prune time.
  queueIrqUnlock(s, slot);
};

/** The CoreSight ID block (PIDR4-7, PIDR0-3, CIDR0-3): only PIDR2 (ArchRev) carries information. */
export function readIdReg(offset: number, s?: GicState): number {
  if (offset !== 0x18) return 0;
  // ArchRev 4 (0x4b): a GICv4 (QEMU's gic-version=4 reports the same).
  return s?.direct ? GIC_PIDR2_ARCH_GICV4 : GIC_PIDR2_ARCH_GICV3;
}
const readIdregs: ReadFn = (c, _v, at) => readIdReg(at, c.s);

const NR = 1024; // per-IRQ registers describe all 1024 INTIDs; the dispatcher limits them

const regs: RegisterDesc[] = [
  reg('GICD_CTLR', GICD_CTLR, 4, W32, { read: readCtlr, write: writeCtlr }),
  reg('GICD_TYPER', GICD_TYPER, 4, W32, { read: (c) => gicdTyper(c.s) }),
  reg('GICD_IIDR', GICD_IIDR, 4, W32, { read: () => GIC_IIDR }),
  reg('GICD_TYPER2', GICD_TYPER2, 4, W32, { read: (c) => gicdTyper2(c.s) }),
  reg('GICD_STATUSR', GICD_STATUSR, 4, W32, { read: g.readRaz, write: g.writeWi }),
  ...g.sharedPerIrqRegisters('GICD', 0, NR),
  perIrq('GICD_ITARGETSR', GICD_ITARGETSR, 8, NR, W8 | W32, true, { read: g.readRaz, write: g.writeWi }),
  perIrq('GICD_NSACR', GICD_NSACR, 2, NR, W32, true, { read: g.readRaz, write: g.writeWi }),
  reg('GICD_IROUTER', GICD_IROUTER + 8 * VGIC_FIRST_SPI, 8 * (1020 - VGIC_FIRST_SPI), W32 | W64, {
    read: readIrouter,
    write: writeIrouter,
  }),
  reg('GICD_IDREGS', GICD_IDREGS, 0x30, W32, { read: readIdregs }),
];

export const distributorFrame = buildFrame('GICD', GICD_FRAME_SIZE, regs, (s) => s.nrIrqs);
