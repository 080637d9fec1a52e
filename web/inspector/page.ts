/**
 * The inspector page (`vgic run … --inspect PORT`, src/cli/inspect-server.ts): live per-vCPU
 * ap_lists and list registers, the distributor and ITS state, the interrupts that are doing
 * something, "why not delivered?" for any INTID, the trace stream with filters, and plots of
 * acknowledge rate, LR occupancy, maintenance exits, translation-cache hit rate and acknowledge
 * latency. Bundled with uPlot by scripts/bundle-inspector.mjs; no external asset.
 *
 * Data: /state.json once a second (the dump), /events (Server-Sent Events: metrics, trace).
 */

import uPlot from 'uplot';

// The parts of the dump the page shows (src/device/vgic-state.ts has the full types).
interface Lr {
  n: number;
  vintid: number;
  state: string;
  hw: boolean;
  group: number;
  priority: number;
  pintid: number;
}
interface Vcpu {
  index: number;
  inGuest: boolean;
  apList: number[];
  usedLrs: number;
  lrs: Lr[];
  pmr: number;
  bpr0: number;
  bpr1: number;
  eoiMode: boolean;
  igrpen0: boolean;
  igrpen1: boolean;
  ap0r0: number;
  ap1r0: number;
  runningPriority: number;
  lpisEnabled: boolean;
  exits: number;
  maintenance: number;
}
interface Irq {
  intid: number;
  type: string;
  vcpu: number;
  target: number;
  enabled: boolean;
  pending: boolean;
  active: boolean;
  config: string;
  group: number;
  priority: number;
  hw: boolean;
  apList: number;
  lr: { vcpu: number; n: number; state: string } | null;
}
interface Its {
  index: number;
  enabled: boolean;
  collections: { icid: number; vcpu: number }[];
  devices: { devid: number; eventBits: number; events: unknown[] }[];
  devicesOmitted: number;
  cache: {
    size: number;
    entries: unknown[];
    misses: number;
    stats: { hits: number; misses: number; fills: number; evictions: number; hitRate: number | null };
  };
  commands: number;
  errors: Record<string, number>;
  msiBlocked: number;
  msiBusy: number;
}
interface Dump {
  nVcpus: number;
  nSpis: number;
  nLrs: number;
  distributor: { enableGrp0: boolean; enableGrp1: boolean };
  vcpus: Vcpu[];
  irqs: Irq[];
  its: Its[];
  stats: Record<string, number>;
}
interface MetricsMsg {
  t: number;
  ackRate: number[];
  lrUsed: number[];
  maintRate: number[];
  hitRate: (number | null)[];
  latencyP50: number | null;
  latencyMax: number | null;
}

const CSS = `
body{font:13px/1.35 system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{background:#263238;color:#fff;padding:6px 12px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:16px;margin:0}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:10px;padding:10px}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;overflow:auto}
section h2{font-size:14px;margin:0 0 6px}
table{border-collapse:collapse;font:12px ui-monospace,monospace}
td,th{border-bottom:1px solid #eee;padding:1px 6px;text-align:right}
th{background:#f3f3f3}
.wide{grid-column:1/-1}
#plots{display:flex;flex-wrap:wrap;gap:8px}#plots h2{width:100%}
.pend{color:#b26a00}.act{color:#1565c0}.pa{color:#6a1b9a}
#trace-lines{height:220px;overflow:auto;background:#111;color:#9f9;font:11px ui-monospace,monospace;padding:4px;margin:4px 0 0;white-space:pre}
input{font:12px ui-monospace,monospace}
#explain-result{font-weight:600;margin-top:6px}
tr.click{cursor:pointer}tr.click:hover{background:#eef}
td.why{text-align:left;font-family:system-ui,sans-serif;max-width:520px;white-space:normal}
`;

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text = '',
): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
};
const hex = (n: number): string => `0x${n.toString(16)}`;

function section(id: string, title: string, wide = false): HTMLElement {
  const s = el('section', { id, ...(wide ? { class: 'wide' } : {}) });
  s.append(el('h2', {}, title));
  return s;
}

function table(
  head: string[],
  rows: (string | number)[][],
  rowAttrs?: (i: number) => Record<string, string>,
): HTMLTableElement {
  const t = el('table');
  const tr = el('tr');
  for (const h of head) tr.append(el('th', {}, h));
  t.append(tr);
  rows.forEach((r, i) => {
    const row = el('tr', rowAttrs ? rowAttrs(i) : {});
    for (const c of r) row.append(el('td', {}, String(c)));
    t.append(row);
  });
  return t;
}

const style = el('style');
style.textContent = CSS;
document.head.append(style);
const header = el('header');
header.append(
  el('h1', {}, 'vgic inspector'),
  el('span', { id: 'status' }, 'connecting…'),
  el('span', { id: 'updated' }),
);
const main = el('main');
document.body.append(header, main);

const plotsSec = section('plots', 'Rates', true);
const vcpusSec = section('vcpus', 'vCPUs: ap_list and list registers', true);
const explainSec = section('explain', 'Why is an interrupt not delivered?');
const distSec = section('dist', 'Distributor and ITS');
const irqsSec = section('irqs', 'Interrupts doing something (click: explain)', true);
const traceSec = section('trace', 'Trace', true);
main.append(plotsSec, explainSec, distSec, vcpusSec, irqsSec, traceSec);

// ---- explain ----
const exIntid = el('input', { id: 'explain-intid', size: '8', placeholder: 'INTID' });
const exVcpu = el('input', { id: 'explain-vcpu', size: '4', placeholder: 'vCPU' });
const exBtn = el('button', { id: 'explain-go' }, 'explain');
const exOut = el('div', { id: 'explain-result' });
explainSec.append(exIntid, ' ', exVcpu, ' ', exBtn, exOut);
async function explain(intid: string, vcpu: string): Promise<void> {
  exIntid.value = intid;
  exVcpu.value = vcpu;
  const q = new URLSearchParams({ intid, ...(vcpu !== '' ? { vcpu } : {}) });
  const r = await fetch(`/explain?${q}`);
  const j = (await r.json()) as { reason?: string; error?: string; signalled?: boolean };
  exOut.textContent = j.error ?? `${j.signalled ? '✔' : '✘'} ${j.reason}`;
}
exBtn.onclick = () => void explain(exIntid.value.trim(), exVcpu.value.trim());

// ---- plots ----
const WINDOW = 120;
interface Plot {
  plot: uPlot;
  data: number[][];
}
const COLORS = ['#e53935', '#1e88e5', '#43a047', '#fb8c00', '#8e24aa', '#00acc1', '#6d4c41', '#3949ab'];
function makePlot(title: string, labels: string[], scaleMax?: number): Plot {
  const box = el('div', { class: 'plot' });
  plotsSec.append(box);
  const opts: uPlot.Options = {
    title,
    width: 420,
    height: 170,
    scales: { x: { time: true }, ...(scaleMax !== undefined ? { y: { range: [0, scaleMax] } } : {}) },
    series: [
      {},
      ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true })),
    ],
  };
  const data: number[][] = [[], ...labels.map(() => [])];
  const plot = new uPlot(opts, data as uPlot.AlignedData, box);
  return { plot, data };
}
function push(p: Plot, t: number, values: (number | null)[]): void {
  p.data[0].push(t);
  for (let i = 0; i < values.length; i++) p.data[i + 1].push(values[i] as number);
  if (p.data[0].length > WINDOW) for (const d of p.data) d.shift();
  p.plot.setData(p.data as uPlot.AlignedData);
}
let ackPlot: Plot | undefined;
let lrPlot: Plot | undefined;
let maintPlot: Plot | undefined;
let hitPlot: Plot | undefined;
let latPlot: Plot | undefined;
function setupPlots(nVcpus: number, nIts: number, nLrs: number): void {
  if (ackPlot) return;
  const v = Array.from({ length: nVcpus }, (_, i) => `vCPU ${i}`);
  ackPlot = makePlot('interrupts acknowledged /s', v);
  lrPlot = makePlot('list registers in use', v, nLrs);
  maintPlot = makePlot('maintenance exits /s', v);
  hitPlot = makePlot(
    'translation-cache hit rate',
    Array.from({ length: Math.max(nIts, 1) }, (_, k) => `ITS ${k}`),
    1,
  );
  latPlot = makePlot('acknowledge latency (host ms)', ['p50', 'max']);
}

// ---- state ----
let nLrs = 4;
function renderState(d: Dump): void {
  nLrs = d.nLrs;
  setupPlots(d.nVcpus, d.its.length, d.nLrs);
  vcpusSec.replaceChildren(vcpusSec.firstChild as Node);
  const grid = el('div', { style: 'display:flex;flex-wrap:wrap;gap:14px' });
  for (const v of d.vcpus) {
    const card = el('div', { class: 'vcpu', 'data-vcpu': String(v.index) });
    card.append(
      el('b', {}, `vCPU ${v.index}${v.inGuest ? '' : ' (out of guest)'}`),
      el(
        'div',
        {},
        `PMR ${hex(v.pmr)} RPR ${hex(v.runningPriority)} BPR ${v.bpr0}/${v.bpr1} IGRPEN ${+v.igrpen0}/${+v.igrpen1} EOImode ${+v.eoiMode} AP1R0 ${hex(v.ap1r0)} LPIs ${+v.lpisEnabled}`,
      ),
      el(
        'div',
        { class: 'aplist' },
        `ap_list (${v.apList.length}): ${v.apList.slice(0, 32).join(' ') || '—'}${v.apList.length > 32 ? ' …' : ''}`,
      ),
      table(
        ['LR', 'vINTID', 'state', 'G', 'prio', 'HW'],
        Array.from({ length: d.nLrs }, (_, n) => {
          const lr = v.lrs[n];
          return lr
            ? [n, lr.vintid, lr.state, lr.group, hex(lr.priority), lr.hw ? lr.pintid : '']
            : [n, '', 'empty', '', '', ''];
        }),
      ),
      el('div', {}, `exits ${v.exits} maintenance ${v.maintenance}`),
    );
    grid.append(card);
  }
  vcpusSec.append(grid);

  distSec.replaceChildren(distSec.firstChild as Node);
  distSec.append(
    el(
      'div',
      {},
      `GICD_CTLR EnableGrp0 ${+d.distributor.enableGrp0} EnableGrp1 ${+d.distributor.enableGrp1} · ${d.nSpis} SPIs · ${d.nLrs} LRs`,
    ),
  );
  const stats = Object.entries(d.stats).filter(([, n]) => n > 0);
  distSec.append(el('div', {}, `counters: ${stats.map(([k, n]) => `${k} ${n}`).join(', ') || 'all zero'}`));
  for (const its of d.its) {
    const errs = Object.entries(its.errors).filter(([, n]) => n > 0);
    distSec.append(
      el(
        'div',
        { class: 'its' },
        `ITS ${its.index}: ${its.enabled ? 'enabled' : 'disabled'} · ${its.commands} commands · ${its.devices.length + its.devicesOmitted} devices · collections ${its.collections.map((c) => `${c.icid}→${c.vcpu}`).join(' ') || '—'} · cache ${its.cache.entries.length}/${its.cache.size} live, cache hit rate ${its.cache.stats.hitRate === null ? '—' : `${(its.cache.stats.hitRate * 100).toFixed(1)} %`} (hits ${its.cache.stats.hits}, misses ${its.cache.stats.misses}, fills ${its.cache.stats.fills}, evictions ${its.cache.stats.evictions}) · blocked ${its.msiBlocked} busy ${its.msiBusy} · errors ${errs.map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
      ),
    );
  }

  const busy = d.irqs.filter(
    (q) =>
      q.active ||
      q.lr !== null ||
      q.apList >= 0 ||
      (q.pending && q.enabled) ||
      (q.pending && q.type !== 'LPI'),
  );
  irqsSec.replaceChildren(irqsSec.firstChild as Node);
  irqsSec.append(
    table(
      [
        'INTID',
        'type',
        'vCPU',
        'target',
        'E',
        'P',
        'A',
        'cfg',
        'G',
        'prio',
        'HW',
        'ap_list',
        'LR',
        'why not signalled',
      ],
      busy
        .slice(0, 300)
        .map((q) => [
          q.intid,
          q.type,
          q.vcpu >= 0 ? q.vcpu : '',
          q.target,
          +q.enabled,
          +q.pending,
          +q.active,
          q.config,
          q.group,
          hex(q.priority),
          q.hw ? 'HW' : '',
          q.apList >= 0 ? q.apList : '',
          q.lr ? `v${q.lr.vcpu} LR${q.lr.n} ${q.lr.state}` : '',
          '',
        ]),
      (i) => ({
        class: 'click irq',
        'data-intid': String(busy[i].intid),
        'data-vcpu': busy[i].vcpu >= 0 ? String(busy[i].vcpu) : '',
      }),
    ),
  );
  for (const row of irqsSec.querySelectorAll<HTMLTableRowElement>('tr.irq'))
    row.onclick = () => void explain(row.dataset.intid ?? '', row.dataset.vcpu ?? '');
  void whyColumn(busy.slice(0, 300));
  document.getElementById('updated')!.textContent = `state ${new Date().toLocaleTimeString()}`;
}
/** Fills the last column with explain()'s first reason for each listed interrupt (one request). */
async function whyColumn(rows: Irq[]): Promise<void> {
  if (rows.length === 0) return;
  const shown = irqsSec.querySelector('table');
  const q = rows.map((r) => `${r.intid}:${r.vcpu >= 0 ? r.vcpu : ''}`).join(',');
  const res = await fetch(`/explain-many?${new URLSearchParams({ q })}`);
  if (!res.ok) return;
  const why = (await res.json()) as { reason?: string; signalled?: boolean; error?: string }[];
  // A newer poll re-rendered the table meanwhile: it fills its own.
  if (shown === null || !shown.isConnected) return;
  const trs = shown.querySelectorAll<HTMLTableRowElement>('tr.irq');
  why.forEach((w, i) => {
    const cell = trs[i]?.lastElementChild;
    if (cell) {
      cell.textContent = w.error ?? (w.signalled ? 'signalled' : (w.reason ?? ''));
      cell.setAttribute('class', 'why');
    }
  });
}
async function poll(): Promise<void> {
  try {
    const r = await fetch('/state.json');
    renderState((await r.json()) as Dump);
    document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
  } catch {
    document.getElementById('status')!.textContent = 'disconnected';
  }
}
setInterval(() => void poll(), 1000);
void poll();

// ---- trace and metrics stream ----
const pattern = el('input', {
  id: 'trace-pattern',
  size: '60',
  value: 'gicv3_icc_iar1_read,gicv3_icc_eoir_write,gicv3_its_cmd_*,vgic_update_irq_pending',
});
const apply = el('button', { id: 'trace-apply' }, 'subscribe');
const filter = el('input', { id: 'trace-filter', size: '24', placeholder: 'show lines containing…' });
const pause = el('input', { id: 'trace-pause', type: 'checkbox' });
const lines = el('pre', { id: 'trace-lines' });
traceSec.append(
  'patterns (QEMU -trace globs, -x excludes): ',
  pattern,
  ' ',
  apply,
  ' filter ',
  filter,
  ' ',
  pause,
  ' pause',
  lines,
);
const kept: string[] = [];
function renderTrace(): void {
  const f = filter.value;
  lines.textContent = kept.filter((l) => f === '' || l.includes(f)).join('\n');
  lines.scrollTop = lines.scrollHeight;
}
filter.oninput = renderTrace;
let source: EventSource | undefined;
function connect(): void {
  source?.close();
  source = new EventSource(`/events?${new URLSearchParams({ trace: pattern.value })}`);
  source.addEventListener('hello', () => {
    document.getElementById('status')!.textContent = 'live';
  });
  source.addEventListener('trace', (ev) => {
    if (pause.checked) return;
    const m = JSON.parse((ev as MessageEvent).data) as { lines: string[]; dropped: number };
    kept.push(...m.lines);
    if (m.dropped > 0) kept.push(`… ${m.dropped} events dropped (narrow the patterns)`);
    if (kept.length > 400) kept.splice(0, kept.length - 400);
    renderTrace();
  });
  source.addEventListener('metrics', (ev) => {
    const m = JSON.parse((ev as MessageEvent).data) as MetricsMsg;
    const t = m.t / 1000;
    if (!ackPlot || !lrPlot || !maintPlot || !hitPlot || !latPlot) return;
    push(ackPlot, t, m.ackRate);
    push(
      lrPlot,
      t,
      m.lrUsed.map((x) => Math.min(x, nLrs)),
    );
    push(maintPlot, t, m.maintRate);
    push(hitPlot, t, m.hitRate.length ? m.hitRate : [null]);
    push(latPlot, t, [m.latencyP50, m.latencyMax]);
    // How many points of each plot carried data (tests read them; nothing else does).
    const ds = document.body.dataset;
    const bump = (k: 'ackPoints' | 'latencyPoints' | 'hitPoints', yes: boolean) => {
      if (yes) ds[k] = String(Number(ds[k] ?? 0) + 1);
    };
    bump(
      'ackPoints',
      m.ackRate.some((x) => x > 0),
    );
    bump('latencyPoints', m.latencyP50 !== null);
    bump(
      'hitPoints',
      m.hitRate.some((x) => x !== null),
    );
    ds.metrics = String(Number(ds.metrics ?? 0) + 1);
  });
  source.onerror = () => {
    document.getElementById('status')!.textContent = 'disconnected (retrying)';
  };
}
apply.onclick = connect;
connect();
