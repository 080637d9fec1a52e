/**
 * Small AArch64 guests for the machine tests: an assembly string becomes a flat binary (linked at
 * RAM + 0x80000, where the machine loads flat images) with the cross binutils, cached by content
 * hash under the OS temp directory. Also says what is missing when the machine tests cannot run.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUnicorn } from '../../src/machine/native.ts';

/** Where a flat binary is loaded: RAM base + 0x80000 (arm64 Image convention, QEMU's -kernel). */
export const FLAT_LOAD_ADDR = 0x40080000;

const CROSS = 'aarch64-linux-gnu-';

function hasTool(name: string): boolean {
  const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

let toolsMissing: string | undefined | null = null;

/** Undefined when guests can be assembled, else what is missing. */
export function asmUnavailable(): string | undefined {
  if (toolsMissing !== null) return toolsMissing;
  const missing = ['as', 'ld', 'objcopy'].map((t) => CROSS + t).filter((t) => !hasTool(t));
  toolsMissing =
    missing.length > 0 ? `${missing.join(', ')} not installed (binutils-aarch64-linux-gnu)` : undefined;
  return toolsMissing;
}

/** Undefined when the Unicorn addon loads, else its message. */
export function machineUnavailable(): string | undefined {
  try {
    loadUnicorn();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Why the machine tests that assemble guests must be skipped, or false when they can run. */
export function machineSkip(): string | false {
  return machineUnavailable() ?? asmUnavailable() ?? false;
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  }
}

export interface AssembleOptions {
  /** Link address of .text (default FLAT_LOAD_ADDR). */
  readonly base?: number;
  /** Return the ELF instead of the flat binary (then link at 0x40200000 or above: the DTB is at RAM base). */
  readonly elf?: boolean;
}

/**
 * Assembles `source` (GNU as syntax, AArch64) and links it at `base`; returns the flat binary
 * (or the ELF). The result is cached by content hash, so repeated runs only pay for new guests.
 */
export function assemble(source: string, opts: AssembleOptions = {}): Uint8Array {
  const base = opts.base ?? FLAT_LOAD_ADDR;
  const kind = opts.elf ? 'elf' : 'bin';
  const key = createHash('sha256').update(`${base}\0${kind}\0${source}`).digest('hex').slice(0, 32);
  const cacheDir = join(tmpdir(), 'vgic-guest-asm');
  const cached = join(cacheDir, `${key}.${kind}`);
  if (existsSync(cached)) return new Uint8Array(readFileSync(cached));
  mkdirSync(cacheDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'vgic-asm-'));
  try {
    writeFileSync(join(dir, 'g.S'), source.endsWith('\n') ? source : `${source}\n`);
    run(`${CROSS}as`, ['-o', 'g.o', 'g.S'], dir);
    run(
      `${CROSS}ld`,
      [
        '-nostdlib',
        '--build-id=none',
        '--no-warn-rwx-segments',
        `-Ttext=0x${base.toString(16)}`,
        '-e',
        '_start',
        '-o',
        'g.elf',
        'g.o',
      ],
      dir,
    );
    let out = 'g.elf';
    if (!opts.elf) {
      run(`${CROSS}objcopy`, ['-O', 'binary', 'g.elf', 'g.bin'], dir);
      out = 'g.bin';
    }
    const bytes = readFileSync(join(dir, out));
    // Atomic publish: tests in parallel processes may assemble the same guest.
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, cached);
    return new Uint8Array(bytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Common assembly pieces the guests share (macros; include at the top of a source). */
export const PRELUDE = `
  .equ UART, 0x09000000
  .equ GICD, 0x08000000
  .equ GITS, 0x08080000
  .equ GICR, 0x080A0000
  .equ PSCI_SYSTEM_OFF, 0x84000008
  .equ PSCI_SYSTEM_RESET, 0x84000009
  .equ PSCI_CPU_ON, 0xC4000003
  .equ PSCI_AFFINITY_INFO, 0xC4000004
  .equ PSCI_CPU_OFF, 0x84000002

  // putc w0 (clobbers x9)
  .macro putc_w0
    mov x9, #UART
    str w0, [x9]
  .endm
  // poweroff: PSCI SYSTEM_OFF
  .macro poweroff
    ldr x0, =PSCI_SYSTEM_OFF
    hvc #0
  .endm
`;

/**
 * Library routines appended to guests that use them: puts (x0 = NUL-terminated string), puthex
 * (x0 = value, printed as 0x + 16 hex digits), newline. They clobber x0..x4, x9, x10 and x30
 * is preserved by the caller (they are leaf routines: bl / ret).
 */
export const LIB = `
  .balign 4
puts:
  mov x9, #UART
1: ldrb w10, [x0], #1
  cbz w10, 2f
  str w10, [x9]
  b 1b
2: ret

puthex:
  mov x9, #UART
  mov w10, #'0'
  str w10, [x9]
  mov w10, #'x'
  str w10, [x9]
  mov x2, #60
3: lsr x3, x0, x2
  and x3, x3, #15
  cmp x3, #10
  add x4, x3, #'0'
  add x3, x3, #('a' - 10)
  csel x3, x4, x3, lo
  str w3, [x9]
  subs x2, x2, #4
  b.ge 3b
  ret

newline:
  mov x9, #UART
  mov w10, #10
  str w10, [x9]
  ret
`;
