/**
 * vgic: the ARM Generic Interrupt Controller (GICv3) as a virtual device, built the way KVM's
 * vgic is built. The core entry point (`vgic`): nothing in its import graph is host-specific and
 * no module has a top-level side effect, so it runs in Node, in browsers and in Web Workers, and
 * bundles without stubs. The Node-only parts have their own entries: `vgic/machine` (the AArch64
 * machine) and `vgic/runtime` (worker-thread programs).
 */

export { VgicError, type VgicErrorCode } from './arch/errors.ts';
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
  /** Vgic.vpeStatus(): one vCPU's GICv4.1 vPE (residency, doorbells, pending vLPIs). */
  type VpeStatus,
} from './device/vgic.ts';
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
