/**
 * `vgic linux` around the machine: the boot clock's line and milestone handling
 * (src/machine/linux-bench.ts), the command's options (src/cli/linux.ts), and, when Debian's
 * kernel and busybox are already in the cache and QEMU is installed, the selftest initramfs booted
 * on QEMU 7.2 (the reference for what /proc/interrupts shows). The test never fetches: run
 * `npx vgic linux --qemu --selftest` once to fill the cache.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootOnMachine, LINUX_BASE_APPEND, LinuxUsageError, parseLinuxArgs } from '../src/cli/linux.ts';
import { buildLinuxInitramfs, linuxSelftestScript } from '../src/machine/initramfs.ts';
import { cachedLinuxAssets } from '../src/machine/linux-assets.ts';
import {
  BootClock,
  POWER_OFF,
  qemuLinuxCommand,
  summariseBoots,
  timeCommand,
} from '../src/machine/linux-bench.ts';

test('BootClock: lines split across chunks, CR and escapes stripped, first match wins', () => {
  const seen: string[] = [];
  const c = new BootClock(undefined, (l) => seen.push(l.text));
  c.push('[    0.000000] Booting Linux on physical CPU 0x0\r\n[    0.1] GICv3: 224 SP');
  c.push(
    new TextEncoder().encode(
      'Is implemented\r\n[ 5.7] Run /init as init process\n\x1b[0mvgic: userspace up (x, 2 CPUs)\n',
    ),
  );
  c.push('vgic: userspace up again\n[ 7.0] reboot: Power down');
  const end = c.end();
  assert.deepEqual(seen, [
    '[    0.000000] Booting Linux on physical CPU 0x0',
    '[    0.1] GICv3: 224 SPIs implemented',
    '[ 5.7] Run /init as init process',
    'vgic: userspace up (x, 2 CPUs)',
    'vgic: userspace up again',
    '[ 7.0] reboot: Power down',
  ]);
  for (const m of ['first-kernel-line', 'gic', 'run-init', 'userspace', 'power-down']) {
    assert.equal(typeof c.milestones[m], 'number', m);
  }
  assert.equal(c.milestones['smp-up'], undefined);
  assert.equal(c.milestones[POWER_OFF], end);
  const s = summariseBoots([
    {
      lines: [],
      milestones: { userspace: 3000, [POWER_OFF]: 4000 },
      exitCode: 0,
      timedOut: false,
      totalMs: 4000,
    },
    {
      lines: [],
      milestones: { userspace: 1000, [POWER_OFF]: 2000 },
      exitCode: 0,
      timedOut: false,
      totalMs: 2000,
    },
    { lines: [], milestones: { userspace: 2000 }, exitCode: 0, timedOut: false, totalMs: 2000 },
  ]);
  const u = s.find((x) => x.name === 'userspace');
  assert.deepEqual(u, { name: 'userspace', n: 3, median: 2000, min: 1000, max: 3000 });
  assert.equal(s.find((x) => x.name === POWER_OFF)?.median, 3000);
  assert.equal(s.find((x) => x.name === 'gic')?.n, 0);
});

test('vgic linux options: defaults, sizes, conflicts', () => {
  const d = parseLinuxArgs([]);
  assert.equal(d.smp, 2);
  assert.equal(d.ramSize, 512 * 1024 * 1024);
  assert.equal(d.append, LINUX_BASE_APPEND);
  assert.equal(d.timeoutSec, 0, 'a shell has no time limit');
  assert.equal(d.qemu, false);
  const o = parseLinuxArgs([
    '--smp',
    '1',
    '-m',
    '1G',
    '--script',
    'ls',
    '--append',
    'quiet',
    '--qemu',
    '--cache',
    '/x',
  ]);
  assert.equal(o.smp, 1);
  assert.equal(o.ramSize, 1024 ** 3);
  assert.equal(o.script, 'ls');
  assert.equal(o.append, `${LINUX_BASE_APPEND} quiet`);
  assert.equal(o.cacheDir, '/x');
  assert.equal(o.timeoutSec, 600);
  for (const bad of [['--smp', '9'], ['-m', '100M'], ['--script', 'x', '--selftest'], ['extra']]) {
    assert.throws(() => parseLinuxArgs(bad), LinuxUsageError, bad.join(' '));
  }
});

/**
 * The cached assets for the machine's boots. `npm test` fetches them first (pretest: vgic linux
 * --fetch), so a missing cache is a failure, not a skip: these boots are the proof.
 */
function machineAssets(): { kernel: string; busybox: string } {
  const a = cachedLinuxAssets();
  assert.ok(a, 'Linux assets not cached: run `npx vgic linux --fetch` (npm test does)');
  return a;
}

for (const smp of [1, 2]) {
  test(`vgic's machine boots Debian's kernel to userspace, smp ${smp}: timer, IPIs, PL011, fork/exec, power-off`, async () => {
    const a = machineAssets();
    const initrd = buildLinuxInitramfs({
      busybox: readFileSync(a.busybox),
      script: linuxSelftestScript({ cpus: smp, forks: 20 }),
      echo: false,
    });
    const chunks: Uint8Array[] = [];
    const report = await bootOnMachine({
      kernel: a.kernel,
      initrd,
      smp,
      ramSize: 512 * 2 ** 20,
      append: LINUX_BASE_APPEND,
      timeLimitMs: 300_000,
      interactive: false,
      output: (b) => chunks.push(new Uint8Array(b)),
    });
    const text = Buffer.concat(chunks).toString('utf8');
    assert.equal(report.reason, 'system-off', `${report.message}\n${text.slice(-3000)}`);
    assert.match(text, /^SELFTEST: PASS$/m, text.slice(-3000));
    assert.match(text, new RegExp(`SELFTEST: ok cpus ${smp} online`));
    assert.match(text, /GICv3\s+27 Level\s+arch_timer/);
    assert.match(text, /GICv3\s+33 Level\s+uart-pl011/);
    if (smp > 1) assert.match(text, /SELFTEST: ok ipi [1-9]\d* IPIs/);
    // Linux's own GICv3 and ITS drivers found nothing to complain about.
    assert.equal(report.gic.mmioBadAccess, 0, 'bad MMIO accesses');
    assert.equal(report.gic.mmioUnmapped, 0, 'unmapped GIC offsets');
    assert.equal(report.gic.sysregUnknown, 0, 'unknown system registers');
    assert.doesNotMatch(text, /Unable to handle kernel|Internal error|BUG:|WARNING:|Oops/);
  });
}

/** The cached assets, or why the QEMU boot is skipped. Never fetches. */
function cachedAssets(): { kernel: string; busybox: string } | string {
  if (spawnSync('qemu-system-aarch64', ['--version']).status !== 0)
    return 'qemu-system-aarch64 is not installed';
  return cachedLinuxAssets() ?? 'Linux assets not cached (npx vgic linux --qemu --selftest fetches them)';
}

test('QEMU 7.2 boots the selftest initramfs: timer, IPIs and PL011 in /proc/interrupts', async (t) => {
  const a = cachedAssets();
  if (typeof a === 'string') {
    t.skip(a);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vgic-linux-test-'));
  try {
    const initrd = join(dir, 'initrd');
    writeFileSync(
      initrd,
      buildLinuxInitramfs({
        busybox: readFileSync(a.busybox),
        script: linuxSelftestScript({ cpus: 2, forks: 10 }),
        echo: false,
      }),
    );
    const r = await timeCommand(
      qemuLinuxCommand({ kernel: a.kernel, initrd, smp: 2, memory: '512M', append: LINUX_BASE_APPEND }),
      { timeoutMs: 180_000 },
    );
    const text = r.lines.map((l) => l.text).join('\n');
    assert.equal(r.timedOut, false, text.slice(-2000));
    assert.equal(r.exitCode, 0);
    assert.match(text, /^SELFTEST: PASS$/m, text.slice(-2000));
    assert.match(text, /GICv3\s+27 Level\s+arch_timer/);
    for (const m of ['first-kernel-line', 'run-init', 'userspace', 'power-down']) {
      assert.equal(typeof r.milestones[m], 'number', m);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
