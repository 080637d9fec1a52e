/**
 * `vgic linux`: boots Debian's arm64 Linux (bookworm's cloud kernel) with a busybox initramfs on
 * vgic's machine, with --smp 2 by default, and shows the boot then a shell on the terminal. With
 * --script the commands run and the guest powers off; --selftest checks in the guest's
 * /proc/interrupts that vgic delivers the timer, IPIs and the UART's interrupt. --qemu boots the
 * same kernel and initramfs on QEMU 7.2 instead, for comparison.
 *
 * The kernel and busybox come from ensureLinuxAssets (apt, into a cache, once); the initramfs is
 * built in memory per boot (machine/initramfs.ts).
 *
 * Exit status: --selftest 0 on `SELFTEST: PASS`, else 1; --script the script's own status; an
 * interactive shell 0 after power-off; the machine's status when the run ended otherwise (124
 * time limit, 125 guest fault, 126 idle). 3 when the assets or the machine are unavailable.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  buildLinuxInitramfs,
  linuxSelftestScript,
  SCRIPT_DONE_PREFIX,
  SHELL_READY_LINE,
} from '../machine/initramfs.ts';
import { ensureLinuxAssets } from '../machine/linux-assets.ts';
import { qemuLinuxCommand } from '../machine/linux-bench.ts';
import { Machine, type MachineOptions, type RunReport } from '../machine/machine.ts';
import { traceMatch } from '../trace/trace.ts';
import { attachObservers } from './inspect-server.ts';
import { parseSize } from './run.ts';

export const LINUX_USAGE = `  linux                boots Debian's arm64 Linux on vgic's machine with a busybox initramfs: the
                       boot, then a shell on this terminal (exit powers off). The kernel
                       (linux-image-cloud-arm64) and busybox-static are fetched with apt into
                       the cache once (a private apt state: the system's is not touched)
      --smp N          vCPUs, 1..8 (default 2)
      -m, --memory SZ  RAM size as QEMU's -m: 512M, 1.5G, a bare number is MiB (default 512M)
      --script CMDS    run these shell commands (echoed), then power off; exit status: theirs
      --selftest       check /proc/interrupts (arch timer per CPU, IPIs, PL011) and fork/exec;
                       exit 0 on 'SELFTEST: PASS'
      --append ARGS    more kernel arguments, after 'console=ttyAMA0 earlycon=pl011,0x9000000'
      --cache DIR      where the kernel and busybox are kept (default
                       $XDG_CACHE_HOME/vgic/linux or ~/.cache/vgic/linux)
      --qemu           boot the same kernel and initramfs on qemu-system-aarch64 instead
      --fetch          only fetch the kernel and busybox into the cache (npm test does this)
      --trace PATTERNS trace events to stderr (QEMU -trace globs, e.g. gicv3_icc_iar1_read,vgic_*)
      --inspect PORT   serve the live inspector page on http://127.0.0.1:PORT/ (SIGUSR1: the
                       vgic-state dump to stderr)
      --timeout SEC    host seconds before the run is stopped (default: none for a shell, 600
                       with --script or --selftest)
                       On a terminal, Ctrl-A x stops the machine (as QEMU's -nographic).`;

/** The console and an early console on virt's PL011 (0x09000000), so a crash before the console
 * driver registers still shows. */
export const LINUX_BASE_APPEND = 'console=ttyAMA0 earlycon=pl011,0x9000000';
const MiB = 1024 * 1024;

/**
 * What the end of piped stdin becomes on the guest's console: a newline ends a partial last line,
 * then `exit` ends the shell and /init powers off. Ctrl-D would not do: busybox's line editing
 * reads it as "delete" on a non-empty line, and typed ahead before the shell switches its
 * terminal to raw mode it is lost.
 */
const SHELL_EOF = new TextEncoder().encode('\nexit\n');

export class LinuxUsageError extends Error {
  override name = 'LinuxUsageError';
}

function bad(message: string): never {
  throw new LinuxUsageError(message);
}

export interface LinuxCliOptions {
  readonly smp: number;
  readonly ramSize: number;
  readonly script?: string;
  readonly selftest: boolean;
  readonly cacheDir?: string;
  readonly qemu: boolean;
  readonly append: string;
  /** 0: no limit. */
  readonly timeoutSec: number;
  /** Only make sure the kernel and busybox are cached (what `npm test` needs), then exit. */
  readonly fetchOnly: boolean;
  /** Trace event patterns printed to stderr (QEMU -trace globs). */
  readonly trace?: string;
  /** Serve the inspector page on this port of 127.0.0.1. */
  readonly inspect?: number;
}

export function parseLinuxArgs(argv: string[]): LinuxCliOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      smp: { type: 'string' },
      memory: { type: 'string', short: 'm' },
      script: { type: 'string' },
      selftest: { type: 'boolean' },
      cache: { type: 'string' },
      qemu: { type: 'boolean' },
      append: { type: 'string' },
      timeout: { type: 'string' },
      fetch: { type: 'boolean' },
      trace: { type: 'string' },
      inspect: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) bad(`linux takes no arguments, got '${positionals.join(' ')}'`);
  const smp = values.smp === undefined ? 2 : Number(values.smp);
  if (!Number.isInteger(smp) || smp < 1 || smp > 8) bad(`--smp takes 1..8, got '${values.smp}'`);
  let ramSize: number;
  try {
    ramSize = parseSize(values.memory ?? '512M');
  } catch (e) {
    bad((e as Error).message);
  }
  // QEMU takes whole MiB; the kernel wants room for itself (27 MB), the initramfs and page tables.
  if (ramSize % MiB !== 0 || ramSize < 128 * MiB || ramSize > 4096 * MiB) {
    bad(`--memory takes whole MiB from 128M to 4G, got '${values.memory}'`);
  }
  if (values.script !== undefined && values.selftest) bad('--script and --selftest cannot be combined');
  const scripted = values.script !== undefined || values.selftest === true;
  const timeoutSec = values.timeout === undefined ? (scripted ? 600 : 0) : Number(values.timeout);
  if (!(timeoutSec >= 0)) bad(`--timeout takes seconds >= 0, got '${values.timeout}'`);
  const inspect = values.inspect === undefined ? undefined : Number(values.inspect);
  if (inspect !== undefined && !(Number.isInteger(inspect) && inspect >= 0 && inspect <= 65535))
    bad(`--inspect takes a TCP port 0..65535 (0: any free port), got '${values.inspect}'`);
  if (values.trace !== undefined) {
    try {
      traceMatch(values.trace);
    } catch (e) {
      bad(`--trace: ${(e as Error).message}`);
    }
  }
  return {
    trace: values.trace,
    inspect,
    smp,
    ramSize,
    script: values.script,
    selftest: values.selftest ?? false,
    cacheDir: values.cache,
    qemu: values.qemu ?? false,
    append: values.append ? `${LINUX_BASE_APPEND} ${values.append}` : LINUX_BASE_APPEND,
    timeoutSec,
    fetchOnly: values.fetch ?? false,
  };
}

/** Watches the console for the lines that decide the exit status. */
class Verdict {
  selftest: 'pass' | 'fail' | undefined;
  scriptStatus: number | undefined;
  /** Called once, when the guest's shell is about to read its console. */
  onShellReady: (() => void) | undefined;
  private partial = '';
  private readonly decoder = new TextDecoder();

  push(bytes: Uint8Array): void {
    this.partial += this.decoder.decode(bytes, { stream: true });
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      const l = raw.replace(/\r$/, '');
      if (l === SHELL_READY_LINE) {
        this.onShellReady?.();
        this.onShellReady = undefined;
      }
      if (l === 'SELFTEST: PASS') this.selftest = 'pass';
      else if (/^SELFTEST: FAIL \d+ of \d+ checks$/.test(l)) this.selftest = 'fail';
      const m = l.startsWith(SCRIPT_DONE_PREFIX) ? /(\d+)$/.exec(l) : null;
      if (m) this.scriptStatus = Number(m[1]);
    }
  }

  /** The exit status, given how the guest's run ended (`ended`: powered off normally). */
  status(opts: LinuxCliOptions, ended: boolean, fallback: number): number {
    if (opts.selftest) return this.selftest === 'pass' ? 0 : 1;
    if (opts.script !== undefined) return this.scriptStatus ?? (ended ? 1 : fallback);
    return ended ? 0 : fallback;
  }
}

/**
 * Holds console input until the guest's shell is up, then passes it on; the end of piped input
 * becomes SHELL_EOF. Bytes the guest received before its PL011 port was opened would be drained
 * and lost (pl011_enable_interrupts discards up to 2 FIFOs' worth), as on real hardware.
 */
class InputGate {
  private held: Uint8Array[] | undefined = [];
  private ended = false;
  private readonly sink: (bytes: Uint8Array) => void;
  private readonly onEnd: () => void;

  constructor(sink: (bytes: Uint8Array) => void, onEnd: () => void = () => {}) {
    this.sink = sink;
    this.onEnd = onEnd;
  }

  write(bytes: Uint8Array): void {
    if (this.held) this.held.push(bytes);
    else this.sink(bytes);
  }

  end(): void {
    if (this.held) this.ended = true;
    else this.finish();
  }

  open(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const b of held) this.sink(b);
    if (this.ended) this.finish();
  }

  private finish(): void {
    this.sink(SHELL_EOF);
    this.onEnd();
  }
}

/** Runs the command; returns the process's exit status. */
export async function runLinuxCli(argv: string[]): Promise<number> {
  const opts = parseLinuxArgs(argv);
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const assets = await ensureLinuxAssets({ cacheDir: opts.cacheDir, log });
  if (opts.fetchOnly) {
    log(`vgic linux: ${assets.kernel} and ${assets.busybox} are cached (${assets.version})`);
    return 0;
  }
  const script = opts.selftest ? linuxSelftestScript({ cpus: opts.smp }) : opts.script;
  const initrd = buildLinuxInitramfs({ busybox: readFileSync(assets.busybox), script, echo: !opts.selftest });
  const interactive = script === undefined;
  const verdict = new Verdict();

  if (opts.qemu) {
    const dir = mkdtempSync(join(tmpdir(), 'vgic-linux-'));
    try {
      const initrdPath = join(dir, 'initramfs.cpio.gz');
      writeFileSync(initrdPath, initrd);
      const cmd = qemuLinuxCommand({
        kernel: assets.kernel,
        initrd: initrdPath,
        smp: opts.smp,
        memory: `${opts.ramSize / MiB}M`,
        append: opts.append,
      });
      const { code, timedOut } = await runQemu(cmd, interactive, opts.timeoutSec, verdict);
      if (timedOut)
        process.stderr.write(`vgic linux: QEMU stopped after the ${opts.timeoutSec} s time limit\n`);
      return verdict.status(opts, code === 0 && !timedOut, timedOut ? 124 : (code ?? 1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const report = await bootOnMachine({
    kernel: assets.kernel,
    initrd,
    smp: opts.smp,
    ramSize: opts.ramSize,
    append: opts.append,
    timeLimitMs: opts.timeoutSec * 1000,
    interactive,
    trace: opts.trace,
    inspect: opts.inspect,
    output: (b) => {
      process.stdout.write(b);
      verdict.push(b);
    },
  });
  const ended = report.reason === 'system-off';
  if (!ended) process.stderr.write(`vgic linux: ${report.message}\n`);
  return verdict.status(opts, ended, report.status);
}

/** QEMU with the console on this terminal (interactive: QEMU handles raw mode and Ctrl-A x). */
function runQemu(
  cmd: string[],
  interactive: boolean,
  timeoutSec: number,
  verdict: Verdict,
): Promise<{ code: number | null; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    // On a terminal QEMU owns it (raw mode, Ctrl-A x). Piped input goes through us: it waits for
    // the shell (InputGate), and its end becomes an EOF for the shell (a serial line has no end
    // of its own: QEMU would wait forever).
    const piped = interactive && process.stdin.isTTY !== true;
    const child = spawn(cmd[0], cmd.slice(1), {
      stdio: interactive && !piped ? 'inherit' : [piped ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    });
    child.stdout?.on('data', (b: Buffer) => {
      process.stdout.write(b);
      verdict.push(b);
    });
    if (piped && child.stdin) {
      const sink = child.stdin;
      sink.on('error', () => {}); // QEMU gone before all input was taken
      const gate = new InputGate((b) => sink.write(b));
      verdict.onShellReady = () => gate.open();
      process.stdin.on('data', (b: Buffer) => gate.write(b));
      process.stdin.on('end', () => gate.end());
      child.on('close', () => {
        process.stdin.pause();
        process.stdin.unref?.();
      });
    }
    let timedOut = false;
    const timer =
      timeoutSec > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, timeoutSec * 1000)
        : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new LinuxUsageError(`${cmd[0]} not found: install it with apt-get install qemu-system-arm`)
          : e,
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut });
    });
  });
}

export interface BootOnMachineOptions {
  /** Path of the arm64 Image (or the bytes). */
  readonly kernel: string | Uint8Array;
  /** The gzip'd newc initramfs (or a path to one). */
  readonly initrd: Uint8Array | string;
  readonly smp: number;
  readonly ramSize: number;
  readonly append: string;
  /** 0: no limit. */
  readonly timeLimitMs: number;
  /** Forward stdin to the PL011 (raw when it is a terminal, with Ctrl-A x to stop). */
  readonly interactive: boolean;
  readonly output?: (bytes: Uint8Array) => void;
  /** Trace event patterns printed to stderr. */
  readonly trace?: string;
  /** Serve the inspector page on this port of 127.0.0.1 (0: any free port). */
  readonly inspect?: number;
  /** Called with the inspector's URL once it listens. */
  readonly onInspector?: (url: string) => void;
}

/**
 * Boots kernel + initramfs on vgic's machine in this process, the way `vgic run` does
 * (src/cli/run.ts): console to `output`, stdin to the PL011 when interactive.
 */
export async function bootOnMachine(opts: BootOnMachineOptions): Promise<RunReport> {
  const kernel = typeof opts.kernel === 'string' ? readFileSync(opts.kernel) : opts.kernel;
  const initrd = typeof opts.initrd === 'string' ? readFileSync(opts.initrd) : opts.initrd;
  // Input waits for the guest's shell (InputGate), so the console is watched for its line.
  const ready = new Verdict();
  const write = opts.output ?? ((b: Uint8Array) => process.stdout.write(b));
  const machineOptions: MachineOptions = {
    smp: opts.smp,
    ramSize: opts.ramSize,
    append: opts.append,
    timeLimitMs: opts.timeLimitMs,
    time: 'real',
    output: (b) => {
      write(b);
      ready.push(b);
    },
    initrd,
  };
  const m = new Machine(machineOptions);
  m.load(kernel);
  const observers = await attachObservers(m.gic, {
    trace: opts.trace,
    inspect: opts.inspect,
    label: 'vgic linux',
  });
  if (observers.inspector) opts.onInspector?.(observers.inspector.url);
  const gate = new InputGate(
    (b) => m.input(b),
    () => m.endInput(),
  );
  ready.onShellReady = () => gate.open();

  const stdin = process.stdin;
  const raw = opts.interactive && stdin.isTTY === true;
  let ctrlA = false;
  const onData = (b: Buffer) => {
    if (!raw) {
      gate.write(b);
      return;
    }
    // Ctrl-A x quits, as in QEMU's -nographic; raw mode sends Ctrl-C to the guest's shell instead.
    const out: number[] = [];
    for (const c of b) {
      if (ctrlA) {
        ctrlA = false;
        if (c === 0x78 /* x */) {
          restore();
          process.stderr.write('\r\nvgic linux: stopped (Ctrl-A x)\r\n');
          process.exit(0);
        }
        out.push(0x01);
        if (c !== 0x01) out.push(c);
      } else if (c === 0x01) ctrlA = true;
      else out.push(c);
    }
    if (out.length > 0) gate.write(Uint8Array.from(out));
  };
  const onEnd = () => gate.end();
  const restore = () => {
    if (raw) stdin.setRawMode(false);
  };
  if (opts.interactive) {
    if (raw) stdin.setRawMode(true);
    m.expectInput();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  }
  try {
    return await m.run();
  } finally {
    if (opts.interactive) {
      restore();
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      stdin.unref?.();
    }
    await observers.close();
    m.close();
  }
}
