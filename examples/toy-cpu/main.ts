/**
 * The board around the toy CPU (cpu.ts): a one-vCPU GICv3 with an ITS (vgic), RAM shared between
 * the CPU and vgic, a console and a "NIC" device of its own, and virtual time (one counter tick per
 * instruction). The guest program takes four interrupts through the CPU's IRQ input, each
 * acknowledged with ICC_IAR1_EL1 and completed with ICC_EOIR1_EL1:
 *
 * - SGI 1, sent to itself with ICC_SGI1R_EL1;
 * - the virtual timer's PPI 27 (CNTV_CVAL_EL0 / CNTV_CTL_EL0);
 * - SPI 40, a level interrupt the NIC raises with `Vgic.irqLine` until the guest acknowledges it
 *   in the NIC's own register;
 * - LPI 8192, an MSI the NIC sends through the ITS with `Vgic.signalMsi`.
 *
 * No top-level side effect: run.ts runs it (in Node, or bundled in a page).
 */

import {
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
  CNTVCT_EL0,
  GicV3Guest,
  GuestAllocator,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_SGI1R_EL1,
  ItsGuest,
  LpiTables,
  PPI_VTIMER,
  Vgic,
} from 'vgic';
import { type Board, type BoardDevice, type Insn, ToyCpu } from './cpu.ts';

const RAM_BASE = 0x40000000;
const RAM_SIZE = 4 << 20;
/** The guest's interrupt counter, in RAM (the firmware's tables sit above it). */
const COUNT = RAM_BASE + 0x1000;
const CONSOLE = 0x09000000;
const NIC = 0x09001000;
const NIC_SPI = 40;
const NIC_DEVID = 1;
const NIC_EVENT = 0;
const NIC_LPI = 8192;
/** Counter ticks after start at which the NIC raises its SPI and sends its MSI; the timer's delay. */
const SPI_AT = 5000;
const MSI_AT = 8000;
const TIMER_DELAY = 2000;

export interface ToyResult {
  /** INTIDs the guest acknowledged, in order. */
  readonly taken: number[];
  readonly instructions: number;
  readonly irqsTaken: number;
}

/** The guest program: set up the SGI and the timer, unmask, wait for four interrupts. */
function program(): Insn[] {
  return [
    { op: 'movi', rd: 0, imm: (1 << 24) | 1 }, // SGI 1, TargetList {0}, affinity 0.0.0
    { op: 'msr', sysreg: ICC_SGI1R_EL1, rs: 0 },
    { op: 'mrs', rd: 1, sysreg: CNTVCT_EL0 },
    { op: 'addi', rd: 1, rn: 1, imm: TIMER_DELAY },
    { op: 'msr', sysreg: CNTV_CVAL_EL0, rs: 1 },
    { op: 'movi', rd: 2, imm: 1 },
    { op: 'msr', sysreg: CNTV_CTL_EL0, rs: 2 }, // ENABLE
    { op: 'daifclr' },
    { op: 'label', name: 'loop' },
    { op: 'ldr', rd: 3, addr: COUNT },
    { op: 'bge', rn: 3, imm: 4, target: 'done' },
    { op: 'wfi' },
    { op: 'b', target: 'loop' },
    { op: 'label', name: 'done' },
    { op: 'halt' },

    { op: 'label', name: 'irq' },
    { op: 'mrs', rd: 5, sysreg: ICC_IAR1_EL1 },
    { op: 'beq', rn: 5, imm: 1023, target: 'ret' }, // spurious: nothing to complete
    { op: 'str', rs: 5, addr: CONSOLE },
    { op: 'beq', rn: 5, imm: PPI_VTIMER, target: 'timer' },
    { op: 'beq', rn: 5, imm: NIC_SPI, target: 'nic' },
    { op: 'b', target: 'eoi' },
    { op: 'label', name: 'timer' },
    { op: 'movi', rd: 6, imm: 0 },
    { op: 'msr', sysreg: CNTV_CTL_EL0, rs: 6 }, // the timer's output is a level: disarm it
    { op: 'b', target: 'eoi' },
    { op: 'label', name: 'nic' },
    { op: 'movi', rd: 6, imm: 1 },
    { op: 'str', rs: 6, addr: NIC }, // the NIC's interrupt acknowledge: it drops its line
    { op: 'label', name: 'eoi' },
    { op: 'msr', sysreg: ICC_EOIR1_EL1, rs: 5 },
    { op: 'ldr', rd: 3, addr: COUNT },
    { op: 'addi', rd: 3, rn: 3, imm: 1 },
    { op: 'str', rs: 3, addr: COUNT },
    { op: 'label', name: 'ret' },
    { op: 'eret' },
  ];
}

/** Builds the board, runs the guest to its HALT and reports through `print`. */
export function runToyMachine(print: (line: string) => void): ToyResult {
  const gic = Vgic.create({
    vcpus: 1,
    spis: 32,
    its: 1,
    time: 'virtual',
    ram: { base: RAM_BASE, size: RAM_SIZE },
  });
  const vcpu = gic.vcpu(0);

  // Firmware, run on the vCPU before the toy CPU starts: the GIC's defaults, the NIC's SPI, the
  // LPI tables and an ITS mapping for the NIC's MSI (vgic's guest library does it with MMIO and
  // RAM stores, as a driver would).
  const g = new GicV3Guest(vcpu);
  g.enableDistributor();
  g.enableCpu();
  g.enableIrq(PPI_VTIMER);
  g.enableIrq(NIC_SPI);
  g.routeSpi(NIC_SPI, g.affinity);
  const alloc = new GuestAllocator(RAM_BASE + 0x10000, RAM_SIZE - 0x10000);
  const lpi = new LpiTables(vcpu, alloc, 1, 14);
  lpi.fillConfig();
  lpi.program(g.rd, 0);
  lpi.enable(g.rd);
  const its = new ItsGuest(vcpu, alloc);
  its.init();
  its.enable();
  its.mapc(0, 0);
  its.createDevice(NIC_DEVID, 4);
  its.mapti(NIC_DEVID, NIC_EVENT, NIC_LPI, 0);
  its.sync(0);

  const taken: number[] = [];
  const start = gic.counter();
  let spiRaised = false;
  let msiSent = false;
  const console_: BoardDevice = {
    base: CONSOLE,
    size: 0x1000,
    read: () => 0,
    write: (_off, value) => {
      taken.push(value);
      print(`guest took INTID ${value} at counter +${gic.counter() - start}`);
    },
  };
  const nic: BoardDevice = {
    base: NIC,
    size: 0x1000,
    read: () => (spiRaised ? 1 : 0),
    write: (off, value) => {
      if (off === 0 && value === 1) gic.irqLine(NIC_SPI, false); // acknowledged: drop the line
    },
  };
  // The NIC's schedule, in counter ticks since start.
  const devicesRun = () => {
    const now = gic.counter() - start;
    if (!spiRaised && now >= SPI_AT) {
      spiRaised = true;
      gic.irqLine(NIC_SPI, true);
    }
    if (!msiSent && now >= MSI_AT) {
      msiSent = true;
      const r = gic.signalMsi({ doorbell: gic.its(0).doorbell, devid: NIC_DEVID, eventid: NIC_EVENT });
      print(`NIC sent an MSI: ${r}`);
    }
  };
  const board: Board = {
    tick(n) {
      gic.advanceTime(n);
      devicesRun();
    },
    idle() {
      // WFI: jump virtual time to the next event (the NIC's schedule or the vCPU's timer).
      const now = gic.counter() - start;
      const events = [SPI_AT, MSI_AT].filter((t, i) => t > now && !(i === 0 ? spiRaised : msiSent));
      const ms = vcpu.wfiSleepMs();
      if (ms !== Number.POSITIVE_INFINITY)
        events.push(now + Math.max(1, Math.ceil((ms * gic.counterHz) / 1000)));
      if (events.length === 0) return false;
      gic.advanceTime(Math.max(1, Math.min(...events) - now));
      devicesRun();
      return true;
    },
  };

  const cpu = new ToyCpu(vcpu, program(), [console_, nic], board, 'irq');
  cpu.run(1_000_000);
  const stats = gic.stats();
  print(
    `halted: ${cpu.halted}, ${cpu.instructions} instructions, ${cpu.irqsTaken} IRQ exceptions, ` +
      `${stats.vcpus[0].exits} exits, bad accesses ${stats.mmioBadAccess + stats.mmioUnmapped}`,
  );
  return { taken, instructions: cpu.instructions, irqsTaken: cpu.irqsTaken };
}
