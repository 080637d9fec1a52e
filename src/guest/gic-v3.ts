/**
 * A guest-side GICv3 library for in-process TypeScript guests, in the spirit of kvm-unit-tests'
 * lib/arm/gic-v3.c: enable defaults (with the RWP wait), find the redistributor by walking
 * GICR_TYPER, send SGIs, ack/EOI, per-IRQ configuration. It uses only architectural interfaces
 * (MMIO loads/stores and ICC_* system registers of its own vCPU), so it shows what a guest driver does.
 *
 * Who may call: the code running on `cpu` (one vCPU per GicV3Guest).
 */

import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_GRP1,
  GICD_CTLR_RWP,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GICD_TYPER,
  GICR_CTLR_RWP,
  GICR_ICENABLER0,
  GICR_ICPENDR0,
  GICR_IGROUPR0,
  GICR_IPRIORITYR0,
  GICR_ISENABLER0,
  GICR_ISPENDR0,
  GICR_STRIDE_V3,
  GICR_TYPER,
  GICR_TYPER_LAST,
  VIRT_GICD_BASE,
  VIRT_GICR_BASE,
} from '../arch/gicv3.ts';
import {
  ICC_CTLR_EL1,
  ICC_CTLR_EOIMODE,
  ICC_DIR_EL1,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ICC_SGI1R_EL1,
  SGIR_HI_IRM,
} from '../arch/sysreg.ts';
import type { VCpu } from '../device/vcpu.ts';

/** kvm-unit-tests' default priority for SGIs and SPIs, and the PMR it programs. */
export const GIC_DEFAULT_PRIORITY = 0xa0;
export const GIC_DEFAULT_PMR = 0xf0;
const RWP_SPIN_LIMIT = 1_000_000;

export class GicV3Guest {
  readonly cpu: VCpu;
  readonly distBase: number;
  readonly redistBase: number;
  /** This CPU's redistributor (RD_base), found by walking GICR_TYPER. */
  readonly rd: number;
  /** SGI_base of this CPU's redistributor. */
  readonly sgiBase: number;

  constructor(cpu: VCpu, distBase = VIRT_GICD_BASE, redistBase = VIRT_GICR_BASE) {
    this.cpu = cpu;
    this.distBase = distBase;
    this.redistBase = redistBase;
    this.rd = this.findRedist();
    this.sgiBase = this.rd + 0x10000;
  }

  /** MPIDR of this CPU as the GIC sees it (Aff2.Aff1.Aff0), read from its own GICR_TYPER. */
  get affinity(): number {
    return Number(this.cpu.readq(this.rd + GICR_TYPER) >> 32n) & 0xffffff;
  }

  /** Walks the redistributors until one whose GICR_TYPER.Processor_Number is ours or Last is set. */
  private findRedist(): number {
    for (let rd = this.redistBase; ; ) {
      const typer = this.cpu.readq(rd + GICR_TYPER);
      // GICR_TYPER.VLPIS: a GICv4 redistributor has two more 64K frames (VLPI_base, reserved).
      const stride = typer & 2n ? 2 * GICR_STRIDE_V3 : GICR_STRIDE_V3;
      if (Number((typer >> 8n) & 0xffffn) === this.cpu.index) return rd;
      if ((typer & BigInt(GICR_TYPER_LAST)) !== 0n) {
        throw new Error(
          `no redistributor for CPU ${this.cpu.index} (walked to the Last one at 0x${rd.toString(16)})`,
        );
      }
      rd += stride;
    }
  }

  /** Polls GICD_CTLR.RWP (or GICR_CTLR.RWP) until clear; returns the number of polls. */
  waitForRwp(redist = false): number {
    const addr = redist ? this.rd : this.distBase + GICD_CTLR;
    const bit = redist ? GICR_CTLR_RWP : GICD_CTLR_RWP;
    for (let i = 1; i <= RWP_SPIN_LIMIT; i++) if ((this.cpu.readl(addr) & bit) === 0) return i;
    throw new Error('RWP never cleared');
  }

  /** Number of INTIDs the distributor implements below 1020, from GICD_TYPER.ITLinesNumber. */
  get nrIrqs(): number {
    const lines = (this.cpu.readl(this.distBase + GICD_TYPER) & 0x1f) + 1;
    return Math.min(lines * 32, 1020);
  }

  /** gicv3_enable_defaults: the distributor (once, from one CPU), then this CPU's redistributor and CPU interface. */
  enableDistributor(): void {
    const d = this.distBase;
    this.cpu.writel(d + GICD_CTLR, 0);
    this.waitForRwp();
    const n = this.nrIrqs;
    for (let i = 32; i < n; i += 32) this.cpu.writel(d + GICD_IGROUPR + i / 8, 0xffffffff);
    this.cpu.writel(d + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    this.waitForRwp();
  }

  enableCpu(): void {
    this.cpu.writel(this.sgiBase + (GICR_IGROUPR0 - 0x10000), 0xffffffff);
    for (let i = 0; i < 16; i += 4) {
      this.cpu.writel(this.sgiBase + (GICR_IPRIORITYR0 - 0x10000) + i, GIC_DEFAULT_PRIORITY * 0x01010101);
    }
    this.cpu.writel(this.sgiBase + (GICR_ISENABLER0 - 0x10000), 0xffff);
    this.cpu.writeSysreg(ICC_PMR_EL1, GIC_DEFAULT_PMR);
    this.cpu.writeSysreg(ICC_IGRPEN1_EL1, 1);
  }

  /** ICC_CTLR_EL1.EOImode: true splits priority drop (EOIR) from deactivation (DIR). */
  setEoiMode(split: boolean): void {
    const ctlr = this.cpu.readSysreg(ICC_CTLR_EL1);
    this.cpu.writeSysreg(ICC_CTLR_EL1, split ? ctlr | ICC_CTLR_EOIMODE : ctlr & ~ICC_CTLR_EOIMODE);
  }

  // ---- per-IRQ configuration: the redistributor for SGIs/PPIs, the distributor for SPIs ----

  private bitReg(intid: number, gicd: number, gicr: number): number {
    return intid < 32 ? this.sgiBase + (gicr - 0x10000) : this.distBase + gicd + 4 * Math.floor(intid / 32);
  }

  enableIrq(intid: number): void {
    this.cpu.writel(this.bitReg(intid, GICD_ISENABLER, GICR_ISENABLER0), 1 << (intid % 32));
  }

  disableIrq(intid: number): void {
    this.cpu.writel(this.bitReg(intid, GICD_ICENABLER, GICR_ICENABLER0), 1 << (intid % 32));
  }

  setPending(intid: number): void {
    this.cpu.writel(this.bitReg(intid, GICD_ISPENDR, GICR_ISPENDR0), 1 << (intid % 32));
  }

  clearPending(intid: number): void {
    this.cpu.writel(this.bitReg(intid, GICD_ICPENDR, GICR_ICPENDR0), 1 << (intid % 32));
  }

  /** Byte write of IPRIORITYR. */
  setPriority(intid: number, prio: number): void {
    const base = intid < 32 ? this.sgiBase + (GICR_IPRIORITYR0 - 0x10000) : this.distBase + GICD_IPRIORITYR;
    this.cpu.writeb(base + intid, prio);
  }

  /** GICD_ICFGR: edge (true) or level for an SPI. */
  setEdge(intid: number, edge: boolean): void {
    const addr = this.distBase + GICD_ICFGR + 4 * Math.floor(intid / 16);
    const shift = 2 * (intid % 16) + 1;
    const cur = this.cpu.readl(addr);
    this.cpu.writel(addr, edge ? cur | (1 << shift) : cur & ~(1 << shift));
  }

  /** GICD_IROUTER: route an SPI to the CPU with this affinity (Aff2 << 16 | Aff1 << 8 | Aff0). */
  routeSpi(intid: number, affinity: number): void {
    this.cpu.writeq(this.distBase + GICD_IROUTER + 8 * intid, BigInt(affinity));
  }

  // ---- SGIs ----

  /**
   * Sends SGI `sgi` to the CPUs with these affinities: one ICC_SGI1R_EL1 write per Aff3.Aff2.Aff1
   * cluster, Aff0 in the target list (Aff0 < 16, as kvm-unit-tests requires).
   */
  sendSgi(sgi: number, targets: readonly number[]): void {
    const clusters = new Map<number, number>();
    for (const aff of targets) {
      const cluster = aff >>> 8;
      clusters.set(cluster, (clusters.get(cluster) ?? 0) | (1 << (aff & 0xf)));
    }
    for (const [cluster, list] of clusters) {
      const aff1 = cluster & 0xff;
      const aff2 = (cluster >>> 8) & 0xff;
      this.cpu.writeSysreg(ICC_SGI1R_EL1, ((sgi & 0xf) << 24) | (aff1 << 16) | list, aff2);
    }
  }

  sendSgiSelf(sgi: number): void {
    this.sendSgi(sgi, [this.affinity]);
  }

  /** ICC_SGI1R_EL1.IRM = 1: every CPU but this one. */
  broadcastSgi(sgi: number): void {
    this.cpu.writeSysreg(ICC_SGI1R_EL1, (sgi & 0xf) << 24, SGIR_HI_IRM);
  }

  // ---- acknowledge / end ----

  ack(): number {
    return this.cpu.readSysreg(ICC_IAR1_EL1) & 0xffffff;
  }

  eoi(intid: number): void {
    this.cpu.writeSysreg(ICC_EOIR1_EL1, intid);
  }

  dir(intid: number): void {
    this.cpu.writeSysreg(ICC_DIR_EL1, intid);
  }
}
