/**
 * Issue 12, item 3: the core entry in a browser. esbuild bundles it (the package's compiled
 * dist/src/index.js, as a consumer's bundler would see it) for the browser platform; a local
 * http server on 127.0.0.1 serves two pages to headless Chromium (Debian's `chromium`, driven by
 * playwright-core): one cross-origin isolated (COOP/COEP: SharedArrayBuffer, a Web Worker attached
 * to the page's GIC injecting SPIs and MSIs while the page's vCPU takes them, snapshot and restore)
 * and one without (no SharedArrayBuffer: an unshared GIC by default). The README's library example
 * runs in both and prints what it prints in Node, and so does the external-CPU example
 * (examples/toy-cpu). Vite 7.3.8 bundles the page, the worker and the example too, and its bundles
 * pass the same tests. Also reports the core bundle's size.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { build as viteBuild } from 'vite';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ROUNDS = 200;

/** The README's example, with its console.log lines collected in a form both hosts print alike. */
function readmeExample(): string {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a ts example');
  const prelude =
    'const console = { log: (...a) => globalThis.__exampleOut.push(a.map((x) => typeof x === "string" ? x : ' +
    'JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? String(v) + "n" : v))).join(" ")) };\n';
  return prelude + m[1];
}

async function bundle(entry: { file?: string; code?: string }, minify = false): Promise<string> {
  const r = await build({
    ...(entry.file !== undefined
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.code ?? '', resolveDir: root, loader: 'js' } }),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    alias: { vgic: `${root}dist/src/index.js` },
    logLevel: 'silent',
  });
  return r.outputFiles[0].text;
}

/**
 * Vite 7.3.8's production build (Rollup) of one entry as an ES module, `vgic` resolved to the
 * package's compiled core as a consumer's would be. Vite replaces a Node built-in it meets with a
 * `__vite-browser-external` stub: the caller checks there is none.
 */
async function viteBundle(entry: { file?: string; code?: string }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vgic-vite-'));
  try {
    let file = entry.file;
    if (file === undefined) {
      file = join(dir, 'entry.js');
      writeFileSync(file, entry.code ?? '');
    }
    const out = await viteBuild({
      configFile: false,
      logLevel: 'silent',
      root: dir,
      resolve: { alias: { vgic: `${root}dist/src/index.js` } },
      build: {
        write: false,
        minify: false,
        target: 'es2022',
        lib: { entry: file, formats: ['es'], fileName: 'bundle' },
        rollupOptions: { output: { inlineDynamicImports: true } },
      },
    });
    const outputs = (Array.isArray(out) ? out : [out]) as { output: { type: string; code?: string }[] }[];
    const chunks = outputs.flatMap((o) => o.output).filter((c) => c.type === 'chunk');
    assert.equal(chunks.length, 1, 'one chunk');
    return chunks[0].code ?? '';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HTML =
  '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="page.js"></script>';

describe('the core in headless Chromium', () => {
  let server: Server;
  let browser: Browser;
  let origin = '';
  let nodeOutput: string[] = [];
  let viteFiles: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      // The same script npm test's pretest runs; here only for the browser.
      const r = spawnSync('bash', [`${root}scripts/install-system-deps.sh`, 'chromium'], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `installing chromium: ${r.stderr}`);
    }
    const files = new Map<string, string>([
      ['page.js', await bundle({ file: `${root}dist/test/fixtures/browser/page.js` })],
      ['worker.js', await bundle({ file: `${root}dist/test/fixtures/browser/worker.js` })],
      ['readme.js', await bundle({ code: readmeExample() })],
      ['toy.js', await bundle({ file: `${root}dist/examples/toy-cpu/run.js` })],
      ['index.html', HTML],
      // The same page, worker and README example bundled by Vite instead of esbuild.
      ['vpage.js', await viteBundle({ file: `${root}dist/test/fixtures/browser/page.js` })],
      ['vworker.js', await viteBundle({ file: `${root}dist/test/fixtures/browser/worker.js` })],
      ['vreadme.js', await viteBundle({ code: readmeExample() })],
      ['vindex.html', HTML.replace('page.js', 'vpage.js')],
    ]);
    viteFiles = ['vpage.js', 'vworker.js', 'vreadme.js'].map((f) => files.get(f) ?? '');
    // The same bundle in Node gives the reference output.
    const g = globalThis as { __exampleOut?: string[] };
    g.__exampleOut = [];
    await import(
      `data:text/javascript;base64,${Buffer.from(files.get('readme.js') ?? '').toString('base64')}`
    );
    nodeOutput = g.__exampleOut;
    server = createServer((req, res) => {
      const [, dir, name] = /^\/(coi|plain)\/([a-z.]+)$/.exec(req.url ?? '') ?? [];
      const body = name === undefined ? undefined : files.get(name);
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('Content-Type', name.endsWith('.html') ? 'text/html' : 'text/javascript');
      if (dir === 'coi') {
        res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
        res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      }
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  /** Opens a page, runs the README example and one of page.ts's suites; fails on any page error. */
  async function run(
    dir: 'coi' | 'plain',
    suite: string,
    prefix = '',
  ): Promise<{ example: string[]; report: Record<string, unknown> }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    try {
      await page.goto(`${origin}/${dir}/${prefix}index.html`);
      await page.waitForFunction(() => (globalThis as { vgicTests?: unknown }).vgicTests !== undefined);
      // A string, so that tsc leaves the page's dynamic import alone.
      const example = (await page.evaluate(
        `globalThis.__exampleOut = []; import("./${prefix}readme.js").then(() => globalThis.__exampleOut)`,
      )) as string[];
      const report = await page.evaluate(
        ([s, rounds, prefix]) =>
          (
            globalThis as unknown as {
              vgicTests: Record<string, (w: string, r: number) => Promise<Record<string, unknown>>>;
            }
          ).vgicTests[s](`./${prefix}worker.js`, rounds),
        [suite, ROUNDS, prefix] as const,
      );
      assert.deepEqual(errors, [], 'no page errors');
      return { example, report };
    } finally {
      await page.close();
    }
  }

  test('esbuild bundles the core for the browser (no Node import, no stub); size reported', async (t) => {
    const min = await bundle({ file: `${root}dist/src/index.js` }, true);
    // No import of a Node module survives (esbuild would have failed on one for the browser).
    assert.doesNotMatch(min, /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']node:/);
    const gz = gzipSync(min, { level: 9 }).byteLength;
    const ex = await bundle({ code: readmeExample() }, true);
    t.diagnostic(
      `core bundle: ${(min.length / 1024).toFixed(1)} KiB minified, ${(gz / 1024).toFixed(1)} KiB gzip; ` +
        `README example (tree-shaken): ${(ex.length / 1024).toFixed(1)} KiB minified, ` +
        `${(gzipSync(ex, { level: 9 }).byteLength / 1024).toFixed(1)} KiB gzip`,
    );
    // A guard against accidental growth (a dependency pulled in), not a target: 64.1 KiB on 2026-12-05.
    assert.ok(gz < 96 * 1024, `the core stays small (${gz} bytes gzip)`);
  });

  test('cross-origin isolated page: README example, a Web Worker injecting SPIs and MSIs, snapshot and restore', async () => {
    const { example, report } = await run('coi', 'coi');
    assert.deepEqual(example, nodeOutput, 'the README example prints what it prints in Node');
    assert.ok(example.includes('vCPU 1 took 40'));
    assert.equal(report.crossOriginIsolated, true);
    assert.equal(report.shared, true, 'shared by default where SharedArrayBuffer exists');
    assert.equal(report.wfi, 'timeout', "a blocking WFI on the page's main thread answers at once");
    assert.ok((report.wfiMs as number) < 150, `WFI did not block (${report.wfiMs} ms)`);
    assert.deepEqual(report.worker, { attachedShared: true, msi: { delivered: ROUNDS }, late: 0 });
    assert.equal(report.acks, 2 * ROUNDS);
    const each = ROUNDS / 4;
    assert.deepEqual(report.taken, {
      40: each,
      41: each,
      42: each,
      43: each,
      8192: each,
      8193: each,
      8194: each,
      8195: each,
    });
    assert.deepEqual(report.restoredDefault, { shared: true, ispendr1: 1 << 9, taken: [41, 8194] });
    assert.deepEqual(report.restoredUnshared, { shared: false, ispendr1: 1 << 9, taken: [41, 8194] });
  });

  test('the external-CPU example (examples/toy-cpu) runs in a page as in Node', async () => {
    const node = spawnSync(process.execPath, [`${root}dist/examples/toy-cpu/run.js`], { encoding: 'utf8' });
    assert.equal(node.status, 0, node.stderr);
    const page = await browser.newPage();
    const lines: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => (m.type() === 'error' ? errors : lines).push(m.text()));
    try {
      await page.goto(`${origin}/plain/index.html`);
      await page.waitForFunction(() => (globalThis as { vgicTests?: unknown }).vgicTests !== undefined);
      await page.evaluate('import("./toy.js")');
    } finally {
      await page.close();
    }
    assert.deepEqual(errors, []);
    assert.ok(lines.includes('taken: 1 27 40 8192'), lines.join('\n'));
    assert.deepEqual(lines, node.stdout.trimEnd().split('\n'), 'the page prints what Node prints');
  });

  test('Vite bundles the core without a stub; its bundles pass the same page tests', async () => {
    for (const code of viteFiles) {
      assert.doesNotMatch(
        code,
        /__vite-browser-external|(?:\bfrom\s*|\bimport\s*\(\s*)["']node:/,
        'no Node stub',
      );
      assert.doesNotMatch(code, /\bprocess\.env\b/);
    }
    const coi = await run('coi', 'coi', 'v');
    assert.deepEqual(coi.example, nodeOutput, "Vite's README example prints what it prints in Node");
    assert.equal(coi.report.shared, true);
    assert.deepEqual(coi.report.worker, { attachedShared: true, msi: { delivered: ROUNDS }, late: 0 });
    assert.equal(coi.report.acks, 2 * ROUNDS, 'a Web Worker attached with its owner id: nothing lost');
    const plain = await run('plain', 'plain', 'v');
    assert.deepEqual(plain.example, nodeOutput);
    assert.equal(plain.report.shared, false);
    assert.deepEqual(plain.report.taken, [43, 8193]);
  });

  test('page without cross-origin isolation: no SharedArrayBuffer, an unshared GIC, the same example', async () => {
    const { example, report } = await run('plain', 'plain');
    assert.deepEqual(example, nodeOutput, 'the README example prints what it prints in Node');
    assert.equal(report.crossOriginIsolated, false);
    assert.equal(report.sab, 'undefined');
    assert.equal(report.sharedTrue, 'INVALID_CONFIG', 'shared: true is refused with a VgicError');
    assert.equal(report.shared, false);
    assert.equal(report.wfi, 'timeout');
    assert.ok((report.wfiMs as number) < 150, `WFI did not block (${report.wfiMs} ms)`);
    assert.equal(report.wfiAsync, 'irq', 'wfiAsync woke for an SPI injected by a timer of the same thread');
    assert.equal(report.msi, 'delivered');
    assert.deepEqual(report.taken, [43, 8193]);
    assert.deepEqual(report.restoredDefault, { shared: false, ispendr1: 1 << 9, taken: [41, 8194] });
    assert.deepEqual(report.restoredUnshared, { shared: false, ispendr1: 1 << 9, taken: [41, 8194] });
  });
});
