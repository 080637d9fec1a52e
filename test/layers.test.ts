/**
 * docs/architecture.md's layer rule, checked: the Layers table lists src/ directories in an order
 * where every import goes to the same row or one above it. The table is read from the document, so
 * the rule and the code cannot drift apart silently.
 */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Row index per src/ directory, from the table (`src/cli/`, `src/bench/` share a row). */
function layerRows(): Map<string, number> {
  const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Layers'), doc.indexOf('## State'));
  const rows = new Map<string, number>();
  let row = 0;
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split('|')[1];
    for (const m of first.matchAll(/`src\/([a-z-]+)\/`/g)) rows.set(m[1], row);
    row++;
  }
  return rows;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('every import in src/ goes to its own layer or one above it in docs/architecture.md', () => {
  const rows = layerRows();
  // its/ and mmio/ are one layer seen from two sides (the document says so).
  assert.ok(rows.has('arch') && rows.has('device') && rows.has('machine'), 'the table names the layers');
  rows.set('mmio', Math.min(rows.get('mmio') ?? 0, rows.get('its') ?? 0));
  rows.set('its', rows.get('mmio') ?? 0);
  const src = join(root, 'src');
  const dirs = readdirSync(src).filter((d) => statSync(join(src, d)).isDirectory());
  for (const d of dirs) assert.ok(rows.has(d), `src/${d}/ is in the Layers table`);
  const wrong: string[] = [];
  for (const file of sources(src)) {
    const from = file.slice(src.length + 1).split('/')[0];
    if (!rows.has(from)) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/from '\.\.\/([a-z-]+)\//g)) {
      const to = m[1];
      if ((rows.get(to) ?? -1) > (rows.get(from) ?? 0)) wrong.push(`${file.slice(root.length)} -> ${to}/`);
    }
  }
  assert.deepEqual(wrong, []);
});
