/**
 * The vgic device: a GICv3 with its address map, created, configured and driven from the host in
 * the shape of KVM's KVM_DEV_TYPE_ARM_VGIC_V3 device (attribute groups become methods):
 * IRQ lines (KVM_IRQ_LINE), userspace register access (GRP_DIST_REGS / GRP_REDIST_REGS /
 * GRP_CPU_SYSREGS), line levels (GRP_LEVEL_INFO), and the vCPU handles guests run on.
 *
 * Who may call: the host. Misuse throws VgicError; guest actions never throw.
 */

import { GICD_FRAME_SIZE, GICR_STRIDE_V3 } from '../arch/gicv3.ts';
import { GICR_STRIDE_V4 } from '../arch/gicv4.ts';
import {
  PPI_VTIMER,
  VGIC_FIRST_SPI,
  VGIC_MIN_LPI,
  VGIC_NR_PRIVATE_IRQS,
  VGIC_NR_SGIS,
} from '../arch/intid.ts';
import { GITS_FRAME_SIZE, GITS_TRANSLATER } from '../arch/its.ts';
import {
  advanceVirtualTicks,
  CNTFRQ_HZ,
  counterHi,
  counterNow,
  counterRead,
  initClock,
  isVirtualTime,
} from '../core/clock.ts';
import { probeRead, probeSweep, probeSwitch } from '../core/inspect.ts';
import { injectIrqSlot, updateIrqFlags } from '../core/irq.ts';
import { lockOwnerIdSet, MAIN_OWNER_ID, setLockOwnerId } from '../core/locks.ts';
import { savePendingTables } from '../core/lpi.ts';
import { haltAll, haltOwnerOf, pruneHalted, resumeAll, resumeVcpu } from '../core/vgic.ts';
import { vptCount } from '../core/vpe.ts';
import { FORWARD_BUSY, itsSetForwarding } from '../its/forwarding.ts';
import { itsInjectMsi, MSI_BLOCKED, MSI_BUSY } from '../its/translate.ts';

/** injectMsi()'s answers. */
export { MSI_BLOCKED, MSI_BUSY, MSI_COALESCED, MSI_DELIVERED } from '../its/translate.ts';

import { checkBool, checkInt, checkRegValue, describeValue, VgicError } from '../arch/errors.ts';
import { GICC_FRAME_SIZE, GICD_V2_FRAME_SIZE } from '../arch/gicv2.ts';
import { lockRun, unlockRun } from '../core/locks.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import { giccFrame, giccUserFrame } from '../mmio/gicc.ts';
import { distributorFrame, FLAG_LPIS } from '../mmio/gicd.ts';
import { distributorV2Frame } from '../mmio/gicd-v2.ts';
import { redistributorFrame, redistributorFrameV4 } from '../mmio/gicr.ts';
import { itsFrame } from '../mmio/its.ts';
import {
  checkHostAccess,
  dispatchRead,
  dispatchWrite,
  type Frame,
  type MmioContext,
} from '../mmio/region.ts';
import {
  allocateState,
  attachState,
  FLAG_GLOBAL_LRU,
  type GicState,
  H_FLAGS,
  IRQ_EDGE,
  IRQ_HW,
  IRQ_LINE_LEVEL,
  S_INJECT_REJECTED,
  S_MSI_NO_ITS,
  STAT_NAMES,
  V_EXITS,
  V_FLUSHES,
  V_FOLD_MERGED,
  V_MAINT,
  V_RUN_LOCK,
  VCPU_STRIDE,
  VPE_ACKS,
  VPE_DB_EN,
  VPE_DB_FIRED,
  VPE_DOORBELLS,
  VPE_MERGED,
  VPE_PENDING_LAST,
  VPE_STATE,
  VPE_STRIDE,
  VPE_VALID,
} from '../state/layout.ts';
import { EV_GICV3_DIST_SET_IRQ, EV_GICV3_REDIST_SET_IRQ, traceEmit, tracing } from '../trace/trace.ts';
import { Its } from './its.ts';
import { clearRunWords, resetState, validateOptions } from './setup.ts';
import { openSnapshot, prepareSnapshotCounters, sealSnapshot } from './snapshot.ts';
import { VCpu } from './vcpu.ts';
import {
  type DumpOptions,
  dumpVgicState,
  type Explanation,
  explainIrq,
  formatVgicState,
  type VgicStateDump,
} from './vgic-state.ts';

export interface RedistRegion {
  /** Guest physical base, 64K-aligned. */
  readonly base: number;
  /** Number of redistributors (128K each) in the region. */
  readonly count: number;
}

/** {@link Vgic.create}'s options (KVM_CREATE_DEVICE and its attributes in one object). */
export interface VgicV3Options {
  /**
   * The GIC generation: 3 (default) or 2, a GICv2 as KVM_DEV_TYPE_ARM_VGIC_V2 (IHI 0048B): a 4K
   * distributor and the CPU interface as an 8K MMIO frame (cpuBase), at most 8 vCPUs, SGIs with
   * their source CPU, no redistributors, ITS, LPIs or ICC_* system registers.
   */
  readonly gicVersion?: 2 | 3;
  /** GICv2 only: the CPU interface's base, 4K-aligned. Default 0x08010000 (QEMU virt). */
  readonly cpuBase?: number;
  /** Number of vCPUs, 1..512 (KVM's VGIC_V3_MAX_CPUS; 1..8 for a GICv2). Default 1. */
  readonly vcpus?: number;
  /** Number of SPIs, a multiple of 32 from 32 to 960. Default 224 (as KVM). */
  readonly spis?: number;
  /** List registers per vCPU, 1..16. Default 4. */
  readonly lrs?: number;
  /**
   * Put the state (and the RAM created here) in a SharedArrayBuffer, so that workers can attach.
   * Default: true where SharedArrayBuffer exists (Node; a cross-origin isolated page), else false.
   */
  readonly shared?: boolean;
  /** The counter follows host time ('real', default) or moves only when advanced ('virtual'). */
  readonly time?: 'real' | 'virtual';
  /** GICD base. Default 0x08000000 (QEMU virt). */
  readonly distBase?: number;
  /** Redistributor regions. Default one region at 0x080A0000 holding every vCPU's redistributor. */
  readonly redistRegions?: readonly RedistRegion[];
  /** Guest RAM to create (base 0x40000000 unless given). Default none. */
  readonly ram?: { readonly base?: number; readonly size: number };
  /**
   * ITSes (KVM_DEV_TYPE_ARM_VGIC_ITS), each a 128K frame: a count (ITS k at 0x08080000 + k·0x20000)
   * or explicit bases. With an ITS the GIC has LPIs. Default none. When more than one ITS is laid
   * out by count and no redistributor regions are given, the redistributors move up to follow the
   * last ITS (the second ITS would sit on QEMU's 0x080A0000).
   */
  readonly its?: number | readonly { readonly base: number }[];
  /** LPI INTID bits, 14..16 (the LPI store holds 2^bits - 8192 LPIs). Default 16 (as KVM). */
  readonly lpiIdBits?: number;
  /**
   * Translation-cache entries per ITS, a power of two from 1 to 65536 (its/cache.ts: direct-mapped).
   * Default 65536: one entry per EventID of a full-size device, 512 KiB per ITS.
   */
  readonly itsCacheSize?: number;
  /**
   * The MSI translation cache's design. 'per-its' (default): one lock-free direct-mapped cache per
   * ITS (its/cache.ts, KVM since 6.10). 'global-lru': the baseline Linux v6.8-rc1 had, one LRU
   * cache of 16 × vcpus entries shared by every ITS behind one global lock, emptied by any ITS's
   * invalidation (its/global-cache.ts), for benchmarks. Ignored without an ITS.
   */
  readonly translationCache?: TranslationCacheDesign;
  /**
   * GICv4.1 direct injection ('gicv4.1'; needs a GICv3 with an ITS: refused with gicVersion: 2):
   * each vCPU gets a vPE with a virtual pending table, resident while the vCPU runs and
   * non-resident when it blocks in WFI (doorbell enabled) or stops. An LPI given to setForwarding() is then a vLPI: its MSIs set the VPT bit
   * and a running vCPU takes it with ICC_IAR1 without list register, ap_list or exit; a blocked
   * one is woken by its doorbell, once per blocked phase. Default: unset (software path only).
   */
  readonly directInjection?: 'gicv4.1';
}

/** Vgic.attach's options: the creator's address map and this thread's lock owner id. */
export interface VgicAttachOptions extends VgicAddressMap {
  /**
   * This thread's lock owner id (core/locks.ts): an integer in 1..2^31-1, distinct among the threads
   * sharing the state. The creating thread's is 1; every other thread attaching to a shared state
   * must give its own (for instance 2, 3, … or a worker index + 2). It holds for the whole thread.
   */
  readonly ownerId?: number;
}

/** VgicV3Options.translationCache. */
export type TranslationCacheDesign = 'per-its' | 'global-lru';

/** Where a GIC's frames and RAM are, for Vgic.attach / Vgic.restore (the state holds the rest). */
export interface VgicAddressMap {
  readonly distBase?: number;
  /** GICv2: the CPU interface's base. */
  readonly cpuBase?: number;
  readonly redistRegions?: readonly RedistRegion[];
  readonly its?: number | readonly { readonly base: number }[];
  /**
   * RAM regions to use (for instance the creator's, shared with a worker): base and buffer, and the
   * region's dirty log (RamRegion.dirty's buffer) so that every thread marks the same one.
   */
  readonly ram?: readonly {
    readonly base: number;
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    readonly dirtyLog?: ArrayBuffer | SharedArrayBuffer;
  }[];
}

/** {@link Vgic.stats}: what guests did wrong (counted, never thrown), and per-vCPU exit counts. */
export interface VgicStats {
  /** MMIO accesses of a width or alignment the register does not allow. */
  readonly mmioBadAccess: number;
  /** Accesses to an address with no register (and loads/stores outside RAM). */
  readonly mmioUnmapped: number;
  /** Writes to read-only registers. */
  readonly mmioReadOnlyWrite: number;
  /** Accesses to system registers vgic does not implement (read as zero). */
  readonly sysregUnknown: number;
  /** SGIs whose target list named no existing vCPU. */
  readonly sgiNoTarget: number;
  /** Host injections refused (an INTID of the wrong type or that the GIC does not have). */
  readonly injectRejected: number;
  /** IRQ handler nesting stopped at MAX_IRQ_NESTING. */
  readonly irqNestingLimit: number;
  /** MSIs to a doorbell with no ITS. */
  readonly msiNoIts: number;
  /** LPI property or pending table accesses outside RAM. */
  readonly lpiTableFault: number;
  /** LPI pending states removed by DISCARD, CLEAR or an unmapping. */
  readonly lpiPendingDropped: number;
  /**
   * Per vCPU: exits, flushes with work, maintenance exits, and pending states merged at fold (an
   * edge or LPI injected again while its previous pending state still sat in an LR).
   */
  readonly vcpus: readonly { exits: number; flushes: number; maintenance: number; foldMerged: number }[];
}

/** Vgic.vpeStatus(): one vCPU's GICv4.1 vPE. */
export interface VpeStatus {
  /** GICR_VPENDBASER.Valid: the vCPU runs. */
  readonly resident: boolean;
  /** Non-resident with the doorbell enabled (blocked in WFI). */
  readonly doorbellEnabled: boolean;
  /** The doorbell of this non-residency phase has rung (or a vLPI waited as the vPE left). */
  readonly doorbellSpent: boolean;
  /** GICR_VPENDBASER.PendingLast. */
  readonly pendingLast: boolean;
  /** vLPIs pending in the VPT. */
  readonly pending: number;
  /** Doorbells raised so far. */
  readonly doorbells: number;
  /** vLPIs the CPU interface took from the VPT (ICC_IAR1) so far. */
  readonly directAcks: number;
  /**
   * Pending states merged by a move into one already there (unforwarding onto a latch an LR's
   * fold set, forwarding onto a VPT bit an in-flight MSI set, VMOVI): with foldMerged, what makes
   * every delivered MSI's fate add up.
   */
  readonly merged: number;
}

/** What an MSI became (KVM_SIGNAL_MSI's 1 / 0 / -EBUSY). */
export type MsiResult = 'delivered' | 'blocked' | 'busy';

/** The `shared` option, defaulted to what the platform offers. */
function wantShared(shared: boolean | undefined): boolean {
  const available = typeof SharedArrayBuffer === 'function';
  if (shared === true && !available) {
    throw new VgicError(
      'INVALID_CONFIG',
      'shared: true needs SharedArrayBuffer, which this context lacks (in a browser: a page without ' +
        'cross-origin isolation, i.e. the COOP/COEP headers); leave shared unset or false',
    );
  }
  return shared ?? available;
}

/**
 * Whether this code runs in a worker (a browser's or Node's). Only to refuse an attach that would
 * share the creator's owner id; looked up without importing anything host-specific.
 */
function inWorkerThread(): boolean {
  const g = globalThis as {
    WorkerGlobalScope?: unknown;
    process?: { getBuiltinModule?: (name: string) => unknown };
  };
  if (g.WorkerGlobalScope !== undefined) return true;
  const wt = g.process?.getBuiltinModule?.('node:worker_threads') as { isMainThread?: boolean } | undefined;
  return wt?.isMainThread === false;
}

/**
 * A GICv3 (distributor, redistributors, CPU interfaces, optional ITSes) as a virtual device, in the
 * shape of KVM's vgic device: create it with {@link Vgic.create}, attach another thread with
 * {@link Vgic.attach}, restore with {@link Vgic.restore}. Devices inject through
 * {@link irqLine}, {@link ppiLine} and {@link signalMsi}; each CPU runs through its
 * {@link vcpu | VCpu}. All state is in one buffer ({@link buffer}).
 */
export class Vgic {
  /** @internal The whole GIC state: typed arrays over {@link buffer} (state/layout.ts). */
  readonly state: GicState;
  /**
   * Guest RAM as vgic sees it (the ITS tables, LPI property and pending tables, and what
   * {@link VCpu.mmioRead} reaches outside the GIC frames). An emulator shares its RAM with vgic by
   * giving vgic the same bytes: `Vgic.create({ ram: { base, size } })` allocates it (shared where
   * the platform allows) and the emulator's CPU reads and writes `memory.regions[i].bytes`; or the
   * emulator adds its own buffer with `memory.addRam(base, size, buffer)`.
   */
  readonly memory: GuestMemory;
  /** Guest physical base of the distributor's 64K frame. */
  readonly distBase: number;
  /** The redistributor regions (guest physical base, vCPUs in each). */
  readonly redistRegions: readonly RedistRegion[];
  /** 3, or 2 for a GICv2 (options.gicVersion; recorded in the state). */
  readonly gicVersion: 2 | 3;
  /** A GICv2's CPU interface base; -1 on a GICv3. */
  readonly cpuBase: number;
  /** The distributor frame of this GIC's generation. */
  private readonly distFrame: Frame;
  /** @internal Per-thread dispatcher context. */
  readonly ctx: MmioContext;
  private readonly vcpus: VCpu[] = [];

  /** Guest physical base of each ITS's 128K frame. */
  readonly itsBases: readonly number[];
  private readonly itsHandles: Its[] = [];

  private constructor(
    state: GicState,
    o: {
      distBase: number;
      cpuBase: number;
      regions: readonly RedistRegion[];
      itsBases: readonly number[];
    },
    memory: GuestMemory,
  ) {
    this.state = state;
    this.gicVersion = state.gicv2 ? 2 : 3;
    this.cpuBase = o.cpuBase;
    this.distFrame = state.gicv2 ? distributorV2Frame : distributorFrame;
    this.distBase = o.distBase;
    this.redistRegions = o.regions;
    this.itsBases = o.itsBases;
    this.memory = memory;
    this.ctx = { s: state, mem: memory, hi: 0 };
    for (let v = 0; v < state.nVcpus; v++) this.vcpus.push(new VCpu(this, v));
    for (let k = 0; k < o.itsBases.length; k++) this.itsHandles.push(new Its(this, k));
  }

  /** Creates a GICv3 (KVM_CREATE_DEVICE + address and NR_IRQS attributes + CTRL_INIT in one step). */
  static create(options: VgicV3Options = {}): Vgic {
    const o = validateOptions(options);
    const state = allocateState(
      {
        nVcpus: o.nVcpus,
        nSpis: o.nSpis,
        nLrs: o.nLrs,
        nLpis: o.nLpis,
        nIts: o.itsBases.length,
        itsCache: o.itsCache,
        globalCache: o.globalCache,
        gicVersion: o.gicVersion,
        direct: o.direct,
      },
      wantShared(options.shared),
    );
    const time = options.time ?? 'real';
    if (time !== 'real' && time !== 'virtual') {
      throw new VgicError('INVALID_CONFIG', `time must be 'real' or 'virtual', got ${String(time)}`);
    }
    initClock(state, time === 'virtual');
    resetState(state, o.regions);
    const memory = new GuestMemory();
    // RAM is shared wherever the platform allows (memory/guest-memory.ts), even for an unshared
    // GIC: a worker may still be given it, and the machine's CPUs map it as they always have.
    if (options.ram) memory.addRam(options.ram.base ?? 0x40000000, options.ram.size);
    return new Vgic(state, o, memory);
  }

  /**
   * Attaches to the state of a vgic created elsewhere (e.g. in another thread) through its buffer.
   * The address map is not part of the state: pass the same one the creator used (addressMap()).
   * A thread other than the creator's attaching to a shared state passes its own `ownerId`.
   */
  static attach(buffer: ArrayBuffer | SharedArrayBuffer, options: VgicAttachOptions = {}): Vgic {
    const map = options;
    if (map.ownerId !== undefined) setLockOwnerId(map.ownerId);
    const state = attachState(buffer);
    if (state.shared && !lockOwnerIdSet() && inWorkerThread()) {
      // Two threads with one owner id would each take the other's locks for their own.
      throw new VgicError(
        'INVALID_ARGUMENT',
        `a worker attaching to a shared GIC needs its own lock owner id: Vgic.attach(buffer, { ownerId }), ` +
          `an integer in 2..2^31-1 distinct per thread (the creator's is ${MAIN_OWNER_ID})`,
      );
    }
    return new Vgic(state, Vgic.mapFor(state, map), Vgic.memoryFor(map));
  }

  /** The address map of an attached or restored state: the geometry comes from the state. */
  private static mapFor(state: GicState, map: VgicAddressMap) {
    if (state.gicv2) {
      return validateOptions({
        gicVersion: 2,
        vcpus: state.nVcpus,
        spis: state.nSpis,
        lrs: state.nLrs,
        ...(map.distBase !== undefined ? { distBase: map.distBase } : {}),
        ...(map.cpuBase !== undefined ? { cpuBase: map.cpuBase } : {}),
      });
    }
    const o = validateOptions({
      vcpus: state.nVcpus,
      spis: state.nSpis,
      lrs: state.nLrs,
      its: map.its ?? state.nIts,
      ...(state.nIts > 0
        ? { lpiIdBits: Math.log2(VGIC_MIN_LPI + state.nLpis), itsCacheSize: state.itsCacheSize }
        : {}),
      ...(map.distBase !== undefined ? { distBase: map.distBase } : {}),
      ...(map.redistRegions !== undefined ? { redistRegions: map.redistRegions } : {}),
    });
    if (o.itsBases.length !== state.nIts) {
      throw new VgicError(
        'INVALID_CONFIG',
        `the state has ${state.nIts} ITSes; the map gives ${o.itsBases.length}`,
      );
    }
    return o;
  }

  /** Guest RAM for an attached or restored GIC: the creator's RAM buffers, shared. */
  private static memoryFor(map: VgicAddressMap): GuestMemory {
    const mem = new GuestMemory();
    for (const r of map.ram ?? []) mem.addRam(r.base, r.buffer.byteLength, r.buffer, r.dirtyLog);
    return mem;
  }

  /**
   * The one buffer holding the whole GIC state: give it, with {@link addressMap}, to
   * `Vgic.attach` on another thread (a SharedArrayBuffer when the GIC is shared).
   */
  get buffer(): ArrayBuffer | SharedArrayBuffer {
    return this.state.buffer;
  }

  /** Whether the state is in a SharedArrayBuffer (other threads may attach to it). */
  get shared(): boolean {
    return this.state.shared;
  }

  /** The address map to give Vgic.attach in another thread (RAM buffers included: they are shared). */
  addressMap(): VgicAddressMap {
    if (this.gicVersion === 2) {
      return {
        distBase: this.distBase,
        cpuBase: this.cpuBase,
        ram: this.memory.regions.map((r) => ({ base: r.base, buffer: r.bytes.buffer })),
      };
    }
    return {
      distBase: this.distBase,
      redistRegions: this.redistRegions,
      its: this.itsBases.map((base) => ({ base })),
      ram: this.memory.regions.map((r) => ({
        base: r.base,
        buffer: r.bytes.buffer,
        dirtyLog: r.dirty.buffer,
      })),
    };
  }

  /** How many vCPUs (and redistributors) the GIC has. */
  get nVcpus(): number {
    return this.state.nVcpus;
  }

  /** Number of implemented INTIDs below the LPIs (32 + SPIs), GICD_TYPER's view. */
  get nrIrqs(): number {
    return this.state.nrIrqs;
  }

  /** Whether the GIC has LPIs (it was created with at least one ITS). */
  get hasLpis(): boolean {
    return (this.state.header[H_FLAGS] & FLAG_LPIS) !== 0;
  }

  /**
   * The translation cache's design in use (VgicV3Options.translationCache), as recorded in the state:
   * a GIC attached or restored from a 'global-lru' one reports 'global-lru'. 'per-its' without an ITS.
   */
  get translationCache(): TranslationCacheDesign {
    return (this.state.header[H_FLAGS] & FLAG_GLOBAL_LRU) !== 0 ? 'global-lru' : 'per-its';
  }

  /** The handle of vCPU `index` (0 ≤ index < nVcpus; a VgicError otherwise). The same object each time. */
  vcpu(index: number): VCpu {
    checkInt('INVALID_VCPU', 'vcpu', index, 0, this.state.nVcpus - 1);
    return this.vcpus[index];
  }

  // ---- Interrupt lines (KVM_IRQ_LINE) ----

  private spiSlot(intid: number): number {
    const s = this.state;
    if (!Number.isInteger(intid) || intid < VGIC_FIRST_SPI || intid >= s.nrIrqs) {
      s.stats[S_INJECT_REJECTED]++;
      throw new VgicError(
        'INVALID_INTID',
        `SPI INTID must be an integer in 32..${s.nrIrqs - 1}, got ${describeValue(intid)}`,
      );
    }
    return s.slotOf(0, intid);
  }

  /** Drives an SPI's input line (KVM_ARM_IRQ_TYPE_SPI). Returns whether the GIC took the change. */
  irqLine(intid: number, level: boolean): boolean {
    const slot = this.spiSlot(intid);
    const on = checkBool('irqLine level', level);
    if (tracing.on !== 0) traceEmit(EV_GICV3_DIST_SET_IRQ, intid, on ? 1 : 0);
    return injectIrqSlot(this.state, slot, on);
  }

  /** Drives a PPI's input line on one vCPU (KVM_ARM_IRQ_TYPE_PPI). The timer's PPI 27 is owned by the timer. */
  ppiLine(vcpu: number, intid: number, level: boolean): boolean {
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    if (
      !Number.isInteger(intid) ||
      intid < VGIC_NR_SGIS ||
      intid >= VGIC_NR_PRIVATE_IRQS ||
      intid === PPI_VTIMER
    ) {
      this.state.stats[S_INJECT_REJECTED]++;
      throw new VgicError(
        'INVALID_INTID',
        `PPI INTID must be an integer in 16..31 other than the timer's ${PPI_VTIMER}, got ${describeValue(intid)}`,
      );
    }
    const on = checkBool('ppiLine level', level);
    if (tracing.on !== 0) traceEmit(EV_GICV3_REDIST_SET_IRQ, vcpu, intid, on ? 1 : 0);
    return injectIrqSlot(this.state, this.state.slotOf(vcpu, intid), on);
  }

  // ---- Userspace register access (KVM_DEV_ARM_VGIC_GRP_DIST_REGS / _REDIST_REGS) ----

  /** Reads a distributor register with userspace semantics (e.g. ISPENDR shows the latch). */
  readDistReg(offset: number, size: 4 | 8 = 4): bigint {
    checkHostAccess(this.distFrame, offset, size);
    const lo = dispatchRead(this.distFrame, this.ctx, 0, offset, size, true);
    return (BigInt(this.ctx.hi) << 32n) | BigInt(lo);
  }

  /** Writes a distributor register: `value` a bigint or a safe integer that fits `size` bytes. */
  writeDistReg(offset: number, value: bigint | number, size: 4 | 8 = 4): void {
    checkHostAccess(this.distFrame, offset, size);
    const w = checkRegValue('register value', value, size);
    dispatchWrite(this.distFrame, this.ctx, 0, offset, size, w.lo, w.hi, true);
  }

  /**
   * GICv2 distributor registers banked per CPU (INTIDs 0-31, ITARGETSR0-7, CPENDSGIR/SPENDSGIR)
   * as vCPU `vcpu` sees them: KVM_DEV_ARM_VGIC_GRP_DIST_REGS with the attribute's cpuid field.
   */
  readDistRegAs(vcpu: number, offset: number): number {
    this.needV2('readDistRegAs');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(this.distFrame, offset, 4);
    return dispatchRead(this.distFrame, this.ctx, vcpu, offset, 4, true);
  }

  writeDistRegAs(vcpu: number, offset: number, value: number): void {
    this.needV2('writeDistRegAs');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(this.distFrame, offset, 4);
    const w = checkRegValue('register value', value, 4);
    dispatchWrite(this.distFrame, this.ctx, vcpu, offset, 4, w.lo, 0, true);
  }

  /**
   * KVM_DEV_ARM_VGIC_GRP_CPU_REGS (GICv2): reads a CPU interface register of `vcpu` without running
   * it: GICC_CTLR, GICC_PMR (as GICH_VMCR.VMPriMask: the 5 priority bits in [4:0], KVM's ABI),
   * GICC_BPR, GICC_ABPR, GICC_APR0-3, GICC_IIDR (offsets as in the GICC frame, 32-bit).
   */
  readCpuReg(vcpu: number, offset: number): number {
    this.needV2('readCpuReg');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(giccUserFrame, offset, 4);
    const s = this.state;
    lockRun(s, vcpu * VCPU_STRIDE + V_RUN_LOCK);
    try {
      return dispatchRead(giccUserFrame, this.ctx, vcpu, offset, 4, true);
    } finally {
      unlockRun(s, vcpu * VCPU_STRIDE + V_RUN_LOCK);
    }
  }

  /** KVM_DEV_ARM_VGIC_GRP_CPU_REGS write (GICv2): see readCpuReg. */
  writeCpuReg(vcpu: number, offset: number, value: number): void {
    this.needV2('writeCpuReg');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(giccUserFrame, offset, 4);
    const w = checkRegValue('register value', value, 4);
    const s = this.state;
    lockRun(s, vcpu * VCPU_STRIDE + V_RUN_LOCK);
    try {
      dispatchWrite(giccUserFrame, this.ctx, vcpu, offset, 4, w.lo, 0, true);
    } finally {
      unlockRun(s, vcpu * VCPU_STRIDE + V_RUN_LOCK);
    }
  }

  private needV2(what: string): void {
    if (this.gicVersion !== 2)
      throw new VgicError('INVALID_CONFIG', `${what} is for a GICv2 (gicVersion: 2); this GIC is a GICv3`);
  }

  private needV3(what: string): void {
    if (this.gicVersion !== 3)
      throw new VgicError(
        'INVALID_CONFIG',
        `${what} is for a GICv3; a GICv2 has no redistributors, ITS or ICC_* system registers ` +
          '(use readDistReg/readDistRegAs and readCpuReg/writeCpuReg)',
      );
  }

  /** Reads a redistributor register (RD_base at 0, SGI_base at 0x10000) of vCPU `vcpu`. */
  readRedistReg(vcpu: number, offset: number, size: 4 | 8 = 4): bigint {
    this.needV3('readRedistReg');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    const f = this.state.direct ? redistributorFrameV4 : redistributorFrame;
    checkHostAccess(f, offset, size);
    const lo = dispatchRead(f, this.ctx, vcpu, offset, size, true);
    return (BigInt(this.ctx.hi) << 32n) | BigInt(lo);
  }

  /** Userspace write of a redistributor register of `vcpu` (save/restore semantics, as readRedistReg). */
  writeRedistReg(vcpu: number, offset: number, value: bigint | number, size: 4 | 8 = 4): void {
    this.needV3('writeRedistReg');
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    const f = this.state.direct ? redistributorFrameV4 : redistributorFrame;
    checkHostAccess(f, offset, size);
    const w = checkRegValue('register value', value, size);
    dispatchWrite(f, this.ctx, vcpu, offset, size, w.lo, w.hi, true);
  }

  /**
   * GRP_LEVEL_INFO / VGIC_LEVEL_INFO_LINE_LEVEL: the line levels of 32 INTIDs from `intid`
   * (a multiple of 32) as a bitmap, as seen by `vcpu` for private ones.
   */
  getLineLevel(vcpu: number, intid: number): number {
    const s = this.state;
    this.checkLevelInfo(vcpu, intid);
    let value = 0;
    for (let i = 0; i < 32; i++) {
      const slot = s.slotOf(vcpu, intid + i);
      if (slot >= 0 && intid + i < s.nrIrqs && s.irqFlags[slot] & IRQ_LINE_LEVEL) value |= 1 << i;
    }
    return value >>> 0;
  }

  /** Restores line levels (level-sensitive interrupts only; SGIs are ignored). */
  setLineLevel(vcpu: number, intid: number, bitmap: number): void {
    const s = this.state;
    this.checkLevelInfo(vcpu, intid);
    checkInt('INVALID_ARGUMENT', 'line level bitmap (int32 or uint32)', bitmap, -0x80000000, 0xffffffff);
    for (let i = 0; i < 32; i++) {
      const id = intid + i;
      if (id < VGIC_NR_SGIS || id >= s.nrIrqs) continue;
      const slot = s.slotOf(vcpu, id);
      if (s.irqFlags[slot] & IRQ_EDGE) continue;
      const h = haltOwnerOf(s, slot);
      if (bitmap & (1 << i)) updateIrqFlags(s, slot, IRQ_LINE_LEVEL, 0);
      else updateIrqFlags(s, slot, 0, IRQ_LINE_LEVEL);
      resumeVcpu(s, h);
    }
  }

  private checkLevelInfo(vcpu: number, intid: number): void {
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkInt('INVALID_INTID', 'level info INTID', intid, 0, this.state.nrIrqs - 1);
    if (intid % 32 !== 0)
      throw new VgicError('INVALID_INTID', `level info INTID must be a multiple of 32, got ${intid}`);
  }

  // ---- Guest-physical MMIO, as a vCPU's access (used by VCpu) ----

  /** @internal Offset inside the frame the last resolve() found. */
  resolvedOffset = 0;
  /** @internal The redistributor's vCPU for a GICR frame, -1 for the distributor (the accessor's vCPU). */
  resolvedVcpu = -1;

  /**
   * @internal The GIC frame holding a guest physical address, or undefined; the offset and vCPU go to
   * resolvedOffset / resolvedVcpu (no allocation per access).
   */
  resolve(addr: number): Frame | undefined {
    if (this.gicVersion === 2) {
      if (addr >= this.distBase && addr < this.distBase + GICD_V2_FRAME_SIZE) {
        this.resolvedOffset = addr - this.distBase;
        this.resolvedVcpu = -1;
        return distributorV2Frame;
      }
      if (addr >= this.cpuBase && addr < this.cpuBase + GICC_FRAME_SIZE) {
        this.resolvedOffset = addr - this.cpuBase;
        this.resolvedVcpu = -1;
        return giccFrame;
      }
      return undefined;
    }
    if (addr >= this.distBase && addr < this.distBase + GICD_FRAME_SIZE) {
      this.resolvedOffset = addr - this.distBase;
      this.resolvedVcpu = -1;
      return distributorFrame;
    }
    let first = 0;
    const regions = this.redistRegions;
    // GICv4.1 redistributors are 256K (VLPI_base frame): QEMU's gic-version=4 layout.
    const stride = this.state.direct ? GICR_STRIDE_V4 : GICR_STRIDE_V3;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      if (addr >= r.base && addr < r.base + r.count * stride) {
        const idx = Math.floor((addr - r.base) / stride);
        const v = first + idx;
        if (v >= this.state.nVcpus) return undefined;
        this.resolvedOffset = addr - r.base - idx * stride;
        this.resolvedVcpu = v;
        return stride === GICR_STRIDE_V4 ? redistributorFrameV4 : redistributorFrame;
      }
      first += r.count;
    }
    const its = this.itsBases;
    for (let k = 0; k < its.length; k++) {
      if (addr >= its[k] && addr < its[k] + GITS_FRAME_SIZE) {
        this.resolvedOffset = addr - its[k];
        this.resolvedVcpu = k;
        return itsFrame;
      }
    }
    return undefined;
  }

  // ---- MSIs and the ITSes (KVM_SIGNAL_MSI, KVM_DEV_TYPE_ARM_VGIC_ITS) ----

  /** How many ITSes the GIC has. */
  get nIts(): number {
    return this.itsHandles.length;
  }

  /** ITS `index`'s handle: registers, table save/restore, error counters. */
  its(index: number): Its {
    if (this.itsHandles.length === 0)
      throw new VgicError('INVALID_CONFIG', 'this GIC has no ITS (create it with its: 1)');
    checkInt('INVALID_ARGUMENT', 'ITS index', index, 0, this.itsHandles.length - 1);
    return this.itsHandles[index];
  }

  /**
   * KVM_SIGNAL_MSI: an MSI written by device `devid` to `doorbell` (an ITS's GITS_TRANSLATER, e.g.
   * 0x08090040) with data `eventid`. Answers 'delivered' (1), 'blocked' (0: no valid mapping) or
   * 'busy' (-EBUSY: the ITS or the target's LPIs are disabled). A doorbell that is no ITS's is
   * counted (stats().msiNoIts) and answers 'blocked': the address may come from a guest-programmed
   * device. Cost on a translation-cache hit: no lock, no allocation.
   */
  signalMsi(msi: { readonly doorbell: number; readonly devid: number; readonly eventid: number }): MsiResult {
    if (typeof msi !== 'object' || msi === null) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `signalMsi takes { doorbell, devid, eventid }, got ${describeValue(msi)}`,
      );
    }
    const r = this.injectMsi(msi.doorbell, msi.devid, msi.eventid);
    return r > 0 ? 'delivered' : r === MSI_BUSY ? 'busy' : 'blocked';
  }

  /**
   * signalMsi for injector loops: no object in or out. Answers MSI_DELIVERED (1: the LPI became
   * pending), MSI_COALESCED (2: it was pending already and the MSI merged into it: KVM also answers
   * 1), MSI_BLOCKED (0) or MSI_BUSY (-1). Any thread; the translation-cache hit takes no lock.
   */
  injectMsi(doorbell: number, devid: number, eventid: number): number {
    // typeof first: `>>>` on a bigint throws a TypeError.
    if (
      !(
        typeof devid === 'number' &&
        typeof eventid === 'number' &&
        typeof doorbell === 'number' &&
        devid >>> 0 === devid &&
        eventid >>> 0 === eventid
      )
    ) {
      checkInt('INVALID_ARGUMENT', 'MSI devid', devid, 0, 0xffffffff);
      checkInt('INVALID_ARGUMENT', 'MSI eventid', eventid, 0, 0xffffffff);
      checkInt('INVALID_ARGUMENT', 'MSI doorbell', doorbell, 0, Number.MAX_SAFE_INTEGER);
    }
    const its = this.itsBases;
    for (let k = 0; k < its.length; k++) {
      if (doorbell === its[k] + GITS_TRANSLATER)
        return itsInjectMsi(this.state, this.memory, k, devid, eventid);
    }
    const s = this.state;
    if (s.shared) Atomics.add(s.stats, S_MSI_NO_ITS, 1);
    else s.stats[S_MSI_NO_ITS]++;
    return MSI_BLOCKED;
  }

  /**
   * kvm_vgic_v4_set_forwarding: the LPI that an MSI (`doorbell`, `devid`, `eventid`) translates to
   * becomes a vLPI of its target vCPU's vPE (GICv4.1 direct injection). Its pending state, if
   * any, moves into the vPE's virtual pending table; from then on its MSIs (and INT) set that bit
   * without a lock, and ICC_IAR1 on a running vCPU takes it without list register or exit. It
   * follows MOVI/MOVALL/MAPC retargets (VMOVI); DISCARD or an unmapping ends it. Returns the LPI's
   * INTID. Throws VgicError when the GIC was created without `directInjection: 'gicv4.1'`, the
   * doorbell is no ITS's, or the MSI does not translate (no mapping, collection unmapped, ITS or
   * the target's LPIs disabled) or its target's vPE slot is mapped by the guest (VMAPP). Any thread.
   */
  setForwarding(msi: {
    readonly doorbell: number;
    readonly devid: number;
    readonly eventid: number;
  }): number {
    return this.forwarding(msi, true, 'setForwarding');
  }

  /**
   * kvm_vgic_v4_unset_forwarding: the LPI goes back to the software path; a pending VPT bit
   * becomes its pending state there (queued on its target). Returns the LPI's INTID (also when it
   * was not forwarded). Throws as setForwarding().
   */
  unsetForwarding(msi: {
    readonly doorbell: number;
    readonly devid: number;
    readonly eventid: number;
  }): number {
    return this.forwarding(msi, false, 'unsetForwarding');
  }

  private forwarding(
    msi: { readonly doorbell: number; readonly devid: number; readonly eventid: number },
    on: boolean,
    name: string,
  ): number {
    if (typeof msi !== 'object' || msi === null) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `${name} takes { doorbell, devid, eventid }, got ${describeValue(msi)}`,
      );
    }
    const s = this.state;
    if (!s.direct) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `${name} needs a GIC created with directInjection: 'gicv4.1' (this one has no vPEs)`,
      );
    }
    checkInt('INVALID_ARGUMENT', 'MSI devid', msi.devid, 0, 0xffff);
    checkInt('INVALID_ARGUMENT', 'MSI eventid', msi.eventid, 0, 0xffff);
    checkInt('INVALID_ADDRESS', 'MSI doorbell', msi.doorbell, 0, Number.MAX_SAFE_INTEGER);
    const k = this.itsBases.findIndex((b) => b + GITS_TRANSLATER === msi.doorbell);
    if (k < 0) {
      throw new VgicError(
        'INVALID_ADDRESS',
        `${name}: 0x${msi.doorbell.toString(16)} is no ITS's GITS_TRANSLATER (${this.itsBases
          .map((b) => `0x${(b + GITS_TRANSLATER).toString(16)}`)
          .join(', ')})`,
      );
    }
    const r = itsSetForwarding(s, this.memory, k, msi.devid, msi.eventid, on);
    if (r < 0) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `${name}: device ${msi.devid} event ${msi.eventid} does not translate on ITS ${k} (${
          r === FORWARD_BUSY
            ? 'the ITS or its target redistributor has LPIs disabled'
            : "no valid mapping, its collection is not mapped, or its target's vPE slot is the guest's (VMAPP)"
        })`,
      );
    }
    return s.irqIntid[r];
  }

  /** Whether the GIC has GICv4.1 direct injection (VgicV3Options.directInjection). */
  get directInjection(): 'gicv4.1' | undefined {
    return this.state.direct ? 'gicv4.1' : undefined;
  }

  /**
   * vCPU `v`'s vPE (direct injection): resident (GICR_VPENDBASER.Valid), doorbell enabled and
   * spent in this non-residency phase, PendingLast, vLPIs pending in its VPT, doorbells raised and
   * vLPIs its CPU interface took from the VPT so far. Throws without direct injection.
   */
  vpeStatus(v: number): VpeStatus {
    const s = this.state;
    checkInt('INVALID_VCPU', 'vcpu', v, 0, s.nVcpus - 1);
    if (!s.direct) throw new VgicError('INVALID_ARGUMENT', "vpeStatus needs directInjection: 'gicv4.1'");
    const b = v * VPE_STRIDE;
    const st = Atomics.load(s.vpe, b + VPE_STATE);
    return {
      resident: (st & VPE_VALID) !== 0,
      doorbellEnabled: (st & VPE_DB_EN) !== 0,
      doorbellSpent: (st & VPE_DB_FIRED) !== 0,
      pendingLast: (st & VPE_PENDING_LAST) !== 0,
      pending: vptCount(s, v),
      doorbells: Atomics.load(s.vpe, b + VPE_DOORBELLS),
      directAcks: Atomics.load(s.vpe, b + VPE_ACKS),
      merged: Atomics.load(s.vpe, b + VPE_MERGED),
    };
  }

  /** KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES: every mapped LPI's pending state into guest RAM. */
  savePendingTables(): void {
    const s = this.state;
    haltAll(s);
    try {
      savePendingTables(s, this.memory);
    } finally {
      resumeAll(s);
    }
  }

  // ---- Time ----

  /** CNTFRQ_EL0: the counter's frequency in Hz (62.5 MHz, as QEMU's virt). */
  get counterHz(): number {
    return CNTFRQ_HZ;
  }

  /** Whether the counter moves only when advanced (options.time 'virtual'). */
  get virtualTime(): boolean {
    return isVirtualTime(this.state);
  }

  /** CNTVCT now, as a number: exact below 2^53, rounded above (counter64() is exact). */
  counter(): number {
    return counterNow(this.state);
  }

  /** CNTVCT now, exactly (0 .. 2^64 - 1). */
  counter64(): bigint {
    const lo = counterRead(this.state);
    return (BigInt(counterHi) << 32n) | BigInt(lo);
  }

  /**
   * Advances virtual time by `ticks` of CNTFRQ (62.5 MHz), an integer in 0..2^53-1; the counter
   * wraps modulo 2^64 as hardware's does. Only with time: 'virtual'.
   */
  advanceTime(ticks: number): void {
    if (!isVirtualTime(this.state))
      throw new VgicError('INVALID_ARGUMENT', "advanceTime needs time: 'virtual'");
    checkInt('INVALID_ARGUMENT', 'advanceTime ticks', ticks, 0, Number.MAX_SAFE_INTEGER);
    advanceVirtualTicks(this.state, ticks);
  }

  /** The error counters (guest mistakes, counted instead of thrown) and per-vCPU exit statistics. */
  stats(): VgicStats {
    const s = this.state;
    const out: Record<string, unknown> = {};
    STAT_NAMES.forEach((n, i) => {
      out[n] = s.stats[i];
    });
    out.vcpus = Array.from({ length: s.nVcpus }, (_, v) => ({
      exits: s.vcpu[v * VCPU_STRIDE + V_EXITS],
      flushes: s.vcpu[v * VCPU_STRIDE + V_FLUSHES],
      maintenance: s.vcpu[v * VCPU_STRIDE + V_MAINT],
      foldMerged: s.vcpu[v * VCPU_STRIDE + V_FOLD_MERGED],
    }));
    return out as unknown as VgicStats;
  }

  // ---- Seeing inside (KVM's debugfs vgic-state; docs/inspect.md) ----

  /**
   * The whole GIC state as plain data, like KVM's debugfs `vgic-state`: distributor, each vCPU's
   * ap_list, list registers, ICH_VMCR fields and APRs, every interrupt's state (mapped LPIs
   * included), each ITS's collections, devices with their ITTs, translation cache and error
   * counters, and the statistics. Reads only (no lock, nothing changes): callable while vCPUs run on
   * other threads, where it is a sample. Guest-sized parts are bounded by `options`.
   */
  dumpState(options?: DumpOptions): VgicStateDump {
    const { vcpus: _, ...flat } = this.stats() as unknown as Record<string, number> & { vcpus: unknown };
    return dumpVgicState(this.state, this.memory, flat, options);
  }

  private latencyCursor: number[] | undefined;

  /**
   * @internal The inspector's acknowledge-latency probes on or off (core/inspect.ts): while on,
   * an MSI that makes an LPI pending may be timed to the IAR that returns it, on any thread.
   */
  setLatencyProbes(on: boolean): void {
    probeSwitch(this.state, on);
    this.latencyCursor = undefined;
  }

  /**
   * @internal The probes' latencies (host ms) written since the last call, over every vCPU; frees
   * the probes whose interrupt was lost. The inspector's sampler.
   */
  takeLatencies(): number[] {
    const s = this.state;
    const first = this.latencyCursor === undefined;
    this.latencyCursor ??= new Array<number>(s.nVcpus).fill(0);
    const out: number[] = [];
    for (let v = 0; v < s.nVcpus; v++) {
      const r = probeRead(s, v, this.latencyCursor[v]);
      if (!first) out.push(...r.latencies);
      this.latencyCursor[v] = r.count;
    }
    probeSweep(s);
    return out;
  }

  /** dumpState() as text, laid out as KVM's debugfs file. */
  dumpStateText(options?: DumpOptions): string {
    return formatVgicState(this.dumpState(options));
  }

  /**
   * Why is an interrupt not being signalled? The first architectural reason, in one line (disabled,
   * not pending, active, group disabled at the distributor, routed elsewhere, LPIs disabled, group
   * disabled at the CPU interface, masked by PMR, not above the running priority, another interrupt
   * first, …), or how it is signalled. `vcpu`: the vCPU of an SGI/PPI (required), or the vCPU to
   * ask about for an SPI/LPI (default: its target).
   */
  explain(intid: number, vcpu?: number): Explanation {
    const s = this.state;
    if (vcpu !== undefined) checkInt('INVALID_VCPU', 'explain vcpu', vcpu, 0, s.nVcpus - 1);
    checkInt('INVALID_INTID', 'explain INTID', intid, 0, 0xffffff);
    if (intid < VGIC_NR_PRIVATE_IRQS && vcpu === undefined)
      throw new VgicError('INVALID_VCPU', `explain of SGI/PPI ${intid} needs the vCPU it belongs to`);
    const r = explainIrq(s, intid, vcpu ?? -1);
    if (r === undefined) {
      throw new VgicError(
        'INVALID_INTID',
        `INTID ${intid} is not implemented: SGIs/PPIs 0..31, SPIs 32..${s.nrIrqs - 1}${s.nLpis > 0 ? `, LPIs ${VGIC_MIN_LPI}..${VGIC_MIN_LPI + s.nLpis - 1}` : ''}`,
      );
    }
    return r;
  }

  // ---- CPU interface state (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) ----

  /** Reads a CPU-interface register of `vcpu` without running it (ICC_PMR_EL1, ICC_AP1R0_EL1, …). */
  readCpuSysreg(vcpu: number, enc: number): number {
    this.needV3('readCpuSysreg');
    return this.vcpu(vcpu).userReadSysreg(enc);
  }

  /** Writes a CPU-interface register of `vcpu` without running it (one of USER_SYSREGS). */
  writeCpuSysreg(vcpu: number, enc: number, value: number): void {
    this.needV3('writeCpuSysreg');
    const cpu = this.vcpu(vcpu);
    checkInt('INVALID_ARGUMENT', 'CPU interface register value', value, 0, 0xffffffff);
    cpu.userWriteSysreg(enc, value);
  }

  // ---- Save and restore ----

  /**
   * The whole GIC state as bytes, in snapshot format v2 (docs/architecture.md, Save and restore):
   * the state buffer with its exact length, format and a checksum in the header. Every vCPU in the
   * guest is first made to exit (its LRs folded back) and every ap_list is pruned, so the copy
   * holds no live LR state and every interrupt sits where its oracle says; each vCPU re-enters at
   * its next instruction. With worker threads, stop the vCPUs before saving (as KVM requires).
   */
  snapshot(): Uint8Array<ArrayBuffer> {
    const s = this.state;
    haltAll(s);
    let copy: Uint8Array<ArrayBuffer>;
    try {
      for (let v = 0; v < s.nVcpus; v++) pruneHalted(s, v);
      copy = new Uint8Array(s.buffer).slice();
    } finally {
      resumeAll(s);
    }
    // The copy holds this thread's run_locks and the runtime's sleep words: a restored GIC starts free.
    const saved = attachState(copy.buffer);
    clearRunWords(saved);
    // Statistics folded into one unowned slot, the inspector's probes dropped (snapshot.ts).
    prepareSnapshotCounters(saved);
    sealSnapshot(copy.buffer);
    return copy;
  }

  /**
   * A new GIC from a snapshot (and the address map it was created with). Every field is checked
   * (device/snapshot.ts): a corrupt snapshot, or one of another format, throws VgicError and
   * nothing is created.
   */
  static restore(bytes: Uint8Array, map: VgicAddressMap & { shared?: boolean } = {}): Vgic {
    const state = openSnapshot(bytes, wantShared(map.shared));
    return new Vgic(state, Vgic.mapFor(state, map), Vgic.memoryFor(map));
  }

  /** Is `intid` HW-mapped on `vcpu` (for inspection and tests). */
  isHwMapped(vcpu: number, intid: number): boolean {
    const slot = this.state.slotOf(vcpu, intid);
    return slot >= 0 && (this.state.irqFlags[slot] & IRQ_HW) !== 0;
  }
}
