/**
 * Creation-time checks and reset state of a GICv3 (KVM's vgic-init.c and the address checks of
 * vgic-kvm-device.c): option validation with the address map, the reset values of every slot, vCPU
 * and ITS, and the words a restored state must clear (device/snapshot.ts checks the rest).
 *
 * Who may call: device/vgic.ts only.
 */

import { checkInt, describeValue, VgicError } from '../arch/errors.ts';
import {
  GICC_FRAME_SIZE,
  GICD_V2_FRAME_SIZE,
  GICV2_FRAME_ALIGN,
  VGIC_V2_MAX_CPUS,
  VIRT_V2_GICC_BASE,
  VIRT_V2_GICD_BASE,
} from '../arch/gicv2.ts';
import {
  GICD_FRAME_SIZE,
  GICR_STRIDE_V3,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
  VIRT_GITS_BASE,
} from '../arch/gicv3.ts';
import { DOORBELL_NONE, GICR_STRIDE_V4, ITS_VPE_ENTRY_SIZE, VPROPBASER_HI_ESZ_SHIFT } from '../arch/gicv4.ts';
import {
  VGIC_DEFAULT_LRS,
  VGIC_MIN_BPR0,
  VGIC_V3_MAX_LRS,
  VMCR_BPR0_SHIFT,
  VMCR_BPR1_SHIFT,
} from '../arch/ich.ts';
import {
  PPI_VTIMER,
  VGIC_DEFAULT_SPIS,
  VGIC_FIRST_SPI,
  VGIC_MIN_LPI,
  VGIC_NR_PRIVATE_IRQS,
  VGIC_NR_SGIS,
} from '../arch/intid.ts';
import { GITS_FRAME_SIZE, LPI_ID_BITS_MAX, LPI_ID_BITS_MIN } from '../arch/its.ts';
import { LPI_FREE_FLAGS } from '../core/lpi.ts';
import { vcpuAffinity } from '../core/sgi.ts';
import { globalCacheReset } from '../its/global-cache.ts';
import { MAX_GUEST_PA } from '../memory/guest-memory.ts';
import { FLAG_LPIS } from '../mmio/gicd.ts';
import { resetIts } from '../mmio/its.ts';
import {
  type GicState,
  GLOBAL_CACHE_PER_VCPU,
  H_FLAGS,
  IRQ_EDGE,
  IRQ_ENABLED,
  IRQ_GROUP1,
  IRQ_HW,
  IRQ_VALID,
  RD_LAST,
  V_AP_HEAD,
  V_AP_TAIL,
  V_MPIDR,
  V_PSTATE_F,
  V_PSTATE_I,
  V_RD_FLAGS,
  V_RUN_LOCK,
  V_SLEEPING,
  V_VMCR,
  V_VPE_ON,
  V_VPROPBASER_HI,
  V_WAKE,
  V_WAKE_AT,
  VCPU_STRIDE,
  VPE_DB,
  VPE_MAP,
  VPE_STATE,
  VPE_STRIDE,
  VPE_VALID,
} from '../state/layout.ts';
import type { RedistRegion, VgicV3Options } from './vgic.ts';

const MAX_VCPUS = 512;
const REGION_ALIGN = 0x10000;
const MAX_ITS = 16;

function checkBase(name: string, base: unknown, align = REGION_ALIGN): void {
  if (typeof base !== 'number') {
    throw new VgicError('INVALID_ADDRESS', `${name} base must be a number, got ${describeValue(base)}`);
  }
  if (!Number.isInteger(base) || base < 0 || base % align !== 0 || base >= MAX_GUEST_PA) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `${name} base must be ${align / 1024}K-aligned and below 2^48, got ${describeValue(base)}`,
    );
  }
}

/**
 * A GICv2's options (KVM_DEV_TYPE_ARM_VGIC_V2): at most 8 vCPUs, a 4K distributor and an 8K CPU
 * interface, each 4K-aligned (KVM_VGIC_V2_DIST_SIZE / KVM_VGIC_V2_CPU_SIZE), no redistributors,
 * no ITS and so no LPIs.
 */
function validateV2(o: VgicV3Options, nSpis: number, nLrs: number) {
  const nVcpus = checkInt(
    'INVALID_CONFIG',
    'vcpus (a GICv2 has at most 8 CPU interfaces)',
    o.vcpus ?? 1,
    1,
    VGIC_V2_MAX_CPUS,
  );
  if (o.redistRegions !== undefined)
    throw new VgicError(
      'INVALID_CONFIG',
      'a GICv2 has no redistributors: leave redistRegions unset (use cpuBase)',
    );
  if (o.its !== undefined && o.its !== 0 && !(Array.isArray(o.its) && o.its.length === 0))
    throw new VgicError('INVALID_CONFIG', 'a GICv2 has no ITS (and no LPIs): leave its unset or 0');
  const distBase = o.distBase ?? VIRT_V2_GICD_BASE;
  const cpuBase = o.cpuBase ?? VIRT_V2_GICC_BASE;
  checkBase('distributor', distBase, GICV2_FRAME_ALIGN);
  checkBase('CPU interface', cpuBase, GICV2_FRAME_ALIGN);
  if (distBase < cpuBase + GICC_FRAME_SIZE && cpuBase < distBase + GICD_V2_FRAME_SIZE) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `distributor at 0x${distBase.toString(16)} overlaps CPU interface at 0x${cpuBase.toString(16)}`,
    );
  }
  return {
    gicVersion: 2 as const,
    nVcpus,
    nSpis,
    nLrs,
    distBase,
    cpuBase,
    regions: [] as RedistRegion[],
    itsBases: [] as number[],
    nLpis: 0,
    itsCache: 0,
    globalCache: 0,
    direct: false,
  };
}

const isObject = (x: unknown): boolean => typeof x === 'object' && x !== null;

export function validateOptions(o: VgicV3Options) {
  if (!isObject(o))
    throw new VgicError('INVALID_CONFIG', `options must be an object, got ${describeValue(o)}`);
  if (
    o.redistRegions !== undefined &&
    (!Array.isArray(o.redistRegions) || !o.redistRegions.every(isObject))
  ) {
    throw new VgicError(
      'INVALID_CONFIG',
      `redistRegions must be an array of { base, count }, got ${describeValue(o.redistRegions)}`,
    );
  }
  if (Array.isArray(o.its) && !o.its.every(isObject)) {
    throw new VgicError(
      'INVALID_CONFIG',
      `its must be a count or an array of { base }, got ${describeValue(o.its)}`,
    );
  }
  if (o.shared !== undefined && typeof o.shared !== 'boolean') {
    throw new VgicError('INVALID_CONFIG', `shared must be true or false, got ${describeValue(o.shared)}`);
  }
  if (o.ram !== undefined) {
    if (!isObject(o.ram))
      throw new VgicError('INVALID_CONFIG', `ram must be { base?, size }, got ${describeValue(o.ram)}`);
    checkInt('INVALID_CONFIG', 'ram size', o.ram.size, 1, 2 ** 32);
    if (o.ram.base !== undefined) checkBase('RAM', o.ram.base);
  }
  const version = o.gicVersion ?? 3;
  if (version !== 2 && version !== 3)
    throw new VgicError('INVALID_CONFIG', `gicVersion must be 2 or 3, got ${describeValue(version)}`);
  const nSpis = checkInt('INVALID_CONFIG', 'spis', o.spis ?? VGIC_DEFAULT_SPIS, 32, 960);
  if (nSpis % 32 !== 0) throw new VgicError('INVALID_CONFIG', `spis must be a multiple of 32, got ${nSpis}`);
  const nLrs = checkInt('INVALID_CONFIG', 'lrs', o.lrs ?? VGIC_DEFAULT_LRS, 1, VGIC_V3_MAX_LRS);
  if (version === 2 && o.directInjection !== undefined)
    throw new VgicError(
      'INVALID_CONFIG',
      "directInjection: 'gicv4.1' needs a GICv3 with an ITS; a GICv2 (gicVersion: 2) has neither: leave it unset",
    );
  if (version === 2) return validateV2(o, nSpis, nLrs);
  if (o.cpuBase !== undefined)
    throw new VgicError(
      'INVALID_CONFIG',
      'cpuBase is a GICv2 option (gicVersion: 2); a GICv3 has ICC_* registers',
    );
  const nVcpus = checkInt('INVALID_CONFIG', 'vcpus', o.vcpus ?? 1, 1, MAX_VCPUS);
  const distBase = o.distBase ?? VIRT_GICD_BASE;
  let itsBases: number[];
  if (o.its === undefined || typeof o.its === 'number') {
    const n = checkInt('INVALID_CONFIG', 'its', o.its ?? 0, 0, MAX_ITS);
    itsBases = Array.from({ length: n }, (_, k) => VIRT_GITS_BASE + k * GITS_FRAME_SIZE);
  } else {
    if (!Array.isArray(o.its) || o.its.length > MAX_ITS) {
      throw new VgicError('INVALID_CONFIG', `its must be a count or an array of at most ${MAX_ITS} { base }`);
    }
    itsBases = o.its.map((x) => x.base);
  }
  const lpiIdBits = checkInt(
    'INVALID_CONFIG',
    'lpiIdBits',
    o.lpiIdBits ?? LPI_ID_BITS_MAX,
    LPI_ID_BITS_MIN,
    LPI_ID_BITS_MAX,
  );
  const itsCache = checkInt('INVALID_CONFIG', 'itsCacheSize', o.itsCacheSize ?? 65536, 1, 65536);
  if ((itsCache & (itsCache - 1)) !== 0) {
    throw new VgicError('INVALID_CONFIG', `itsCacheSize must be a power of two, got ${itsCache}`);
  }
  const translationCache = o.translationCache ?? 'per-its';
  if (translationCache !== 'per-its' && translationCache !== 'global-lru') {
    throw new VgicError(
      'INVALID_CONFIG',
      `translationCache must be 'per-its' or 'global-lru', got ${String(translationCache)}`,
    );
  }
  const direct = o.directInjection;
  if (direct !== undefined && direct !== 'gicv4.1') {
    throw new VgicError(
      'INVALID_CONFIG',
      `directInjection must be 'gicv4.1' or unset, got ${String(direct)}`,
    );
  }
  if (direct !== undefined && itsBases.length === 0) {
    throw new VgicError(
      'INVALID_CONFIG',
      "directInjection: 'gicv4.1' needs an ITS (its: 1 or more): vLPIs are forwarded MSIs",
    );
  }
  const lastIts = itsBases.length > 1 && typeof o.its !== 'object' ? itsBases[itsBases.length - 1] : -1;
  const defaultRd = lastIts >= VIRT_GICR_BASE ? lastIts + GITS_FRAME_SIZE : VIRT_GICR_BASE;
  const regions = o.redistRegions ?? [{ base: defaultRd, count: nVcpus }];
  const frames: { name: string; base: number; size: number }[] = [];
  itsBases.forEach((b, k) => {
    checkBase(`ITS ${k}`, b);
    frames.push({ name: `ITS ${k}`, base: b, size: GITS_FRAME_SIZE });
  });
  checkBase('distributor', distBase);
  frames.push({ name: 'distributor', base: distBase, size: GICD_FRAME_SIZE });
  let total = 0;
  regions.forEach((r, i) => {
    checkBase(`redistributor region ${i}`, r.base);
    checkInt('INVALID_CONFIG', `redistributor region ${i} count`, r.count, 1, MAX_VCPUS);
    const stride = direct !== undefined ? GICR_STRIDE_V4 : GICR_STRIDE_V3;
    frames.push({ name: `redistributor region ${i}`, base: r.base, size: r.count * stride });
    total += r.count;
  });
  if (total < nVcpus) {
    throw new VgicError(
      'INVALID_CONFIG',
      `redistributor regions hold ${total} redistributors; ${nVcpus} vCPUs need one each`,
    );
  }
  for (let i = 0; i < frames.length; i++) {
    for (let j = i + 1; j < frames.length; j++) {
      const a = frames[i];
      const b = frames[j];
      if (a.base < b.base + b.size && b.base < a.base + a.size) {
        throw new VgicError(
          'INVALID_ADDRESS',
          `${a.name} at 0x${a.base.toString(16)} overlaps ${b.name} at 0x${b.base.toString(16)}`,
        );
      }
    }
  }
  const nLpis = itsBases.length > 0 ? 2 ** lpiIdBits - VGIC_MIN_LPI : 0;
  return {
    gicVersion: 3 as const,
    cpuBase: -1,
    nVcpus,
    nSpis,
    nLrs,
    distBase,
    regions,
    itsBases,
    nLpis,
    itsCache: itsBases.length > 0 ? itsCache : 0,
    // The baseline's one cache for every ITS (its/global-cache.ts); nothing to cache without an ITS.
    globalCache:
      itsBases.length > 0 && translationCache === 'global-lru' ? GLOBAL_CACHE_PER_VCPU * nVcpus : 0,
    direct: direct !== undefined,
  };
}

/** Puts a freshly allocated state in its reset configuration. */
export function resetState(s: GicState, regions: readonly RedistRegion[]): void {
  for (let slot = s.lpiBase; slot < s.nSlots; slot++) {
    s.irqFlags[slot] = LPI_FREE_FLAGS;
    s.irqIntid[slot] = VGIC_MIN_LPI + slot - s.lpiBase;
    s.irqTarget[slot] = -1;
    s.irqRouter[slot] = -1;
    s.irqApVcpu[slot] = -1;
    s.irqApNext[slot] = -1;
    s.irqApPrev[slot] = -1;
    s.irqHwIntid[slot] = -1;
  }
  for (let k = 0; k < s.nIts; k++) resetIts(s, k);
  globalCacheReset(s);
  if (s.nIts > 0) s.header[H_FLAGS] |= FLAG_LPIS;
  for (let slot = 0; slot < s.lpiBase; slot++) {
    const priv = slot < s.spiBase;
    const intid = priv ? slot % VGIC_NR_PRIVATE_IRQS : VGIC_FIRST_SPI + slot - s.spiBase;
    // Group 1 at reset, as KVM's GICv3 (guests and test suites program Group 1); a GICv2's
    // interrupts are Group 0 and its SGIs enabled, as KVM's vgic_init and QEMU's GIC reset them.
    let f = s.gicv2 ? IRQ_VALID : IRQ_VALID | IRQ_GROUP1;
    if (priv && intid < VGIC_NR_SGIS) f |= s.gicv2 ? IRQ_EDGE | IRQ_ENABLED : IRQ_EDGE;
    s.irqFlags[slot] = f;
    s.irqIntid[slot] = intid;
    s.irqTarget[slot] = priv ? Math.floor(slot / VGIC_NR_PRIVATE_IRQS) : 0;
    if (s.gicv2 && !priv) {
      // ITARGETSR: empty, so the SPI goes nowhere until the guest names a CPU; with one CPU every
      // SPI targets it (QEMU's uniprocessor rule).
      s.irqRouter[slot] = s.nVcpus === 1 ? 1 : 0;
      s.irqTarget[slot] = s.nVcpus === 1 ? 0 : -1;
    }
    s.irqApVcpu[slot] = -1;
    s.irqApNext[slot] = -1;
    s.irqApPrev[slot] = -1;
    s.irqHwIntid[slot] = -1;
  }
  let v = 0;
  for (const r of regions) {
    for (let i = 0; i < r.count && v < s.nVcpus; i++, v++) {
      const b = v * VCPU_STRIDE;
      if (i === r.count - 1 || v === s.nVcpus - 1) s.vcpu[b + V_RD_FLAGS] = RD_LAST;
    }
  }
  for (let c = 0; c < s.nVcpus; c++) {
    const b = c * VCPU_STRIDE;
    s.vcpu[b + V_AP_HEAD] = -1;
    s.vcpu[b + V_AP_TAIL] = -1;
    s.vcpu[b + V_MPIDR] = vcpuAffinity(c);
    s.vcpu[b + V_WAKE_AT] = b + V_WAKE;
    s.vcpu[b + V_VMCR] = (VGIC_MIN_BPR0 << VMCR_BPR0_SHIFT) | ((VGIC_MIN_BPR0 + 1) << VMCR_BPR1_SHIFT);
    // In-process guests start with IRQs masked, as a PE leaves reset with PSTATE.I set.
    s.vcpu[b + V_PSTATE_I] = 1;
    s.vcpu[b + V_PSTATE_F] = 1;
    if (s.direct) {
      // GICv4.1: the CPU interface presents the KVM layer's vPE of this vCPU (core/vpe-guest.ts).
      s.vcpu[b + V_VPE_ON] = c + 1;
      s.vpe[c * VPE_STRIDE + VPE_DB] = DOORBELL_NONE;
      s.vcpu[b + V_VPROPBASER_HI] = (ITS_VPE_ENTRY_SIZE - 1) << VPROPBASER_HI_ESZ_SHIFT;
    }
    // The virtual timer is a HW-mapped level interrupt (kvm_vgic_map_phys_irq).
    const t = s.slotOf(c, PPI_VTIMER);
    s.irqFlags[t] |= IRQ_HW;
    s.irqHwIntid[t] = PPI_VTIMER;
  }
}

/**
 * Clears the words that belong to the threads running a GIC rather than to the GIC: run_locks
 * (a snapshot is taken with them held), WFI sleep flags, the futex word each kick bumps, and vPE
 * residency (GICv4.1: a resident vPE belongs to a running vCPU).
 */
export function clearRunWords(s: GicState): void {
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    s.vcpu[b + V_RUN_LOCK] = 0;
    s.vcpu[b + V_SLEEPING] = 0;
    s.vcpu[b + V_WAKE_AT] = b + V_WAKE;
    // No vCPU of a snapshot runs: its vPE is not resident (stopped: no doorbell) until it enters.
    // A vPE the guest mapped keeps the residency its GICR_VPENDBASER gave it (guest state).
    const vb = v * VPE_STRIDE;
    if (s.direct && s.vpe[vb + VPE_MAP] === 0 && s.vpe[vb + VPE_STATE] & VPE_VALID) s.vpe[vb + VPE_STATE] = 0;
  }
}
