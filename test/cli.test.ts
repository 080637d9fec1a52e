/**
 * Issue 12, item 6: CLI hygiene, for every command `vgic --help` lists: `vgic CMD --help` prints its
 * usage (exit 0); an unknown flag and a bad value each give one line on stderr and exit status 2
 * (no stack trace, nothing run); a `--json` result carries the schema version, vgic's version and
 * commit, and the options used; a run prints progress on stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = `${root}dist/src/cli/main.js`;

function vgic(...args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 60_000, input: '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, exit 2, no stack trace, nothing on stdout. */
function assertUsageError(r: ReturnType<typeof vgic>, what: string): void {
  assert.equal(r.status, 2, `${what}: exit 2 (${r.stderr}${r.stdout})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^vgic: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|NaN/, `${what}: no stack trace, no NaN`);
  assert.equal(r.stdout, '', `${what}: nothing ran`);
}

const help = vgic('--help');
/** Each command's block in `vgic --help`: its name line and its flag lines. */
const commands = new Map<string, string[]>();
{
  let current: string[] | undefined;
  for (const line of help.stdout.split('\n')) {
    const c = /^ {2}([a-z][a-z-]*)(?: [A-Z]+)?\s{2,}/.exec(line);
    if (c) {
      current = [];
      commands.set(c[1], current);
    } else if (/^ {6}-/.test(line)) current?.push(line.trim());
    else if (/^Options:/.test(line)) current = undefined;
  }
}

/** A value each command rejects for its first flag that takes a number. */
function badValueArgs(cmd: string, flags: string[]): string[] {
  for (const f of flags) {
    const m = /^(?:-(\w), )?(--?[\w-]+) N\b/.exec(f) ?? /^(-\w) N\b/.exec(f);
    if (m) return [...(cmd === 'run' ? ['no-such-image'] : []), m[2] ?? m[1], 'many'];
  }
  for (const f of flags) {
    const m = /^(--[\w-]+) A,B\b/.exec(f);
    if (m) return [m[1], 'no-such-name'];
  }
  throw new Error(`${cmd} has no flag taking N`);
}

describe('vgic CLI', () => {
  test('vgic --help lists every command', () => {
    assert.equal(help.status, 0);
    const names = [...commands.keys()];
    for (const c of [
      'demo',
      'qtest',
      'micro-bench',
      'lpi-bench',
      'lpi-stress',
      'run',
      'linux',
      'conformance',
    ])
      assert.ok(names.includes(c), `${c} listed (${names.join(' ')})`);
    assert.ok(names.length >= 12, names.join(' '));
  });

  test('vgic CMD --help, an unknown flag, a bad value: for every command', () => {
    for (const [cmd, flags] of commands) {
      const h = vgic(cmd, '--help');
      assert.equal(h.status, 0, `${cmd} --help`);
      assert.match(h.stdout, new RegExp(`^Usage: vgic ${cmd}\\b`), `${cmd} --help`);
      assert.equal(h.stderr, '');
      for (const f of flags) assert.ok(h.stdout.includes(f), `${cmd} --help shows ${f}`);
      assertUsageError(vgic(cmd, '--no-such-flag'), `${cmd} --no-such-flag`);
      const bad = badValueArgs(cmd, flags);
      assertUsageError(vgic(cmd, ...bad), `${cmd} ${bad.join(' ')}`);
    }
    assertUsageError(vgic('no-such-command'), 'an unknown command');
  });

  test('more bad values: ranges, sizes, lists, choices, missing values, positionals', () => {
    for (const args of [
      ['demo', '--vcpus', '0'],
      ['demo', '--vcpus'],
      ['demo', 'extra'],
      ['qtest', '--lrs', '17'],
      ['qtest', '--ram-size', '12Q'],
      ['micro-bench', '--only', 'nope'],
      ['micro-bench', '--trials', '1.5'],
      ['lpi-bench', '--trials', '0'],
      ['micro-bench', '--design', 'hardware'],
      ['lpi-bench', '--design', 'global-lock'],
      ['lpi-stress', '--design', 'x'],
      ['lpi-stress', '--scale', 'nan'],
      ['lpi-stress', '-i', '0'],
      ['lpi-stress', '--trials', '0'],
      ['run'],
      ['run', 'x.img', '--smp', '99'],
      ['linux', '--memory', 'lots'],
      ['conformance', '--only', ''],
      ['linux-bench', '--smp', '1,9'],
      ['adversarial', '--seed', String(2 ** 32)],
      ['churn', '--seed', '-3'],
      ['churn', '--light'],
    ])
      assertUsageError(vgic(...args), args.join(' '));
  });

  test('a --json result carries schemaVersion, vgic version and commit, and the options; progress on stderr', () => {
    const dir = fileURLToPath(new URL('./tmp/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = `${dir}cli-micro.json`;
    const r = vgic('micro-bench', '--only', 'eoi', '--iterations', '2000', '--trials', '3', '--json', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^micro-bench: eoi \(3 trials of 2000\)$/m, 'progress on stderr');
    assert.match(r.stdout, /^eoi\s/m);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(doc.schemaVersion, 2);
    assert.equal(doc.benchmark, 'micro-bench');
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
    assert.equal(doc.vgic.version, pkg.version);
    if (existsSync(`${root}.git`)) assert.match(doc.vgic.commit, /^[0-9a-f]{40}(-dirty)?$/);
    else assert.equal(doc.vgic.commit, null);
    // The design is recorded with its default: a result says which design it measured.
    assert.deepEqual(doc.options, { iterations: 2000, trials: 3, only: ['eoi'], design: 'software' });
    assert.equal(doc.results.length, 2, 'eoi and eoi/unshared');
  });
});
