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
/** GSI routing and irqfds over one shared buffer: a device thread signals without a call. */
export { DEFAULT_MAX_IRQFDS, type GsiRoute, IrqfdSet, type IrqfdStats } from './device/irqfd.ts';
export { Its, type ItsStats } from './device/its.ts';
// ---- KVM's device interface, GSI routing and irqfds, and the dirty log (issue 15, part 2) ----
/**
 * KVM_CREATE_DEVICE / KVM_{SET,GET,HAS}_DEVICE_ATTR for the GIC and its ITSes with KVM's group and
 * attribute encodings (KvmVm.createDevice, KvmDevice.setAttr/getAttr/hasAttr), KVM_SET_GSI_ROUTING,
 * KVM_IRQFD, KVM_SIGNAL_MSI and KVM_GET_DIRTY_LOG on the VM, errors as KvmError with KVM's errno.
 */
export {
  type KvmDevice,
  KvmItsDevice,
  KvmUnsupportedError,
  KvmVgicDevice,
  KvmVm,
  type KvmVmOptions,
  VGIC_ADDR_UNDEF,
} from './device/kvm-device.ts';
/** KVM's uapi names for the vgic devices (kvm.h / asm/kvm.h), and KvmError with its errno name. */
export {
  KVM_ARM_IRQ_NUM_MASK,
  KVM_ARM_IRQ_TYPE_CPU,
  KVM_ARM_IRQ_TYPE_MASK,
  KVM_ARM_IRQ_TYPE_PPI,
  KVM_ARM_IRQ_TYPE_SHIFT,
  KVM_ARM_IRQ_TYPE_SPI,
  KVM_ARM_IRQ_VCPU_MASK,
  KVM_ARM_IRQ_VCPU_SHIFT,
  KVM_ARM_IRQ_VCPU2_SHIFT,
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_ITS_RESTORE_TABLES,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_CPUID_MASK,
  KVM_DEV_ARM_VGIC_CPUID_SHIFT,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
  KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
  KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK,
  KVM_DEV_ARM_VGIC_OFFSET_MASK,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK,
  KVM_DEV_ARM_VGIC_V3_MPIDR_MASK,
  KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_ERRNO,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQCHIP_NUM_PINS,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_MAX_IRQ_ROUTES,
  KVM_MSI_VALID_DEVID,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  KVM_VGIC_V2_CPU_SIZE,
  KVM_VGIC_V2_DIST_SIZE,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  KVM_VGIC_V3_DIST_SIZE,
  KVM_VGIC_V3_ITS_SIZE,
  KVM_VGIC_V3_RDIST_BASE_MASK,
  KVM_VGIC_V3_RDIST_COUNT_MASK,
  KVM_VGIC_V3_RDIST_COUNT_SHIFT,
  KVM_VGIC_V3_RDIST_FLAGS_MASK,
  KVM_VGIC_V3_RDIST_FLAGS_SHIFT,
  KVM_VGIC_V3_RDIST_INDEX_MASK,
  KVM_VGIC_V3_REDIST_SIZE,
  type KvmErrno,
  KvmError,
  VGIC_LEVEL_INFO_LINE_LEVEL,
} from './device/kvm-uapi.ts';
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
/** The dirty log's page size (4K pages: bit p of a getDirtyLog() bitmap is page p of the region). */
export { DIRTY_PAGE_SHIFT, GuestMemory } from './memory/guest-memory.ts';
export * from './state/layout.ts';
