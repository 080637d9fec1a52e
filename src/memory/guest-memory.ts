/**
 * Guest physical memory: RAM regions at guest physical addresses over (Shared)ArrayBuffers, with
 * bounds-checked little-endian accessors. Every access the GIC makes to guest memory goes through
 * here; an address outside every region is reported (undefined / false), never thrown, because the
 * address comes from the guest.
 *
 * Who may call: anyone; accesses are plain loads and stores (no lock).
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

  /** Adds a RAM region; its buffer is created unless given. */
  addRam(base: number, size: number, buffer?: ArrayBuffer | SharedArrayBuffer): RamRegion {
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
    const region = { base, size, bytes: new Uint8Array(buf, 0, size), view: new DataView(buf, 0, size) };
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
    return true;
  }
}
