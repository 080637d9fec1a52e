/**
 * Issue 12, item 1: the external-CPU example (examples/toy-cpu) runs in Node, importing `vgic`
 * by the package's name, and its toy CPU takes an SGI, the virtual timer, an SPI and an MSI
 * through the output line, acknowledging with ICC_IAR1_EL1 and ICC_EOIR1_EL1. (The same example
 * in headless Chromium: test/browser.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('the toy CPU example runs in Node and takes SGI, timer, SPI and MSI through the output line', () => {
  const r = spawnSync(process.execPath, [`${root}dist/examples/toy-cpu/run.js`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const out = r.stdout;
  assert.match(out, /^taken: 1 27 40 8192$/m, out);
  assert.match(out, /NIC sent an MSI: delivered/);
  assert.match(out, /halted: true, \d+ instructions, 4 IRQ exceptions, \d+ exits, bad accesses 0/);
});

test("the example imports vgic only by the package's name", () => {
  const dir = `${root}examples/toy-cpu/`;
  const specs: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts')))
    for (const m of readFileSync(dir + f, 'utf8').matchAll(/from '([^']+)'/g)) specs.push(m[1]);
  assert.ok(specs.includes('vgic'));
  assert.deepEqual(
    specs.filter((s) => s !== 'vgic' && !s.startsWith('./')),
    [],
    'nothing but vgic and its own files',
  );
});
