/**
 * The README's KVM device interface example (section "KVM's device interface, irqfds and the
 * dirty log") runs as printed and prints what its comments say.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test("the README's KVM device example runs: INIT, EBUSY, a resampled level SPI, the dirty log", () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const at = readme.indexOf("## KVM's device interface");
  assert.ok(at > 0, 'README has the section');
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'the section has a ts example');
  const dir = fileURLToPath(new URL('./tmp/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}readme-kvm-example.mjs`;
  writeFileSync(file, m[1]);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^GICD_TYPER [0-9a-f]+3$/m, 'ITLinesNumber 3: 128 interrupts');
  assert.match(r.stdout, /^EBUSY - EBUSY: NR_IRQS is already set \(128\)$/m);
  assert.match(r.stdout, /^took 40 resamples 1$/m);
  assert.match(r.stdout, /^\[ '40005000' \]$/m);
});
