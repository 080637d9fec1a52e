/**
 * Timing a Linux boot from its console output: every output line gets a host timestamp, and the
 * milestones of a `vgic linux` boot are picked out of them (first kernel line, `Run /init`, the
 * initramfs's first userspace line, the kernel's power-down line, the process's exit).
 *
 * The clock (`BootClock`) only sees bytes, so the same harness times QEMU (a child process,
 * `timeCommand`) and, later, vgic's machine (in-process: feed it from MachineOptions.output and
 * call end() when run() returns), side by side, with one definition of each milestone.
 *
 * Who calls: the Linux boot measurements (see the report in docs / linux-boot.md) and, for the
 * QEMU command line, src/cli/linux.ts (`vgic linux --qemu`).
 */

import { spawn } from 'node:child_process';
import { median } from '../util/stats.ts';
import { QEMU } from './conformance.ts';
import { USERSPACE_UP_LINE } from './initramfs.ts';

export interface Milestone {
  readonly name: string;
  readonly pattern: RegExp;
}

/**
 * The milestones, in boot order. `power-off` is not a line: it is when the command exited (QEMU
 * exits on PSCI SYSTEM_OFF), or when the in-process machine's run() returned.
 */
export const LINUX_MILESTONES: readonly Milestone[] = [
  { name: 'first-kernel-line', pattern: /Booting Linux on physical CPU|^\[\s*\d+\.\d+\] / },
  { name: 'gic', pattern: /GICv3: \d+ SPIs implemented/ },
  { name: 'smp-up', pattern: /smp: Brought up/ },
  { name: 'run-init', pattern: /Run \/init as init process/ },
  { name: 'userspace', pattern: new RegExp(USERSPACE_UP_LINE) },
  { name: 'power-down', pattern: /reboot: Power down/ },
];
export const POWER_OFF = 'power-off';

export interface TimedLine {
  /** Host milliseconds since the clock started. */
  readonly ms: number;
  readonly text: string;
}

export interface BootTiming {
  readonly lines: TimedLine[];
  /** Host ms of each milestone's first line (and power-off), undefined when not reached. */
  readonly milestones: Record<string, number | undefined>;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly totalMs: number;
}

/** Timestamps output lines as they arrive; the milestones are matched once, first line wins. */
export class BootClock {
  readonly lines: TimedLine[] = [];
  readonly milestones: Record<string, number | undefined> = {};
  private partial = '';
  private readonly decoder = new TextDecoder();
  private readonly t0: number;
  private readonly defs: readonly Milestone[];
  private readonly onLine: ((line: TimedLine) => void) | undefined;

  constructor(
    defs: readonly Milestone[] = LINUX_MILESTONES,
    onLine?: (line: TimedLine) => void,
    t0 = performance.now(),
  ) {
    this.defs = defs;
    this.onLine = onLine;
    this.t0 = t0;
    for (const m of defs) this.milestones[m.name] = undefined;
    this.milestones[POWER_OFF] = undefined;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  /** Console bytes as they come (any chunking; CR/LF and ANSI noise are stripped from lines). */
  push(chunk: Uint8Array | string): void {
    const ms = this.now();
    this.partial += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    let nl = this.partial.indexOf('\n');
    while (nl >= 0) {
      this.line(this.partial.slice(0, nl), ms);
      this.partial = this.partial.slice(nl + 1);
      nl = this.partial.indexOf('\n');
    }
  }

  /** The run is over: a last unterminated line is kept, and power-off is stamped. */
  end(): number {
    const ms = this.now();
    if (this.partial !== '') this.line(this.partial, ms);
    this.partial = '';
    this.milestones[POWER_OFF] = ms;
    return ms;
  }

  private line(raw: string, ms: number): void {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what is removed
    const text = raw.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const l = { ms, text };
    this.lines.push(l);
    for (const m of this.defs) {
      if (this.milestones[m.name] === undefined && m.pattern.test(text)) this.milestones[m.name] = ms;
    }
    this.onLine?.(l);
  }
}

export interface TimeCommandOptions {
  /** Kill the command after this many host ms (default 120000). */
  readonly timeoutMs?: number;
  readonly milestones?: readonly Milestone[];
  /** Each line as it is timestamped (progress, or a live transcript). */
  readonly onLine?: (line: TimedLine) => void;
}

/** Runs argv[0] with argv[1..], stdin closed, stdout and stderr merged into one timed transcript. */
export function timeCommand(argv: readonly string[], opts: TimeCommandOptions = {}): Promise<BootTiming> {
  const clock = new BootClock(opts.milestones, opts.onLine);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => clock.push(b));
    child.stderr.on('data', (b: Buffer) => clock.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const totalMs = clock.end();
      resolve({ lines: clock.lines, milestones: clock.milestones, exitCode: code, timedOut, totalMs });
    });
  });
}

export interface QemuLinuxOptions {
  readonly kernel: string;
  readonly initrd: string;
  readonly smp: number;
  /** QEMU's -m argument, e.g. 512M. */
  readonly memory: string;
  readonly append: string;
}

/**
 * QEMU 7.2's command line for the same boot as vgic's machine: virt with GICv3 (and its ITS),
 * `-cpu max`, the console on stdio. `-nic none`: virt's default NIC wants efi-virtio.rom, which
 * Debian's qemu-system-arm only recommends (ipxe-qemu), and the guest has no use for it.
 */
export function qemuLinuxCommand(o: QemuLinuxOptions): string[] {
  return [
    QEMU,
    '-M',
    'virt,gic-version=3',
    '-cpu',
    'max',
    '-m',
    o.memory,
    '-smp',
    String(o.smp),
    '-nographic',
    '-nic',
    'none',
    '-kernel',
    o.kernel,
    '-initrd',
    o.initrd,
    '-append',
    o.append,
  ];
}

export interface MilestoneStats {
  readonly name: string;
  /** Runs that reached it. */
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Median and range (host ms) of each milestone over runs. */
export function summariseBoots(runs: readonly BootTiming[]): MilestoneStats[] {
  const names = [...LINUX_MILESTONES.map((m) => m.name), POWER_OFF];
  return names.map((name) => {
    const xs = runs.map((r) => r.milestones[name]).filter((v): v is number => v !== undefined);
    return xs.length === 0
      ? { name, n: 0, median: Number.NaN, min: Number.NaN, max: Number.NaN }
      : { name, n: xs.length, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  });
}

/** One table row per milestone: median (min..max) host seconds. */
export function formatBootSummary(title: string, stats: readonly MilestoneStats[], runs: number): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const rows = stats.map(
    (m) =>
      `  ${m.name.padEnd(18)} ${m.n === 0 ? 'not reached' : `${s(m.median)} s (${s(m.min)}..${s(m.max)})`}` +
      (m.n > 0 && m.n < runs ? `  [${m.n}/${runs} runs]` : ''),
  );
  return [`${title}: median (min..max) host seconds from start, ${runs} runs`, ...rows].join('\n');
}
