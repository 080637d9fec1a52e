/**
 * `vgic churn` (bench/churn.ts runChurnLong): a 1-second run through the CLI closes its books
 * (no phantom, no loss), crosses generation wraps, exits 0 and writes its JSON. The long run is
 * `vgic churn --seconds 60`; the properties of each churn shape are test/concurrency.test.ts's.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test('vgic churn --seconds 1: MSIs delivered and acknowledged across generation wraps, none phantom or lost', () => {
  const dir = fileURLToPath(new URL('./tmp/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const json = `${dir}churn.json`;
  const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, [main, 'churn', '--seconds', '1', '--seed', '9', '--json', json], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /phantom interrupts 0, lost interrupts 0, left pending 0/);
  const doc = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(doc.benchmark, 'churn');
  const res = doc.results;
  assert.equal(res.failed, false);
  assert.equal(res.totals.phantom, 0);
  assert.equal(res.totals.lost, 0);
  assert.ok(res.totals.delivered > 0 && res.totals.acked > 0, JSON.stringify(res.totals));
  assert.ok(res.wraps > 0, `generation wraps: ${res.wraps}`);
  assert.ok(res.churn.rounds > 0);
});
