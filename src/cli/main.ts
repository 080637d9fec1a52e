#!/usr/bin/env node
/**
 * The `vgic` command line: demo, qtest, micro-bench, lpi-bench, lpi-stress, run, linux, conformance,
 * guest-bench, linux-bench, adversarial, churn. A thin shell over the library. Every command is one
 * entry of COMMANDS: its flags declared once (cli/flags.ts: the parser, the checks and the help
 * come from the declaration; run, linux and lpi-stress keep their own parsers and usage text),
 * `vgic CMD --help`, a bad flag or value as one line on stderr and exit status 2, progress on
 * stderr for anything that runs for more than a few seconds, and `--json FILE` results that carry
 * the schema version, vgic's version and commit, and the options used.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { VgicError } from '../arch/errors.ts';
import { VGIC_MAX_SPIS } from '../arch/intid.ts';
import { formatAdversarial, runAdversarial } from '../bench/adversarial.ts';
import { formatChurnLong, runChurnLong } from '../bench/churn.ts';
import { formatDirtyLogBench, runDirtyLogBench } from '../bench/dirty-log.ts';
import { formatLinuxBench, runLinuxBench } from '../bench/linux-boot.ts';
import { formatLpiBench, runLpiBench } from '../bench/lpi.ts';
import { formatMicroBench, MICRO_TEST_NAMES, machineDescription, runMicroBench } from '../bench/micro.ts';
import { Vgic } from '../device/vgic.ts';
import { formatConformance, readManifest, runConformance } from '../machine/conformance.ts';
import { formatGuestBench, runGuestBench } from '../machine/guest-bench.ts';
import { LinuxAssetsError } from '../machine/linux-assets.ts';
import { MachineUnavailableError } from '../machine/native.ts';
import { formatTraceEvent, traceSubscribe } from '../trace/trace.ts';
import { formatDemo, runDemo } from './demo.ts';
import {
  type CommandSpec,
  commandHelp,
  type FlagValue,
  type Parsed,
  parseCommand,
  UsageError,
} from './flags.ts';
import { LINUX_USAGE, LinuxUsageError, parseLinuxArgs, runLinuxCli } from './linux.ts';
import { LPI_STRESS_USAGE, parseLpiStressArgs, runLpiStressCli } from './lpi-stress.ts';
import { runQtest } from './qtest.ts';
import { parseRunArgs, RUN_USAGE, RunUsageError, runCli } from './run.ts';

/** The version of the JSON documents `--json FILE` writes (bump when a field changes meaning). */
export const JSON_SCHEMA_VERSION = 2;

const JSON_FLAG = {
  name: 'json',
  kind: 'string',
  arg: 'FILE',
  help: 'also write the results as JSON',
} as const;

const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The commit of a git checkout of vgic; null where there is none (an installed package) or no git. */
function gitCommit(): string | null {
  // Only vgic's own checkout: installed under a consumer's repository, git would name theirs.
  if (!existsSync(join(packageRoot, '.git'))) return null;
  try {
    const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot, encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0) return null;
    const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: packageRoot,
      encoding: 'utf8',
      timeout: 5000,
    });
    return `${r.stdout.trim()}${dirty.status === 0 && dirty.stdout.trim() !== '' ? '-dirty' : ''}`;
  } catch {
    return null;
  }
}

/**
 * A result as JSON: the schema version, vgic's version and commit, the date, the machine it was
 * measured on and the options the command ran with (every flag's value, defaults included).
 */
function writeJson(file: string, benchmark: string, options: unknown, results: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const doc = {
    schemaVersion: JSON_SCHEMA_VERSION,
    benchmark,
    vgic: { version: version(), commit: gitCommit() },
    date: new Date().toISOString(),
    machine: machineDescription(),
    options,
    results,
  };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

/**
 * Progress on stderr: on a terminal one line rewritten in place; otherwise (CI logs, pipes) whole
 * lines, at most one per PROGRESS_EVERY_MS, so a long run shows it is alive without flooding.
 */
const PROGRESS_EVERY_MS = 2000;
function progress(): { readonly line: (text: string) => void; readonly done: () => void } {
  const tty = process.stderr.isTTY === true;
  let last = Number.NEGATIVE_INFINITY;
  return {
    line: (text) => {
      if (tty) {
        process.stderr.write(`\r\x1b[K${text}`);
        return;
      }
      const now = performance.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      process.stderr.write(`${text}\n`);
    },
    done: () => {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/** The options a JSON result records: every flag of the spec with its value (defaults included). */
function optionsOf(p: Parsed, omit: readonly string[] = ['json']): Record<string, FlagValue | undefined> {
  const out: Record<string, FlagValue | undefined> = {};
  for (const [k, v] of Object.entries(p.values)) if (!omit.includes(k)) out[k] = v;
  return out;
}

/** The guest programs `conformance --only` may name (undefined where guest/ is not there: not checked). */
function guestProgramNames(): string[] | undefined {
  try {
    return readManifest().map((p) => p.name);
  } catch {
    return undefined;
  }
}

const int = (p: Parsed, name: string) => p.values[name] as number;
const json = (p: Parsed) => p.values.json as string | undefined;

interface Command {
  readonly name: string;
  /** Positional arguments, for the usage line (e.g. 'IMAGE'). */
  readonly args?: string;
  /** The command's block of `vgic --help`, and all of `vgic CMD --help`. */
  readonly help: string;
  readonly run: (argv: string[]) => Promise<void>;
}

/** A command whose flags are a spec: parsed and checked before `run` sees them. */
function specCommand(spec: CommandSpec, run: (p: Parsed) => Promise<void> | void): Command {
  return {
    name: spec.name,
    args: spec.args,
    help: commandHelp(spec),
    run: async (argv) => run(parseCommand(spec, argv)),
  };
}

const COMMANDS: readonly Command[] = [
  specCommand(
    {
      name: 'demo',
      summary:
        '4 vCPUs program a GICv3, exchange SGIs, take PPIs, SPIs and a timer\ninterrupt; prints what each vCPU acknowledged, in order, with priority',
      flags: [{ name: 'vcpus', kind: 'int', min: 1, max: 512, help: 'number of vCPUs', default: 4 }],
    },
    (p) => {
      process.stdout.write(`${formatDemo(runDemo(int(p, 'vcpus')))}\n`);
    },
  ),
  specCommand(
    {
      name: 'qtest',
      summary: 'QEMU-qtest-style line protocol on stdin/stdout (try: echo help | vgic qtest)',
      flags: [
        { name: 'vcpus', kind: 'int', min: 1, max: 512, help: 'number of vCPUs', default: 1 },
        {
          name: 'spis',
          kind: 'int',
          min: 0,
          max: VGIC_MAX_SPIS,
          help: 'number of SPIs, a multiple of 32',
          default: 224,
        },
        { name: 'lrs', kind: 'int', min: 1, max: 16, help: 'list registers per vCPU', default: 4 },
        {
          name: 'ram-size',
          kind: 'size',
          arg: 'SIZE',
          help: 'guest RAM at 0x40000000, e.g. 128M (0 for none)',
          default: '128M',
        },
        { name: 'virtual-time', kind: 'boolean', help: 'the counter moves only on clock_step / WFI' },
        {
          name: 'its',
          kind: 'int',
          min: 0,
          max: 16,
          default: 0,
          help: 'ITSes: ITS k at 0x08080000 + k*0x20000, MSI doorbell\nat its base + 0x10040; with N > 1 the redistributors follow the last ITS',
        },
        {
          name: 'gic-version',
          kind: 'int',
          min: 2,
          max: 3,
          default: 3,
          help: '3 (default) or 2: a GICv2 (GICD 0x08000000, GICC 0x08010000, at most 8\nvCPUs, no ITS); its CPU interface is MMIO (readl/writel on GICC)',
        },
        {
          name: 'trace',
          kind: 'string',
          arg: 'PATTERNS',
          help: 'trace events to stderr (QEMU -trace globs, e.g. gicv3_icc_*,vgic_flush_*)',
        },
      ],
    },
    async (p) => {
      const ram = p.values['ram-size'] as number;
      const gic = Vgic.create({
        vcpus: int(p, 'vcpus'),
        spis: int(p, 'spis'),
        lrs: int(p, 'lrs'),
        time: p.values['virtual-time'] ? 'virtual' : 'real',
        ram: ram > 0 ? { size: ram } : undefined,
        its: int(p, 'its'),
        gicVersion: int(p, 'gic-version') as 2 | 3,
      });
      const rl = createInterface({
        input: process.stdin,
        crlfDelay: Number.POSITIVE_INFINITY,
        terminal: false,
      });
      // Trace lines go to stderr, as QEMU's -trace log does: the protocol stays on stdout.
      const trace = p.values.trace as string | undefined;
      const sub =
        trace === undefined
          ? undefined
          : traceSubscribe(trace, (e) => process.stderr.write(`${formatTraceEvent(e)}\n`));
      await runQtest(gic, rl, (t) => process.stdout.write(t));
      sub?.unsubscribe();
      rl.close();
    },
  ),
  specCommand(
    {
      name: 'micro-bench',
      summary:
        'micro-benchmarks with kvm-unit-tests micro-bench semantics: single-thread\n(mmio_read_vgic, eoi, sgi_self, ipi_inprocess, each also /unshared) and\nthreaded, vCPU 0 and vCPU 1 on two worker threads (xcore: the cross-core\nround trip, no GIC; ipi, ipi_wfi, lpi:\n+ p50/p99 per iteration; timer_10ms: 256 × 10 ms, overshoot reported)',
      flags: [
        {
          name: 'iterations',
          kind: 'int',
          min: 1,
          help: 'calls per trial; timer_10ms always 256',
          default: 65536,
        },
        {
          name: 'trials',
          kind: 'int',
          min: 1,
          default: 11,
          help: 'trials per single-thread test, median reported; threaded\ntests: a warm-up, then 5 timed passes (ipi_wfi: 3, timer_10ms: 1)',
        },
        {
          name: 'only',
          kind: 'list',
          arg: 'A,B',
          choices: MICRO_TEST_NAMES,
          item: 'test',
          help: 'run only these tests (a name without /unshared runs both variants)',
        },
        {
          name: 'design',
          kind: 'choice',
          arg: 'D',
          choices: ['software', 'direct'],
          default: 'software',
          help: "direct: lpi's LPI forwarded to GICv4.1 direct injection (row lpi/direct),\nand ipi_hw (vSGIs, GICD_CTLR.nASSGIreq) runs",
        },
        JSON_FLAG,
      ],
    },
    async (p) => {
      const pr = progress();
      const results = await runMicroBench({
        iterations: int(p, 'iterations'),
        trials: int(p, 'trials'),
        only: p.values.only as string[] | undefined,
        design: p.values.design as 'software' | 'direct',
        progress: pr.line,
      });
      pr.done();
      process.stdout.write(`${formatMicroBench(results)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'micro-bench', optionsOf(p), results);
      if (results.some((r) => r.errors > 0)) process.exitCode = 1;
    },
  ),
  specCommand(
    {
      name: 'lpi-bench',
      summary:
        'MSI inject + ack + EOI rate, and injection alone, for 1 and 65536 mapped\nevents and IDbits 14 and 16 (single thread)',
      flags: [
        { name: 'lpis', kind: 'int', min: 1, help: 'LPIs per trial', default: 2 ** 18 },
        {
          name: 'trials',
          kind: 'int',
          min: 1,
          help: 'trials per configuration, median reported',
          default: 9,
        },
        {
          name: 'design',
          kind: 'choice',
          arg: 'D',
          choices: ['software', 'direct'],
          default: 'software',
          help: 'direct: every configuration also with GICv4.1 direct injection\n(each event forwarded; IAR takes from the VPT)',
        },
        JSON_FLAG,
      ],
    },
    (p) => {
      const pr = progress();
      const results = runLpiBench({
        direct: p.values.design === 'direct',
        lpis: int(p, 'lpis'),
        trials: int(p, 'trials'),
        progress: pr.line,
      });
      pr.done();
      process.stdout.write(`${formatLpiBench(results)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'lpi-bench', optionsOf(p), results);
      if (results.some((r) => r.errors > 0)) process.exitCode = 1;
    },
  ),
  specCommand(
    {
      name: 'dirty-log-bench',
      summary:
        'ns per guest-memory write with the dirty log off and on (sequential\nentries; one write per page with the log cleared each pass)',
      flags: [
        { name: 'trials', kind: 'int', min: 1, help: 'trials, median reported', default: 11 },
        JSON_FLAG,
      ],
    },
    (p) => {
      const rows = runDirtyLogBench({ trials: int(p, 'trials') });
      process.stdout.write(`${formatDirtyLogBench(rows)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'dirty-log-bench', optionsOf(p), rows);
    },
  ),
  {
    name: 'lpi-stress',
    help: LPI_STRESS_USAGE,
    run: async (argv) => {
      const options = lpiStressArgs(argv);
      const pr = progress();
      const r = await runLpiStressCli(argv, pr.line);
      pr.done();
      process.stdout.write(`${r.text}\n`);
      if (options.json) {
        const { json: _file, ...rest } = options;
        writeJson(options.json, 'lpi-stress', rest, r.rows);
      }
      if (r.failed) process.exitCode = 1;
    },
  },
  {
    name: 'run',
    args: 'IMAGE',
    help: RUN_USAGE,
    run: async (argv) => {
      const { report } = await runCli(argv);
      process.exitCode = report === undefined ? 0 : report.status & 0xff;
    },
  },
  {
    name: 'linux',
    help: LINUX_USAGE,
    run: async (argv) => {
      process.exitCode = await runLinuxCli(argv);
    },
  },
  specCommand(
    {
      name: 'conformance',
      summary:
        "builds the bare-metal guest programs (guest/) and runs each on QEMU 7.2\n(-M virt,gic-version=3 -cpu max; gic-version=2 for the v2_* programs) and\non vgic's machine; diffs the transcripts (MASK lines compare names only);\nexit 1 on any difference",
      flags: [
        {
          name: 'only',
          kind: 'list',
          arg: 'A,B',
          choices: guestProgramNames(),
          item: 'guest program',
          help: 'only these programs (default: every test program of guest/programs.json)',
        },
        JSON_FLAG,
      ],
    },
    async (p) => {
      const pr = progress();
      const results = await runConformance({
        only: p.values.only as string[] | undefined,
        progress: (r) => pr.line(`conformance: ${r.program}: ${r.pass ? 'same' : 'DIFFERS'}`),
      });
      pr.done();
      process.stdout.write(`${formatConformance(results)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'conformance', optionsOf(p), results);
      if (results.some((r) => !r.pass)) process.exitCode = 1;
    },
  ),
  specCommand(
    {
      name: 'guest-bench',
      summary:
        "bench_sgi and bench_lpi on QEMU and on vgic's machine, alternating;\nmedian (min..max) ns per operation and the targets (LPI ≥ 5× QEMU, SGI ≥ QEMU)",
      flags: [{ name: 'trials', kind: 'int', min: 1, help: 'runs per machine', default: 3 }, JSON_FLAG],
    },
    async (p) => {
      const pr = progress();
      const rows = await runGuestBench(int(p, 'trials'), pr.line);
      pr.done();
      process.stdout.write(`${formatGuestBench(rows)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'guest-bench', optionsOf(p), rows);
    },
  ),
  specCommand(
    {
      name: 'linux-bench',
      summary:
        "Debian's kernel + the same initramfs on QEMU 7.2 and on vgic's machine,\nalternating: seconds to Run /init, userspace, power-off; an in-guest shell\nloop and fork/exec; median (min..max) and vgic / QEMU",
      flags: [
        { name: 'trials', kind: 'int', min: 1, help: 'boots per machine and vCPU count', default: 3 },
        { name: 'smp', kind: 'ints', arg: 'LIST', min: 1, max: 8, help: 'vCPU counts', default: [1, 2] },
        JSON_FLAG,
      ],
    },
    async (p) => {
      const r = await runLinuxBench({
        trials: int(p, 'trials'),
        smps: [...(p.values.smp as number[])],
        log: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${formatLinuxBench(r)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'linux-boot', optionsOf(p), r);
    },
  ),
  specCommand(
    {
      name: 'adversarial',
      summary:
        'seeded adversarial operations (guest MMIO on every frame, ICC_* and random\nsysregs, ITS command streams valid and garbage, wild table bases, host\nmisuse, snapshot/restore of clean and mutated blobs) on varied GICs, every\ninvariant checked after each; exit 1 on a failure, with its replay command',
      flags: [
        { name: 'ops', kind: 'int', min: 1, help: 'operations', default: 10_000_000 },
        { name: 'seed', kind: 'int', arg: 'S', min: 0, max: 2 ** 32 - 1, help: 'the PRNG seed', default: 1 },
        {
          name: 'max-op-ms',
          kind: 'int',
          arg: 'MS',
          min: 1,
          default: 50,
          help: 'fail when one operation takes longer, wall and CPU time\n(snapshot and restore 4x)',
        },
        {
          name: 'seconds',
          kind: 'int',
          arg: 'S',
          min: 1,
          help: 'stop after S seconds (the report gives the operations that ran)',
        },
        {
          name: 'light',
          kind: 'boolean',
          help: 'smaller GICs only (2^14 LPI INTIDs, caches up to 1024 entries), as CI runs',
        },
        { name: 'trace-from', kind: 'int', arg: 'I', help: 'print every operation from index I on (replay)' },
        {
          name: 'full-check-every',
          kind: 'int',
          arg: 'K',
          min: 1,
          default: 1,
          help: 'check the whole state every K operations and after every operation\nthat can reach the ITS books; between, only what each operation\ntouched (K = 1000: ~20 % quicker)',
        },
        JSON_FLAG,
      ],
    },
    (p) => {
      const seconds = p.values.seconds as number | undefined;
      const traceFrom = p.values['trace-from'] as number | undefined;
      const r = runAdversarial({
        ops: int(p, 'ops'),
        seed: int(p, 'seed'),
        maxOpMs: int(p, 'max-op-ms'),
        ...(seconds !== undefined ? { seconds } : {}),
        light: p.values.light === true,
        ...(traceFrom !== undefined ? { traceFrom } : {}),
        fullCheckEvery: int(p, 'full-check-every'),
        progress: (n, ms) => process.stderr.write(`${n} operations, ${(ms / 1000).toFixed(0)} s\n`),
      });
      process.stdout.write(`${formatAdversarial(r)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'adversarial', optionsOf(p), r);
      if (r.failures > 0) process.exitCode = 1;
    },
  ),
  specCommand(
    {
      name: 'churn',
      summary:
        "MSIs from injector threads while a churn thread issues MAPD unmap/remap,\nDISCARD, MOVI and MAPC and guests acknowledge on vCPU threads, the\ntranslation cache's generation wrapping every ms; then drains and closes\nthe books: exit 1 on any phantom or lost interrupt (or command error)",
      flags: [
        { name: 'seconds', kind: 'int', min: 1, help: 'how long the MSIs fly', default: 10 },
        {
          name: 'seed',
          kind: 'int',
          arg: 'S',
          min: 0,
          max: 2 ** 32 - 1,
          help: "the churn's choices",
          default: 5,
        },
        JSON_FLAG,
      ],
    },
    async (p) => {
      const pr = progress();
      const r = await runChurnLong({
        seconds: int(p, 'seconds'),
        seed: int(p, 'seed'),
        progress: (x) =>
          pr.line(
            `${(x.elapsedMs / 1000).toFixed(0)} s: MSIs sent ${x.sent}, delivered ${x.delivered}, acked ${x.acked}, wraps ${x.wraps}, churn rounds ${x.rounds}`,
          ),
      });
      pr.done();
      process.stdout.write(`${formatChurnLong(r)}\n`);
      const file = json(p);
      if (file) writeJson(file, 'churn', optionsOf(p), r);
      if (r.failed) process.exitCode = 1;
    },
  ),
];

/** lpi-stress's own parser throws a TypeError on misuse: one line and exit 2, as every command. */
function lpiStressArgs(argv: string[]): ReturnType<typeof parseLpiStressArgs> {
  try {
    return parseLpiStressArgs(argv);
  } catch (e) {
    throw new UsageError(`lpi-stress: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The names of every command (for tests and completion). */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map((c) => c.name);

const USAGE = `vgic — the ARM GICv3 as a virtual device (KVM's vgic design, in TypeScript)

Usage: vgic <command> [options]      (vgic <command> --help: that command's options)

Commands:
${COMMANDS.map((c) => c.help).join('\n')}

Options:
  -h, --help           this text
  --version            the version`;

function fail(message: string): never {
  process.stderr.write(`vgic: ${message}\n`);
  process.exit(2);
}

/** node:util's parseArgs errors (a TypeError with a code) as one UsageError line naming the command. */
function ownParser(name: string, parse: () => unknown): void {
  try {
    parse();
  } catch (e) {
    if (e instanceof TypeError && 'code' in e)
      throw new UsageError(`${name}: ${e.message.split('. To specify')[0]} (see vgic ${name} --help)`);
    throw e;
  }
}

/** `-h`/`--help` among a command's arguments (not a flag's value: `--script -h` is a script). */
function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
  }
  return false;
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
  const c = COMMANDS.find((x) => x.name === cmd);
  if (c === undefined)
    fail(`unknown command '${cmd}' (commands: ${COMMAND_NAMES.join(', ')}; try vgic --help)`);
  if (wantsHelp(rest)) {
    process.stdout.write(`Usage: vgic ${c.name}${c.args ? ` ${c.args}` : ''} [options]\n\n${c.help}\n`);
    return;
  }
  // The commands with their own parsers: check the arguments before anything starts.
  if (c.name === 'run') ownParser(c.name, () => parseRunArgs(rest));
  else if (c.name === 'linux') ownParser(c.name, () => parseLinuxArgs(rest));
  else if (c.name === 'lpi-stress') lpiStressArgs(rest);
  await c.run(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (
    e instanceof VgicError ||
    e instanceof UsageError ||
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
