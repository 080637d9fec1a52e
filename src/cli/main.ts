#!/usr/bin/env node
/**
 * The `vgic` command line: demo, qtest, micro-bench, lpi-bench, lpi-stress, run, linux, conformance,
 * guest-bench. A thin shell over the library.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { VgicError } from '../arch/errors.ts';
import { formatAdversarial, runAdversarial } from '../bench/adversarial.ts';
import { formatChurnLong, runChurnLong } from '../bench/churn.ts';
import { formatLinuxBench, runLinuxBench } from '../bench/linux-boot.ts';
import { formatLpiBench, runLpiBench } from '../bench/lpi.ts';
import { formatMicroBench, MICRO_TEST_NAMES, machineDescription, runMicroBench } from '../bench/micro.ts';
import { Vgic } from '../device/vgic.ts';
import { formatConformance, runConformance } from '../machine/conformance.ts';
import { formatGuestBench, runGuestBench } from '../machine/guest-bench.ts';
import { LinuxAssetsError } from '../machine/linux-assets.ts';
import { MachineUnavailableError } from '../machine/native.ts';
import { formatDemo, runDemo } from './demo.ts';
import { LINUX_USAGE, LinuxUsageError, runLinuxCli } from './linux.ts';
import { LPI_STRESS_USAGE, parseLpiStressArgs, runLpiStressCli } from './lpi-stress.ts';
import { runQtest } from './qtest.ts';
import { RUN_USAGE, RunUsageError, runCli } from './run.ts';

const USAGE = `vgic — the ARM GICv3 as a virtual device (KVM's vgic design, in TypeScript)

Usage: vgic <command> [options]

Commands:
  demo                 4 vCPUs program a GICv3, exchange SGIs, take PPIs, SPIs and a timer
                       interrupt; prints what each vCPU acknowledged, in order, with priority
      --vcpus N        number of vCPUs (default 4)
  qtest                QEMU-qtest-style line protocol on stdin/stdout (try: echo help | vgic qtest)
      --vcpus N        number of vCPUs (default 1)
      --spis N         number of SPIs, a multiple of 32 (default 224)
      --lrs N          list registers per vCPU, 1..16 (default 4)
      --ram-size SIZE  guest RAM at 0x40000000, e.g. 128M (default 128M; 0 for none)
      --virtual-time   the counter moves only on clock_step / WFI
      --its N          ITSes, 0..16 (default 0): ITS k at 0x08080000 + k*0x20000, MSI doorbell
                       at its base + 0x10040; with N > 1 the redistributors follow the last ITS
  micro-bench          micro-benchmarks with kvm-unit-tests micro-bench semantics: single-thread
                       (mmio_read_vgic, eoi, sgi_self, ipi_inprocess, each also /unshared) and
                       threaded, vCPU 0 and vCPU 1 on two worker threads (ipi, ipi_wfi, lpi:
                       + p50/p99 per iteration; timer_10ms: 256 × 10 ms, overshoot reported)
      --iterations N   calls per trial (default 65536; timer_10ms always 256)
      --trials N       trials per single-thread test, median reported (default 11); threaded
                       tests: a warm-up, then 5 timed passes (ipi_wfi: 3, timer_10ms: 1)
      --only A,B       run only these tests (a name without /unshared runs both variants)
      --design D       software (default) or direct: lpi's LPI forwarded to GICv4.1 direct
                       injection (row lpi/direct; ipi_hw, a direct vSGI, is not implemented)
      --json FILE      also write the results as JSON (e.g. bench/results/micro-bench.json)
  lpi-bench            MSI inject + ack + EOI rate, and injection alone, for 1 and 65536 mapped
                       events and IDbits 14 and 16 (single thread)
      --lpis N         LPIs per trial (default 262144)
      --design D       software (default) or direct: every configuration also with GICv4.1
                       direct injection (each event forwarded; IAR takes from the VPT)
      --trials N       trials per configuration, median reported (default 9)
      --json FILE      also write the results as JSON (e.g. bench/results/lpi-bench.json)
${LPI_STRESS_USAGE}
${RUN_USAGE}
${LINUX_USAGE}
  conformance          builds the bare-metal guest programs (guest/) and runs each on QEMU 7.2
                       (-M virt,gic-version=3 -cpu max) and on vgic's machine; diffs the
                       transcripts (MASK lines compare names only); exit 1 on any difference
      --only A,B       only these programs (default: every test program of guest/programs.json)
      --json FILE      also write the results as JSON
  guest-bench          bench_sgi and bench_lpi on QEMU and on vgic's machine, alternating;
                       median (min..max) ns per operation and the targets (LPI ≥ 5× QEMU, SGI ≥ QEMU)
      --trials N       runs per machine (default 3)
      --json FILE      also write the results as JSON (e.g. bench/results/guest-bench.json)
  linux-bench          Debian's kernel + the same initramfs on QEMU 7.2 and on vgic's machine,
                       alternating: seconds to Run /init, userspace, power-off; an in-guest shell
                       loop and fork/exec; median (min..max) and vgic / QEMU
      --trials N       boots per machine and vCPU count (default 3)
      --smp LIST       vCPU counts (default 1,2)
      --json FILE      also write the results as JSON (e.g. bench/results/linux-boot.json)
  adversarial          seeded adversarial operations (guest MMIO on every frame, ICC_* and random
                       sysregs, ITS command streams valid and garbage, wild table bases, host
                       misuse, snapshot/restore of clean and mutated blobs) on varied GICs, every
                       invariant checked after each; exit 1 on a failure, with its replay command
      --ops N          operations (default 10000000)
      --seed S         the PRNG seed (default 1)
      --max-op-ms MS   fail when one operation takes longer, wall and CPU time (default 50;
                       snapshot and restore 4x)
      --seconds S      stop after S seconds (the report gives the operations that ran)
      --light          smaller GICs only (2^14 LPI INTIDs, caches up to 1024 entries), as CI runs
      --trace-from I   print every operation from index I on (replay)
      --full-check-every K
                       check the whole state every K operations (default 1: after each) and
                       after every operation that can reach the ITS books; between, only what
                       each operation touched (K = 1000: ~20 % quicker)
      --json FILE      also write the results as JSON
  churn                MSIs from injector threads while a churn thread issues MAPD unmap/remap,
                       DISCARD, MOVI and MAPC and guests acknowledge on vCPU threads, the
                       translation cache's generation wrapping every ms; then drains and closes
                       the books: exit 1 on any phantom or lost interrupt (or command error)
      --seconds N      how long the MSIs fly (default 10)
      --seed S         the churn's choices (default 5)
      --json FILE      also write the results as JSON

Options:
  -h, --help           this text
  --version            the version`;

/** A benchmark's results as JSON, with the date and the machine they were measured on. */
function writeJson(file: string, benchmark: string, results: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const doc = { benchmark, date: new Date().toISOString(), machine: machineDescription(), results };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`vgic: ${message}\n`);
  process.exit(2);
}

function intOption(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) fail(`--${name} takes a whole number, got '${v}'`);
  return Number(v);
}

function sizeOption(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)([KMG]?)$/i.exec(v);
  if (!m) fail(`--ram-size takes a size like 128M, 64K or 1G, got '${v}'`);
  const mul = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mul;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (cmd === '--version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (cmd === 'run') {
    const { report } = await runCli(rest);
    process.exitCode = report === undefined ? 0 : report.status & 0xff;
    return;
  }
  if (cmd === 'linux-bench') {
    const { values } = parseArgs({
      args: rest,
      options: { json: { type: 'string' }, trials: { type: 'string' }, smp: { type: 'string' } },
      strict: true,
    });
    const trials = intOption(values.trials, 'trials', 3);
    const smps = (values.smp ?? '1,2').split(',').map((v) => intOption(v.trim(), 'smp', 1));
    const r = await runLinuxBench({ trials, smps, log: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`${formatLinuxBench(r)}\n`);
    if (values.json) writeJson(values.json, 'linux-boot', r);
    return;
  }
  if (cmd === 'linux') {
    process.exitCode = await runLinuxCli(rest);
    return;
  }
  if (cmd === 'conformance' || cmd === 'guest-bench') {
    const { values } = parseArgs({
      args: rest,
      options: { only: { type: 'string' }, json: { type: 'string' }, trials: { type: 'string' } },
      strict: true,
    });
    if (cmd === 'conformance') {
      const only = values.only?.split(',').map((n) => n.trim());
      const log = (r: { program: string; pass: boolean }) =>
        process.stderr.write(`${r.program}: ${r.pass ? 'same' : 'DIFFERS'}\n`);
      const results = await runConformance({ only, progress: process.stderr.isTTY ? log : undefined });
      process.stdout.write(`${formatConformance(results)}\n`);
      if (values.json) writeJson(values.json, 'conformance', results);
      if (results.some((r) => !r.pass)) process.exitCode = 1;
    } else {
      const trials = intOption(values.trials, 'trials', 3);
      const rows = await runGuestBench(
        trials,
        process.stderr.isTTY ? (l) => process.stderr.write(`\r\x1b[K${l}`) : undefined,
      );
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      process.stdout.write(`${formatGuestBench(rows)}\n`);
      if (values.json) writeJson(values.json, 'guest-bench', rows);
    }
    return;
  }
  if (cmd === 'adversarial') {
    const { values } = parseArgs({
      args: rest,
      options: {
        ops: { type: 'string' },
        seed: { type: 'string' },
        'max-op-ms': { type: 'string' },
        seconds: { type: 'string' },
        light: { type: 'boolean' },
        'trace-from': { type: 'string' },
        'full-check-every': { type: 'string' },
        json: { type: 'string' },
      },
      strict: true,
    });
    const traceFrom = values['trace-from'];
    const r = runAdversarial({
      ops: intOption(values.ops, 'ops', 10_000_000),
      seed: intOption(values.seed, 'seed', 1),
      maxOpMs: intOption(values['max-op-ms'], 'max-op-ms', 50),
      ...(values.seconds !== undefined ? { seconds: intOption(values.seconds, 'seconds', 0) } : {}),
      light: values.light === true,
      ...(traceFrom !== undefined ? { traceFrom: intOption(traceFrom, 'trace-from', 0) } : {}),
      fullCheckEvery: intOption(values['full-check-every'], 'full-check-every', 1),
      progress: (n, ms) => process.stderr.write(`${n} operations, ${(ms / 1000).toFixed(0)} s\n`),
    });
    process.stdout.write(`${formatAdversarial(r)}\n`);
    if (values.json) writeJson(values.json, 'adversarial', r);
    if (r.failures > 0) process.exitCode = 1;
    return;
  }
  if (cmd === 'churn') {
    const { values } = parseArgs({
      args: rest,
      options: { seconds: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' } },
      strict: true,
    });
    const tty = process.stderr.isTTY;
    const r = await runChurnLong({
      seconds: intOption(values.seconds, 'seconds', 10),
      seed: intOption(values.seed, 'seed', 5),
      ...(tty
        ? {
            progress: (p) =>
              process.stderr.write(
                `\r\x1b[K${(p.elapsedMs / 1000).toFixed(0)} s: MSIs sent ${p.sent}, delivered ${p.delivered}, acked ${p.acked}, wraps ${p.wraps}, churn rounds ${p.rounds}`,
              ),
          }
        : {}),
    });
    if (tty) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${formatChurnLong(r)}\n`);
    if (values.json) writeJson(values.json, 'churn', r);
    if (r.failed) process.exitCode = 1;
    return;
  }
  if (cmd === 'lpi-stress') {
    const progress = process.stderr.isTTY ? (l: string) => process.stderr.write(`\r\x1b[K${l}`) : undefined;
    const r = await runLpiStressCli(rest, progress);
    if (progress) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${r.text}\n`);
    const json = parseLpiStressArgs(rest).json;
    if (json) writeJson(json, 'lpi-stress', r.rows);
    if (r.failed) process.exitCode = 1;
    return;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      vcpus: { type: 'string' },
      spis: { type: 'string' },
      lrs: { type: 'string' },
      'ram-size': { type: 'string' },
      'virtual-time': { type: 'boolean' },
      its: { type: 'string' },
      iterations: { type: 'string' },
      lpis: { type: 'string' },
      trials: { type: 'string' },
      json: { type: 'string' },
      only: { type: 'string' },
      design: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  switch (cmd) {
    case 'demo': {
      process.stdout.write(`${formatDemo(runDemo(intOption(values.vcpus, 'vcpus', 4)))}\n`);
      return;
    }
    case 'qtest': {
      const ramSize = sizeOption(values['ram-size'], 128 * 1024 ** 2);
      const gic = Vgic.create({
        vcpus: intOption(values.vcpus, 'vcpus', 1),
        spis: intOption(values.spis, 'spis', 224),
        lrs: intOption(values.lrs, 'lrs', 4),
        time: values['virtual-time'] ? 'virtual' : 'real',
        ram: ramSize > 0 ? { size: ramSize } : undefined,
        its: intOption(values.its, 'its', 0),
      });
      const rl = createInterface({
        input: process.stdin,
        crlfDelay: Number.POSITIVE_INFINITY,
        terminal: false,
      });
      await runQtest(gic, rl, (t) => process.stdout.write(t));
      rl.close();
      return;
    }
    case 'micro-bench': {
      const only = values.only?.split(',').map((n) => n.trim());
      for (const n of only ?? []) {
        if (!MICRO_TEST_NAMES.includes(n))
          fail(`--only: unknown test '${n}' (tests: ${MICRO_TEST_NAMES.join(', ')})`);
      }
      const design = values.design ?? 'software';
      if (design !== 'software' && design !== 'direct')
        fail(`--design takes software or direct, got '${design}'`);
      const results = await runMicroBench({
        iterations: intOption(values.iterations, 'iterations', 65536),
        trials: intOption(values.trials, 'trials', 11),
        only,
        design,
      });
      process.stdout.write(`${formatMicroBench(results)}\n`);
      if (values.json) writeJson(values.json, 'micro-bench', results);
      if (results.some((r) => r.errors > 0)) process.exitCode = 1;
      return;
    }
    case 'lpi-bench': {
      const design = values.design ?? 'software';
      if (design !== 'software' && design !== 'direct')
        fail(`--design takes software or direct, got '${design}'`);
      const results = runLpiBench({
        direct: design === 'direct',
        lpis: intOption(values.lpis, 'lpis', 2 ** 18),
        trials: intOption(values.trials, 'trials', 9),
      });
      process.stdout.write(`${formatLpiBench(results)}\n`);
      if (values.json) writeJson(values.json, 'lpi-bench', results);
      if (results.some((r) => r.errors > 0)) process.exitCode = 1;
      return;
    }
    default:
      fail(`unknown command '${cmd}' (try vgic --help)`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (
    e instanceof VgicError ||
    e instanceof RunUsageError ||
    e instanceof LinuxUsageError ||
    (e instanceof TypeError && 'code' in e)
  )
    fail(e.message);
  if (e instanceof MachineUnavailableError || e instanceof LinuxAssetsError) {
    process.stderr.write(`vgic: ${e.message}\n`);
    process.exit(3);
  }
  throw e;
});
