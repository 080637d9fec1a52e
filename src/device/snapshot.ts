/**
 * Snapshot format v2: the state buffer itself (state/layout.ts), sealed by Vgic.snapshot() with its
 * exact byte length, the format number and a checksum over every word, and validated field by
 * field before Vgic.restore() builds a GIC on it.
 *
 * The checksum catches accidents (truncation, bit rot); it proves nothing about who made the bytes,
 * since anyone can recompute it. So every word the code trusts is checked against the invariant
 * the code relies on: a restored GIC never hangs on a held lock, never indexes outside a section,
 * never shows a guest a value its registers could not hold, and delivers exactly what the saved
 * one would have. Words that only cache something (translation caches) are cleared instead:
 * emptying a cache is always correct. Format v1 (state version 3, no checksum) is refused.
 *
 * Who may call: device/vgic.ts only.
 */

import { VgicError } from '../arch/errors.ts';
import {
  GICC_CTLR_ACKCTL,
  GICC_CTLR_FIQEN,
  GICH_LR_HW,
  GICH_LR_PHYSID_CPUID_SHIFT,
  GICH_LR_PHYSID_MASK,
  GICH_LR_RES0,
  GICH_LR_VIRTUALID,
  VGIC_V2_MAX_CPUS,
} from '../arch/gicv2.ts';
import { GICD_CTLR_ENABLE_GRP0, GICD_CTLR_ENABLE_GRP1, GICR_CTLR_ENABLE_LPIS } from '../arch/gicv3.ts';
import {
  DOORBELL_NONE,
  ITS_VPE_ENTRY_SIZE,
  VPROPBASER_HI_ESZ_SHIFT,
  VPROPBASER_HI_RW,
  VPROPBASER_LO_RW,
} from '../arch/gicv4.ts';
import {
  HCR_LRENPIE,
  HCR_NPIE,
  HCR_UIE,
  LR_HI_HW,
  LR_HI_PINTID_MASK,
  VGIC_MIN_BPR0,
  VGIC_PRI_MASK,
  VGIC_V3_MAX_LRS,
  VMCR_BPR_MASK,
  VMCR_BPR0_SHIFT,
  VMCR_BPR1_SHIFT,
  VMCR_CBPR,
  VMCR_ENG0,
  VMCR_ENG1,
  VMCR_EOIM,
  VMCR_PMR_SHIFT,
} from '../arch/ich.ts';
import {
  PPI_VTIMER,
  VGIC_FIRST_SPI,
  VGIC_MIN_LPI,
  VGIC_NR_PRIVATE_IRQS,
  VGIC_NR_SGIS,
} from '../arch/intid.ts';
import {
  E_ITS_CODES,
  GICR_PENDBASER_HI_RW,
  GICR_PENDBASER_LO_RW,
  GICR_PROPBASER_HI_RW,
  GICR_PROPBASER_LO_RW,
  GITS_BASER_HI_INDIRECT,
  GITS_BASER_HI_RW,
  GITS_BASER_HI_VALID,
  GITS_BASER_LO_PAGE_SIZE_64K,
  GITS_BASER_LO_RW,
  GITS_CBASER_HI_RW,
  GITS_CBASER_LO_RW,
  GITS_CTLR_ENABLED,
  ITS_CMD_OFFSET_MASK,
  ITS_EVENT_IDBITS,
} from '../arch/its.ts';
import { CNTV_CTL_ENABLE, CNTV_CTL_IMASK } from '../arch/sysreg.ts';
import { FLAG_VIRTUAL_TIME, nowMs, REAL_TIME_SPAN_MS } from '../core/clock.ts';
import { targetOracle } from '../core/irq.ts';
import { LPI_FREE_FLAGS } from '../core/lpi.ts';
import { vcpuAffinity, vcpuByAffinity } from '../core/sgi.ts';
import { cmdQueueBytes } from '../its/commands.ts';
import { globalCacheCheck } from '../its/global-cache.ts';
import { msiStatsCheck, msiStatsFold } from '../its/msi-stats.ts';
import { FLAG_LPIS } from '../mmio/gicd.ts';
import { targetsToVcpu } from '../mmio/gicd-v2.ts';
import { BASER_RESET_HI } from '../mmio/its.ts';
import {
  attachState,
  C_EPOCH_MS,
  computeLayout,
  D_LPI_LOCK,
  FLAG_DIRECT,
  FLAG_GICV2,
  FLAG_GLOBAL_LRU,
  type GicState,
  GLOBAL_CACHE_PER_VCPU,
  H_BYTE_LENGTH,
  H_CHECKSUM,
  H_FLAGS,
  H_ITS_CACHE,
  H_MAGIC,
  H_NR_ITS,
  H_NR_LPIS,
  H_NR_LRS,
  H_NR_SPIS,
  H_NR_VCPUS,
  H_SNAPSHOT,
  H_VERSION,
  HEADER_WORDS,
  I_BASER0_HI,
  I_BASER0_LO,
  I_BASER2_HI,
  I_BASER2_LO,
  I_CACHE_GEN,
  I_CBASER_HI,
  I_CBASER_LO,
  I_CMD_LOCK,
  I_COMMANDS,
  I_CREADR,
  I_CTLR,
  I_CWRITER,
  I_ERR_BASE,
  I_LOCK,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_FORWARDED,
  IRQ_HW,
  IRQ_PENDING_LATCH,
  IRQ_VALID,
  ITS_COLLECTIONS,
  ITS_DEVICE_WORDS,
  ITS_DEVICES,
  ITS_STRIDE,
  RD_LAST,
  REQ_IRQ_PENDING,
  SGI_ACTIVE_SOURCE_SHIFT,
  SGI_SOURCE_MASK,
  SNAPSHOT_FORMAT,
  STATE_MAGIC,
  STATE_VERSION,
  stateChecksum,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_AP_TAIL,
  V_HCR,
  V_IN_GUEST,
  V_INV_LO,
  V_LPI_CTLR,
  V_LR_ACT,
  V_LR_EOI,
  V_LR_GRP0,
  V_LR_PEND,
  V_LR_SORTED,
  V_MPIDR,
  V_PENDBASER_HI,
  V_PENDBASER_LO,
  V_POWER_OFF,
  V_PSTATE_F,
  V_PSTATE_I,
  V_RD_FLAGS,
  V_REQUESTS,
  V_TIMER_CTL,
  V_TIMER_LEVEL,
  V_USED_LRS,
  V_VMCR,
  V_VPE_ON,
  V_VPENDBASER,
  V_VPROPBASER_HI,
  V_VPROPBASER_LO,
  V_VSGIR,
  VCPU_STRIDE,
  VPE_DB,
  VPE_MAP,
  VPE_MAP_V,
  VPE_RESIDENT_ON,
  VPE_STATE,
  VPE_STATE_MASK,
  VPE_STRIDE,
  VPE_VALID,
  VPE_VCONF_HI,
  VPE_VCONF_LO,
  VPE_VPT_HI,
  VPE_VPT_LO,
  VPE_VPT_SIZE,
  VPE_VSGI,
} from '../state/layout.ts';
import { clearRunWords } from './setup.ts';

const MAX_VCPUS = 512;
const MAX_ITS = 16;
/** The translation cache's generations run 1..GEN_MAX (its/cache.ts). */
const CACHE_GEN_MAX = 0x7fff;
/** ITS words after the last counter: unused, zero. */
const ITS_USED_WORDS = I_COMMANDS + 1; // then zero up to the error counters, and after them
/** vCPU words after V_INV_LO: unused, zero. */
const VCPU_USED_WORDS = V_INV_LO + 1;
const DIST_USED_WORDS = 4; // D_CTLR, D_PROPBASER_LO/HI, D_LPI_LOCK
/** The most ITEs a device can hold: MAPD accepts at most 16 EventID bits. */
const ITS_MAX_EVENTS = 2 ** ITS_EVENT_IDBITS;

const VMCR_VALID =
  VMCR_ENG0 |
  VMCR_ENG1 |
  VMCR_CBPR |
  VMCR_EOIM |
  (VMCR_BPR_MASK << VMCR_BPR1_SHIFT) |
  (VMCR_BPR_MASK << VMCR_BPR0_SHIFT) |
  (VGIC_PRI_MASK << VMCR_PMR_SHIFT);
/** An LPI's priority as its property byte gives it (bits 7:2). */
const LPI_PRIO_MASK = 0xfc;
/** ICH_LR<n>_EL2 high word: bits 47:42 and 59:56 are RES0; a priority has at most an LPI's bits. */
const LR_HI_RES0 = (0x3f << 10) | (0xf << 24) | ((~LPI_PRIO_MASK & 0xff) << 16);
const IRQ_FLAGS_VALID = 0x1ff;

function refuse(why: string): never {
  throw new VgicError('INVALID_ARGUMENT', `corrupt vgic snapshot: ${why}`);
}

/**
 * On a snapshot's copy, before sealing: the per-thread translation-cache statistics are saved,
 * summed into the one slot no thread owns (its/msi-stats.ts: the owner ids name this process's
 * threads); the inspector's latency probes are instrumentation of this process, not GIC state, and
 * are cleared (a restored GIC has no inspector attached).
 */
export function prepareSnapshotCounters(s: GicState): void {
  msiStatsFold(s);
  s.inspect.fill(0);
  s.inspectTimes.fill(0);
}

/** Seals a copy of a state as a snapshot: format, exact length and checksum in its header. */
export function sealSnapshot(buffer: ArrayBuffer): void {
  const words = new Int32Array(buffer);
  words[H_BYTE_LENGTH] = buffer.byteLength;
  words[H_SNAPSHOT] = SNAPSHOT_FORMAT;
  words[H_CHECKSUM] = stateChecksum(words);
}

/** Checks the header alone, before any view depends on it; returns the exact byte length. */
function checkHeader(h: Int32Array, byteLength: number): number {
  if (h[H_MAGIC] !== STATE_MAGIC) refuse('bad magic (not a vgic snapshot)');
  const version = h[H_VERSION];
  if (version === 3) {
    refuse(
      'snapshot format v1 (vgic state version 3) is not accepted: it carries no checksum or length; ' +
        `restore it with the vgic that made it and take a new snapshot (this build reads format v${SNAPSHOT_FORMAT}, state version ${STATE_VERSION})`,
    );
  }
  if (version !== STATE_VERSION || h[H_SNAPSHOT] !== SNAPSHOT_FORMAT) {
    refuse(
      `state version ${version}, snapshot format ${h[H_SNAPSHOT]} is not supported (this build reads format v${SNAPSHOT_FORMAT}, state version ${STATE_VERSION})`,
    );
  }
  const nVcpus = h[H_NR_VCPUS];
  const nSpis = h[H_NR_SPIS];
  const nLrs = h[H_NR_LRS];
  const nIts = h[H_NR_ITS];
  const nLpis = h[H_NR_LPIS];
  const cache = h[H_ITS_CACHE];
  const flags = h[H_FLAGS];
  if (!(nVcpus >= 1 && nVcpus <= MAX_VCPUS)) refuse(`${nVcpus} vCPUs (1..${MAX_VCPUS})`);
  if (!(nSpis >= 32 && nSpis <= 960 && nSpis % 32 === 0))
    refuse(`${nSpis} SPIs (a multiple of 32 in 32..960)`);
  if (!(nLrs >= 1 && nLrs <= VGIC_V3_MAX_LRS)) refuse(`${nLrs} list registers (1..${VGIC_V3_MAX_LRS})`);
  if (!(nIts >= 0 && nIts <= MAX_ITS)) refuse(`${nIts} ITSes (0..${MAX_ITS})`);
  const lpiOk = nIts === 0 ? nLpis === 0 : [14, 15, 16].some((b) => nLpis === 2 ** b - VGIC_MIN_LPI);
  if (!lpiOk) refuse(`${nLpis} LPI slots with ${nIts} ITSes`);
  const cacheOk = nIts === 0 ? cache === 0 : cache >= 1 && cache <= 65536 && (cache & (cache - 1)) === 0;
  if (!cacheOk) refuse(`translation cache of ${cache} entries with ${nIts} ITSes`);
  const known = FLAG_VIRTUAL_TIME | FLAG_LPIS | FLAG_GLOBAL_LRU | FLAG_GICV2 | FLAG_DIRECT;
  if (
    (flags & ~known) !== 0 ||
    (flags & FLAG_GICV2 && (nIts !== 0 || nVcpus > VGIC_V2_MAX_CPUS)) ||
    ((flags & FLAG_LPIS) !== 0) !== nIts > 0 ||
    (flags & FLAG_GLOBAL_LRU && nIts === 0) ||
    (flags & FLAG_DIRECT && nIts === 0)
  )
    refuse(`header flags 0x${(flags >>> 0).toString(16)}`);
  const { byteLength: want } = computeLayout({
    nVcpus,
    nSpis,
    nLrs,
    nLpis,
    nIts,
    itsCache: cache,
    globalCache: flags & FLAG_GLOBAL_LRU ? GLOBAL_CACHE_PER_VCPU * nVcpus : 0,
    direct: (flags & FLAG_DIRECT) !== 0,
  });
  if (h[H_BYTE_LENGTH] !== want || byteLength !== want) {
    refuse(
      `${byteLength} bytes, header says ${h[H_BYTE_LENGTH]}; the geometry it declares needs exactly ${want}`,
    );
  }
  return want;
}

/**
 * Copies `bytes` into a new buffer, checks it completely and returns the state over it, its
 * run words cleared and its translation caches emptied. Throws VgicError; creates nothing else.
 */
export function openSnapshot(bytes: unknown, shared: boolean): GicState {
  if (!(bytes instanceof Uint8Array)) {
    throw new VgicError('INVALID_ARGUMENT', `a snapshot must be a Uint8Array, got ${describe(bytes)}`);
  }
  const n = bytes.byteLength;
  if (n < HEADER_WORDS * 4 || n % 8 !== 0) refuse(`${n} bytes is not the size of any vgic state`);
  const buffer = shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n);
  new Uint8Array(buffer).set(bytes);
  const words = new Int32Array(buffer);
  checkHeader(words, n);
  const sum = stateChecksum(words);
  if (words[H_CHECKSUM] !== (sum | 0)) {
    refuse(
      `checksum 0x${(words[H_CHECKSUM] >>> 0).toString(16)} does not match the contents (0x${sum.toString(16)})`,
    );
  }
  const s = attachState(buffer);
  clearRunWords(s);
  checkState(s);
  // Per-ITS caches: empty is always correct, and an entry cannot be checked without walking guest
  // RAM. The baseline's global cache is kept (globalCacheCheck vouched for its shape): benchmarks
  // compare it warm across a restore.
  s.itsCache.fill(0);
  s.header[H_CHECKSUM] = 0;
  s.header[H_SNAPSHOT] = 0;
  return s;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'an object';
  return typeof x === 'bigint' ? `${x}n (bigint)` : `${String(x)} (${typeof x})`;
}

const hex = (x: number): string => `0x${(x >>> 0).toString(16)}`;

/** Every field against the invariants the code relies on (see the file comment). */
export function checkState(s: GicState): void {
  checkDist(s);
  checkClock(s);
  for (let v = 0; v < s.nVcpus; v++) checkVcpu(s, v);
  checkSlots(s);
  checkLpiMapped(s);
  checkLists(s);
  for (let k = 0; k < s.nIts; k++) {
    checkIts(s, k);
    checkDevices(s, k);
  }
  const gc = globalCacheCheck(s);
  if (gc !== undefined) refuse(gc);
  const ms = msiStatsCheck(s);
  if (ms !== undefined) refuse(ms);
  if (s.inspect.some((w) => w !== 0) || s.inspectTimes.some((w) => w !== 0))
    refuse('the inspector latency probes are not clear (a snapshot carries none)');
  if (s.direct) checkVpes(s);
}

/**
 * GICv4.1 vPEs (core/vpe.ts): known state bits; a VPT bit only for a mapped, forwarded LPI that
 * targets that vPE (else it would be delivered to the wrong vCPU, or twice after a move); every
 * non-zero VPT word summarised and every non-zero summary word in the top level (a scan visits
 * summarised words only, and the CPU interface skips a vPE whose top level is 0). Summary bits of
 * empty words are allowed: a scan clears them.
 */
/** How many guest-mapped vPEs name LPI `intid` as their doorbell. */
function doorbellRefs(s: GicState, intid: number): number {
  if (!s.direct) return 0;
  let n = 0;
  for (let p = 0; p < s.nVcpus; p++)
    if (s.vpe[p * VPE_STRIDE + VPE_MAP] !== 0 && s.vpe[p * VPE_STRIDE + VPE_DB] === intid) n++;
  return n;
}

/**
 * A vPE slot's guest mapping (VMAPP, core/vpe-guest.ts): unmapped, every guest word is 0 (the
 * doorbell 1023) and it is never resident by a GICR_VPENDBASER; mapped, its RDbase is a vCPU, its
 * doorbell 1023 or an LPI of the store, its VPT_size within the store and its addresses below
 * 2^52, and it is resident (Valid) exactly when one redistributor presents it. Returns the vLPIs
 * its VPT may hold, or -1 for a slot the KVM layer owns.
 */
function checkGuestVpe(s: GicState, p: number): number {
  const b = p * VPE_STRIDE;
  const map = s.vpe[b + VPE_MAP];
  let on = 0;
  for (let r = 0; r < s.nVcpus; r++) if (s.vcpu[r * VCPU_STRIDE + V_VPE_ON] === p + 1) on++;
  if (map === 0) {
    if (s.vpe[b + VPE_DB] !== DOORBELL_NONE) refuse(`vPE ${p}: a doorbell without a mapping`);
    for (let w = VPE_VPT_SIZE; w < VPE_STRIDE; w++)
      if (s.vpe[b + w] !== 0) refuse(`vPE ${p} word ${w} is not 0 (not mapped)`);
    if (s.vprop.subarray(p * s.nLpis, (p + 1) * s.nLpis).some((x) => x !== 0))
      refuse(`vPE ${p}: vLPI properties without a mapping`);
    if (on > 1 || (on === 1 && s.vcpu[p * VCPU_STRIDE + V_VPE_ON] !== p + 1))
      refuse(`vPE ${p} is presented by a redistributor it was not made resident on`);
    return -1;
  }
  if ((map & ~(VPE_MAP_V | 0xffff)) !== 0 || (map & 0xffff) >= s.nVcpus)
    refuse(`vPE ${p} mapping ${hex(map)}`);
  const db = s.vpe[b + VPE_DB];
  if (db !== DOORBELL_NONE && s.lpiSlot(db) < 0) refuse(`vPE ${p} doorbell ${db}`);
  const bits = s.vpe[b + VPE_VPT_SIZE];
  if (!(bits >= 1 && bits <= Math.log2(VGIC_MIN_LPI + s.nLpis))) refuse(`vPE ${p} VPT_size ${bits}`);
  for (const w of [VPE_VPT_HI, VPE_VCONF_HI]) if (s.vpe[b + w] >>> 20 !== 0) refuse(`vPE ${p} table address`);
  if ((s.vpe[b + VPE_VPT_LO] & 0xffff) !== 0 || (s.vpe[b + VPE_VCONF_LO] & 0xffff) !== 0)
    refuse(`vPE ${p} table address not 64K-aligned`);
  const valid = (s.vpe[b + VPE_STATE] & VPE_VALID) !== 0;
  if (on !== (valid ? 1 : 0)) refuse(`vPE ${p} is resident on ${on} redistributors, Valid ${valid}`);
  const rd = s.vpe[b + VPE_RESIDENT_ON];
  if (!(rd >= 0 && rd < s.nVcpus) || (valid && s.vcpu[rd * VCPU_STRIDE + V_VPE_ON] !== p + 1))
    refuse(`vPE ${p} resident on redistributor ${rd}, which does not present it`);
  const n = Math.max(0, Math.min(2 ** bits - VGIC_MIN_LPI, s.nLpis));
  if (s.vprop.subarray(p * s.nLpis + n, (p + 1) * s.nLpis).some((x) => x !== 0))
    refuse(`vPE ${p}: vLPI properties beyond its VPT_size`);
  return n;
}

function checkVpes(s: GicState): void {
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VPE_STRIDE;
    if ((s.vpe[b + VPE_STATE] & ~VPE_STATE_MASK) !== 0) refuse(`vPE ${v} state ${hex(s.vpe[b + VPE_STATE])}`);
    // 16 SGIs.
    if ((s.vpe[b + VPE_VSGI] & ~0xffff) !== 0)
      refuse(`vPE ${v} vSGI pending bits ${hex(s.vpe[b + VPE_VSGI])}`);
    const guest = checkGuestVpe(s, v);
    for (let wi = 0; wi < s.vptWords; wi++) {
      const word = s.vpt[v * s.vptWords + wi];
      if (word === 0) continue;
      if ((s.vptSummary[v * s.vptSummaryWords + (wi >>> 5)] & (1 << (wi & 31))) === 0)
        refuse(`vPE ${v}: VPT word ${wi} is not in its summary`);
      for (let m = word; m !== 0; m &= m - 1) {
        const i = (wi << 5) + 31 - Math.clz32(m & -m);
        const slot = s.lpiBase + i;
        if (guest >= 0) {
          if (i >= guest) refuse(`vPE ${v}: VPT bit of vINTID ${VGIC_MIN_LPI + i}, beyond its VPT_size`);
        } else if (i >= s.nLpis || (s.irqFlags[slot] & IRQ_FORWARDED) === 0 || s.irqTarget[slot] !== v)
          refuse(`vPE ${v}: VPT bit of LPI ${VGIC_MIN_LPI + i}, which is no vLPI of it`);
      }
    }
    for (let sw = 0; sw < s.vptSummaryWords; sw++) {
      if (
        s.vptSummary[v * s.vptSummaryWords + sw] !== 0 &&
        (s.vptTop[v * s.vptTopWords + (sw >>> 5)] & (1 << (sw & 31))) === 0
      )
        refuse(`vPE ${v}: VPT summary word ${sw} is not in its top level`);
      const beyond = s.vptWords - (sw << 5);
      if (beyond < 32 && s.vptSummary[v * s.vptSummaryWords + sw] >>> beyond !== 0)
        refuse(`vPE ${v}: summary bits beyond its VPT`);
    }
  }
}

/** A redistributor's GICv4.1 words: all 0 without direct injection. */
function checkVlpiRegs(s: GicState, v: number): void {
  const w = s.vcpu;
  const b = v * VCPU_STRIDE;
  if (!s.direct) {
    for (const i of [V_VPE_ON, V_VPROPBASER_LO, V_VPROPBASER_HI, V_VPENDBASER, V_VSGIR, V_INV_LO])
      if (w[b + i] !== 0) refuse(`vCPU ${v} GICv4.1 word ${i} without direct injection`);
    return;
  }
  const on = w[b + V_VPE_ON];
  if (!(on >= 0 && on <= s.nVcpus)) refuse(`vCPU ${v} presents vPE ${on - 1}`);
  if (on !== 0 && on !== v + 1 && s.vpe[(on - 1) * VPE_STRIDE + VPE_MAP] === 0)
    refuse(`vCPU ${v} presents the KVM layer's vPE of vCPU ${on - 1}`);
  const esz = (ITS_VPE_ENTRY_SIZE - 1) << VPROPBASER_HI_ESZ_SHIFT;
  if (
    (w[b + V_VPROPBASER_LO] & ~VPROPBASER_LO_RW) !== 0 ||
    (w[b + V_VPROPBASER_HI] & ~VPROPBASER_HI_RW) !== esz
  )
    refuse(`GICR_VPROPBASER of vCPU ${v}`);
  if ((w[b + V_VPENDBASER] & ~0x7ffff) !== 0) refuse(`GICR_VPENDBASER of vCPU ${v}`);
  if ((w[b + V_VSGIR] & ~0xffff) !== 0) refuse(`GICR_VSGIR of vCPU ${v}`);
}

function checkDist(s: GicState): void {
  const d = s.dist;
  if ((d[0] & ~(GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1)) !== 0) refuse(`GICD_CTLR ${hex(d[0])}`);
  const lpis = s.nIts > 0;
  if (
    (d[1] & ~GICR_PROPBASER_LO_RW) !== 0 ||
    (d[2] & ~GICR_PROPBASER_HI_RW) !== 0 ||
    (!lpis && (d[1] | d[2]) !== 0)
  )
    refuse(`GICR_PROPBASER ${hex(d[2])}:${hex(d[1])}`);
  if (d[D_LPI_LOCK] !== 0) refuse('the LPI store lock is held');
  for (let i = DIST_USED_WORDS; i < d.length; i++)
    if (d[i] !== 0) refuse(`distributor word ${i} is not zero`);
}

function checkClock(s: GicState): void {
  const epoch = s.clock[C_EPOCH_MS];
  if (!Number.isFinite(epoch)) refuse(`clock epoch ${epoch}`);
  if ((s.header[H_FLAGS] & FLAG_VIRTUAL_TIME) === 0) {
    // Real time counts from the epoch: one in the future would make CNTVCT negative, one too far
    // in the past would take it beyond 2^53 ticks, where a float64 no longer counts exactly.
    const now = nowMs();
    if (!(epoch <= now && now - epoch < REAL_TIME_SPAN_MS)) {
      refuse(`real-time clock epoch ${epoch} ms is not within 4.5 years before now (${now} ms)`);
    }
  }
  for (let v = 0; v < s.nVcpus; v++) {
    const want = s.timerCvalWords[2 * v + 1] * 0x1_0000_0000 + s.timerCvalWords[2 * v];
    if (s.timerCval[v] !== want) refuse(`CNTV_CVAL of vCPU ${v} disagrees with its words`);
  }
}

function checkVcpu(s: GicState, v: number): void {
  const b = v * VCPU_STRIDE;
  const w = s.vcpu;
  const lrMask = 2 ** s.nLrs - 1;
  const bit = (i: number, name: string) => {
    if (w[b + i] !== 0 && w[b + i] !== 1) refuse(`${name} of vCPU ${v} is ${w[b + i]} (0 or 1)`);
  };
  if (w[b + V_AP_LOCK] !== 0) refuse(`ap_list_lock of vCPU ${v} is held`);
  if (w[b + V_IN_GUEST] !== 0) refuse(`vCPU ${v} was in the guest`);
  if ((w[b + V_REQUESTS] & ~REQ_IRQ_PENDING) !== 0) refuse(`requests ${hex(w[b + V_REQUESTS])} of vCPU ${v}`);
  const used = w[b + V_USED_LRS];
  if (!(used >= 0 && used <= s.nLrs)) refuse(`vCPU ${v} uses ${used} of ${s.nLrs} list registers`);
  const vmcr = w[b + V_VMCR];
  // A GICv2's GICV_CTLR has AckCtl and FIQEn too (ICH_VMCR_EL2's VAckCtl, VFIQEn).
  if ((vmcr & ~(s.gicv2 ? VMCR_VALID | GICC_CTLR_ACKCTL | GICC_CTLR_FIQEN : VMCR_VALID)) !== 0)
    refuse(`ICH_VMCR of vCPU ${v} is ${hex(vmcr)}: reserved or unimplemented bits set`);
  const bpr0 = (vmcr >>> VMCR_BPR0_SHIFT) & VMCR_BPR_MASK;
  const bpr1 = (vmcr >>> VMCR_BPR1_SHIFT) & VMCR_BPR_MASK;
  if (bpr0 < VGIC_MIN_BPR0 || bpr1 < VGIC_MIN_BPR0 + 1)
    refuse(`binary points of vCPU ${v} below the minimum`);
  if ((w[b + V_HCR] & ~(HCR_UIE | HCR_LRENPIE | HCR_NPIE)) !== 0) refuse(`ICH_HCR of vCPU ${v}`);
  if (w[b + V_MPIDR] !== vcpuAffinity(v)) refuse(`MPIDR of vCPU ${v} is ${hex(w[b + V_MPIDR])}`);
  if ((w[b + V_TIMER_CTL] & ~(CNTV_CTL_ENABLE | CNTV_CTL_IMASK)) !== 0) refuse(`CNTV_CTL of vCPU ${v}`);
  bit(V_TIMER_LEVEL, 'timer line');
  bit(V_PSTATE_I, 'PSTATE.I');
  bit(V_PSTATE_F, 'PSTATE.F');
  bit(V_LR_EOI, 'LR EOI flag');
  bit(V_LR_SORTED, 'LR order flag');
  bit(V_POWER_OFF, 'power-off flag');
  if ((w[b + V_RD_FLAGS] & ~RD_LAST) !== 0) refuse(`redistributor flags of vCPU ${v}`);
  const lpis = s.nIts > 0;
  const ctlr = w[b + V_LPI_CTLR];
  if (ctlr !== 0 && !(lpis && ctlr === GICR_CTLR_ENABLE_LPIS))
    refuse(`GICR_CTLR of vCPU ${v} is ${hex(ctlr)}`);
  const plo = w[b + V_PENDBASER_LO];
  const phi = w[b + V_PENDBASER_HI];
  if (
    (plo & ~GICR_PENDBASER_LO_RW) !== 0 ||
    (phi & ~GICR_PENDBASER_HI_RW) !== 0 ||
    (!lpis && (plo | phi) !== 0)
  )
    refuse(`GICR_PENDBASER of vCPU ${v}`);
  for (const i of [V_LR_PEND, V_LR_ACT, V_LR_GRP0]) {
    if (w[b + i] < 0 || w[b + i] > lrMask)
      refuse(`LR mask word ${i} of vCPU ${v} names LRs beyond ${s.nLrs}`);
  }
  for (let i = VCPU_USED_WORDS; i < VCPU_STRIDE; i++) {
    if (w[b + i] !== 0) refuse(`vCPU ${v} word ${i} is not zero`);
  }
  checkVlpiRegs(s, v);
  if (s.gicv2) {
    checkLrsV2(s, v, used);
    return;
  }
  for (let n = 0; n < used; n++) {
    const li = s.lrIndex(v, n);
    const intid = s.lr[li];
    const hi = s.lr[li + 1];
    if (intid > 0xffff || s.slotOf(v, intid) < 0) refuse(`LR ${n} of vCPU ${v} holds INTID ${intid}`);
    if ((hi & LR_HI_RES0) !== 0 || (intid < VGIC_MIN_LPI && ((hi >>> 16) & 0xff & ~VGIC_PRI_MASK) !== 0))
      refuse(`LR ${n} of vCPU ${v} has reserved or unimplemented bits set (${hex(hi)})`);
    if (hi & LR_HI_HW ? (hi & LR_HI_PINTID_MASK) !== PPI_VTIMER : (hi & 0x1ff) !== 0)
      refuse(`LR ${n} of vCPU ${v} has a bad physical INTID field (${hex(hi)})`);
  }
}

/** A GICv2's used LRs: GICH_LR words with no reserved bit, an implemented INTID, the timer as the only HW one. */
function checkLrsV2(s: GicState, v: number, used: number): void {
  for (let n = 0; n < used; n++) {
    const li = s.lrIndex(v, n);
    const lr = s.lr[li];
    const intid = lr & GICH_LR_VIRTUALID;
    if (s.lr[li + 1] !== 0 || (lr & GICH_LR_RES0) !== 0 || s.slotOf(v, intid) < 0 || intid >= s.nrIrqs)
      refuse(`GICH_LR ${n} of vCPU ${v} is ${hex(lr)}`);
    const phys = (lr & GICH_LR_PHYSID_MASK) >>> GICH_LR_PHYSID_CPUID_SHIFT;
    if (lr & GICH_LR_HW ? phys !== PPI_VTIMER : (phys & ~0x207) !== 0)
      refuse(`GICH_LR ${n} of vCPU ${v} has a bad physical ID or CPUID field (${hex(lr)})`);
  }
}

/**
 * A GICv2 slot's irqRouter: an SGI's sources (8 bits, pending exactly while one is set) and
 * active source; an SPI's ITARGETSR byte naming existing CPUs, its target the lowest; a PPI's 0.
 */
function checkRouterV2(s: GicState, slot: number): void {
  const router = s.irqRouter[slot];
  const f = s.irqFlags[slot];
  if (slot < s.spiBase) {
    const intid = slot % VGIC_NR_PRIVATE_IRQS;
    if (intid >= VGIC_NR_SGIS) {
      if (router !== 0) refuse(`PPI ${intid} has SGI sources ${hex(router)}`);
      return;
    }
    if ((router & ~(SGI_SOURCE_MASK | (7 << SGI_ACTIVE_SOURCE_SHIFT))) !== 0)
      refuse(`SGI ${intid} of slot ${slot} has sources ${hex(router)}`);
    if (((f & IRQ_PENDING_LATCH) !== 0) !== ((router & SGI_SOURCE_MASK) !== 0))
      refuse(
        `SGI ${intid} of slot ${slot}: pending ${(f & IRQ_PENDING_LATCH) !== 0} with sources ${hex(router)}`,
      );
    return;
  }
  const cpuMask = (1 << s.nVcpus) - 1;
  if ((router & ~cpuMask) !== 0 || s.irqTarget[slot] !== targetsToVcpu(router))
    refuse(`SPI of slot ${slot} with ITARGETSR ${hex(router)} targets vCPU ${s.irqTarget[slot]}`);
}

function checkSlots(s: GicState): void {
  const vtimerBase = PPI_VTIMER;
  for (let slot = 0; slot < s.nSlots; slot++) {
    const f = s.irqFlags[slot];
    if (s.irqLock[slot] !== 0) refuse(`irq_lock of slot ${slot} is held`);
    if ((f & ~IRQ_FLAGS_VALID) !== 0) refuse(`flags ${hex(f)} of slot ${slot}`);
    // LPIs keep their property byte's priority (bits 7:2, as KVM); the others the implemented bits.
    const prioMask = slot < s.lpiBase ? VGIC_PRI_MASK : LPI_PRIO_MASK;
    if ((s.irqPriority[slot] & ~prioMask) !== 0)
      refuse(`priority ${hex(s.irqPriority[slot])} of slot ${slot} sets unimplemented bits`);
    const target = s.irqTarget[slot];
    const router = s.irqRouter[slot];
    if (slot < s.spiBase) {
      const v = Math.floor(slot / VGIC_NR_PRIVATE_IRQS);
      const intid = slot % VGIC_NR_PRIVATE_IRQS;
      if (s.irqIntid[slot] !== intid) refuse(`slot ${slot} says INTID ${s.irqIntid[slot]}, not ${intid}`);
      if (target !== v) refuse(`private slot ${slot} targets vCPU ${target}, not its own ${v}`);
      const edge = intid < VGIC_NR_SGIS;
      if ((f & IRQ_VALID) === 0 || ((f & IRQ_EDGE) !== 0) !== edge)
        refuse(`flags ${hex(f)} of ${edge ? 'SGI' : 'PPI'} ${intid} on vCPU ${v}`);
      if (s.gicv2) checkRouterV2(s, slot);
      const hw = intid === vtimerBase;
      if (((f & IRQ_HW) !== 0) !== hw || s.irqHwIntid[slot] !== (hw ? PPI_VTIMER : -1))
        refuse(`HW mapping of INTID ${intid} on vCPU ${v}`);
    } else if (slot < s.lpiBase) {
      const intid = VGIC_FIRST_SPI + slot - s.spiBase;
      if (s.irqIntid[slot] !== intid) refuse(`slot ${slot} says INTID ${s.irqIntid[slot]}, not ${intid}`);
      if ((f & (IRQ_VALID | IRQ_HW)) !== IRQ_VALID || s.irqHwIntid[slot] !== -1)
        refuse(`flags ${hex(f)} of SPI ${intid}`);
      if (s.gicv2) checkRouterV2(s, slot);
      else if (
        (router & ~0xffffff) !== 0 ||
        target !== vcpuByAffinity(s, 0, router >>> 16, (router >>> 8) & 0xff, router & 0xff)
      )
        refuse(`SPI ${intid} routed to ${hex(router)} targets vCPU ${target}`);
    } else {
      const i = slot - s.lpiBase;
      const intid = VGIC_MIN_LPI + i;
      if (s.irqIntid[slot] !== intid) refuse(`slot ${slot} says INTID ${s.irqIntid[slot]}, not ${intid}`);
      if (s.irqHwIntid[slot] !== -1) refuse(`LPI ${intid} is HW-mapped`);
      let refs = 0;
      for (let k = 0; k < s.nIts; k++) refs += s.itsLpiRef[k * s.nLpis + i];
      const itsRefs = refs;
      refs += doorbellRefs(s, intid);
      if (refs !== s.irqLpiRef[i])
        refuse(`LPI ${intid} has ${s.irqLpiRef[i]} references; its ITSes and vPE doorbells hold ${refs}`);
      if (refs === 0) {
        if (f !== LPI_FREE_FLAGS || target !== -1 || router !== -1) refuse(`unmapped LPI ${intid} has state`);
      } else {
        if ((f & ~(IRQ_ENABLED | IRQ_PENDING_LATCH | IRQ_FORWARDED)) !== (LPI_FREE_FLAGS | IRQ_VALID))
          refuse(`flags ${hex(f)} of LPI ${intid}`);
        // A vLPI lives on its target's vPE (a latch beside its VPT bit is allowed: the fold of an
        // LR that held it before it was forwarded puts one there).
        if (f & IRQ_FORWARDED && (!s.direct || target < 0))
          refuse(`forwarded LPI ${intid} (target ${target}${s.direct ? '' : ', no vPEs'})`);
        if (!(target >= -1 && target < s.nVcpus)) refuse(`LPI ${intid} targets vCPU ${target}`);
        // A vPE's doorbell LPI, mapped by no ITE, has no collection (router -1).
        // (or the collection of an ITE that mapped it too, since unmapped).
        if (
          itsRefs === 0
            ? router !== -1 && !(router >= 0 && router >>> 16 < s.nIts)
            : !(router >= 0 && router >>> 16 < s.nIts)
        )
          refuse(`LPI ${intid} has collection ${hex(router)}`);
      }
    }
  }
}

/**
 * lpiMapped: one bit per LPI exactly while its references are not 0. MAPC, MOVALL, INVALL and
 * GICR_INVALLR visit the set bits only, so a clear bit would hide a mapped LPI from a retarget,
 * and a set bit past the store would have nextMappedLpi hand out a slot beyond it.
 */
function checkLpiMapped(s: GicState): void {
  const m = s.lpiMapped;
  for (let w = 0; w < m.length; w++) {
    let want = 0;
    for (let b = 0; b < 32; b++) {
      const i = (w << 5) | b;
      if (i < s.nLpis && s.irqLpiRef[i] !== 0) want |= 1 << b;
    }
    if (m[w] !== want)
      refuse(`mapped-LPI bitmap word ${w} is ${hex(m[w])}; the LPIs' references say ${hex(want)}`);
  }
}

/**
 * A mapped device's count of valid ITEs bounds how much of its ITT an unmap, remap or save reads;
 * the commands keep it at most the device's 2^Size events (at most 2^16), and 0 for a device that
 * is not mapped. The exact count needs the ITT in guest RAM, which the guest may have rewritten
 * anyway: the readers stop at the end of the ITT whatever the count says, and an ITE the count
 * misses only keeps its LPI's reference (lpiUnmap ignores references the ITS does not hold). A
 * device table made invalid drops every device and every reference the ITS held.
 */
function checkDevices(s: GicState, k: number): void {
  const liveBase = k * ITS_DEVICE_WORDS;
  const evBase = k * ITS_DEVICES;
  const table = (s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_VALID) !== 0;
  for (let d = 0; d < ITS_DEVICES; d++) {
    const live = (s.itsDevLive[liveBase + (d >>> 5)] & (1 << (d & 31))) !== 0;
    const n = s.itsDevEvents[evBase + d];
    if (live && !table) refuse(`device ${d} of ITS ${k} is mapped without a valid device table`);
    if (!(n >= 0 && n <= ITS_MAX_EVENTS) || (!live && n !== 0))
      refuse(`device ${d} of ITS ${k} (${live ? 'mapped' : 'not mapped'}) counts ${n} ITEs`);
  }
  if (!table) {
    for (let i = 0; i < s.nLpis; i++)
      if (s.itsLpiRef[k * s.nLpis + i] !== 0)
        refuse(`ITS ${k} holds references to LPI ${VGIC_MIN_LPI + i} without a valid device table`);
  }
}

/**
 * Every ap_list well formed (in range, linked both ways, no cycle, right tail and count) and
 * consistent with irqApVcpu; Vgic.snapshot() prunes every list, so a listed interrupt is on the
 * list its oracle names and every interrupt the oracle sends somewhere is listed.
 */
function checkLists(s: GicState): void {
  let listed = 0;
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    let n = 0;
    let prev = -1;
    for (let slot = s.vcpu[b + V_AP_HEAD]; slot !== -1; slot = s.irqApNext[slot]) {
      if (!(slot >= 0 && slot < s.nSlots) || n >= s.nSlots) refuse(`the ap_list of vCPU ${v} is broken`);
      if (s.irqApVcpu[slot] !== v || s.irqApPrev[slot] !== prev)
        refuse(`the ap_list of vCPU ${v} is inconsistent at slot ${slot}`);
      prev = slot;
      n++;
    }
    if (s.vcpu[b + V_AP_TAIL] !== prev || s.vcpu[b + V_AP_COUNT] !== n)
      refuse(`the ap_list of vCPU ${v} has a wrong tail or count`);
    listed += n;
  }
  let onLists = 0;
  for (let slot = 0; slot < s.nSlots; slot++) {
    const on = s.irqApVcpu[slot];
    if (!(on >= -1 && on < s.nVcpus)) refuse(`slot ${slot} is on the ap_list of vCPU ${on}`);
    if (on >= 0) onLists++;
    else if (s.irqApNext[slot] !== -1 || s.irqApPrev[slot] !== -1)
      refuse(`slot ${slot} is linked but on no ap_list`);
    const oracle = targetOracle(s, slot);
    if (oracle !== on) {
      refuse(
        on < 0
          ? `INTID ${s.irqIntid[slot]} (slot ${slot}) is deliverable to vCPU ${oracle} but on no ap_list`
          : `INTID ${s.irqIntid[slot]} (slot ${slot}) is on vCPU ${on}'s ap_list; it belongs to ${oracle < 0 ? 'none' : `vCPU ${oracle}`}`,
      );
    }
  }
  if (onLists !== listed) refuse('a slot claims an ap_list it is not on');
}

function checkIts(s: GicState, k: number): void {
  const w = k * ITS_STRIDE;
  const r = s.its;
  if (r[w + I_CMD_LOCK] !== 0) refuse(`cmd_lock of ITS ${k} is held`);
  if (r[w + I_LOCK] !== 0) refuse(`its_lock of ITS ${k} is held`);
  if ((r[w + I_CBASER_LO] & ~GITS_CBASER_LO_RW) !== 0 || (r[w + I_CBASER_HI] & ~GITS_CBASER_HI_RW) !== 0)
    refuse(`GITS_CBASER of ITS ${k}`);
  const q = cmdQueueBytes(s, k);
  for (const [i, name] of [
    [I_CWRITER, 'GITS_CWRITER'],
    [I_CREADR, 'GITS_CREADR'],
  ] as const) {
    if ((r[w + i] & ~ITS_CMD_OFFSET_MASK) !== 0 || r[w + i] >= q)
      refuse(`${name} ${hex(r[w + i])} of ITS ${k} is outside its ${q}-byte command queue`);
  }
  for (let n = 0; n < 2; n++) {
    const lo = r[w + I_BASER0_LO + 2 * n];
    const hi = r[w + I_BASER0_HI + 2 * n];
    const loRw = (GITS_BASER_LO_RW & ~(3 << 8)) | GITS_BASER_LO_PAGE_SIZE_64K;
    let hiRw = GITS_BASER_HI_RW | BASER_RESET_HI[n];
    if (n === 1) hiRw &= ~GITS_BASER_HI_INDIRECT;
    const fixedHi = ~GITS_BASER_HI_RW | (n === 1 ? GITS_BASER_HI_INDIRECT : 0);
    if (
      (lo & ~loRw) !== 0 ||
      (lo & (3 << 8)) !== GITS_BASER_LO_PAGE_SIZE_64K ||
      (hi & ~hiRw) !== 0 ||
      (hi & fixedHi) !== BASER_RESET_HI[n]
    )
      refuse(`GITS_BASER${n} of ITS ${k} is ${hex(hi)}:${hex(lo)}`);
  }
  const ctlr = r[w + I_CTLR];
  if (ctlr !== 0 && ctlr !== GITS_CTLR_ENABLED) refuse(`GITS_CTLR of ITS ${k} is ${hex(ctlr)}`);
  if (
    ctlr !== 0 &&
    (r[w + I_BASER0_HI] & r[w + I_BASER0_HI + 2] & r[w + I_CBASER_HI] & GITS_BASER_HI_VALID) === 0
  )
    refuse(`ITS ${k} is enabled without valid tables and command queue`);
  const gen = r[w + I_CACHE_GEN];
  if (!(gen >= 1 && gen <= CACHE_GEN_MAX)) refuse(`translation-cache generation ${gen} of ITS ${k}`);
  for (let i = ITS_USED_WORDS; i < ITS_STRIDE; i++) {
    if (i >= I_ERR_BASE && i < I_ERR_BASE + E_ITS_CODES.length) continue;
    if (r[w + i] !== 0) refuse(`ITS ${k} word ${i} is not zero`);
  }
  const b2lo = r[w + I_BASER2_LO];
  const b2hi = r[w + I_BASER2_HI];
  if (!s.direct) {
    if ((b2lo | b2hi) !== 0) refuse(`GITS_BASER2 of ITS ${k} without direct injection`);
  } else if (
    (b2lo & ~((GITS_BASER_LO_RW & ~(3 << 8)) | GITS_BASER_LO_PAGE_SIZE_64K)) !== 0 ||
    (b2lo & (3 << 8)) !== GITS_BASER_LO_PAGE_SIZE_64K ||
    (b2hi & ~(GITS_BASER_HI_RW | BASER_RESET_HI[2])) !== 0 ||
    (b2hi & ~GITS_BASER_HI_RW) !== BASER_RESET_HI[2]
  )
    refuse(`GITS_BASER2 of ITS ${k} is ${hex(b2hi)}:${hex(b2lo)}`);
  const base = k * ITS_COLLECTIONS;
  for (let c = 0; c < ITS_COLLECTIONS; c++) {
    const t = s.itsColl[base + c];
    if (!(t >= -1 && t < s.nVcpus)) refuse(`collection ${c} of ITS ${k} targets vCPU ${t}`);
  }
}
