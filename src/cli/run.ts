/**
 * `vgic run IMAGE [--smp N] [--append ARGS]`: boots a guest image on vgic's machine (Unicorn CPUs,
 * vgic's GICv3 + ITS, QEMU virt's layout). UART to stdout, stdin to the UART. The process exits
 * with the guest's status (semihosting SYS_EXIT, else a final `EXIT: STATUS=n` line, else 0), 124
 * on the time limit, 125 on a guest fault, 126 when every vCPU waits forever; the report of how
 * the run ended goes to stderr.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Machine, type MachineOptions, type RunReport } from '../machine/machine.ts';
import { traceMatch } from '../trace/trace.ts';
import { attachObservers } from './inspect-server.ts';

export const RUN_USAGE = `  run IMAGE            boots IMAGE on vgic's machine (QEMU virt layout: Unicorn CPUs, vgic's
                       GICv3 + ITS, PL011, PSCI over HVC, semihosting): an ELF at its own
                       addresses, or an arm64 Image / flat binary at RAM + 0x80000; DTB in x0.
                       Exit status: the guest's (SYS_EXIT, else a final 'EXIT: STATUS=n' line,
                       else 0); 124 time limit, 125 guest fault, 126 every vCPU idle for good
      --smp N          vCPUs, 1..8 (default 1)
      --gic-version N  3 (default: GICv3 + ITS, ICC_* registers) or 2 (GICv2 as QEMU's
                       gic-version=2: GICD 0x08000000, GICC 0x08010000, no ITS, no ICC_*)
      --append ARGS    kernel command line (/chosen/bootargs, semihosting SYS_GET_CMDLINE)
      -m, --memory SZ  RAM size as QEMU's -m: 256M, 3G, 1.5G; a bare number is MiB (default 128M)
      --initrd FILE    initial RAM disk, placed and described in /chosen as QEMU's -initrd
      --dtb FILE       pass this device tree instead of the generated one
      --dumpdtb FILE   write the generated device tree to FILE and exit
      --timeout SEC    host seconds before the run is stopped with a report (default 60; 0: none)
      --virtual-time   the counter advances with executed code, not host time (deterministic)
      --precise-aborts exact ELR for aborts on unmapped addresses (slower loads/stores)
      --report         print the run's report to stderr even when it ended normally
      --trace PATTERNS trace events to stderr, QEMU's -trace globs: gicv3_icc_iar1_read,gicv3_its_*
                       (a leading - excludes); names in docs/inspect.md
      --inspect PORT   serve the live inspector page on http://127.0.0.1:PORT/
                       (SIGUSR1 prints the vgic-state dump to stderr in any run)`;

export interface RunCliResult {
  /** undefined when nothing ran (--dumpdtb). */
  readonly report: RunReport | undefined;
}

function bad(message: string): never {
  throw new RunUsageError(message);
}

export class RunUsageError extends Error {
  override name = 'RunUsageError';
}

/** QEMU's -m: a number with an optional B/K/M/G/T suffix (any case, optional "iB"); no suffix is MiB. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([bkmgt])(?:i?b)?)?$/i.exec(v.trim());
  if (!m) bad(`--memory takes a size like 256M, 3G or 1.5G (a bare number is MiB), got '${v}'`);
  const unit = (m[2] ?? 'm').toLowerCase();
  const mul = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit as 'b' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.round(Number(m[1]) * mul);
  // QEMU rounds RAM up to whole pages.
  return Math.ceil(bytes / 4096) * 4096;
}

export interface RunArgs {
  image: string;
  options: MachineOptions;
  report: boolean;
  initrd?: string;
  dtb?: string;
  dumpdtb?: string;
  trace?: string;
  inspect?: number;
}

export function parseRunArgs(argv: string[]): RunArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      smp: { type: 'string' },
      'gic-version': { type: 'string' },
      append: { type: 'string' },
      memory: { type: 'string', short: 'm' },
      timeout: { type: 'string' },
      'virtual-time': { type: 'boolean' },
      report: { type: 'boolean' },
      'precise-aborts': { type: 'boolean' },
      initrd: { type: 'string' },
      dtb: { type: 'string' },
      dumpdtb: { type: 'string' },
      trace: { type: 'string' },
      inspect: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) bad(`run takes one IMAGE, got ${positionals.length}`);
  const smp = values.smp === undefined ? 1 : Number(values.smp);
  if (!Number.isInteger(smp) || smp < 1 || smp > 8) bad(`--smp takes 1..8, got '${values.smp}'`);
  const gicVersion = values['gic-version'] === undefined ? 3 : Number(values['gic-version']);
  if (gicVersion !== 2 && gicVersion !== 3) bad(`--gic-version takes 2 or 3, got '${values['gic-version']}'`);
  const timeout = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!(timeout >= 0)) bad(`--timeout takes seconds >= 0, got '${values.timeout}'`);
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
    image: positionals[0],
    trace: values.trace,
    inspect,
    report: values.report ?? false,
    initrd: values.initrd,
    dtb: values.dtb,
    dumpdtb: values.dumpdtb,
    options: {
      smp,
      gicVersion,
      append: values.append,
      ramSize: values.memory === undefined ? undefined : parseSize(values.memory),
      timeLimitMs: timeout * 1000,
      time: values['virtual-time'] ? 'virtual' : 'real',
      preciseAborts: values['precise-aborts'] ?? false,
    },
  };
}

/** Runs the command; the caller sets the exit code from report.status. */
export async function runCli(argv: string[]): Promise<RunCliResult> {
  const args = parseRunArgs(argv);
  const read = (file: string, what: string): Uint8Array => {
    try {
      return readFileSync(file);
    } catch (e) {
      bad(`cannot read ${what} ${file}: ${(e as Error).message}`);
    }
  };
  const bytes = read(args.image, 'the image');
  const options: MachineOptions = {
    ...args.options,
    initrd: args.initrd === undefined ? undefined : read(args.initrd, 'the initrd'),
    dtb: args.dtb === undefined ? undefined : read(args.dtb, 'the device tree'),
  };
  const always = args.report;
  const m = new Machine(options);
  const loaded = m.load(bytes);
  if (args.dumpdtb !== undefined) {
    writeFileSync(args.dumpdtb, m.deviceTree());
    m.close();
    process.stderr.write(
      `vgic run: device tree (${m.deviceTree().length} bytes, at ${loaded.dtbAddr.toString(16)}) written to ${args.dumpdtb}\n`,
    );
    return { report: undefined };
  }
  const stdin = process.stdin;
  const onData = (b: Buffer) => m.input(b);
  const onEnd = () => m.endInput();
  if (!stdin.isTTY || stdin.readable) {
    m.expectInput();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
  }
  const observers = await attachObservers(m.gic, {
    trace: args.trace,
    inspect: args.inspect,
    label: 'vgic run',
  });
  try {
    const report = await m.run();
    if (always || !['system-off', 'semihosting-exit', 'system-reset', 'cpus-off'].includes(report.reason)) {
      process.stderr.write(`vgic run: ${report.message}\n`);
    }
    return { report };
  } finally {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.pause();
    stdin.unref?.();
    await observers.close();
    m.close();
  }
}
