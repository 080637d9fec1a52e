/**
 * vgic's machine (src/machine/machine.ts) running real guest code on Unicorn: output and the ways a
 * run ends (PSCI, semihosting, EXIT lines), robustness against guests that fault, spin, idle or
 * write garbage to every GIC frame (each ends with a report, never a hang or a host exception),
 * SMP through PSCI, and the timers. Guests are small assembly programs (test/helpers/guest-asm.ts).
 * Skipped, with the reason, where the CPU addon or the cross binutils are missing.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VgicError } from '../src/arch/errors.ts';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP1,
  GICR_IGROUPR0,
  GICR_ISENABLER0,
  GICR_ISPENDR0,
} from '../src/arch/gicv3.ts';
import { Machine, type MachineOptions, type RunReport } from '../src/machine/machine.ts';
import {
  assemble,
  FLAT_LOAD_ADDR,
  LIB,
  machineSkip,
  machineUnavailable,
  PRELUDE,
} from './helpers/guest-asm.ts';

const skip = machineSkip();

const GUEST_DIR = fileURLToPath(new URL('../../guest', import.meta.url));

/** Why the C guests cannot be used here, or false. */
function cGuestSkip(): string | false {
  if (skip) return skip;
  if (spawnSync('aarch64-linux-gnu-gcc', ['--version'], { stdio: 'ignore' }).status !== 0)
    return 'aarch64-linux-gnu-gcc not installed';
  if (spawnSync('make', ['--version'], { stdio: 'ignore' }).status !== 0) return 'make not installed';
  return false;
}

/** Builds guest/ (incrementally) into a directory under the OS temp dir; returns it. */
function buildCGuests(): string {
  const out = join(tmpdir(), 'vgic-guest-build');
  const r = spawnSync('make', ['-s', '-C', GUEST_DIR, `O=${out}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C guest failed:\n${r.stderr}${r.stdout}`);
  return out;
}

interface Result {
  readonly report: RunReport;
  readonly out: string;
  readonly wallMs: number;
}

/** Assembles `body` (with the prelude and library), runs it to the end, closes the machine. */
async function runAsm(body: string, opts: MachineOptions = {}): Promise<Result> {
  const image = assemble(`${PRELUDE}\n  .text\n  .global _start\n${body}\n${LIB}\n  .ltorg\n`);
  return runImage(image, opts);
}

async function runImage(image: Uint8Array, opts: MachineOptions = {}): Promise<Result> {
  const chunks: Buffer[] = [];
  const m = new Machine({ timeLimitMs: 5000, output: (b) => chunks.push(Buffer.from(b)), ...opts });
  try {
    m.load(image);
    const t0 = performance.now();
    const report = await m.run();
    return { report, out: Buffer.concat(chunks).toString('latin1'), wallMs: performance.now() - t0 };
  } finally {
    m.close();
  }
}

const ESR_EC = (esr: number) => esr >>> 26;
const ESR_IL = 1 << 25;
const EC_UNKNOWN = 0x00;
const EC_SVC64 = 0x15;
const EC_IABT = 0x21;
const EC_DABT = 0x25;
const EC_BRK64 = 0x3c;
/** Nothing at this address on QEMU virt (between the virtio-mmio transports and the platform bus). */
const UNMAPPED = 0x0b000000;

/**
 * machine.ts exception(): after SYS_EXIT it calls uc.stop() right after setReg(PC): Unicorn drops
 * a stop request made in the same hook as a PC write, and the native block hook no longer counts the
 * budget once `stopped` is set, so the guest runs on (forever, if it spins) and the time limit
 * never fires.
 */

/** Runs `image` in a child Node process with a host-side kill timer; its report on stdout as JSON. */
function spawnChild(image: Uint8Array, timeLimitMs: number, killMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'vgic-mtest-'));
  try {
    const img = join(dir, 'g.bin');
    writeFileSync(img, image);
    const machineUrl = new URL('../src/machine/machine.js', import.meta.url).href;
    const script = `
      import { readFileSync } from 'node:fs';
      const { Machine } = await import(${JSON.stringify(machineUrl)});
      const m = new Machine({ timeLimitMs: ${timeLimitMs}, output: () => {} });
      m.load(readFileSync(${JSON.stringify(img)}));
      const r = await m.run();
      m.close();
      process.stdout.write(JSON.stringify({ reason: r.reason, status: r.status }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: killMs,
      killSignal: 'SIGKILL',
    });
    return { stdout: r.stdout, stderr: r.stderr, signal: r.signal, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A vector table whose current-EL SPx sync entry branches to `sync`, every other entry to `unexpected`. */
const VECTORS = `
  .balign 0x800
vectors:
  .rept 4
  .balign 0x80
  b unexpected
  .endr
  .balign 0x80
  b sync
  .rept 11
  .balign 0x80
  b unexpected
  .endr
unexpected:
  adr x0, unexpected_msg
  bl puts
  poweroff
unexpected_msg: .asciz "unexpected vector\n"
  .balign 4
`;

/** Prints "ESR x FAR y ELR z" from the sync handler (x19..x21 survive puthex). */
const PRINT_SYNDROME = `
  mrs x19, esr_el1
  mrs x20, far_el1
  mrs x21, elr_el1
  adr x0, s_esr
  bl puts
  mov x0, x19
  bl puthex
  adr x0, s_far
  bl puts
  mov x0, x20
  bl puthex
  adr x0, s_elr
  bl puts
  mov x0, x21
  bl puthex
  bl newline
`;
const SYNDROME_STRINGS = `
s_esr: .asciz "ESR "
s_far: .asciz " FAR "
s_elr: .asciz " ELR "
  .balign 4
`;
const h16 = (v: number) => `0x${v.toString(16).padStart(16, '0')}`;

describe('machine: output and how a run ends', () => {
  it('captures UART output exactly and ends on PSCI SYSTEM_OFF with status 0', { skip }, async () => {
    const { report, out } = await runAsm(`
_start:
  adr x0, msg
  bl puts
  poweroff
  b .
msg: .asciz "Hello, vgic!\\n\\tbytes \\001\\377 end"
`);
    assert.equal(out, 'Hello, vgic!\n\tbytes \x01\xff end');
    assert.equal(report.reason, 'system-off');
    assert.equal(report.status, 0);
    assert.equal(report.fault, undefined);
    assert.match(report.message, /SYSTEM_OFF/);
    assert.ok(report.blocks[0] > 0);
  });

  it('takes the status of a final EXIT: STATUS=n line', { skip }, async () => {
    const { report, out } = await runAsm(`
_start:
  adr x0, msg
  bl puts
  poweroff
msg: .asciz "EXIT: STATUS=3\\nmore\\nEXIT: STATUS=7\\n"
`);
    assert.equal(out, 'EXIT: STATUS=3\nmore\nEXIT: STATUS=7\n');
    assert.equal(report.reason, 'system-off');
    assert.equal(report.status, 7);
  });

  it('ends on semihosting SYS_EXIT with its status, and SYS_WRITE0 reaches the sink', { skip }, async () => {
    const { report, out } = await runAsm(`
_start:
  mov w0, #0x04        // SYS_WRITE0
  adr x1, msg
  hlt #0xf000
  mov w0, #0x18        // SYS_EXIT
  adr x1, block
  hlt #0xf000
  // Past the exit: must print nothing (the run has ended). PSCI stops a CPU the run failed to stop.
  adr x0, bad
  bl puts
  poweroff
  .balign 8
block: .quad 0x20026, 3
msg: .asciz "semihosted\\n"
bad: .asciz "after exit\\n"
`);
    assert.equal(out, 'semihosted\n');
    assert.equal(report.reason, 'semihosting-exit');
    assert.equal(report.status, 3);
    assert.equal(report.fault, undefined);
  });

  it('runs no guest instruction after SYS_EXIT', { skip }, async () => {
    const { out, report } = await runAsm(`
_start:
  mov w0, #0x18
  adr x1, block
  hlt #0xf000
  adr x0, bad
  bl puts
  poweroff
  .balign 8
block: .quad 0x20026, 3
bad: .asciz "after exit\n"
`);
    assert.equal(report.reason, 'semihosting-exit');
    assert.equal(out, '');
  });

  it('a guest that spins after SYS_EXIT does not hang the host', { skip }, () => {
    // In a child process: the bug is an endless loop inside the native run, which no timer can cut.
    const image = assemble(`${PRELUDE}
  .text
  .global _start
_start:
  mov w0, #0x18
  adr x1, block
  hlt #0xf000
  b .
  .balign 8
block: .quad 0x20026, 3
`);
    const r = spawnChild(image, 300, 4000);
    assert.equal(r.signal, null, 'the child was killed: the run never returned');
    assert.match(r.stdout, /"reason":"semihosting-exit","status":3/);
  });

  it('SYS_EXIT with another reason than ApplicationExit is status 1', { skip }, async () => {
    const { report } = await runAsm(`
_start:
  mov w0, #0x18
  adr x1, block
  hlt #0xf000
  poweroff
  .balign 8
block: .quad 0x20023, 9
`);
    assert.equal(report.reason, 'semihosting-exit');
    assert.equal(report.status, 1);
  });

  it('ends on PSCI SYSTEM_RESET', { skip }, async () => {
    const { report } = await runAsm(`
_start:
  ldr x0, =PSCI_SYSTEM_RESET
  hvc #0
  b .
`);
    assert.equal(report.reason, 'system-reset');
    assert.equal(report.status, 0);
  });

  it('passes the DTB address in x0 and PSCI_VERSION returns 1.1', { skip }, async () => {
    const { report, out } = await runAsm(`
_start:
  mov x20, x0
  ldr w0, [x20]         // FDT magic, big-endian 0xd00dfeed
  rev w0, w0
  bl puthex
  bl newline
  ldr x0, =0x84000000
  hvc #0
  bl puthex
  bl newline
  poweroff
`);
    assert.equal(report.reason, 'system-off');
    assert.equal(out, '0x00000000d00dfeed\n0x0000000000010001\n');
  });
});

describe('machine: robustness (every bad guest ends with a report)', () => {
  it('a guest that arms hardware breakpoints and watchpoints neither crashes the host nor loses the values', {
    skip,
  }, async () => {
    // Unicorn crashes the process when QEMU inserts a breakpoint from translated code: the debug
    // registers are kept by the addon and never reach QEMU (the breakpoint does not fire).
    const { report, out } = await runAsm(`
_start:
  adr x1, 2f
  msr dbgbvr0_el1, x1
  mov x0, #((0xf << 5) | (1 << 1) | 1)
  msr dbgbcr0_el1, x0
  msr dbgwvr1_el1, x1
  mov x0, #((0xff << 5) | (3 << 3) | (1 << 1) | 1)
  msr dbgwcr1_el1, x0
  msr oslar_el1, xzr
  mrs x0, mdscr_el1
  orr x0, x0, #(1 << 15)
  orr x0, x0, #(1 << 13)
  msr mdscr_el1, x0
  msr daifclr, #8
  isb
  bl 2f
  ldr x2, [x1]
  mrs x0, dbgbcr0_el1
  bl puthex
  bl newline
  mrs x0, dbgwcr1_el1
  bl puthex
  bl newline
  poweroff
2: ret
`);
    assert.equal(report.reason, 'system-off', report.message);
    assert.equal(out, `${h16(0x1e3)}\n${h16(0x1ffb)}\n`);
  });

  it('a guest that spins forever ends at the time limit with its PC', { skip }, async () => {
    const { report, wallMs } = await runAsm(
      `
_start:
  nop
spin:
  b spin
`,
      { timeLimitMs: 300 },
    );
    assert.equal(report.reason, 'time-limit');
    assert.equal(report.status, 124);
    assert.match(report.message, /time limit of 300 ms/);
    assert.match(
      report.message,
      new RegExp(`vCPU 0 running at PC 0x${(FLAT_LOAD_ADDR + 4).toString(16)}\\b`),
    );
    assert.ok(report.elapsedMs >= 300, `elapsed ${report.elapsedMs}`);
    assert.ok(wallMs < 5000, `the run took ${wallMs} ms`);
    assert.ok(report.blocks[0] > 1000);
  });

  it('a load from an unmapped address without vectors: fault report with ESR, FAR and PC', {
    skip,
  }, async () => {
    const { report, out } = await runAsm(
      `
_start:
  mov x1, #${UNMAPPED}
  ldr x0, [x1]
  adr x0, msg
  bl puts
  poweroff
msg: .asciz "not reached\\n"
`,
      { preciseAborts: true },
    );
    assert.equal(out, '');
    assert.equal(report.reason, 'fault');
    assert.equal(report.status, 125);
    const f = report.fault!;
    assert.equal(f.cpu, 0);
    assert.equal(f.pc, FLAT_LOAD_ADDR + 4);
    assert.equal(f.far, UNMAPPED);
    assert.equal(ESR_EC(f.esr!), EC_DABT);
    assert.equal(f.esr! & 0x3f, 0x10, 'DFSC: synchronous external abort');
    assert.equal(f.esr! & (1 << 6), 0, 'WnR clear for a load');
    assert.equal(f.esr! & ESR_IL, ESR_IL);
    assert.match(report.message, /PC 0x40080004/);
    assert.match(report.message, /FAR_EL1 0xb000000/);
    assert.match(report.message, /VBAR_EL1 \(0x0\) has no vectors/);
    assert.equal(report.syncExceptions, 0);
  });

  it('a store to an unmapped address sets WnR', { skip }, async () => {
    const { report } = await runAsm(
      `
_start:
  mov x1, #${UNMAPPED}
  add x1, x1, #0x18
  str w0, [x1]
  poweroff
`,
      { preciseAborts: true },
    );
    assert.equal(report.reason, 'fault');
    assert.equal(report.fault!.pc, FLAT_LOAD_ADDR + 8);
    assert.equal(report.fault!.far, UNMAPPED + 0x18);
    assert.equal(report.fault!.esr, ((EC_DABT << 26) | ESR_IL | (1 << 6) | 0x10) >>> 0);
  });

  it('with vectors installed the guest handler sees ESR, FAR and ELR, and resumes', { skip }, async () => {
    const { report, out } = await runAsm(
      `
_start:
  adr x0, vectors
  msr vbar_el1, x0
  isb
  mov x1, #${UNMAPPED}
  add x1, x1, #0x40
fault:
  ldr x0, [x1]
  adr x0, resumed
  bl puts
  poweroff
resumed: .asciz "resumed\\n"
  .balign 4
sync:
  ${PRINT_SYNDROME}
  mrs x0, elr_el1
  add x0, x0, #4
  msr elr_el1, x0
  eret
${SYNDROME_STRINGS}
${VECTORS}
`,
      { preciseAborts: true },
    );
    const elr = FLAT_LOAD_ADDR + 20;
    const esr = ((EC_DABT << 26) | ESR_IL | 0x10) >>> 0;
    assert.equal(out, `ESR ${h16(esr)} FAR ${h16(UNMAPPED + 0x40)} ELR ${h16(elr)}\nresumed\n`);
    assert.equal(report.reason, 'system-off');
    assert.equal(report.syncExceptions, 1);
  });

  it('an instruction fetch from unmapped memory is an instruction abort (EC 0x21)', { skip }, async () => {
    const { report } = await runAsm(`
_start:
  mov x1, #${UNMAPPED}
  blr x1
  poweroff
`);
    assert.equal(report.reason, 'fault');
    assert.equal(report.status, 125);
    const f = report.fault!;
    assert.equal(ESR_EC(f.esr!), EC_IABT);
    assert.equal(f.esr! & 0x3f, 0x10);
    assert.equal(f.pc, UNMAPPED);
    assert.equal(f.far, UNMAPPED);
    assert.match(report.message, /instruction abort at 0xb000000/);
  });

  it('a fault inside the exception vectors ends the run instead of looping', { skip }, async () => {
    const { report, out, wallMs } = await runAsm(`
_start:
  adr x0, vectors
  msr vbar_el1, x0
  isb
  mov x1, #${UNMAPPED}
  ldr x0, [x1]
  poweroff
  .balign 0x800
vectors:
  .balign 0x80
  .space 0x200
  ldr x2, [x1]          // the sync handler faults again at vectors + 0x200
  b .
`);
    assert.equal(out, '');
    assert.equal(report.reason, 'fault');
    assert.equal(report.status, 125);
    assert.match(report.message, /inside the exception vectors/);
    assert.equal(report.syncExceptions, 1, 'the first abort was delivered, the second stopped the run');
    assert.equal(report.fault!.far, UNMAPPED);
    assert.equal(ESR_EC(report.fault!.esr!), EC_DABT);
    assert.ok(wallMs < 5000);
  });

  it('UDF, SVC and BRK reach the sync vector with their syndromes', { skip }, async () => {
    const { report, out } = await runAsm(`
_start:
  adr x0, vectors
  msr vbar_el1, x0
  isb
i_udf:
  udf #0x1234
i_svc:
  svc #0x42
i_brk:
  brk #0x7
  adr x0, done
  bl puts
  poweroff
done: .asciz "done\\n"
  .balign 4
sync:
  ${PRINT_SYNDROME}
  lsr x0, x19, #26
  cmp x0, #0x15          // SVC: ELR is already past the instruction
  b.eq 1f
  add x21, x21, #4
  msr elr_el1, x21
1: eret
${SYNDROME_STRINGS}
${VECTORS}
`);
    const at = (n: number) => FLAT_LOAD_ADDR + 12 + 4 * n;
    const line = (esr: number, elr: number) => `ESR ${h16(esr >>> 0)} FAR ${h16(0)} ELR ${h16(elr)}\n`;
    assert.equal(
      out,
      line((EC_UNKNOWN << 26) | ESR_IL, at(0)) +
        line((EC_SVC64 << 26) | ESR_IL | 0x42, at(1) + 4) +
        line((EC_BRK64 << 26) | ESR_IL | 0x7, at(2)) +
        'done\n',
    );
    assert.equal(report.reason, 'system-off');
    assert.equal(report.syncExceptions, 3);
  });

  it('UDF without vectors is a fault report with EC 0', { skip }, async () => {
    const { report } = await runAsm(`
_start:
  nop
  udf #0
`);
    assert.equal(report.reason, 'fault');
    assert.equal(report.fault!.pc, FLAT_LOAD_ADDR + 4);
    assert.equal(report.fault!.esr, ESR_IL);
    assert.match(report.message, /undefined instruction/);
  });

  it('garbage of every size at every offset of every GIC frame and the UART: the run ends normally', {
    skip,
  }, async () => {
    const { report, out } = await runAsm(
      `
_start:
  ldr x20, =0x243f6a8885a308d3     // LCG state
  ldr x21, =6364136223846793005
  ldr x22, =1442695040888963407
  ldr x23, =GICD
  mov x24, #0x10000
  bl garbage
  ldr x23, =GICR
  mov x24, #0x40000                // two vCPUs' redistributors
  bl garbage
  ldr x23, =GITS
  mov x24, #0x20000
  bl garbage
  ldr x23, =UART
  mov x24, #0x1000
  bl garbage
  adr x0, done
  bl puts
  poweroff
done: .asciz "\\nsurvived\\n"
  .balign 4
// x23 base, x24 size: every 4-byte offset gets a 32-bit store; then a store of a random size
// (1, 2, 4, 8 bytes) at a random misalignment (0..3) and a load of a random size there, when
// they stay inside the frame.
garbage:
  mov x25, #0
1:
  madd x20, x20, x21, x22
  lsr x26, x20, #32
  add x27, x23, x25
  str w26, [x27]
  lsr x28, x20, #60
  and x28, x28, #3
  add x27, x27, x28
  add x13, x25, x28
  add x13, x13, #8
  cmp x13, x24
  b.hi 3f
  lsr x12, x20, #56
  and x12, x12, #3
  cmp x12, #0
  b.ne 4f
  strb w26, [x27]
  b 5f
4: cmp x12, #1
  b.ne 6f
  strh w26, [x27]
  b 5f
6: cmp x12, #2
  b.ne 7f
  str w26, [x27]
  b 5f
7: str x20, [x27]
5: lsr x12, x20, #52
  and x12, x12, #3
  cmp x12, #0
  b.ne 4f
  ldrb w13, [x27]
  b 3f
4: cmp x12, #1
  b.ne 6f
  ldrh w13, [x27]
  b 3f
6: cmp x12, #2
  b.ne 7f
  ldr w13, [x27]
  b 3f
7: ldr x13, [x27]
3: add x25, x25, #4
  cmp x25, x24
  b.lo 1b
  ret
`,
      { smp: 2, timeLimitMs: 20_000 },
    );
    assert.equal(report.reason, 'system-off', report.message);
    assert.equal(report.status, 0);
    assert.ok(out.endsWith('\nsurvived\n'), JSON.stringify(out.slice(-40)));
    assert.equal(report.syncExceptions, 0);
    const g = report.gic;
    // The counters these accesses move: reserved offsets, bad sizes / alignments, read-only registers.
    assert.ok(g.mmioUnmapped > 1000, `mmioUnmapped ${g.mmioUnmapped}`);
    assert.ok(g.mmioBadAccess > 100, `mmioBadAccess ${g.mmioBadAccess}`);
    assert.ok(g.mmioReadOnlyWrite > 0, `mmioReadOnlyWrite ${g.mmioReadOnlyWrite}`);
    // Every GIC access was an exit of vCPU 0 (a 32-bit store per word, plus the random ones).
    assert.ok(g.vcpus[0].exits >= (0x10000 + 0x40000 + 0x20000) / 4, `exits ${g.vcpus[0].exits}`);
    assert.equal(g.vcpus[1].exits, 0);
  });

  it('garbage ITS commands through CBASER/CWRITER: processed, and the run ends normally', {
    skip,
  }, async () => {
    const { report, out } = await runAsm(`
_start:
  ldr x20, =0x13198a2e03707344
  ldr x21, =6364136223846793005
  ldr x22, =1442695040888963407
  ldr x23, =GITS
  ldr x24, =0x40400000       // command queue (64K aligned, as KVM wants)
  mov x1, #1
  lsl x1, x1, #63            // Valid
  orr x0, x1, x24            // CBASER: Valid, one 4K page
  str x0, [x23, #0x80]
  ldr x0, =0x40410000
  orr x0, x0, x1
  orr x0, x0, #3
  str x0, [x23, #0x100]      // BASER0: device table, 4 pages
  ldr x0, =0x40420000
  orr x0, x0, x1
  str x0, [x23, #0x108]      // BASER1: collection table
  str xzr, [x23, #0x88]      // CWRITER = 0
  mov w0, #1
  str w0, [x23]              // GITS_CTLR.Enabled
  mov x25, #0
  mov x19, #8                // rounds of 32 commands: the queue wraps twice
round:
  mov x26, #32
cmd:
  add x27, x24, x25
  madd x20, x20, x21, x22
  str x20, [x27]
  madd x20, x20, x21, x22
  str x20, [x27, #8]
  madd x20, x20, x21, x22
  str x20, [x27, #16]
  madd x20, x20, x21, x22
  str x20, [x27, #24]
  ldrb w0, [x27]
  and w0, w0, #0x0f          // mostly real command numbers
  strb w0, [x27]
  add x25, x25, #32
  and x25, x25, #0xfff
  subs x26, x26, #1
  b.ne cmd
  dsb sy
  str x25, [x23, #0x88]      // CWRITER
  ldr x0, [x23, #0x90]       // CREADR
  bl puthex
  bl newline
  subs x19, x19, #1
  b.ne round
  ldr w0, [x23]
  bl puthex
  bl newline
  poweroff
`);
    assert.equal(report.reason, 'system-off', report.message);
    // The ITS ran each batch synchronously in the CWRITER write: CREADR caught up every time.
    const expected = [0x400, 0x800, 0xc00, 0, 0x400, 0x800, 0xc00, 0].map((v) => `${h16(v)}\n`).join('');
    assert.equal(out, `${expected}${h16(0x80000001)}\n`, 'GITS_CTLR: enabled, quiescent');
  });

  it('a guest that re-arms the timer and sends SGIs forever ends at the time limit', { skip }, async () => {
    const { report, wallMs } = await runAsm(
      `
_start:
  mrs x0, S3_0_C12_C12_5
  orr x0, x0, #1
  msr S3_0_C12_C12_5, x0       // ICC_SRE_EL1.SRE
  mov x0, #1
  msr S3_0_C12_C12_7, x0       // ICC_IGRPEN1_EL1
  mov w0, #0xff
  msr S3_0_C4_C6_0, x0         // ICC_PMR_EL1
  ldr x1, =GICR
  str wzr, [x1, #0x14]         // GICR_WAKER
  ldr x1, =(GICR + 0x10000)
  mov w0, #-1
  str w0, [x1, #0x80]          // IGROUPR0
  str w0, [x1, #0x100]         // ISENABLER0: every SGI and PPI
  ldr x2, =0x01000001          // SGI 1 to Aff0 0
loop:
  msr S3_0_C12_C11_5, x2       // ICC_SGI1R_EL1
  mov x3, #50
  msr cntv_tval_el0, x3
  mov x3, #1
  msr cntv_ctl_el0, x3
  mrs x4, S3_0_C12_C12_0       // ICC_IAR1_EL1
  msr S3_0_C12_C12_1, x4       // ICC_EOIR1_EL1
  b loop
`,
      { timeLimitMs: 400 },
    );
    assert.equal(report.reason, 'time-limit');
    assert.equal(report.status, 124);
    assert.ok(wallMs < 5000, `the run took ${wallMs} ms`);
    assert.ok(report.gic.vcpus[0].exits > 1000, `exits ${report.gic.vcpus[0].exits}`);
  });

  it('WFI with nothing to wake it and no input ends as idle', { skip }, async () => {
    const { report, wallMs } = await runAsm(`
_start:
  wfi
  b _start
`);
    assert.equal(report.reason, 'idle');
    assert.equal(report.status, 126);
    assert.match(report.message, /vCPU 0 in WFI/);
    assert.ok(wallMs < 2000, `idle detected after ${wallMs} ms`);
  });

  it('every vCPU off ends as cpus-off', { skip }, async () => {
    const { report } = await runAsm(`
_start:
  ldr x0, =PSCI_CPU_OFF
  hvc #0
  b .
`);
    assert.equal(report.reason, 'cpus-off');
    assert.equal(report.status, 0);
  });
});

describe('machine: SMP through PSCI', () => {
  it('CPU_ON starts vCPU 1 with its context; AFFINITY_INFO, ALREADY_ON, INVALID_PARAMETERS', {
    skip,
  }, async () => {
    const { report, out } = await runAsm(
      `
_start:
  ldr x0, =PSCI_AFFINITY_INFO
  mov x1, #1
  mov x2, #0
  hvc #0
  bl puthex                    // 1: OFF
  bl newline
  ldr x0, =PSCI_CPU_ON
  mov x1, #1
  adr x2, secondary
  ldr x3, =0x1234abcd
  hvc #0
  bl puthex                    // 0: SUCCESS
  bl newline
  adr x5, flag
1: ldr x6, [x5]
  cbz x6, 1b
  ldr x0, [x5, #8]             // the secondary's MPIDR
  bl puthex
  bl newline
  ldr x0, [x5]                 // its x0: the context
  bl puthex
  bl newline
  ldr x0, =PSCI_AFFINITY_INFO
  mov x1, #1
  mov x2, #0
  hvc #0
  bl puthex                    // 0: ON
  bl newline
  ldr x0, =PSCI_CPU_ON
  mov x1, #1
  adr x2, secondary
  hvc #0
  bl puthex                    // -4: ALREADY_ON
  bl newline
  ldr x0, =PSCI_CPU_ON
  mov x1, #7
  adr x2, secondary
  hvc #0
  bl puthex                    // -2: INVALID_PARAMETERS (no such MPIDR)
  bl newline
  poweroff
secondary:
  mrs x7, mpidr_el1
  adr x5, flag
  str x7, [x5, #8]
  dmb ish
  str x0, [x5]
2: b 2b
  .balign 4096
flag: .quad 0, 0
`,
      { smp: 2 },
    );
    assert.equal(report.reason, 'system-off', report.message);
    assert.equal(
      out,
      [1, 0, 0x80000001, 0x1234abcd, 0].map((v) => `${h16(v)}\n`).join('') +
        `0xfffffffffffffffc\n0xfffffffffffffffe\n`,
    );
    assert.ok(report.blocks[1] > 0, 'vCPU 1 ran');
  });

  it('the GIC sees PSCI power states: CPU_ON brings a vCPU online, CPU_OFF takes it offline; explain names it', {
    skip,
  }, async () => {
    // vCPU 0 starts vCPU 1, which powers itself off; vCPU 2 is never started.
    const image = assemble(`${PRELUDE}
  .text
  .global _start
_start:
  ldr x0, =PSCI_CPU_ON
  mov x1, #1
  adr x2, secondary
  hvc #0
1: ldr x0, =PSCI_AFFINITY_INFO
  mov x1, #1
  mov x2, #0
  hvc #0
  cbz x0, 1b                   // until vCPU 1 is OFF again (AFFINITY_INFO 1)
  poweroff
secondary:
  ldr x0, =PSCI_CPU_OFF
  hvc #0
  b .
${LIB}
  .ltorg
`);
    const m = new Machine({ smp: 3, timeLimitMs: 5000, output: () => {} });
    try {
      m.load(image);
      assert.deepEqual(
        [0, 1, 2].map((k) => m.gic.vcpu(k).online),
        [true, false, false],
        'only the boot CPU is on before the run',
      );
      const report = await m.run();
      assert.equal(report.reason, 'system-off', report.message);
      assert.ok(report.blocks[1] > 0, 'vCPU 1 ran');
      assert.deepEqual(
        m.gic.dumpState({ maxLpis: 0 }).vcpus.map((v) => v.online),
        [true, false, false],
      );
      // An SGI to offline vCPU 2: pending, enabled, routed; the reason is its power state.
      m.gic.writeDistReg(GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
      m.gic.writeRedistReg(2, GICR_IGROUPR0, 1 << 1);
      m.gic.writeRedistReg(2, GICR_ISENABLER0, 1 << 1);
      m.gic.writeRedistReg(2, GICR_ISPENDR0, 1 << 1);
      assert.match(m.gic.explain(1, 2).reason, /^target vCPU 2 is offline \(powered off/);
    } finally {
      m.close();
    }
  });

  /** vCPU 0 starts 1..3; each adds 1 to a shared counter n times with LDXR/STXR; 0 prints the sum. */
  const counterGuest = (n: number) => `
_start:
  mov x19, #1
on:
  ldr x0, =PSCI_CPU_ON
  mov x1, x19
  adr x2, worker
  mov x3, x19
  hvc #0
  add x19, x19, #1
  cmp x19, #4
  b.lo on
  bl work
  adr x5, done
1: ldr x6, [x5]
  cmp x6, #4
  b.ne 1b
  adr x5, counter
  ldr x0, [x5]
  bl puthex
  bl newline
  poweroff
worker:
  bl work
  ldr x0, =PSCI_CPU_OFF
  hvc #0
  b .
work:
  adr x5, counter
  ldr x7, =${n}
2: ldxr x6, [x5]
  b 4f                         // a block boundary between LDXR and STXR: a slice may end there
4: add x6, x6, #1
  stxr w8, x6, [x5]
  cbnz w8, 2b
  subs x7, x7, #1
  b.ne 2b
  adr x5, done
3: ldxr x6, [x5]
  add x6, x6, #1
  stxr w8, x6, [x5]
  cbnz w8, 3b
  ret
  .ltorg
  .balign 4096
counter: .quad 0
  .balign 64
done: .quad 0
`;

  for (const n of [10_000, 100_000]) {
    it(`LDXR/STXR increments from 4 vCPUs are atomic (4 x ${n})`, { skip }, async () => {
      const { report, out } = await runAsm(counterGuest(n), { smp: 4, timeLimitMs: 20_000 });
      assert.equal(report.reason, 'system-off', report.message);
      assert.equal(out, `${h16(4 * n)}\n`);
      // Each loop is 3 blocks: every vCPU ran past a slice (20000 blocks), so the vCPUs interleaved.
      for (let k = 0; k < 4; k++)
        assert.ok(report.blocks[k] > 3 * n, `vCPU ${k}: ${report.blocks[k]} blocks`);
    });
  }
});

/** The physical timer (CNTP_*, PPI 30): GICv3 set-up, TVAL 1 ms, WFI with IRQs masked, ack INTID 30. */
/** Guest set-up: the distributor (ARE, Group 1), this CPU's redistributor awake, every SGI/PPI in
 * Group 1, PPI `ppi` enabled, the CPU interface on (SRE, PMR 0xff, IGRPEN1). */
const gicOnWithPpi = (ppi: number) => `  ldr x1, =GICD
  mov w0, #0x12
  str w0, [x1]                 // GICD_CTLR: ARE | EnableGrp1
  ldr x1, =GICR
  str wzr, [x1, #0x14]         // GICR_WAKER.ProcessorSleep = 0
1: ldr w0, [x1, #0x14]
  tbnz w0, #2, 1b              // ChildrenAsleep
  ldr x1, =(GICR + 0x10000)
  mov w0, #-1
  str w0, [x1, #0x80]          // IGROUPR0: group 1
  mov w0, #(1 << ${ppi})
  str w0, [x1, #0x100]         // ISENABLER0
  mrs x0, S3_0_C12_C12_5
  orr x0, x0, #1
  msr S3_0_C12_C12_5, x0       // ICC_SRE_EL1.SRE
  mov x0, #0xff
  msr S3_0_C4_C6_0, x0         // ICC_PMR_EL1
  mov x0, #1
  msr S3_0_C12_C12_7, x0       // ICC_IGRPEN1_EL1
  isb
`;

const PTIMER_GUEST = `
_start:
${gicOnWithPpi(30)}  mrs x20, cntfrq_el0
  mov x1, #1000
  udiv x20, x20, x1            // ticks per ms
  mov x25, #0                  // WFI wake-ups
  isb
  mrs x21, cntpct_el0
  msr cntp_tval_el0, x20
  mov x0, #1
  msr cntp_ctl_el0, x0         // ENABLE
  isb
2: wfi
  add x25, x25, #1
  mrs x0, S3_0_C12_C12_0       // ICC_IAR1_EL1
  cmp x0, #1023
  b.eq 2b
  mov x22, x0
  isb
  mrs x23, cntpct_el0
  mrs x24, cntp_ctl_el0
  mov x0, #3
  msr cntp_ctl_el0, x0         // IMASK: the level drops
  msr S3_0_C12_C12_1, x22      // ICC_EOIR1_EL1
  ldr x1, =(GICR + 0x10000)
  ldr w26, [x1, #0x200]        // ISPENDR0
  ldr w27, [x1, #0x300]        // ISACTIVER0
  adr x0, s_intid
  bl puts
  mov x0, x22
  bl puthex
  adr x0, s_ctl
  bl puts
  mov x0, x24
  bl puthex
  adr x0, s_pend
  bl puts
  orr x0, x26, x27
  bl puthex
  adr x0, s_late
  bl puts
  sub x0, x23, x21
  cmp x0, x20
  cset x0, hs                  // at least 1 ms of counter between arming and the interrupt
  bl puthex
  bl newline
  adr x0, s_delta
  bl puts
  sub x0, x23, x21
  bl puthex
  adr x0, s_wakes
  bl puts
  mov x0, x25
  bl puthex
  bl newline
  poweroff
s_intid: .asciz "intid "
s_ctl: .asciz " ctl "
s_pend: .asciz " pend|act "
s_late: .asciz " >=1ms "
s_delta: .asciz "delta "
s_wakes: .asciz " wakes "
  .balign 4
`;

/**
 * Polls a timer's ISTATUS with interrupts masked and, the moment it reads 1, asks the GIC: the
 * interrupt must already be pending (the line follows the counter, not slice boundaries).
 * TIMER is p (physical, PPI 30) or v (virtual, PPI 27).
 */
const istatusGuest = (t: 'p' | 'v') => `
_start:
${gicOnWithPpi(t === 'p' ? 30 : 27)}  mrs x20, cntfrq_el0
  mov x1, #1000
  udiv x20, x20, x1            // 1 ms of ticks
  msr cnt${t}_tval_el0, x20
  mov x0, #1
  msr cnt${t}_ctl_el0, x0
  isb
  mov x25, #0
2: add x25, x25, #1
  mrs x0, cnt${t}_ctl_el0
  tbz x0, #2, 2b               // ISTATUS
  mrs x22, S3_0_C12_C12_2      // ICC_HPPIR1_EL1
  ldr x1, =(GICR + 0x10000)
  ldr w23, [x1, #0x200]        // ISPENDR0
  adr x0, s_hppir
  bl puts
  mov x0, x22
  bl puthex
  adr x0, s_pend
  bl puts
  mov x0, x23
  bl puthex
  bl newline
  poweroff
s_hppir: .asciz "hppir "
s_pend: .asciz " ispendr0 "
  .balign 4
`;

describe('machine: timers', () => {
  for (const [t, ppi] of [
    ['p', 30],
    ['v', 27],
  ] as const) {
    it(`the ${t === 'p' ? 'physical' : 'virtual'} timer's line follows the counter: pending at the GIC when ISTATUS reads 1`, {
      skip,
    }, async () => {
      const { report, out } = await runAsm(istatusGuest(t));
      assert.equal(report.reason, 'system-off', report.message);
      assert.equal(out, `hppir ${h16(ppi)} ispendr0 ${h16(2 ** ppi)}\n`);
    });
  }

  it('the physical timer fires PPI 30 after TVAL and wakes WFI', { skip }, async () => {
    const { report, out } = await runAsm(PTIMER_GUEST);
    assert.equal(report.reason, 'system-off', report.message);
    const first = out.split('\n')[0];
    assert.equal(first, `intid ${h16(30)} ctl ${h16(5)} pend|act ${h16(0)} >=1ms ${h16(1)}`);
  });

  it('with virtual time the physical timer program is deterministic', { skip }, async () => {
    const a = await runAsm(PTIMER_GUEST, { time: 'virtual' });
    const b = await runAsm(PTIMER_GUEST, { time: 'virtual' });
    assert.equal(a.report.reason, 'system-off', a.report.message);
    assert.match(a.out, /^intid 0x0+1e ctl 0x0+5 pend\|act 0x0+ >=1ms 0x0+1\ndelta 0x[0-9a-f]{16} wakes /);
    assert.equal(a.out, b.out);
    assert.deepEqual(a.report.blocks, b.report.blocks);
  });

  it('the C guest ppi_timer (virtual timer, PPI 27) passes', { skip: cGuestSkip() }, async () => {
    const elf = readFileSync(join(buildCGuests(), 'ppi_timer.elf'));
    const { report, out } = await runImage(new Uint8Array(elf), { timeLimitMs: 10_000 });
    assert.doesNotMatch(out, /FAIL/);
    assert.ok(out.endsWith('EXIT: STATUS=0\n'), out.slice(-200));
    assert.equal(report.reason, 'system-off', report.message);
    assert.equal(report.status, 0);
  });
});

describe('machine: host API misuse throws typed errors', () => {
  it('rejects a bad configuration', () => {
    // Checked before the CPU addon is loaded: these run everywhere.
    for (const opts of [
      { smp: 9 },
      { smp: 0 },
      { smp: 1.5 },
      { ramSize: 4 * 1024 * 1024 + 1 },
      { ramSize: 4096 },
      { timeLimitMs: -1 },
    ]) {
      assert.throws(
        () => new Machine(opts),
        (e: unknown) => e instanceof VgicError && e.code === 'INVALID_CONFIG',
        JSON.stringify(opts),
      );
    }
  });

  it('run() before load() and a truncated ELF are VgicErrors', {
    skip: machineUnavailable() ?? false,
  }, async () => {
    const m = new Machine({ output: () => {} });
    try {
      await assert.rejects(m.run(), (e: unknown) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT');
      const elf = new Uint8Array(40);
      elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
      assert.throws(
        () => m.load(elf),
        (e: unknown) => e instanceof VgicError && typeof e.code === 'string',
      );
    } finally {
      m.close();
    }
  });
});
