import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The README's library example must run as printed (it imports the package by its name).
test('the README API example runs and delivers what it says', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a ts example');
  const dir = fileURLToPath(new URL('./tmp/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}readme-example.mjs`;
  writeFileSync(file, m[1]);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /vCPU 1 took 1\n/);
  assert.match(r.stdout, /vCPU 1 took 40\n/);
  assert.match(r.stdout, /^1023$/m);
});
