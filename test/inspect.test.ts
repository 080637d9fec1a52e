/**
 * Issue 16, items 1–3: trace events fire once per architectural event (counted against the
 * statistics counters the same operations bump), the vgic-state dump's JSON round-trips the state
 * it shows (a fresh GIC programmed from the JSON through the userspace register API dumps the
 * same), and explain() names the right first reason for each masking condition.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startInspector } from '../src/cli/inspect-server.ts';
import { parseLinuxArgs } from '../src/cli/linux.ts';
import { QtestSession } from '../src/cli/qtest.ts';
import { parseRunArgs } from '../src/cli/run.ts';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP1,
  GICD_ICFGR,
  GICD_IGROUPR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GicV3Guest,
  ICC_BPR1_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  VGIC_MIN_LPI,
  Vgic,
  VgicError,
  VIRT_GICD_BASE,
  VIRT_GITS_BASE,
} from '../src/index.ts';
import { formatTraceEvent, type TraceEvent, traceSubscribe, tracing } from '../src/trace/trace.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

/** Events by name while `fn` runs. */
function countEvents(patterns: string, fn: () => void): Map<string, number> {
  const counts = new Map<string, number>();
  const sub = traceSubscribe(patterns, (e) => counts.set(e.name, (counts.get(e.name) ?? 0) + 1));
  try {
    fn();
  } finally {
    sub.unsubscribe();
  }
  return counts;
}

function sumVcpus(gic: Vgic, key: 'exits' | 'flushes' | 'maintenance'): number {
  return gic.stats().vcpus.reduce((a, v) => a + v[key], 0);
}

function machine(vcpus = 2, lrs = 4) {
  const gic = Vgic.create({ vcpus, lrs, time: 'virtual' });
  const guests = Array.from({ length: vcpus }, (_, i) => new GicV3Guest(gic.vcpu(i)));
  guests[0].enableDistributor();
  for (const g of guests) g.enableCpu();
  return { gic, guests };
}

describe('trace events', () => {
  test('flush, sync, maintenance, IAR and EOIR fire once per event the statistics count', () => {
    const { gic, guests } = machine(2, 4);
    const g = guests[0];
    // Six pending SPIs for four LRs: the overflow makes maintenance exits refill the LRs.
    const intids = [40, 41, 42, 43, 44, 45];
    for (const i of intids) {
      g.setPriority(i, 0x80 + 8 * (i - 40));
      g.setEdge(i, true);
      g.enableIrq(i);
    }
    const exits0 = sumVcpus(gic, 'exits');
    const flushes0 = sumVcpus(gic, 'flushes');
    const maint0 = sumVcpus(gic, 'maintenance');
    let acks = 0;
    const counts = countEvents(
      'vgic_*_hwstate,gicv3_cpuif_virt_set_maint_irq,gicv3_icc_iar1_read,gicv3_icc_eoir_write',
      () => {
        for (const i of intids) gic.irqLine(i, true);
        for (;;) {
          const intid = g.ack();
          acks++;
          if (intid === 1023) break;
          g.eoi(intid);
        }
      },
    );
    assert.ok(sumVcpus(gic, 'maintenance') > maint0, 'the overflow took maintenance exits');
    assert.equal(counts.get('vgic_sync_hwstate') ?? 0, sumVcpus(gic, 'exits') - exits0);
    assert.equal(counts.get('vgic_flush_hwstate') ?? 0, sumVcpus(gic, 'flushes') - flushes0);
    assert.equal(counts.get('gicv3_cpuif_virt_set_maint_irq') ?? 0, sumVcpus(gic, 'maintenance') - maint0);
    assert.equal(counts.get('gicv3_icc_iar1_read'), acks);
    assert.equal(counts.get('gicv3_icc_eoir_write'), intids.length);
    assert.equal(tracing.on, 0, 'no subscription left: hooks read 0');
  });

  test('the IAR event carries the INTID read, the line events the host injections', () => {
    const { gic, guests } = machine(1);
    guests[0].enableIrq(50);
    const seen: TraceEvent[] = [];
    const sub = traceSubscribe('gicv3_icc_iar1_read,gicv3_dist_set_irq,vgic_update_irq_pending', (e) =>
      seen.push(e),
    );
    gic.irqLine(50, true);
    assert.equal(guests[0].ack(), 50);
    sub.unsubscribe();
    assert.deepEqual(
      seen.map((e) => formatTraceEvent(e)),
      [
        'gicv3_dist_set_irq GICv3 distributor interrupt 50 level changed to 1',
        'vgic_update_irq_pending VCPU: 0, IRQ 50, level: 1',
        'gicv3_icc_iar1_read GICv3 ICC_IAR1 read cpu 0x0 value 0x32',
      ],
    );
  });

  test('MMIO reads and writes are traced per frame; a bad access is a bad* event, as the stats count it', () => {
    const { gic } = machine(1);
    const cpu = gic.vcpu(0);
    const bad0 = gic.stats().mmioBadAccess + gic.stats().mmioUnmapped;
    const counts = countEvents('gicv3_dist_*,gicv3_redist_*', () => {
      cpu.readl(VIRT_GICD_BASE + GICD_CTLR);
      cpu.writel(VIRT_GICD_BASE + GICD_ISENABLER + 4, 1);
      cpu.readl(VIRT_GICD_BASE + 0xa000); // no register there
      cpu.readb(VIRT_GICD_BASE + GICD_CTLR + 1); // CTLR takes no byte access
      cpu.writel(VIRT_GICD_BASE + 0xa004, 1);
    });
    const bad = gic.stats().mmioBadAccess + gic.stats().mmioUnmapped - bad0;
    assert.equal(bad, 3);
    assert.equal((counts.get('gicv3_dist_badread') ?? 0) + (counts.get('gicv3_dist_badwrite') ?? 0), bad);
    assert.equal(counts.get('gicv3_dist_read'), 1);
    assert.equal(counts.get('gicv3_dist_write'), 1);
  });

  test('ITS commands, command errors, cache misses and failed translations match the ITS counters', () => {
    const m = lpiMachine({ vcpus: 2 });
    const st0 = m.gic.its(0).stats();
    const counts = countEvents('gicv3_its_*,vgic_its_*', () => {
      m.its.createDevice(2, 4);
      assert.ok(m.its.mapc(0, 0));
      assert.ok(m.its.mapti(2, 1, VGIC_MIN_LPI + 1, 0));
      m.its.mapti(9, 1, VGIC_MIN_LPI + 2, 0); // unmapped device: E_ITS_MAPTI_UNMAPPED_DEVICE
      m.its.int(2, 7); // unmapped event: E_ITS_INT_UNMAPPED_INTERRUPT
      const doorbell = VIRT_GITS_BASE + 0x10040;
      m.gic.signalMsi({ doorbell, devid: 2, eventid: 1 }); // a miss, then cached
      m.gic.signalMsi({ doorbell, devid: 2, eventid: 1 });
      m.gic.signalMsi({ doorbell, devid: 2, eventid: 3 }); // blocked
      takeAll(m.cpus);
    });
    const st = m.gic.its(0).stats();
    const errs =
      Object.values(st.errors).reduce((a, b) => a + b, 0) -
      Object.values(st0.errors).reduce((a, b) => a + b, 0);
    assert.equal(counts.get('gicv3_its_process_command'), st.commands - st0.commands);
    assert.equal(counts.get('gicv3_its_cmd_mapd'), 1);
    assert.equal(counts.get('gicv3_its_cmd_mapti'), 2);
    assert.equal(counts.get('vgic_its_cmd_error'), errs);
    assert.equal(errs, 2);
    assert.equal(counts.get('vgic_its_cache_miss'), st.cacheMisses - st0.cacheMisses);
    assert.equal(
      counts.get('gicv3_its_translation_fail'),
      st.msiBlocked + st.msiBusy - st0.msiBlocked - st0.msiBusy,
    );
  });

  test('patterns: globs, exclusions, errors; a throwing listener is dropped and the GIC goes on', () => {
    const sub = traceSubscribe('gicv3_icc_*,-gicv3_icc_*_write', () => {});
    assert.ok(sub.events.includes('gicv3_icc_iar1_read'));
    assert.ok(!sub.events.includes('gicv3_icc_pmr_write'));
    sub.unsubscribe();
    assert.throws(() => traceSubscribe('nosuch_*', () => {}), VgicError);
    assert.throws(() => traceSubscribe('gicv3_*', 'x' as never), VgicError);
    const { gic, guests } = machine(1);
    guests[0].enableIrq(40);
    const boom = traceSubscribe('vgic_update_irq_pending', () => {
      throw new Error('listener bug');
    });
    assert.equal(gic.irqLine(40, true), true);
    assert.equal((boom.error as Error).message, 'listener bug');
    assert.equal(tracing.on, 0);
    assert.equal(guests[0].ack(), 40);
  });
});

describe('vgic-state dump', () => {
  test('the JSON round-trips: a fresh GIC programmed from it through the userspace API dumps the same', () => {
    const { gic, guests } = machine(2, 4);
    const g = guests[0];
    for (const [i, prio, edge, route] of [
      [40, 0x80, true, 1],
      [41, 0x40, false, 0],
      [70, 0x10, true, 1],
    ] as const) {
      g.setPriority(i, prio);
      g.setEdge(i, edge);
      g.routeSpi(i, route);
      g.enableIrq(i);
    }
    gic.irqLine(41, true);
    gic.irqLine(40, true);
    assert.equal(g.ack(), 41); // 41 active on vCPU 0
    gic.vcpu(1).writeSysreg(ICC_PMR_EL1, 0x60); // 40 (0x80) stays pending on vCPU 1
    gic.vcpu(1).writeSysreg(ICC_BPR1_EL1, 4);
    gic.vcpu(0).exit();
    gic.vcpu(1).exit();
    const dump = JSON.parse(JSON.stringify(gic.dumpState()));
    assert.deepEqual(dump, gic.dumpState());

    // Program a fresh GIC from the JSON alone.
    const copy = Vgic.create({ vcpus: dump.nVcpus, spis: dump.nSpis, lrs: dump.nLrs, time: 'virtual' });
    const ctlr =
      GICD_CTLR_ARE |
      (dump.distributor.enableGrp1 ? GICD_CTLR_ENABLE_GRP1 : 0) |
      (dump.distributor.enableGrp0 ? 1 : 0);
    copy.writeDistReg(GICD_CTLR, ctlr);
    for (const q of dump.irqs) {
      if (q.type !== 'SPI') continue;
      const word = 4 * Math.floor(q.intid / 32);
      const bitv = 1 << (q.intid % 32);
      const or = (off: number, on: boolean) => {
        if (on) copy.writeDistReg(off + word, (Number(copy.readDistReg(off + word)) | bitv) >>> 0);
      };
      or(GICD_IGROUPR, q.group === 1);
      const pw = GICD_IPRIORITYR + (q.intid & ~3);
      const sh = 8 * (q.intid & 3);
      copy.writeDistReg(pw, ((Number(copy.readDistReg(pw)) & ~(0xff << sh)) | (q.priority << sh)) >>> 0);
      const cw = GICD_ICFGR + 4 * Math.floor(q.intid / 16);
      if (q.config === 'edge')
        copy.writeDistReg(cw, (Number(copy.readDistReg(cw)) | (2 << (2 * (q.intid % 16)))) >>> 0);
      copy.writeDistReg(GICD_IROUTER + 8 * q.intid, dump.vcpus[q.target].affinity, 8);
      if (q.lineLevel) copy.irqLine(q.intid, true);
      if (q.pendingLatch) or(GICD_ISPENDR, true);
      or(GICD_ISACTIVER, q.active);
      or(GICD_ISENABLER, q.enabled);
    }
    for (const v of dump.vcpus) {
      copy.writeCpuSysreg(v.index, ICC_PMR_EL1, v.pmr);
      copy.writeCpuSysreg(v.index, ICC_BPR1_EL1, v.bpr1);
      copy.writeCpuSysreg(v.index, ICC_IGRPEN1_EL1, v.igrpen1 ? 1 : 0);
    }
    const again = copy.dumpState();
    const spis = (d: typeof dump) =>
      d.irqs
        .filter((q: { type: string }) => q.type === 'SPI')
        .map((q: { apList: number; lr: unknown }) => ({ ...q, apList: 0, lr: null }));
    assert.deepEqual(spis(again), spis(dump));
    assert.deepEqual(again.distributor, dump.distributor);
    for (const k of ['pmr', 'bpr1', 'igrpen1'] as const)
      assert.deepEqual(
        again.vcpus.map((v) => v[k]),
        dump.vcpus.map((v) => v[k]),
      );
    assert.equal(dump.irqs.find((q) => q.intid === 41)?.active, true);
    assert.equal(dump.irqs.find((q) => q.intid === 40)?.pendingLatch, true);
  });

  test('shows ap_lists and LRs while in the guest, ITS devices, ITTs, collections and cache; text as KVM lays it out', () => {
    const m = lpiMachine({ vcpus: 2 });
    const itt = m.its.createDevice(3, 4);
    m.its.mapc(5, 1);
    m.its.mapti(3, 2, VGIC_MIN_LPI + 20, 5);
    m.gic.signalMsi({ doorbell: VIRT_GITS_BASE + 0x10040, devid: 3, eventid: 2 });
    m.cpus[1].step(); // enters: the LPI goes into an LR
    const d = m.gic.dumpState();
    assert.deepEqual(d.vcpus[1].apList, [VGIC_MIN_LPI + 20]);
    assert.equal(d.vcpus[1].lrs[0].vintid, VGIC_MIN_LPI + 20);
    assert.equal(d.vcpus[1].lrs[0].state, 'pending');
    const lpi = d.irqs.find((q) => q.intid === VGIC_MIN_LPI + 20);
    assert.deepEqual(lpi?.lr, { vcpu: 1, n: 0, state: 'pending' });
    assert.deepEqual(d.its[0].collections, [{ icid: 5, vcpu: 1 }]);
    assert.deepEqual(d.its[0].devices, [
      { devid: 3, itt, eventBits: 4, events: [{ eventid: 2, intid: VGIC_MIN_LPI + 20, icid: 5 }] },
    ]);
    assert.deepEqual(d.its[0].cache.entries, [{ devid: 3, eventid: 2, intid: VGIC_MIN_LPI + 20 }]);
    const text = m.gic.dumpStateText();
    assert.match(text, /^Distributor\n===========\nvgic_model:\tGICv3/);
    assert.match(text, /LR0: vINTID 8212 pending G1 PRI 0xa0/);
    assert.match(text, /device 3: ITT 0x[0-9a-f]+ 4 EventID bits\n {2}event 2 -> LPI 8212 ICID 5/);
    assert.match(text, /VCPU TYPE {5}ID TARGET HWID P L A E H C G PRI/);
    // Bounded: no devices listed, the rest counted.
    assert.equal(m.gic.dumpState({ maxDevices: 0 }).its[0].devicesOmitted, 1);
  });

  test('qtest: dump and explain', () => {
    const q = new QtestSession(Vgic.create({ vcpus: 1 }));
    const text = q.execute('dump');
    assert.match(text, /^# Distributor\n/);
    assert.match(text, /\nOK$/);
    const json = q.execute('dump json');
    assert.equal(JSON.parse(json.slice(3)).model, 'GICv3');
    assert.equal(q.execute('explain 40'), 'OK blocked SPI 40 is disabled (GICD_ISENABLER bit clear)');
    assert.equal(q.execute('online 0'), 'OK 1');
    assert.equal(q.execute('online 0 0'), 'OK 0');
    assert.match(q.execute('online 0 2'), /^ERR LEVEL must be 0 or 1/);
    assert.match(q.execute('explain 3'), /^ERR .*needs the vCPU/);
    assert.match(q.execute('explain 5000'), /^ERR INTID 5000 is not implemented/);
  });
});

describe('explain', () => {
  const reason = (gic: Vgic, intid: number, vcpu?: number) => gic.explain(intid, vcpu).reason;

  test('each masking condition, in the order the GIC applies them', () => {
    const { gic, guests } = machine(2, 4);
    const [g0, g1] = guests;
    g0.setPriority(40, 0x80);
    assert.match(reason(gic, 40), /is disabled \(GICD_ISENABLER/);
    g0.enableIrq(40);
    assert.match(reason(gic, 40), /not pending: its level line is low/);
    gic.irqLine(40, true);
    gic.writeDistReg(GICD_CTLR, GICD_CTLR_ARE);
    assert.match(reason(gic, 40), /Group 1, and GICD_CTLR.EnableGrp1 is 0/);
    gic.writeDistReg(GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    assert.match(reason(gic, 40, 1), /targets vCPU 0, not vCPU 1/);
    gic.vcpu(0).writeSysreg(ICC_IGRPEN1_EL1, 0);
    assert.match(reason(gic, 40), /Group 1 is disabled at vCPU 0's CPU interface/);
    gic.vcpu(0).writeSysreg(ICC_IGRPEN1_EL1, 1);
    gic.vcpu(0).writeSysreg(ICC_PMR_EL1, 0x80);
    assert.match(
      reason(gic, 40),
      /masked by vCPU 0's priority mask: priority 0x80 is not higher than ICC_PMR_EL1 0x80/,
    );
    gic.vcpu(0).writeSysreg(ICC_PMR_EL1, 0xf0);
    const e = gic.explain(40);
    assert.equal(e.signalled, true);
    assert.match(e.reason, /signalled to vCPU 0 as vIRQ/);
    // A higher-priority interrupt goes first; once acknowledged, its running priority blocks 40.
    g0.setPriority(41, 0x40);
    g0.enableIrq(41);
    gic.irqLine(41, true);
    assert.match(reason(gic, 40), /INTID 41 pending at priority 0x40, which is signalled first/);
    assert.equal(g0.ack(), 41);
    assert.match(reason(gic, 41), /is active, not pending/);
    assert.match(reason(gic, 40), /does not preempt vCPU 0's running priority 0x40/);
    gic.irqLine(41, false);
    g0.eoi(41);
    assert.equal(g0.ack(), 40);
    assert.match(reason(gic, 40), /is active, not pending/);
    g0.eoi(40);
    void g1;
  });

  test('target offline: after the routing check, before the CPU interface; for SPIs, SGIs and LPIs', () => {
    const { gic, guests } = machine(2, 4);
    const [g0] = guests;
    g0.setPriority(40, 0x80);
    g0.enableIrq(40);
    gic.irqLine(40, true);
    assert.match(reason(gic, 40), /SPI 40 is (signalled to|queued on) vCPU 0/);
    gic.vcpu(0).setOnline(false);
    assert.equal(gic.vcpu(0).online, false);
    assert.match(
      reason(gic, 40),
      /^target vCPU 0 is offline \(powered off: PSCI CPU_OFF, or VCpu\.setOnline\(false\)\): SPI 40 stays pending/,
    );
    // Before it: routing (asked about vCPU 1, the SPI targets 0) and the distributor's group enable.
    assert.match(reason(gic, 40, 1), /targets vCPU 0, not vCPU 1/);
    gic.writeDistReg(GICD_CTLR, GICD_CTLR_ARE);
    assert.match(reason(gic, 40), /GICD_CTLR.EnableGrp1 is 0/);
    gic.writeDistReg(GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    // After it: the CPU interface's group enable and priority mask are not the first reason.
    gic.vcpu(0).writeSysreg(ICC_IGRPEN1_EL1, 0);
    assert.match(reason(gic, 40), /^target vCPU 0 is offline/);
    gic.vcpu(0).writeSysreg(ICC_IGRPEN1_EL1, 1);
    // Routed to an online vCPU: it moves to that vCPU's ap_list at vCPU 0's next exit (migration).
    gic.writeDistReg(GICD_IROUTER + 8 * 40, 1);
    assert.match(reason(gic, 40), /SPI 40 is not yet on vCPU 1's ap_list \(queued at its next entry\)/);
    // An SGI to the offline vCPU; the state shows it; powered on again, it is signalled.
    guests[1].sendSgi(3, [0]);
    assert.match(reason(gic, 3, 0), /^target vCPU 0 is offline/);
    assert.deepEqual(
      gic.dumpState().vcpus.map((v) => v.online),
      [false, true],
    );
    assert.match(gic.dumpStateText(), /OFFLINE {2}exits/);
    gic.vcpu(0).setOnline(true);
    gic.irqLine(40, false);
    gic.vcpu(0).exit();
    assert.match(reason(gic, 3, 0), /SGI 3 is (signalled|queued)/);
    assert.throws(() => gic.vcpu(0).setOnline(1 as unknown as boolean), /setOnline takes a boolean, got 1/);
  });

  test('routed to no vCPU, and pending while active', () => {
    const { gic, guests } = machine(2, 4);
    const g0 = guests[0];
    g0.setPriority(40, 0x80);
    g0.enableIrq(40);
    gic.irqLine(40, true);
    gic.writeDistReg(GICD_IROUTER + 8 * 40, 0x05);
    assert.match(reason(gic, 40), /routed to no vCPU/);
    gic.writeDistReg(GICD_IROUTER + 8 * 40, 0);
    gic.vcpu(0).step();
    assert.equal(g0.ack(), 40);
    // A level interrupt whose line stays high while the guest handles it: pending and active
    // once the LR is folded back (the vCPU exits).
    gic.vcpu(0).exit();
    assert.match(reason(gic, 40), /is pending and active: it cannot be signalled again/);
    g0.eoi(40);
  });

  test('an LPI whose target vCPU is offline', () => {
    const m = lpiMachine({ vcpus: 2 });
    const lpi = VGIC_MIN_LPI + 5;
    m.its.createDevice(1, 4);
    m.its.mapc(0, 1);
    m.its.mapti(1, 0, lpi, 0);
    m.cpus[1].setOnline(false);
    m.gic.signalMsi({ doorbell: VIRT_GITS_BASE + 0x10040, devid: 1, eventid: 0 });
    assert.match(reason(m.gic, lpi), /^target vCPU 1 is offline/);
  });

  test('interrupts left outside full list registers, and a queued one', () => {
    const { gic, guests } = machine(1, 1);
    const g = guests[0];
    for (const [i, p] of [
      [40, 0x40],
      [41, 0x80],
    ] as const) {
      g.setPriority(i, p);
      g.enableIrq(i);
    }
    gic.irqLine(40, true);
    gic.irqLine(41, true);
    assert.match(reason(gic, 41), /INTID 40 pending at priority 0x40, which is signalled first/);
    gic.vcpu(0).step();
    assert.equal(g.ack(), 40); // 40 active in the one LR, 41 outside it
    assert.match(reason(gic, 41), /does not preempt/);
  });

  test('LPIs: not mapped, disabled in the property table, LPIs disabled at the redistributor', () => {
    const m = lpiMachine({ vcpus: 2 });
    const lpi = VGIC_MIN_LPI + 9;
    assert.match(reason(m.gic, lpi), /LPI 8201 is not mapped by any ITS/);
    m.its.createDevice(1, 4);
    m.its.mapc(0, 1);
    m.lpi.setConfig(lpi, 0xa0, false);
    m.its.mapti(1, 0, lpi, 0);
    m.gic.signalMsi({ doorbell: VIRT_GITS_BASE + 0x10040, devid: 1, eventid: 0 });
    assert.match(reason(m.gic, lpi), /disabled in the LPI configuration table/);
    m.lpi.setConfig(lpi, 0xa0, true);
    m.its.inv(1, 0);
    assert.match(
      reason(m.gic, lpi),
      /queued on vCPU 1's ap_list: it reaches a list register when the vCPU next enters/,
    );
    m.cpus[1].step();
    assert.match(m.gic.explain(lpi).reason, /signalled to vCPU 1/);
    m.lpi.disable(m.guests[1].rd);
    assert.match(reason(m.gic, lpi), /vCPU 1's redistributor has LPIs disabled/);
  });

  test('host misuse throws VgicError saying what is allowed', () => {
    const gic = Vgic.create({ vcpus: 1 });
    assert.throws(() => gic.explain(40, 3), VgicError);
    assert.throws(() => gic.explain(-1), VgicError);
    assert.throws(() => gic.explain(1.5), VgicError);
    assert.throws(() => gic.explain(9000), /not implemented: SGIs\/PPIs 0..31, SPIs 32..255/);
  });
});

describe('the inspector server and the command options', () => {
  test('serves the page, the state, explain, and an event stream of metrics and trace lines', async () => {
    const { gic, guests } = machine(2);
    guests[0].enableIrq(40);
    const ins = await startInspector(gic, { port: 0, periodMs: 50 });
    try {
      const get = async (path: string) => {
        const r = await fetch(`${ins.url}${path.replace(/^\//, '')}`);
        return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
      };
      const page = await get('/');
      assert.equal(page.status, 200);
      assert.match(page.type, /text\/html/);
      assert.doesNotMatch(page.body, /<script[^>]+src=|<link[^>]+stylesheet/, 'no external asset');
      assert.ok(page.body.length > 40_000, 'the bundle and uPlot are inline');
      assert.equal(JSON.parse((await get('/state.json')).body).nVcpus, 2);
      assert.match((await get('/state.txt')).body, /^Distributor\n/);
      assert.deepEqual(JSON.parse((await get('/explain?intid=40')).body), {
        signalled: false,
        reason: 'SPI 40 is not pending: its level line is low',
      });
      assert.equal((await get('/explain?intid=3')).status, 400);
      const many = JSON.parse((await get('/explain-many?q=40:,3:0,3:,99999:')).body);
      assert.equal(many.length, 4);
      assert.match(many[0].reason, /SPI 40/);
      assert.match(many[1].reason, /SGI 3/);
      assert.match(many[2].error, /needs the vCPU/);
      assert.match(many[3].error, /not implemented/);
      assert.equal((await get('/events?trace=nosuch')).status, 400);
      assert.equal((await get('/nothing')).status, 404);
      // The stream: hello, then metrics; trace lines for what the subscription enables.
      const ac = new AbortController();
      const r = await fetch(`${ins.url}events?trace=gicv3_icc_iar1_read`, { signal: ac.signal });
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const until = async (re: RegExp) => {
        while (!re.test(text)) text += new TextDecoder().decode((await reader.read()).value);
      };
      await until(/event: hello/);
      gic.irqLine(40, true);
      assert.equal(guests[0].ack(), 40);
      await until(/event: trace\ndata: .*gicv3_icc_iar1_read GICv3 ICC_IAR1 read cpu 0x0 value 0x28/);
      await until(/event: metrics\ndata: \{"t":\d+,"ackRate":\[[\d.]+,0\]/);
      ac.abort();
    } finally {
      await ins.close();
    }
    assert.equal(tracing.on, 0, 'closing the inspector ends its subscriptions');
  });

  test('vgic qtest --trace: the protocol on stdout, QEMU-style trace lines on stderr', () => {
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [cli, 'qtest', '--trace', 'gicv3_dist_set_irq,vgic_update_irq_pending'],
      {
        input: 'irq_line 40 1\nexplain 40\nquit\n',
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'OK\nOK blocked SPI 40 is disabled (GICD_ISENABLER bit clear)\nOK\n');
    assert.equal(
      r.stderr,
      'gicv3_dist_set_irq GICv3 distributor interrupt 40 level changed to 1\nvgic_update_irq_pending VCPU: 0, IRQ 40, level: 1\n',
    );
  });

  test('--trace and --inspect on run and linux: checked when parsed', () => {
    const a = parseRunArgs(['x.elf', '--trace', 'gicv3_icc_*', '--inspect', '0']);
    assert.equal(a.trace, 'gicv3_icc_*');
    assert.equal(a.inspect, 0);
    assert.throws(
      () => parseRunArgs(['x.elf', '--trace', 'nosuch']),
      /--trace: trace pattern 'nosuch' matches no event/,
    );
    assert.throws(() => parseRunArgs(['x.elf', '--inspect', '70000']), /--inspect takes a TCP port/);
    assert.equal(parseLinuxArgs(['--inspect', '8080']).inspect, 8080);
    assert.throws(() => parseLinuxArgs(['--trace', '-']), /matches no event/);
  });
});
