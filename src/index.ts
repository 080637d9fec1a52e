/**
 * vgic: the ARM Generic Interrupt Controller (GICv3) as a virtual device, built the way KVM's
 * vgic is built. The core entry point (`vgic`): nothing in its import graph is host-specific and
 * no module has a top-level side effect, so it runs in Node, in browsers and in Web Workers, and
 * bundles without stubs. The Node-only parts have their own entries: `vgic/machine` (the AArch64
 * machine) and `vgic/runtime` (worker-thread programs).
 */

export { VgicError, type VgicErrorCode } from './arch/errors.ts';
/**
 * GICv2 (Vgic.create({ gicVersion: 2 })): QEMU virt's map, the GICv2-only distributor fields and
 * the CPU interface frame's register offsets (GIC IHI 0048B §4.3-4.4). The distributor's shared
 * offsets (GICD_CTLR, GICD_ISENABLER, GICD_ITARGETSR, GICD_SGIR, GICD_CPENDSGIR, …) are the GICv3
 * names below, which GICv2 defined first.
 */
export {
  GIC_PIDR2_ARCH_GICV2,
  GICC_ABPR,
  GICC_AEOIR,
  GICC_AHPPIR,
  GICC_AIAR,
  GICC_APR0,
  GICC_BPR,
  GICC_CTLR,
  GICC_CTLR_ACKCTL,
  GICC_CTLR_CBPR,
  GICC_CTLR_ENABLE_GRP0,
  GICC_CTLR_ENABLE_GRP1,
  GICC_CTLR_EOIMODE,
  GICC_CTLR_FIQEN,
  GICC_DIR,
  GICC_EOIR,
  GICC_FRAME_SIZE,
  GICC_HPPIR,
  GICC_IAR,
  GICC_IAR_CPUID_SHIFT,
  GICC_IIDR,
  GICC_NSAPR0,
  GICC_PMR,
  GICC_RPR,
  GICD_TYPER_CPUNUMBER_SHIFT,
  GICD_V2_ENABLE,
  GICD_V2_FRAME_SIZE,
  VGIC_V2_MAX_CPUS,
  VIRT_V2_GICC_BASE,
  VIRT_V2_GICD_BASE,
} from './arch/gicv2.ts';
export * from './arch/gicv3.ts';
export * from './arch/intid.ts';
export * from './arch/its.ts';
export * from './arch/sysreg.ts';
export { LockRecursionError, MAIN_OWNER_ID, setLockOwnerId } from './core/locks.ts';
export { Its, type ItsStats } from './device/its.ts';
export { USER_SYSREGS } from './device/sysregs.ts';
export { type IrqHandler, MAX_IRQ_NESTING, VCpu, type WfiResult } from './device/vcpu.ts';
export {
  type MsiResult,
  type RedistRegion,
  type TranslationCacheDesign,
  Vgic,
  type VgicAddressMap,
  type VgicAttachOptions,
  type VgicStats,
  type VgicV3Options,
} from './device/vgic.ts';
/** A guest-side GICv2 driver for in-process guests (GICD/GICC MMIO of its own vCPU). */
export { GicV2Guest } from './guest/gic-v2.ts';
export { GIC_DEFAULT_PMR, GIC_DEFAULT_PRIORITY, GicV3Guest } from './guest/gic-v3.ts';
export {
  enableLpisOnVcpu,
  GuestAllocator,
  ItsGuest,
  type ItsGuestOptions,
  LPI_PROP_DEFAULT,
  LpiTables,
  type VcpuLpis,
} from './guest/gic-v3-its.ts';
export { GuestMemory } from './memory/guest-memory.ts';
export * from './state/layout.ts';
