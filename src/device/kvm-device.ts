/**
 * KVM's device interface to the in-kernel GIC (vgic-kvm-device.c, vgic-its.c's attribute groups;
 * Documentation/virt/kvm/devices/arm-vgic{,-v3,-its}.rst), one to one: a KvmVm creates devices
 * (KVM_CREATE_DEVICE: KVM_DEV_TYPE_ARM_VGIC_V2 / _V3 / _ITS), and each device takes setAttr /
 * getAttr / hasAttr (KVM_SET/GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR) with KVM's group and attribute
 * encodings (device/kvm-uapi.ts). Misuse is refused with the errno KVM returns (KvmError).
 *
 * Built on the host API: until KVM_DEV_ARM_VGIC_CTRL_INIT the device only records addresses and
 * NR_IRQS (KVM's checks: alignment, IPA range, double assignment, redistributor region order);
 * INIT checks overlaps and creates the Vgic (device/vgic.ts) with every ITS whose address is set,
 * since vgic's state holds the ITSes from creation. After INIT the register groups go to the
 * Vgic's userspace accessors and the ITS's (device/its.ts).
 *
 * GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2, arm-vgic.rst): GRP_ADDR (DIST, CPU: 4K-aligned), GRP_NR_IRQS,
 * CTRL_INIT with vgic_v2_map_resources' checks (both frames set, not overlapping), and
 * GRP_DIST_REGS / GRP_CPU_REGS (vcpu_index in attr[39:32], offset in [31:0]) through the Vgic's
 * GICv2 accessors (readDistRegAs, readCpuReg).
 *
 * Who may call: the host's main thread (the thread that owns the VM). "vCPUs running" (KVM's
 * lock_all_vcpus failing, -EBUSY) is a vCPU whose run_lock another thread holds at the call.
 */

import { VgicError } from '../arch/errors.ts';
import { GICD_FRAME_SIZE } from '../arch/gicv3.ts';
import { VGIC_FIRST_SPI, VGIC_NR_PRIVATE_IRQS, VGIC_NR_SGIS } from '../arch/intid.ts';
import { GITS_TYPER } from '../arch/its.ts';
import { lockOwnerId } from '../core/locks.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import { MAX_GUEST_PA } from '../memory/guest-memory.ts';
import { giccUserFrame } from '../mmio/gicc.ts';
import { distributorV2Frame } from '../mmio/gicd-v2.ts';
import { checkHostAccess } from '../mmio/region.ts';
import { V_RUN_LOCK, VCPU_STRIDE } from '../state/layout.ts';
import { type GsiRoute, IrqfdSet } from './irqfd.ts';
import type { Its } from './its.ts';
import {
  attrWord,
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
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK,
  KVM_DEV_ARM_VGIC_OFFSET_MASK,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK,
  KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_ERRNO,
  KVM_IRQFD_FLAG_DEASSIGN,
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
  KVM_VGIC_V3_RDIST_COUNT_SHIFT,
  KVM_VGIC_V3_RDIST_FLAGS_MASK,
  KVM_VGIC_V3_RDIST_INDEX_MASK,
  KVM_VGIC_V3_REDIST_SIZE,
  KvmError,
  VGIC_LEVEL_INFO_LINE_LEVEL,
} from './kvm-uapi.ts';
import { type RedistRegion, Vgic } from './vgic.ts';

/** VGIC_ADDR_UNDEF: what GRP_ADDR reads before an address is set. */
export const VGIC_ADDR_UNDEF = 0xffff_ffff_ffff_ffffn;
/** KVM's VGIC_MAX_RESERVED: NR_IRQS at most 1024 (vgic takes at most 32 + 960 SPIs). */
const VGIC_MAX_NR_IRQS = 1024;
const VGIC_V2_MAX_CPUS = 8;
const SZ_4K = 0x1000;
const SZ_64K = 0x10000;

export interface KvmVmOptions {
  /** vCPUs the VM has (KVM_CREATE_VCPU before the GIC's INIT), 1..512. */
  readonly vcpus: number;
  /** Guest RAM (a memslot): base (default 0x40000000) and size. */
  readonly ram?: { readonly base?: number; readonly size: number };
  /** As VgicV3Options: list registers, time, shared state, LPI INTID bits, translation cache. */
  readonly lrs?: number;
  readonly time?: 'real' | 'virtual';
  readonly shared?: boolean;
  readonly lpiIdBits?: number;
  readonly itsCacheSize?: number;
}

/** KVM_SET_DEVICE_ATTR's shape: group, attribute, and the 64-bit value at attr->addr. */
export interface KvmDevice {
  readonly type: number;
  /** KVM_SET_DEVICE_ATTR. `value` is what attr->addr points to (unused by GRP_CTRL). */
  setAttr(group: number, attr: bigint | number, value?: bigint | number): void;
  /**
   * KVM_GET_DEVICE_ATTR: the value KVM writes to attr->addr. `value` is what attr->addr holds
   * before the call (REDIST_REGION reads take the region index from it).
   */
  getAttr(group: number, attr: bigint | number, value?: bigint | number): bigint;
  /**
   * KVM_HAS_DEVICE_ATTR: whether the device knows the attribute (KVM's 0 / -ENXIO); a register
   * attribute naming no vCPU throws EINVAL, as KVM's answer.
   */
  hasAttr(group: number, attr: bigint | number): boolean;
}

const hex = (x: bigint | number): string => `0x${x.toString(16)}`;

/** vgic_check_iorange: EEXIST if set, EINVAL unaligned or wrapping, E2BIG beyond the IPA space. */
function checkIorange(current: bigint, addr: bigint, align: number, size: number, what: string): void {
  if (current !== VGIC_ADDR_UNDEF)
    throw new KvmError('EEXIST', `${what} address is already set (${hex(current)})`);
  if (addr % BigInt(align) !== 0n || size % align !== 0) {
    throw new KvmError('EINVAL', `${what} address ${hex(addr)} must be ${align / 1024}K-aligned`);
  }
  if (addr + BigInt(size) > BigInt(MAX_GUEST_PA)) {
    throw new KvmError(
      'E2BIG',
      `${what} at ${hex(addr)} (${hex(size)} bytes) is outside the 48-bit guest physical address space`,
    );
  }
}

interface Rdreg {
  readonly index: number;
  readonly base: bigint;
  /** 0 for the legacy KVM_VGIC_V3_ADDR_TYPE_REDIST region (every vCPU's redistributor). */
  readonly count: number;
}

export class KvmVm {
  readonly options: KvmVmOptions;
  private gicDev: KvmVgicDevice | undefined;
  /** @internal the ITS devices, in creation order. */
  readonly itsDevs: KvmItsDevice[] = [];
  private vgic: Vgic | undefined;

  constructor(options: KvmVmOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new VgicError('INVALID_CONFIG', 'KvmVm takes { vcpus, ram? }');
    }
    if (!Number.isInteger(options.vcpus) || options.vcpus < 1 || options.vcpus > 512) {
      throw new VgicError(
        'INVALID_CONFIG',
        `vcpus must be an integer in 1..512, got ${String(options.vcpus)}`,
      );
    }
    this.options = options;
  }

  /**
   * KVM_CREATE_DEVICE. One GIC per VM (a second: EEXIST), a GICv2 for at most 8 vCPUs (E2BIG), an
   * ITS only beside a GICv3 (ENODEV), an unknown type ENODEV.
   */
  createDevice(type: typeof KVM_DEV_TYPE_ARM_VGIC_V2 | typeof KVM_DEV_TYPE_ARM_VGIC_V3): KvmVgicDevice;
  createDevice(type: typeof KVM_DEV_TYPE_ARM_VGIC_ITS): KvmItsDevice;
  createDevice(type: number): KvmDevice;
  createDevice(type: number): KvmDevice {
    if (type === KVM_DEV_TYPE_ARM_VGIC_V2 || type === KVM_DEV_TYPE_ARM_VGIC_V3) {
      if (this.gicDev !== undefined) {
        throw new KvmError('EEXIST', 'the VM already has a GIC (one GICv2 or GICv3 per VM)');
      }
      if (type === KVM_DEV_TYPE_ARM_VGIC_V2 && this.options.vcpus > VGIC_V2_MAX_CPUS) {
        throw new KvmError('E2BIG', `a GICv2 serves at most 8 vCPUs; the VM has ${this.options.vcpus}`);
      }
      this.gicDev = new KvmVgicDevice(this, type);
      return this.gicDev;
    }
    if (type === KVM_DEV_TYPE_ARM_VGIC_ITS) {
      if (this.gicDev?.type !== KVM_DEV_TYPE_ARM_VGIC_V3) {
        throw new KvmError('ENODEV', 'an ITS needs a GICv3 device (create KVM_DEV_TYPE_ARM_VGIC_V3 first)');
      }
      const dev = new KvmItsDevice(this);
      this.itsDevs.push(dev);
      return dev;
    }
    throw new KvmError(
      'ENODEV',
      `unknown device type ${String(type)}; allowed: KVM_DEV_TYPE_ARM_VGIC_V2 (5), _V3 (7), _ITS (8)`,
    );
  }

  /**
   * A VM around a GIC created with the host API (Vgic.create / attach / restore): an initialised
   * GICv3 device (KVM_DEV_TYPE_ARM_VGIC_V2 for a GICv2) with that GIC's addresses and NR_IRQS, and
   * one ITS device per ITS, for a VMM (or `vgic qtest`) that speaks KVM's attributes to an existing
   * GIC.
   */
  static fromVgic(gic: Vgic): KvmVm {
    const vm = new KvmVm({ vcpus: gic.nVcpus });
    const dev = vm.createDevice(gic.gicVersion === 2 ? KVM_DEV_TYPE_ARM_VGIC_V2 : KVM_DEV_TYPE_ARM_VGIC_V3);
    dev.adopt(gic);
    gic.itsBases.forEach((base, k) => {
      const its = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS);
      its.base = BigInt(base);
      its.bind(gic.its(k));
    });
    vm.attachGic(gic);
    return vm;
  }

  /** The GIC device, once created. */
  get gicDevice(): KvmVgicDevice | undefined {
    return this.gicDev;
  }

  /** The GIC after KVM_DEV_ARM_VGIC_CTRL_INIT (lines, MSIs, vCPUs, snapshots); ENXIO before. */
  get gic(): Vgic {
    if (this.vgic === undefined) {
      throw new KvmError('ENXIO', 'the GIC is not initialised yet (KVM_DEV_ARM_VGIC_GRP_CTRL / CTRL_INIT)');
    }
    return this.vgic;
  }

  get initialized(): boolean {
    return this.vgic !== undefined;
  }

  /** @internal the INIT of the GIC device. */
  attachGic(gic: Vgic): void {
    this.vgic = gic;
  }

  private irqfdSet: IrqfdSet | undefined;

  /**
   * The VM's GSI routing and irqfds, created on first use after INIT with KVM's flat default
   * routing and bound to the GIC on this thread. Give `irqfds.buffer` to device and vCPU threads
   * (IrqfdSet.attach).
   */
  get irqfds(): IrqfdSet {
    if (this.irqfdSet === undefined) {
      const gic = this.gic; // ENXIO before INIT
      this.irqfdSet = IrqfdSet.create({ nSpis: gic.nrIrqs - VGIC_FIRST_SPI, shared: gic.state.shared });
      this.irqfdSet.bindGic(gic);
    }
    return this.irqfdSet;
  }

  /** KVM_SET_GSI_ROUTING (MSI entries need KVM_MSI_VALID_DEVID once an ITS exists). */
  setGsiRouting(entries: readonly GsiRoute[]): void {
    this.irqfds.setGsiRouting(entries, this.gic.nIts > 0);
  }

  /**
   * KVM_IRQFD: assigns an irqfd to `gsi` (flags 0 or KVM_IRQFD_FLAG_RESAMPLE) and returns it, or
   * with KVM_IRQFD_FLAG_DEASSIGN removes irqfd `fd`.
   */
  irqfd(o: { readonly gsi?: number; readonly flags?: number; readonly fd?: number }): number {
    const flags = o.flags ?? 0;
    if (flags === KVM_IRQFD_FLAG_DEASSIGN) {
      this.irqfds.deassign(o.fd as number);
      return o.fd as number;
    }
    return this.irqfds.assign(o.gsi as number, flags);
  }

  /**
   * KVM_IRQ_LINE: `irq` encodes vcpu2_index | type | vcpu_index | irq_id (KVM_ARM_IRQ_*). SPIs
   * (type 1: irq_id 32..NR_IRQS-1) and PPIs (type 2: irq_id 16..31 of vCPU vcpu2 << 8 | vcpu)
   * drive their lines; KVM_ARM_IRQ_TYPE_CPU is ENXIO with an in-kernel GIC; anything else EINVAL.
   * Returns whether the GIC took the change.
   */
  irqLine(irq: number, level: boolean | number): boolean {
    const gic = this.gic;
    if (!Number.isInteger(irq) || irq < 0 || irq > 0xffffffff) {
      throw new KvmError('EINVAL', `KVM_IRQ_LINE irq must be a 32-bit integer, got ${String(irq)}`);
    }
    const type = (irq >>> KVM_ARM_IRQ_TYPE_SHIFT) & KVM_ARM_IRQ_TYPE_MASK;
    const num = irq & KVM_ARM_IRQ_NUM_MASK;
    const vcpu =
      ((irq >>> KVM_ARM_IRQ_VCPU2_SHIFT) << 8) | ((irq >>> KVM_ARM_IRQ_VCPU_SHIFT) & KVM_ARM_IRQ_VCPU_MASK);
    const on = level === true || level === 1;
    try {
      if (type === KVM_ARM_IRQ_TYPE_SPI) {
        if (num < VGIC_FIRST_SPI) throw new KvmError('EINVAL', `an SPI's irq_id is at least 32, got ${num}`);
        return gic.irqLine(num, on);
      }
      if (type === KVM_ARM_IRQ_TYPE_PPI) {
        if (vcpu >= gic.nVcpus) throw new KvmError('EINVAL', `no vCPU ${vcpu}`);
        return gic.ppiLine(vcpu, num, on);
      }
    } catch (e) {
      if (e instanceof KvmError || !(e instanceof VgicError)) throw e;
      throw new KvmError('EINVAL', e.message, e.code);
    }
    if (type === KVM_ARM_IRQ_TYPE_CPU) {
      throw new KvmError(
        'ENXIO',
        'KVM_ARM_IRQ_TYPE_CPU drives a CPU input without an in-kernel GIC; this VM has one',
      );
    }
    throw new KvmError('EINVAL', `KVM_IRQ_LINE irq type ${type} is not SPI (1) or PPI (2)`);
  }

  /**
   * KVM_SIGNAL_MSI: 1 delivered, 0 blocked (no mapping), -EBUSY (-16) when the ITS or the target's
   * LPIs are disabled. With an ITS, flags must hold KVM_MSI_VALID_DEVID (EINVAL otherwise).
   */
  signalMsi(msi: {
    readonly address: number;
    readonly data: number;
    readonly devid?: number;
    readonly flags?: number;
  }): number {
    const gic = this.gic;
    const flags = msi.flags ?? 0;
    if ((flags & ~KVM_MSI_VALID_DEVID) !== 0)
      throw new KvmError('EINVAL', `KVM_SIGNAL_MSI flags must be 0 or KVM_MSI_VALID_DEVID, got ${flags}`);
    if (gic.nIts > 0 && flags !== KVM_MSI_VALID_DEVID) {
      throw new KvmError(
        'EINVAL',
        'the GIC has an ITS: KVM_SIGNAL_MSI needs KVM_MSI_VALID_DEVID and a devid',
      );
    }
    const r = gic.signalMsi({
      doorbell: msi.address,
      devid: flags ? (msi.devid ?? 0) : 0,
      eventid: msi.data,
    });
    return r === 'delivered' ? 1 : r === 'blocked' ? 0 : -KVM_ERRNO.EBUSY;
  }

  // ---- Dirty log (KVM_MEM_LOG_DIRTY_PAGES on the RAM memslot, KVM_GET_DIRTY_LOG,
  //      KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and KVM_CLEAR_DIRTY_LOG) ----

  private manualProtect = 0;

  /**
   * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags): with
   * KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, getDirtyLog() no longer clears the log and
   * clearDirtyLog() clears what userspace copied; with KVM_DIRTY_LOG_INITIALLY_SET too, turning
   * logging on marks every page dirty. 0 turns it off. Other flags: EINVAL.
   */
  enableManualDirtyLogProtect(flags: number): void {
    const known = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~known) !== 0 || flags > known) {
      throw new KvmError(
        'EINVAL',
        `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 takes KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1) | KVM_DIRTY_LOG_INITIALLY_SET (2), got ${String(flags)}`,
      );
    }
    this.manualProtect = flags;
  }

  /** Turns dirty logging of the RAM region at `base` on or off (GuestMemory.setDirtyLogging). */
  setDirtyLogging(base: number, on: boolean): void {
    this.gic.memory.setDirtyLogging(base, on);
    if (on && this.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) this.gic.memory.setAllDirty(base);
  }

  /**
   * KVM_GET_DIRTY_LOG: the RAM region's dirty bitmap, read and cleared (GuestMemory.getDirtyLog);
   * with manual protect on, read and left set. Logging off: ENOENT.
   */
  getDirtyLog(base: number): Uint32Array {
    const mem = this.gic.memory;
    if (!mem.dirtyLogging(base))
      throw new KvmError('ENOENT', `dirty logging is off for the region at 0x${base.toString(16)}`);
    return this.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
      ? mem.peekDirtyLog(base)
      : mem.getDirtyLog(base);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG: clears the pages `bitmap` names (bit j = page firstPage + j) in the log of
   * the region at `base`. Logging off: ENOENT; firstPage not a multiple of 64, a range outside the
   * region, or numPages not a multiple of 64 short of the region's end: EINVAL; a bitmap shorter
   * than numPages bits: EFAULT (KVM's copy_from_user).
   */
  clearDirtyLog(base: number, firstPage: number, numPages: number, bitmap: Uint32Array): void {
    const mem = this.gic.memory;
    if (!mem.dirtyLogging(base))
      throw new KvmError('ENOENT', `dirty logging is off for the region at 0x${base.toString(16)}`);
    const npages = mem.dirtyLogPages(base);
    const int = (x: number) => Number.isSafeInteger(x) && x >= 0;
    if (
      !int(firstPage) ||
      firstPage % 64 !== 0 ||
      firstPage > npages ||
      !int(numPages) ||
      numPages > npages - firstPage ||
      (numPages < npages - firstPage && numPages % 64 !== 0)
    ) {
      throw new KvmError(
        'EINVAL',
        `KVM_CLEAR_DIRTY_LOG: first_page ${String(firstPage)} must be a multiple of 64 and num_pages ${String(numPages)} a multiple of 64 (or reach the end) within the region's ${npages} pages`,
      );
    }
    if (!(bitmap instanceof Uint32Array) || bitmap.length < Math.ceil(numPages / 32))
      throw new KvmError(
        'EFAULT',
        `KVM_CLEAR_DIRTY_LOG: the bitmap must be a Uint32Array of ${Math.ceil(numPages / 32)} words or more`,
      );
    mem.clearDirtyLog(base, firstPage, numPages, bitmap);
  }

  /** KVM's lock_all_vcpus failing: some vCPU's run_lock is held by another thread now. */
  checkVcpusStopped(what: string): void {
    const gic = this.vgic;
    if (gic === undefined) return;
    const s = gic.state;
    const me = lockOwnerId();
    for (let v = 0; v < s.nVcpus; v++) {
      const held = Atomics.load(s.vcpu, v * VCPU_STRIDE + V_RUN_LOCK);
      if (held !== 0 && held !== me) {
        throw new KvmError(
          'EBUSY',
          `${what} needs every vCPU stopped; vCPU ${v} is running (lock owner ${held})`,
        );
      }
    }
  }

  /** The vCPU whose MPIDR affinity (Aff3..Aff0 as in the attr's [63:32]) is `aff`, else EINVAL. */
  vcpuByMpidr(aff: number): number {
    const n = this.options.vcpus;
    // The attr's encoding is Aff3[31:24] Aff2[23:16] Aff1[15:8] Aff0[7:0]; MPIDR's Aff3 is higher.
    if (aff >>> 24 === 0) {
      for (let v = 0; v < n; v++) if (vcpuAffinity(v) === aff) return v;
    }
    throw new KvmError('EINVAL', `no vCPU has MPIDR affinity ${hex(aff)}`);
  }
}

/** KVM_DEV_TYPE_ARM_VGIC_V3 or _V2: the GIC device. */
export class KvmVgicDevice implements KvmDevice {
  readonly type: number;
  private readonly vm: KvmVm;
  private distBase = VGIC_ADDR_UNDEF;
  /** GICv2: the CPU interface's base. */
  private cpuBase = VGIC_ADDR_UNDEF;
  private readonly rdregs: Rdreg[] = [];
  private nrIrqs = 0;
  private maintIrq = 0;

  /** @internal KvmVm.createDevice. */
  constructor(vm: KvmVm, type: number) {
    this.vm = vm;
    this.type = type;
  }

  /** @internal KvmVm.fromVgic: the attributes of an existing GIC. */
  adopt(gic: Vgic): void {
    this.distBase = BigInt(gic.distBase);
    if (gic.gicVersion === 2) this.cpuBase = BigInt(gic.cpuBase);
    gic.redistRegions.forEach((r, index) => {
      this.rdregs.push({ index, base: BigInt(r.base), count: r.count });
    });
    this.nrIrqs = gic.nrIrqs;
  }

  private get v3(): boolean {
    return this.type === KVM_DEV_TYPE_ARM_VGIC_V3;
  }

  hasAttr(group: number, attr: bigint | number): boolean {
    const a = attrWord('attr', attr);
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        return this.v3
          ? a === BigInt(KVM_VGIC_V3_ADDR_TYPE_DIST) ||
              a === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST) ||
              a === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)
          : a === BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST) || a === BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU);
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        return true;
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        return (
          a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT) ||
          (this.v3 && a === BigInt(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES))
        );
      case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_REGS:
        // GICv2: DIST_REGS and CPU_REGS; GICv3: DIST_REGS, REDIST_REGS and CPU_SYSREGS.
        if (
          this.v3
            ? group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS
            : group !== KVM_DEV_ARM_VGIC_GRP_DIST_REGS && group !== KVM_DEV_ARM_VGIC_GRP_CPU_REGS
        )
          return false;
        try {
          this.regAccess(group, a, false, 0n, true);
          return true;
        } catch (e) {
          // KVM_HAS_DEVICE_ATTR answers -ENXIO for an unknown register; other errors (an mpidr or
          // vcpu_index no vCPU has: EINVAL) are errors of the call.
          if (e instanceof KvmError && e.errno === 'ENXIO') return false;
          throw e;
        }
      case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
        return (
          this.v3 &&
          Number((a >> KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) & 0x3fffffn) === VGIC_LEVEL_INFO_LINE_LEVEL
        );
      case KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ:
        return this.v3;
    }
    return false;
  }

  setAttr(group: number, attr: bigint | number, value: bigint | number = 0n): void {
    const a = attrWord('attr', attr);
    const val = attrWord('value', value, 'EFAULT');
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        this.setAddr(a, val);
        return;
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS: {
        // The value is a __u32 (the upper bits of a wider one are ignored by get_user).
        const n = Number(val & 0xffffffffn);
        if (n < VGIC_NR_PRIVATE_IRQS + 32 || n > VGIC_MAX_NR_IRQS || n % 32 !== 0) {
          throw new KvmError('EINVAL', `NR_IRQS must be 64..1024 in steps of 32, got ${n}`);
        }
        if (this.vm.initialized || this.nrIrqs !== 0) {
          throw new KvmError('EBUSY', `NR_IRQS is already set (${this.nrIrqs || 'at INIT'})`);
        }
        if (n > VGIC_FIRST_SPI + 960) {
          // KVM takes 1024 (988 SPIs, its routing pins); vgic's distributor has at most 960 SPIs.
          throw new KvmError('EINVAL', `vgic implements at most 992 interrupts (960 SPIs), got ${n}`);
        }
        this.nrIrqs = n;
        return;
      }
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        this.ctrl(a);
        return;
      case KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ: {
        if (!this.v3) break;
        const irq = Number(val & 0xffffffffn);
        if (irq < VGIC_NR_SGIS || irq >= VGIC_NR_PRIVATE_IRQS) {
          throw new KvmError('EINVAL', `the maintenance interrupt must be a PPI (16..31), got ${irq}`);
        }
        if (this.vm.initialized) throw new KvmError('EBUSY', 'the maintenance interrupt is set before INIT');
        this.maintIrq = irq;
        return;
      }
      case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_REGS:
      case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
        this.regAccess(group, a, true, val, false);
        return;
    }
    throw new KvmError(
      'ENXIO',
      `group ${group} is not a ${this.v3 ? 'GICv3' : 'GICv2'} device attribute group`,
    );
  }

  getAttr(group: number, attr: bigint | number, value: bigint | number = 0n): bigint {
    const a = attrWord('attr', attr);
    const val = attrWord('value', value, 'EFAULT');
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        return this.getAddr(a, val);
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        // nr_spis + 32: 32 before NR_IRQS or INIT set it, as KVM.
        return BigInt(
          this.nrIrqs !== 0 ? this.nrIrqs : this.vm.initialized ? this.vm.gic.nrIrqs : VGIC_NR_PRIVATE_IRQS,
        );
      case KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ:
        if (!this.v3) break;
        return BigInt(this.maintIrq);
      case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
      case KVM_DEV_ARM_VGIC_GRP_CPU_REGS:
      case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
        return this.regAccess(group, a, false, 0n, false);
    }
    throw new KvmError(
      'ENXIO',
      `group ${group} is not a readable ${this.v3 ? 'GICv3' : 'GICv2'} attribute group`,
    );
  }

  // ---- GRP_ADDR ----

  private addrLocked(what: string): void {
    // vgic fixes its frames at INIT (they are part of the state's address map).
    if (this.vm.initialized) throw new KvmError('EBUSY', `${what} cannot move after INIT`);
  }

  private setAddr(a: bigint, val: bigint): void {
    const type = Number(a);
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_DIST) {
      checkIorange(this.distBase, val, SZ_64K, KVM_VGIC_V3_DIST_SIZE, 'distributor');
      this.addrLocked('the distributor');
      this.distBase = val;
      return;
    }
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_REDIST) {
      this.addRedist(0, val, 0);
      return;
    }
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION) {
      const index = Number(val & KVM_VGIC_V3_RDIST_INDEX_MASK);
      const count = Number(val >> KVM_VGIC_V3_RDIST_COUNT_SHIFT);
      if (count === 0 || (val & KVM_VGIC_V3_RDIST_FLAGS_MASK) !== 0n) {
        throw new KvmError('EINVAL', `a redistributor region needs count > 0 and flags 0, got ${hex(val)}`);
      }
      this.addRedist(index, val & KVM_VGIC_V3_RDIST_BASE_MASK, count);
      return;
    }
    if (!this.v3 && (type === KVM_VGIC_V2_ADDR_TYPE_DIST || type === KVM_VGIC_V2_ADDR_TYPE_CPU)) {
      // GICv2: both frames 4K-aligned (KVM_VGIC_V2_DIST_SIZE 4K, KVM_VGIC_V2_CPU_SIZE 8K).
      const dist = type === KVM_VGIC_V2_ADDR_TYPE_DIST;
      const name = dist ? 'GICv2 distributor' : 'GICv2 CPU interface';
      checkIorange(
        dist ? this.distBase : this.cpuBase,
        val,
        SZ_4K,
        dist ? KVM_VGIC_V2_DIST_SIZE : KVM_VGIC_V2_CPU_SIZE,
        name,
      );
      this.addrLocked(`the ${name}`);
      if (dist) this.distBase = val;
      else this.cpuBase = val;
      return;
    }
    throw new KvmError('ENXIO', `GRP_ADDR attribute ${type} is not a ${this.v3 ? 'GICv3' : 'GICv2'} address`);
  }

  /** vgic_v3_alloc_redist_region: in index order, no mixing of legacy and regions, no overlap. */
  private addRedist(index: number, base: bigint, count: number): void {
    const last = this.rdregs[this.rdregs.length - 1];
    if (last === undefined) {
      if (index !== 0) throw new KvmError('EINVAL', `redistributor regions start at index 0, got ${index}`);
    } else {
      if ((count === 0) !== (last.count === 0)) {
        throw new KvmError('EINVAL', 'KVM_VGIC_V3_ADDR_TYPE_REDIST and _REDIST_REGION cannot be mixed');
      }
      if (count === 0)
        throw new KvmError('EEXIST', `the redistributor base is already set (${hex(last.base)})`);
      if (index !== last.index + 1) {
        throw new KvmError(
          'EINVAL',
          `redistributor region index must be ${last.index + 1} (in order), got ${index}`,
        );
      }
    }
    const size = (count === 0 ? this.vm.options.vcpus : count) * KVM_VGIC_V3_REDIST_SIZE;
    for (const r of this.rdregs) {
      const rsize = BigInt((r.count === 0 ? this.vm.options.vcpus : r.count) * KVM_VGIC_V3_REDIST_SIZE);
      if (base < r.base + rsize && r.base < base + BigInt(size)) {
        throw new KvmError(
          'EINVAL',
          `redistributor region at ${hex(base)} overlaps region ${r.index} at ${hex(r.base)}`,
        );
      }
    }
    if (count === 0 && this.distBase !== VGIC_ADDR_UNDEF) {
      if (base < this.distBase + BigInt(KVM_VGIC_V3_DIST_SIZE) && this.distBase < base + BigInt(size)) {
        throw new KvmError(
          'EINVAL',
          `the redistributors at ${hex(base)} overlap the distributor at ${hex(this.distBase)}`,
        );
      }
    }
    checkIorange(VGIC_ADDR_UNDEF, base, SZ_64K, size, `redistributor region ${index}`);
    this.addrLocked('a redistributor region');
    this.rdregs.push({ index, base, count });
  }

  private getAddr(a: bigint, val: bigint): bigint {
    const type = Number(a);
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_DIST) return this.distBase;
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_REDIST) return this.rdregs[0]?.base ?? VGIC_ADDR_UNDEF;
    if (this.v3 && type === KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION) {
      const index = Number(val & KVM_VGIC_V3_RDIST_INDEX_MASK);
      const r = this.rdregs.find((x) => x.index === index && x.count !== 0);
      if (r === undefined) throw new KvmError('ENOENT', `no redistributor region ${index}`);
      return BigInt(index) | r.base | (BigInt(r.count) << KVM_VGIC_V3_RDIST_COUNT_SHIFT);
    }
    if (!this.v3 && type === KVM_VGIC_V2_ADDR_TYPE_DIST) return this.distBase;
    if (!this.v3 && type === KVM_VGIC_V2_ADDR_TYPE_CPU) return this.cpuBase;
    throw new KvmError('ENXIO', `GRP_ADDR attribute ${type} is not a ${this.v3 ? 'GICv3' : 'GICv2'} address`);
  }

  // ---- GRP_CTRL ----

  private ctrl(a: bigint): void {
    if (a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) {
      if (this.vm.initialized) return; // vgic_init on an initialised GIC: nothing to do
      if (this.v3) this.init();
      else this.initV2();
      return;
    }
    if (this.v3 && a === BigInt(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)) {
      if (!this.vm.initialized)
        throw new KvmError('ENXIO', 'SAVE_PENDING_TABLES needs the GIC initialised (CTRL_INIT)');
      this.vm.checkVcpusStopped('SAVE_PENDING_TABLES');
      const gic = this.vm.gic;
      const faults = gic.stats().lpiTableFault;
      gic.savePendingTables();
      // A pending table outside RAM: KVM's failed guest write.
      if (gic.stats().lpiTableFault !== faults) {
        throw new KvmError(
          'EFAULT',
          'SAVE_PENDING_TABLES: a pending table (GICR_PENDBASER) is not in guest RAM',
        );
      }
      return;
    }
    throw new KvmError('ENXIO', `GRP_CTRL attribute ${a} is not a ${this.v3 ? 'GICv3' : 'GICv2'} control`);
  }

  /**
   * vgic_init plus map_resources' checks: the distributor and the redistributors set (ENXIO),
   * enough redistributors for every vCPU (ENXIO), no two frames overlapping (EINVAL).
   */
  private init(): void {
    const vm = this.vm;
    const o = vm.options;
    if (this.distBase === VGIC_ADDR_UNDEF || this.rdregs.length === 0) {
      throw new KvmError('ENXIO', 'INIT needs the distributor and redistributor addresses set (GRP_ADDR)');
    }
    const regions: RedistRegion[] = this.rdregs.map((r) => ({
      base: Number(r.base),
      count: r.count === 0 ? o.vcpus : r.count,
    }));
    const total = regions.reduce((n, r) => n + r.count, 0);
    if (total < o.vcpus) {
      throw new KvmError(
        'ENXIO',
        `the redistributor regions hold ${total} redistributors; ${o.vcpus} vCPUs need one each`,
      );
    }
    const its = vm.itsDevs.filter((d) => d.base !== VGIC_ADDR_UNDEF);
    const frames = [
      { name: 'distributor', base: Number(this.distBase), size: GICD_FRAME_SIZE },
      ...regions.map((r, i) => ({
        name: `redistributor region ${i}`,
        base: r.base,
        size: r.count * KVM_VGIC_V3_REDIST_SIZE,
      })),
      ...its.map((d, i) => ({ name: `ITS ${i}`, base: Number(d.base), size: KVM_VGIC_V3_ITS_SIZE })),
    ];
    for (let i = 0; i < frames.length; i++) {
      for (let j = i + 1; j < frames.length; j++) {
        const x = frames[i];
        const y = frames[j];
        if (x.base < y.base + y.size && y.base < x.base + x.size) {
          throw new KvmError('EINVAL', `${x.name} at ${hex(x.base)} overlaps ${y.name} at ${hex(y.base)}`);
        }
      }
    }
    const nr = this.nrIrqs !== 0 ? this.nrIrqs : 256; // VGIC_NR_IRQS_LEGACY
    let gic: Vgic;
    try {
      gic = Vgic.create({
        vcpus: o.vcpus,
        spis: nr - VGIC_FIRST_SPI,
        distBase: Number(this.distBase),
        redistRegions: regions,
        its: its.map((d) => ({ base: Number(d.base) })),
        ...(o.ram !== undefined ? { ram: o.ram } : {}),
        ...(o.lrs !== undefined ? { lrs: o.lrs } : {}),
        ...(o.time !== undefined ? { time: o.time } : {}),
        ...(o.shared !== undefined ? { shared: o.shared } : {}),
        ...(o.lpiIdBits !== undefined ? { lpiIdBits: o.lpiIdBits } : {}),
        ...(o.itsCacheSize !== undefined ? { itsCacheSize: o.itsCacheSize } : {}),
      });
    } catch (e) {
      if (e instanceof VgicError) throw new KvmError('EINVAL', `INIT: ${e.message}`, e.code);
      throw e;
    }
    its.forEach((d, k) => {
      d.bind(gic.its(k));
    });
    vm.attachGic(gic);
  }

  /**
   * GICv2: vgic_init plus vgic_v2_map_resources' checks (which KVM makes at the first vCPU run; vgic
   * fixes its frames at INIT): both frames set (ENXIO), the 4K distributor and the 8K CPU interface
   * not overlapping (vgic_v2_check_base: EINVAL).
   */
  private initV2(): void {
    const o = this.vm.options;
    if (this.distBase === VGIC_ADDR_UNDEF || this.cpuBase === VGIC_ADDR_UNDEF) {
      throw new KvmError(
        'ENXIO',
        'INIT of a GICv2 needs the distributor and CPU interface addresses set ' +
          '(GRP_ADDR KVM_VGIC_V2_ADDR_TYPE_DIST and _CPU)',
      );
    }
    const dist = this.distBase;
    const cpu = this.cpuBase;
    if (dist < cpu + BigInt(KVM_VGIC_V2_CPU_SIZE) && cpu < dist + BigInt(KVM_VGIC_V2_DIST_SIZE)) {
      throw new KvmError(
        'EINVAL',
        `the GICv2 distributor at ${hex(dist)} (4K) overlaps the CPU interface at ${hex(cpu)} (8K)`,
      );
    }
    const nr = this.nrIrqs !== 0 ? this.nrIrqs : 256; // VGIC_NR_IRQS_LEGACY
    let gic: Vgic;
    try {
      // No ITS, LPIs or redistributors on a GICv2: lpiIdBits and itsCacheSize do not apply.
      gic = Vgic.create({
        gicVersion: 2,
        vcpus: o.vcpus,
        spis: nr - VGIC_FIRST_SPI,
        distBase: Number(dist),
        cpuBase: Number(cpu),
        ...(o.ram !== undefined ? { ram: o.ram } : {}),
        ...(o.lrs !== undefined ? { lrs: o.lrs } : {}),
        ...(o.time !== undefined ? { time: o.time } : {}),
        ...(o.shared !== undefined ? { shared: o.shared } : {}),
      });
    } catch (e) {
      if (e instanceof VgicError) throw new KvmError('EINVAL', `INIT: ${e.message}`, e.code);
      throw e;
    }
    this.vm.attachGic(gic);
  }

  // ---- Register groups ----

  /**
   * GRP_DIST_REGS / GRP_REDIST_REGS (32-bit, mpidr << 32 | offset), GRP_CPU_SYSREGS (64-bit,
   * mpidr << 32 | Op0..Op2), GRP_LEVEL_INFO (mpidr << 32 | info << 10 | vINTID); a GICv2's
   * GRP_DIST_REGS / GRP_CPU_REGS in regAccessV2.
   * `probe`: only check that the register exists (KVM_HAS_DEVICE_ATTR).
   */
  private regAccess(group: number, a: bigint, write: boolean, val: bigint, probe: boolean): bigint {
    if (!this.v3) return this.regAccessV2(group, a, write, val, probe);
    if (group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS) {
      throw new KvmError('ENXIO', "GRP_CPU_REGS is GICv2's; a GICv3 has GRP_CPU_SYSREGS");
    }
    const offset = Number(a & 0xffffffffn);
    // vgic_v3_parse_attr: the distributor ignores the mpidr (vCPU 0).
    const vcpu =
      group === KVM_DEV_ARM_VGIC_GRP_DIST_REGS
        ? 0
        : this.vm.vcpuByMpidr(Number(a >> KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT));
    if (!probe) {
      this.vm.checkVcpusStopped('register access');
      if (!this.vm.initialized)
        throw new KvmError('EBUSY', 'register access needs the GIC initialised (CTRL_INIT)');
    }
    if (group === KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO) {
      const info = Number((a >> KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) & 0x3fffffn);
      const intid = Number(a & KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK);
      if (info !== VGIC_LEVEL_INFO_LINE_LEVEL)
        throw new KvmError('EINVAL', `LEVEL_INFO info ${info} is not VGIC_LEVEL_INFO_LINE_LEVEL (0)`);
      if (intid % 32 !== 0)
        throw new KvmError('EINVAL', `LEVEL_INFO vINTID must be a multiple of 32, got ${intid}`);
      const gic = this.vm.gic;
      // Beyond the implemented interrupts: RAZ/WI.
      if (intid >= gic.nrIrqs) return 0n;
      if (write) {
        gic.setLineLevel(vcpu, intid, Number(val & 0xffffffffn));
        return 0n;
      }
      return BigInt(gic.getLineLevel(vcpu, intid));
    }
    if (group === KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) {
      if ((a & 0xffff0000n) !== 0n)
        throw new KvmError('ENXIO', `CPU_SYSREGS attr bits [31:16] are RES0, got ${hex(a)}`);
      const enc = Number(a & KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK);
      if (probe) {
        try {
          this.sysregProbe(enc);
        } catch (e) {
          throw new KvmError('ENXIO', (e as Error).message);
        }
        return 0n;
      }
      return this.withErrno(() => {
        const gic = this.vm.gic;
        if (write) {
          if (val > 0xffffffffn)
            throw new KvmError('EINVAL', `${hex(val)}: the CPU interface registers' bits [63:32] are RES0`);
          gic.writeCpuSysreg(vcpu, enc, Number(val));
          return 0n;
        }
        return BigInt(gic.readCpuSysreg(vcpu, enc) >>> 0);
      });
    }
    // DIST_REGS / REDIST_REGS: 32-bit accesses (64-bit registers as two words).
    if (offset % 4 !== 0)
      throw new KvmError('EINVAL', `register offset ${hex(offset)} must be 4-byte aligned`);
    return this.withErrno(() => {
      const gic = this.vm.initialized ? this.vm.gic : undefined;
      if (probe) {
        this.regProbe(group, offset);
        return 0n;
      }
      const g = gic as Vgic;
      if (group === KVM_DEV_ARM_VGIC_GRP_DIST_REGS) {
        if (write) g.writeDistReg(offset, Number(val & 0xffffffffn), 4);
        return write ? 0n : g.readDistReg(offset, 4);
      }
      if (write) g.writeRedistReg(vcpu, offset, Number(val & 0xffffffffn), 4);
      return write ? 0n : g.readRedistReg(vcpu, offset, 4);
    });
  }

  /**
   * vgic_v2_attr_regs_access / vgic_v2_has_attr_regs: GRP_DIST_REGS and GRP_CPU_REGS, 32-bit, the
   * attr vcpu_index[39:32] | offset[31:0] (bits [63:40] reserved and ignored, as KVM). A
   * vcpu_index the VM lacks is EINVAL; an offset with no register, or not 4-aligned, ENXIO; vCPUs
   * running or the GIC not yet initialised EBUSY (KVM's accessors would run vgic_init themselves,
   * but vgic's frames are fixed at INIT, so it answers as its GICv3 groups do). Distributor
   * registers are read as the named vCPU sees them (its banked SGIs, PPIs and ITARGETSR0-7).
   * KVM_HAS_DEVICE_ATTR needs no INIT: both frames are fixed tables.
   */
  private regAccessV2(group: number, a: bigint, write: boolean, val: bigint, probe: boolean): bigint {
    const cpuRegs = group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
    if (!cpuRegs && group !== KVM_DEV_ARM_VGIC_GRP_DIST_REGS) {
      throw new KvmError('ENXIO', `group ${group} is not a GICv2 device attribute group`);
    }
    const vcpu = Number((a & KVM_DEV_ARM_VGIC_CPUID_MASK) >> KVM_DEV_ARM_VGIC_CPUID_SHIFT);
    if (vcpu >= this.vm.options.vcpus) {
      throw new KvmError(
        'EINVAL',
        `no vCPU ${vcpu} (attr bits [39:32], vcpu_index); the VM has ${this.vm.options.vcpus}`,
      );
    }
    const offset = Number(a & KVM_DEV_ARM_VGIC_OFFSET_MASK);
    const frame = cpuRegs ? giccUserFrame : distributorV2Frame;
    if (probe) {
      try {
        checkHostAccess(frame, offset, 4);
      } catch (e) {
        if (!(e instanceof VgicError)) throw e;
        throw new KvmError('ENXIO', e.message, e.code);
      }
      return 0n;
    }
    this.vm.checkVcpusStopped('register access');
    if (!this.vm.initialized)
      throw new KvmError('EBUSY', 'register access needs the GIC initialised (CTRL_INIT)');
    const gic = this.vm.gic;
    // The value is a __u32 at attr->addr: the upper half of a wider one is not read.
    const word = Number(val & 0xffffffffn);
    return this.withErrno(() => {
      if (cpuRegs) {
        if (write) gic.writeCpuReg(vcpu, offset, word);
        return write ? 0n : BigInt(gic.readCpuReg(vcpu, offset) >>> 0);
      }
      if (write) gic.writeDistRegAs(vcpu, offset, word);
      return write ? 0n : BigInt(gic.readDistRegAs(vcpu, offset) >>> 0);
    });
  }

  /** VgicErrors of the host API as KVM's errno: an unknown register is ENXIO, a bad value EINVAL. */
  private withErrno(f: () => bigint): bigint {
    try {
      return f();
    } catch (e) {
      if (e instanceof KvmError || !(e instanceof VgicError)) throw e;
      const errno = e.code === 'INVALID_REGISTER' || e.code === 'INVALID_ADDRESS' ? 'ENXIO' : 'EINVAL';
      throw new KvmError(errno, e.message, e.code);
    }
  }

  private sysregProbe(enc: number): void {
    // The user-accessible ICC_* registers (device/sysregs.ts's list) answer on a scratch read.
    const gic = this.vm.initialized ? this.vm.gic : undefined;
    if (gic === undefined) throw new KvmError('ENXIO', 'KVM_HAS_DEVICE_ATTR on registers needs INIT in vgic');
    gic.readCpuSysreg(0, enc);
  }

  private regProbe(group: number, offset: number): void {
    const gic = this.vm.initialized ? this.vm.gic : undefined;
    if (gic === undefined) throw new KvmError('ENXIO', 'KVM_HAS_DEVICE_ATTR on registers needs INIT in vgic');
    if (group === KVM_DEV_ARM_VGIC_GRP_DIST_REGS) gic.readDistReg(offset, 4);
    else gic.readRedistReg(0, offset, 4);
  }
}

/** KVM_DEV_TYPE_ARM_VGIC_ITS: an ITS device; its frame joins the GIC at the GIC's INIT. */
export class KvmItsDevice implements KvmDevice {
  readonly type = KVM_DEV_TYPE_ARM_VGIC_ITS;
  private readonly vm: KvmVm;
  /** @internal the GRP_ADDR base, VGIC_ADDR_UNDEF until set. */
  base = VGIC_ADDR_UNDEF;
  private handle: Its | undefined;

  /** @internal KvmVm.createDevice. */
  constructor(vm: KvmVm) {
    this.vm = vm;
  }

  /** @internal the GIC's INIT gives the ITS its handle. */
  bind(its: Its): void {
    this.handle = its;
  }

  /** The host API's handle (stats, doorbell), once the GIC is initialised. */
  get its(): Its {
    if (this.handle === undefined) {
      throw new KvmError(
        'ENXIO',
        this.base === VGIC_ADDR_UNDEF
          ? "the ITS has no address (GRP_ADDR / KVM_VGIC_ITS_ADDR_TYPE, before the GIC's INIT)"
          : 'the ITS exists once the GIC is initialised (GRP_CTRL / CTRL_INIT of the GICv3 device)',
      );
    }
    return this.handle;
  }

  hasAttr(group: number, attr: bigint | number): boolean {
    const a = attrWord('attr', attr);
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        return a === BigInt(KVM_VGIC_ITS_ADDR_TYPE);
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        return (
          a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT) ||
          a === BigInt(KVM_DEV_ARM_ITS_SAVE_TABLES) ||
          a === BigInt(KVM_DEV_ARM_ITS_RESTORE_TABLES) ||
          a === BigInt(KVM_DEV_ARM_ITS_CTRL_RESET)
        );
      case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
        if (this.handle === undefined) return false;
        try {
          this.handle.readReg(Number(a), Number(a) >= GITS_TYPER && Number(a) < 0xffd0 ? 8 : 4);
          return true;
        } catch {
          return false;
        }
    }
    return false;
  }

  setAttr(group: number, attr: bigint | number, value: bigint | number = 0n): void {
    const a = attrWord('attr', attr);
    const val = attrWord('value', value, 'EFAULT');
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        if (a !== BigInt(KVM_VGIC_ITS_ADDR_TYPE)) {
          // vgic_its_set_attr / get_attr answer -ENODEV here (not mapped to -ENXIO as the GIC's).
          throw new KvmError('ENODEV', `ITS GRP_ADDR attribute ${a} is not KVM_VGIC_ITS_ADDR_TYPE (4)`);
        }
        checkIorange(this.base, val, SZ_64K, KVM_VGIC_V3_ITS_SIZE, 'ITS');
        if (this.vm.initialized)
          throw new KvmError(
            'EBUSY',
            "vgic fixes its ITSes at the GIC's INIT: set the ITS address before it",
          );
        this.base = val;
        return;
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        this.ctrl(a);
        return;
      case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
        this.regs(a, true, val);
        return;
    }
    throw new KvmError('ENXIO', `group ${group} is not an ITS device attribute group`);
  }

  getAttr(group: number, attr: bigint | number): bigint {
    const a = attrWord('attr', attr);
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        if (a !== BigInt(KVM_VGIC_ITS_ADDR_TYPE)) {
          // vgic_its_set_attr / get_attr answer -ENODEV here (not mapped to -ENXIO as the GIC's).
          throw new KvmError('ENODEV', `ITS GRP_ADDR attribute ${a} is not KVM_VGIC_ITS_ADDR_TYPE (4)`);
        }
        return this.base;
      case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
        return this.regs(a, false, 0n);
    }
    throw new KvmError('ENXIO', `group ${group} is not a readable ITS device attribute group`);
  }

  /** vgic_its_ctrl: INIT is a no-op; RESET, SAVE_TABLES, RESTORE_TABLES need the vCPUs stopped. */
  private ctrl(a: bigint): void {
    const op = Number(a);
    if (op === KVM_DEV_ARM_VGIC_CTRL_INIT) return;
    if (
      op !== KVM_DEV_ARM_ITS_CTRL_RESET &&
      op !== KVM_DEV_ARM_ITS_SAVE_TABLES &&
      op !== KVM_DEV_ARM_ITS_RESTORE_TABLES
    ) {
      throw new KvmError(
        'ENXIO',
        `ITS GRP_CTRL attribute ${a} is not INIT, SAVE_TABLES, RESTORE_TABLES or CTRL_RESET`,
      );
    }
    this.vm.checkVcpusStopped('ITS GRP_CTRL');
    const its = this.its;
    try {
      if (op === KVM_DEV_ARM_ITS_CTRL_RESET) its.reset();
      else if (op === KVM_DEV_ARM_ITS_SAVE_TABLES) its.saveTables();
      else its.restoreTables();
    } catch (e) {
      if (e instanceof KvmError || !(e instanceof VgicError)) throw e;
      // A table entry outside RAM is KVM's failed guest access; anything else a bad table or state.
      const errno = /not in RAM|outside RAM/.test(e.message)
        ? 'EFAULT'
        : op === KVM_DEV_ARM_ITS_RESTORE_TABLES && its.enabled
          ? 'EBUSY'
          : 'EINVAL';
      throw new KvmError(errno, e.message, e.code);
    }
  }

  /**
   * vgic_its_attr_regs_access: the attr is the offset; GITS_CTLR, GITS_IIDR and the ID registers
   * are 32-bit, every register from GITS_TYPER up to the ID registers 64-bit and 8-aligned (EINVAL
   * otherwise); an offset with no register is ENXIO.
   */
  private regs(a: bigint, write: boolean, val: bigint): bigint {
    const offset = Number(a & 0xffffffffn);
    if (a > 0xffffffffn) throw new KvmError('EINVAL', `ITS register offset ${hex(a)} is beyond the frame`);
    const wide = offset >= GITS_TYPER && offset < 0xffd0; // GITS_PIDR4
    if (offset % (wide ? 8 : 4) !== 0) {
      throw new KvmError('EINVAL', `ITS register offset ${hex(offset)} must be ${wide ? 8 : 4}-byte aligned`);
    }
    this.vm.checkVcpusStopped('ITS register access');
    const its = this.its;
    try {
      if (write) {
        its.writeReg(offset, wide ? val : val & 0xffffffffn, wide ? 8 : 4);
        return 0n;
      }
      return its.readReg(offset, wide ? 8 : 4);
    } catch (e) {
      if (e instanceof KvmError || !(e instanceof VgicError)) throw e;
      throw new KvmError(e.code === 'INVALID_ARGUMENT' ? 'EINVAL' : 'ENXIO', e.message, e.code);
    }
  }
}
