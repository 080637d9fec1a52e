/**
 * Declarative register frames and the one dispatcher that enforces access width, alignment and
 * RAZ/WI for them (KVM's vgic-mmio.c: vgic_find_mmio_region + check_region + dispatch_mmio_*).
 *
 * A frame is a list of register descriptions: offset, length, bits per IRQ (per-IRQ registers),
 * allowed access widths, and separate guest and userspace (save/restore) accessors. The dispatcher
 * turns a byte offset into (description, first INTID or byte index) in O(1) through a table built
 * once per frame type. Guest accesses never throw: a bad width or alignment, a reserved offset, a
 * write to a read-only register all read as zero / are ignored, and are counted in the stats.
 *
 * Who may call: device/ on behalf of a vCPU that has exited (its LRs are folded back).
 */

import { checkInt, describeValue, VgicError } from '../arch/errors.ts';
import { W8, W16, W32, W64 } from '../arch/gicv3.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { type GicState, S_MMIO_BAD_ACCESS, S_MMIO_RO_WRITE, S_MMIO_UNMAPPED } from '../state/layout.ts';

/** Per-call context: the state, and the high word of a 64-bit access. */
export interface MmioContext {
  readonly s: GicState;
  /** Guest memory, for the registers whose effects reach it (LPI tables, the ITS). */
  readonly mem: GuestMemory;
  /** High 32 bits of the value of the last 64-bit read, or to be written by a 64-bit write. */
  hi: number;
}

/**
 * Accessors get the vCPU the frame belongs to (the accessing vCPU for the distributor), and `at`:
 * the first INTID covered for a per-IRQ register, else the byte offset inside the register. They
 * are called for 1, 2 or 4 bytes; a 64-bit access is two 4-byte calls, low word first.
 */
export type ReadFn = (ctx: MmioContext, vcpu: number, at: number, len: number) => number;
export type WriteFn = (ctx: MmioContext, vcpu: number, at: number, len: number, value: number) => void;

export interface RegisterDesc {
  readonly name: string;
  readonly offset: number;
  /** Bytes the description covers. */
  readonly len: number;
  /** Bits per interrupt for per-IRQ registers (1, 2 or 8); 0 for others. */
  readonly bitsPerIrq: number;
  /** Allowed access sizes, a mask of W8 | W16 | W32 | W64. */
  readonly widths: number;
  /** The first 32 INTIDs are RAZ/WI here (the distributor's view of SGIs/PPIs). */
  readonly privateRaz: boolean;
  /** Guest read; undefined = reads as zero. */
  readonly read?: ReadFn;
  /** Guest write; undefined = read-only (ignored and counted). */
  readonly write?: WriteFn;
  /** Userspace (save/restore) accessors, when they differ from the guest's. */
  readonly uread?: ReadFn;
  readonly uwrite?: WriteFn;
}

type Accessors = Pick<RegisterDesc, 'read' | 'write' | 'uread' | 'uwrite'>;

/** A register of fixed length (REGISTER_DESC_WITH_LENGTH). */
export function reg(name: string, offset: number, len: number, widths: number, acc: Accessors): RegisterDesc {
  return { name, offset, len, bitsPerIrq: 0, widths, privateRaz: false, ...acc };
}

/**
 * A per-IRQ register covering `nIrqs` interrupts at `bitsPerIrq` each
 * (REGISTER_DESC_WITH_BITS_PER_IRQ[_SHARED]).
 */
export function perIrq(
  name: string,
  offset: number,
  bitsPerIrq: number,
  nIrqs: number,
  widths: number,
  privateRaz: boolean,
  acc: Accessors,
): RegisterDesc {
  return { name, offset, len: (bitsPerIrq * nIrqs) / 8, bitsPerIrq, widths, privateRaz, ...acc };
}

export interface Frame {
  readonly name: string;
  readonly size: number;
  readonly regs: readonly RegisterDesc[];
  /** Word index (offset >> 2) → 1 + index into regs, or 0 for no register. */
  readonly lookup: Uint16Array;
  /** Per-IRQ registers beyond this INTID are RAZ/WI (the distributor: nrIrqs; redistributor: 32). */
  readonly irqLimit: (s: GicState) => number;
}

export function buildFrame(
  name: string,
  size: number,
  regs: readonly RegisterDesc[],
  irqLimit: (s: GicState) => number,
): Frame {
  const lookup = new Uint16Array(size >>> 2);
  regs.forEach((r, i) => {
    if (r.offset % 4 !== 0 || r.len % 4 !== 0 || r.offset + r.len > size) {
      throw new Error(`register ${r.name} at 0x${r.offset.toString(16)} is not word-aligned in ${name}`);
    }
    for (let w = r.offset >>> 2; w < (r.offset + r.len) >>> 2; w++) {
      if (lookup[w] !== 0)
        throw new Error(`register ${r.name} overlaps ${regs[lookup[w] - 1].name} in ${name}`);
      lookup[w] = i + 1;
    }
  });
  return { name, size, regs, lookup, irqLimit };
}

/** First INTID (per-IRQ registers) or byte offset inside the register, and whether it is RAZ/WI. */
function locate(f: Frame, s: GicState, r: RegisterDesc, offset: number, len: number): number {
  const rel = offset - r.offset;
  if (r.bitsPerIrq === 0) return rel;
  const intid = (rel * 8) / r.bitsPerIrq;
  const count = (len * 8) / r.bitsPerIrq;
  if ((r.privateRaz && intid < 32) || intid + count > f.irqLimit(s)) return -1;
  return intid;
}

function check(f: Frame, ctx: MmioContext, offset: number, size: number): RegisterDesc | undefined {
  if (offset < 0 || offset >= f.size) {
    ctx.s.stats[S_MMIO_UNMAPPED]++;
    return undefined;
  }
  const d = f.lookup[offset >>> 2];
  if (d === 0) {
    ctx.s.stats[S_MMIO_UNMAPPED]++;
    return undefined;
  }
  const r = f.regs[d - 1];
  if ((r.widths & size) === 0 || (offset & (size - 1)) !== 0 || offset + size > r.offset + r.len) {
    ctx.s.stats[S_MMIO_BAD_ACCESS]++;
    return undefined;
  }
  return r;
}

const sizeOk = (size: number): boolean => size === W8 || size === W16 || size === W32 || size === W64;

/**
 * Reads `size` bytes at `offset` of frame `f` for vCPU `vcpu`. Returns the low 32 bits (unsigned);
 * an 8-byte read leaves the high word in ctx.hi. `user` selects the userspace accessors.
 */
export function dispatchRead(
  f: Frame,
  ctx: MmioContext,
  vcpu: number,
  offset: number,
  size: number,
  user: boolean,
): number {
  ctx.hi = 0;
  if (!sizeOk(size)) {
    ctx.s.stats[S_MMIO_BAD_ACCESS]++;
    return 0;
  }
  const r = check(f, ctx, offset, size);
  if (r === undefined) return 0;
  const read = user && r.uread ? r.uread : r.read;
  if (read === undefined) return 0;
  if (size === W64) {
    const at = locate(f, ctx.s, r, offset, 8);
    if (at < 0) return 0;
    const lo = read(ctx, vcpu, at, 4) >>> 0;
    const hiAt = r.bitsPerIrq === 0 ? at + 4 : at + 32 / r.bitsPerIrq;
    ctx.hi = read(ctx, vcpu, hiAt, 4) >>> 0;
    return lo;
  }
  const at = locate(f, ctx.s, r, offset, size);
  if (at < 0) return 0;
  return read(ctx, vcpu, at, size) >>> 0;
}

/** Writes `size` bytes (the value as lo, and hi for 8 bytes) at `offset` of frame `f`. */
export function dispatchWrite(
  f: Frame,
  ctx: MmioContext,
  vcpu: number,
  offset: number,
  size: number,
  lo: number,
  hi: number,
  user: boolean,
): void {
  if (!sizeOk(size)) {
    ctx.s.stats[S_MMIO_BAD_ACCESS]++;
    return;
  }
  const r = check(f, ctx, offset, size);
  if (r === undefined) return;
  const write = user && r.uwrite ? r.uwrite : r.write;
  if (write === undefined) {
    ctx.s.stats[S_MMIO_RO_WRITE]++;
    return;
  }
  const mask = size === W8 ? 0xff : size === W16 ? 0xffff : 0xffffffff;
  if (size === W64) {
    const at = locate(f, ctx.s, r, offset, 8);
    if (at < 0) return;
    write(ctx, vcpu, at, 4, lo >>> 0);
    write(ctx, vcpu, r.bitsPerIrq === 0 ? at + 4 : at + 32 / r.bitsPerIrq, 4, hi >>> 0);
    return;
  }
  const at = locate(f, ctx.s, r, offset, size);
  if (at < 0) return;
  write(ctx, vcpu, at, size, (lo & mask) >>> 0);
}

export { W8, W16, W32, W64 };

/**
 * Why a host (userspace) access of `size` bytes at `offset` of `f` is not an access to one
 * register, or undefined if it is. Guests get RAZ/WI for these; the host gets an error.
 */
export function hostAccessProblem(f: Frame, offset: number, size: number): string | undefined {
  if (offset % 4 !== 0) return `${f.name} register offsets are multiples of 4, got 0x${offset.toString(16)}`;
  const d = f.lookup[offset >>> 2];
  if (d === 0) return `no ${f.name} register at offset 0x${offset.toString(16)}`;
  const r = f.regs[d - 1];
  if ((r.widths & size) === 0 || offset % size !== 0 || offset + size > r.offset + r.len) {
    const widths = [W32, W64].filter((w) => r.widths & w).join(' or ');
    return `${r.name} (0x${r.offset.toString(16)}) cannot be accessed with ${size} bytes at 0x${offset.toString(16)}; it allows ${widths || 'no host'}-byte accesses, naturally aligned`;
  }
  return undefined;
}

/**
 * The width of the register at `offset` of `f` for a host access that names none: 8 bytes where the
 * register allows them there, else 4 (checkHostAccess then judges the offset).
 */
export function naturalHostSize(f: Frame, offset: unknown): 4 | 8 {
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset % 8 !== 0) return 4;
  const d = f.lookup[offset >>> 2];
  if (d === undefined || d === 0) return 4;
  const r = f.regs[d - 1];
  return (r.widths & W64) !== 0 && offset + 8 <= r.offset + r.len ? 8 : 4;
}

/** Checks a host register access (offset, size 4 or 8) to `f`; throws VgicError saying what is allowed. */
export function checkHostAccess(f: Frame, offset: unknown, size: unknown): void {
  checkInt('INVALID_ADDRESS', `${f.name} register offset`, offset, 0, f.size - 1);
  if (size !== 4 && size !== 8) {
    throw new VgicError('INVALID_ADDRESS', `register access size must be 4 or 8, got ${describeValue(size)}`);
  }
  const why = hostAccessProblem(f, offset as number, size);
  if (why !== undefined)
    throw new VgicError(why.startsWith('no ') ? 'INVALID_REGISTER' : 'INVALID_ADDRESS', why);
}
