/**
 * An ITS as the host sees it: KVM_DEV_TYPE_ARM_VGIC_ITS's attribute groups as methods —
 * GRP_ITS_REGS (readReg / writeReg with userspace semantics), GRP_CTRL (reset, saveTables,
 * restoreTables) — plus the error counters the guest never sees.
 *
 * Who may call: the host. Save and restore need the vCPUs stopped (as KVM's -EBUSY rule).
 * Misuse throws VgicError; E_ITS conditions are counted, never thrown.
 */

import { checkRegValue, VgicError } from '../arch/errors.ts';
import { E_ITS_CODES, GITS_TRANSLATER } from '../arch/its.ts';
import { restoreTablesLocked, saveTablesLocked } from '../its/abi.ts';
import { itsCtrlReset, itsFrame, withItsLocks } from '../mmio/its.ts';
import { checkHostAccess, dispatchRead, dispatchWrite, naturalHostSize } from '../mmio/region.ts';
import {
  I_CACHE_MISS,
  I_CMD_READ_FAULT,
  I_CMD_UNKNOWN,
  I_COMMANDS,
  I_CTLR,
  I_ERR_BASE,
  I_MSI_BLOCKED,
  I_MSI_BUSY,
  I_TABLE_FAULT,
  ITS_STRIDE,
} from '../state/layout.ts';
import type { Vgic } from './vgic.ts';

export interface ItsStats {
  /** Commands processed (including failed and ignored ones). */
  readonly commands: number;
  /** Failed commands per E_ITS_* condition (the command was skipped, the queue went on). */
  readonly errors: Readonly<Record<string, number>>;
  /** Commands that could not be read from guest memory (skipped). */
  readonly commandReadFaults: number;
  /** Unknown and GICv4 opcodes (ignored). */
  readonly unknownCommands: number;
  /** Table entries found outside RAM or naming a non-LPI (a guest writing into its tables). */
  readonly tableFaults: number;
  /** Translations that missed the cache and walked the tables. */
  readonly cacheMisses: number;
  /** MSIs (and INT commands) without a valid mapping / refused as busy. */
  readonly msiBlocked: number;
  readonly msiBusy: number;
}

/**
 * One ITS of a GIC ({@link Vgic.its}): its registers with userspace semantics, its error counters,
 * and save/restore of its tables in KVM's ABI rev 0 (KVM_DEV_TYPE_ARM_VGIC_ITS).
 */
export class Its {
  private readonly gic: Vgic;
  readonly index: number;

  /** @internal created by Vgic. */
  constructor(gic: Vgic, index: number) {
    this.gic = gic;
    this.index = index;
  }

  /** Guest physical base of the 128K frame. */
  get base(): number {
    return this.gic.itsBases[this.index];
  }

  /** The MSI doorbell: GITS_TRANSLATER's address. */
  get doorbell(): number {
    return this.base + GITS_TRANSLATER;
  }

  private w(i: number): number {
    return this.gic.state.its[this.index * ITS_STRIDE + i] >>> 0;
  }

  get enabled(): boolean {
    return (this.w(I_CTLR) & 1) !== 0;
  }

  stats(): ItsStats {
    const errors: Record<string, number> = {};
    E_ITS_CODES.forEach(([name], i) => {
      errors[name] = this.w(I_ERR_BASE + i);
    });
    return {
      commands: this.w(I_COMMANDS),
      errors,
      commandReadFaults: this.w(I_CMD_READ_FAULT),
      unknownCommands: this.w(I_CMD_UNKNOWN),
      tableFaults: this.w(I_TABLE_FAULT),
      cacheMisses: this.w(I_CACHE_MISS),
      msiBlocked: this.w(I_MSI_BLOCKED),
      msiBusy: this.w(I_MSI_BUSY),
    };
  }

  /** Total failed commands over every E_ITS_* condition. */
  errorCount(): number {
    let n = 0;
    for (let i = 0; i < E_ITS_CODES.length; i++) n += this.w(I_ERR_BASE + i);
    return n;
  }

  /**
   * KVM_DEV_ARM_VGIC_GRP_ITS_REGS read (e.g. GITS_CBASER, GITS_BASER<n>, GITS_CREADR). `size`
   * defaults to the register's width: 8 bytes for the 64-bit registers, 4 for GITS_CTLR and the
   * other 32-bit ones.
   */
  readReg(offset: number, size: 4 | 8 = naturalHostSize(itsFrame, offset)): bigint {
    checkHostAccess(itsFrame, offset, size);
    const ctx = this.gic.ctx;
    const lo = dispatchRead(itsFrame, ctx, this.index, offset, size, true);
    return (BigInt(ctx.hi) << 32n) | BigInt(lo);
  }

  /**
   * KVM_DEV_ARM_VGIC_GRP_ITS_REGS write, with userspace semantics: CWRITER runs no command, CREADR
   * and IIDR are writable. Restore order (as KVM): CBASER, the other registers, restoreTables(), CTLR.
   * `value` is a bigint or a safe integer that fits `size` bytes; `size` defaults to the register's
   * width (readReg).
   */
  writeReg(offset: number, value: bigint | number, size: 4 | 8 = naturalHostSize(itsFrame, offset)): void {
    checkHostAccess(itsFrame, offset, size);
    const w = checkRegValue('ITS register value', value, size);
    dispatchWrite(itsFrame, this.gic.ctx, this.index, offset, size, w.lo, w.hi, true);
  }

  /** KVM_DEV_ARM_ITS_CTRL_RESET. */
  reset(): void {
    itsCtrlReset(this.gic.state, this.index);
  }

  /**
   * KVM_DEV_ARM_ITS_SAVE_TABLES: the device table, ITTs and collection table in guest RAM in KVM's
   * ABI rev 0. Throws VgicError if a table entry is not in RAM or the collection table is too small.
   */
  saveTables(): void {
    // The tables hold mappings, not pending state: no vCPU needs halting.
    const s = this.gic.state;
    withItsLocks(s, this.index, () => saveTablesLocked(s, this.gic.memory, this.index));
  }

  /**
   * KVM_DEV_ARM_ITS_RESTORE_TABLES: rebuild the ITS's mappings from its tables (registers restored
   * first, ITS disabled). Inconsistent tables throw VgicError and change nothing.
   */
  restoreTables(): void {
    if (this.enabled)
      throw new VgicError(
        'INVALID_ARGUMENT',
        'restoreTables needs the ITS disabled (restore GITS_CTLR last)',
      );
    const s = this.gic.state;
    withItsLocks(s, this.index, () => restoreTablesLocked(s, this.gic.memory, this.index));
  }
}
