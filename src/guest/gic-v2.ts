/**
 * A guest-side GICv2 library for in-process TypeScript guests, in the spirit of kvm-unit-tests'
 * lib/arm/gic-v2.c: enable the distributor and this CPU's interface, per-IRQ configuration,
 * ITARGETSR routing, SGIs through GICD_SGIR, ack/EOI through GICC_IAR/EOIR (the SGI's source CPU
 * in IAR[12:10]). Only MMIO loads and stores of its own vCPU: what a GICv2 guest driver does.
 *
 * Who may call: the code running on `cpu` (one vCPU per GicV2Guest).
 */

import {
  GICC_CTLR,
  GICC_CTLR_ENABLE_GRP0,
  GICC_CTLR_ENABLE_GRP1,
  GICC_CTLR_EOIMODE,
  GICC_DIR,
  GICC_EOIR,
  GICC_IAR,
  GICC_PMR,
  GICD_V2_ENABLE,
  SGIR_FILTER_SHIFT,
  SGIR_TARGETLIST_SHIFT,
  VIRT_V2_GICC_BASE,
  VIRT_V2_GICD_BASE,
} from '../arch/gicv2.ts';
import {
  GICD_CTLR,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_IGROUPR,
  GICD_IPRIORITYR,
  GICD_ISENABLER,
  GICD_ITARGETSR,
  GICD_SGIR,
} from '../arch/gicv3.ts';
import type { VCpu } from '../device/vcpu.ts';

export class GicV2Guest {
  readonly cpu: VCpu;
  readonly distBase: number;
  readonly cpuBase: number;

  constructor(cpu: VCpu, distBase = VIRT_V2_GICD_BASE, cpuBase = VIRT_V2_GICC_BASE) {
    this.cpu = cpu;
    this.distBase = distBase;
    this.cpuBase = cpuBase;
  }

  /** This CPU's interface number: the bit ITARGETSR0 reads for it (read-only, banked; RAZ with one CPU). */
  get cpuId(): number {
    const t = this.cpu.readb(this.distBase + GICD_ITARGETSR);
    return t === 0 ? 0 : 31 - Math.clz32(t & -t);
  }

  enableDistributor(): void {
    this.cpu.writel(this.distBase + GICD_CTLR, GICD_V2_ENABLE);
  }

  /** GICC_CTLR: both groups (Group 0 signalled as IRQ: FIQEn clear), and the priority mask. */
  enableCpu(pmr = 0xf0): void {
    this.cpu.writel(this.cpuBase + GICC_PMR, pmr);
    const eoim = this.cpu.readl(this.cpuBase + GICC_CTLR) & GICC_CTLR_EOIMODE;
    this.cpu.writel(this.cpuBase + GICC_CTLR, GICC_CTLR_ENABLE_GRP0 | GICC_CTLR_ENABLE_GRP1 | eoim);
  }

  setEoiMode(split: boolean): void {
    const a = this.cpuBase + GICC_CTLR;
    const v = this.cpu.readl(a);
    this.cpu.writel(a, split ? v | GICC_CTLR_EOIMODE : v & ~GICC_CTLR_EOIMODE);
  }

  private bitReg(off: number, intid: number): [number, number] {
    return [this.distBase + off + 4 * Math.floor(intid / 32), 1 << (intid % 32)];
  }

  enableIrq(intid: number): void {
    const [a, bit] = this.bitReg(GICD_ISENABLER, intid);
    this.cpu.writel(a, bit);
  }

  disableIrq(intid: number): void {
    const [a, bit] = this.bitReg(GICD_ICENABLER, intid);
    this.cpu.writel(a, bit);
  }

  setGroup1(intid: number, grp1: boolean): void {
    const [a, bit] = this.bitReg(GICD_IGROUPR, intid);
    const v = this.cpu.readl(a);
    this.cpu.writel(a, grp1 ? v | bit : v & ~bit);
  }

  setPriority(intid: number, prio: number): void {
    this.cpu.writeb(this.distBase + GICD_IPRIORITYR + intid, prio);
  }

  /** ITARGETSR byte of an SPI: a mask of CPU interfaces. */
  setTargets(intid: number, mask: number): void {
    this.cpu.writeb(this.distBase + GICD_ITARGETSR + intid, mask);
  }

  setEdge(intid: number, edge: boolean): void {
    const a = this.distBase + GICD_ICFGR + 4 * Math.floor(intid / 16);
    const bit = 2 << (2 * (intid % 16));
    const v = this.cpu.readl(a);
    this.cpu.writel(a, edge ? v | bit : v & ~bit);
  }

  /** GICD_SGIR: filter 0 (the target list), 1 (all but self) or 2 (self). */
  sendSgi(sgi: number, targets: number, filter = 0): void {
    this.cpu.writel(
      this.distBase + GICD_SGIR,
      (filter << SGIR_FILTER_SHIFT) | ((targets & 0xff) << SGIR_TARGETLIST_SHIFT) | (sgi & 0xf),
    );
  }

  /** GICC_IAR: INTID in [9:0], an SGI's source CPU in [12:10]; 1023 when nothing is pending. */
  iar(): number {
    return this.cpu.readl(this.cpuBase + GICC_IAR);
  }

  /** GICC_EOIR with the IAR value (source CPU included). */
  eoi(iar: number): void {
    this.cpu.writel(this.cpuBase + GICC_EOIR, iar);
  }

  dir(iar: number): void {
    this.cpu.writel(this.cpuBase + GICC_DIR, iar);
  }
}
