/**
 * `vgic run IMAGE [--smp N] [--append ARGS]`: boots a guest image on vgic's machine (Unicorn CPUs,
 * vgic's GICv3 + ITS, QEMU virt's layout). UART to stdout, stdin to the UART. The process exits
 * with the guest's status (semihosting SYS_EXIT, else a final `EXIT: STATUS=n` line, else 0), 124
 * on the time limit, 125 on a guest fault, 126 when every vCPU waits forever; the report of how
 * the run ended goes to stderr.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Machine, type MachineOptions, type RunReport } from '../machine/machine.ts';

export const RUN_USAGE = `  run IMAGE            boots IMAGE on vgic's machine (QEMU virt layout: Unicorn CPUs, vgic's
                       GICv3 + ITS, PL011, PSCI over HVC, semihosting): an ELF at its own
                       addresses, or an arm64 Image / flat binary at RAM + 0x80000; DTB in x0.
                       Exit status: the guest's (SYS_EXIT, else a final 'EXIT: STATUS=n' line,
                       else 0); 124 time limit, 125 guest fault, 126 every vCPU idle for good
      --smp N          vCPUs, 1..8 (default 1)
      --append ARGS    kernel command line (/chosen/bootargs, semihosting SYS_GET_CMDLINE)
      -m, --memory SZ  RAM size, e.g. 128M (default 128M)
      --timeout SEC    host seconds before the run is stopped with a report (default 60; 0: none)
      --virtual-time   the counter advances with executed code, not host time (deterministic)
      --precise-aborts exact ELR for aborts on unmapped addresses (slower loads/stores)
      --report         print the run's report to stderr even when it ended normally`;

export interface RunCliResult {
  readonly report: RunReport;
}

function bad(message: string): never {
  throw new RunUsageError(message);
}

export class RunUsageError extends Error {
  override name = 'RunUsageError';
}

function parseSize(v: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(v);
  if (!m) bad(`--memory takes a size like 128M or 1G, got '${v}'`);
  const mul = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mul;
}

export function parseRunArgs(argv: string[]): { image: string; options: MachineOptions; report: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      smp: { type: 'string' },
      append: { type: 'string' },
      memory: { type: 'string', short: 'm' },
      timeout: { type: 'string' },
      'virtual-time': { type: 'boolean' },
      report: { type: 'boolean' },
      'precise-aborts': { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) bad(`run takes one IMAGE, got ${positionals.length}`);
  const smp = values.smp === undefined ? 1 : Number(values.smp);
  if (!Number.isInteger(smp) || smp < 1 || smp > 8) bad(`--smp takes 1..8, got '${values.smp}'`);
  const timeout = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!(timeout >= 0)) bad(`--timeout takes seconds >= 0, got '${values.timeout}'`);
  return {
    image: positionals[0],
    report: values.report ?? false,
    options: {
      smp,
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
  const { image, options, report: always } = parseRunArgs(argv);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(image);
  } catch (e) {
    bad(`cannot read ${image}: ${(e as Error).message}`);
  }
  const m = new Machine(options);
  m.load(bytes);
  const stdin = process.stdin;
  const onData = (b: Buffer) => m.input(b);
  const onEnd = () => m.endInput();
  if (!stdin.isTTY || stdin.readable) {
    m.expectInput();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
  }
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
    m.close();
  }
}
