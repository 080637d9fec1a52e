/**
 * Seeing inside the GIC: the `vgic-state` dump (KVM's debugfs file, arch/arm64/kvm/vgic/
 * vgic-debug.c: the distributor, then every interrupt's software state; here also each vCPU's
 * ap_list, list registers, ICH_VMCR/APRs, and each ITS's devices, ITTs, collections and
 * translation cache), as JSON and as text; and `explain`: the first architectural reason
 * (GIC IHI 0069 §4.1, §4.8, §12.7) an interrupt is not being signalled to a vCPU.
 *
 * Both only read the state buffer: no lock is taken, nothing is changed, so they may run on any
 * thread while the guest runs (the inspector does: a dump taken while a vCPU runs on another thread
 * is a sample, and fields of one interrupt may be from two moments). Guest-chosen sizes are bounded
 * (`maxDevices`, `maxEvents`, `maxLpis`); a dump never allocates in proportion to a guest's
 * table sizes beyond them.
 *
 * Who may call: the host (Vgic.dumpState / Vgic.explain), qtest, the CLI, the inspector.
 */

import { GICD_CTLR_ENABLE_GRP0, GICD_CTLR_ENABLE_GRP1 } from '../arch/gicv3.ts';
import {
  HCR_LRENPIE,
  HCR_NPIE,
  HCR_UIE,
  LR_HI_ACTIVE,
  LR_HI_EOI,
  LR_HI_GROUP,
  LR_HI_HW,
  LR_HI_PENDING,
  LR_HI_PINTID_MASK,
  PRIO_IDLE,
  VMCR_BPR_MASK,
  VMCR_BPR0_SHIFT,
  VMCR_BPR1_SHIFT,
  VMCR_CBPR,
  VMCR_ENG0,
  VMCR_ENG1,
  VMCR_EOIM,
  VMCR_PMR_SHIFT,
} from '../arch/ich.ts';
import { VGIC_MIN_LPI, VGIC_NR_PRIVATE_IRQS, VGIC_NR_SGIS } from '../arch/intid.ts';
import { E_ITS_CODES, ITS_ITE_SIZE } from '../arch/its.ts';
import { gprioMask, lrPriority, runningPriority } from '../core/icv.ts';
import { lpisEnabled } from '../core/lpi.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import { msiStatsOf, type TranslationCacheStats } from '../its/msi-stats.ts';
import { dteBits, dteItt, liveDte, nextLiveDevice } from '../its/tables.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  D_CTLR,
  D_PROPBASER_HI,
  D_PROPBASER_LO,
  type GicState,
  I_BASER0_HI,
  I_BASER0_LO,
  I_BASER1_HI,
  I_BASER1_LO,
  I_CACHE_GEN,
  I_CACHE_MISS,
  I_CBASER_HI,
  I_CBASER_LO,
  I_CMD_READ_FAULT,
  I_CMD_UNKNOWN,
  I_COMMANDS,
  I_CREADR,
  I_CTLR,
  I_CWRITER,
  I_ERR_BASE,
  I_MSI_BLOCKED,
  I_MSI_BUSY,
  I_TABLE_FAULT,
  IRQ_ACTIVE,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_GROUP1,
  IRQ_HW,
  IRQ_LINE_LEVEL,
  IRQ_PENDING_LATCH,
  ITS_COLLECTIONS,
  ITS_STRIDE,
  V_ACKS,
  V_AP_HEAD,
  V_AP0R0,
  V_AP1R0,
  V_EXITS,
  V_FLUSHES,
  V_FOLD_MERGED,
  V_HCR,
  V_IN_GUEST,
  V_MAINT,
  V_POWER_OFF,
  V_PSTATE_I,
  V_TIMER_CTL,
  V_TIMER_LEVEL,
  V_USED_LRS,
  V_VMCR,
  VCPU_STRIDE,
} from '../state/layout.ts';

/** One list register, decoded (ICH_LR<n>_EL2). */
export interface LrState {
  readonly n: number;
  readonly vintid: number;
  readonly state: 'invalid' | 'pending' | 'active' | 'pending+active';
  readonly hw: boolean;
  readonly group: 0 | 1;
  readonly priority: number;
  /** HW: the physical INTID; else -1. */
  readonly pintid: number;
  /** Non-HW: a maintenance interrupt on EOI. */
  readonly eoi: boolean;
}

/** A vCPU's CPU-interface and list-register state. */
export interface VcpuState {
  readonly index: number;
  /** MPIDR affinity (Aff2.Aff1.Aff0 as Aff2 << 16 | Aff1 << 8 | Aff0). */
  readonly affinity: number;
  /** Between flush and sync: the LRs hold live state. */
  readonly inGuest: boolean;
  /** INTIDs on the ap_list, in list order. */
  readonly apList: readonly number[];
  readonly usedLrs: number;
  readonly lrs: readonly LrState[];
  readonly vmcr: number;
  readonly pmr: number;
  readonly bpr0: number;
  readonly bpr1: number;
  readonly cbpr: boolean;
  readonly eoiMode: boolean;
  readonly igrpen0: boolean;
  readonly igrpen1: boolean;
  readonly ap0r0: number;
  readonly ap1r0: number;
  /** ICC_RPR_EL1: 0xff when idle. */
  readonly runningPriority: number;
  /** ICH_HCR_EL2 maintenance enables flush left: UIE, NPIE, LRENPIE. */
  readonly hcr: { readonly uie: boolean; readonly npie: boolean; readonly lrenpie: boolean };
  readonly irqsMasked: boolean;
  readonly lpisEnabled: boolean;
  readonly timer: { readonly ctl: number; readonly level: boolean };
  readonly exits: number;
  readonly flushes: number;
  readonly maintenance: number;
  readonly foldMerged: number;
  /** Interrupts its IAR reads returned (INTIDs 1020..1023 not counted). */
  readonly acks: number;
  /** Powered on (PSCI CPU_ON / VCpu.setOnline): an offline vCPU is signalled nothing. */
  readonly online: boolean;
}

/** One interrupt's software state (KVM's print_irq_state columns, and where it sits). */
export interface IrqState {
  readonly intid: number;
  readonly type: 'SGI' | 'PPI' | 'SPI' | 'LPI';
  /** The vCPU owning a private interrupt (SGI/PPI), else -1. */
  readonly vcpu: number;
  /** The vCPU it is routed to (irq->target_vcpu), -1 for none. */
  readonly target: number;
  readonly enabled: boolean;
  /** Pending as the distributor sees it: the latch, or a level interrupt's line. */
  readonly pending: boolean;
  readonly pendingLatch: boolean;
  readonly lineLevel: boolean;
  readonly active: boolean;
  readonly config: 'edge' | 'level';
  readonly group: 0 | 1;
  readonly priority: number;
  readonly hw: boolean;
  /** The physical INTID of a HW interrupt, else -1. */
  readonly hwIntid: number;
  /** The vCPU whose ap_list holds it (irq->vcpu), -1 for none. */
  readonly apList: number;
  /** The LR holding it while that vCPU is in the guest: its live state there. */
  readonly lr: { readonly vcpu: number; readonly n: number; readonly state: LrState['state'] } | null;
}

export interface ItsState {
  readonly index: number;
  readonly enabled: boolean;
  readonly cbaser: readonly [number, number];
  readonly creadr: number;
  readonly cwriter: number;
  readonly baser0: readonly [number, number];
  readonly baser1: readonly [number, number];
  /** Mapped collections: ICID → target vCPU. */
  readonly collections: readonly { readonly icid: number; readonly vcpu: number }[];
  readonly devices: readonly {
    readonly devid: number;
    readonly itt: number;
    readonly eventBits: number;
    readonly events: readonly { readonly eventid: number; readonly intid: number; readonly icid: number }[];
  }[];
  /** Devices not listed because of maxDevices. */
  readonly devicesOmitted: number;
  readonly cache: {
    readonly size: number;
    readonly generation: number;
    readonly entries: readonly { readonly devid: number; readonly eventid: number; readonly intid: number }[];
    readonly misses: number;
    /**
     * Hits, misses, fills and evictions summed over every thread's counters, and the cache hit
     * rate hits / (hits + misses) (null before the first translation), since creation.
     */
    readonly stats: TranslationCacheStats;
  };
  readonly commands: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly commandReadFaults: number;
  readonly unknownCommands: number;
  readonly tableFaults: number;
  readonly msiBlocked: number;
  readonly msiBusy: number;
}

/** The whole dump (the JSON form of `vgic-state`). */
export interface VgicStateDump {
  readonly model: 'GICv3';
  readonly nVcpus: number;
  readonly nSpis: number;
  readonly nLrs: number;
  readonly nLpis: number;
  readonly distributor: {
    readonly enableGrp0: boolean;
    readonly enableGrp1: boolean;
    readonly propbaser: readonly [number, number];
  };
  readonly vcpus: readonly VcpuState[];
  readonly irqs: readonly IrqState[];
  /** Mapped LPIs not listed because of maxLpis. */
  readonly lpisOmitted: number;
  readonly its: readonly ItsState[];
  readonly stats: Readonly<Record<string, number>>;
}

export interface DumpOptions {
  /** Devices listed per ITS (default 256). */
  readonly maxDevices?: number;
  /** Events listed per device (default 256). */
  readonly maxEvents?: number;
  /** Mapped LPIs listed (default 4096). */
  readonly maxLpis?: number;
  /** Translation-cache entries listed per ITS (default 1024). */
  readonly maxCacheEntries?: number;
}

function lrStateName(hi: number): LrState['state'] {
  const p = (hi & LR_HI_PENDING) !== 0;
  const a = (hi & LR_HI_ACTIVE) !== 0;
  return p && a ? 'pending+active' : p ? 'pending' : a ? 'active' : 'invalid';
}

function decodeLr(s: GicState, v: number, n: number): LrState {
  const i = s.lrIndex(v, n);
  const hi = s.lr[i + 1];
  const hw = (hi & LR_HI_HW) !== 0;
  return {
    n,
    vintid: s.lr[i],
    state: lrStateName(hi),
    hw,
    group: hi & LR_HI_GROUP ? 1 : 0,
    priority: lrPriority(hi),
    pintid: hw ? hi & LR_HI_PINTID_MASK : -1,
    eoi: !hw && (hi & LR_HI_EOI) !== 0,
  };
}

function vcpuState(s: GicState, v: number): VcpuState {
  const b = v * VCPU_STRIDE;
  const vmcr = s.vcpu[b + V_VMCR];
  const apList: number[] = [];
  // Bounded by the slots: a list being relinked by another thread cannot make this loop forever.
  for (let slot = s.vcpu[b + V_AP_HEAD]; slot >= 0 && apList.length < s.nSlots; slot = s.irqApNext[slot])
    apList.push(s.irqIntid[slot]);
  const inGuest = s.vcpu[b + V_IN_GUEST] !== 0;
  const used = inGuest ? Math.min(s.vcpu[b + V_USED_LRS], s.nLrs) : 0;
  const hcr = s.vcpu[b + V_HCR];
  return {
    index: v,
    affinity: vcpuAffinity(v),
    inGuest,
    apList,
    usedLrs: used,
    lrs: Array.from({ length: used }, (_, n) => decodeLr(s, v, n)),
    vmcr: vmcr >>> 0,
    pmr: (vmcr >>> VMCR_PMR_SHIFT) & 0xff,
    bpr0: (vmcr >>> VMCR_BPR0_SHIFT) & VMCR_BPR_MASK,
    bpr1: (vmcr >>> VMCR_BPR1_SHIFT) & VMCR_BPR_MASK,
    cbpr: (vmcr & VMCR_CBPR) !== 0,
    eoiMode: (vmcr & VMCR_EOIM) !== 0,
    igrpen0: (vmcr & VMCR_ENG0) !== 0,
    igrpen1: (vmcr & VMCR_ENG1) !== 0,
    ap0r0: s.vcpu[b + V_AP0R0] >>> 0,
    ap1r0: s.vcpu[b + V_AP1R0] >>> 0,
    runningPriority: runningPriority(s, v),
    hcr: { uie: (hcr & HCR_UIE) !== 0, npie: (hcr & HCR_NPIE) !== 0, lrenpie: (hcr & HCR_LRENPIE) !== 0 },
    irqsMasked: s.vcpu[b + V_PSTATE_I] !== 0,
    lpisEnabled: lpisEnabled(s, v),
    timer: { ctl: s.vcpu[b + V_TIMER_CTL], level: s.vcpu[b + V_TIMER_LEVEL] !== 0 },
    exits: s.vcpu[b + V_EXITS] >>> 0,
    flushes: s.vcpu[b + V_FLUSHES] >>> 0,
    maintenance: s.vcpu[b + V_MAINT] >>> 0,
    foldMerged: s.vcpu[b + V_FOLD_MERGED] >>> 0,
    acks: s.vcpu[b + V_ACKS] >>> 0,
    online: s.vcpu[b + V_POWER_OFF] === 0,
  };
}

/** The LR of vCPU v (in the guest) holding `intid`, or -1. */
function lrOf(s: GicState, v: number, intid: number): number {
  const b = v * VCPU_STRIDE;
  if (s.vcpu[b + V_IN_GUEST] === 0) return -1;
  const used = Math.min(s.vcpu[b + V_USED_LRS], s.nLrs);
  for (let n = 0; n < used; n++) if (s.lr[s.lrIndex(v, n)] === intid) return n;
  return -1;
}

function irqState(s: GicState, slot: number): IrqState {
  const f = s.irqFlags[slot];
  const intid = s.irqIntid[slot];
  const priv = slot < s.spiBase;
  const onList = s.irqApVcpu[slot];
  const n = onList >= 0 ? lrOf(s, onList, intid) : -1;
  const edge = (f & IRQ_EDGE) !== 0;
  const latch = (f & IRQ_PENDING_LATCH) !== 0;
  const line = (f & IRQ_LINE_LEVEL) !== 0;
  return {
    intid,
    type:
      intid < VGIC_NR_SGIS
        ? 'SGI'
        : intid < VGIC_NR_PRIVATE_IRQS
          ? 'PPI'
          : intid < VGIC_MIN_LPI
            ? 'SPI'
            : 'LPI',
    vcpu: priv ? Math.floor(slot / VGIC_NR_PRIVATE_IRQS) : -1,
    target: s.irqTarget[slot],
    enabled: (f & IRQ_ENABLED) !== 0,
    pending: latch || (!edge && line),
    pendingLatch: latch,
    lineLevel: line,
    active: (f & IRQ_ACTIVE) !== 0,
    config: edge ? 'edge' : 'level',
    group: f & IRQ_GROUP1 ? 1 : 0,
    priority: s.irqPriority[slot],
    hw: (f & IRQ_HW) !== 0,
    hwIntid: f & IRQ_HW ? s.irqHwIntid[slot] : -1,
    apList: onList,
    lr: n >= 0 ? { vcpu: onList, n, state: lrStateName(s.lr[s.lrIndex(onList, n) + 1]) } : null,
  };
}

function itsState(s: GicState, mem: GuestMemory, k: number, o: Required<DumpOptions>): ItsState {
  const w = k * ITS_STRIDE;
  const collections: { icid: number; vcpu: number }[] = [];
  for (let icid = 0; icid < ITS_COLLECTIONS; icid++) {
    const t = s.itsColl[k * ITS_COLLECTIONS + icid];
    if (t >= 0) collections.push({ icid, vcpu: t });
  }
  const devices: ItsState['devices'][number][] = [];
  let omitted = 0;
  for (let d = nextLiveDevice(s, k, 0); d >= 0; d = nextLiveDevice(s, k, d + 1)) {
    if (devices.length >= o.maxDevices) {
      omitted++;
      continue;
    }
    if (liveDte(s, mem, k, d) < 0) continue;
    const itt = dteItt;
    const bits = dteBits;
    const events: { eventid: number; intid: number; icid: number }[] = [];
    const words = new Uint32Array(2);
    for (let e = 0; e < 2 ** bits && events.length < o.maxEvents; e++) {
      if (!mem.readWords(itt + e * ITS_ITE_SIZE, words)) continue;
      const intid = ((words[0] >>> 16) | ((words[1] & 0xffff) << 16)) >>> 0;
      if (intid !== 0) events.push({ eventid: e, intid, icid: words[0] & 0xffff });
    }
    devices.push({ devid: d, itt, eventBits: bits, events });
  }
  const gen = s.its[w + I_CACHE_GEN];
  const entries: { devid: number; eventid: number; intid: number }[] = [];
  const base = k * s.itsCacheSize * 2;
  for (let e = 0; e < s.itsCacheSize && entries.length < o.maxCacheEntries; e++) {
    const key = s.itsCache[base + 2 * e];
    const value = s.itsCache[base + 2 * e + 1];
    if (value >>> 16 !== gen) continue;
    entries.push({ devid: key >>> 16, eventid: key & 0xffff, intid: VGIC_MIN_LPI + (value & 0xffff) });
  }
  const errors: Record<string, number> = {};
  E_ITS_CODES.forEach(([name], i) => {
    errors[name] = s.its[w + I_ERR_BASE + i] >>> 0;
  });
  return {
    index: k,
    enabled: (s.its[w + I_CTLR] & 1) !== 0,
    cbaser: [s.its[w + I_CBASER_LO] >>> 0, s.its[w + I_CBASER_HI] >>> 0],
    creadr: s.its[w + I_CREADR],
    cwriter: s.its[w + I_CWRITER],
    baser0: [s.its[w + I_BASER0_LO] >>> 0, s.its[w + I_BASER0_HI] >>> 0],
    baser1: [s.its[w + I_BASER1_LO] >>> 0, s.its[w + I_BASER1_HI] >>> 0],
    collections,
    devices,
    devicesOmitted: omitted,
    cache: {
      size: s.itsCacheSize,
      generation: gen,
      entries,
      misses: s.its[w + I_CACHE_MISS] >>> 0,
      stats: msiStatsOf(s, k),
    },
    commands: s.its[w + I_COMMANDS] >>> 0,
    errors,
    commandReadFaults: s.its[w + I_CMD_READ_FAULT] >>> 0,
    unknownCommands: s.its[w + I_CMD_UNKNOWN] >>> 0,
    tableFaults: s.its[w + I_TABLE_FAULT] >>> 0,
    msiBlocked: s.its[w + I_MSI_BLOCKED] >>> 0,
    msiBusy: s.its[w + I_MSI_BUSY] >>> 0,
  };
}

const bound = (what: string, v: number | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0 || v > 65536)
    throw new RangeError(`${what} must be an integer in 0..65536`);
  return v;
};

/** The dump's JSON form. `stats` is Vgic.stats() flattened (its per-vCPU part is in `vcpus`). */
export function dumpVgicState(
  s: GicState,
  mem: GuestMemory,
  stats: Readonly<Record<string, number>>,
  options: DumpOptions = {},
): VgicStateDump {
  const o: Required<DumpOptions> = {
    maxDevices: bound('maxDevices', options.maxDevices, 256),
    maxEvents: bound('maxEvents', options.maxEvents, 256),
    maxLpis: bound('maxLpis', options.maxLpis, 4096),
    maxCacheEntries: bound('maxCacheEntries', options.maxCacheEntries, 1024),
  };
  const irqs: IrqState[] = [];
  for (let slot = 0; slot < s.lpiBase; slot++) irqs.push(irqState(s, slot));
  let lpisOmitted = 0;
  for (let i = 0; i < s.nLpis; i++) {
    if (s.irqLpiRef[i] === 0) continue;
    if (irqs.length - s.lpiBase >= o.maxLpis) lpisOmitted++;
    else irqs.push(irqState(s, s.lpiBase + i));
  }
  return {
    model: 'GICv3',
    nVcpus: s.nVcpus,
    nSpis: s.nSpis,
    nLrs: s.nLrs,
    nLpis: s.nLpis,
    distributor: {
      enableGrp0: (s.dist[D_CTLR] & GICD_CTLR_ENABLE_GRP0) !== 0,
      enableGrp1: (s.dist[D_CTLR] & GICD_CTLR_ENABLE_GRP1) !== 0,
      propbaser: [s.dist[D_PROPBASER_LO] >>> 0, s.dist[D_PROPBASER_HI] >>> 0],
    },
    vcpus: Array.from({ length: s.nVcpus }, (_, v) => vcpuState(s, v)),
    irqs,
    lpisOmitted,
    its: Array.from({ length: s.nIts }, (_, k) => itsState(s, mem, k, o)),
    stats,
  };
}

const hex = (n: number, w = 0): string => `0x${n.toString(16).padStart(w, '0')}`;
const bit = (b: boolean): string => (b ? '1' : '0');

/**
 * The text form, laid out as KVM's debugfs vgic-state (Distributor, then one line per interrupt
 * with P L A E H C G PRI columns), with the vCPU and ITS sections before the interrupts.
 */
export function formatVgicState(d: VgicStateDump): string {
  const out: string[] = [];
  out.push('Distributor', '===========');
  out.push(`vgic_model:\t${d.model}`, `nr_spis:\t${d.nSpis}`, `nr_lpis:\t${d.nLpis}`);
  out.push(`enabled:\tGrp0 ${bit(d.distributor.enableGrp0)} Grp1 ${bit(d.distributor.enableGrp1)}`);
  out.push(`propbaser:\t${hex(d.distributor.propbaser[1] * 2 ** 32 + d.distributor.propbaser[0])}`, '');
  for (const v of d.vcpus) {
    out.push(`VCPU ${v.index} (affinity ${hex(v.affinity)})`, '------');
    out.push(
      `in_guest ${bit(v.inGuest)}  PMR ${hex(v.pmr, 2)}  BPR0 ${v.bpr0}  BPR1 ${v.bpr1}  CBPR ${bit(v.cbpr)}  EOImode ${bit(v.eoiMode)}  IGRPEN0 ${bit(v.igrpen0)}  IGRPEN1 ${bit(v.igrpen1)}`,
    );
    out.push(
      `AP0R0 ${hex(v.ap0r0, 8)}  AP1R0 ${hex(v.ap1r0, 8)}  RPR ${hex(v.runningPriority, 2)}  HCR UIE ${bit(v.hcr.uie)} NPIE ${bit(v.hcr.npie)} LRENPIE ${bit(v.hcr.lrenpie)}  PSTATE.I ${bit(v.irqsMasked)}  EnableLPIs ${bit(v.lpisEnabled)}`,
    );
    out.push(
      `${v.online ? 'online' : 'OFFLINE'}  exits ${v.exits}  flushes ${v.flushes}  maintenance ${v.maintenance}  fold_merged ${v.foldMerged}  acks ${v.acks}`,
    );
    out.push(`ap_list (${v.apList.length}): ${v.apList.join(' ') || '-'}`);
    out.push(`LRs (${v.usedLrs} of ${d.nLrs} in use):`);
    for (const lr of v.lrs) {
      out.push(
        `  LR${lr.n}: vINTID ${lr.vintid} ${lr.state} G${lr.group} PRI ${hex(lr.priority, 2)}${lr.hw ? ` HW pINTID ${lr.pintid}` : ''}${lr.eoi ? ' EOI' : ''}`,
      );
    }
    out.push('');
  }
  for (const its of d.its) {
    out.push(`ITS ${its.index}`, '-----');
    out.push(
      `enabled ${bit(its.enabled)}  CBASER ${hex(its.cbaser[1] * 2 ** 32 + its.cbaser[0])}  CREADR ${hex(its.creadr)}  CWRITER ${hex(its.cwriter)}`,
    );
    out.push(
      `BASER0 ${hex(its.baser0[1] * 2 ** 32 + its.baser0[0])}  BASER1 ${hex(its.baser1[1] * 2 ** 32 + its.baser1[0])}`,
    );
    out.push(
      `commands ${its.commands}  read_faults ${its.commandReadFaults}  unknown ${its.unknownCommands}  table_faults ${its.tableFaults}  msi_blocked ${its.msiBlocked}  msi_busy ${its.msiBusy}`,
    );
    const errs = Object.entries(its.errors).filter(([, n]) => n > 0);
    out.push(`errors: ${errs.map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
    out.push(`collections: ${its.collections.map((c) => `${c.icid}->vcpu${c.vcpu}`).join(' ') || '-'}`);
    for (const dev of its.devices) {
      out.push(`device ${dev.devid}: ITT ${hex(dev.itt)} ${dev.eventBits} EventID bits`);
      for (const e of dev.events) out.push(`  event ${e.eventid} -> LPI ${e.intid} ICID ${e.icid}`);
    }
    if (its.devicesOmitted > 0) out.push(`(${its.devicesOmitted} more devices)`);
    out.push(
      `translation cache: ${its.cache.entries.length} live of ${its.cache.size} entries, generation ${its.cache.generation}, misses ${its.cache.misses}`,
    );
    const cs = its.cache.stats;
    out.push(
      `cache hit rate: ${cs.hitRate === null ? '-' : `${(cs.hitRate * 100).toFixed(2)} %`}  hits ${cs.hits}  misses ${cs.misses}  fills ${cs.fills}  evictions ${cs.evictions}`,
    );
    for (const e of its.cache.entries) out.push(`  (${e.devid}, ${e.eventid}) -> LPI ${e.intid}`);
    out.push('');
  }
  out.push(
    'P=pending_latch, L=line_level, A=active',
    'E=enabled, H=hw, C=config (level=1, edge=0)',
    'G=group',
    '',
  );
  out.push('VCPU TYPE     ID TARGET HWID P L A E H C G PRI  AP_LIST LR');
  out.push('------------------------------------------------------------');
  for (const q of d.irqs) {
    const who = q.vcpu >= 0 ? String(q.vcpu) : '-';
    out.push(
      `${who.padStart(4)} ${q.type.padEnd(4)} ${String(q.intid).padStart(6)} ${String(q.target).padStart(6)} ${String(q.hwIntid).padStart(4)} ${bit(q.pendingLatch)} ${bit(q.lineLevel)} ${bit(q.active)} ${bit(q.enabled)} ${bit(q.hw)} ${q.config === 'level' ? 1 : 0} ${q.group} ${hex(q.priority, 2).padStart(4)} ${String(q.apList).padStart(7)} ${q.lr ? `v${q.lr.vcpu}:LR${q.lr.n} ${q.lr.state}` : '-'}`,
    );
  }
  if (d.lpisOmitted > 0) out.push(`(${d.lpisOmitted} more mapped LPIs)`);
  out.push('', 'Statistics', '----------');
  for (const [k, n] of Object.entries(d.stats)) out.push(`${k}: ${n}`);
  return `${out.join('\n')}\n`;
}

/** An explain() answer: the reason in one line, and whether the interrupt is being signalled. */
export interface Explanation {
  readonly signalled: boolean;
  readonly reason: string;
}

/**
 * The first architectural reason INTID `intid` is not being signalled to vCPU `vcpu` (the vCPU of
 * an SGI/PPI; for SPIs and LPIs, its target when undefined), checked in the order the GIC applies
 * them: the interrupt exists, is enabled (for an LPI: mapped, and enabled in the property table),
 * pending, not active; its group is enabled at the distributor; it is routed to this vCPU (whose
 * redistributor has LPIs enabled), which is online (powered on); its group is enabled at the CPU interface; its priority is above
 * ICC_PMR_EL1 and, in group-priority terms, above the running priority; no other interrupt is
 * signalled before it; PSTATE.I lets the vCPU take it. Returns undefined for an INTID that does
 * not exist (the caller words the error).
 */
export function explainIrq(s: GicState, intid: number, vcpu: number): Explanation | undefined {
  let slot: number;
  if (intid < VGIC_NR_PRIVATE_IRQS) slot = s.slotOf(vcpu, intid);
  else if (intid < s.nrIrqs) slot = s.slotOf(0, intid);
  else if (intid >= VGIC_MIN_LPI) slot = s.lpiSlot(intid);
  else slot = -1;
  if (slot < 0) return undefined;
  const no = (reason: string): Explanation => ({ signalled: false, reason });
  const f = s.irqFlags[slot];
  const lpi = intid >= VGIC_MIN_LPI;
  const name = `${lpi ? 'LPI' : intid < VGIC_NR_SGIS ? 'SGI' : intid < VGIC_NR_PRIVATE_IRQS ? 'PPI' : 'SPI'} ${intid}`;
  if (lpi && s.irqLpiRef[slot - s.lpiBase] === 0)
    return no(`${name} is not mapped by any ITS (no MAPTI/MAPI for it, or it was DISCARDed)`);
  const target = s.irqTarget[slot];
  const v = intid < VGIC_NR_PRIVATE_IRQS ? vcpu : vcpu >= 0 ? vcpu : target;
  // With EnableLPIs clear the redistributor ignores its LPIs: their pending state lives in the table.
  if (lpi && target >= 0 && target < s.nVcpus && !lpisEnabled(s, target))
    return no(
      `vCPU ${target}'s redistributor has LPIs disabled (GICR_CTLR.EnableLPIs is 0): ${name}'s pending state waits in its pending table`,
    );
  // The LR, if the interrupt sits in one of a running vCPU's LRs: its live pending/active state.
  const on = s.irqApVcpu[slot];
  const n = on >= 0 ? lrOf(s, on, intid) : -1;
  const lrHi = n >= 0 ? s.lr[s.lrIndex(on, n) + 1] : 0;
  const pending =
    n >= 0
      ? (lrHi & LR_HI_PENDING) !== 0 || (f & IRQ_PENDING_LATCH) !== 0
      : (f & IRQ_PENDING_LATCH) !== 0 || ((f & IRQ_EDGE) === 0 && (f & IRQ_LINE_LEVEL) !== 0);
  const active = n >= 0 ? (lrHi & LR_HI_ACTIVE) !== 0 : (f & IRQ_ACTIVE) !== 0;
  if ((f & IRQ_ENABLED) === 0) {
    return no(
      lpi
        ? `${name} is disabled in the LPI configuration table (its enable bit is clear; after setting it, INV or INVALL makes the ITS re-read it)`
        : `${name} is disabled (${intid < VGIC_NR_PRIVATE_IRQS ? `GICR_ISENABLER0 of vCPU ${vcpu}` : 'GICD_ISENABLER'} bit clear)`,
    );
  }
  if (!pending) {
    if (active)
      return no(
        `${name} is active, not pending: the guest acknowledged it and has not deactivated it (EOI, or DIR with EOImode 1)`,
      );
    if ((f & IRQ_EDGE) === 0 && !lpi) return no(`${name} is not pending: its level line is low`);
    return no(`${name} is not pending`);
  }
  if (active)
    return no(`${name} is pending and active: it cannot be signalled again until the guest deactivates it`);
  const grp1 = (f & IRQ_GROUP1) !== 0;
  const dctlr = s.dist[D_CTLR];
  if ((dctlr & (grp1 ? GICD_CTLR_ENABLE_GRP1 : GICD_CTLR_ENABLE_GRP0)) === 0)
    return no(`${name} is Group ${grp1 ? 1 : 0}, and GICD_CTLR.EnableGrp${grp1 ? 1 : 0} is 0`);
  if (target < 0 || target >= s.nVcpus)
    return no(`${name} is routed to no vCPU (GICD_IROUTER names an affinity no vCPU has)`);
  if (target !== v) return no(`${name} targets vCPU ${target}, not vCPU ${v}`);
  const b = v * VCPU_STRIDE;
  // A powered-off PE's CPU interface signals nothing; the interrupt waits in its redistributor.
  // (GICD_IROUTER.IRM is RAZ/WI, as KVM: no 1-of-N SPI can be moved to an online vCPU.)
  if (s.vcpu[b + V_POWER_OFF] !== 0)
    return no(
      `target vCPU ${v} is offline (powered off: PSCI CPU_OFF, or VCpu.setOnline(false)): ${name} stays pending until it is powered on`,
    );
  const vmcr = s.vcpu[b + V_VMCR];
  if ((vmcr & (grp1 ? VMCR_ENG1 : VMCR_ENG0)) === 0)
    return no(
      `Group ${grp1 ? 1 : 0} is disabled at vCPU ${v}'s CPU interface (ICC_IGRPEN${grp1 ? 1 : 0}_EL1 is 0)`,
    );
  const prio = s.irqPriority[slot];
  const pmr = (vmcr >>> VMCR_PMR_SHIFT) & 0xff;
  if (prio >= pmr)
    return no(
      `${name} is masked by vCPU ${v}'s priority mask: priority ${hex(prio, 2)} is not higher than ICC_PMR_EL1 ${hex(pmr, 2)}`,
    );
  const rpr = runningPriority(s, v);
  const mask = gprioMask(s, v, grp1);
  if (rpr !== PRIO_IDLE && (prio & mask) >= (rpr & mask)) {
    return no(
      `${name} (priority ${hex(prio, 2)}) does not preempt vCPU ${v}'s running priority ${hex(rpr, 2)} (compared as group priorities under the binary point): the active interrupt must be EOIed first`,
    );
  }
  // Another interrupt of vCPU v that the CPU interface would pick first: better priority, or equal
  // priority and lower INTID (the choice the CPU interface makes, core/icv.ts).
  for (let o = s.vcpu[b + V_AP_HEAD], seen = 0; o >= 0 && seen < s.nSlots; o = s.irqApNext[o], seen++) {
    if (o === slot) continue;
    const g = s.irqFlags[o];
    const oi = s.irqIntid[o];
    const m = lrOf(s, v, oi);
    const hi = m >= 0 ? s.lr[s.lrIndex(v, m) + 1] : 0;
    const op =
      m >= 0
        ? (hi & LR_HI_PENDING) !== 0 && (hi & LR_HI_ACTIVE) === 0
        : (g & IRQ_PENDING_LATCH) !== 0 || ((g & IRQ_EDGE) === 0 && (g & IRQ_LINE_LEVEL) !== 0);
    if (!op || (g & IRQ_ENABLED) === 0 || (m < 0 && (g & IRQ_ACTIVE) !== 0)) continue;
    const og = (g & IRQ_GROUP1) !== 0;
    if ((vmcr & (og ? VMCR_ENG1 : VMCR_ENG0)) === 0) continue;
    const pp = s.irqPriority[o];
    if (pp < prio || (pp === prio && oi < intid))
      return no(`vCPU ${v} has INTID ${oi} pending at priority ${hex(pp, 2)}, which is signalled first`);
  }
  if (on !== v) return no(`${name} is not yet on vCPU ${v}'s ap_list (queued at its next entry)`);
  if (s.vcpu[b + V_IN_GUEST] !== 0 && n < 0) {
    if (s.vcpu[b + V_USED_LRS] >= s.nLrs)
      return no(
        `${name} waits on vCPU ${v}'s ap_list: all ${s.nLrs} list registers hold interrupts that go first (a maintenance interrupt refills them)`,
      );
    return no(
      `${name} is queued on vCPU ${v}'s ap_list: it reaches a list register when the vCPU next enters (it has been kicked)`,
    );
  }
  return {
    signalled: true,
    reason: `${name} is signalled to vCPU ${v} as ${grp1 ? 'vIRQ' : 'vFIQ'}: taken at its next instruction boundary`,
  };
}
