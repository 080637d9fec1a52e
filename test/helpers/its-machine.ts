/**
 * The machine the ITS tests share: kvm-unit-tests' its_enable_defaults on in-process vCPUs — GIC
 * defaults on every CPU, LPI tables (14 INTID bits, LPI_PROP_DEFAULT), EnableLPIs everywhere, ITS 0
 * initialised and enabled, no mapping yet — and a drain that acknowledges whatever is pending.
 */

import {
  GicV3Guest,
  GuestAllocator,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ItsGuest,
  type ItsGuestOptions,
  LpiTables,
  type VCpu,
  Vgic,
  type VgicV3Options,
} from '../../src/index.ts';

export const SPURIOUS = 1023;

export interface LpiMachineOptions {
  readonly vcpus?: number;
  readonly its?: number;
  readonly ramBase?: number;
  readonly ramSize?: number;
  readonly lpiIdBits?: number;
  readonly itsCacheSize?: number;
  readonly translationCache?: VgicV3Options['translationCache'];
  /** Base of the redistributors, when they do not sit at QEMU's 0x080A0000. */
  readonly redistBase?: number;
  /** false: an unshared state (one thread; plain loads and stores). */
  readonly shared?: boolean;
  readonly init?: ItsGuestOptions;
  /** GICv4.1 direct injection (its V-commands and VLPI_base registers). */
  readonly direct?: boolean;
}

export interface LpiMachine {
  readonly gic: Vgic;
  readonly opts: VgicV3Options;
  readonly cpus: VCpu[];
  readonly guests: GicV3Guest[];
  readonly alloc: GuestAllocator;
  readonly lpi: LpiTables;
  readonly its: ItsGuest;
  readonly ramBase: number;
}

export function lpiMachine(o: LpiMachineOptions = {}): LpiMachine {
  const ramBase = o.ramBase ?? 0x40000000;
  const ramSize = o.ramSize ?? 64 << 20;
  const opts: VgicV3Options = {
    vcpus: o.vcpus ?? 4,
    its: o.its ?? 1,
    ram: { base: ramBase, size: ramSize },
    time: 'virtual',
    ...(o.lpiIdBits !== undefined ? { lpiIdBits: o.lpiIdBits } : {}),
    ...(o.shared !== undefined ? { shared: o.shared } : {}),
    ...(o.itsCacheSize !== undefined ? { itsCacheSize: o.itsCacheSize } : {}),
    ...(o.translationCache !== undefined ? { translationCache: o.translationCache } : {}),
    ...(o.direct ? { directInjection: 'gicv4.1' as const } : {}),
  };
  const gic = Vgic.create(opts);
  const cpus = Array.from({ length: gic.nVcpus }, (_, i) => gic.vcpu(i));
  const guests = cpus.map((c) => new GicV3Guest(c, undefined, o.redistBase));
  guests[0].enableDistributor();
  for (const g of guests) g.enableCpu();
  const alloc = new GuestAllocator(ramBase, ramSize);
  const lpi = new LpiTables(cpus[0], alloc, cpus.length, 14);
  lpi.fillConfig();
  guests.forEach((g, i) => {
    lpi.program(g.rd, i);
    lpi.enable(g.rd);
  });
  const its = new ItsGuest(cpus[0], alloc);
  its.init(o.init);
  its.enable();
  return { gic, opts, cpus, guests, alloc, lpi, its, ramBase };
}

/**
 * Acknowledges whatever is pending on any vCPU: "v:intid" (comma-separated), or ''. Every vCPU
 * first passes an instruction boundary, so one that was kicked exits and re-enters before acking.
 */
export function takeAll(cpus: readonly VCpu[]): string {
  const got: string[] = [];
  for (let pass = 0; pass < 3; pass++) {
    for (const cpu of cpus) cpu.step();
    let any = false;
    for (const cpu of cpus) {
      const intid = cpu.readSysreg(ICC_IAR1_EL1);
      if (intid === SPURIOUS) continue;
      cpu.writeSysreg(ICC_EOIR1_EL1, intid);
      got.push(`${cpu.index}:${intid}`);
      any = true;
    }
    if (!any) break;
  }
  return got.join(',');
}
