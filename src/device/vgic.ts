/**
 * The vgic device: a GICv3 with its address map, created, configured and driven from the host in
 * the shape of KVM's KVM_DEV_TYPE_ARM_VGIC_V3 device (attribute groups become methods):
 * IRQ lines (KVM_IRQ_LINE), userspace register access (GRP_DIST_REGS / GRP_REDIST_REGS /
 * GRP_CPU_SYSREGS), line levels (GRP_LEVEL_INFO), and the vCPU handles guests run on.
 *
 * Who may call: the host. Misuse throws VgicError; guest actions never throw.
 */

import { GICD_FRAME_SIZE, GICR_STRIDE_V3 } from '../arch/gicv3.ts';
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
import { GuestMemory } from '../memory/guest-memory.ts';
import { distributorFrame, FLAG_LPIS } from '../mmio/gicd.ts';
import { redistributorFrame } from '../mmio/gicr.ts';
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
import { Its } from './its.ts';
import { clearRunWords, resetState, validateOptions } from './setup.ts';
import { openSnapshot, sealSnapshot } from './snapshot.ts';
import { VCpu } from './vcpu.ts';

export interface RedistRegion {
  /** Guest physical base, 64K-aligned. */
  readonly base: number;
  /** Number of redistributors (128K each) in the region. */
  readonly count: number;
}

export interface VgicV3Options {
  /** Number of vCPUs, 1..512 (KVM's VGIC_V3_MAX_CPUS). Default 1. */
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
   * GICv4.1 direct injection ('gicv4.1'; needs an ITS): each vCPU gets a vPE with a virtual
   * pending table, resident while the vCPU runs and non-resident when it blocks in WFI (doorbell
   * enabled) or stops. An LPI given to setForwarding() is then a vLPI: its MSIs set the VPT bit
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
  readonly redistRegions?: readonly RedistRegion[];
  readonly its?: number | readonly { readonly base: number }[];
  /** RAM regions to use (for instance the creator's, shared with a worker): base and buffer. */
  readonly ram?: readonly { readonly base: number; readonly buffer: ArrayBuffer | SharedArrayBuffer }[];
}

export interface VgicStats {
  readonly mmioBadAccess: number;
  readonly mmioUnmapped: number;
  readonly mmioReadOnlyWrite: number;
  readonly sysregUnknown: number;
  readonly sgiNoTarget: number;
  readonly injectRejected: number;
  readonly irqNestingLimit: number;
  readonly msiNoIts: number;
  readonly lpiTableFault: number;
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

export class Vgic {
  readonly state: GicState;
  readonly memory: GuestMemory;
  readonly distBase: number;
  readonly redistRegions: readonly RedistRegion[];
  /** Per-thread dispatcher context. */
  readonly ctx: MmioContext;
  private readonly vcpus: VCpu[] = [];

  /** Guest physical base of each ITS's 128K frame. */
  readonly itsBases: readonly number[];
  private readonly itsHandles: Its[] = [];

  private constructor(
    state: GicState,
    o: { distBase: number; regions: readonly RedistRegion[]; itsBases: readonly number[] },
    memory: GuestMemory,
  ) {
    this.state = state;
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
    for (const r of map.ram ?? []) mem.addRam(r.base, r.buffer.byteLength, r.buffer);
    return mem;
  }

  /** The address map to give Vgic.attach in another thread (RAM buffers included: they are shared). */
  addressMap(): VgicAddressMap {
    return {
      distBase: this.distBase,
      redistRegions: this.redistRegions,
      its: this.itsBases.map((base) => ({ base })),
      ram: this.memory.regions.map((r) => ({ base: r.base, buffer: r.bytes.buffer })),
    };
  }

  get nVcpus(): number {
    return this.state.nVcpus;
  }

  /** Number of implemented INTIDs below the LPIs (32 + SPIs), GICD_TYPER's view. */
  get nrIrqs(): number {
    return this.state.nrIrqs;
  }

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
    return injectIrqSlot(this.state, slot, checkBool('irqLine level', level));
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
    return injectIrqSlot(this.state, this.state.slotOf(vcpu, intid), checkBool('ppiLine level', level));
  }

  // ---- Userspace register access (KVM_DEV_ARM_VGIC_GRP_DIST_REGS / _REDIST_REGS) ----

  /** Reads a distributor register with userspace semantics (e.g. ISPENDR shows the latch). */
  readDistReg(offset: number, size: 4 | 8 = 4): bigint {
    checkHostAccess(distributorFrame, offset, size);
    const lo = dispatchRead(distributorFrame, this.ctx, 0, offset, size, true);
    return (BigInt(this.ctx.hi) << 32n) | BigInt(lo);
  }

  /** Writes a distributor register: `value` a bigint or a safe integer that fits `size` bytes. */
  writeDistReg(offset: number, value: bigint | number, size: 4 | 8 = 4): void {
    checkHostAccess(distributorFrame, offset, size);
    const w = checkRegValue('register value', value, size);
    dispatchWrite(distributorFrame, this.ctx, 0, offset, size, w.lo, w.hi, true);
  }

  /** Reads a redistributor register (RD_base at 0, SGI_base at 0x10000) of vCPU `vcpu`. */
  readRedistReg(vcpu: number, offset: number, size: 4 | 8 = 4): bigint {
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(redistributorFrame, offset, size);
    const lo = dispatchRead(redistributorFrame, this.ctx, vcpu, offset, size, true);
    return (BigInt(this.ctx.hi) << 32n) | BigInt(lo);
  }

  writeRedistReg(vcpu: number, offset: number, value: bigint | number, size: 4 | 8 = 4): void {
    checkInt('INVALID_VCPU', 'vcpu', vcpu, 0, this.state.nVcpus - 1);
    checkHostAccess(redistributorFrame, offset, size);
    const w = checkRegValue('register value', value, size);
    dispatchWrite(redistributorFrame, this.ctx, vcpu, offset, size, w.lo, w.hi, true);
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

  /** Offset inside the frame the last resolve() found. */
  resolvedOffset = 0;
  /** The redistributor's vCPU for a GICR frame, -1 for the distributor (the accessor's vCPU). */
  resolvedVcpu = -1;

  /**
   * The GIC frame holding a guest physical address, or undefined; the offset and vCPU go to
   * resolvedOffset / resolvedVcpu (no allocation per access).
   */
  resolve(addr: number): Frame | undefined {
    if (addr >= this.distBase && addr < this.distBase + GICD_FRAME_SIZE) {
      this.resolvedOffset = addr - this.distBase;
      this.resolvedVcpu = -1;
      return distributorFrame;
    }
    let first = 0;
    const regions = this.redistRegions;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      if (addr >= r.base && addr < r.base + r.count * GICR_STRIDE_V3) {
        const idx = Math.floor((addr - r.base) / GICR_STRIDE_V3);
        const v = first + idx;
        if (v >= this.state.nVcpus) return undefined;
        this.resolvedOffset = addr - r.base - idx * GICR_STRIDE_V3;
        this.resolvedVcpu = v;
        return redistributorFrame;
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
   * the target's LPIs disabled). Any thread.
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
            : 'no valid mapping, or its collection is not mapped'
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

  // ---- CPU interface state (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) ----

  /** Reads a CPU-interface register of `vcpu` without running it (ICC_PMR_EL1, ICC_AP1R0_EL1, …). */
  readCpuSysreg(vcpu: number, enc: number): number {
    return this.vcpu(vcpu).userReadSysreg(enc);
  }

  writeCpuSysreg(vcpu: number, enc: number, value: number): void {
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
    clearRunWords(attachState(copy.buffer));
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
