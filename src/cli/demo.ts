/**
 * `vgic demo`: a 4-vCPU GICv3 that in-process guests program like a small OS would. They send SGIs
 * (target list, broadcast, self), the host drives a PPI and edge SPIs, one vCPU sleeps in WFI on its
 * virtual timer; then every vCPU unmasks IRQs and its handler acknowledges what arrives. The demo
 * prints, per vCPU, what was acknowledged, in what order, at what priority.
 *
 * Who may call: the CLI. Runs on virtual time, so the output is the same on every machine.
 */

import { PPI_VTIMER } from '../arch/intid.ts';
import {
  CNTV_CTL_EL0,
  CNTV_CTL_ENABLE,
  CNTV_CTL_IMASK,
  CNTV_CVAL_EL0,
  CNTVCT_EL0,
  ICC_RPR_EL1,
} from '../arch/sysreg.ts';
import { Vgic } from '../device/vgic.ts';
import { GicV3Guest } from '../guest/gic-v3.ts';

export interface DemoAck {
  readonly intid: number;
  readonly kind: 'SGI' | 'PPI' | 'SPI';
  /** The running priority just after the acknowledge: the interrupt's group priority. */
  readonly priority: number;
}

export interface DemoResult {
  readonly vcpus: number;
  readonly acks: DemoAck[][];
  readonly stats: ReturnType<Vgic['stats']>;
}

const kindOf = (intid: number): DemoAck['kind'] => (intid < 16 ? 'SGI' : intid < 32 ? 'PPI' : 'SPI');

/** The device PPI the host drives on vCPU 2, and the first of the demo's SPIs. */
const DEMO_PPI = 20;
const FIRST_SPI = 40;
const NR_SPIS = 8;

export function runDemo(nVcpus = 4): DemoResult {
  const gic = Vgic.create({ vcpus: nVcpus, time: 'virtual' });
  const guests = Array.from({ length: nVcpus }, (_, i) => new GicV3Guest(gic.vcpu(i)));
  const acks: DemoAck[][] = guests.map(() => []);

  // Boot: vCPU 0 brings up the distributor, every vCPU its redistributor and CPU interface.
  guests[0].enableDistributor();
  for (const g of guests) {
    g.enableCpu();
    const cpu = g.cpu;
    // SGI n gets priority 0x70 + 0x10·n, so they arrive by number.
    for (let sgi = 1; sgi <= 3; sgi++) g.setPriority(sgi, 0x70 + 0x10 * sgi);
    cpu.onIrq(() => {
      const intid = g.ack();
      if (intid === 1023) return;
      acks[cpu.index].push({ intid, kind: kindOf(intid), priority: cpu.readSysreg(ICC_RPR_EL1) });
      // A driver quiets its device before EOI: the timer is masked, the PPI's device lowers its line.
      if (intid === PPI_VTIMER) cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
      if (intid === DEMO_PPI) gic.ppiLine(cpu.index, DEMO_PPI, false);
      g.eoi(intid);
    });
  }

  // Work arrives while every vCPU has IRQs masked.
  const aff = (i: number) => guests[i % nVcpus].affinity;
  guests[1 % nVcpus].sendSgi(1, [aff(0), aff(2)]); // target list
  guests[2 % nVcpus].broadcastSgi(2); // everyone but the sender
  for (const g of guests) g.sendSgiSelf(3);

  const g2 = guests[2 % nVcpus];
  g2.setPriority(DEMO_PPI, 0x40);
  g2.enableIrq(DEMO_PPI);
  gic.ppiLine(2 % nVcpus, DEMO_PPI, true);

  for (let i = 0; i < NR_SPIS; i++) {
    const intid = FIRST_SPI + i;
    const g = guests[0];
    g.setPriority(intid, 0x58 - 8 * i); // later SPIs are more urgent
    g.setEdge(intid, true);
    g.routeSpi(intid, aff(i));
    g.enableIrq(intid);
    gic.irqLine(intid, true);
    gic.irqLine(intid, false);
  }

  // vCPU 3 arms its virtual timer 1 ms ahead and sleeps.
  const sleeper = guests[3 % nVcpus];
  sleeper.enableIrq(PPI_VTIMER);
  sleeper.setPriority(PPI_VTIMER, 0x20);

  for (const g of guests) g.cpu.unmaskIrqs();
  const now = Number(sleeper.cpu.readSysreg64(CNTVCT_EL0));
  sleeper.cpu.writeSysreg(CNTV_CVAL_EL0, now + 62_500);
  sleeper.cpu.writeSysreg(CNTV_CTL_EL0, CNTV_CTL_ENABLE);
  sleeper.cpu.wfi(1000);

  return { vcpus: nVcpus, acks, stats: gic.stats() };
}

export function formatDemo(r: DemoResult): string {
  const lines = [
    `vgic demo: GICv3 with ${r.vcpus} vCPUs, 224 SPIs, 4 list registers, virtual time`,
    'SGI 1 from vCPU 1 to vCPUs 0 and 2; SGI 2 broadcast by vCPU 2; SGI 3 sent by each vCPU to itself;',
    `PPI ${DEMO_PPI} raised on vCPU 2; edge SPIs ${FIRST_SPI}-${FIRST_SPI + NR_SPIS - 1} routed round-robin;`,
    'vCPU 3 waits in WFI for its virtual timer (PPI 27), 1 ms ahead.',
    '',
  ];
  r.acks.forEach((list, v) => {
    lines.push(`vCPU ${v} acknowledged ${list.length} interrupts:`);
    lines.push('   #  INTID  kind  priority');
    list.forEach((a, i) => {
      lines.push(
        `  ${String(i + 1).padStart(2)}  ${String(a.intid).padStart(5)}  ${a.kind}   0x${a.priority.toString(16).padStart(2, '0')}`,
      );
    });
  });
  const exits = r.stats.vcpus.map((c) => c.exits).join('/');
  const maint = r.stats.vcpus.map((c) => c.maintenance).join('/');
  lines.push('', `exits per vCPU: ${exits}; maintenance exits: ${maint}`);
  return lines.join('\n');
}
