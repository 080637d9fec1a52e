/**
 * Guest image loading (src/machine/image.ts): hand-built ELF64 files, malformed headers, arm64
 * Image headers, raw and gzip binaries, DTB placement; and a real ELF from aarch64-linux-gnu-gcc
 * when the cross compiler is installed. Expected addresses are those QEMU 7.2 uses (measured: PC
 * and x0 at the first guest instruction with -d cpu).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { VgicError } from '../src/arch/errors.ts';
import { copySegments, loadImage } from '../src/machine/image.ts';

const MiB = 1024 * 1024;
const RAM = { base: 0x4000_0000, size: 128 * MiB };

interface Phdr {
  type?: number;
  offset: number;
  vaddr?: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

/** A minimal ELF64 LE: header, program headers right after it, then `payload` at 0x1000. */
function elf(opts: {
  entry: number;
  phdrs: Phdr[];
  payload?: Uint8Array;
  machine?: number;
  type?: number;
  cls?: number;
  data?: number;
  phentsize?: number;
  phoff?: number;
  phnum?: number;
}): Uint8Array {
  const size = Math.max(0x1000 + (opts.payload?.length ?? 0), 64 + 56 * opts.phdrs.length);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, opts.cls ?? 2, opts.data ?? 1, 1]);
  v.setUint16(16, opts.type ?? 2, true);
  v.setUint16(18, opts.machine ?? 183, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(opts.entry), true);
  v.setBigUint64(32, BigInt(opts.phoff ?? 64), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, opts.phentsize ?? 56, true);
  v.setUint16(56, opts.phnum ?? opts.phdrs.length, true);
  opts.phdrs.forEach((p, i) => {
    const o = 64 + i * 56;
    if (o + 56 > b.length) return;
    v.setUint32(o, p.type ?? 1, true);
    v.setUint32(o + 4, 5, true);
    v.setBigUint64(o + 8, BigInt(p.offset), true);
    v.setBigUint64(o + 16, BigInt(p.vaddr ?? p.paddr), true);
    v.setBigUint64(o + 24, BigInt(p.paddr), true);
    v.setBigUint64(o + 32, BigInt(p.filesz), true);
    v.setBigUint64(o + 40, BigInt(p.memsz), true);
  });
  if (opts.payload) b.set(opts.payload, 0x1000);
  return b;
}

function image(textOffset: number, imageSize: number, len = 0x100): Uint8Array {
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x14000010, true); // b +64: over the header
  v.setBigUint64(8, BigInt(textOffset), true);
  v.setBigUint64(16, BigInt(imageSize), true);
  b.set([0x41, 0x52, 0x4d, 0x64], 0x38);
  return b;
}

const isErr = (code: string, re?: RegExp) => (e: unknown) =>
  e instanceof VgicError && e.code === code && (re === undefined || re.test(e.message));

test('ELF: PT_LOAD by p_paddr, bss zero-filled, DTB at the RAM base, QEMU x0 = 0', () => {
  const payload = Uint8Array.from({ length: 0x20 }, (_, i) => i + 1);
  const f = elf({
    entry: 0x4020_0000,
    phdrs: [
      { offset: 0x1000, paddr: 0x4020_0000, vaddr: 0xffff_0000_0000, filesz: 0x10, memsz: 0x10 },
      { type: 4, offset: 0, paddr: 0, filesz: 0, memsz: 0 }, // PT_NOTE: ignored
      { offset: 0x1010, paddr: 0x4021_0000, filesz: 0x10, memsz: 0x100 },
    ],
    payload,
  });
  const img = loadImage(f, RAM);
  assert.equal(img.kind, 'elf');
  assert.equal(img.entry, 0x4020_0000);
  assert.deepEqual(
    img.segments.map((s) => [s.addr, s.bytes.length, s.memSize]),
    [
      [0x4020_0000, 0x10, 0x10],
      [0x4021_0000, 0x10, 0x100],
    ],
  );
  assert.equal(img.imageLow, 0x4020_0000);
  assert.equal(img.imageHigh, 0x4021_0100);
  assert.equal(img.dtbAddr, RAM.base);
  assert.equal(img.x0, RAM.base);
  assert.equal(img.qemuDtbAddr, RAM.base);
  assert.equal(img.qemuX0, 0);

  const ram = new Uint8Array(RAM.size).fill(0xee, 0x21_0000, 0x21_0200);
  copySegments(img, RAM.base, ram);
  assert.deepEqual([...ram.subarray(0x20_0000, 0x20_0010)], [...payload.subarray(0, 0x10)]);
  assert.deepEqual([...ram.subarray(0x21_0000, 0x21_0010)], [...payload.subarray(0x10)]);
  assert.ok(
    ram.subarray(0x21_0010, 0x21_0100).every((x) => x === 0),
    'bss zeroed',
  );
  assert.equal(ram[0x21_0100], 0xee, 'nothing past memsz');
});

test('ELF at the RAM base or too close to it: the DTB goes above the image, QEMU has none in RAM', () => {
  const at = (paddr: number) =>
    loadImage(elf({ entry: paddr, phdrs: [{ offset: 0x1000, paddr, filesz: 0, memsz: 0x1000 }] }), RAM, {
      dtbSize: 0x2000,
    });
  const base = at(RAM.base);
  assert.equal(base.qemuDtbAddr, null);
  // initrd_start = RAM + 64 MiB (half of 128 MiB), aligned to 2 MiB.
  assert.equal(base.dtbAddr, 0x4400_0000);
  assert.equal(base.x0, 0x4400_0000);
  const close = at(RAM.base + 0x1000);
  assert.equal(close.qemuDtbAddr, null, 'QEMU refuses: the DTB does not fit below');
  assert.equal(close.dtbAddr, 0x4400_0000);
  assert.equal(at(RAM.base + 0x2000).dtbAddr, RAM.base, 'fits exactly below');
  assert.equal(at(RAM.base + 0x500_0000).dtbAddr, RAM.base, 'room below, however high the ELF');
  // An ELF at the base reaching past the middle of RAM: the DTB at the next 2 MiB after it.
  const big = loadImage(
    elf({ entry: RAM.base, phdrs: [{ offset: 0x1000, paddr: RAM.base, filesz: 0, memsz: 0x450_0001 }] }),
    RAM,
  );
  assert.equal(big.dtbAddr, 0x4460_0000);
});

test('ELF: segments outside RAM name the segment, its range and the RAM range', () => {
  const seg = (paddr: number, memsz: number) =>
    elf({ entry: RAM.base + 0x10_0000, phdrs: [{ offset: 0x1000, paddr, filesz: 0, memsz }] });
  assert.throws(
    () => loadImage(seg(0x4800_0000, 0x10), RAM),
    isErr(
      'INVALID_ADDRESS',
      /segment 0 \(PT_LOAD at 0x48000000\.\.0x48000010\) lies outside RAM 0x40000000\.\.0x48000000/,
    ),
  );
  assert.throws(() => loadImage(seg(0x3fff_f000, 0x2000), RAM), isErr('INVALID_ADDRESS', /segment 0/));
  assert.throws(() => loadImage(seg(0x47ff_fff0, 0x20), RAM), isErr('INVALID_ADDRESS'));
  assert.throws(
    () =>
      loadImage(
        elf({ entry: 0x1000, phdrs: [{ offset: 0x1000, paddr: RAM.base, filesz: 0, memsz: 4 }] }),
        RAM,
      ),
    isErr('INVALID_ADDRESS', /entry 0x1000/),
  );
});

test('ELF: malformed headers give VgicError, never RangeError', () => {
  const good = { entry: RAM.base, phdrs: [{ offset: 0x1000, paddr: RAM.base, filesz: 4, memsz: 4 }] };
  const arg = (re: RegExp) => isErr('INVALID_ARGUMENT', re);
  assert.throws(() => loadImage(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 2, 1), RAM), arg(/truncated/));
  assert.throws(() => loadImage(elf(good).subarray(0, 63), RAM), arg(/truncated/));
  assert.throws(() => loadImage(elf({ ...good, cls: 1 }), RAM), arg(/ELF64/));
  assert.throws(() => loadImage(elf({ ...good, data: 2 }), RAM), arg(/little-endian/));
  assert.throws(() => loadImage(elf({ ...good, machine: 40 }), RAM), arg(/EM_AARCH64/));
  assert.throws(() => loadImage(elf({ ...good, type: 3 }), RAM), arg(/ET_EXEC/));
  assert.throws(() => loadImage(elf({ ...good, phentsize: 32 }), RAM), arg(/e_phentsize/));
  assert.throws(() => loadImage(elf({ ...good, phnum: 0 }), RAM), arg(/no program headers/));
  assert.throws(() => loadImage(elf({ ...good, phnum: 0xffff }), RAM), arg(/PN_XNUM/));
  assert.throws(() => loadImage(elf({ ...good, phnum: 1000 }), RAM), arg(/run past/));
  assert.throws(() => loadImage(elf({ ...good, phoff: 0xffff_ffff_ffff }), RAM), arg(/run past/));
  assert.throws(() => loadImage(elf({ ...good, phoff: 2 ** 60 }), RAM), arg(/out of range/));
  const ph = (p: Partial<Phdr>) => elf({ ...good, phdrs: [{ ...good.phdrs[0], ...p }] });
  assert.throws(() => loadImage(ph({ filesz: 8, memsz: 4 }), RAM), arg(/exceeds p_memsz/));
  assert.throws(() => loadImage(ph({ offset: 0xfff, filesz: 2 }), RAM), arg(/run past/));
  assert.throws(() => loadImage(ph({ offset: 2 ** 52, filesz: 1 }), RAM), arg(/run past/));
  assert.throws(() => loadImage(ph({ filesz: 0, memsz: 0 }), RAM), arg(/no PT_LOAD/));
  assert.throws(() => loadImage(ph({ memsz: 2 ** 62 }), RAM), arg(/out of range/));
  assert.throws(() => loadImage(ph({ paddr: 2 ** 63 }), RAM), arg(/out of range/));
  const overlap = elf({
    entry: RAM.base,
    phdrs: [
      { offset: 0x1000, paddr: RAM.base, filesz: 0, memsz: 0x100 },
      { offset: 0x1000, paddr: RAM.base + 0xff, filesz: 0, memsz: 0x10 },
    ],
  });
  assert.throws(() => loadImage(overlap, RAM), arg(/overlaps/));
  assert.throws(() => loadImage(new Uint8Array(0), RAM), arg(/empty/));
  // Random corruption of a good header: only VgicError (or success) ever comes out.
  const base = elf(good);
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  for (let i = 0; i < 2000; i++) {
    const b = base.slice(0, 64 + 56 + (rnd() % 0x1100));
    for (let k = 0; k < 4; k++) b[rnd() % 120] = rnd() & 0xff;
    try {
      loadImage(b, RAM);
    } catch (e) {
      assert.ok(e instanceof VgicError, String(e));
    }
  }
});

test('arm64 Image: text_offset honoured as QEMU 7.2 does, DTB above it, x0 = DTB', () => {
  // Modern kernels: text_offset 0 -> RAM + 2 MiB (QEMU's boot stub owns the first 4 KiB).
  const modern = loadImage(image(0, 0x10_0000), RAM);
  assert.equal(modern.kind, 'image');
  assert.equal(modern.entry, 0x4020_0000);
  assert.equal(modern.dtbAddr, 0x4400_0000);
  assert.equal(modern.qemuX0, 0x4400_0000);
  assert.equal(modern.x0, 0x4400_0000);
  assert.equal(modern.imageHigh, 0x4030_0000, 'image_size, not file size');
  assert.equal(loadImage(image(0x80000, 0x10_0000), RAM).entry, 0x4008_0000);
  assert.equal(loadImage(image(0x800, 0x10000), RAM).entry, 0x4020_0800);
  assert.equal(loadImage(image(0x1000, 0x10000), RAM).entry, 0x4000_1000);
  // image_size 0 (before Linux 3.17): text_offset ignored, RAM + 0x80000.
  assert.equal(loadImage(image(0x1000, 0), RAM).entry, 0x4008_0000);
  // A big image pushes the DTB past its end.
  const big = loadImage(image(0, 0x500_0000), RAM);
  assert.equal(big.dtbAddr, 0x4520_0000);
  // With 1 GiB of RAM, initrd_start is RAM + 128 MiB.
  assert.equal(loadImage(image(0, 0x10000), { base: RAM.base, size: 1024 * MiB }).dtbAddr, 0x4800_0000);
  assert.throws(() => loadImage(image(0, 0x800_0000), RAM), isErr('INVALID_ADDRESS', /does not fit/));
  assert.throws(() => loadImage(image(2 ** 62, 1), RAM), isErr('INVALID_ADDRESS', /text_offset/));
  assert.throws(() => loadImage(image(0, 0x7e0_0000), RAM), isErr('INVALID_ADDRESS', /no room for the/));
  // The magic must not be the last bytes of the file (QEMU: size > 0x3c).
  assert.equal(loadImage(image(0, 0x1000, 0x3c), RAM).kind, 'raw');
});

test('raw and gzip binaries', () => {
  const raw = loadImage(Uint8Array.of(0, 0, 0, 0x14), RAM);
  assert.equal(raw.kind, 'raw');
  assert.equal(raw.entry, 0x4008_0000);
  assert.equal(raw.dtbAddr, 0x4400_0000);
  assert.equal(raw.qemuDtbAddr, 0x4400_0000);
  assert.deepEqual(
    raw.segments.map((s) => [s.addr, s.memSize]),
    [[0x4008_0000, 4]],
  );
  const gz = loadImage(gzipSync(image(0, 0x1000)), RAM);
  assert.equal(gz.kind, 'image');
  assert.equal(gz.entry, 0x4020_0000);
  assert.deepEqual([...gz.segments[0].bytes], [...image(0, 0x1000)]);
  assert.throws(
    () => loadImage(Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2), RAM),
    isErr('INVALID_ARGUMENT', /gzip/),
  );
  // A gzip bomb stops at the RAM size.
  const bomb = gzipSync(new Uint8Array(2 * MiB));
  assert.throws(() => loadImage(bomb, { base: RAM.base, size: MiB }), isErr('INVALID_ARGUMENT', /gzip/));
  assert.throws(
    () => loadImage(Uint8Array.of(0x27, 0x05, 0x19, 0x56, 0), RAM),
    isErr('INVALID_ARGUMENT', /uImage/),
  );
  assert.throws(() => loadImage(new Uint8Array(0x800_0000), RAM), isErr('INVALID_ADDRESS'));
});

test('ELF built by aarch64-linux-gnu-gcc', (t) => {
  if (spawnSync('aarch64-linux-gnu-gcc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    t.skip('aarch64-linux-gnu-gcc not on PATH');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vgic-image-'));
  try {
    const src = join(dir, 'start.S');
    writeFileSync(
      src,
      '.globl _start\n_start: ldr x1, =msg\n b .\n.data\nmsg: .asciz "hello"\n.bss\nbuf: .skip 4096\n',
    );
    const out = join(dir, 'k.elf');
    const r = spawnSync(
      'aarch64-linux-gnu-gcc',
      [
        '-static',
        '-no-pie',
        '-fno-pie',
        '-nostdlib',
        '-ffreestanding',
        '-Wl,--build-id=none',
        '-Wl,-Ttext=0x40200000',
        src,
        '-o',
        out,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const img = loadImage(new Uint8Array(readFileSync(out)), RAM);
    assert.equal(img.kind, 'elf');
    assert.equal(img.entry, 0x4020_0000);
    assert.equal(img.qemuX0, 0);
    assert.equal(img.dtbAddr, RAM.base);
    const ram = new Uint8Array(RAM.size);
    copySegments(img, RAM.base, ram);
    // The first instruction: ldr x1, <literal> (opcode 0x58000001 | imm19 << 5).
    const insn = new DataView(ram.buffer).getUint32(0x20_0000, true);
    assert.equal(insn & 0xff00001f, 0x58000001);
    const text = new TextDecoder().decode(ram);
    assert.ok(text.includes('hello\0'));
    assert.ok(img.imageHigh - img.imageLow >= 4096, 'bss counted');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
