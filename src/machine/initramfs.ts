/**
 * Initramfs images for `vgic linux`: a writer for the kernel's cpio "newc" format
 * (Documentation/driver-api/early-userspace/buffer-format.rst, usr/gen_init_cpio.c), gzip'd in
 * memory, and the busybox-based root filesystem `vgic linux` boots (an /init script that mounts
 * proc, sysfs and devtmpfs, then runs a script and powers off, or gives a shell).
 *
 * No `cpio` binary is needed (Debian's minimal images have none) and nothing touches the disk, so
 * the initramfs is built per boot from the command's options.
 *
 * Who calls: src/cli/linux.ts; the tests (test/initramfs.test.ts) read the archive back.
 */

import { gzipSync } from 'node:zlib';

export type CpioEntry =
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | {
      readonly type: 'file';
      readonly path: string;
      readonly data: Uint8Array | string;
      readonly mode?: number;
    }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string }
  | {
      readonly type: 'char' | 'block';
      readonly path: string;
      readonly major: number;
      readonly minor: number;
      readonly mode?: number;
    };

/** st_mode file types (linux/stat.h). */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export const NEWC_MAGIC = '070701';
export const NEWC_HEADER_SIZE = 110;
export const NEWC_TRAILER = 'TRAILER!!!';

const enc = new TextEncoder();

function hex8(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`cpio field out of range: ${v}`);
  return v.toString(16).padStart(8, '0');
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** Archive paths are relative ("bin/sh"), as gen_init_cpio writes them; "/bin/sh" is accepted. */
function normalise(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '' || p.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new RangeError(`bad initramfs path '${path}'`);
  }
  return p;
}

/**
 * An uncompressed newc archive of `entries`, in order, then the trailer. Parent directories that
 * no entry names are added first (0755): the kernel's unpacker does not create them, and a file
 * whose directory is missing is silently dropped. Owner root, mtime 0 (reproducible archives).
 */
export function writeNewc(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ino = 1;
  const seen = new Set<string>();
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.length;
  };
  const record = (name: string, mode: number, nlink: number, data: Uint8Array, rdev: [number, number]) => {
    const nameBytes = enc.encode(`${name}\0`);
    const fields = [
      ino++, // c_ino: distinct, so the kernel never takes two files for hard links
      mode,
      0, // uid
      0, // gid
      nlink,
      0, // mtime
      data.length,
      0, // devmajor
      0, // devminor
      rdev[0],
      rdev[1],
      nameBytes.length,
      0, // check: only for the 070702 (crc) variant
    ];
    push(enc.encode(NEWC_MAGIC + fields.map(hex8).join('')));
    push(nameBytes);
    push(new Uint8Array(pad4(NEWC_HEADER_SIZE + nameBytes.length)));
    if (data.length > 0) {
      push(data);
      push(new Uint8Array(pad4(data.length)));
    }
  };
  const dir = (p: string, mode = 0o755) => {
    seen.add(p);
    record(p, S_IFDIR | (mode & 0o7777), 2, new Uint8Array(0), [0, 0]);
  };
  const parents = (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!seen.has(parent)) dir(parent);
    }
  };

  for (const e of entries) {
    const p = normalise(e.path);
    if (seen.has(p)) throw new RangeError(`initramfs path '${e.path}' appears twice`);
    parents(p);
    switch (e.type) {
      case 'dir':
        dir(p, e.mode);
        break;
      case 'file': {
        const data = typeof e.data === 'string' ? enc.encode(e.data) : e.data;
        seen.add(p);
        record(p, S_IFREG | ((e.mode ?? 0o644) & 0o7777), 1, data, [0, 0]);
        break;
      }
      case 'symlink':
        seen.add(p);
        // The target is the data, without a NUL (as readlink returns it).
        record(p, S_IFLNK | 0o777, 1, enc.encode(e.target), [0, 0]);
        break;
      case 'char':
      case 'block':
        seen.add(p);
        record(
          p,
          (e.type === 'char' ? S_IFCHR : S_IFBLK) | ((e.mode ?? 0o600) & 0o7777),
          1,
          new Uint8Array(0),
          [e.major, e.minor],
        );
        break;
    }
  }
  record(NEWC_TRAILER, 0, 1, new Uint8Array(0), [0, 0]);

  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** `writeNewc` gzip'd: what `-initrd` and the machine take (the kernel has CONFIG_RD_GZIP). */
export function buildInitramfs(entries: readonly CpioEntry[]): Uint8Array {
  return gzipSync(writeNewc(entries), { level: 6 });
}

/** The first line userspace prints: the boot benchmarks and tests wait for it. */
export const USERSPACE_UP_LINE = 'vgic: userspace up';
/**
 * Printed just before the interactive shell starts. Input sent earlier is lost in the guest (the
 * PL011 driver drains its receive FIFO when the port is first opened), so piped input waits for it.
 */
export const SHELL_READY_LINE = 'vgic: busybox shell; exit (or Ctrl-D) powers off';
/** Printed when a --script has run, before the power-off. */
export const SCRIPT_DONE_PREFIX = 'vgic: script done, status';

export interface LinuxInitramfsOptions {
  /** busybox-static's binary (arm64). */
  readonly busybox: Uint8Array;
  /**
   * Shell commands run by /init after boot, then the machine powers off. Absent: an interactive
   * shell on the console, and power-off when it exits.
   */
  readonly script?: string;
  /** Print each script line before running it (sh -v). Default true. */
  readonly echo?: boolean;
}

/**
 * /init. The kernel runs it with /dev/console (from the archive: the cloud kernel has devtmpfs but
 * not DEVTMPFS_MOUNT, so without the node init would start with no stdin/stdout at all) as fd
 * 0/1/2. `poweroff -f` calls reboot(2) directly: PSCI SYSTEM_OFF, which ends QEMU and the machine.
 */
function initScript(hasScript: boolean, echo: boolean): string {
  const run = hasScript
    ? [`sh ${echo ? '-v ' : ''}/etc/vgic/script`, `echo "${SCRIPT_DONE_PREFIX} $?"`]
    : [
        `echo "${SHELL_READY_LINE}"`,
        // cttyhack opens the console's real tty (ttyAMA0) so that the shell gets job control and
        // Ctrl-C; /dev/console itself cannot be a controlling terminal.
        'setsid cttyhack sh -l',
      ];
  return [
    '#!/bin/sh',
    '/bin/busybox --install -s',
    'export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev',
    'mkdir -p /dev/pts /tmp && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /tmp',
    `echo "${USERSPACE_UP_LINE} ($(uname -r), $(nproc) CPUs)"`,
    ...run,
    'poweroff -f',
    '',
  ].join('\n');
}

/** The root filesystem `vgic linux` boots: busybox, /init, /dev/console, and the script if any. */
export function buildLinuxInitramfs(opts: LinuxInitramfsOptions): Uint8Array {
  const entries: CpioEntry[] = [
    ...['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'root', 'etc/vgic'].map(
      (path): CpioEntry => ({ type: 'dir', path }),
    ),
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'file', path: 'bin/busybox', data: opts.busybox, mode: 0o755 },
    // /init's interpreter; the other applets are linked by `busybox --install -s` at boot.
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'etc/profile', data: "export PS1='vgic:\\w\\$ '\n" },
    {
      type: 'file',
      path: 'init',
      data: initScript(opts.script !== undefined, opts.echo ?? true),
      mode: 0o755,
    },
  ];
  if (opts.script !== undefined) {
    entries.push({ type: 'file', path: 'etc/vgic/script', data: `${opts.script}\n`, mode: 0o755 });
  }
  return buildInitramfs(entries);
}

/**
 * A self-test for CI, as a `script`: checks in the guest's /proc/interrupts that the GIC delivers
 * the arch timer on every CPU, IPIs (on SMP) and the PL011's interrupt, then runs a fork/exec
 * loop. Prints `SELFTEST: ok NAME …` or `SELFTEST: FAIL NAME reason` per check and finally one
 * `SELFTEST: PASS` or `SELFTEST: FAIL n of m checks`.
 */
export function linuxSelftestScript(opts: { cpus?: number; forks?: number } = {}): string {
  const forks = opts.forks ?? 50;
  const lines = [
    'fails=0; checks=0',
    'ok() { checks=$((checks+1)); echo "SELFTEST: ok $*"; }',
    'bad() { checks=$((checks+1)); fails=$((fails+1)); echo "SELFTEST: FAIL $*"; }',
    'ncpu=$(grep -c ^processor /proc/cpuinfo)',
    // The counts of one /proc/interrupts row (label matched anywhere in the line), one per CPU.
    'counts() { awk -v pat="$1" \'NR==1{n=NF; next} $0 ~ pat {s=""; for(i=2;i<=n+1;i++) s=s" "$i; print s; exit}\' /proc/interrupts; }',
    'allpos() { for c in $*; do [ "$c" -gt 0 ] || return 1; done; [ -n "$*" ]; }',
    'sum() { t=0; for c in $*; do t=$((t+c)); done; echo $t; }',
    'echo "--- /proc/interrupts"; cat /proc/interrupts; echo "---"',
  ];
  if (opts.cpus !== undefined) {
    lines.push(
      `[ "$ncpu" -eq ${opts.cpus} ] && ok cpus "$ncpu online" || bad cpus "expected ${opts.cpus}, /proc/cpuinfo lists $ncpu"`,
    );
  }
  lines.push(
    't0=$(counts arch_timer)',
    'allpos $t0 && ok arch_timer "per-CPU:$t0" || bad arch_timer "per-CPU counts not all > 0 (arch_timer row:$t0)"',
    'u=$(counts pl011)',
    '[ -n "$u" ] && ok uart "pl011 row, per-CPU:$u" || bad uart "no pl011 row in /proc/interrupts"',
    'i0=$(counts "^ *IPI0:")',
    'if [ -z "$i0" ]; then bad ipi "no IPI0 row in /proc/interrupts"',
    'elif [ "$ncpu" -gt 1 ]; then ipis=$(awk \'/^ *IPI[0-9]+:/{for(i=2;i<=NF && $i ~ /^[0-9]+$/;i++) s+=$i} END{print s+0}\' /proc/interrupts)',
    '  [ "$ipis" -gt 0 ] && ok ipi "$ipis IPIs on $ncpu CPUs" || bad ipi "no IPI taken on $ncpu CPUs"',
    'else ok ipi "IPI0 row present (uniprocessor: counts may be 0)"; fi',
    `s0=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt ${forks} ]; do /bin/true || break; i=$((i+1)); done`,
    "s1=$(cut -d' ' -f1 /proc/uptime)",
    `[ $i -eq ${forks} ] && ok fork-exec "${forks} x /bin/true in $(awk -v a=$s0 -v b=$s1 'BEGIN{printf "%.2f", b-a}') s" || bad fork-exec "stopped after $i"`,
    // The timer must keep interrupting: the loop above took at least a tick on the CPU it ran on.
    't1=$(counts arch_timer)',
    '[ "$(sum $t1)" -gt "$(sum $t0)" ] && ok timer-runs "$(sum $t0) -> $(sum $t1)" || bad timer-runs "arch_timer total stuck at $(sum $t0)"',
    '[ $fails -eq 0 ] && echo "SELFTEST: PASS" || echo "SELFTEST: FAIL $fails of $checks checks"',
  );
  return lines.join('\n');
}
