/**
 * vgic: the ARM Generic Interrupt Controller (GICv3) as a virtual device, built the way KVM's
 * vgic is built. Public entry point.
 */

export { VgicError, type VgicErrorCode } from './arch/errors.ts';
export * from './arch/gicv3.ts';
export * from './arch/intid.ts';
export * from './arch/its.ts';
export * from './arch/sysreg.ts';
export { setLockOwnerId } from './core/locks.ts';
export { Its, type ItsStats } from './device/its.ts';
export { USER_SYSREGS } from './device/sysregs.ts';
export { type IrqHandler, MAX_IRQ_NESTING, VCpu, type WfiResult } from './device/vcpu.ts';
export {
  type MsiResult,
  type RedistRegion,
  type TranslationCacheDesign,
  Vgic,
  type VgicAddressMap,
  type VgicStats,
  type VgicV3Options,
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
export {
  Machine,
  type MachineFault,
  type MachineOptions,
  mpidrOf,
  type RunReport,
  type StopReason,
} from './machine/machine.ts';
export { loadUnicorn, MachineUnavailableError } from './machine/native.ts';
export { GuestMemory } from './memory/guest-memory.ts';
export * from './state/layout.ts';
