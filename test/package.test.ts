/**
 * Issue 12, items 2 and 6: the package as a consumer gets it. `npm pack` (of the built dist/, no
 * scripts), checks of the tarball (no source map pointing outside it, no install script), then a
 * fresh consumer project installs it with install scripts enabled and nothing is compiled; the
 * README's example runs there importing `vgic` by name, the core's import graph has no Node
 * module, and the Node-only entries (`vgic/machine`, `vgic/runtime`) resolve.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r;
}

describe('the packed tarball in a fresh consumer project', () => {
  let work = '';
  let tarball = '';
  let files: string[] = [];
  let installLog = '';
  let pkgDir = '';

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'vgic-pack-'));
    // --ignore-scripts: pack the dist/ the build made (prepare would rebuild it under running tests).
    const packed = JSON.parse(
      run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root).stdout,
    ) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, packed[0].filename);
    files = packed[0].files.map((f) => f.path);
    const consumer = join(work, 'consumer');
    run('mkdir', ['-p', consumer], work);
    writeFileSync(
      join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    const r = run(
      npm,
      [
        'install',
        '--ignore-scripts=false',
        '--foreground-scripts',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        tarball,
      ],
      consumer,
    );
    installLog = r.stdout + r.stderr;
    pkgDir = join(consumer, 'node_modules', 'vgic');
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the tarball: no install script, no dangling source map, no tests', () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
      sideEffects?: unknown;
      dependencies?: Record<string, string>;
      license?: string;
    };
    for (const s of ['preinstall', 'install', 'postinstall'])
      assert.equal(pkg.scripts?.[s], undefined, `no ${s} script`);
    assert.equal(pkg.sideEffects, false);
    assert.equal(pkg.dependencies, undefined, 'the core needs no dependency');
    assert.equal(pkg.license, 'MIT');
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts'])
      assert.ok(files.includes(f), `${f} is packed`);
    assert.ok(!files.some((f) => f.startsWith('dist/test/')), 'no compiled tests');
    const set = new Set(files);
    const dangling: string[] = [];
    for (const f of files.filter((p) => p.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(pkgDir, f), 'utf8')) as { sources: string[] };
      for (const s of map.sources) {
        const p = resolve('/', dirname(f), s).slice(1);
        if (!set.has(p)) dangling.push(`${f} -> ${s}`);
      }
    }
    assert.deepEqual(dangling, []);
    for (const f of files.filter((p) => p.endsWith('.js'))) {
      const m = /\/\/# sourceMappingURL=(\S+)$/m.exec(readFileSync(join(pkgDir, f), 'utf8'));
      if (m) assert.ok(set.has(resolve('/', dirname(f), m[1]).slice(1)), `${f}'s map is packed`);
    }
  });

  test('installing compiled nothing (no node-gyp, no addon)', () => {
    assert.ok(!existsSync(join(pkgDir, 'native', 'unicorn', 'build')), 'no native build directory');
    assert.doesNotMatch(installLog, /node-gyp|gyp info|build-native/);
  });

  test("the core's import graph has no Node module", () => {
    const seen = new Set<string>();
    const nodeImports: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(
        /(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g,
      )) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
        else nodeImports.push(`${file.slice(pkgDir.length)}: ${spec}`);
      }
    };
    visit(join(pkgDir, 'dist', 'src', 'index.js'));
    assert.ok(seen.size > 20, `${seen.size} modules`);
    assert.deepEqual(nodeImports, [], 'the core imports only its own modules');
  });

  test("the README example runs in the consumer, importing 'vgic' by name; the Node entries resolve", () => {
    const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
    const m = /```ts\n([\s\S]*?)```/.exec(readme);
    assert.ok(m);
    const consumer = dirname(dirname(pkgDir));
    writeFileSync(join(consumer, 'example.mjs'), m[1]);
    const r = run(process.execPath, ['example.mjs'], consumer);
    assert.match(r.stdout, /vCPU 1 took 1\n/);
    assert.match(r.stdout, /vCPU 1 took 40\n/);
    assert.match(r.stdout, /^1023$/m);
    writeFileSync(
      join(consumer, 'entries.mjs'),
      [
        "const m = await import('vgic/machine');",
        "const r = await import('vgic/runtime');",
        'console.log(typeof m.Machine, typeof m.MachineUnavailableError, typeof r.Runtime);',
      ].join('\n'),
    );
    assert.equal(
      run(process.execPath, ['entries.mjs'], consumer).stdout.trim(),
      'function function function',
    );
    assert.ok(readdirSync(join(consumer, 'node_modules')).includes('vgic'));
  });
});
