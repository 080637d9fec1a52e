/**
 * `vgic conformance` and `vgic guest-bench`: the same bare-metal guest programs (guest/, built with
 * Debian's gcc-aarch64-linux-gnu) on QEMU 7.2's virt board — QEMU's own GICv3/ITS emulation, the
 * reference — and on vgic's machine, their transcripts compared line by line.
 *
 * Transcript rules (docs/guest-programs.md): `MASK name=value` lines are values where vgic follows
 * KVM and QEMU differs; only the name is compared. `BENCH name ns_per_op=n` lines are
 * measurements, collected and not compared.
 *
 * Who may call: the CLI and tests, on the main thread (it spawns QEMU and make).
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from './machine.ts';
import { INSTALL_COMMAND, loadUnicorn, MachineUnavailableError } from './native.ts';

export const QEMU = 'qemu-system-aarch64';
export const CROSS_GCC = 'aarch64-linux-gnu-gcc';
/** QEMU's command line, as the issue gives it, plus RAM and CPUs from the manifest. */
export const QEMU_ARGS = [
  '-M',
  'virt,gic-version=3',
  '-cpu',
  'max',
  '-nographic',
  '-nic',
  'none',
  '-m',
  '128M',
];

export interface GuestProgram {
  readonly name: string;
  readonly smp: number;
  readonly timeoutSec: number;
  readonly kind: 'test' | 'bench';
  /** Machine options the program needs (QEMU needs none: its aborts are always precise). */
  readonly machine?: { readonly preciseAborts?: boolean };
  /** 2: a GICv2 program, run on QEMU with -M virt,gic-version=2 and on vgic with gicVersion 2. Default 3. */
  readonly gicVersion?: 2 | 3;
}

/** QEMU's arguments for a program: QEMU_ARGS with the program's GIC version. */
export function qemuArgs(p: GuestProgram): string[] {
  const args = [...QEMU_ARGS];
  if (p.gicVersion === 2) args[1] = 'virt,gic-version=2';
  return args;
}

export interface SideResult {
  readonly transcript: string;
  /** Exit status (QEMU: from the `EXIT: STATUS=n` line; vgic: the machine's report). */
  readonly status: number;
  readonly timedOut: boolean;
  readonly ms: number;
  /** How vgic's run ended (vgic side only). */
  readonly report?: string;
}

export interface ConformanceResult {
  readonly program: string;
  readonly smp: number;
  readonly qemu: SideResult;
  readonly vgic: SideResult;
  /** Unified diff of the normalised transcripts; empty when they agree. */
  readonly diff: string;
  readonly differingLines: number;
  readonly pass: boolean;
  readonly bench: { readonly qemu: Record<string, number>; readonly vgic: Record<string, number> };
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GUEST_DIR = join(ROOT, 'guest');

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** What conformance needs that is missing (empty when all is there). */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (!onPath(QEMU)) missing.push(`${QEMU} (Debian package qemu-system-arm)`);
  if (!onPath(CROSS_GCC))
    missing.push(`${CROSS_GCC} (Debian packages gcc-aarch64-linux-gnu, binutils-aarch64-linux-gnu)`);
  if (!onPath('make')) missing.push('make');
  try {
    loadUnicorn();
  } catch (e) {
    if (e instanceof MachineUnavailableError) missing.push(...e.missing);
    else throw e;
  }
  return missing;
}

export function checkTools(): void {
  const missing = missingTools();
  if (missing.length > 0) throw new MachineUnavailableError(missing);
}

export function readManifest(): GuestProgram[] {
  return JSON.parse(readFileSync(join(GUEST_DIR, 'programs.json'), 'utf8')) as GuestProgram[];
}

/** Builds every guest program into `outDir` (make is incremental); returns the directory. */
export function buildGuests(outDir = join(tmpdir(), 'vgic-guest-build')): string {
  mkdirSync(outDir, { recursive: true });
  const r = spawnSync('make', ['-s', '-C', GUEST_DIR, `O=${outDir}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`building the guest programs failed (make -C ${GUEST_DIR}):\n${r.stdout}${r.stderr}`);
  }
  return outDir;
}

const EXIT_LINE = /^EXIT: STATUS=(\d+)$/;
const MASK_LINE = /^MASK ([^=]+)=.*$/;
const BENCH_LINE = /^BENCH (\S+) ns_per_op=(\d+(?:\.\d+)?)/;

/** The transcript as compared: CRs gone, MASK values hidden, BENCH lines out. */
export function normalise(transcript: string): string {
  const out: string[] = [];
  for (const raw of transcript.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (BENCH_LINE.test(line)) continue;
    out.push(line.replace(MASK_LINE, 'MASK $1=…'));
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}

export function benchValues(transcript: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const raw of transcript.split('\n')) {
    const m = BENCH_LINE.exec(raw.replace(/\r$/, ''));
    if (m) values[m[1]] = Number(m[2]);
  }
  return values;
}

function exitStatus(transcript: string): number {
  let status = 0;
  for (const raw of transcript.split('\n')) {
    const m = EXIT_LINE.exec(raw.replace(/\r$/, ''));
    if (m) status = Number(m[1]);
  }
  return status;
}

/** Runs one program on QEMU; the transcript is its serial output. */
export function runOnQemu(elf: string, p: GuestProgram): Promise<SideResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(QEMU, [...qemuArgs(p), '-smp', String(p.smp), '-kernel', elf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, p.timeoutSec * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const transcript = Buffer.concat(chunks).toString('utf8') + (err ? `\n[qemu stderr] ${err}` : '');
      resolve({
        transcript,
        status: timedOut ? 124 : exitStatus(transcript),
        timedOut,
        ms: performance.now() - start,
      });
    });
  });
}

/** Runs one program on vgic's machine. */
export async function runOnVgic(elf: string, p: GuestProgram): Promise<SideResult> {
  const start = performance.now();
  const chunks: Uint8Array[] = [];
  const m = new Machine({
    smp: p.smp,
    gicVersion: p.gicVersion ?? 3,
    timeLimitMs: p.timeoutSec * 1000,
    preciseAborts: p.machine?.preciseAborts ?? false,
    output: (b) => chunks.push(b.slice()),
  });
  try {
    m.load(readFileSync(elf));
    const report = await m.run();
    const transcript = Buffer.concat(chunks).toString('utf8');
    return {
      transcript,
      status: report.status,
      timedOut: report.reason === 'time-limit',
      ms: performance.now() - start,
      report: report.message,
    };
  } finally {
    m.close();
  }
}

/**
 * jsdiff's unified diff, loaded here only: `diff` is an optional dependency, which the core never
 * needs. Without it, every line that differs at its position is listed (same header shape).
 */
async function unifiedDiff(from: string, to: string, a: string, b: string): Promise<string> {
  try {
    const { createTwoFilesPatch } = await import('diff');
    return createTwoFilesPatch(from, to, a, b, '', '', { context: 2 });
  } catch {
    const x = a.split('\n');
    const y = b.split('\n');
    const out = [`--- ${from}`, `+++ ${to}`];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if (x[i] === y[i]) continue;
      if (x[i] !== undefined) out.push(`-${x[i]}`);
      if (y[i] !== undefined) out.push(`+${y[i]}`);
    }
    return `${out.join('\n')}\n`;
  }
}

/** Both machines, the diff, and the verdict for one program. */
export async function compareProgram(buildDir: string, p: GuestProgram): Promise<ConformanceResult> {
  const elf = join(buildDir, `${p.name}.elf`);
  if (!existsSync(elf)) throw new Error(`${elf} was not built`);
  // One after the other: on 2 cores a concurrent QEMU would slow vgic's timing-sensitive programs.
  const qemu = await runOnQemu(elf, p);
  const vgic = await runOnVgic(elf, p);
  const a = normalise(qemu.transcript);
  const b = normalise(vgic.transcript);
  let diff = '';
  let differingLines = 0;
  if (a !== b) {
    diff = await unifiedDiff(`qemu/${p.name}`, `vgic/${p.name}`, a, b);
    for (const line of diff.split('\n').slice(2)) {
      if (
        (line.startsWith('+') || line.startsWith('-')) &&
        !line.startsWith('+++') &&
        !line.startsWith('---')
      )
        differingLines++;
    }
  }
  const pass = a === b && qemu.status === 0 && vgic.status === 0 && !qemu.timedOut && !vgic.timedOut;
  return {
    program: p.name,
    smp: p.smp,
    qemu,
    vgic,
    diff,
    differingLines,
    pass,
    bench: { qemu: benchValues(qemu.transcript), vgic: benchValues(vgic.transcript) },
  };
}

export interface ConformanceOptions {
  /** Program names (default: every `test` program of the manifest). */
  readonly only?: readonly string[];
  readonly buildDir?: string;
  readonly progress?: (r: ConformanceResult) => void;
}

export async function runConformance(opts: ConformanceOptions = {}): Promise<ConformanceResult[]> {
  checkTools();
  const manifest = readManifest();
  for (const n of opts.only ?? []) {
    if (!manifest.some((p) => p.name === n)) {
      throw new Error(`unknown guest program '${n}' (programs: ${manifest.map((p) => p.name).join(', ')})`);
    }
  }
  const programs = opts.only
    ? manifest.filter((p) => opts.only!.includes(p.name))
    : manifest.filter((p) => p.kind === 'test');
  const dir = buildGuests(opts.buildDir);
  const results: ConformanceResult[] = [];
  for (const p of programs) {
    const r = await compareProgram(dir, p);
    results.push(r);
    opts.progress?.(r);
  }
  return results;
}

export function formatConformance(results: readonly ConformanceResult[]): string {
  const rows = [
    'program          smp  qemu status  vgic status  result              qemu ms   vgic ms',
    '-------------------------------------------------------------------------------------',
  ];
  for (const r of results) {
    const result = r.pass
      ? 'same'
      : r.differingLines > 0
        ? `${r.differingLines} lines differ`
        : 'status differs';
    rows.push(
      `${r.program.padEnd(16)} ${String(r.smp).padStart(3)}  ${String(r.qemu.status).padStart(11)}  ${String(r.vgic.status).padStart(11)}  ${result.padEnd(18)} ${r.qemu.ms.toFixed(0).padStart(8)}  ${r.vgic.ms.toFixed(0).padStart(8)}`,
    );
  }
  const failed = results.filter((r) => !r.pass);
  rows.push(
    '',
    `${results.length - failed.length}/${results.length} programs give the same transcript on QEMU and vgic`,
  );
  for (const r of failed) {
    if (r.diff) rows.push('', r.diff.trimEnd());
    if (r.vgic.report) rows.push(`vgic: ${r.vgic.report}`);
  }
  return rows.join('\n');
}

export { INSTALL_COMMAND };
