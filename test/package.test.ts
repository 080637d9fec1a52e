/**
 * Issue 12, items 2 and 6: the package as a consumer gets it. `npm pack` (of the built dist/, no
 * scripts), checks of the tarball (no source map pointing outside it, no install script), then a
 * fresh consumer project installs it with install scripts enabled and nothing is compiled; the
 * README's example runs there importing `vgic` by name, the core's import graph has no Node
 * module, and the Node-only entries (`vgic/machine`, `vgic/runtime`) resolve. Item 5: the public
 * API is small: no state-layout word offset or lock word leaks out of the index, numbers exported
 * are architectural names, and every type a public declaration names is exported too.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';
import { build as viteBuild } from 'vite';

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
    // The README's relative links reach files in the package.
    const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
    const outside: string[] = [];
    for (const m of readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue;
      const clean = target.replace(/\/$/, '');
      if (!files.some((f) => f === clean || f.startsWith(`${clean}/`))) outside.push(target);
    }
    assert.deepEqual(outside, [], 'README links to files in the package');
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

  test('esbuild and Vite bundle the installed package for the browser from the consumer, by name, without a stub', async () => {
    const consumer = dirname(dirname(pkgDir));
    const entry = join(consumer, 'browser-entry.js');
    writeFileSync(
      entry,
      "import { Vgic, OUTPUT_IRQ } from 'vgic';\nconst gic = Vgic.create({ vcpus: 1 });\nglobalThis.out = [gic.nVcpus, OUTPUT_IRQ];\n",
    );
    const e = await esbuild({
      entryPoints: [entry],
      absWorkingDir: consumer,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
    });
    const v = await viteBuild({
      configFile: false,
      logLevel: 'silent',
      root: consumer,
      build: { write: false, minify: false, lib: { entry, formats: ['es'], fileName: 'bundle' } },
    });
    const viteCode = ((Array.isArray(v) ? v : [v]) as { output: { type: string; code?: string }[] }[])
      .flatMap((o) => o.output)
      .filter((c) => c.type === 'chunk')
      .map((c) => c.code ?? '')
      .join('\n');
    for (const [name, code] of [
      ['esbuild', e.outputFiles[0].text],
      ['vite', viteCode],
    ] as const) {
      assert.ok(code.includes('Vgic') || code.length > 10_000, `${name} bundled the core`);
      const stub = /__vite-browser-external|(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']node:/.exec(
        code,
      );
      assert.equal(stub, null, `${name}: no Node import, no stub`);
      // The bundle runs (outside Node's module resolution: a data: URL).
      const g = globalThis as { out?: unknown };
      g.out = undefined;
      await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
      assert.deepEqual(g.out, [1, 1], `${name}'s bundle runs`);
    }
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

const distSrc = join(root, 'dist', 'src');

/** Architectural names (GIC spec, Arm ARM) and vgic's own documented results: what a number export may be called. */
const PUBLIC_NUMBER_NAME =
  /^(GICD_|GICR_|GITS_|GIC_|GICC_|GICH_|GICV_|ICC_|ICH_|ICV_|KVM_|CNT|INTID_|VGIC_|VIRT_|PPI_|SGIR_|LPI_|ITS_|E_ITS_|MSI_|OUTPUT_|IMPLEMENTER_ARM$|PRODUCT_ID_KVM$|MAX_IRQ_NESTING$|MAX_GUEST_PA$|MAIN_OWNER_ID$)/;

/** The names a module's built .d.ts exports and the names it imports (declaration emit keeps only what its declarations use). */
function dtsNames(file: string): { exported: Set<string>; imported: Map<string, string>; local: string[] } {
  const src = readFileSync(file, 'utf8');
  const exported = new Set<string>();
  for (const m of src.matchAll(
    /^export (?:declare )?(?:abstract )?(?:const|function|class|interface|type|enum|let) ([A-Za-z0-9_$]+)/gm,
  ))
    exported.add(m[1]);
  const imported = new Map<string, string>();
  for (const m of src.matchAll(/^import (?:type )?\{([^}]*)\} from '([^']+)'/gm))
    for (const n of m[1].split(',')) {
      const name = n.replace(/^\s*type\s+/, '').trim();
      if (name) imported.set(name, m[2]);
    }
  const local: string[] = [];
  for (const m of src.matchAll(
    /^(?:declare )?(?:abstract )?(?:class|interface|type|enum) ([A-Za-z0-9_$]+)/gm,
  )) {
    const used = src.split(new RegExp(`\\b${m[1]}\\b`)).length - 1;
    if (used > 1) local.push(m[1]);
  }
  return { exported, imported, local };
}

describe('the public API (src/index.ts)', () => {
  test('no state-layout offset, lock word or internal number is exported; numbers carry architectural names', async () => {
    const api = (await import(join(distSrc, 'index.js'))) as Record<string, unknown>;
    const layout = (await import(join(distSrc, 'state', 'layout.js'))) as Record<string, unknown>;
    const locks = (await import(join(distSrc, 'core', 'locks.js'))) as Record<string, unknown>;
    const names = Object.keys(api).sort();
    const leaked = names.filter(
      (n) => n in layout || (n in locks && !['LockRecursionError', 'MAIN_OWNER_ID'].includes(n)),
    );
    assert.deepEqual(leaked, [], 'state layout and lock internals stay internal');
    const badNumbers = names.filter((n) => typeof api[n] === 'number' && !PUBLIC_NUMBER_NAME.test(n));
    assert.deepEqual(badNumbers, [], 'every exported number has an architectural (spec) name');
    for (const n of [
      'Vgic',
      'VCpu',
      'Its',
      'GuestMemory',
      'VgicError',
      'GicV3Guest',
      'ItsGuest',
      'OUTPUT_IRQ',
      'ICC_IAR1_EL1',
    ])
      assert.ok(n in api, `${n} is public`);
    console.log(
      `public exports: ${names.length} (${names.filter((n) => typeof api[n] === 'number').length} numbers)`,
    );
    // A guard against an accidental re-export of a whole module (the lists are explicit): the spec's
    // register names for GICv2 and v3 and KVM's uapi names make up most of the count.
    assert.ok(names.length < 420, `${names.length} exports`);
  });

  test('every type named in a public declaration is exported; @internal members are stripped', () => {
    const index = readFileSync(join(distSrc, 'index.d.ts'), 'utf8');
    const publicNames = new Set<string>();
    const modules = new Set<string>();
    for (const m of index.matchAll(/export (?:type )?\{([^}]*)\} from '([^']+)'/g)) {
      modules.add(resolve(distSrc, m[2].replace(/\.ts$/, '.d.ts')));
      for (const n of m[1].split(',')) {
        const name = n.replace(/^\s*type\s+/, '').trim();
        if (name) publicNames.add(name);
      }
    }
    assert.ok(modules.size > 8, `${modules.size} modules`);
    const missing: string[] = [];
    let checked = 0;
    for (const file of modules) {
      const { exported, imported, local } = dtsNames(file);
      const rel = file.slice(distSrc.length + 1);
      // The module's names a public declaration must not mention: imported or declared here, not public.
      const hidden = new Set([...imported.keys(), ...exported, ...local].filter((n) => !publicNames.has(n)));
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      for (const decl of code.split(/\n(?=\S)/)) {
        const m =
          /^export (?:declare )?(?:abstract )?(?:const|function|class|interface|type|enum|let) ([A-Za-z0-9_$]+)/.exec(
            decl,
          );
        if (m === null || !publicNames.has(m[1])) continue;
        checked++;
        for (const id of new Set(decl.match(/[A-Za-z_$][A-Za-z0-9_$]*/g)))
          if (hidden.has(id)) missing.push(`${rel}: ${m[1]} names ${id}`);
      }
    }
    assert.ok(checked > 200, `${checked} public declarations checked`);
    assert.deepEqual(missing, [], 'types in public signatures are public');
    const vcpu = readFileSync(join(distSrc, 'device', 'vcpu.d.ts'), 'utf8');
    const vgic = readFileSync(join(distSrc, 'device', 'vgic.d.ts'), 'utf8');
    assert.doesNotMatch(
      vcpu,
      /\biar\(|readonly s: /,
      'stripInternal: @internal VCpu members are not in the .d.ts',
    );
    assert.doesNotMatch(
      vgic,
      /readonly state: |resolvedOffset/,
      'stripInternal: @internal Vgic members are not in the .d.ts',
    );
  });

  test("vgic's machine uses only the public contract of the core", () => {
    const api = new Set(Object.keys(dtsNames(join(distSrc, 'index.d.ts')).exported));
    const index = readFileSync(join(distSrc, 'index.d.ts'), 'utf8');
    for (const m of index.matchAll(/export \{([^}]*)\}/g))
      for (const n of m[1].split(',')) api.add(n.replace(/^\s*type\s+/, '').trim());
    const machineDir = join(root, 'src', 'machine');
    const outside: string[] = [];
    for (const f of readdirSync(machineDir).filter((x) => x.endsWith('.ts'))) {
      const src = readFileSync(join(machineDir, f), 'utf8');
      for (const m of src.matchAll(/import (?:type )?\{([^}]*)\} from '(\.\.\/[^']+)'/g))
        for (const n of m[1].split(',')) {
          const name = n.replace(/^\s*type\s+/, '').trim();
          // src/arch (the spec's names, argument checks) and src/util (statistics) hold no GIC state.
          if (name && !api.has(name) && !/^\.\.\/(arch|util)\//.test(m[2]))
            outside.push(`machine/${f}: ${name} from ${m[2]}`);
        }
    }
    assert.deepEqual(outside, [], 'the machine imports from the core only what the index exports');
    assert.ok(api.has('OUTPUT_IRQ') && api.has('VCpu'));
  });
});
