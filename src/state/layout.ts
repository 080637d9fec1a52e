/**
 * THE state layout: every mutable field of a vgic instance as typed-array views over one
 * (Shared)ArrayBuffer. Nothing else holds GIC state, so a worker given the buffer attaches to the
 * same GIC (`attachState`) and save/restore is a copy of the buffer's sections.
 *
 * Who may call: device/ creates the state; any thread may attach. Field access rules (which lock
 * guards which word) are in core/locks.ts.
 *
 * Per-interrupt records are structure-of-arrays, indexed by *slot*:
 *
 *   slot 0 .. 32·nVcpus-1        private IRQs: vCPU v's SGI/PPI n is slot 32·v + n
 *   slot 32·nVcpus .. +nSpis-1   SPIs: INTID i is slot 32·nVcpus + (i - 32)
 *   lpiBase .. +nLpis-1          LPIs: INTID i is slot lpiBase + (i - 8192), lpiBase = 32·nVcpus + nSpis
 *
 * LPIs are indexed directly by INTID (the seeds' "indexed LPI store"): looking one up is an add,
 * readers take no lock, and the store is sized once at creation (2^lpiIdBits - 8192 slots), so no
 * guest action allocates host memory. irqLpiRef counts the ITEs (of every ITS) that map an LPI.
 *
 * irqFlags (Int32, one per slot):
 *
 *   31 ...... 9     8       7      6    5       4      3       2           1             0
 *  +-----------+---------+------+----+-------+------+-------+-----------+-------------+---------+
 *  |   RES0    |FORWARDED|VALID | HW |GROUP1 | EDGE |ACTIVE |LINE_LEVEL |PENDING_LATCH| ENABLED |
 *  +-----------+---------+------+----+-------+------+-------+-----------+-------------+---------+
 *
 * FORWARDED (LPIs only, direct injection): the LPI is a vLPI of its target's vPE; its pending state
 * lives in that vPE's virtual pending table (vpt, core/vpe.ts), never in PENDING_LATCH.
 *
 * Per-vCPU words (Int32, VCPU_STRIDE per vCPU) are indexed by the V_* constants below; list
 * registers (Uint32, 2 per LR, ICH_LR<n>_EL2 format of arch/ich.ts) by lrIndex().
 */

import { VGIC_MIN_LPI, VGIC_NR_PRIVATE_IRQS } from '../arch/intid.ts';

export const STATE_MAGIC = 0x43494756; // "VGIC"
/**
 * 7: per-thread translation-cache statistics (msiStats: hits, misses, fills, evictions per ITS,
 * one slot per thread), the inspector's acknowledge-latency probes (inspect, inspectTimes),
 * V_ACKS and V_POWER_OFF; and the guest-visible GICv4.1 interface:
 * GITS_BASER2 and more ITS words (ITS_STRIDE 64, error
 * counters for the V-commands), vPE slots of 20 words (the guest's VMAPP mapping, vSGI
 * configuration), per-vCPU GICR_VPROPBASER/VPENDBASER/VSGIR and the resident vPE, and `vprop`.
 * 6: the GICv4.1 direct-injection sections (vpe, vpt, vptSummary: empty unless FLAG_DIRECT) and
 * irqFlags.FORWARDED.
 * 5: per-device mapped-event counts and the mapped-LPI bitmap (ITS work bounded by what is
 * mapped), with 4's header words 9-11 (byte length, checksum, snapshot format) and the clock as
 * exact words. A state of version 3 is what a snapshot of format v1 held (device/snapshot.ts
 * refuses it); 4 never left a development branch.
 */
export const STATE_VERSION = 7;
/** H_SNAPSHOT in a buffer made by Vgic.snapshot(): the snapshot format (device/snapshot.ts). */
export const SNAPSHOT_FORMAT = 2;

// ---- irqFlags bits ----
export const IRQ_ENABLED = 1 << 0;
export const IRQ_PENDING_LATCH = 1 << 1;
export const IRQ_LINE_LEVEL = 1 << 2;
export const IRQ_ACTIVE = 1 << 3;
export const IRQ_EDGE = 1 << 4;
export const IRQ_GROUP1 = 1 << 5;
export const IRQ_HW = 1 << 6;
export const IRQ_VALID = 1 << 7;
export const IRQ_FORWARDED = 1 << 8;

// ---- header words ----
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_NR_VCPUS = 2;
export const H_NR_SPIS = 3;
export const H_NR_LRS = 4;
export const H_FLAGS = 5; // bits: FLAG_VIRTUAL_TIME (core/clock.ts), FLAG_LPIS (mmio/gicd.ts), FLAG_GLOBAL_LRU, FLAG_GICV2, FLAG_DIRECT
export const H_NR_LPIS = 6; // LPI slots: 0, or 2^lpiIdBits - 8192
export const H_NR_ITS = 7;
export const H_ITS_CACHE = 8; // translation-cache entries per ITS (a power of two)
export const H_BYTE_LENGTH = 9; // the state's exact size in bytes (computeLayout's byteLength)
export const H_CHECKSUM = 10; // snapshots: stateChecksum() of the whole buffer; 0 in a live state
export const H_SNAPSHOT = 11; // snapshots: SNAPSHOT_FORMAT; 0 in a live state
export const HEADER_WORDS = 12;

/**
 * H_FLAGS bit: MSIs translate through the baseline global LRU cache (its/global-cache.ts) instead of
 * the per-ITS caches. It decides the size of the globalCache* sections, so it lives with the layout.
 */
export const FLAG_GLOBAL_LRU = 1 << 2;
/**
 * H_FLAGS bit: the GIC has GICv4.1 direct injection (VgicV3Options.directInjection): one vPE per
 * vCPU with its virtual pending table (core/vpe.ts). It decides the size of the vpe* sections.
 */
export const FLAG_DIRECT = 1 << 4;

// ---- per-vPE words (Int32, VPE_STRIDE per vPE slot = per vCPU; core/vpe.ts, core/vpe-regs.ts) ----
export const VPE_STATE = 0; // VPE_VALID | VPE_DB_EN | VPE_DB_FIRED | VPE_PENDING_LAST (GICR_VPENDBASER)
export const VPE_DOORBELLS = 1; // statistics: doorbells raised
export const VPE_ACKS = 2; // statistics: vLPIs the CPU interface took from the VPT (ICV_IAR1)
export const VPE_MERGED = 3; // pending states merged by a move (forwarding on/off, VMOVI) into one already there
export const VPE_VSGI = 4; // GICv4.1 vSGIs: bit n = SGI n pending (GICR_VSGIPENDR.Pending), no active state
/**
 * The guest's mapping of this slot (VMAPP): 0 while the KVM layer owns it, else VPE_MAP_V |
 * RDbase (the redistributor the vPE belongs to, ≤ 0xffff). vPEID n is slot n.
 */
export const VPE_MAP = 5;
export const VPE_DB = 6; // VMAPP Default_Doorbell: the doorbell pINTID, or 1023 (none)
export const VPE_VPT_SIZE = 7; // VMAPP VPT_size + 1: the vINTID bits of this vPE
export const VPE_VPT_LO = 8; // VMAPP VPT_addr (64K-aligned), low and high word
export const VPE_VPT_HI = 9;
export const VPE_VCONF_LO = 10; // VMAPP VCONF_addr, the vLPI configuration table
export const VPE_VCONF_HI = 11;
export const VPE_VSGI_CFG = 12; // VSGI: bits 15:0 Enable of vSGI n, bits 31:16 its Group
export const VPE_VSGI_PRIO = 13; // VSGI: priorities of vSGIs 0-15, a byte each, 4 words (13..16)
export const VPE_RESIDENT_ON = 17; // a guest vPE resident by GICR_VPENDBASER: its redistributor (valid while VPE_VALID)
export const VPE_STRIDE = 20;
/** VPE_MAP: the slot is a vPE the guest mapped with VMAPP (V = 1). */
export const VPE_MAP_V = 1 << 31;
/** VPE_STATE bits. */
export const VPE_VALID = 1 << 0; // GICR_VPENDBASER.Valid: resident on its redistributor
export const VPE_DB_EN = 1 << 1; // non-resident with its doorbell enabled
export const VPE_DB_FIRED = 1 << 2; // the doorbell of this non-residency phase is spent
export const VPE_PENDING_LAST = 1 << 3; // GICR_VPENDBASER.PendingLast: a vLPI waits (deschedule or doorbell)
export const VPE_STATE_MASK = VPE_VALID | VPE_DB_EN | VPE_DB_FIRED | VPE_PENDING_LAST;

/** Entries of the global translation cache per vCPU (v6.8-rc1's LPI_DEFAULT_PCPU_CACHE_SIZE). */
export const GLOBAL_CACHE_PER_VCPU = 16;
/**
 * H_FLAGS bit: the GIC is a GICv2 (IHI 0048B; options gicVersion: 2). The slots keep their meaning
 * with two GICv2 readings of irqRouter (below); the LRs hold GICH_LR words (arch/gicv2.ts) in
 * their low word, the high word zero; ICH_VMCR keeps the GICV_CTLR/PMR/BPR state (VAckCtl, VFIQEn
 * included); ICH_AP1R0 is GICH_APR (one active-priority register for both groups).
 */
export const FLAG_GICV2 = 1 << 3;
/** GICv2 SGI slots' irqRouter: bits [7:0] the pending sources (KVM's irq->source), [10:8] the active source. */
export const SGI_SOURCE_MASK = 0xff;
export const SGI_ACTIVE_SOURCE_SHIFT = 8;

// ---- global translation-cache words (its/global-cache.ts; sections empty in the per-ITS design) ----
export const GC_LOCK = 0; // dist->lpi_list_lock: every entry and the MRU order
export const GC_META_WORDS = 2;
export const GCE_ITS = 0; // per entry: ITS index + 1 (0: the entry is empty)
export const GCE_KEY = 1; // DeviceID << 16 | EventID
export const GCE_SLOT = 2; // the LPI's slot
export const GCE_WORDS = 3;

// ---- distributor words ----
export const D_CTLR = 0; // GICD_CTLR: EnableGrp0 | EnableGrp1 | nASSGIreq (ARE and DS are constant)
export const D_PROPBASER_LO = 1; // GICR_PROPBASER, shared by every redistributor (CommonLPIAff = 0)
export const D_PROPBASER_HI = 2;
// The LPI store lock (KVM's lpi_xa lock): an LPI's shared reference count and its first map / last
// unmap, which ITS commands of different ITSes reach under different its_locks (core/lpi.ts).
export const D_LPI_LOCK = 3;
export const DIST_WORDS = 4;

// ---- per-vCPU words ----
export const V_AP_HEAD = 0; // first slot of the ap_list, -1 when empty
export const V_AP_TAIL = 1;
export const V_AP_LOCK = 2; // ap_list_lock
export const V_AP_COUNT = 3;
export const V_REQUESTS = 4; // KVM_REQ_* style bits: an exit is wanted (REQ_*)
export const V_IN_GUEST = 5; // 1 while the LRs hold this vCPU's state (between flush and sync)
export const V_USED_LRS = 6;
export const V_VMCR = 7; // ICH_VMCR_EL2
export const V_AP0R0 = 8; // ICH_AP0R0_EL2 (5 priority bits: one register is enough)
export const V_AP1R0 = 9; // ICH_AP1R0_EL2
export const V_HCR = 10; // ICH_HCR_EL2 maintenance enables, set by flush
export const V_EOICOUNT = 11;
export const V_MPIDR = 12; // Aff2<<16 | Aff1<<8 | Aff0
export const V_TIMER_CTL = 13; // CNTV_CTL_EL0 (ENABLE, IMASK; ISTATUS is computed)
export const V_TIMER_LEVEL = 14; // the timer's output line as last seen by the GIC
export const V_WAKE = 15; // futex word a WFI sleeps on
export const V_EXITS = 16; // statistics: exits, flushes with work, maintenance exits
export const V_FLUSHES = 17;
export const V_MAINT = 18;
export const V_PSTATE_I = 19; // 1 while the in-process guest has IRQs masked (PSTATE.I)
export const V_RD_FLAGS = 20; // RD_LAST: last redistributor of its region (GICR_TYPER.Last)
export const V_SLEEPING = 21; // 1 while the vCPU sleeps in WFI (kicks notify only then)
export const V_LR_EOI = 22; // 1 if a flushed LR asked for an EOI maintenance interrupt
export const V_PSTATE_F = 23; // 1 while the in-process guest has FIQs masked (PSTATE.F)
export const V_LPI_CTLR = 24; // GICR_CTLR.EnableLPIs / RWP (changed by compare-exchange, as KVM)
export const V_PENDBASER_LO = 25; // GICR_PENDBASER (PTZ kept in the high word until LPIs are enabled)
export const V_PENDBASER_HI = 26;
export const V_LR_PEND = 27; // bit n: LR n is Pending (not Active): the candidates for IAR
export const V_LR_ACT = 28; // bit n: LR n is Active (or Active+Pending): the candidates for EOIR/DIR
export const V_LR_SORTED = 29; // 1 while the Pending LRs are in priority order (lowest LR = best)
export const V_LR_GRP0 = 30; // bit n: LR n holds a Group 0 interrupt
export const V_RUN_LOCK = 31; // run_lock: held while the vCPU executes one instruction (core/locks.ts)
export const V_WAKE_AT = 32; // word index (in vcpu) of the futex word kicks bump: V_WAKE of the vCPU its thread sleeps on
export const V_FOLD_MERGED = 33; // edge/LPI pending states merged at fold (re-injected while still pending in an LR)
export const V_ACKS = 34; // statistics: interrupts the vCPU's IAR reads returned (not 1020..1023)
export const V_POWER_OFF = 35; // 1 while the vCPU is powered off (KVM's KVM_MP_STATE_STOPPED: PSCI CPU_OFF, VCpu.setOnline)
/**
 * GICv4.1 (direct injection): slot + 1 of the vPE resident on this redistributor as the CPU
 * interface sees it, 0 for none. Reset: the KVM layer's vPE of this vCPU (its own slot); a guest
 * GICR_VPENDBASER write with Valid names another (core/vpe-regs.ts).
 */
export const V_VPE_ON = 36;
export const V_VPROPBASER_LO = 37; // GICR_VPROPBASER (GICv4.1 format)
export const V_VPROPBASER_HI = 38;
export const V_VPENDBASER = 39; // GICR_VPENDBASER as last written: vPEID 15:0, vGrp0En 16, vGrp1En 17, DB 18
export const V_VSGIR = 40; // GICR_VSGIR: the vPEID whose vSGIs GICR_VSGIPENDR reports
export const V_INV_LO = 41; // GICR_INVLPIR's low word (the INTID) until the high word (V, vPEID) is written
export const VCPU_STRIDE = 48;

/** V_RD_FLAGS bits. */
export const RD_LAST = 1 << 0;

/** V_REQUESTS bits. */
export const REQ_IRQ_PENDING = 1 << 0; // KVM_REQ_IRQ_PENDING: re-run flush before the next instruction

// ---- global statistics (Uint32 counters, wrap at 2^32) ----
export const S_MMIO_BAD_ACCESS = 0; // width or alignment not allowed for the register
export const S_MMIO_UNMAPPED = 1; // no register at the offset (RAZ/WI)
export const S_MMIO_RO_WRITE = 2; // write to a read-only register (ignored)
export const S_SYSREG_UNKNOWN = 3; // access to an unimplemented system register (RAZ/WI)
export const S_SGI_NO_TARGET = 4; // SGI aimed at an affinity with no vCPU
export const S_INJECT_REJECTED = 5; // host injection refused (bad INTID, wrong type)
export const S_IRQ_NESTING_LIMIT = 6; // an in-process IRQ handler nested MAX_IRQ_NESTING deep
export const S_MSI_NO_ITS = 7; // an MSI whose doorbell is no ITS's GITS_TRANSLATER
export const S_LPI_TABLE_FAULT = 8; // an LPI property or pending table access outside guest RAM
export const S_LPI_PENDING_DROPPED = 9; // LPI pending states removed by DISCARD, CLEAR or an unmapping
export const STAT_COUNT = 12;
export const STAT_NAMES = [
  'mmioBadAccess',
  'mmioUnmapped',
  'mmioReadOnlyWrite',
  'sysregUnknown',
  'sgiNoTarget',
  'injectRejected',
  'irqNestingLimit',
  'msiNoIts',
  'lpiTableFault',
  'lpiPendingDropped',
] as const;

// ---- per-ITS words (Int32, ITS_STRIDE per ITS) ----
export const I_CTLR = 0; // GITS_CTLR.Enabled
export const I_CBASER_LO = 1;
export const I_CBASER_HI = 2;
export const I_CWRITER = 3;
export const I_CREADR = 4;
export const I_BASER0_LO = 5; // Device table
export const I_BASER0_HI = 6;
export const I_BASER1_LO = 7; // Collection table
export const I_BASER1_HI = 8;
export const I_BASER2_LO = 9; // vPE table (GICv4.1, direct injection only)
export const I_BASER2_HI = 10;
export const I_CMD_LOCK = 11; // its->cmd_lock: CBASER, CREADR, CWRITER
export const I_LOCK = 12; // its->its_lock: the tables, collections, and translation-cache fills
export const I_CACHE_GEN = 13; // translation-cache generation: bumping it invalidates every entry
export const I_CMD_READ_FAULT = 14; // a command that could not be read from guest memory (skipped)
export const I_CMD_UNKNOWN = 15; // unknown opcodes, and V-commands without direct injection (ignored)
export const I_TABLE_FAULT = 16; // a table entry outside guest RAM or with impossible contents
export const I_CACHE_MISS = 17; // translations that walked the tables (the slow path)
export const I_MSI_BLOCKED = 18; // MSIs with no valid mapping
export const I_MSI_BUSY = 19; // MSIs refused because the ITS or the target's LPIs are disabled
export const I_COMMANDS = 20; // commands processed
export const I_ERR_BASE = 24; // one counter per E_ITS_* code (arch/its.ts E_ITS_CODES order), 35 words
export const ITS_STRIDE = 64;

// ---- per-thread translation-cache statistics (Uint32; its/msi-stats.ts) ----
/**
 * Slots: one per thread that translates MSIs (claimed at its first translation by its lock owner
 * id), the last one shared by threads that found every other slot taken (updated atomically).
 */
export const MSI_STAT_SLOTS = 32;
export const MS_OWNER = 0; // the owner id of the thread writing this slot, 0 while free
export const MS_HEAD = 2; // words before the per-ITS counters
/** Per ITS: four 64-bit counters as (low, high) word pairs. */
export const MS_HITS = 0;
export const MS_MISSES = 2;
export const MS_FILLS = 4;
export const MS_EVICTIONS = 6;
export const MS_ITS_WORDS = 8;
/** Words of one slot: a multiple of 16 (64 bytes), so two threads' slots never share a cache line. */
export function msiStatStrideFor(nIts: number): number {
  return Math.ceil((MS_HEAD + nIts * MS_ITS_WORDS) / 16) * 16;
}

// ---- the inspector's acknowledge-latency probes (cli/inspect-server.ts; core/inspect.ts) ----
export const IN_ON = 0; // inspect word 0: non-zero while an inspector samples latencies
export const IN_HEAD = 2;
export const IN_PROBE = 0; // per vCPU: slot + 1 of the interrupt being timed, 0 none, -1 being set
export const IN_COUNT = 1; // per vCPU: latencies written so far (the ring's next index, modulo IN_RING)
export const IN_VCPU_WORDS = 2;
/** inspectTimes per vCPU: the probe's start (host ms), then a ring of the last IN_RING latencies (ms). */
export const IN_RING = 32;
export const IT_VCPU_WORDS = 1 + IN_RING;

/** Collection table entries per ITS: 16-bit ICIDs (GITS_TYPER.CIL = 0). */
export const ITS_COLLECTIONS = 65536;
/** DeviceIDs per ITS (16 DeviceID bits). */
export const ITS_DEVICES = 65536;
/** Words of the per-ITS bitmap of mapped DeviceIDs. */
export const ITS_DEVICE_WORDS = ITS_DEVICES / 32;

export interface StateConfig {
  readonly nVcpus: number;
  readonly nSpis: number;
  readonly nLrs: number;
  /** LPI slots (0 without an ITS). */
  readonly nLpis?: number;
  readonly nIts?: number;
  /** Translation-cache entries per ITS, a power of two. */
  readonly itsCache?: number;
  /** Entries of the global LRU translation cache; 0 (default) for the per-ITS design. */
  readonly globalCache?: number;
  /** 2 for a GICv2 (FLAG_GICV2); default 3. Does not change the layout. */
  readonly gicVersion?: 2 | 3;
  /** GICv4.1 direct injection: one vPE per vCPU with a VPT of nLpis bits (FLAG_DIRECT). */
  readonly direct?: boolean;
}

/** Words of one vPE's VPT (one bit per LPI) and of its summary (one bit per VPT word). */
export function vptWordsFor(nLpis: number): number {
  return Math.ceil(nLpis / 32);
}
export function vptSummaryWordsFor(nLpis: number): number {
  return Math.ceil(vptWordsFor(nLpis) / 32);
}
/** Words of one vPE's top summary (one bit per summary word): 2 for 57344 LPIs. */
export function vptTopWordsFor(nLpis: number): number {
  return Math.ceil(vptSummaryWordsFor(nLpis) / 32);
}

interface Section {
  readonly name: string;
  readonly bytesPerElement: 1 | 4 | 8;
  readonly count: number;
}

function sections(c: StateConfig): Section[] {
  const nLpis = c.nLpis ?? 0;
  const nIts = c.nIts ?? 0;
  const nSlots = c.nVcpus * VGIC_NR_PRIVATE_IRQS + c.nSpis + nLpis;
  const gc = c.globalCache ?? 0;
  const direct = (c.direct ?? false) && nLpis > 0;
  return [
    { name: 'header', bytesPerElement: 4, count: HEADER_WORDS },
    { name: 'dist', bytesPerElement: 4, count: DIST_WORDS },
    { name: 'stats', bytesPerElement: 4, count: STAT_COUNT },
    { name: 'vcpu', bytesPerElement: 4, count: c.nVcpus * VCPU_STRIDE },
    { name: 'lr', bytesPerElement: 4, count: c.nVcpus * c.nLrs * 2 },
    { name: 'timerCval', bytesPerElement: 8, count: c.nVcpus },
    { name: 'timerCvalWords', bytesPerElement: 4, count: c.nVcpus * 2 },
    { name: 'clock', bytesPerElement: 8, count: 1 },
    { name: 'clockWords', bytesPerElement: 4, count: 2 },
    { name: 'irqFlags', bytesPerElement: 4, count: nSlots },
    { name: 'irqLock', bytesPerElement: 4, count: nSlots },
    { name: 'irqTarget', bytesPerElement: 4, count: nSlots },
    { name: 'irqRouter', bytesPerElement: 4, count: nSlots },
    { name: 'irqApVcpu', bytesPerElement: 4, count: nSlots },
    { name: 'irqApNext', bytesPerElement: 4, count: nSlots },
    { name: 'irqApPrev', bytesPerElement: 4, count: nSlots },
    { name: 'irqIntid', bytesPerElement: 4, count: nSlots },
    { name: 'irqHwIntid', bytesPerElement: 4, count: nSlots },
    { name: 'irqPriority', bytesPerElement: 1, count: nSlots },
    { name: 'irqLpiRef', bytesPerElement: 4, count: nLpis },
    { name: 'itsLpiRef', bytesPerElement: 4, count: nIts * nLpis },
    { name: 'lpiMapped', bytesPerElement: 4, count: Math.ceil(nLpis / 32) },
    { name: 'its', bytesPerElement: 4, count: nIts * ITS_STRIDE },
    { name: 'itsColl', bytesPerElement: 4, count: nIts * ITS_COLLECTIONS },
    { name: 'itsDevLive', bytesPerElement: 4, count: nIts * ITS_DEVICE_WORDS },
    { name: 'itsDevEvents', bytesPerElement: 4, count: nIts * ITS_DEVICES },
    { name: 'itsCache', bytesPerElement: 4, count: nIts * (c.itsCache ?? 0) * 2 },
    { name: 'globalCacheMeta', bytesPerElement: 4, count: gc > 0 ? GC_META_WORDS : 0 },
    { name: 'globalCacheEntry', bytesPerElement: 4, count: gc * GCE_WORDS },
    { name: 'globalCacheOrder', bytesPerElement: 4, count: gc },
    { name: 'vpe', bytesPerElement: 4, count: direct ? c.nVcpus * VPE_STRIDE : 0 },
    { name: 'vpt', bytesPerElement: 4, count: direct ? c.nVcpus * vptWordsFor(nLpis) : 0 },
    { name: 'vptSummary', bytesPerElement: 4, count: direct ? c.nVcpus * vptSummaryWordsFor(nLpis) : 0 },
    { name: 'vptTop', bytesPerElement: 4, count: direct ? c.nVcpus * vptTopWordsFor(nLpis) : 0 },
    { name: 'msiStats', bytesPerElement: 4, count: nIts > 0 ? MSI_STAT_SLOTS * msiStatStrideFor(nIts) : 0 },
    { name: 'inspect', bytesPerElement: 4, count: IN_HEAD + c.nVcpus * IN_VCPU_WORDS },
    { name: 'inspectTimes', bytesPerElement: 8, count: c.nVcpus * IT_VCPU_WORDS },
    { name: 'vprop', bytesPerElement: 1, count: direct ? c.nVcpus * nLpis : 0 },
  ];
}

/** Byte offset of each section, 8-byte aligned, and the total size. */
export function computeLayout(c: StateConfig): { offsets: Record<string, number>; byteLength: number } {
  const offsets: Record<string, number> = {};
  let at = 0;
  for (const s of sections(c)) {
    at = (at + 7) & ~7;
    offsets[s.name] = at;
    at += s.bytesPerElement * s.count;
  }
  return { offsets, byteLength: (at + 7) & ~7 };
}

/** Clock (Float64): the real-time epoch in ms (host time at which CNTVCT was 0). */
export const C_EPOCH_MS = 0;
/** Clock words (Uint32): virtual time's CNTVCT, low and high word (core/clock.ts: exact modulo 2^64). */
export const CW_LO = 0;
export const CW_HI = 1;

/**
 * Typed-array views over one buffer. Plain data: no behaviour, and one per-thread field
 * (msiStatBase, this thread's statistics slot), so the same object shape exists in every thread
 * that attaches.
 */
export class GicState {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly shared: boolean;
  readonly nVcpus: number;
  readonly nSpis: number;
  readonly nLrs: number;
  /** Number of per-INTID slots (private + SPIs + LPIs). */
  readonly nSlots: number;
  /** First slot of the SPIs. */
  readonly spiBase: number;
  /** First slot of the LPIs (INTID 8192), and how many there are (0 without an ITS). */
  readonly lpiBase: number;
  readonly nLpis: number;
  readonly nIts: number;
  /** Translation-cache entries per ITS (a power of two), and that minus one. */
  readonly itsCacheSize: number;
  readonly itsCacheMask: number;
  /** INTIDs below this are implemented (32 + nSpis): GICD per-IRQ registers beyond it are RAZ/WI. */
  readonly nrIrqs: number;

  readonly header: Int32Array;
  readonly dist: Int32Array;
  readonly stats: Uint32Array;
  readonly vcpu: Int32Array;
  readonly lr: Uint32Array;
  /**
   * CNTV_CVAL_EL0 as a number, for deadlines and sleep durations only (rounded above 2^53); the
   * timer's condition compares timerCvalWords with the counter exactly (core/clock.ts).
   */
  readonly timerCval: Float64Array;
  /** CNTV_CVAL_EL0 exactly, as (lo, hi) words per vCPU. */
  readonly timerCvalWords: Uint32Array;
  readonly clock: Float64Array;
  readonly clockWords: Uint32Array;
  readonly irqFlags: Int32Array;
  readonly irqLock: Int32Array;
  readonly irqTarget: Int32Array;
  readonly irqRouter: Int32Array;
  readonly irqApVcpu: Int32Array;
  readonly irqApNext: Int32Array;
  readonly irqApPrev: Int32Array;
  readonly irqIntid: Int32Array;
  readonly irqHwIntid: Int32Array;
  readonly irqPriority: Uint8Array;
  /** Per LPI (index intid - 8192): how many ITEs map it. */
  readonly irqLpiRef: Uint32Array;
  /** Per ITS, per LPI: how many of that ITS's ITEs map it (irqLpiRef is the sum over ITSes). */
  readonly itsLpiRef: Uint32Array;
  /**
   * One bit per LPI (index intid - 8192): set while irqLpiRef is not 0. Commands that act on every
   * mapped LPI (MAPC, MOVALL, INVALL) visit the set bits: their cost follows what is mapped.
   */
  readonly lpiMapped: Int32Array;
  /** Per-ITS words (I_*), ITS_STRIDE per ITS. */
  readonly its: Int32Array;
  /** Per ITS, ITS_COLLECTIONS entries: the target vCPU of each collection, or -1 (not mapped). */
  readonly itsColl: Int32Array;
  /**
   * Per ITS, one bit per DeviceID: the device is mapped (KVM's device list). A DTE in guest memory
   * counts only with its bit set, so a reset forgets devices without writing guest RAM.
   */
  readonly itsDevLive: Int32Array;
  /**
   * Per ITS, per DeviceID: how many valid ITEs the device's ITT holds (MAPTI adds one, DISCARD
   * takes one, MAPD and restore set it). An unmapping or a save stops reading the ITT once it has
   * met that many, and reads nothing of a device that maps no event.
   */
  readonly itsDevEvents: Int32Array;
  /**
   * Per ITS, itsCacheSize entries of two words: key (DeviceID << 16 | EventID) and value
   * (generation << 16 | LPI INTID - 8192 + 1... see its/cache.ts).
   */
  readonly itsCache: Int32Array;
  /** The baseline design is in use (FLAG_GLOBAL_LRU): MSIs translate through the global cache. */
  readonly globalLru: boolean;
  /** A GICv2 (FLAG_GICV2): GICH_LR list registers, GICv2 SGI sources and SPI targets. */
  readonly gicv2: boolean;
  /** GICv4.1 direct injection (FLAG_DIRECT): the vpe, vpt and vptSummary sections are in use. */
  readonly direct: boolean;
  /** Words of one vPE's VPT and of its summary (0 without direct injection). */
  readonly vptWords: number;
  readonly vptSummaryWords: number;
  /** Per vPE (= vCPU), VPE_STRIDE words (VPE_*). */
  readonly vpe: Int32Array;
  /**
   * Per vPE, the virtual pending table: bit i of word i >> 5 is LPI 8192 + i pending (the VPT a
   * VMAPP names; here the hypervisor's memory is this buffer, so threads and snapshots see it).
   */
  readonly vpt: Int32Array;
  /** Per vPE, one bit per VPT word that may be non-zero (set after the word's bit, core/vpe.ts). */
  readonly vptSummary: Int32Array;
  readonly vptTopWords: number;
  /** Per vPE, one bit per summary word that may be non-zero (set after the summary's bit). */
  readonly vptTop: Int32Array;
  /**
   * Per vPE slot, one byte per vLPI (vINTID - 8192): the vLPI property byte (priority 7:2, Enable
   * bit 0) a guest-mapped vPE's VCONF table held when last read (VMAPP, INV, VINVALL, GICR_INVLPIR
   * and GICR_INVALLR with V): the cache the spec allows a GIC to keep.
   */
  readonly vprop: Uint8Array;
  /** Entries of the global LRU cache (16 per vCPU), 0 in the per-ITS design. */
  readonly globalCacheSize: number;
  /** GC_* words: the global cache's lock. */
  readonly globalCacheMeta: Int32Array;
  /** globalCacheSize entries of GCE_WORDS words (GCE_*). */
  readonly globalCacheEntry: Int32Array;
  /** Entry indices, most recently used first (a permutation of 0..globalCacheSize-1). */
  readonly globalCacheOrder: Int32Array;
  /**
   * Per-thread translation-cache statistics (its/msi-stats.ts): MSI_STAT_SLOTS slots of
   * msiStatStride words, each written by one thread only; readers sum them.
   */
  readonly msiStats: Uint32Array;
  readonly msiStatStride: number;
  /**
   * This thread's slot in msiStats (its first word's index), or -1 before the first translation,
   * -2 when this thread uses the shared last slot. The one per-thread field: each thread attaches
   * its own GicState.
   */
  msiStatBase = -1;
  /** The inspector's latency probes: IN_ON, then IN_VCPU_WORDS per vCPU (core/inspect.ts). */
  readonly inspect: Int32Array;
  /** Per vCPU, IT_VCPU_WORDS: the probe's start time and the ring of latencies (host ms). */
  readonly inspectTimes: Float64Array;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, c: StateConfig) {
    const { offsets, byteLength } = computeLayout(c);
    if (buffer.byteLength < byteLength) {
      throw new RangeError(
        `state buffer is ${buffer.byteLength} bytes; this configuration needs ${byteLength}`,
      );
    }
    this.buffer = buffer;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
    this.nVcpus = c.nVcpus;
    this.nSpis = c.nSpis;
    this.nLrs = c.nLrs;
    this.spiBase = c.nVcpus * VGIC_NR_PRIVATE_IRQS;
    this.lpiBase = this.spiBase + c.nSpis;
    this.nLpis = c.nLpis ?? 0;
    this.nIts = c.nIts ?? 0;
    this.itsCacheSize = c.itsCache ?? 0;
    this.itsCacheMask = this.itsCacheSize - 1;
    this.nSlots = this.lpiBase + this.nLpis;
    this.nrIrqs = VGIC_NR_PRIVATE_IRQS + c.nSpis;
    const n = this.nSlots;
    const i32 = (name: string, count: number) => new Int32Array(buffer, offsets[name], count);
    this.header = i32('header', HEADER_WORDS);
    this.dist = i32('dist', DIST_WORDS);
    this.stats = new Uint32Array(buffer, offsets.stats, STAT_COUNT);
    this.vcpu = i32('vcpu', c.nVcpus * VCPU_STRIDE);
    this.lr = new Uint32Array(buffer, offsets.lr, c.nVcpus * c.nLrs * 2);
    this.timerCval = new Float64Array(buffer, offsets.timerCval, c.nVcpus);
    this.timerCvalWords = new Uint32Array(buffer, offsets.timerCvalWords, c.nVcpus * 2);
    this.clock = new Float64Array(buffer, offsets.clock, 1);
    this.clockWords = new Uint32Array(buffer, offsets.clockWords, 2);
    this.irqFlags = i32('irqFlags', n);
    this.irqLock = i32('irqLock', n);
    this.irqTarget = i32('irqTarget', n);
    this.irqRouter = i32('irqRouter', n);
    this.irqApVcpu = i32('irqApVcpu', n);
    this.irqApNext = i32('irqApNext', n);
    this.irqApPrev = i32('irqApPrev', n);
    this.irqIntid = i32('irqIntid', n);
    this.irqHwIntid = i32('irqHwIntid', n);
    this.irqPriority = new Uint8Array(buffer, offsets.irqPriority, n);
    this.irqLpiRef = new Uint32Array(buffer, offsets.irqLpiRef, this.nLpis);
    this.itsLpiRef = new Uint32Array(buffer, offsets.itsLpiRef, this.nIts * this.nLpis);
    this.lpiMapped = i32('lpiMapped', Math.ceil(this.nLpis / 32));
    this.its = i32('its', this.nIts * ITS_STRIDE);
    this.itsColl = i32('itsColl', this.nIts * ITS_COLLECTIONS);
    this.itsDevLive = i32('itsDevLive', this.nIts * ITS_DEVICE_WORDS);
    this.itsDevEvents = i32('itsDevEvents', this.nIts * ITS_DEVICES);
    this.itsCache = i32('itsCache', this.nIts * this.itsCacheSize * 2);
    const gc = c.globalCache ?? 0;
    this.globalLru = gc > 0;
    this.globalCacheSize = gc;
    this.globalCacheMeta = i32('globalCacheMeta', gc > 0 ? GC_META_WORDS : 0);
    this.globalCacheEntry = i32('globalCacheEntry', gc * GCE_WORDS);
    this.globalCacheOrder = i32('globalCacheOrder', gc);
    this.gicv2 = c.gicVersion === 2;
    this.direct = (c.direct ?? false) && this.nLpis > 0;
    this.vptWords = this.direct ? vptWordsFor(this.nLpis) : 0;
    this.vptSummaryWords = this.direct ? vptSummaryWordsFor(this.nLpis) : 0;
    this.vpe = i32('vpe', this.direct ? c.nVcpus * VPE_STRIDE : 0);
    this.vpt = i32('vpt', c.nVcpus * this.vptWords);
    this.vptSummary = i32('vptSummary', c.nVcpus * this.vptSummaryWords);
    this.vptTopWords = this.direct ? vptTopWordsFor(this.nLpis) : 0;
    this.vptTop = i32('vptTop', c.nVcpus * this.vptTopWords);
    this.msiStatStride = this.nIts > 0 ? msiStatStrideFor(this.nIts) : 0;
    this.msiStats = new Uint32Array(
      buffer,
      offsets.msiStats,
      this.nIts > 0 ? MSI_STAT_SLOTS * this.msiStatStride : 0,
    );
    this.inspect = i32('inspect', IN_HEAD + c.nVcpus * IN_VCPU_WORDS);
    this.inspectTimes = new Float64Array(buffer, offsets.inspectTimes, c.nVcpus * IT_VCPU_WORDS);
    this.vprop = new Uint8Array(buffer, offsets.vprop, this.direct ? c.nVcpus * this.nLpis : 0);
  }

  /** Slot of an INTID as seen by `vcpu` (which matters for SGIs/PPIs), or -1 if not implemented. */
  slotOf(vcpu: number, intid: number): number {
    if (intid < VGIC_NR_PRIVATE_IRQS) return intid >= 0 ? vcpu * VGIC_NR_PRIVATE_IRQS + intid : -1;
    if (intid < this.nrIrqs) return this.spiBase + intid - VGIC_NR_PRIVATE_IRQS;
    return this.lpiSlot(intid);
  }

  /** Slot of an LPI INTID, or -1 if it is outside the LPI store. */
  lpiSlot(intid: number): number {
    const i = intid - VGIC_MIN_LPI;
    return i >= 0 && i < this.nLpis ? this.lpiBase + i : -1;
  }

  /** Base index of a vCPU's words in `vcpu`. */
  vbase(v: number): number {
    return v * VCPU_STRIDE;
  }

  /** Index of LR `n` of vCPU `v`'s low word in `lr` (the high word follows). */
  lrIndex(v: number, n: number): number {
    return (v * this.nLrs + n) * 2;
  }
}

/** Allocates a zeroed state buffer for a configuration and writes its header. */
export function allocateState(c: StateConfig, shared: boolean): GicState {
  const { byteLength } = computeLayout(c);
  const buffer = shared ? new SharedArrayBuffer(byteLength) : new ArrayBuffer(byteLength);
  const s = new GicState(buffer, c);
  s.header[H_MAGIC] = STATE_MAGIC;
  s.header[H_VERSION] = STATE_VERSION;
  s.header[H_NR_VCPUS] = c.nVcpus;
  s.header[H_NR_SPIS] = c.nSpis;
  s.header[H_NR_LRS] = c.nLrs;
  s.header[H_NR_LPIS] = c.nLpis ?? 0;
  s.header[H_NR_ITS] = c.nIts ?? 0;
  s.header[H_ITS_CACHE] = c.itsCache ?? 0;
  s.header[H_BYTE_LENGTH] = byteLength;
  if (c.gicVersion === 2) s.header[H_FLAGS] |= FLAG_GICV2;
  if ((c.globalCache ?? 0) > 0) {
    if (c.globalCache !== GLOBAL_CACHE_PER_VCPU * c.nVcpus) {
      throw new RangeError(`the global translation cache holds ${GLOBAL_CACHE_PER_VCPU} entries per vCPU`);
    }
    s.header[H_FLAGS] |= FLAG_GLOBAL_LRU;
  }
  if (s.direct) s.header[H_FLAGS] |= FLAG_DIRECT;
  return s;
}

/**
 * FNV-1a over the buffer's 32-bit words, H_CHECKSUM counted as zero: any change of one word
 * changes the result (each step is a bijection of the running hash). No allocation; the buffer's
 * size is a multiple of 8 (computeLayout).
 */
export function stateChecksum(words: Int32Array): number {
  let h = 0x811c9dc5;
  const n = words.length;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ (i === H_CHECKSUM ? 0 : words[i]), 0x01000193);
  return h >>> 0;
}

/** Attaches to an existing state buffer (for instance in a worker): the header says the geometry. */
export function attachState(buffer: ArrayBuffer | SharedArrayBuffer): GicState {
  if (buffer.byteLength < HEADER_WORDS * 4) throw new RangeError('not a vgic state buffer: too small');
  const h = new Int32Array(buffer, 0, HEADER_WORDS);
  if (h[H_MAGIC] !== STATE_MAGIC) throw new RangeError('not a vgic state buffer: bad magic');
  if (h[H_VERSION] !== STATE_VERSION) {
    throw new RangeError(
      `vgic state version ${h[H_VERSION]} is not supported (this build reads ${STATE_VERSION})`,
    );
  }
  return new GicState(buffer, {
    nVcpus: h[H_NR_VCPUS],
    nSpis: h[H_NR_SPIS],
    nLrs: h[H_NR_LRS],
    nLpis: h[H_NR_LPIS],
    nIts: h[H_NR_ITS],
    itsCache: h[H_ITS_CACHE],
    globalCache: h[H_FLAGS] & FLAG_GLOBAL_LRU ? GLOBAL_CACHE_PER_VCPU * h[H_NR_VCPUS] : 0,
    gicVersion: h[H_FLAGS] & FLAG_GICV2 ? 2 : 3,
    direct: (h[H_FLAGS] & FLAG_DIRECT) !== 0,
  });
}
