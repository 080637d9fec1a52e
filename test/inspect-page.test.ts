/**
 * Issue 16, item 4–5: the inspector page in headless Chromium (playwright-core, Debian's chromium)
 * while Debian's Linux boots on vgic's machine with `--inspect` (bootOnMachine, smp 2) and then
 * runs a fork-heavy shell loop: the page renders the vCPUs' list registers and ap_lists, the
 * distributor and ITS, the busy interrupts and the plots; it updates (state polls and metric
 * events keep arriving, acknowledges are counted); clicking an interrupt explains it; the trace
 * stream shows events. A screenshot is kept at test-output/inspect.png (gitignored).
 *
 * Needs what `npm test` installs: the CPU addon, chromium, and the cached kernel (linux --fetch).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { runLpiStress } from '../src/bench/lpi-stress.ts';
import { startInspector } from '../src/cli/inspect-server.ts';
import { bootOnMachine, LINUX_BASE_APPEND } from '../src/cli/linux.ts';
import { buildLinuxInitramfs } from '../src/machine/initramfs.ts';
import { cachedLinuxAssets } from '../src/machine/linux-assets.ts';

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
const MARK = 'INSPECT-LOOP';
/** Seconds of guest activity the page is looked at during. */
const LOOP_S = 14;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('the inspector page follows Linux booting on vgic: renders, updates, explains, traces', async (t) => {
  const assets = cachedLinuxAssets();
  if (assets === undefined) {
    t.skip('Linux assets not cached: run `npx vgic linux --fetch` (npm test does)');
    return;
  }
  if (!existsSync(CHROMIUM)) {
    const r = spawnSync('bash', [`${root}scripts/install-system-deps.sh`, 'chromium'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `installing chromium: ${r.stderr}`);
  }
  const script = `echo ${MARK}; end=$(($(date +%s)+${LOOP_S})); while [ $(date +%s) -lt $end ]; do cat /proc/interrupts > /dev/null; done; echo done`;
  const initrd = buildLinuxInitramfs({ busybox: readFileSync(assets.busybox), script, echo: true });
  let console = '';
  let url = '';
  let markSeen: () => void = () => {};
  const marked = new Promise<void>((resolve) => {
    markSeen = resolve;
  });
  const boot = bootOnMachine({
    kernel: assets.kernel,
    initrd,
    smp: 2,
    ramSize: 512 * 1024 * 1024,
    append: LINUX_BASE_APPEND,
    timeLimitMs: 180_000,
    interactive: false,
    inspect: 0,
    onInspector: (u) => {
      url = u;
    },
    output: (b) => {
      console += Buffer.from(b).toString('latin1');
      if (console.includes(`\n${MARK}`)) markSeen();
    },
  });
  let browser: Browser | undefined;
  try {
    await Promise.race([
      marked,
      boot.then(() => assert.fail(`the guest ended before the loop:\n${console}`)),
    ]);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    // The plain endpoints first.
    const state = JSON.parse((await get(`${url}state.json`)).body);
    assert.equal(state.nVcpus, 2);
    const ex = await get(`${url}explain?intid=27&vcpu=0`);
    assert.equal(ex.status, 200);
    assert.match(JSON.parse(ex.body).reason, /PPI 27/);
    assert.equal((await get(`${url}explain?intid=99999`)).status, 400);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    await page.fill('#trace-pattern', 'gicv3_icc_iar1_read,gicv3_icc_eoir_write,vgic_update_irq_pending');
    await page.click('#trace-apply');
    // Updates: state polls and metric events keep arriving while the guest runs.
    await page.waitForFunction('Number(document.body.dataset.metrics ?? 0) >= 6', undefined, {
      timeout: 20_000,
    });
    await page.waitForFunction('Number(document.body.dataset.polls ?? 0) >= 4', undefined, {
      timeout: 20_000,
    });
    assert.equal(await page.textContent('#status'), 'live');
    assert.equal(await page.locator('.vcpu').count(), 2);
    assert.match((await page.textContent('#vcpus')) ?? '', /vCPU 0[\s\S]*LR[\s\S]*vINTID[\s\S]*vCPU 1/);
    assert.match((await page.textContent('#dist')) ?? '', /GICD_CTLR EnableGrp0 \d EnableGrp1 1/);
    assert.match((await page.textContent('#dist')) ?? '', /ITS 0: enabled/);
    assert.equal(await page.locator('.uplot').count(), 5);
    // The trace stream shows the acknowledges.
    await page.waitForFunction(
      "(document.getElementById('trace-lines')?.textContent ?? '').includes('gicv3_icc_iar1_read')",
      undefined,
      { timeout: 10_000 },
    );
    // Clicking the timer's row (or the first busy one) explains it.
    const rows = page.locator('tr.irq');
    assert.ok((await rows.count()) > 0, 'some interrupt is doing something');
    await rows.first().click();
    await page.waitForFunction("(document.getElementById('explain-result')?.textContent ?? '').length > 10");
    assert.match((await page.textContent('#explain-result')) ?? '', /^[✔✘] (SGI|PPI|SPI|LPI) \d+ /);
    await page.fill('#explain-intid', '27');
    await page.fill('#explain-vcpu', '1');
    await page.click('#explain-go');
    await page.waitForFunction(
      "(document.getElementById('explain-result')?.textContent ?? '').includes('PPI 27')",
    );
    // Both vCPUs ran while the page watched.
    const exits = (await page.evaluate(
      "fetch('/state.json').then((r) => r.json()).then((d) => d.vcpus.map((v) => v.exits))",
    )) as number[];
    assert.ok(exits[0] > 0 && exits[1] > 0, `both vCPUs ran: ${exits}`);
    mkdirSync(`${root}test-output`, { recursive: true });
    await page.screenshot({ path: `${root}test-output/inspect.png`, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser?.close();
    const report = await boot;
    assert.match(console, /\ndone/, `the loop finished: ${report.message}`);
  }
});

test('on an lpi-stress page the acknowledge, latency and hit-rate plots have data (vCPUs on worker threads)', async () => {
  if (!existsSync(CHROMIUM)) {
    const r = spawnSync('bash', [`${root}scripts/install-system-deps.sh`, 'chromium'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `installing chromium: ${r.stderr}`);
  }
  let browser: Browser | undefined;
  let looked: Promise<Record<string, string | undefined>> | undefined;
  try {
    const r = await runLpiStress({
      vcpus: 2,
      devices: 2,
      events: 8,
      iterations: 10,
      // Long enough for the page to open and see several metric periods while MSIs fly.
      minMs: 12_000,
      onGic: async (gic) => {
        const inspector = await startInspector(gic, { port: 0, periodMs: 250 });
        looked = (async () => {
          browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
          const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
          await page.goto(inspector.url);
          await page.waitForFunction(
            'Number(document.body.dataset.ackPoints ?? 0) >= 2 && Number(document.body.dataset.latencyPoints ?? 0) >= 2 && Number(document.body.dataset.hitPoints ?? 0) >= 2',
            undefined,
            { timeout: 30_000 },
          );
          // The busy LPIs carry explain()'s answer in the "why" column, from the page alone.
          await page.waitForFunction(
            "[...document.querySelectorAll('td.why')].some((c) => /^(signalled|LPI \\d+ )/.test(c.textContent ?? ''))",
            undefined,
            { timeout: 10_000 },
          );
          mkdirSync(`${root}test-output`, { recursive: true });
          await page.screenshot({ path: `${root}test-output/inspect-lpi-stress.png`, fullPage: true });
          return (await page.evaluate('({ ...document.body.dataset })')) as Record<
            string,
            string | undefined
          >;
        })();
        // Keep the run going until the page has looked (or failed to).
        return async () => {
          await looked?.catch(() => undefined);
          await inspector.close();
        };
      },
    });
    assert.equal(r.failed, 0);
    const seen = await (looked as Promise<Record<string, string | undefined>>);
    assert.ok(Number(seen.ackPoints) >= 2, `ack points ${seen.ackPoints}`);
    assert.ok(Number(seen.latencyPoints) >= 2, `latency points ${seen.latencyPoints}`);
    assert.ok(Number(seen.hitPoints) >= 2, `hit-rate points ${seen.hitPoints}`);
  } finally {
    await browser?.close();
  }
});
