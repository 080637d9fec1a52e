/**
 * Guest physical memory: RAM regions at guest physical addresses over (Shared)ArrayBuffers, with
 * bounds-checked little-endian accessors. Every access the GIC makes to guest memory goes through
 * here; an address outside every region is reported (undefined / false), never thrown, because the
 * address comes from the guest.
 *
 * Who may call: anyone; accesses are plain loads and stores (no lock).
 *
 * Dirty log (KVM_MEM_LOG_DIRTY_PAGES / KVM_GET_DIRTY_LOG for the pages the GIC writes): every
 * write through this class (ITS table save, ITT/DTE clearing, pending-table updates, the
 * in-process vCPU's stores) sets its 4K page's bit in the region's log while logging is on; reads
 * (the command queue, table walks) never do. The log lives in its own (Shared)ArrayBuffer beside
 * the RAM so that every thread attached to the GIC marks the same bits (Atomics.or), and a write
 * costs one load of the enable word, plus one OR when logging is on. Writes through a view from
 * bytesAt() are the caller's own and not logged.
 */

import { VgicError } from '../arch/errors.ts';

/** One RAM region: its guest physical base and size, and its bytes (shared with the CPU model). */
export interface RamRegion {
  /** Guest physical address of the first byte. */
  readonly base: number;
  /** Size in bytes (a multiple of 4K). */
  readonly size: number;
  /** The region's bytes: an emulator's CPU loads and stores here directly. */
  readonly bytes: Uint8Array;
  /** A DataView over the same bytes (little-endian accessors). */
  readonly view: DataView;
  /**
   * The region's dirty log: word 0 is the enable flag (DIRTY_LOG_ON), then one bit per 4K page
   * (page p is bit p % 32 of word 1 + p / 32). Shared when the RAM is.
   */
  readonly dirty: Int32Array;
  /** Whether `dirty` is shared (marked with Atomics.or). */
  readonly dirtyShared: boolean;
}

/** Word 0 of a dirty log while logging is on. */
const DIRTY_LOG_ON = 1;
export const DIRTY_PAGE_SHIFT = 12;

/** Bytes of a dirty log for a region of `size` bytes (the enable word and the bitmap). */
export function dirtyLogBytes(size: number): number {
  return 4 * (1 + Math.ceil(size / 2 ** DIRTY_PAGE_SHIFT / 32));
}

/**
 * Sets the dirty bits of [o, o+len) (offsets in the region); the caller checked logging is on. A
 * bit already set is left alone (a plain load: repeated writes to a page, as a table save makes,
 * cost no atomic); a bit cleared by a concurrent getDirtyLog is set again by the atomic OR.
 */
function markDirty(r: RamRegion, o: number, len: number): void {
  const d = r.dirty;
  const last = (o + len - 1) >>> DIRTY_PAGE_SHIFT;
  for (let p = o >>> DIRTY_PAGE_SHIFT; p <= last; p++) {
    const w = 1 + (p >>> 5);
    const bit = 1 << (p & 31);
    if ((d[w] & bit) !== 0) continue;
    if (r.dirtyShared) Atomics.or(d, w, bit);
    else d[w] |= bit;
  }
}

/** Guest physical addresses vgic accepts: below 2^48 (the GIC's 48-bit table addresses and more). */
export const MAX_GUEST_PA = 2 ** 48;

/**
 * Guest RAM as vgic sees it ({@link Vgic.memory}): the regions vgic reads the ITS tables and the LPI
 * property and pending tables from. Accesses are bounds-checked; an address outside every region
 * reads as undefined / writes return false, never throw (the address comes from the guest).
 */
export class GuestMemory {
  /** The RAM regions, in the order they were added. */
  readonly regions: RamRegion[] = [];

  /**
   * Adds a RAM region; its buffer is created unless given, and so is its dirty log (give the
   * creator's, RamRegion.dirty's buffer, to share it with another thread).
   */
  addRam(
    base: number,
    size: number,
    buffer?: ArrayBuffer | SharedArrayBuffer,
    dirtyLog?: ArrayBuffer | SharedArrayBuffer,
  ): RamRegion {
    if (!Number.isInteger(base) || base < 0 || base % 4096 !== 0 || base >= MAX_GUEST_PA) {
      throw new VgicError('INVALID_ADDRESS', `RAM base must be 4K-aligned and below 2^48, got ${base}`);
    }
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0 || size > 2 ** 32) {
      throw new VgicError(
        'INVALID_ADDRESS',
        `RAM size must be a multiple of 4K from 4K to 4 GiB, got ${size}`,
      );
    }
    for (const r of this.regions) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new VgicError(
          'INVALID_ADDRESS',
          `RAM at 0x${base.toString(16)} overlaps RAM at 0x${r.base.toString(16)}`,
        );
      }
    }
    // Shared where the platform has it (a page without cross-origin isolation does not).
    const buf =
      buffer ??
      (typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
    if (buf.byteLength < size)
      throw new VgicError('INVALID_ADDRESS', `RAM buffer is smaller than ${size} bytes`);
    const logBytes = dirtyLogBytes(size);
    if (dirtyLog !== undefined && dirtyLog.byteLength !== logBytes) {
      throw new VgicError(
        'INVALID_ADDRESS',
        `a dirty log for ${size} bytes of RAM is ${logBytes} bytes, got ${dirtyLog.byteLength}`,
      );
    }
    const log =
      dirtyLog ?? (buf instanceof ArrayBuffer ? new ArrayBuffer(logBytes) : new SharedArrayBuffer(logBytes));
    const region = {
      base,
      size,
      bytes: new Uint8Array(buf, 0, size),
      view: new DataView(buf, 0, size),
      dirty: new Int32Array(log),
      dirtyShared: typeof SharedArrayBuffer === 'function' && log instanceof SharedArrayBuffer,
    };
    this.regions.push(region);
    return region;
  }

  /** The region holding [addr, addr+len), or undefined. */
  find(addr: number, len: number): RamRegion | undefined {
    for (const r of this.regions) {
      if (addr >= r.base && addr + len <= r.base + r.size) return r;
    }
    return undefined;
  }

  /**
   * A view of [addr, addr+len) if it lies in one RAM region (for table scans), else undefined.
   * Allocates the view: not for per-interrupt paths.
   */
  bytesAt(addr: number, len: number): Uint8Array | undefined {
    const r = this.find(addr, len);
    return r === undefined ? undefined : r.bytes.subarray(addr - r.base, addr - r.base + len);
  }

  /**
   * Zeroes [addr, addr+len) if it lies in one RAM region; false if not. 8-byte aligned ranges are
   * filled through a Float64Array: Uint8Array.fill over a SharedArrayBuffer is 6x slower here.
   */
  fillZero(addr: number, len: number): boolean {
    const r = this.find(addr, len);
    if (r === undefined) return false;
    const o = r.bytes.byteOffset + addr - r.base;
    if (o % 8 === 0 && len % 8 === 0) new Float64Array(r.bytes.buffer, o, len / 8).fill(0);
    else r.bytes.fill(0, addr - r.base, addr - r.base + len);
    if (len > 0 && r.dirty[0] !== 0) markDirty(r, addr - r.base, len);
    return true;
  }

  /**
   * Reads a little-endian 64-bit entry as two words into `out[0]` (low) and `out[1]` (high), without
   * BigInt. Returns false (and leaves `out` alone) if not RAM.
   */
  readWords(addr: number, out: Uint32Array): boolean {
    const r = this.find(addr, 8);
    if (r === undefined) return false;
    const o = addr - r.base;
    out[0] = r.view.getUint32(o, true);
    out[1] = r.view.getUint32(o + 4, true);
    return true;
  }

  /** Writes a little-endian 64-bit entry given as two words. Returns false if not RAM. */
  writeWords(addr: number, lo: number, hi: number): boolean {
    const r = this.find(addr, 8);
    if (r === undefined) return false;
    const o = addr - r.base;
    r.view.setUint32(o, lo >>> 0, true);
    r.view.setUint32(o + 4, hi >>> 0, true);
    if (r.dirty[0] !== 0) markDirty(r, o, 8);
    return true;
  }

  /** Reads 1, 2 or 4 bytes; undefined if not RAM. */
  read(addr: number, size: 1 | 2 | 4): number | undefined {
    const r = this.find(addr, size);
    if (r === undefined) return undefined;
    const o = addr - r.base;
    return size === 1
      ? r.view.getUint8(o)
      : size === 2
        ? r.view.getUint16(o, true)
        : r.view.getUint32(o, true);
  }

  /** Writes 1, 2 or 4 bytes; false if not RAM. */
  write(addr: number, size: 1 | 2 | 4, value: number): boolean {
    const r = this.find(addr, size);
    if (r === undefined) return false;
    const o = addr - r.base;
    if (size === 1) r.view.setUint8(o, value);
    else if (size === 2) r.view.setUint16(o, value, true);
    else r.view.setUint32(o, value >>> 0, true);
    if (r.dirty[0] !== 0) markDirty(r, o, size);
    return true;
  }

  /** A 64-bit little-endian load; undefined outside RAM. */
  read64(addr: number): bigint | undefined {
    const r = this.find(addr, 8);
    return r === undefined ? undefined : r.view.getBigUint64(addr - r.base, true);
  }

  /** A 64-bit little-endian store; false (nothing written) outside RAM. */
  write64(addr: number, value: bigint): boolean {
    const r = this.find(addr, 8);
    if (r === undefined) return false;
    r.view.setBigUint64(addr - r.base, BigInt.asUintN(64, value), true);
    if (r.dirty[0] !== 0) markDirty(r, addr - r.base, 8);
    return true;
  }

  // ---- Dirty log (KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG) ----

  /** The region starting at `base` (a memslot), or VgicError. */
  region(base: number): RamRegion {
    for (const r of this.regions) if (r.base === base) return r;
    throw new VgicError(
      'INVALID_ADDRESS',
      `no RAM region starts at ${describeAddr(base)}; regions: ${this.regions.map((r) => `0x${r.base.toString(16)}`).join(', ') || 'none'}`,
    );
  }

  /**
   * Turns dirty logging of the region at `base` on or off (KVM_MEM_LOG_DIRTY_PAGES). Turning it on
   * starts from a clean log; pages written before are not in it.
   */
  setDirtyLogging(base: number, on: boolean): void {
    const d = this.region(base).dirty;
    if (on) for (let i = 1; i < d.length; i++) Atomics.store(d, i, 0);
    Atomics.store(d, 0, on ? DIRTY_LOG_ON : 0);
  }

  dirtyLogging(base: number): boolean {
    return Atomics.load(this.region(base).dirty, 0) === DIRTY_LOG_ON;
  }

  /**
   * KVM_GET_DIRTY_LOG: the region's dirty bitmap (bit p % 32 of word p / 32 = 4K page p from the
   * region's base), read and cleared word by word with Atomics.exchange, so a page written while
   * the log is read is in this answer or the next, never lost.
   */
  getDirtyLog(base: number): Uint32Array {
    const d = this.region(base).dirty;
    const out = new Uint32Array(d.length - 1);
    for (let i = 1; i < d.length; i++) out[i - 1] = Atomics.exchange(d, i, 0);
    return out;
  }

  /**
   * KVM_GET_DIRTY_LOG with KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE: the region's dirty bitmap, left as
   * it is; clearDirtyLog() clears what the caller has copied.
   */
  peekDirtyLog(base: number): Uint32Array {
    const d = this.region(base).dirty;
    const out = new Uint32Array(d.length - 1);
    for (let i = 1; i < d.length; i++) out[i - 1] = Atomics.load(d, i);
    return out;
  }

  /** How many 4K pages the dirty log of the region at `base` covers. */
  dirtyLogPages(base: number): number {
    return Math.ceil(this.region(base).size / 2 ** DIRTY_PAGE_SHIFT);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG: clears the dirty bits set in `bitmap` (bit j = page firstPage + j) for
   * pages firstPage .. firstPage + numPages - 1 of the region at `base`, with KVM's rules: firstPage
   * a multiple of 64, numPages a multiple of 64 unless the range ends at the region's last page,
   * the range inside the region, the bitmap covering numPages bits. Each word is cleared with an
   * atomic and-not, so a page written after the caller read the log stays dirty only if written
   * after this clear — which is what a migration copies next.
   */
  clearDirtyLog(base: number, firstPage: number, numPages: number, bitmap: Uint32Array): void {
    const d = this.region(base).dirty;
    const npages = this.dirtyLogPages(base);
    const int = (x: number) => Number.isSafeInteger(x) && x >= 0;
    if (!int(firstPage) || firstPage % 64 !== 0 || firstPage > npages) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `clearDirtyLog: firstPage must be a multiple of 64 in 0..${npages}, got ${String(firstPage)}`,
      );
    }
    if (
      !int(numPages) ||
      numPages > npages - firstPage ||
      (numPages < npages - firstPage && numPages % 64 !== 0)
    ) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `clearDirtyLog: numPages must be at most ${npages - firstPage} pages and a multiple of 64 unless it reaches the region's end, got ${String(numPages)}`,
      );
    }
    const words = Math.ceil(numPages / 32);
    if (bitmap.length < words) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `clearDirtyLog: a bitmap for ${numPages} pages needs ${words} words, got ${bitmap.length}`,
      );
    }
    const w0 = 1 + firstPage / 32;
    for (let j = 0; j < words; j++) {
      let mask = bitmap[j];
      // Bits past numPages name pages outside the range (KVM masks them by the slot's bitmap size).
      if (j === words - 1 && numPages % 32 !== 0) mask &= (1 << (numPages % 32)) - 1;
      if (mask !== 0) Atomics.and(d, w0 + j, ~mask);
    }
  }

  /**
   * Marks every page of the region at `base` dirty (KVM_DIRTY_LOG_INITIALLY_SET: the first pass of
   * a migration copies everything and clears as it goes).
   */
  setAllDirty(base: number): void {
    const d = this.region(base).dirty;
    const npages = this.dirtyLogPages(base);
    for (let i = 1; i < d.length; i++) {
      const first = (i - 1) * 32;
      const n = Math.min(32, npages - first);
      Atomics.or(d, i, n >= 32 ? -1 : (1 << n) - 1);
    }
  }

  /** The guest physical addresses of the dirty pages a getDirtyLog() bitmap of region `base` names. */
  static dirtyPages(base: number, bitmap: Uint32Array): number[] {
    const pages: number[] = [];
    for (let w = 0; w < bitmap.length; w++) {
      let bits = bitmap[w];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        pages.push(base + (w * 32 + b) * 2 ** DIRTY_PAGE_SHIFT);
        bits &= bits - 1;
      }
    }
    return pages;
  }
}

const describeAddr = (x: unknown): string =>
  typeof x === 'number' && Number.isInteger(x) && x >= 0 ? `0x${x.toString(16)}` : String(x);
