/**
 * Loads the machine's CPU addon (native/unicorn: N-API over libunicorn 2.1) and says exactly what
 * is missing when it cannot: the library never needs it, only `vgic run`, `vgic linux` and
 * `vgic conformance` do. The addon's self-check refuses a libunicorn older than 2.1 or one that
 * does not export the QEMU functions the CPU layer calls (native/unicorn/qemu_cpu.h).
 *
 * `npm install vgic` compiles nothing: the addon is built on the machine's first use, here, when
 * libunicorn-dev is installed (scripts/build-native.mjs, node-gyp; about a minute, once per install).
 *
 * Who may call: the machine, once per process (the addon is cached).
 */

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An opaque CPU handle (a Unicorn instance and its hooks). */
export type CpuHandle = { readonly __cpu: unique symbol };

export interface UnicornAddon {
  /**
   * A CPU whose exits call `handler()` with the exit described in `io` (see cpu-io.ts). CPUs of
   * one machine share `sync` (SYNC_WORDS words): broadcast TLB and I-cache maintenance.
   */
  create(index: number, mpidr: number, handler: () => void, io: Uint32Array, sync?: Uint32Array): CpuHandle;
  mapRam(cpu: CpuHandle, base: number, bytes: Uint8Array): void;
  mapMmio(cpu: CpuHandle, base: number, size: number, id: number): void;
  trapSysreg(cpu: CpuHandle, encoding: number, advancePc: boolean): void;
  /** An EL1 register QEMU lacks, defined in the CPU's register table: accesses exit without a hook. */
  defineSysreg(cpu: CpuHandle, encoding: number): void;
  preciseAborts(cpu: CpuHandle, begin: number, end: number): void;
  /** Whether the board's GIC has a system-register interface (GICv3): ID_AA64PFR0_EL1.GIC. */
  setGicSysregs(cpu: CpuHandle, on: boolean): void;
  run(cpu: CpuHandle, maxBlocks: number): number;
  stop(cpu: CpuHandle): void;
  getReg(cpu: CpuHandle, id: number): bigint;
  setReg(cpu: CpuHandle, id: number, value: bigint | number): void;
  enterException(
    cpu: CpuHandle,
    kind: number,
    elr: bigint | number,
    esr: bigint | number,
    far: bigint | number,
  ): void;
  readMem(cpu: CpuHandle, addr: number, into: Uint8Array): boolean;
  flushTb(cpu: CpuHandle): void;
  close(cpu: CpuHandle): void;
  version(): number;
  /** null, or what this libunicorn lacks (too old, or QEMU functions not exported). */
  selfCheck(): string | null;
}

/** The one command that installs what the machine needs (Debian packages, then the addon). */
export const INSTALL_COMMAND = 'bash scripts/install-system-deps.sh';

/** The machine cannot run here; `missing` names each missing piece. */
export class MachineUnavailableError extends Error {
  override name = 'MachineUnavailableError';
  readonly code = 'MACHINE_UNAVAILABLE';
  readonly missing: readonly string[];
  constructor(missing: readonly string[], detail = '') {
    super(
      `vgic's machine needs ${missing.join(', ')}${detail ? ` (${detail})` : ''}. ` +
        `Install with (as root, from the vgic package directory): ${INSTALL_COMMAND}`,
    );
    this.missing = missing;
  }
}

const ADDON_URL = new URL('../../../native/unicorn/build/Release/vgic_unicorn.node', import.meta.url);
const BUILD_SCRIPT_URL = new URL('../../../scripts/build-native.mjs', import.meta.url);
const UNICORN_HEADER = '/usr/include/unicorn/unicorn.h';

/** First use with libunicorn-dev present and no addon (or a stale one): build it now, saying so (it takes a while). */
function buildAddon(path: string): string | undefined {
  const script = fileURLToPath(BUILD_SCRIPT_URL);
  if (!existsSync(script)) return `${script} is missing`;
  process.stderr.write(
    `vgic: building the machine's CPU addon (first use, or its sources changed; node-gyp, about a minute): ${path}\n`,
  );
  const r = spawnSync(process.execPath, [script, '--strict'], { encoding: 'utf8' });
  if (r.status === 0 && existsSync(path)) return undefined;
  return `node ${script} failed: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
}

const SOURCE_URLS = ['vgic_unicorn.c', 'qemu_cpu.c', 'qemu_cpu.h', 'binding.gyp'].map(
  (f) => new URL(`../../../native/unicorn/${f}`, import.meta.url),
);

/**
 * Whether the addon is older than one of its sources: a checkout that moved on (a new addon call)
 * would otherwise load the old binary, which cannot be unloaded once required.
 */
function addonStale(path: string): boolean {
  const built = statSync(path).mtimeMs;
  return SOURCE_URLS.some((u) => {
    const f = fileURLToPath(u);
    return existsSync(f) && statSync(f).mtimeMs > built;
  });
}

let cached: UnicornAddon | undefined;

/** The addon, or a MachineUnavailableError naming what is missing. */
export function loadUnicorn(): UnicornAddon {
  if (cached) return cached;
  const path = fileURLToPath(ADDON_URL);
  const missing: string[] = [];
  if (!existsSync(UNICORN_HEADER)) missing.push('libunicorn-dev (Debian package)');
  if (missing.length > 0) {
    if (!existsSync(path)) missing.push(`the CPU addon ${path} (built by scripts/build-native.mjs)`);
    throw new MachineUnavailableError(missing);
  }
  if (!existsSync(path) || addonStale(path)) {
    const failed = buildAddon(path);
    if (failed !== undefined) throw new MachineUnavailableError([`the CPU addon ${path}`], failed);
  }
  try {
    const addon = createRequire(import.meta.url)(path) as UnicornAddon;
    const lacks =
      typeof addon.selfCheck === 'function' ? addon.selfCheck() : 'an addon built before the self-check';
    if (lacks !== null)
      throw new MachineUnavailableError(['libunicorn 2.1 (Debian trixie libunicorn-dev)'], lacks);
    cached = addon;
  } catch (e) {
    if (e instanceof MachineUnavailableError) throw e;
    throw new MachineUnavailableError(['a loadable CPU addon'], (e as Error).message);
  }
  return cached;
}
