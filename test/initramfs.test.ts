/**
 * The initramfs writer (src/machine/initramfs.ts), read back with a strict newc reader
 * (test/helpers/newc.ts): names, modes, data, padding for every name and data length mod 4,
 * parent directories, device nodes, the trailer, gzip round trip; the /init `vgic linux` boots;
 * and the Linux asset cache's offline paths (src/machine/linux-assets.ts): a stamped cache is used
 * without running anything, a missing apt is a clear error. Booting it is QEMU's job
 * (`vgic linux --qemu --selftest`), not this file's.
 */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  buildInitramfs,
  buildLinuxInitramfs,
  type CpioEntry,
  linuxSelftestScript,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  USERSPACE_UP_LINE,
  writeNewc,
} from '../src/machine/initramfs.ts';
import { aptOptions, ensureLinuxAssets, LinuxAssetsError } from '../src/machine/linux-assets.ts';
import { readNewc } from './helpers/newc.ts';

const dec = new TextDecoder();

test('newc: names, modes, data and links read back; parents are added; trailer ends the archive', () => {
  const entries: CpioEntry[] = [
    { type: 'dir', path: '/bin' },
    { type: 'file', path: '/bin/tool', data: new Uint8Array([1, 2, 3, 4, 5]), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'tool' },
    { type: 'char', path: 'dev/console', major: 5, minor: 1 },
    { type: 'block', path: 'dev/vda', major: 254, minor: 0, mode: 0o660 },
    { type: 'file', path: 'etc/deep/er/motd', data: 'hello\n' },
  ];
  const bytes = writeNewc(entries);
  const { records, end } = readNewc(bytes);
  assert.equal(end, bytes.length, 'nothing after the trailer');
  assert.deepEqual(
    records.map((r) => r.name),
    [
      'bin',
      'bin/tool',
      'bin/sh',
      'dev',
      'dev/console',
      'dev/vda',
      'etc',
      'etc/deep',
      'etc/deep/er',
      'etc/deep/er/motd',
    ],
  );
  const by = new Map(records.map((r) => [r.name, r]));
  assert.equal(by.get('bin')?.mode, S_IFDIR | 0o755);
  assert.equal(by.get('bin')?.nlink, 2);
  assert.equal(by.get('bin/tool')?.mode, S_IFREG | 0o755);
  assert.deepEqual([...(by.get('bin/tool')?.data ?? [])], [1, 2, 3, 4, 5]);
  assert.equal(by.get('bin/sh')?.mode, S_IFLNK | 0o777);
  assert.equal(dec.decode(by.get('bin/sh')?.data), 'tool');
  assert.equal(by.get('dev/console')?.mode, S_IFCHR | 0o600);
  assert.deepEqual([by.get('dev/console')?.rdevmajor, by.get('dev/console')?.rdevminor], [5, 1]);
  assert.equal(by.get('dev/vda')?.mode, 0o060000 | 0o660);
  assert.equal(by.get('dev/vda')?.rdevmajor, 254);
  assert.equal(dec.decode(by.get('etc/deep/er/motd')?.data), 'hello\n');
  assert.equal(by.get('etc/deep/er/motd')?.mode, S_IFREG | 0o644);
  for (const r of records) {
    assert.equal(r.uid, 0);
    assert.equal(r.mtime, 0);
  }
  assert.equal(
    new Set(records.map((r) => r.ino)).size,
    records.length,
    'distinct inodes: no accidental hard links',
  );
});

test('newc: every name and data length mod 4 pads to 4 (the reader checks zero padding)', () => {
  for (let nameLen = 1; nameLen <= 8; nameLen++) {
    for (let dataLen = 0; dataLen <= 8; dataLen++) {
      const name = 'abcdefgh'.slice(0, nameLen);
      const data = Uint8Array.from({ length: dataLen }, (_, i) => i + 1);
      const { records } = readNewc(writeNewc([{ type: 'file', path: name, data }]));
      assert.equal(records.length, 1);
      assert.equal(records[0].name, name);
      assert.deepEqual([...records[0].data], [...data]);
    }
  }
});

test('newc: the header is 110 ASCII bytes starting 070701, and the trailer is TRAILER!!!', () => {
  const bytes = writeNewc([]);
  const text = dec.decode(bytes);
  assert.ok(text.startsWith('070701'));
  assert.equal(text.slice(110, 121), 'TRAILER!!!\0');
  assert.equal(bytes.length % 4, 0);
  assert.deepEqual(readNewc(bytes).records, []);
});

test('newc: bad and duplicate paths are refused', () => {
  for (const path of ['', '/', 'a/../b', 'a//b', './x']) {
    assert.throws(() => writeNewc([{ type: 'dir', path }]), RangeError, path);
  }
  assert.throws(
    () =>
      writeNewc([
        { type: 'dir', path: 'a' },
        { type: 'file', path: '/a', data: '' },
      ]),
    /twice/,
  );
});

test('buildInitramfs: gzip round trip gives the newc archive back', () => {
  const entries: CpioEntry[] = [{ type: 'file', path: 'x', data: 'y'.repeat(10000) }];
  const gz = buildInitramfs(entries);
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]);
  assert.ok(gz.length < 1000, 'compressed');
  assert.deepEqual(new Uint8Array(gunzipSync(gz)), writeNewc(entries));
});

test('buildLinuxInitramfs: /init, busybox, /bin/sh, /dev/console and the script', () => {
  const busybox = Uint8Array.from({ length: 4097 }, (_, i) => i & 0xff);
  const script = 'echo one\necho two';
  const { records } = readNewc(new Uint8Array(gunzipSync(buildLinuxInitramfs({ busybox, script }))));
  const by = new Map(records.map((r) => [r.name, r]));
  const init = by.get('init');
  assert.ok(init);
  assert.equal(init.mode, S_IFREG | 0o755);
  const text = dec.decode(init.data);
  assert.ok(text.startsWith('#!/bin/sh\n'));
  assert.match(text, /mount -t proc proc \/proc/);
  assert.match(text, /mount -t devtmpfs devtmpfs \/dev/);
  assert.ok(text.includes(USERSPACE_UP_LINE));
  assert.match(text, /sh -v \/etc\/vgic\/script/);
  assert.match(text, /poweroff -f\n$/);
  assert.deepEqual(by.get('bin/busybox')?.data, busybox);
  assert.equal(by.get('bin/busybox')?.mode, S_IFREG | 0o755);
  assert.equal(dec.decode(by.get('bin/sh')?.data), 'busybox');
  assert.equal(by.get('dev/console')?.mode, S_IFCHR | 0o600);
  assert.equal(dec.decode(by.get('etc/vgic/script')?.data), `${script}\n`);
  for (const d of ['proc', 'sys', 'dev', 'tmp']) assert.equal(by.get(d)?.mode, S_IFDIR | 0o755, d);

  const shell = readNewc(new Uint8Array(gunzipSync(buildLinuxInitramfs({ busybox })))).records;
  const shellInit = dec.decode(shell.find((r) => r.name === 'init')?.data);
  assert.match(shellInit, /setsid cttyhack sh/);
  assert.ok(!shell.some((r) => r.name === 'etc/vgic/script'));
  const quiet = readNewc(
    new Uint8Array(gunzipSync(buildLinuxInitramfs({ busybox, script, echo: false }))),
  ).records;
  assert.doesNotMatch(dec.decode(quiet.find((r) => r.name === 'init')?.data), /sh -v/);
});

test('linuxSelftestScript: checks the timer, UART, IPIs and fork/exec, ends with one verdict', () => {
  const s = linuxSelftestScript({ cpus: 2, forks: 7 });
  for (const w of ['arch_timer', 'pl011', 'IPI0', '/proc/interrupts', '-lt 7', 'SELFTEST: PASS', '-eq 2']) {
    assert.ok(s.includes(w), w);
  }
  assert.ok(!linuxSelftestScript().includes('ok cpus'), 'no CPU-count check unless asked');
});

test('linux assets: a stamped cache is used as is, without apt', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgic-assets-'));
  try {
    writeFileSync(join(dir, 'Image-test'), new Uint8Array(100));
    writeFileSync(join(dir, 'busybox'), new Uint8Array(10));
    const stamp = {
      format: 1,
      suite: 'bookworm',
      kernel: 'Image-test',
      busybox: 'busybox',
      version: '6.1.0-99-cloud-arm64',
      packages: { kernel: '6.1.999-1', busybox: '1:1.35.0' },
      sizes: { kernel: 100, busybox: 10 },
    };
    writeFileSync(join(dir, 'assets.json'), JSON.stringify(stamp));
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent'; // any apt run would fail
    try {
      const t0 = performance.now();
      const a = await ensureLinuxAssets({ cacheDir: dir });
      assert.ok(performance.now() - t0 < 50);
      assert.equal(a.kernel, join(dir, 'Image-test'));
      assert.equal(a.busybox, join(dir, 'busybox'));
      assert.equal(a.version, '6.1.0-99-cloud-arm64');
      // A truncated file invalidates the stamp: then apt is needed, and it is missing.
      writeFileSync(join(dir, 'busybox'), new Uint8Array(9));
      await assert.rejects(ensureLinuxAssets({ cacheDir: dir }), (e: unknown) => {
        assert.ok(e instanceof LinuxAssetsError);
        assert.match(e.message, /apt-get not found/);
        assert.match(e.message, /Debian or Ubuntu/);
        return true;
      });
    } finally {
      process.env.PATH = path;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linux assets: apt runs on a private state (no system lists, status or sources)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgic-apt-'));
  try {
    mkdirSync(dir, { recursive: true });
    const args = aptOptions(dir, 'bookworm', 'http://deb.debian.org/debian');
    const o = new Map<string, string>();
    for (let i = 0; i < args.length; i += 2) {
      assert.equal(args[i], '-o');
      const [k, v] = args[i + 1].split(/=(.*)/s);
      o.set(k, v);
    }
    assert.equal(o.get('APT::Architecture'), 'arm64');
    for (const k of [
      'Dir::State',
      'Dir::State::Lists',
      'Dir::State::status',
      'Dir::Cache',
      'Dir::Etc::sourcelist',
      'Dir::Etc::sourceparts',
      'Dir::Etc::preferences',
      'Dir::Etc::preferencesparts',
    ]) {
      assert.ok(o.get(k)?.startsWith(dir), `${k} is private: ${o.get(k)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
