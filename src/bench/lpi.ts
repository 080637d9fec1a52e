/**
 * LPI rate benchmark (single thread): MSIs injected with signalMsi (KVM_SIGNAL_MSI), acknowledged
 * with ICC_IAR1_EL1 and completed with ICC_EOIR1_EL1 on one vCPU, for tables of different sizes.
 *
 * Each configuration maps `events` EventIDs of one device (16 EventID bits for 65536) onto the LPIs
 * the guest's property table covers (PROPBASER.IDbits + 1 = `idBits`), then runs rounds of
 * `batch` MSIs to consecutive events followed by `batch` IAR/EOIR pairs: batch 1 is the latency
 * shape (every LPI is its own round trip), batch 16 a burst that fills the 16 list registers.
 * `batch` 0 measures injection alone (signalMsi on a warm cache, as vgic_lpi_stress counts it).
 * The point is QEMU's curve (qemu-virt.md: 18 µs → 130 µs per LPI from IDbits 13 to 15, because it
 * rescans the pending table): here the cost per LPI must not depend on the table size.
 *
 * Who may call: the CLI.
 */

import { ICC_EOIR1_EL1, ICC_IAR1_EL1 } from '../arch/sysreg.ts';
import { Vgic } from '../device/vgic.ts';
import { GicV3Guest } from '../guest/gic-v3.ts';
import { GuestAllocator, ItsGuest, LpiTables } from '../guest/gic-v3-its.ts';
import { median } from '../util/stats.ts';

export interface LpiBenchConfig {
  readonly events: number;
  readonly idBits: number;
  /** MSIs per round before the vCPU acks them; 0: inject only (vgic_lpi_stress's measure). */
  readonly batch: number;
  readonly shared: boolean;
  /** GICv4.1 direct injection: every event forwarded (Vgic.setForwarding); IAR takes from the VPT. */
  readonly direct?: boolean;
}

export interface LpiResult extends LpiBenchConfig {
  readonly name: string;
  /** LPIs per trial. */
  readonly lpis: number;
  readonly trials: number;
  /** Median, min and max ns per LPI (inject + ack + EOI, amortised over the batch). */
  readonly nsPerLpi: number;
  readonly minNsPerLpi: number;
  readonly maxNsPerLpi: number;
  /** 1e9 / median ns. */
  readonly lpisPerSec: number;
  /** Translation-cache misses during the timed trials. */
  readonly cacheMisses: number;
  /** LPIs that were not delivered as expected: must be 0. */
  readonly errors: number;
}

export interface LpiBenchOptions {
  /** Runs every configuration with GICv4.1 direct injection too (rows marked 'direct'). */
  readonly direct?: boolean;
  readonly lpis?: number;
  readonly trials?: number;
  /** Called as each configuration starts (a line for a progress display). */
  readonly progress?: (line: string) => void;
  readonly configs?: readonly LpiBenchConfig[];
}

export const DEFAULT_LPI_CONFIGS: readonly LpiBenchConfig[] = [1, 16, 0].flatMap((batch) =>
  [1, 65536].flatMap((events) =>
    [14, 16]
      .filter(() => batch <= events)
      .flatMap((idBits) => [true, false].map((shared) => ({ events, idBits, batch, shared }))),
  ),
);

export const configName = (c: LpiBenchConfig): string =>
  `${c.batch === 0 ? 'inject' : `batch=${c.batch}`} e=${c.events} idbits=${c.idBits}${c.shared ? '' : ' /unshared'}${c.direct ? ' direct' : ''}`;

interface Setup {
  readonly run: (n: number) => void;
  readonly errors: () => number;
  readonly misses: () => number;
}

function setup(c: LpiBenchConfig): Setup {
  const gic = Vgic.create({
    vcpus: 1,
    lrs: 16,
    its: 1,
    ram: { size: 32 << 20 },
    time: 'virtual',
    shared: c.shared,
    ...(c.direct ? { directInjection: 'gicv4.1' as const } : {}),
  });
  const cpu = gic.vcpu(0);
  const g = new GicV3Guest(cpu);
  g.enableDistributor();
  g.enableCpu();
  const alloc = new GuestAllocator(0x40000000, 32 << 20);
  const lpi = new LpiTables(cpu, alloc, 1, c.idBits);
  lpi.fillConfig();
  lpi.program(g.rd, 0);
  lpi.enable(g.rd);
  const its = new ItsGuest(cpu, alloc);
  its.init();
  its.enable();
  its.createDevice(0, Math.max(1, Math.ceil(Math.log2(c.events))));
  its.mapc(0, 0);
  const nLpis = 2 ** c.idBits - 8192;
  for (let e = 0; e < c.events; e++) {
    if (!its.mapti(0, e, 8192 + (e % nLpis), 0)) throw new Error(`MAPTI of event ${e} did not complete`);
  }
  if (gic.its(0).errorCount() !== 0) throw new Error('set-up commands failed');
  const doorbell = its.doorbell;
  if (c.direct) for (let e = 0; e < c.events; e++) gic.setForwarding({ doorbell, devid: 0, eventid: e });
  const events = c.events;
  const batch = c.batch;
  let e = 0;
  let bad = 0;
  if (batch === 0) {
    // Injection throughput only (vgic_lpi_stress): after the first pass every LPI is pending and
    // each MSI is a translation-cache hit, a latch set and an "already queued" check.
    return {
      run: (n) => {
        for (let i = 0; i < n; i++) {
          if (gic.signalMsi({ doorbell, devid: 0, eventid: e }) !== 'delivered') bad++;
          e = e + 1 === events ? 0 : e + 1;
        }
      },
      errors: () => bad,
      misses: () => gic.its(0).stats().cacheMisses,
    };
  }
  return {
    run: (n) => {
      for (let i = 0; i < n; i += batch) {
        for (let j = 0; j < batch; j++) {
          if (gic.signalMsi({ doorbell, devid: 0, eventid: e }) !== 'delivered') bad++;
          e = e + 1 === events ? 0 : e + 1;
        }
        for (let j = 0; j < batch; j++) {
          const intid = cpu.readSysreg(ICC_IAR1_EL1);
          if (intid < 8192) bad++;
          cpu.writeSysreg(ICC_EOIR1_EL1, intid);
        }
      }
    },
    errors: () => bad,
    misses: () => gic.its(0).stats().cacheMisses,
  };
}

export function runLpiBench(o: LpiBenchOptions = {}): LpiResult[] {
  const lpis = o.lpis ?? 2 ** 18;
  const trials = o.trials ?? 9;
  const out: LpiResult[] = [];
  const configs = o.configs ?? DEFAULT_LPI_CONFIGS;
  for (const c of o.direct ? configs.flatMap((x) => [x, { ...x, direct: true }]) : configs) {
    o.progress?.(`lpi-bench: ${configName(c)} (${trials} trials of ${lpis} LPIs)`);
    const t = setup(c);
    // Warm-up: one pass over every event (fills the translation cache) and lets the JIT settle.
    t.run(Math.max(lpis, Math.ceil(c.events / Math.max(c.batch, 1)) * Math.max(c.batch, 1)));
    const errors0 = t.errors();
    const misses0 = t.misses();
    const per: number[] = [];
    for (let k = 0; k < trials; k++) {
      const t0 = performance.now();
      t.run(lpis);
      per.push(((performance.now() - t0) * 1e6) / lpis);
    }
    const ns = median(per);
    out.push({
      ...c,
      name: configName(c),
      lpis,
      trials,
      nsPerLpi: ns,
      minNsPerLpi: Math.min(...per),
      maxNsPerLpi: Math.max(...per),
      lpisPerSec: 1e9 / ns,
      cacheMisses: t.misses() - misses0,
      errors: t.errors() - errors0,
    });
  }
  return out;
}

export function formatLpiBench(rs: readonly LpiResult[]): string {
  const lines = [
    `${'configuration'.padEnd(44)}${'ns/LPI'.padStart(9)}${'min'.padStart(8)}${'max'.padStart(8)}${'LPIs/s'.padStart(14)}${'misses'.padStart(8)}`,
    '-'.repeat(91),
  ];
  for (const r of rs) {
    lines.push(
      `${r.name.padEnd(44)}${r.nsPerLpi.toFixed(1).padStart(9)}${r.minNsPerLpi.toFixed(1).padStart(8)}${r.maxNsPerLpi.toFixed(1).padStart(8)}${Math.round(r.lpisPerSec).toLocaleString('en-US').padStart(14)}${String(r.cacheMisses).padStart(8)}${r.errors ? `  ERRORS ${r.errors}` : ''}`,
    );
  }
  return lines.join('\n');
}
