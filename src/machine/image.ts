/**
 * Loading a guest image the way QEMU 7.2's `-kernel` does on an AArch64 `virt` board
 * (hw/arm/boot.c: arm_setup_direct_kernel_boot, arm_load_elf, load_aarch64_image), as a plan:
 * segments to copy into RAM, the entry point and where the DTB goes. Nothing is written here, so
 * the rules are testable without a CPU; copySegments() does the copy.
 *
 * Formats, tried in QEMU's order:
 *  - ELF64 little-endian, EM_AARCH64, ET_EXEC: each PT_LOAD at its p_paddr (QEMU's load_elf loads
 *    by physical address), p_filesz bytes then zeros up to p_memsz; entry e_entry.
 *  - gzip: inflated first (QEMU's load_image_gzipped_buffer), then one of the two below.
 *  - arm64 Linux Image ("ARM\x64" at 0x38): when image_size (0x10) is non-zero, loaded at
 *    RAM base + text_offset (0x08), plus 2 MiB when text_offset is below 4 KiB (QEMU keeps its
 *    4 KiB boot stub at the RAM base); so a modern kernel (text_offset 0) lands at RAM + 2 MiB,
 *    not RAM + 0x80000. With image_size 0 (kernels before 3.17), as a raw binary.
 *  - anything else (raw binary): at RAM base + 0x80000, entry there.
 *  Load addresses and x0 checked against QEMU 7.2 (PC and x0 at the first guest instruction, -d cpu)
 *  for ELF, raw and Image with text_offset 0, 0x800, 0x1000 and 0x80000; gzip from the source only.
 *
 * DTB placement (arm_setup_direct_kernel_boot):
 *  - Image / raw (QEMU's is_linux): initrd_start = max(RAM + min(RAM size / 2, 128 MiB), image
 *    end), page-aligned; the DTB at initrd_start (no initrd here) rounded up to 2 MiB. QEMU's boot
 *    stub passes that address in x0 (128 MiB of RAM at 0x40000000: 0x44000000).
 *  - ELF (not Linux to QEMU): the DTB at the RAM base when there is room below the lowest segment,
 *    and x0 = 0: QEMU enters the ELF directly, no boot stub. When the ELF starts at the RAM base,
 *    QEMU leaves dtb_start 0 and writes the DTB at guest PA 0 (flash on virt, not RAM); when the
 *    room below is too small, QEMU refuses to start.
 *  Our machine always hands the guest a DTB in x0. It uses QEMU's placement when that is in RAM,
 *  and otherwise (an ELF at the RAM base or with too little room below it) the Linux rule above,
 *  i.e. above the image. The result carries both: dtbAddr / x0 for our machine, qemuDtbAddr /
 *  qemuX0 for what QEMU does, so a comparison run can tell them apart.
 *
 * The image is host input but untrusted: malformed headers, segments outside RAM and overlaps
 * throw VgicError with the offending field; sizes are checked before anything is allocated (the
 * only allocation is gzip inflation, capped at the RAM size).
 *
 * Who may call: the machine, before the first vCPU runs.
 */

import { gunzipSync } from 'node:zlib';
import { VgicError } from '../arch/errors.ts';

export const ImageKind = { ELF: 'elf', IMAGE: 'image', RAW: 'raw' } as const;
export type ImageKind = (typeof ImageKind)[keyof typeof ImageKind];

/** hw/arm/boot.c KERNEL64_LOAD_ADDR: where a raw AArch64 binary goes. */
export const KERNEL64_LOAD_OFFSET = 0x80000;
/** hw/arm/boot.c BOOTLOADER_MAX_SIZE: the boot stub QEMU writes at the RAM base. */
export const BOOTLOADER_MAX_SIZE = 0x1000;
export const ARM64_MAGIC_OFFSET = 0x38;
export const DTB_ALIGN = 2 * 1024 * 1024;
/** LOAD_IMAGE_MAX_GUNZIP_BYTES in QEMU. */
export const MAX_GUNZIP_BYTES = 256 * 1024 * 1024;

const EM_AARCH64 = 183;
const ET_EXEC = 2;
const PT_LOAD = 1;
const ELF64_EHDR_SIZE = 64;
const ELF64_PHDR_SIZE = 56;
const PAGE = 4096;
const MiB = 1024 * 1024;

export interface ImageSegment {
  /** Guest physical address. */
  addr: number;
  /** Bytes to copy (a view into the input or the inflated buffer). */
  bytes: Uint8Array;
  /** Bytes the segment occupies: bytes.length, then zeros up to memSize (an ELF's .bss). */
  memSize: number;
}

export interface LoadedImage {
  kind: ImageKind;
  segments: ImageSegment[];
  entry: number;
  /** First byte used and first byte not used by the image (QEMU's image_low/high_addr). */
  imageLow: number;
  imageHigh: number;
  /** Where the initrd goes (QEMU's rule); null without one. */
  initrdAddr: number | null;
  /** Where our machine puts the DTB. */
  dtbAddr: number;
  /** x0 at entry for our machine: always dtbAddr. */
  x0: number;
  /** Where QEMU 7.2 puts the DTB; null when not in RAM (PA 0) or when QEMU refuses to boot. */
  qemuDtbAddr: number | null;
  /** x0 at entry under QEMU 7.2: the DTB address for Image/raw, 0 for ELF. */
  qemuX0: number;
}

export interface RamRange {
  base: number;
  size: number;
}

export interface LoadOptions {
  /** Size of the DTB that will be placed (bytes); default 64 KiB. */
  dtbSize?: number;
  /** Size of an initrd to place (bytes); default none. */
  initrdSize?: number;
}

const hex = (v: number) => `0x${v.toString(16)}`;

function bad(message: string): never {
  throw new VgicError('INVALID_ARGUMENT', message);
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

/** A little-endian u64 as a number; values past 2^53 are not addresses or sizes we can load. */
function u64(view: DataView, off: number, what: string): number {
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  if (hi >= 2 ** 21) bad(`ELF ${what} ${hex(hi)}_${lo.toString(16).padStart(8, '0')} is out of range`);
  return hi * 2 ** 32 + lo;
}

function checkRam(ram: RamRange): void {
  if (!Number.isSafeInteger(ram.base) || ram.base < 0 || !Number.isSafeInteger(ram.size) || ram.size <= 0) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `RAM range must be integers with size > 0, got ${ram.base}+${ram.size}`,
    );
  }
}

function ramText(ram: RamRange): string {
  return `RAM ${hex(ram.base)}..${hex(ram.base + ram.size)}`;
}

/** QEMU's initrd_start: RAM + min(RAM size / 2, 128 MiB), or after the image, page-aligned. */
function initrdStartOf(ram: RamRange, imageHigh: number): number {
  return alignUp(Math.max(ram.base + Math.min(ram.size / 2, 128 * MiB), imageHigh), PAGE);
}

/** The Linux-style DTB address: after the initrd (if any) at initrd_start, aligned to 2 MiB. */
function linuxDtbAddr(ram: RamRange, imageHigh: number, initrdSize = 0): number {
  return alignUp(initrdStartOf(ram, imageHigh) + initrdSize, DTB_ALIGN);
}

/** Where the initrd goes (null: none), checked to fit in RAM. */
function placeInitrd(ram: RamRange, imageHigh: number, initrdSize: number): number | null {
  if (initrdSize === 0) return null;
  const at = initrdStartOf(ram, imageHigh);
  if (at + initrdSize > ram.base + ram.size) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `the ${initrdSize}-byte initrd does not fit at ${hex(at)} in ${ramText(ram)}: give the machine more RAM`,
    );
  }
  return at;
}

function checkDtbFits(ram: RamRange, addr: number, dtbSize: number, kind: string): void {
  if (addr + dtbSize > ram.base + ram.size) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `no room for the ${dtbSize}-byte DTB after the ${kind} image: it would go at ${hex(addr)}, ` +
        `beyond ${ramText(ram)}`,
    );
  }
}

function parseElf(bytes: Uint8Array, ram: RamRange): { segments: ImageSegment[]; entry: number } {
  if (bytes.length < ELF64_EHDR_SIZE) bad(`ELF header truncated: ${bytes.length} bytes, need 64`);
  if (bytes[4] !== 2) bad(`ELF class ${bytes[4]}: only ELF64 (2) is supported`);
  if (bytes[5] !== 1) bad(`ELF data encoding ${bytes[5]}: only little-endian (1) is supported`);
  if (bytes[6] !== 1) bad(`ELF version ${bytes[6]}: only 1 is defined`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = v.getUint16(16, true);
  const machine = v.getUint16(18, true);
  if (machine !== EM_AARCH64) bad(`ELF e_machine ${machine}: only EM_AARCH64 (183) is supported`);
  if (type !== ET_EXEC) bad(`ELF e_type ${type}: only ET_EXEC (2) is supported`);
  const entry = u64(v, 24, 'e_entry');
  const phoff = u64(v, 32, 'e_phoff');
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phnum === 0) bad('ELF has no program headers');
  if (phnum === 0xffff) bad('ELF e_phnum PN_XNUM (extended numbering) is not supported');
  if (phentsize !== ELF64_PHDR_SIZE) bad(`ELF e_phentsize ${phentsize}: ELF64 program headers are 56 bytes`);
  if (phoff > bytes.length || phnum * ELF64_PHDR_SIZE > bytes.length - phoff) {
    bad(
      `ELF program headers (e_phoff ${hex(phoff)}, ${phnum} entries) run past the ${bytes.length}-byte file`,
    );
  }
  const ramEnd = ram.base + ram.size;
  const segments: ImageSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * ELF64_PHDR_SIZE;
    if (v.getUint32(ph, true) !== PT_LOAD) continue;
    const offset = u64(v, ph + 8, `segment ${i} p_offset`);
    const paddr = u64(v, ph + 24, `segment ${i} p_paddr`);
    const filesz = u64(v, ph + 32, `segment ${i} p_filesz`);
    const memsz = u64(v, ph + 40, `segment ${i} p_memsz`);
    if (filesz > memsz) bad(`ELF segment ${i}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset > bytes.length || filesz > bytes.length - offset) {
      bad(
        `ELF segment ${i}: file bytes ${hex(offset)}+${hex(filesz)} run past the ${bytes.length}-byte file`,
      );
    }
    if (memsz === 0) continue;
    if (paddr < ram.base || paddr + memsz > ramEnd) {
      throw new VgicError(
        'INVALID_ADDRESS',
        `ELF segment ${i} (PT_LOAD at ${hex(paddr)}..${hex(paddr + memsz)}) lies outside ${ramText(ram)}`,
      );
    }
    for (const s of segments) {
      if (paddr < s.addr + s.memSize && s.addr < paddr + memsz) {
        bad(`ELF segment ${i} (${hex(paddr)}..${hex(paddr + memsz)}) overlaps the segment at ${hex(s.addr)}`);
      }
    }
    segments.push({ addr: paddr, bytes: bytes.subarray(offset, offset + filesz), memSize: memsz });
  }
  if (segments.length === 0) bad('ELF has no PT_LOAD segment with memory');
  if (entry < ram.base || entry >= ramEnd) {
    throw new VgicError('INVALID_ADDRESS', `ELF entry ${hex(entry)} lies outside ${ramText(ram)}`);
  }
  return { segments, entry };
}

function loadElf(bytes: Uint8Array, ram: RamRange, dtbSize: number, initrdSize: number): LoadedImage {
  const { segments, entry } = parseElf(bytes, ram);
  const imageLow = Math.min(...segments.map((s) => s.addr));
  const imageHigh = Math.max(...segments.map((s) => s.addr + s.memSize));
  // QEMU: DTB at the RAM base when the ELF starts above it and the DTB fits below the ELF.
  const qemuDtbAddr = imageLow > ram.base && ram.base + dtbSize <= imageLow ? ram.base : null;
  const initrdAddr = placeInitrd(ram, imageHigh, initrdSize);
  let dtbAddr = initrdAddr === null ? qemuDtbAddr : null;
  if (dtbAddr === null) {
    dtbAddr = linuxDtbAddr(ram, imageHigh, initrdSize);
    checkDtbFits(ram, dtbAddr, dtbSize, 'ELF');
  }
  return {
    kind: ImageKind.ELF,
    segments,
    entry,
    imageLow,
    imageHigh,
    initrdAddr,
    dtbAddr,
    x0: dtbAddr,
    qemuDtbAddr,
    qemuX0: 0,
  };
}

function loadLinux(bytes: Uint8Array, ram: RamRange, dtbSize: number, initrdSize: number): LoadedImage {
  let offset = KERNEL64_LOAD_OFFSET;
  let kernelSize = 0;
  let kind: ImageKind = ImageKind.RAW;
  const magic = ARM64_MAGIC_OFFSET;
  // QEMU needs the file to extend past the magic (size > 0x3c), not just to hold it.
  if (
    bytes.length > magic + 4 &&
    bytes[magic] === 0x41 &&
    bytes[magic + 1] === 0x52 &&
    bytes[magic + 2] === 0x4d &&
    bytes[magic + 3] === 0x64
  ) {
    kind = ImageKind.IMAGE;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const textOffset = v.getBigUint64(8, true);
    const imageSize = v.getBigUint64(16, true);
    if (imageSize !== 0n) {
      if (textOffset >= BigInt(ram.size) || imageSize > BigInt(ram.size)) {
        throw new VgicError(
          'INVALID_ADDRESS',
          `Image header text_offset 0x${textOffset.toString(16)} / image_size 0x${imageSize.toString(16)} ` +
            `do not fit in ${ramText(ram)}`,
        );
      }
      offset = Number(textOffset);
      kernelSize = Number(imageSize);
      if (offset < BOOTLOADER_MAX_SIZE) offset += 2 * MiB;
    }
  }
  // Old kernels leave image_size 0 and raw binaries have none: the file size is the best guess.
  if (kernelSize === 0) kernelSize = bytes.length;
  const addr = ram.base + offset;
  // QEMU copies the whole file even when image_size is smaller; both must fit.
  const span = Math.max(kernelSize, bytes.length);
  if (addr + span > ram.base + ram.size) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `${kind === ImageKind.IMAGE ? 'Image' : 'raw image'} of ${hex(span)} bytes at ${hex(addr)} ` +
        `does not fit in ${ramText(ram)}`,
    );
  }
  const imageHigh = addr + span;
  const initrdAddr = placeInitrd(ram, imageHigh, initrdSize);
  const dtbAddr = linuxDtbAddr(ram, imageHigh, initrdSize);
  checkDtbFits(ram, dtbAddr, dtbSize, kind);
  return {
    kind,
    segments: [{ addr, bytes, memSize: bytes.length }],
    entry: addr,
    imageLow: addr,
    imageHigh,
    initrdAddr,
    dtbAddr,
    x0: dtbAddr,
    qemuDtbAddr: dtbAddr,
    qemuX0: dtbAddr,
  };
}

/** Plans loading `bytes` into `ram` as QEMU's -kernel would; see the module comment. */
export function loadImage(bytes: Uint8Array, ram: RamRange, opts: LoadOptions = {}): LoadedImage {
  checkRam(ram);
  const dtbSize = opts.dtbSize ?? 0x10000;
  if (!Number.isSafeInteger(dtbSize) || dtbSize <= 0)
    bad(`dtbSize must be a positive integer, got ${dtbSize}`);
  const initrdSize = opts.initrdSize ?? 0;
  if (!Number.isSafeInteger(initrdSize) || initrdSize < 0)
    bad(`initrdSize must be an integer >= 0, got ${initrdSize}`);
  if (bytes.length === 0) bad('the image is empty');
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    return loadElf(bytes, ram, dtbSize, initrdSize);
  }
  if (
    bytes.length >= 4 &&
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0) === 0x27051956
  ) {
    bad('U-Boot uImage files are not supported: pass the ELF, the Image or a raw binary');
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let inflated: Uint8Array;
    try {
      inflated = gunzipSync(bytes, { maxOutputLength: Math.min(ram.size, MAX_GUNZIP_BYTES) });
    } catch (e) {
      bad(`gzip image does not inflate into RAM (${(e as Error).message})`);
    }
    if (inflated.length === 0) bad('the gzip image inflates to nothing');
    return loadLinux(inflated, ram, dtbSize, initrdSize);
  }
  return loadLinux(bytes, ram, dtbSize, initrdSize);
}

/** Copies the segments into a RAM buffer that starts at ramBase, zero-filling each .bss tail. */
export function copySegments(img: LoadedImage, ramBase: number, ramBytes: Uint8Array): void {
  for (const s of img.segments) {
    const at = s.addr - ramBase;
    if (at < 0 || at + s.memSize > ramBytes.length) {
      throw new VgicError('INVALID_ADDRESS', `segment at ${hex(s.addr)} is outside the RAM buffer`);
    }
    ramBytes.set(s.bytes, at);
    ramBytes.fill(0, at + s.bytes.length, at + s.memSize);
  }
}
