/**
 * The trace events of a vCPU's guest accesses (trace/trace.ts): an MMIO exit to a GIC frame
 * (QEMU's gicv3_dist_*, gicv3_redist_*, gicv3_its_* read/write, "bad" when the access names no
 * register as the dispatcher's width/alignment rules see it) and an ICC_* system-register access
 * (QEMU's gicv3_icc_*). Called only while tracing is on, so nothing here is on a hot path.
 *
 * Who may call: device/vcpu.ts, after the access (the value read is known).
 */

import { GITS_TRANSLATER } from '../arch/its.ts';
import {
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
  ICC_ASGI1R_EL1,
  ICC_BPR0_EL1,
  ICC_BPR1_EL1,
  ICC_CTLR_EL1,
  ICC_DIR_EL1,
  ICC_EOIR0_EL1,
  ICC_EOIR1_EL1,
  ICC_HPPIR0_EL1,
  ICC_HPPIR1_EL1,
  ICC_IAR0_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN0_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  ICC_SGI0R_EL1,
  ICC_SGI1R_EL1,
  SGIR_HI_AFF2_MASK,
  SGIR_HI_AFF3_SHIFT,
  SGIR_HI_IRM,
  SGIR_LO_AFF1_SHIFT,
  SGIR_LO_INTID_SHIFT,
  SGIR_LO_TARGETLIST_MASK,
} from '../arch/sysreg.ts';
import { distributorFrame } from '../mmio/gicd.ts';
import { redistributorFrame, redistributorFrameV4 } from '../mmio/gicr.ts';
import { itsFrame } from '../mmio/its.ts';
import type { Frame } from '../mmio/region.ts';
import {
  EV_GICV3_ICC_EOIR_WRITE,
  EV_GICV3_ICC_GENERATE_SGI,
  EV_GICV3_ICC_IAR0_READ,
  EV_GICV3_ICC_IAR1_READ,
  traceEmit,
  traceEventId,
} from '../trace/trace.ts';

const ev = (name: string): number => traceEventId(name);
const DIST = [
  ev('gicv3_dist_read'),
  ev('gicv3_dist_badread'),
  ev('gicv3_dist_write'),
  ev('gicv3_dist_badwrite'),
];
const REDIST = [
  ev('gicv3_redist_read'),
  ev('gicv3_redist_badread'),
  ev('gicv3_redist_write'),
  ev('gicv3_redist_badwrite'),
];
const ITS = [ev('gicv3_its_read'), ev('gicv3_its_badread'), ev('gicv3_its_write'), ev('gicv3_its_badwrite')];
const ITS_TRANSLATION_WRITE = ev('gicv3_its_translation_write');

/** The dispatcher's rule (mmio/region.ts check): an access that names no register, or not whole. */
function badAccess(f: Frame, offset: number, size: number): boolean {
  if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || offset < 0 || offset >= f.size) return true;
  const d = f.lookup[offset >>> 2];
  if (d === 0) return true;
  const r = f.regs[d - 1];
  return (r.widths & size) === 0 || (offset & (size - 1)) !== 0 || offset + size > r.offset + r.len;
}

/**
 * An MMIO access of vCPU `cpu` to `frame` (`fv`: the redistributor's vCPU, or the ITS index) at
 * `offset`; `data` is the value read or written (the high word for 8 bytes in `hi`).
 */
export function traceMmio(
  frame: Frame,
  fv: number,
  offset: number,
  size: number,
  lo: number,
  hi: number,
  write: boolean,
): void {
  const bad = badAccess(frame, offset, size);
  const data = size === 8 ? hi * 2 ** 32 + (lo >>> 0) : lo >>> 0;
  const k = (write ? 2 : 0) + (bad ? 1 : 0);
  if (frame === distributorFrame) {
    if (k === 1) traceEmit(DIST[1], offset, size);
    else traceEmit(DIST[k], offset, data, size);
  } else if (frame === redistributorFrame || frame === redistributorFrameV4) {
    if (k === 1) traceEmit(REDIST[1], fv, offset, size);
    else traceEmit(REDIST[k], fv, offset, data, size);
  } else if (frame === itsFrame) {
    if (write && offset === GITS_TRANSLATER) traceEmit(ITS_TRANSLATION_WRITE, offset, data, size, 0, fv);
    else if (k === 1) traceEmit(ITS[1], offset, size, fv);
    else traceEmit(ITS[k], offset, data, size, fv);
  }
}

const PMR = [ev('gicv3_icc_pmr_read'), ev('gicv3_icc_pmr_write')];
const BPR = [ev('gicv3_icc_bpr_read'), ev('gicv3_icc_bpr_write')];
const AP = [ev('gicv3_icc_ap_read'), ev('gicv3_icc_ap_write')];
const IGRPEN = [ev('gicv3_icc_igrpen_read'), ev('gicv3_icc_igrpen_write')];
const CTLR = [ev('gicv3_icc_ctlr_read'), ev('gicv3_icc_ctlr_write')];
const HPPIR0 = ev('gicv3_icc_hppir0_read');
const HPPIR1 = ev('gicv3_icc_hppir1_read');
const RPR = ev('gicv3_icc_rpr_read');
const DIR = ev('gicv3_icc_dir_write');
const APRS = [
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
];

/** An ICC_* access of vCPU `cpu` (MRS: `lo` the value read; MSR: the value written as lo, hi). */
export function traceSysreg(cpu: number, enc: number, lo: number, hi: number, write: boolean): void {
  const w = write ? 1 : 0;
  const val = lo >>> 0;
  switch (enc) {
    case ICC_IAR1_EL1:
    case ICC_IAR0_EL1:
      if (!write) traceEmit(enc === ICC_IAR1_EL1 ? EV_GICV3_ICC_IAR1_READ : EV_GICV3_ICC_IAR0_READ, cpu, val);
      return;
    case ICC_EOIR1_EL1:
    case ICC_EOIR0_EL1:
      if (write) traceEmit(EV_GICV3_ICC_EOIR_WRITE, enc === ICC_EOIR1_EL1 ? 1 : 0, cpu, val);
      return;
    case ICC_DIR_EL1:
      if (write) traceEmit(DIR, cpu, val);
      return;
    case ICC_SGI1R_EL1:
    case ICC_SGI0R_EL1:
    case ICC_ASGI1R_EL1:
      if (write) {
        const aff =
          (((hi >>> SGIR_HI_AFF3_SHIFT) & 0xff) * 2 ** 24 +
            ((hi & SGIR_HI_AFF2_MASK) << 16) +
            (((lo >>> SGIR_LO_AFF1_SHIFT) & 0xff) << 8)) /
          256;
        traceEmit(
          EV_GICV3_ICC_GENERATE_SGI,
          cpu,
          (lo >>> SGIR_LO_INTID_SHIFT) & 0xf,
          hi & SGIR_HI_IRM ? 1 : 0,
          aff,
          lo & SGIR_LO_TARGETLIST_MASK,
        );
      }
      return;
    case ICC_HPPIR0_EL1:
    case ICC_HPPIR1_EL1:
      if (!write) traceEmit(enc === ICC_HPPIR1_EL1 ? HPPIR1 : HPPIR0, cpu, val);
      return;
    case ICC_RPR_EL1:
      if (!write) traceEmit(RPR, cpu, val);
      return;
    case ICC_PMR_EL1:
      traceEmit(PMR[w], cpu, val);
      return;
    case ICC_BPR0_EL1:
    case ICC_BPR1_EL1:
      traceEmit(BPR[w], enc === ICC_BPR1_EL1 ? 1 : 0, cpu, val);
      return;
    case ICC_IGRPEN0_EL1:
    case ICC_IGRPEN1_EL1:
      traceEmit(IGRPEN[w], enc === ICC_IGRPEN1_EL1 ? 1 : 0, cpu, val);
      return;
    case ICC_CTLR_EL1:
      traceEmit(CTLR[w], cpu, val);
      return;
    default: {
      const i = APRS.indexOf(enc);
      if (i >= 0) traceEmit(AP[w], i >> 2, i & 3, cpu, val);
    }
  }
}
