/**
 * KVM's userspace ABI for the in-kernel GIC, as data: the device types, attribute groups and
 * attribute encodings of include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h (the
 * KVM_DEV_ARM_VGIC_* names, Documentation/virt/kvm/devices/arm-vgic{,-v3,-its}.rst), the GSI
 * routing and irqfd flags (api.rst), and KvmError: a VgicError that carries the errno name KVM
 * returns for the same misuse.
 *
 * Who may call: anyone (pure data and an error class).
 */

import { describeValue, VgicError, type VgicErrorCode } from '../arch/errors.ts';

// ---- Dirty log: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and its flags (include/uapi/linux/kvm.h) ----
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;
export const KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1;

// ---- KVM_CREATE_DEVICE types ----
export const KVM_DEV_TYPE_ARM_VGIC_V2 = 5;
export const KVM_DEV_TYPE_ARM_VGIC_V3 = 7;
export const KVM_DEV_TYPE_ARM_VGIC_ITS = 8;

// ---- Attribute groups ----
export const KVM_DEV_ARM_VGIC_GRP_ADDR = 0;
export const KVM_DEV_ARM_VGIC_GRP_DIST_REGS = 1;
export const KVM_DEV_ARM_VGIC_GRP_CPU_REGS = 2;
export const KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3;
export const KVM_DEV_ARM_VGIC_GRP_CTRL = 4;
export const KVM_DEV_ARM_VGIC_GRP_REDIST_REGS = 5;
export const KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS = 6;
export const KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO = 7;
export const KVM_DEV_ARM_VGIC_GRP_ITS_REGS = 8;
export const KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ = 9;

// ---- GRP_ADDR attributes ----
export const KVM_VGIC_V2_ADDR_TYPE_DIST = 0;
export const KVM_VGIC_V2_ADDR_TYPE_CPU = 1;
export const KVM_VGIC_V3_ADDR_TYPE_DIST = 2;
export const KVM_VGIC_V3_ADDR_TYPE_REDIST = 3;
export const KVM_VGIC_ITS_ADDR_TYPE = 4;
export const KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION = 5;

/** Region sizes the address checks use (KVM_VGIC_V{2,3}_*_SIZE, the ITS's 128K). */
export const KVM_VGIC_V2_DIST_SIZE = 0x1000;
export const KVM_VGIC_V2_CPU_SIZE = 0x2000;
export const KVM_VGIC_V3_DIST_SIZE = 0x10000;
export const KVM_VGIC_V3_REDIST_SIZE = 0x20000;
export const KVM_VGIC_V3_ITS_SIZE = 0x20000;

/** REDIST_REGION's value: count[63:52] | base[51:16] | flags[15:12] | index[11:0]. */
export const KVM_VGIC_V3_RDIST_INDEX_MASK = 0xfffn;
export const KVM_VGIC_V3_RDIST_FLAGS_SHIFT = 12n;
export const KVM_VGIC_V3_RDIST_FLAGS_MASK = 0xfn << 12n;
export const KVM_VGIC_V3_RDIST_BASE_MASK = ((1n << 52n) - 1n) & ~0xffffn;
export const KVM_VGIC_V3_RDIST_COUNT_SHIFT = 52n;
export const KVM_VGIC_V3_RDIST_COUNT_MASK = 0xfffn << 52n;

// ---- Register attribute encodings ----
/** GRP_DIST_REGS / GRP_REDIST_REGS / GRP_CPU_SYSREGS / GRP_LEVEL_INFO (v3): mpidr in [63:32]. */
export const KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT = 32n;
export const KVM_DEV_ARM_VGIC_V3_MPIDR_MASK = 0xffffffffn << 32n;
/** GICv2's GRP_DIST_REGS / GRP_CPU_REGS: the vCPU id in [39:32]. */
export const KVM_DEV_ARM_VGIC_CPUID_SHIFT = 32n;
export const KVM_DEV_ARM_VGIC_CPUID_MASK = 0xffn << 32n;
export const KVM_DEV_ARM_VGIC_OFFSET_MASK = 0xffffffffn;
export const KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK = 0xffffn;
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT = 10n;
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK = 0x3fffffn << 10n;
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK = 0x3ffn;
export const VGIC_LEVEL_INFO_LINE_LEVEL = 0;

// ---- GRP_CTRL attributes ----
export const KVM_DEV_ARM_VGIC_CTRL_INIT = 0;
export const KVM_DEV_ARM_ITS_SAVE_TABLES = 1;
export const KVM_DEV_ARM_ITS_RESTORE_TABLES = 2;
export const KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES = 3;
export const KVM_DEV_ARM_ITS_CTRL_RESET = 4;

// ---- KVM_IRQ_LINE's irq field: vcpu2_index[31:28] | irq_type[27:24] | vcpu_index[23:16] | irq_id[15:0] ----
export const KVM_ARM_IRQ_VCPU2_SHIFT = 28;
export const KVM_ARM_IRQ_TYPE_SHIFT = 24;
export const KVM_ARM_IRQ_TYPE_MASK = 0xf;
export const KVM_ARM_IRQ_VCPU_SHIFT = 16;
export const KVM_ARM_IRQ_VCPU_MASK = 0xff;
export const KVM_ARM_IRQ_NUM_MASK = 0xffff;
export const KVM_ARM_IRQ_TYPE_CPU = 0;
export const KVM_ARM_IRQ_TYPE_SPI = 1;
export const KVM_ARM_IRQ_TYPE_PPI = 2;

// ---- KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_SIGNAL_MSI ----
export const KVM_IRQ_ROUTING_IRQCHIP = 1;
export const KVM_IRQ_ROUTING_MSI = 2;
export const KVM_MSI_VALID_DEVID = 1 << 0;
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
export const KVM_IRQFD_FLAG_RESAMPLE = 1 << 1;
/** KVM_MAX_IRQ_ROUTES. */
export const KVM_MAX_IRQ_ROUTES = 4096;
/** GSI routing's irqchip pins on arm64: pin p is SPI p + 32, below KVM_IRQCHIP_NUM_PINS. */
export const KVM_IRQCHIP_NUM_PINS = 988;

/** The errno names KVM's device and VM ioctls return for misuse, and the ones vgic uses. */
export type KvmErrno =
  | 'EINVAL'
  | 'ENXIO'
  | 'EBUSY'
  | 'EEXIST'
  | 'EFAULT'
  | 'ENODEV'
  | 'ENOENT'
  | 'E2BIG'
  | 'ENOSPC'
  | 'EACCES';

/** errno values on arm64 Linux, for a VMM that compares numbers. */
export const KVM_ERRNO: Readonly<Record<KvmErrno, number>> = {
  EINVAL: 22,
  ENXIO: 6,
  EBUSY: 16,
  EEXIST: 17,
  EFAULT: 14,
  ENODEV: 19,
  ENOENT: 2,
  E2BIG: 7,
  ENOSPC: 28,
  EACCES: 13,
};

/**
 * A KVM device or VM operation refused, with the errno KVM returns for it (`errno`, e.g. 'EBUSY';
 * `errnoValue` its number) and a message saying what was wrong and what is allowed.
 */
export class KvmError extends VgicError {
  override name = 'KvmError';
  readonly errno: KvmErrno;
  constructor(errno: KvmErrno, message: string, code: VgicErrorCode = 'INVALID_ARGUMENT') {
    super(code, `${errno}: ${message}`);
    this.errno = errno;
  }
  get errnoValue(): number {
    return KVM_ERRNO[this.errno];
  }
}

/**
 * A bigint or a safe non-negative integer as a bigint (attribute words are 64-bit). A value that is
 * not one is KVM's unreadable attr->addr (`errno` EFAULT for the value, EINVAL for the attr).
 */
export function attrWord(what: string, x: unknown, errno: KvmErrno = 'EINVAL'): bigint {
  if (typeof x === 'bigint' && x >= 0n && x < 1n << 64n) return x;
  if (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) return BigInt(x);
  throw new KvmError(
    errno,
    `${what} must be a bigint or a safe integer in 0..2^64-1, got ${describeValue(x)}`,
  );
}
