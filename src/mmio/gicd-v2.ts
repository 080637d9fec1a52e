/**
 * The GICv2 distributor frame (GIC IHI 0048B §4.3), as KVM's vgic-mmio-v2.c describes it: one
 * Enable bit gating both groups (KVM's dist->enabled), TYPER with CPUNumber, the per-IRQ registers
 * banked per CPU for INTIDs 0-31 (the accessing vCPU's), ITARGETSR (the first 32 read-only: each
 * CPU's own bit), GICD_SGIR with TargetListFilter 0-2 (3 is reserved: ignored), and the per-source
 * SGI pending registers CPENDSGIR/SPENDSGIR. Byte access is allowed where the spec requires it
 * (IPRIORITYR, ITARGETSR, CPENDSGIR, SPENDSGIR).
 *
 * Who may call: device/ through the dispatcher (mmio/region.ts), on behalf of a vCPU that exited.
 * Locks: irq_locks; changes to SGI sources an LR may hold halt its vCPU first (haltOwnerOf).
 */

import {
  GIC_PIDR2_ARCH_GICV2,
  GICD_TYPER_CPUNUMBER_SHIFT,
  GICD_V2_ENABLE,
  GICD_V2_FRAME_SIZE,
  GICD_V2_IDREGS,
  SGIR_FILTER_LIST,
  SGIR_FILTER_OTHERS,
  SGIR_FILTER_SELF,
  SGIR_FILTER_SHIFT,
  SGIR_INTID_MASK,
  SGIR_TARGETLIST_SHIFT,
} from '../arch/gicv2.ts';
import {
  GIC_IIDR,
  GICD_CPENDSGIR,
  GICD_CTLR,
  GICD_CTLR_ENABLE_GRP0,
  GICD_CTLR_ENABLE_GRP1,
  GICD_IIDR,
  GICD_ITARGETSR,
  GICD_SGIR,
  GICD_SPENDSGIR,
  GICD_TYPER,
  W8,
  W32,
} from '../arch/gicv3.ts';
import { VGIC_NR_PRIVATE_IRQS } from '../arch/intid.ts';
import { queueIrqUnlock } from '../core/irq.ts';
import { lockIrq } from '../core/locks.ts';
import { haltOwnerOf, migrateFrom, resumeVcpu } from '../core/vgic.ts';
import {
  D_CTLR,
  type GicState,
  IRQ_PENDING_LATCH,
  S_SGI_NO_TARGET,
  SGI_SOURCE_MASK,
} from '../state/layout.ts';
import { requeueGroups } from './gicd.ts';
import * as g from './irq-regs.ts';
import { buildFrame, perIrq, type ReadFn, type RegisterDesc, reg, type WriteFn } from './region.ts';

const BOTH_GROUPS = GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1;

/** GICD_CTLR.Enable: forwarding of both groups (the oracle reads it as the two group enables). */
const readCtlr: ReadFn = (c) => ((c.s.dist[D_CTLR] & BOTH_GROUPS) !== 0 ? GICD_V2_ENABLE : 0);

const writeCtlr: WriteFn = (c, _v, _at, _len, value) => {
  const s = c.s;
  const old = s.dist[D_CTLR];
  const now = value & GICD_V2_ENABLE ? BOTH_GROUPS : 0;
  s.dist[D_CTLR] = now;
  if (now & ~old) requeueGroups(s, now & ~old);
};

/** GICD_TYPER: ITLinesNumber and CPUNumber; no Security Extensions. */
export function gicdV2Typer(s: GicState): number {
  return (s.nrIrqs / 32 - 1) | ((s.nVcpus - 1) << GICD_TYPER_CPUNUMBER_SHIFT);
}

/** The CPU targets mask of an SPI (ITARGETSR byte) → its target vCPU: the lowest one, -1 for none. */
export function targetsToVcpu(targets: number): number {
  return targets === 0 ? -1 : 31 - Math.clz32(targets & -targets);
}

/**
 * ITARGETSR: a private interrupt reads its own CPU's bit; an SPI its targets byte. With one CPU
 * interface every ITARGETSR is RAZ/WI and every SPI goes to it (IHI 0048B §4.3.12, as QEMU; KVM
 * shows the bits anyway).
 */
const readTargets: ReadFn = (c, vcpu, intid, len) => {
  const s = c.s;
  if (s.nVcpus === 1) return 0;
  let value = 0;
  for (let i = 0; i < len; i++) {
    const id = intid + i;
    const t = id < VGIC_NR_PRIVATE_IRQS ? 1 << vcpu : s.irqRouter[s.slotOf(0, id)] & 0xff;
    value |= t << (8 * i);
  }
  return value >>> 0;
};

/**
 * ITARGETSR write (vgic_mmio_write_target): bits of CPUs that do not exist are dropped. The
 * interrupt goes to the lowest CPU of its list (KVM's 1-of-N choice); an empty list forwards it to
 * no CPU (the architecture; KVM would still deliver to vCPU 0). An interrupt queued on another
 * vCPU's ap_list migrates at once, so retargeting while pending takes effect without waiting for
 * that vCPU's next exit.
 */
const writeTargets: WriteFn = (c, _v, intid, len, value) => {
  const s = c.s;
  // GICD_ITARGETSR0-7 are read-only; a uniprocessor's are all RAZ/WI.
  if (intid < VGIC_NR_PRIVATE_IRQS || s.nVcpus === 1) return;
  const cpuMask = (1 << s.nVcpus) - 1;
  for (let i = 0; i < len; i++) {
    const slot = s.slotOf(0, intid + i);
    const targets = (value >>> (8 * i)) & cpuMask;
    lockIrq(s, slot);
    s.irqRouter[slot] = targets;
    s.irqTarget[slot] = targetsToVcpu(targets);
    const on = s.irqApVcpu[slot];
    const moved = on >= 0 && on !== s.irqTarget[slot];
    queueIrqUnlock(s, slot);
    if (moved) migrateFrom(s, on);
  }
};

/**
 * GICD_SGIR (vgic_mmio_write_sgir): SGI INTID [3:0], CPUTargetList [23:16], TargetListFilter
 * [25:24]: 0 the list, 1 every CPU but the sender, 2 the sender only, 3 reserved (ignored). Each
 * target's SGI becomes pending from the sender (its bit in the SGI's sources).
 */
const writeSgir: WriteFn = (c, self, _at, _len, value) => {
  const s = c.s;
  const sgi = value & SGIR_INTID_MASK;
  const filter = (value >>> SGIR_FILTER_SHIFT) & 3;
  const all = (1 << s.nVcpus) - 1;
  let targets: number;
  if (filter === SGIR_FILTER_LIST) {
    targets = (value >>> SGIR_TARGETLIST_SHIFT) & 0xff;
    if (targets & ~all) s.stats[S_SGI_NO_TARGET]++;
    targets &= all;
  } else if (filter === SGIR_FILTER_OTHERS) targets = all & ~(1 << self);
  else if (filter === SGIR_FILTER_SELF) targets = 1 << self;
  else return;
  for (; targets !== 0; targets &= targets - 1) {
    const t = 31 - Math.clz32(targets & -targets);
    const slot = s.slotOf(t, sgi);
    lockIrq(s, slot);
    s.irqRouter[slot] |= 1 << self;
    s.irqFlags[slot] |= IRQ_PENDING_LATCH;
    queueIrqUnlock(s, slot);
  }
};

/** CPENDSGIR/SPENDSGIR read: one byte per SGI, a bit per source (sources in an LR folded back first). */
const readSgiPend: ReadFn = (c, vcpu, at, len) => {
  const s = c.s;
  let value = 0;
  for (let i = 0; i < len; i++) {
    const slot = s.slotOf(vcpu, (at & 0xf) + i);
    const h = haltOwnerOf(s, slot);
    value |= (s.irqRouter[slot] & SGI_SOURCE_MASK) << (8 * i);
    resumeVcpu(s, h);
  }
  return value >>> 0;
};

/** CPENDSGIR: clears sources; an SGI left without one is no longer pending. */
const writeSgiPendClear: WriteFn = (c, vcpu, at, len, value) => {
  const s = c.s;
  for (let i = 0; i < len; i++) {
    const clear = (value >>> (8 * i)) & 0xff;
    if (clear === 0) continue;
    const slot = s.slotOf(vcpu, (at & 0xf) + i);
    const h = haltOwnerOf(s, slot);
    lockIrq(s, slot);
    const src = s.irqRouter[slot] & SGI_SOURCE_MASK & ~clear;
    s.irqRouter[slot] = (s.irqRouter[slot] & ~SGI_SOURCE_MASK) | src;
    if (src === 0) s.irqFlags[slot] &= ~IRQ_PENDING_LATCH;
    queueIrqUnlock(s, slot);
    resumeVcpu(s, h);
  }
};

/** SPENDSGIR: adds sources (any of the 8 CPU bits, as KVM) and makes the SGI pending. */
const writeSgiPendSet: WriteFn = (c, vcpu, at, len, value) => {
  const s = c.s;
  for (let i = 0; i < len; i++) {
    const set = (value >>> (8 * i)) & 0xff;
    if (set === 0) continue;
    const slot = s.slotOf(vcpu, (at & 0xf) + i);
    lockIrq(s, slot);
    s.irqRouter[slot] |= set;
    s.irqFlags[slot] |= IRQ_PENDING_LATCH;
    queueIrqUnlock(s, slot);
  }
};

/** The CoreSight ID block: PIDR2 carries ArchRev 2. */
const readIdregs: ReadFn = (_c, _v, at) => (at === 0x18 ? GIC_PIDR2_ARCH_GICV2 : 0);

const NR = 1024;

const regs: RegisterDesc[] = [
  reg('GICD_CTLR', GICD_CTLR, 4, W32, { read: readCtlr, write: writeCtlr }),
  reg('GICD_TYPER', GICD_TYPER, 4, W32, { read: (c) => gicdV2Typer(c.s) }),
  reg('GICD_IIDR', GICD_IIDR, 4, W32, { read: () => GIC_IIDR }),
  ...g.sharedPerIrqRegisters('GICD', 0, NR, true),
  perIrq('GICD_ITARGETSR', GICD_ITARGETSR, 8, NR, W8 | W32, false, {
    read: readTargets,
    write: writeTargets,
  }),
  reg('GICD_SGIR', GICD_SGIR, 4, W32, { read: g.readRaz, write: writeSgir }),
  reg('GICD_CPENDSGIR', GICD_CPENDSGIR, 16, W8 | W32, { read: readSgiPend, write: writeSgiPendClear }),
  reg('GICD_SPENDSGIR', GICD_SPENDSGIR, 16, W8 | W32, { read: readSgiPend, write: writeSgiPendSet }),
  reg('GICD_IDREGS', GICD_V2_IDREGS, 0x30, W32, { read: readIdregs }),
];

/** The GICv2 distributor: 4K, per-IRQ registers up to the implemented INTIDs. */
export const distributorV2Frame = buildFrame('GICD', GICD_V2_FRAME_SIZE, regs, (s) => s.nrIrqs);
