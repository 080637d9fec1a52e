/**
 * `--inspect PORT`: the live inspector page, served on 127.0.0.1 with node:http only.
 *
 * Routes: `/` (the page: HTML with the bundled script and uPlot's CSS inline, no external asset),
 * `/state.json` (Vgic.dumpState), `/explain?intid=N&vcpu=V` (Vgic.explain), `/explain-many?q=N:V,…`
 * (explain for up to 300 interrupts: the page's "why" column), `/events?trace=GLOBS`
 * (Server-Sent Events: `metrics` twice a second, `trace` batches of the events the globs enable).
 *
 * Where the state is read: on the thread that runs the guest, between its slices. `vgic run` and
 * `vgic linux` run every vCPU on the main thread over an unshared state (no atomics on the guest's
 * path), and return to the event loop every 20 ms; a request is answered there, so it reads a
 * state no vCPU is in the middle of changing, costs the guest nothing while no page is open, and
 * waits at most one slice. (A worker attached to a SharedArrayBuffer would need the machine's
 * state shared, which costs the guest two atomics per instruction.)
 *
 * Metrics: per vCPU, acknowledges per second (the V_ACKS statistic each IAR counts, on whatever
 * thread the vCPU runs), LRs in use, maintenance exits per second (stats); per ITS, translation-cache hit rate (the dump's per-thread hit and miss
 * counters, its/msi-stats.ts: MSIs from any thread count); acknowledge latency in host ms from
 * an interrupt becoming pending (vgic_update_irq_pending for SPIs and PPIs, gicv3_icc_generate_sgi
 * for SGIs: trace events of this thread) to the IAR read that returns it, and for MSIs on any
 * thread the state's latency probes (core/inspect.ts, switched on while the inspector runs: the
 * vCPUs of lpi-stress run on worker threads, whose trace events this thread never sees). The
 * subscriptions and probes exist only while the inspector runs.
 *
 * Who may call: the CLI (run, linux), tests. One inspector per Vgic.
 */

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VgicError } from '../arch/errors.ts';
import type { Vgic } from '../device/vgic.ts';
import { formatTraceEvent, type TraceEvent, type TraceSubscription, traceSubscribe } from '../trace/trace.ts';

export interface Inspector {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface InspectorOptions {
  /** TCP port on 127.0.0.1 (0: any free port). */
  readonly port: number;
  /** Metrics period in ms (default 500). */
  readonly periodMs?: number;
}

/** The page's assets, built by scripts/bundle-inspector.mjs into dist/inspector/. */
function asset(name: string): string {
  const url = new URL(`../../inspector/${name}`, import.meta.url);
  try {
    return readFileSync(url, 'utf8');
  } catch {
    return '';
  }
}

function page(): string {
  const js = asset('page.js');
  const css = asset('uPlot.min.css');
  if (js === '') {
    return '<!doctype html><meta charset="utf-8"><title>vgic inspector</title><p>The inspector page was not built: run <code>npm run build</code>.</p>';
  }
  // </script> cannot occur in the bundle's strings unescaped: esbuild escapes it.
  return `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>vgic inspector</title><style>${css}</style></head><body><script type="module">${js}</script></body></html>`;
}

/** Running metrics, updated by trace subscriptions on the guest's thread. */
class Metrics {
  private pendingSince = new Map<number, number>();
  latencies: number[] = [];
  private subs: TraceSubscription[] = [];
  constructor() {
    // Key of an interrupt instance: vCPU * 2^24 + INTID (SPIs: the target vCPU).
    this.subs.push(
      traceSubscribe(['gicv3_icc_iar0_read', 'gicv3_icc_iar1_read'], (e) => {
        const v = e.args.cpu;
        const intid = e.args.val;
        if (intid >= 1020 && intid <= 1023) return;
        const key = v * 2 ** 24 + intid;
        const t0 = this.pendingSince.get(key);
        if (t0 !== undefined) {
          this.pendingSince.delete(key);
          if (this.latencies.length < 4096) this.latencies.push(e.time - t0);
        }
      }),
      traceSubscribe('vgic_update_irq_pending', (e) => {
        if (e.args.level !== 1 || e.args.vcpu_id < 0) return;
        const key = e.args.vcpu_id * 2 ** 24 + e.args.irq;
        if (!this.pendingSince.has(key) && this.pendingSince.size < 65536) this.pendingSince.set(key, e.time);
      }),
      traceSubscribe('gicv3_icc_generate_sgi', (e) => {
        // Target list mode: Aff0 bits of the target list within the sender's Aff1..3 cluster.
        if (e.args.irm !== 0) return;
        const cluster = (((e.args.aff >>> 8) & 0xff) << 12) | ((e.args.aff & 0xff) << 4);
        for (let m = e.args.targetlist; m !== 0; m &= m - 1) {
          const v = cluster + (31 - Math.clz32(m & -m));
          const key = v * 2 ** 24 + e.args.irq;
          if (!this.pendingSince.has(key) && this.pendingSince.size < 65536)
            this.pendingSince.set(key, e.time);
        }
      }),
    );
  }
  close(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** Starts the inspector for `gic`; resolves once it listens. */
export async function startInspector(gic: Vgic, options: InspectorOptions): Promise<Inspector> {
  const period = options.periodMs ?? 500;
  const metrics = new Metrics();
  gic.setLatencyProbes(true);
  const clients = new Set<ServerResponse>();
  const html = page();
  let last = {
    t: performance.now(),
    acks: [] as number[],
    maint: [] as number[],
    hits: [] as number[],
    misses: [] as number[],
  };
  const sample = () => {
    const d = gic.dumpState({ maxDevices: 0, maxLpis: 0, maxCacheEntries: 0 });
    const t = performance.now();
    const dt = Math.max(1, t - last.t) / 1000;
    const maint = d.vcpus.map((v) => v.maintenance);
    const hits = d.its.map((k) => k.cache.stats.hits);
    const misses = d.its.map((k) => k.cache.stats.misses);
    const acks = d.vcpus.map((v) => v.acks);
    // Trace-timed (this thread's lines and SGIs) and probe-timed (MSIs, any thread) latencies.
    const lat = metrics.latencies.concat(gic.takeLatencies()).sort((a, b) => a - b);
    metrics.latencies = [];
    const out = {
      t: Date.now(),
      ackRate: acks.map((a, v) => (a - (last.acks[v] ?? a)) / dt),
      lrUsed: d.vcpus.map((v) => v.usedLrs),
      apList: d.vcpus.map((v) => v.apList.length),
      maintRate: maint.map((m, v) => (m - (last.maint[v] ?? m)) / dt),
      // Over the period: hits / (hits + misses) of the translations made in it (none: no point).
      hitRate: hits.map((h, k) => {
        const dh = h - (last.hits[k] ?? h);
        const n = dh + misses[k] - (last.misses[k] ?? misses[k]);
        return n > 0 ? dh / n : null;
      }),
      latencyP50: lat.length ? lat[Math.floor(lat.length / 2)] : null,
      latencyMax: lat.length ? lat[lat.length - 1] : null,
      latencySamples: lat.length,
    };
    last = { t, acks, maint, hits, misses };
    return out;
  };
  const timer = setInterval(() => {
    if (clients.size === 0) {
      sample();
      return;
    }
    const m = `event: metrics\ndata: ${JSON.stringify(sample())}\n\n`;
    for (const c of clients) c.write(m);
  }, period);
  timer.unref();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'GET only\n');
    switch (url.pathname) {
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', html);
      case '/state.json':
        return send(res, 200, 'application/json', JSON.stringify(gic.dumpState()));
      case '/state.txt':
        return send(res, 200, 'text/plain; charset=utf-8', gic.dumpStateText());
      case '/explain': {
        try {
          const intid = Number(url.searchParams.get('intid'));
          const v = url.searchParams.get('vcpu');
          const r = gic.explain(intid, v === null || v === '' ? undefined : Number(v));
          return send(res, 200, 'application/json', JSON.stringify(r));
        } catch (e) {
          if (e instanceof VgicError)
            return send(res, 400, 'application/json', JSON.stringify({ error: e.message }));
          throw e;
        }
      }
      case '/explain-many': {
        // Many INTIDs at once (the page's "why" column): q=INTID:VCPU,INTID:,… (at most 300).
        const q = (url.searchParams.get('q') ?? '').split(',').filter((x) => x !== '');
        if (q.length > 300)
          return send(res, 400, 'application/json', JSON.stringify({ error: 'at most 300' }));
        const out = q.map((item) => {
          const [i, v] = item.split(':');
          try {
            return gic.explain(Number(i), v === undefined || v === '' ? undefined : Number(v));
          } catch (e) {
            if (e instanceof VgicError) return { error: e.message };
            throw e;
          }
        });
        return send(res, 200, 'application/json', JSON.stringify(out));
      }
      case '/events': {
        const pattern = url.searchParams.get('trace') ?? '';
        let sub: TraceSubscription | undefined;
        const batch: string[] = [];
        let dropped = 0;
        if (pattern !== '') {
          try {
            sub = traceSubscribe(pattern, (e: TraceEvent) => {
              if (batch.length < 500) batch.push(formatTraceEvent(e));
              else dropped++;
            });
          } catch (e) {
            if (e instanceof VgicError) return send(res, 400, 'text/plain', `${e.message}\n`);
            throw e;
          }
        }
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        res.write(
          `event: hello\ndata: ${JSON.stringify({ nVcpus: gic.nVcpus, nIts: gic.nIts, trace: sub?.events ?? [] })}\n\n`,
        );
        clients.add(res);
        const flush = setInterval(() => {
          if (batch.length === 0 && dropped === 0) return;
          res.write(`event: trace\ndata: ${JSON.stringify({ lines: batch.splice(0), dropped })}\n\n`);
          dropped = 0;
        }, 250);
        flush.unref();
        req.on('close', () => {
          clearInterval(flush);
          sub?.unsubscribe();
          clients.delete(res);
        });
        return;
      }
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  };
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) send(res, 500, 'text/plain', `${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  server.unref();
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        metrics.close();
        gic.setLatencyProbes(false);
        for (const c of clients) c.end();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** What `--trace`, `--inspect` and SIGUSR1 attach to a running machine (vgic run, vgic linux). */
export interface Observers {
  readonly inspector: Inspector | undefined;
  close(): Promise<void>;
}

/**
 * Attaches the observers a machine command offers: the vgic-state dump to stderr on SIGUSR1 (as
 * `cat /sys/kernel/debug/kvm/…/vgic-state`), trace events to stderr (`--trace`, as QEMU's -trace
 * log), and the inspector page (`--inspect PORT`), whose URL is printed to stderr.
 */
export async function attachObservers(
  gic: Vgic,
  o: { readonly trace?: string; readonly inspect?: number; readonly label: string },
): Promise<Observers> {
  const onUsr1 = () => process.stderr.write(gic.dumpStateText());
  process.on('SIGUSR1', onUsr1);
  const sub =
    o.trace === undefined
      ? undefined
      : traceSubscribe(o.trace, (e) => process.stderr.write(`${formatTraceEvent(e)}\n`));
  let inspector: Inspector | undefined;
  try {
    inspector = o.inspect === undefined ? undefined : await startInspector(gic, { port: o.inspect });
  } catch (e) {
    process.off('SIGUSR1', onUsr1);
    sub?.unsubscribe();
    throw e;
  }
  if (inspector) process.stderr.write(`${o.label}: inspector on ${inspector.url}\n`);
  return {
    inspector,
    close: async () => {
      process.off('SIGUSR1', onUsr1);
      sub?.unsubscribe();
      await inspector?.close();
    },
  };
}
