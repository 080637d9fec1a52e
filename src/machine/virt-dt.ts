/**
 * The device tree QEMU 7.2's `virt` board writes (hw/arm/virt.c, `-M virt,gic-version=3 -cpu max`),
 * cut down to the devices vgic's machine has: RAM, CPUs with PSCI, the GICv3 with its ITS, one
 * PL011, the PL031 RTC (when given its base), an initrd in /chosen, and the generic timer. Node
 * order, property order and phandle numbering follow QEMU's dumped
 * DTB (`-M virt,dumpdtb=...`) so the two can be compared property by property. Bindings: Linux's
 * Documentation/devicetree/bindings (arm/cpus, arm/psci, interrupt-controller/arm,gic-v3,
 * serial/pl011, timer/arm,arch_timer, clock/fixed-clock).
 *
 * Left out on purpose: virtio-mmio, fw-cfg, PCIe, PL061 GPIO/gpio-keys, flash,
 * platform-bus and the PMU (the machine has none of them), and /chosen's rng-seed and kaslr-seed
 * (QEMU fills them with fresh random bytes each boot; leaving them out keeps the DTB reproducible).
 *
 * Who may call: the machine, once per boot. Bad options throw VgicError('INVALID_CONFIG').
 */

import { checkInt, VgicError } from '../arch/errors.ts';
import { Fdt } from './fdt.ts';

/** The virt board's GIC interrupt specifier (bindings arm,gic-v3): type, number, flags. */
export const GicIrqType = { SPI: 0, PPI: 1 } as const;
/** IRQ_TYPE_LEVEL_HIGH. QEMU adds no CPU mask to PPI flags with a GICv3 (a GICv2-only field). */
export const GIC_FDT_IRQ_FLAGS_LEVEL_HI = 4;

/** PPI numbers (INTID - 16) of the architected timers, as QEMU virt wires them. */
export interface TimerPpis {
  secPhys: number;
  phys: number;
  virt: number;
  hyp: number;
}
export const VIRT_TIMER_PPIS: Readonly<TimerPpis> = { secPhys: 13, phys: 14, virt: 11, hyp: 10 };

/** The GIC maintenance interrupt's PPI number (INTID 25). */
export const VIRT_GIC_MAINT_PPI = 9;
/** The PL011's SPI number (INTID 33). */
export const VIRT_UART_SPI = 1;
/** The PL031 RTC's SPI on QEMU virt (INTID 34). */
export const VIRT_RTC_SPI = 2;

/** PSCI 0.2 function IDs QEMU lists for the old "arm,psci" binding (SMC64 where there is one). */
export const PSCI_FN = {
  CPU_SUSPEND: 0xc4000001,
  CPU_OFF: 0x84000002,
  CPU_ON: 0xc4000003,
  MIGRATE: 0xc4000005,
} as const;

export interface VirtDtOptions {
  ramBase: number;
  ramSize: number;
  /** 1..8; cpu N has MPIDR Aff0 = N. */
  cpus: number;
  /** Kernel command line (/chosen/bootargs); QEMU writes it only when -append is given. */
  bootargs?: string;
  /** The PL031 RTC's base (QEMU: 0x09010000, SPI 2); omitted when not given. */
  rtcBase?: number;
  /** The initrd's guest physical range (/chosen linux,initrd-start/-end, as QEMU's -initrd). */
  initrd?: { start: number; end: number };
  gicdBase: number;
  /**
   * 2: the GICv2 QEMU writes for gic-version=2: `arm,cortex-a15-gic` with the distributor and the
   * CPU interface (gicCpuBase), 64K each, and the CPU mask in the PPI specifiers' flags. The
   * GICv2m MSI frame QEMU adds under it is left out (the machine has none). Default 3.
   */
  gicVersion?: 2 | 3;
  /** GICv2: the CPU interface's base (QEMU: 0x08010000). */
  gicCpuBase?: number;
  /** GICv3 only. */
  gicrBase?: number;
  /** The redistributor region's size (QEMU: 0xF60000 whatever the CPU count). GICv3 only. */
  gicrSize?: number;
  /** GICv3 only. */
  itsBase?: number;
  uartBase: number;
  timerIrqs?: Partial<TimerPpis>;
  /**
   * As QEMU's virtualization=on: PSCI through SMC and the GIC node lists the maintenance
   * interrupt. Default false: the guest enters at EL1, PSCI through HVC, no maintenance interrupt.
   */
  virtualization?: boolean;
}

const GICD_SIZE = 0x10000;
/** QEMU virt's VIRT_GIC_CPU region (the GICv2 CPU interface's 8K frame lives in it). */
const GICC_SIZE = 0x10000;
const ITS_SIZE = 0x20000;
const UART_SIZE = 0x1000;
const RTC_SIZE = 0x1000;
/** QEMU's apb-pclk: a fixed 24 MHz clock feeding the PL011. */
const APB_PCLK_HZ = 24_000_000;
/** QEMU's first phandle (qemu_fdt_alloc_phandle starts at 0x8000). */
const FIRST_PHANDLE = 0x8000;

const hex = (v: number) => v.toString(16);

function checkAddr(what: string, v: unknown): number {
  return checkInt('INVALID_CONFIG', what, v, 0, 2 ** 48 - 1);
}

/** Builds the DTB. */
export function virtDeviceTree(opts: VirtDtOptions): Uint8Array {
  const cpus = checkInt('INVALID_CONFIG', 'cpus', opts.cpus, 1, 8);
  const ramBase = checkAddr('ramBase', opts.ramBase);
  const ramSize = checkInt('INVALID_CONFIG', 'ramSize', opts.ramSize, 1, 2 ** 48);
  const gicdBase = checkAddr('gicdBase', opts.gicdBase);
  const v2 = opts.gicVersion === 2;
  if (opts.gicVersion !== undefined && opts.gicVersion !== 2 && opts.gicVersion !== 3)
    throw new VgicError('INVALID_CONFIG', `gicVersion must be 2 or 3, got ${String(opts.gicVersion)}`);
  const gicCpuBase = v2 ? checkAddr('gicCpuBase', opts.gicCpuBase) : 0;
  const gicrBase = v2 ? 0 : checkAddr('gicrBase', opts.gicrBase);
  const gicrSize = v2 ? 0 : checkInt('INVALID_CONFIG', 'gicrSize', opts.gicrSize, 1, 2 ** 48);
  const itsBase = v2 ? 0 : checkAddr('itsBase', opts.itsBase);
  const uartBase = checkAddr('uartBase', opts.uartBase);
  const t = { ...VIRT_TIMER_PPIS, ...opts.timerIrqs };
  for (const [k, v] of Object.entries(t)) checkInt('INVALID_CONFIG', `timerIrqs.${k}`, v, 0, 15);
  if (opts.bootargs?.includes('\0')) {
    throw new VgicError('INVALID_CONFIG', 'bootargs may not contain NUL');
  }
  const virtualization = opts.virtualization ?? false;

  const fdt = new Fdt({ bootCpuidPhys: 0, firstPhandle: FIRST_PHANDLE });
  // Phandles in QEMU's allocation order: the clock, the CPUs from the last to the first, the GIC,
  // the ITS. Same numbers as QEMU's DTB for the same CPU count.
  const clkPhandle = fdt.allocPhandle();
  const cpuPhandles: number[] = [];
  for (let n = cpus - 1; n >= 0; n--) cpuPhandles[n] = fdt.allocPhandle();
  const gicPhandle = fdt.allocPhandle();
  const itsPhandle = v2 ? 0 : fdt.allocPhandle();

  const root = fdt.root;
  root
    .u32('interrupt-parent', gicPhandle)
    .string('model', 'linux,dummy-virt')
    .u32('#size-cells', 2)
    .u32('#address-cells', 2)
    .string('compatible', 'linux,dummy-virt');

  // QEMU keeps the pre-PSCI-0.2 function-id properties for old kernels.
  root
    .node('psci')
    .u32('migrate', PSCI_FN.MIGRATE)
    .u32('cpu_on', PSCI_FN.CPU_ON)
    .u32('cpu_off', PSCI_FN.CPU_OFF)
    .u32('cpu_suspend', PSCI_FN.CPU_SUSPEND)
    .string('method', virtualization ? 'smc' : 'hvc')
    .strings('compatible', ['arm,psci-1.0', 'arm,psci-0.2', 'arm,psci']);

  root
    .node(`memory@${hex(ramBase)}`)
    .u64s('reg', [ramBase, ramSize])
    .string('device_type', 'memory');

  // QEMU creates the RTC after the UART; its dumped DTB lists nodes newest first.
  if (opts.rtcBase !== undefined) {
    const rtcBase = checkAddr('rtcBase', opts.rtcBase);
    root
      .node(`pl031@${hex(rtcBase)}`)
      .string('clock-names', 'apb_pclk')
      .u32('clocks', clkPhandle)
      .cells('interrupts', [GicIrqType.SPI, VIRT_RTC_SPI, GIC_FDT_IRQ_FLAGS_LEVEL_HI])
      .u64s('reg', [rtcBase, RTC_SIZE])
      .strings('compatible', ['arm,pl031', 'arm,primecell']);
  }

  // QEMU names the clock twice: the PL011 binding wants "uartclk" and "apb_pclk".
  root
    .node(`pl011@${hex(uartBase)}`)
    .strings('clock-names', ['uartclk', 'apb_pclk'])
    .cells('clocks', [clkPhandle, clkPhandle])
    .cells('interrupts', [GicIrqType.SPI, VIRT_UART_SPI, GIC_FDT_IRQ_FLAGS_LEVEL_HI])
    .u64s('reg', [uartBase, UART_SIZE])
    .strings('compatible', ['arm,pl011', 'arm,primecell']);

  const intc = root.node(`intc@${hex(gicdBase)}`).phandle(gicPhandle);
  if (virtualization) {
    intc.cells('interrupts', [GicIrqType.PPI, VIRT_GIC_MAINT_PPI, GIC_FDT_IRQ_FLAGS_LEVEL_HI]);
  }
  if (v2) {
    intc.u64s('reg', [gicdBase, GICD_SIZE, gicCpuBase, GICC_SIZE]).string('compatible', 'arm,cortex-a15-gic');
  } else {
    intc
      .u64s('reg', [gicdBase, GICD_SIZE, gicrBase, gicrSize])
      .u32('#redistributor-regions', 1)
      .string('compatible', 'arm,gic-v3');
  }
  intc
    .empty('ranges')
    .u32('#size-cells', 2)
    .u32('#address-cells', 2)
    .empty('interrupt-controller')
    .u32('#interrupt-cells', 3);
  if (!v2)
    intc
      .node(`its@${hex(itsBase)}`)
      .phandle(itsPhandle)
      .u64s('reg', [itsBase, ITS_SIZE])
      .u32('#msi-cells', 1)
      .empty('msi-controller')
      .string('compatible', 'arm,gic-v3-its');

  const cpusNode = root.node('cpus').u32('#size-cells', 0).u32('#address-cells', 1);
  const cluster = cpusNode.node('cpu-map').node('socket0').node('cluster0');
  for (let n = 0; n < cpus; n++) cluster.node(`core${n}`).u32('cpu', cpuPhandles[n]);
  for (let n = 0; n < cpus; n++) {
    const cpu = cpusNode
      .node(`cpu@${hex(n)}`)
      .phandle(cpuPhandles[n])
      .u32('reg', n);
    // QEMU writes enable-method only with more than one CPU: the boot CPU needs none.
    if (cpus > 1) cpu.string('enable-method', 'psci');
    // What QEMU 7.2 writes for -cpu max under TCG (its max CPU starts from the A57's ID values).
    cpu.string('compatible', 'arm,cortex-a57').string('device_type', 'cpu');
  }

  // Binding order: secure physical, non-secure physical, virtual, hypervisor. A GICv2's PPI
  // specifiers carry the mask of CPUs the PPI is wired to in flags[15:8] (bindings arm,gic).
  const ppiFlags = v2 ? (((1 << cpus) - 1) << 8) | GIC_FDT_IRQ_FLAGS_LEVEL_HI : GIC_FDT_IRQ_FLAGS_LEVEL_HI;
  const ppi = (n: number) => [GicIrqType.PPI, n, ppiFlags];
  root
    .node('timer')
    .cells('interrupts', [...ppi(t.secPhys), ...ppi(t.phys), ...ppi(t.virt), ...ppi(t.hyp)])
    .empty('always-on')
    .strings('compatible', ['arm,armv8-timer', 'arm,armv7-timer']);

  root
    .node('apb-pclk')
    .phandle(clkPhandle)
    .string('clock-output-names', 'clk24mhz')
    .u32('clock-frequency', APB_PCLK_HZ)
    .u32('#clock-cells', 0)
    .string('compatible', 'fixed-clock');

  const chosen = root.node('chosen');
  if (opts.initrd !== undefined) {
    const { start, end } = opts.initrd;
    checkAddr('initrd.start', start);
    checkAddr('initrd.end', end);
    if (end < start)
      throw new VgicError('INVALID_CONFIG', `initrd end ${hex(end)} is below its start ${hex(start)}`);
    // QEMU 7.2 writes one cell when the address fits in 32 bits (dumped DTB), two otherwise.
    const cell = (name: string, v: number) => (v < 2 ** 32 ? chosen.u32(name, v) : chosen.u64s(name, [v]));
    cell('linux,initrd-end', end);
    cell('linux,initrd-start', start);
  }
  if (opts.bootargs !== undefined) chosen.string('bootargs', opts.bootargs);
  chosen.string('stdout-path', `/pl011@${hex(uartBase)}`);

  return fdt.toDtb();
}
