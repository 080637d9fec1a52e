/**
 * Issue 12, item 5: the API reference. TypeDoc (tools/apidoc: its own pinned install, since TypeDoc
 * needs TypeScript 5.x's JS API and vgic compiles with TypeScript 7) builds docs/api/ from the
 * emitted .d.ts of the three entries (`vgic`, `vgic/machine`, `vgic/runtime`), with every warning
 * an error: a type named in a public signature but not exported, a broken {@link}, a .d.ts that does
 * not type-check. The pages hold the public names with their doc comments and no internals.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm run docs:api builds the API reference from the doc comments, warning-free', () => {
  const r = spawnSync(npm, ['run', '--silent', 'docs:api'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /\[warning\]|\[error\]/);
  const api = join(root, 'docs', 'api');
  for (const f of [
    'index.html',
    'modules/vgic.html',
    'modules/vgic_machine.html',
    'modules/vgic_runtime.html',
  ])
    assert.ok(existsSync(join(api, f)), `${f} built`);
  const classes = readdirSync(join(api, 'classes'));
  for (const c of ['Vgic', 'VCpu', 'Its', 'GuestMemory', 'VgicError'])
    assert.ok(
      classes.some((f) => f.endsWith(`.${c}.html`)),
      `${c} has a page (${classes.join(' ')})`,
    );
  const vcpu = readFileSync(
    join(api, 'classes', classes.find((f) => f.endsWith('.VCpu.html')) ?? ''),
    'utf8',
  );
  for (const m of ['onOutputLine', 'outputLine', 'entryRequested', 'mmioRead', 'readSysreg', 'step'])
    assert.match(vcpu, new RegExp(`\\b${m}\\b`), `VCpu.${m} documented`);
  assert.match(vcpu, /told levels, not edges/, 'the doc comment is on the page');
  // No internal member or layout word reached the reference.
  const all = ['classes', 'variables', 'functions'].flatMap((d) =>
    existsSync(join(api, d))
      ? readdirSync(join(api, d)).map((f) => readFileSync(join(api, d, f), 'utf8'))
      : [],
  );
  for (const internal of ['resolvedOffset', 'afterDeactivate', 'V_RUN_LOCK', 'VCPU_STRIDE', 'setLockOwnerId'])
    assert.ok(!all.some((html) => html.includes(internal)), `${internal} is not in the reference`);
});
