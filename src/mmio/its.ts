/**
 * The ITS register frame (GIC IHI 0069 §12.19): control frame at 0, translation frame at 64K.
 * KVM: vgic-its.c its_registers. The frame's "vCPU" argument is the ITS index here.
 *
 * Writes the spec ignores while the ITS is enabled (CBASER, BASER<n>) are ignored; enabling is
 * refused while a BASER or CBASER is invalid (UNPREDICTABLE; KVM refuses too). The command queue
 * runs in the CWRITER write (or in the GITS_CTLR write that enables the ITS), one work budget per
 * guest access; what is left goes on at the guest's next GITS_CREADR or GITS_CTLR read
 * (its/commands.ts). Userspace reads only read.
 *
 * Who may call: device/ through the dispatcher. Locks: CTLR/CBASER/CWRITER/CREADR take the ITS's
 * cmd_lock; BASER writes take its_lock (a table going invalid drops its mappings).
 */

import { VgicError } from '../arch/errors.ts';
import { GIC_PIDR2_ARCH_GICV4, W16, W32, W64 } from '../arch/gicv3.ts';
import {
  GITS_BASER_TYPE_VPE,
  GITS_TYPER_HI_VMAPP,
  GITS_TYPER_HI_VMOVP,
  GITS_TYPER_VIRTUAL,
  ITS_VPE_ENTRY_SIZE,
} from '../arch/gicv4.ts';
import {
  GITS_BASER,
  GITS_BASER_HI_ESZ_SHIFT,
  GITS_BASER_HI_INDIRECT,
  GITS_BASER_HI_RW,
  GITS_BASER_HI_TYPE_SHIFT,
  GITS_BASER_HI_VALID,
  GITS_BASER_LO_PAGE_SIZE_64K,
  GITS_BASER_LO_RW,
  GITS_BASER_TYPE_COLLECTION,
  GITS_BASER_TYPE_DEVICE,
  GITS_CBASER,
  GITS_CBASER_HI_RW,
  GITS_CBASER_LO_RW,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CTLR_QUIESCENT,
  GITS_CWRITER,
  GITS_FRAME_SIZE,
  GITS_IDREGS,
  GITS_IIDR,
  GITS_IIDR_VALUE,
  GITS_STATUSR,
  GITS_TRANSLATER,
  GITS_TYPER,
  GITS_TYPER_LO,
  GITS_UMSIR,
  gitsIdReg,
  ITS_CMD_OFFSET_MASK,
  ITS_DTE_SIZE,
} from '../arch/its.ts';
import { lockWord, tryLockWord, unlockWord } from '../core/locks.ts';
import { lpiDropIts } from '../core/lpi.ts';
import { cacheInvalidate, cacheInvalidateLocked } from '../its/cache.ts';
import { cmdQueueBytes, processCommandsLocked } from '../its/commands.ts';
import { clearDevices } from '../its/tables.ts';
import { itsInjectMsi } from '../its/translate.ts';
import {
  type GicState,
  I_BASER0_HI,
  I_BASER0_LO,
  I_BASER2_HI,
  I_BASER2_LO,
  I_CACHE_GEN,
  I_CBASER_HI,
  I_CBASER_LO,
  I_CMD_LOCK,
  I_CREADR,
  I_CTLR,
  I_CWRITER,
  I_LOCK,
  ITS_COLLECTIONS,
  ITS_STRIDE,
} from '../state/layout.ts';
import { readRaz, writeWi } from './irq-regs.ts';
import { buildFrame, type MmioContext, type ReadFn, type RegisterDesc, reg, type WriteFn } from './region.ts';

/**
 * Reset values of BASER0/1/2 (high words; low words are 64K pages): QEMU's 0x0107…0200 /
 * 0x0407…0200, and with direct injection BASER2, the vPE table (Type 2, 8-byte entries, QEMU's
 * gic-version=4 0x0207…0200).
 */
export const BASER_RESET_HI = [
  (GITS_BASER_TYPE_DEVICE << GITS_BASER_HI_TYPE_SHIFT) | ((ITS_DTE_SIZE - 1) << GITS_BASER_HI_ESZ_SHIFT),
  (GITS_BASER_TYPE_COLLECTION << GITS_BASER_HI_TYPE_SHIFT) | ((ITS_DTE_SIZE - 1) << GITS_BASER_HI_ESZ_SHIFT),
  (GITS_BASER_TYPE_VPE << GITS_BASER_HI_TYPE_SHIFT) | ((ITS_VPE_ENTRY_SIZE - 1) << GITS_BASER_HI_ESZ_SHIFT),
];

/** BASER<n> registers the GIC implements: Device and Collection, and the vPE table with GICv4.1. */
const nBasers = (s: GicState): number => (s.direct ? 3 : 2);

const enabled = (s: GicState, k: number): boolean =>
  (s.its[k * ITS_STRIDE + I_CTLR] & GITS_CTLR_ENABLED) !== 0;

function withCmdLock(s: GicState, k: number, fn: () => void): void {
  lockWord(s, s.its, k * ITS_STRIDE + I_CMD_LOCK);
  try {
    fn();
  } finally {
    unlockWord(s, s.its, k * ITS_STRIDE + I_CMD_LOCK);
  }
}

/**
 * A guest polling CREADR (or Quiescent) moves a queue left behind by the work budget. If another
 * thread holds the cmd_lock it is processing that queue: the read does not wait for it.
 */
function resumeCommands(c: MmioContext, k: number): void {
  const s = c.s;
  const w = k * ITS_STRIDE;
  if (s.its[w + I_CREADR] === s.its[w + I_CWRITER]) return;
  if (!tryLockWord(s, s.its, w + I_CMD_LOCK)) return;
  try {
    processCommandsLocked(s, c.mem, k);
  } finally {
    unlockWord(s, s.its, w + I_CMD_LOCK);
  }
}

const ureadCtlr: ReadFn = (c, k) => {
  const w = k * ITS_STRIDE;
  const quiescent = c.s.its[w + I_CREADR] === c.s.its[w + I_CWRITER] ? GITS_CTLR_QUIESCENT : 0;
  return (c.s.its[w + I_CTLR] & GITS_CTLR_ENABLED) | quiescent;
};

const readCtlr: ReadFn = (c, k, at, len) => {
  resumeCommands(c, k);
  return ureadCtlr(c, k, at, len);
};

const ureadCreadr: ReadFn = (c, k, at) => (at === 0 ? c.s.its[k * ITS_STRIDE + I_CREADR] : 0);

const readCreadr: ReadFn = (c, k, at, len) => {
  if (at === 0) resumeCommands(c, k);
  return ureadCreadr(c, k, at, len);
};

const writeCtlr: WriteFn = (c, k, _at, _len, value) => {
  const s = c.s;
  const w = k * ITS_STRIDE;
  withCmdLock(s, k, () => {
    const on = (value & GITS_CTLR_ENABLED) !== 0;
    if (on && !enabled(s, k)) {
      const ready =
        s.its[w + I_BASER0_HI] & s.its[w + I_BASER0_HI + 2] & s.its[w + I_CBASER_HI] & GITS_BASER_HI_VALID;
      if (ready === 0) return;
    }
    s.its[w + I_CTLR] = on ? GITS_CTLR_ENABLED : 0;
    if (!on) cacheInvalidate(s, k);
    processCommandsLocked(s, c.mem, k);
  });
};

/**
 * GITS_TYPER: KVM's physical ITS; with direct injection also Virtual, VMOVP (one VMOVP acts on
 * every ITS, as QEMU's) and VMAPP (the GICv4.1 command formats, Linux's is_v4_1()).
 */
const readTyper: ReadFn = (c, _k, at) => {
  if (at === 0) return c.s.direct ? GITS_TYPER_LO | GITS_TYPER_VIRTUAL : GITS_TYPER_LO;
  return c.s.direct ? GITS_TYPER_HI_VMOVP | GITS_TYPER_HI_VMAPP : 0;
};

/** A 64-bit register held as two words: `at` 0 is the low word, 4 the high word. */
const readPair =
  (lo: number): ReadFn =>
  (c, k, at) =>
    c.s.its[k * ITS_STRIDE + lo + (at >>> 2)];

const writeCbaser: WriteFn = (c, k, at, _len, value) => {
  const s = c.s;
  if (enabled(s, k)) return;
  const w = k * ITS_STRIDE;
  withCmdLock(s, k, () => {
    if (at === 0) s.its[w + I_CBASER_LO] = value & GITS_CBASER_LO_RW;
    else s.its[w + I_CBASER_HI] = value & GITS_CBASER_HI_RW;
    s.its[w + I_CREADR] = 0;
    s.its[w + I_CWRITER] = 0;
  });
};

const writeCwriter: WriteFn = (c, k, at, _len, value) => {
  if (at !== 0) return;
  const s = c.s;
  withCmdLock(s, k, () => {
    const offset = value & ITS_CMD_OFFSET_MASK;
    if (offset >= cmdQueueBytes(s, k)) return;
    s.its[k * ITS_STRIDE + I_CWRITER] = offset;
    processCommandsLocked(s, c.mem, k);
  });
};

/** Userspace restore of CWRITER: no command runs (the ITS is restored disabled). */
const uwriteCwriter: WriteFn = (c, k, at, _len, value) => {
  if (at !== 0) return;
  const offset = value & ITS_CMD_OFFSET_MASK;
  if (offset >= cmdQueueBytes(c.s, k)) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `GITS_CWRITER 0x${offset.toString(16)} is beyond the command queue`,
    );
  }
  withCmdLock(c.s, k, () => {
    c.s.its[k * ITS_STRIDE + I_CWRITER] = offset;
  });
};

/** Userspace restore of CREADR, only while the ITS is disabled (as KVM). */
const uwriteCreadr: WriteFn = (c, k, at, _len, value) => {
  if (at !== 0) return;
  if (enabled(c.s, k))
    throw new VgicError('INVALID_ARGUMENT', 'GITS_CREADR can be restored only while the ITS is disabled');
  const offset = value & ITS_CMD_OFFSET_MASK;
  if (offset >= cmdQueueBytes(c.s, k)) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `GITS_CREADR 0x${offset.toString(16)} is beyond the command queue`,
    );
  }
  withCmdLock(c.s, k, () => {
    c.s.its[k * ITS_STRIDE + I_CREADR] = offset;
  });
};

const readBaser: ReadFn = (c, k, at) => {
  const n = at >>> 3;
  return n < nBasers(c.s) ? c.s.its[k * ITS_STRIDE + I_BASER0_LO + 2 * n + ((at >>> 2) & 1)] : 0;
};

/**
 * GITS_BASER<n>: only 64K pages, 8-byte entries, Type read-only; the Collection table is never
 * indirect. Clearing Valid drops the table's mappings (vgic_its_free_device_list / _collection_list).
 * BASER2 (vPE table, direct injection) bounds the vPEIDs V-commands accept; the vPEs' state lives
 * in the redistributors' slots, so it going invalid unmaps none.
 */
const writeBaser: WriteFn = (c, k, at, _len, value) => {
  const s = c.s;
  const n = at >>> 3;
  if (n >= nBasers(s) || enabled(s, k)) return;
  const i = k * ITS_STRIDE + I_BASER0_LO + 2 * n;
  lockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
  if ((at & 4) === 0) {
    s.its[i] = (value & GITS_BASER_LO_RW & ~(3 << 8)) | GITS_BASER_LO_PAGE_SIZE_64K;
  } else {
    let hi = value & GITS_BASER_HI_RW;
    if (n === 1) hi &= ~GITS_BASER_HI_INDIRECT;
    const wasValid = (s.its[i + 1] & GITS_BASER_HI_VALID) !== 0;
    s.its[i + 1] = hi | BASER_RESET_HI[n];
    if (wasValid && (hi & GITS_BASER_HI_VALID) === 0 && n < 2) dropTableLocked(s, k, n);
  }
  unlockWord(s, s.its, k * ITS_STRIDE + I_LOCK);
};

/**
 * A table went invalid: its mappings are gone (every LPI reference this ITS held and its device
 * list, or its collections), as KVM frees its lists. Guest memory is not touched: a later
 * restoreTables() may still read what saveTables() wrote there.
 */
function dropTableLocked(s: GicState, k: number, n: number): void {
  if (n === 1) {
    s.itsColl.fill(-1, k * ITS_COLLECTIONS, (k + 1) * ITS_COLLECTIONS);
  } else {
    lpiDropIts(s, k);
    clearDevices(s, k);
  }
  cacheInvalidateLocked(s, k);
}

/** GITS_TRANSLATER: a write by a CPU is an MSI from DeviceID 0 (as QEMU). */
const writeTranslater: WriteFn = (c, k, _at, len, value) => {
  itsInjectMsi(c.s, c.mem, k, 0, len === 2 ? value & 0xffff : value >>> 0);
};

const uwriteIidr: WriteFn = (_c, _k, _at, _len, value) => {
  const rev = (value >>> 12) & 0xf;
  if (rev !== 0)
    throw new VgicError('INVALID_ARGUMENT', `GITS_IIDR revision ${rev}: only ITS ABI revision 0 exists`);
};

const regs: RegisterDesc[] = [
  reg('GITS_CTLR', GITS_CTLR, 4, W32, { read: readCtlr, uread: ureadCtlr, write: writeCtlr }),
  reg('GITS_IIDR', GITS_IIDR, 4, W32, { read: () => GITS_IIDR_VALUE, uwrite: uwriteIidr }),
  reg('GITS_TYPER', GITS_TYPER, 8, W32 | W64, { read: readTyper }),
  reg('GITS_STATUSR', GITS_STATUSR, 4, W32, { read: readRaz, write: writeWi }),
  reg('GITS_UMSIR', GITS_UMSIR, 8, W32 | W64, { read: readRaz }),
  reg('GITS_CBASER', GITS_CBASER, 8, W32 | W64, { read: readPair(I_CBASER_LO), write: writeCbaser }),
  reg('GITS_CWRITER', GITS_CWRITER, 8, W32 | W64, {
    read: (c, k, at) => (at === 0 ? c.s.its[k * ITS_STRIDE + I_CWRITER] : 0),
    write: writeCwriter,
    uwrite: uwriteCwriter,
  }),
  reg('GITS_CREADR', GITS_CREADR, 8, W32 | W64, {
    read: readCreadr,
    uread: ureadCreadr,
    uwrite: uwriteCreadr,
  }),
  reg('GITS_BASER', GITS_BASER, 0x40, W32 | W64, { read: readBaser, write: writeBaser }),
  reg('GITS_IDREGS', GITS_IDREGS, 0x30, W32, {
    read: (c, _k, at) => (at === 0x18 && c.s.direct ? GIC_PIDR2_ARCH_GICV4 : gitsIdReg(at)),
  }),
  reg('GITS_TRANSLATER', GITS_TRANSLATER, 4, W16 | W32, { read: readRaz, write: writeTranslater }),
];

export const itsFrame = buildFrame('GITS', GITS_FRAME_SIZE, regs, () => 0);

/**
 * KVM_DEV_ARM_ITS_CTRL_RESET (vgic_its_reset): disabled, tables and queue invalid, every mapping of
 * this ITS dropped. Caller holds no ITS lock.
 */
export function itsCtrlReset(s: GicState, k: number): void {
  const w = k * ITS_STRIDE;
  withCmdLock(s, k, () => {
    lockWord(s, s.its, w + I_LOCK);
    dropTableLocked(s, k, 0);
    dropTableLocked(s, k, 1);
    s.its[w + I_CTLR] = 0;
    s.its[w + I_BASER0_HI] &= ~GITS_BASER_HI_VALID;
    s.its[w + I_BASER0_HI + 2] &= ~GITS_BASER_HI_VALID;
    s.its[w + I_BASER2_HI] &= ~GITS_BASER_HI_VALID;
    s.its[w + I_CBASER_LO] = 0;
    s.its[w + I_CBASER_HI] = 0;
    s.its[w + I_CREADR] = 0;
    s.its[w + I_CWRITER] = 0;
    unlockWord(s, s.its, w + I_LOCK);
  });
}

/** Runs `fn` with ITS k's cmd_lock and its_lock held (table save/restore). */
export function withItsLocks<T>(s: GicState, k: number, fn: () => T): T {
  const w = k * ITS_STRIDE;
  lockWord(s, s.its, w + I_CMD_LOCK);
  lockWord(s, s.its, w + I_LOCK);
  try {
    return fn();
  } finally {
    unlockWord(s, s.its, w + I_LOCK);
    unlockWord(s, s.its, w + I_CMD_LOCK);
  }
}

/** Puts ITS k in its reset state (disabled, tables invalid, no collections, cache empty). */
export function resetIts(s: GicState, k: number): void {
  const w = k * ITS_STRIDE;
  s.its.fill(0, w, w + ITS_STRIDE);
  s.its[w + I_BASER0_LO] = GITS_BASER_LO_PAGE_SIZE_64K;
  s.its[w + I_BASER0_HI] = BASER_RESET_HI[0];
  s.its[w + I_BASER0_LO + 2] = GITS_BASER_LO_PAGE_SIZE_64K;
  s.its[w + I_BASER0_HI + 2] = BASER_RESET_HI[1];
  if (s.direct) {
    s.its[w + I_BASER2_LO] = GITS_BASER_LO_PAGE_SIZE_64K;
    s.its[w + I_BASER2_HI] = BASER_RESET_HI[2];
  }
  s.its[w + I_CACHE_GEN] = 1; // generation 0 is reserved for "empty"
  s.itsColl.fill(-1, k * ITS_COLLECTIONS, (k + 1) * ITS_COLLECTIONS);
  clearDevices(s, k);
  s.itsCache.fill(0, k * s.itsCacheSize * 2, (k + 1) * s.itsCacheSize * 2);
}
