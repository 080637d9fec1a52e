/**
 * The GICv2 CPU interface frame (GIC IHI 0048B §4.4), which a GICv2 guest reaches as the virtual
 * CPU interface (GICV_*, §5.3): KVM maps GICV at the guest's GICC address, so these accesses do
 * not exit: they act on the vCPU's list registers through core/gicv.ts, as icv.ts does for the
 * GICv3 system registers. EOIR/AEOIR/DIR leave their work for the hypervisor side (deactivation
 * in software, or of the timer's physical interrupt) in giccResult/giccIntid, which the vCPU's run
 * loop (device/vcpu.ts) takes after the access.
 *
 * giccUserFrame is KVM's vgic_v2_cpu_registers for KVM_DEV_ARM_VGIC_GRP_CPU_REGS (save/restore):
 * CTLR, PMR (as GICH_VMCR.VMPriMask: the five implemented bits, shifted down), BPR, ABPR, APR0-3
 * (APR1-3 RAZ/WI) and IIDR, without side effects.
 *
 * Who may call: the thread running vCPU `vcpu` (guest frame, in the guest); the host holding the
 * vCPU's run_lock (user frame). No locks taken.
 */

import {
  GICC_ABPR,
  GICC_AEOIR,
  GICC_AHPPIR,
  GICC_AIAR,
  GICC_APR0,
  GICC_BPR,
  GICC_CTLR,
  GICC_DIR,
  GICC_EOIR,
  GICC_FRAME_SIZE,
  GICC_HPPIR,
  GICC_IAR,
  GICC_IIDR,
  GICC_IIDR_KVM,
  GICC_NSAPR0,
  GICC_PMR,
  GICC_RPR,
} from '../arch/gicv2.ts';
import { W32 } from '../arch/gicv3.ts';
import { VGIC_PRI_MASK, VMCR_PMR_SHIFT } from '../arch/ich.ts';
import { gicvDir, gicvEoir, gicvHppir, gicvIar } from '../core/gicv.ts';
import { readVbpr, runningPriority, writeVbpr } from '../core/icv.ts';
import { V_AP1R0, V_VMCR, VCPU_STRIDE } from '../state/layout.ts';
import { readRaz, writeWi } from './irq-regs.ts';
import { buildFrame, type ReadFn, type RegisterDesc, reg, type WriteFn } from './region.ts';

/** GICV_CTLR's bits, which are ICH_VMCR_EL2's low bits (VENG0/1, VAckCtl, VFIQEn, VCBPR, VEOIM). */
const CTLR_BITS = 0x21f;

/** No deactivation work is waiting (giccResult). */
export const GICC_NO_WORK = -1;
/** The last guest GICC access's deactivation result (ICV_*), or GICC_NO_WORK; and its INTID. */
export let giccResult = GICC_NO_WORK;
export let giccIntid = 0;
/** Forgets the last access's work (the vCPU does this before each GICC access). */
export function giccClearWork(): void {
  giccResult = GICC_NO_WORK;
}

const vmcrIndex = (v: number): number => v * VCPU_STRIDE + V_VMCR;

const readCtlr: ReadFn = (c, v) => c.s.vcpu[vmcrIndex(v)] & CTLR_BITS;
const writeCtlr: WriteFn = (c, v, _at, _len, value) => {
  const i = vmcrIndex(v);
  c.s.vcpu[i] = (c.s.vcpu[i] & ~CTLR_BITS) | (value & CTLR_BITS);
};

const readPmr: ReadFn = (c, v) => (c.s.vcpu[vmcrIndex(v)] >>> VMCR_PMR_SHIFT) & 0xff;
const writePmr: WriteFn = (c, v, _at, _len, value) => {
  const i = vmcrIndex(v);
  c.s.vcpu[i] = (c.s.vcpu[i] & ~(0xff << VMCR_PMR_SHIFT)) | ((value & VGIC_PRI_MASK) << VMCR_PMR_SHIFT);
};

const readBpr: ReadFn = (c, v) => readVbpr(c.s, v, false);
const writeBpr: WriteFn = (c, v, _at, _len, value) => writeVbpr(c.s, v, false, value);
const readAbpr: ReadFn = (c, v) => readVbpr(c.s, v, true);
const writeAbpr: WriteFn = (c, v, _at, _len, value) => writeVbpr(c.s, v, true, value);

/** APR0 is GICH_APR (32 bits: one per 5-bit priority); APR1-3 are RAZ/WI with 32 levels. */
const readApr: ReadFn = (c, v, at) => (at === 0 ? c.s.vcpu[v * VCPU_STRIDE + V_AP1R0] >>> 0 : 0);
const writeApr: WriteFn = (c, v, at, _len, value) => {
  if (at === 0) c.s.vcpu[v * VCPU_STRIDE + V_AP1R0] = value | 0;
};

const eoi =
  (fn: (s: Parameters<typeof gicvEoir>[0], v: number, value: number) => number): WriteFn =>
  (c, v, _at, _len, value) => {
    giccResult = fn(c.s, v, value);
    giccIntid = value & 0x3ff;
  };

const regs: RegisterDesc[] = [
  reg('GICC_CTLR', GICC_CTLR, 4, W32, { read: readCtlr, write: writeCtlr }),
  reg('GICC_PMR', GICC_PMR, 4, W32, { read: readPmr, write: writePmr }),
  reg('GICC_BPR', GICC_BPR, 4, W32, { read: readBpr, write: writeBpr }),
  reg('GICC_IAR', GICC_IAR, 4, W32, { read: (c, v) => gicvIar(c.s, v, false) }),
  reg('GICC_EOIR', GICC_EOIR, 4, W32, { read: readRaz, write: eoi(gicvEoir) }),
  reg('GICC_RPR', GICC_RPR, 4, W32, { read: (c, v) => runningPriority(c.s, v) }),
  reg('GICC_HPPIR', GICC_HPPIR, 4, W32, { read: (c, v) => gicvHppir(c.s, v, false) }),
  reg('GICC_ABPR', GICC_ABPR, 4, W32, { read: readAbpr, write: writeAbpr }),
  reg('GICC_AIAR', GICC_AIAR, 4, W32, { read: (c, v) => gicvIar(c.s, v, true) }),
  reg('GICC_AEOIR', GICC_AEOIR, 4, W32, { read: readRaz, write: eoi(gicvEoir) }),
  reg('GICC_AHPPIR', GICC_AHPPIR, 4, W32, { read: (c, v) => gicvHppir(c.s, v, true) }),
  reg('GICC_APR', GICC_APR0, 16, W32, { read: readApr, write: writeApr }),
  reg('GICC_NSAPR', GICC_NSAPR0, 16, W32, { read: readRaz, write: writeWi }),
  reg('GICC_IIDR', GICC_IIDR, 4, W32, { read: () => GICC_IIDR_KVM }),
  reg('GICC_DIR', GICC_DIR, 4, W32, { read: readRaz, write: eoi(gicvDir) }),
];

/** The guest's GICC frame (8K): registers on the list registers, no exit. */
export const giccFrame = buildFrame('GICC', GICC_FRAME_SIZE, regs, () => 0);

/** GRP_CPU_REGS' PMR: the priority mask's five bits as GICH_VMCR.VMPriMask (KVM's device ABI). */
const ureadPmr: ReadFn = (c, v) => ((c.s.vcpu[vmcrIndex(v)] >>> VMCR_PMR_SHIFT) & 0xff) >>> 3;
const uwritePmr: WriteFn = (c, v, at, len, value) => writePmr(c, v, at, len, (value << 3) & 0xff);

const userRegs: RegisterDesc[] = [
  reg('GICC_CTLR', GICC_CTLR, 4, W32, { read: readCtlr, write: writeCtlr }),
  reg('GICC_PMR', GICC_PMR, 4, W32, { read: ureadPmr, write: uwritePmr }),
  reg('GICC_BPR', GICC_BPR, 4, W32, { read: readBpr, write: writeBpr }),
  reg('GICC_ABPR', GICC_ABPR, 4, W32, { read: readAbpr, write: writeAbpr }),
  reg('GICC_APR', GICC_APR0, 16, W32, { read: readApr, write: writeApr }),
  reg('GICC_IIDR', GICC_IIDR, 4, W32, { read: () => GICC_IIDR_KVM, write: writeWi }),
];

/** KVM_DEV_ARM_VGIC_GRP_CPU_REGS: the CPU interface state userspace saves and restores. */
export const giccUserFrame = buildFrame('GICC (userspace)', 0x100, userRegs, () => 0);
