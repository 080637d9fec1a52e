/**
 * vgic's machine: real AArch64 guest code on a Unicorn CPU per vCPU, with vgic as the GIC, laid
 * out as QEMU's `virt` board (RAM 0x40000000, GICD 0x08000000, ITS 0x08080000, GICR 0x080A0000 at
 * a 128K stride, PL011 0x09000000, PSCI over HVC, a QEMU-like device tree in x0), so that
 * bare-metal programs written for QEMU virt run unmodified.
 *
 * The run loop is KVM's shape on one thread: each vCPU runs a slice in Unicorn; MMIO to the GIC
 * frames and trapped ICC_* and CNT* accesses exit to the vCPU's VCpu (device/vcpu.ts: flush/sync of
 * the LRs, the virtual CPU interface) and return; after every exit the CPU interface's output
 * line drives the CPU's IRQ/FIQ inputs, and QEMU's code takes the exception when PSTATE allows.
 * Guest exceptions (page faults, SVC, UNDEF, EL0 faults) are entered by QEMU's own code in the
 * addon; only PSCI (HVC), semihosting and aborts on unmapped addresses reach this file. Every
 * vCPU runs round-robin on this thread: Unicorn's exclusives are not atomic across threads
 * (unicorn.md), so they stay atomic here by construction; a slice ends at the next timer
 * deadline, and shortly after it kicks a vCPU that is spinning rather than waiting.
 *
 * Who may call: one thread, the one that created the machine. Guest input is untrusted: every
 * guest-supplied address goes through bounds-checked accessors, and a guest that faults, spins or
 * writes garbage ends with a report, never an exception out of run().
 */

import { VgicError } from '../arch/errors.ts';
import { VIRT_V2_GICC_BASE } from '../arch/gicv2.ts';
import { VIRT_GICD_BASE, VIRT_GICR_BASE, VIRT_GITS_BASE, VIRT_RAM_BASE } from '../arch/gicv3.ts';
import { ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1, SYSREG_NAMES } from '../arch/sysreg.ts';
import type { VCpu } from '../device/vcpu.ts';
import { Vgic } from '../device/vgic.ts';
import {
  EXCP_HVC,
  EXCP_UDEF,
  EXIT_ESCAPED,
  EXIT_EXCEPTION,
  EXIT_MMIO_READ,
  EXIT_MMIO_WRITE,
  EXIT_MRS,
  EXIT_MSR,
  IO_ADDR_HI,
  IO_ADDR_LO,
  IO_BLOCKS_HI,
  IO_BLOCKS_LO,
  IO_CLAMP,
  IO_CODE_PAGES,
  IO_DEADLINE_US,
  IO_ERR,
  IO_EXCEPTIONS,
  IO_ID,
  IO_INSN,
  IO_KIND,
  IO_LINE,
  IO_PC_HI,
  IO_PC_LO,
  IO_SIZE,
  IO_SPIN_LIMIT,
  IO_SPINS,
  IO_STOP,
  IO_TB_FLUSHES,
  IO_TLB_FLUSHES,
  IO_TLB_PAGES,
  IO_VAL_HI,
  IO_VAL_LO,
  IO_WORDS,
  R_ELR_EL1,
  R_ESR_EL1,
  R_FAR_EL1,
  R_PC,
  R_PSTATE,
  R_SCTLR_EL1,
  R_VBAR_EL1,
  RUN_HALTED,
  RUN_UC_ERROR,
  SYNC_WORDS,
  UC_ERR_FETCH_UNMAPPED,
  UC_ERR_READ_UNMAPPED,
  UC_ERR_WRITE_UNMAPPED,
  VECTOR_SYNC,
} from './cpu-io.ts';
import { copySegments, type LoadedImage, loadImage } from './image.ts';
import { type CpuHandle, loadUnicorn, MachineUnavailableError, type UnicornAddon } from './native.ts';
import { PL011 } from './pl011.ts';
import { PL031, PL031_SIZE } from './pl031.ts';
import { psciCall } from './psci.ts';
import { CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0, CNTPCT_EL0, PhysTimer } from './ptimer.ts';
import {
  type MachineFault,
  type RunReport,
  reportMessage,
  STATUS_FAULT,
  STATUS_IDLE,
  STATUS_TIME_LIMIT,
  type StopReason,
} from './report.ts';
import { SEMIHOSTING_HLT, semihostingCall } from './semihosting.ts';
import { describeEsr, EC_DABT_CUR, EC_IABT_CUR, ESR_IL, ESR_WNR, FSC_EXTERNAL } from './syndrome.ts';
import { virtDeviceTree } from './virt-dt.ts';
import { VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE, virtioMmioRead, virtioMmioReadHi } from './virtio-mmio.ts';

export type { MachineFault, RunReport, StopReason } from './report.ts';
export { STATUS_FAULT, STATUS_IDLE, STATUS_TIME_LIMIT } from './report.ts';

export const VIRT_UART_BASE = 0x09000000;
/** The PL011's interrupt: SPI 1 (INTID 33), as on QEMU virt. */
export const VIRT_UART_INTID = 33;
export const VIRT_RTC_BASE = 0x09010000;
/** The PL031's interrupt: SPI 2 (INTID 34), as on QEMU virt. */
export const VIRT_RTC_INTID = 34;
export const MAX_MACHINE_CPUS = 8;
export const DEFAULT_RAM_SIZE = 128 * 1024 * 1024;
export const DEFAULT_TIME_LIMIT_MS = 60_000;

const GICD_SIZE = 0x10000;
const GICC_REGION_SIZE = 0x10000;
const GITS_SIZE = 0x20000;
const GICR_STRIDE = 0x20000;
const UART_SIZE = 0x1000;
const REGION_GICD = 0;
const REGION_ITS = 1;
const REGION_GICR = 2;
const REGION_UART = 3;
const REGION_RTC = 4;
const REGION_VIRTIO = 5;

/** Blocks per slice: one vCPU alone runs long slices; several share the thread in short ones. */
const SLICE_BLOCKS_UP = 200_000;
const SLICE_BLOCKS_SMP = 5_000;
/** Host time between returns to the event loop (stdin, signals, output). */
const CHUNK_MS = 20;
/** With virtual time, counter ticks credited per translated block executed. */
const VIRTUAL_TICKS_PER_BLOCK = 4;
/**
 * Blocks a vCPU may still run after it made another vCPU, one that is running rather than waiting
 * in WFI, pending an interrupt: that vCPU only runs once this slice ends, so the slice is cut to
 * about a microsecond of guest code instead of a whole slice (an IPI to a spinning CPU).
 */
const KICK_BLOCKS = 256;
/**
 * Iterations of a loop of at most four blocks after which a vCPU yields to the others when one of
 * them can run: it is most likely waiting for that one (a lock, a cross-call), which runs only
 * when this slice ends. Legitimate long loops pay a slice switch every this many iterations.
 */
const SPIN_LIMIT = 256;
/** SCTLR_EL1.M: the MMU is on (addresses are virtual). */
const SCTLR_M = 1n;

const PSTATE_RESET = 0x3c5; // EL1h, DAIF masked

export interface MachineOptions {
  /** vCPUs, 1..8. Default 1. */
  readonly smp?: number;
  /** RAM at 0x40000000 in bytes, a multiple of 4K. Default 128 MiB (QEMU's default). */
  readonly ramSize?: number;
  /** The kernel command line: /chosen/bootargs and semihosting's SYS_GET_CMDLINE. */
  readonly append?: string;
  /** Host milliseconds before the run is stopped with a report. Default 60000; 0: no limit. */
  readonly timeLimitMs?: number;
  /**
   * 'real' (default): the counter follows host time, so guest-timed figures are real.
   * 'virtual': the counter advances with executed code and jumps to the next timer deadline when
   * every vCPU waits, which makes timer-driven programs deterministic and fast.
   */
  readonly time?: 'real' | 'virtual';
  /** Where UART and semihosting output goes. Default: standard output. */
  readonly output?: (bytes: Uint8Array) => void;
  /**
   * Exact ELR for aborts on unmapped addresses taken in the image's code (Unicorn otherwise
   * reports the start of the translation block). Off by default: with any memory hook Unicorn
   * slows every load and store (measured: an LPI round trip 2.8 → 5.9 µs, an SGI 1.26 → 1.56 µs).
   */
  readonly preciseAborts?: boolean;
  /** List registers per vCPU. Default 4. */
  readonly lrs?: number;
  /**
   * An initial RAM disk, placed as QEMU's -initrd places it (RAM + min(RAM/2, 128 MiB), or after
   * the image) and described in /chosen (linux,initrd-start/end); the DTB goes after it.
   */
  readonly initrd?: Uint8Array;
  /** A device tree to pass instead of the generated one (as QEMU's -dtb, used as given). */
  readonly dtb?: Uint8Array;
  /**
   * 3 (default): QEMU virt's gic-version=3 (GICD, ITS, GICR; ICC_* system registers). 2: its
   * gic-version=2 map, GICD 0x08000000 and GICC 0x08010000, both memory-mapped; no ITS; ICC_*
   * are UNDEFINED and ID_AA64PFR0_EL1.GIC reads 0, as on a CPU without the system-register interface.
   */
  readonly gicVersion?: 2 | 3;
}

const CPU_OFF = 0;
const CPU_RUNNING = 1;
const CPU_WFI = 2;

const EXIT_LINE = /^EXIT: STATUS=(\d+)\s*$/;

function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

export class Machine {
  readonly gic: Vgic;
  readonly smp: number;
  readonly ramBase = VIRT_RAM_BASE;
  readonly ramSize: number;
  readonly uart: PL011;
  readonly rtc: PL031;
  private readonly uc: UnicornAddon;
  private readonly ram: Uint8Array;
  private readonly handles: CpuHandle[] = [];
  /** Broadcast TLB / I-cache maintenance between the vCPUs' Unicorn instances (cpu-io.ts). */
  private readonly sync = new Uint32Array(SYNC_WORDS);
  private readonly ios: Uint32Array[] = [];
  private readonly vcpus: VCpu[] = [];
  private readonly state: Uint8Array;
  private readonly blocks: number[];
  private readonly ptimer: PhysTimer;
  private readonly sliceBlocks: number;
  private readonly timeLimitMs: number;
  private readonly write: (bytes: Uint8Array) => void;
  private readonly append: string;
  private readonly resetSctlr: bigint;
  private readonly preciseAborts: boolean;
  /** Guest physical base of each MMIO region id (REGION_*); on a GICv2 REGION_ITS is the GICC. */
  private readonly regionBase: number[];
  /** 2 or 3 (MachineOptions.gicVersion). */
  readonly gicVersion: 2 | 3;
  private readonly initrd: Uint8Array | undefined;
  private readonly userDtb: Uint8Array | undefined;
  private image: LoadedImage | undefined;
  private dtb: Uint8Array | undefined;
  private reason: StopReason | undefined;
  private status = 0;
  private exitLineStatus: number | undefined;
  private fault: MachineFault | undefined;
  private lineBuf = '';
  private startMs = 0;
  private syncExceptions = 0;
  private idleMs = 0;
  private inputOpen = false;
  private readonly pendingInput: number[] = [];
  private readonly decoder = new TextDecoder();

  constructor(opts: MachineOptions = {}) {
    const smp = opts.smp ?? 1;
    if (!Number.isInteger(smp) || smp < 1 || smp > MAX_MACHINE_CPUS) {
      throw new VgicError('INVALID_CONFIG', `smp must be an integer in 1..${MAX_MACHINE_CPUS}, got ${smp}`);
    }
    const ramSize = opts.ramSize ?? DEFAULT_RAM_SIZE;
    if (!Number.isInteger(ramSize) || ramSize < 1 << 20 || ramSize % 4096 !== 0 || ramSize > 2 ** 32) {
      throw new VgicError(
        'INVALID_CONFIG',
        `ramSize must be a multiple of 4K from 1 MiB to 4 GiB, got ${ramSize}`,
      );
    }
    const timeLimitMs = opts.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS;
    if (typeof timeLimitMs !== 'number' || !(timeLimitMs >= 0)) {
      throw new VgicError('INVALID_CONFIG', `timeLimitMs must be >= 0 (0: none), got ${timeLimitMs}`);
    }
    this.uc = loadUnicorn();
    this.smp = smp;
    this.ramSize = ramSize;
    this.timeLimitMs = timeLimitMs === 0 ? Number.POSITIVE_INFINITY : timeLimitMs;
    this.append = opts.append ?? '';
    this.write = opts.output ?? defaultOutput;
    this.sliceBlocks = smp === 1 ? SLICE_BLOCKS_UP : SLICE_BLOCKS_SMP;
    const gicVersion = opts.gicVersion ?? 3;
    if (gicVersion !== 2 && gicVersion !== 3)
      throw new VgicError('INVALID_CONFIG', `gicVersion must be 2 or 3, got ${String(gicVersion)}`);
    this.gicVersion = gicVersion;
    const v2 = gicVersion === 2;
    this.regionBase = [
      VIRT_GICD_BASE,
      v2 ? VIRT_V2_GICC_BASE : VIRT_GITS_BASE,
      VIRT_GICR_BASE,
      VIRT_UART_BASE,
      VIRT_RTC_BASE,
      VIRTIO_MMIO_BASE,
    ];
    // One thread drives every vCPU: the state needs no SharedArrayBuffer and no atomics.
    this.gic = Vgic.create({
      ...(v2 ? { gicVersion: 2 as const } : { its: 1 }),
      vcpus: smp,
      ram: { size: ramSize },
      shared: false,
      time: opts.time ?? 'real',
      lrs: opts.lrs,
    });
    const region = this.gic.memory.find(VIRT_RAM_BASE, ramSize);
    if (!region) throw new VgicError('INVALID_CONFIG', 'the GIC has no RAM');
    this.ram = region.bytes;
    this.state = new Uint8Array(smp);
    this.blocks = new Array<number>(smp).fill(0);
    this.ptimer = new PhysTimer(this.gic, smp);
    this.initrd = opts.initrd;
    this.userDtb = opts.dtb;
    this.rtc = new PL031({ irq: (level) => this.gic.irqLine(VIRT_RTC_INTID, level) });
    this.uart = new PL011({
      output: (bytes) => this.output(bytes),
      irq: (level) => this.gic.irqLine(VIRT_UART_INTID, level),
    });

    if (v2 && typeof this.uc.setGicSysregs !== 'function') {
      throw new MachineUnavailableError(
        ['a CPU addon built from this version (setGicSysregs)'],
        'rebuild it: node scripts/build-native.mjs',
      );
    }
    // A GICv2 board has no ICC_* registers: only the timer's are trapped; ICC_* stay UNDEFINED.
    const trapped = Object.values(SYSREG_NAMES).filter((enc) => !v2 || ((enc >> 7) & 15) === 14);
    for (let k = 0; k < smp; k++) {
      const io = new Uint32Array(IO_WORDS);
      const handle = this.uc.create(k, mpidrOf(k), () => this.onExit(k), io, this.sync);
      this.uc.mapRam(handle, VIRT_RAM_BASE, this.ram);
      this.uc.mapMmio(handle, VIRT_GICD_BASE, GICD_SIZE, REGION_GICD);
      if (v2) {
        // QEMU's VIRT_GIC_CPU region: 64K, the GICC frame (8K) at its start.
        this.uc.mapMmio(handle, VIRT_V2_GICC_BASE, GICC_REGION_SIZE, REGION_ITS);
        this.uc.setGicSysregs(handle, false);
      } else {
        this.uc.mapMmio(handle, VIRT_GITS_BASE, GITS_SIZE, REGION_ITS);
        this.uc.mapMmio(handle, VIRT_GICR_BASE, smp * GICR_STRIDE, REGION_GICR);
      }
      this.uc.mapMmio(handle, VIRT_UART_BASE, UART_SIZE, REGION_UART);
      this.uc.mapMmio(handle, VIRT_RTC_BASE, PL031_SIZE, REGION_RTC);
      this.uc.mapMmio(handle, VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE, REGION_VIRTIO);
      for (const enc of trapped) {
        // ICC_* do not exist in Unicorn's CPU: they are added to its register table (an access is
        // then a call from translated code). The timer registers exist there: the hook skips them.
        if (((enc >> 7) & 15) === 14) this.uc.trapSysreg(handle, enc, false);
        else this.uc.defineSysreg(handle, enc);
      }
      for (const enc of [CNTPCT_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0]) {
        this.uc.trapSysreg(handle, enc, false);
      }
      this.handles.push(handle);
      this.ios.push(io);
      this.vcpus.push(this.gic.vcpu(k));
      // Powered off until the boot CPU's reset or a PSCI CPU_ON (QEMU's start-powered-off).
      this.gic.vcpu(k).setOnline(false);
    }
    this.resetSctlr = this.uc.getReg(this.handles[0], R_SCTLR_EL1);
    this.preciseAborts = opts.preciseAborts ?? false;
  }

  /**
   * Loads a guest image as QEMU's -kernel does (image.ts: an ELF at its own addresses, an arm64
   * Image or a flat binary at RAM + 0x80000), builds the device tree after it, and resets vCPU 0
   * to the entry with x0 = the DTB's address; the other vCPUs wait for PSCI CPU_ON.
   */
  load(bytes: Uint8Array): LoadedImage {
    const initrdSize = this.initrd?.length ?? 0;
    const tree = (initrdStart: number) =>
      virtDeviceTree({
        cpus: this.smp,
        ramBase: VIRT_RAM_BASE,
        ramSize: this.ramSize,
        gicdBase: VIRT_GICD_BASE,
        ...(this.gicVersion === 2
          ? { gicVersion: 2 as const, gicCpuBase: VIRT_V2_GICC_BASE }
          : { gicrBase: VIRT_GICR_BASE, gicrSize: this.smp * GICR_STRIDE, itsBase: VIRT_GITS_BASE }),
        uartBase: VIRT_UART_BASE,
        rtcBase: VIRT_RTC_BASE,
        bootargs: this.append || undefined,
        initrd: this.initrd ? { start: initrdStart, end: initrdStart + initrdSize } : undefined,
      });
    // The initrd's address does not change the tree's size: plan with a placeholder, then build.
    const dtbSize = this.userDtb?.length ?? tree(0).length;
    const img = loadImage(bytes, { base: VIRT_RAM_BASE, size: this.ramSize }, { dtbSize, initrdSize });
    const dtb = this.userDtb ?? tree(img.initrdAddr ?? 0);
    this.dtb = dtb;
    copySegments(img, VIRT_RAM_BASE, this.ram);
    if (this.initrd && img.initrdAddr !== null) this.ram.set(this.initrd, img.initrdAddr - VIRT_RAM_BASE);
    const dtbAt = img.dtbAddr - VIRT_RAM_BASE;
    if (dtbAt < 0 || dtbAt + dtb.length > this.ram.length) {
      throw new VgicError('INVALID_ADDRESS', `the device tree does not fit in RAM at ${hex(img.dtbAddr)}`);
    }
    this.ram.set(dtb, dtbAt);
    this.image = img;
    if (this.preciseAborts) {
      // Exact PCs for aborts in the image's code: the segment holding the entry, as loaded. The
      // hook costs a call per load/store to its range, so stacks and data outside stay fast.
      const text = img.segments.find((s) => img.entry >= s.addr && img.entry < s.addr + s.bytes.length);
      const begin = text ? text.addr : img.imageLow;
      const end = text ? text.addr + text.bytes.length - 1 : img.imageHigh - 1;
      for (const h of this.handles) this.uc.preciseAborts(h, begin, end);
    }
    this.resetCpu(0, BigInt(img.entry), BigInt(img.x0));
    return img;
  }

  /** The device tree load() placed (the generated one, or the one given as `dtb`). */
  deviceTree(): Uint8Array {
    if (!this.dtb)
      throw new VgicError('INVALID_ARGUMENT', 'load() an image before asking for its device tree');
    return this.dtb;
  }

  /** Bytes for the UART's receiver (stdin). Kept until the guest's FIFO takes them: nothing is dropped. */
  input(bytes: Uint8Array): void {
    for (const b of bytes) this.pendingInput.push(b);
    this.inputOpen = true;
    this.feedInput();
  }

  /** No more input will come (stdin ended): a machine whose vCPUs all wait can then end as idle. */
  endInput(): void {
    this.inputOpen = false;
  }

  /** Declares that input may still come (stdin is open). */
  expectInput(): void {
    this.inputOpen = true;
  }

  /** Runs until the guest powers off, exits, faults, idles for good or hits the time limit. */
  async run(): Promise<RunReport> {
    if (!this.image) throw new VgicError('INVALID_ARGUMENT', 'load() an image before run()');
    this.startMs = performance.now();
    const deadline = this.startMs + this.timeLimitMs;
    while (this.reason === undefined) {
      const chunkEnd = performance.now() + CHUNK_MS;
      let idle = false;
      while (this.reason === undefined) {
        if (!this.round()) {
          idle = true;
          break;
        }
        if (performance.now() >= chunkEnd) break;
      }
      if (this.reason !== undefined) break;
      const now = performance.now();
      if (now >= deadline) {
        this.stopWith('time-limit', STATUS_TIME_LIMIT);
        break;
      }
      if (idle && !this.state.includes(CPU_RUNNING)) {
        if (!this.state.includes(CPU_WFI)) {
          this.stopWith('cpus-off', this.exitLineStatus ?? 0);
          break;
        }
        const waitMs = this.idleWaitMs();
        if (waitMs === Number.POSITIVE_INFINITY && !this.inputOpen) {
          this.stopWith('idle', STATUS_IDLE);
          break;
        }
        if (waitMs > 0) {
          await sleep(Math.min(waitMs, deadline - now, 50));
          this.idleMs += performance.now() - now;
        }
      } else {
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    this.flushLine();
    return this.report();
  }

  /** Releases the CPUs (Unicorn instances). The machine cannot run afterwards. */
  close(): void {
    for (const h of this.handles) this.uc.close(h);
    this.handles.length = 0;
  }

  // ---- The run loop ----

  /** One round-robin pass over the vCPUs; false when none could run. */
  private round(): boolean {
    let ran = false;
    for (let k = 0; k < this.smp && this.reason === undefined; k++) {
      const st = this.state[k];
      if (st === CPU_OFF) continue;
      this.ptimer.update(k);
      if (st === CPU_WFI) {
        // A wake-up event is an interrupt the vCPU would take, whatever PSTATE.I is (WFI's rule).
        if (!this.vcpus[k].wfiPoll()) continue;
        this.state[k] = CPU_RUNNING;
      }
      this.slice(k);
      ran = true;
    }
    this.feedInput();
    return ran;
  }

  private slice(k: number): void {
    const io = this.ios[k];
    const vcpu = this.vcpus[k];
    // Kicks and the virtual timer are taken at entry, then the line says what the CPU takes.
    vcpu.step();
    io[IO_LINE] = this.vcpus[k].outputLine();
    // The slice ends at the vCPU's next timer deadline, so its timers' lines follow the counter.
    let budget = this.sliceBlocks;
    // With host time a slice also ends after CHUNK_MS: a guest that exits on every few blocks (an
    // IAR poll) made a 200 000-block slice last 0.4 s, and the event loop (the inspector, SIGUSR1,
    // stdin) waited that long. Virtual time keeps block budgets only, so runs stay deterministic.
    io[IO_DEADLINE_US] = this.gic.virtualTime ? 0 : CHUNK_MS * 1000;
    const ticks = Math.min(this.timerTicks(k), this.ptimer.ticksToFire(k));
    if (ticks > 0 && ticks !== Number.POSITIVE_INFINITY) {
      if (this.gic.virtualTime) budget = Math.min(budget, Math.ceil(ticks / VIRTUAL_TICKS_PER_BLOCK));
      else
        io[IO_DEADLINE_US] = Math.min(
          io[IO_DEADLINE_US],
          Math.max(1, Math.ceil((ticks * 1e6) / this.gic.counterHz)),
        );
    }
    io[IO_SPIN_LIMIT] = this.othersRunnable(k) ? SPIN_LIMIT : 0;
    const r = this.uc.run(this.handles[k], budget);
    const blocks = io[IO_BLOCKS_LO] + io[IO_BLOCKS_HI] * 2 ** 32;
    this.blocks[k] += blocks;
    this.syncExceptions += io[IO_EXCEPTIONS];
    if (this.gic.virtualTime) this.gic.advanceTime(blocks * VIRTUAL_TICKS_PER_BLOCK);
    if (r === RUN_HALTED) {
      if (this.state[k] === CPU_RUNNING && !vcpu.wfiPoll()) this.state[k] = CPU_WFI;
    } else if (r === RUN_UC_ERROR) {
      this.ucError(k);
    }
  }

  /** Whether a vCPU other than k is running (not off, not waiting in WFI). */
  private othersRunnable(k: number): boolean {
    for (let j = 0; j < this.smp; j++) if (j !== k && this.state[j] === CPU_RUNNING) return true;
    return false;
  }

  /** Counter ticks until vCPU k's virtual timer fires (Infinity: disarmed; 0: due or firing). */
  private timerTicks(k: number): number {
    const ms = this.vcpus[k].wfiSleepMs();
    return ms === Number.POSITIVE_INFINITY ? ms : Math.floor((ms * this.gic.counterHz) / 1000);
  }

  /**
   * After vCPU k's exit changed GIC state: a vCPU waiting in WFI that now has an interrupt runs
   * next (the slice stops); one that is running and now has one pending runs soon (the slice is
   * cut to KICK_BLOCKS), as it would on parallel hardware.
   */
  private kick(k: number, io: Uint32Array): void {
    if (this.smp === 1) return;
    for (let j = 0; j < this.smp; j++) {
      if (j === k || this.state[j] === CPU_OFF || !this.vcpus[j].hasPendingIrq()) continue;
      if (this.state[j] === CPU_WFI) {
        io[IO_STOP] = 1;
        return;
      }
      io[IO_CLAMP] = KICK_BLOCKS;
    }
  }

  /** How long every vCPU may sleep: until the earliest timer deadline (Infinity: none armed). */
  private idleWaitMs(): number {
    let ms = Number.POSITIVE_INFINITY;
    let ticks = Number.POSITIVE_INFINITY;
    for (let k = 0; k < this.smp; k++) {
      if (this.state[k] !== CPU_WFI) continue;
      ms = Math.min(ms, this.vcpus[k].wfiSleepMs());
      ticks = Math.min(ticks, this.ptimer.ticksToFire(k));
    }
    if (this.gic.virtualTime) {
      // Virtual time: jump to the deadline instead of sleeping.
      const vt =
        ms === Number.POSITIVE_INFINITY
          ? Number.POSITIVE_INFINITY
          : Math.ceil((ms * this.gic.counterHz) / 1000);
      const jump = Math.min(vt, ticks);
      if (jump === Number.POSITIVE_INFINITY) return jump;
      this.gic.advanceTime(Math.max(1, jump));
      return 0;
    }
    return Math.min(ms, (ticks * 1000) / this.gic.counterHz);
  }

  // ---- Exits ----

  private onExit(k: number): void {
    const io = this.ios[k];
    const vcpu = this.vcpus[k];
    switch (io[IO_KIND]) {
      case EXIT_MMIO_READ: {
        const region = io[IO_ID];
        if (region === REGION_UART) {
          io[IO_VAL_LO] = this.uart.read(io[IO_ADDR_LO], io[IO_SIZE]);
          io[IO_VAL_HI] = 0;
        } else if (region === REGION_RTC) {
          io[IO_VAL_LO] = this.rtc.read(io[IO_ADDR_LO], io[IO_SIZE]);
          io[IO_VAL_HI] = 0;
        } else if (region === REGION_VIRTIO) {
          io[IO_VAL_LO] = virtioMmioRead(io[IO_ADDR_LO], io[IO_SIZE]);
          io[IO_VAL_HI] = virtioMmioReadHi(io[IO_ADDR_LO], io[IO_SIZE]);
        } else {
          io[IO_VAL_LO] = vcpu.mmioRead(this.regionBase[region] + io[IO_ADDR_LO], io[IO_SIZE]);
          io[IO_VAL_HI] = vcpu.hi;
        }
        break;
      }
      case EXIT_MMIO_WRITE: {
        const region = io[IO_ID];
        if (region === REGION_UART) this.uart.write(io[IO_ADDR_LO], io[IO_SIZE], io[IO_VAL_LO]);
        else if (region === REGION_RTC) this.rtc.write(io[IO_ADDR_LO], io[IO_SIZE], io[IO_VAL_LO]);
        // The virtio-mmio transports have no backend: their writes are ignored.
        else if (region !== REGION_VIRTIO)
          vcpu.mmioWrite(this.regionBase[region] + io[IO_ADDR_LO], io[IO_SIZE], io[IO_VAL_LO], io[IO_VAL_HI]);
        if (region < REGION_UART) this.kick(k, io);
        break;
      }
      case EXIT_MRS: {
        const enc = io[IO_ID];
        if (isPhysTimerReg(enc)) {
          // A guest polling ISTATUS sees the interrupt line change with it: the line is updated
          // after the read, with a later counter sample, so a read that saw ISTATUS set has it up.
          this.ptimer.read(k, enc, io, IO_VAL_LO);
          this.ptimer.update(k);
          // A line raised from the host reaches the CPU interface at the vCPU's next entry: enter
          // now, so the IRQ is taken after this instruction as on QEMU, not at the next slice.
          if (vcpu.entryRequested) vcpu.step();
        } else {
          io[IO_VAL_LO] = vcpu.readSysreg(enc);
          io[IO_VAL_HI] = vcpu.hi;
        }
        break;
      }
      case EXIT_MSR: {
        const enc = io[IO_ID];
        if (isPhysTimerReg(enc)) {
          this.ptimer.write(k, enc, io[IO_VAL_LO], io[IO_VAL_HI]);
          if (vcpu.entryRequested) vcpu.step();
        } else vcpu.writeSysreg(enc, io[IO_VAL_LO], io[IO_VAL_HI]);
        if (enc === ICC_SGI1R_EL1 || enc === ICC_ASGI1R_EL1 || enc === ICC_SGI0R_EL1) this.kick(k, io);
        break;
      }
      case EXIT_EXCEPTION:
        this.exception(k);
        break;
      case EXIT_ESCAPED:
        this.stopWithFault({
          cpu: k,
          pc: io[IO_PC_LO] + io[IO_PC_HI] * 2 ** 32,
          what: `CPU exception ${io[IO_ID]} was routed to EL2/EL3, where nothing runs on this board`,
        });
        break;
    }
    io[IO_LINE] = vcpu.outputLine();
  }

  /** PSCI (HVC) and semihosting (HLT #0xF000): the exceptions the board itself answers. */
  private exception(k: number): void {
    const io = this.ios[k];
    const h = this.handles[k];
    const intno = io[IO_ID];
    const pc = io[IO_PC_LO] + io[IO_PC_HI] * 2 ** 32;
    const insn = io[IO_INSN];
    if (intno === EXCP_HVC) {
      const x = (n: number) => this.uc.getReg(h, n);
      const ret = psciCall(this.psciHost(k), k, x(0), x(1), x(2), x(3));
      if (this.state[k] !== CPU_OFF) this.uc.setReg(h, 0, BigInt.asUintN(64, BigInt(ret)));
      return;
    }
    if (intno === EXCP_UDEF && insn === SEMIHOSTING_HLT) {
      const op = Number(this.uc.getReg(h, 0) & 0xffffffffn);
      const ret = semihostingCall(this.semihostingHost(), op, this.uc.getReg(h, 1));
      this.uc.setReg(h, 0, BigInt.asUintN(64, BigInt(ret)));
      this.uc.setReg(h, R_PC, pc + 4);
      // Not uc.stop(): Unicorn drops a stop made in the same hook as a PC write.
      if (this.reason !== undefined) io[IO_STOP] = 1;
      return;
    }
    // The addon hands QEMU every other exception; one arriving here is a mismatch with it.
    this.stopWithFault({ cpu: k, pc, what: `CPU exception ${intno} the machine does not model` });
  }

  /** Unicorn stopped on an error: an unmapped access becomes an external abort, the rest a report. */
  private ucError(k: number): void {
    const io = this.ios[k];
    const err = io[IO_ERR];
    const pc = io[IO_PC_LO] + io[IO_PC_HI] * 2 ** 32;
    const addr = io[IO_ADDR_LO] + io[IO_ADDR_HI] * 2 ** 32;
    if (err === UC_ERR_READ_UNMAPPED || err === UC_ERR_WRITE_UNMAPPED) {
      const wnr = err === UC_ERR_WRITE_UNMAPPED ? ESR_WNR : 0;
      this.deliverSync(
        k,
        pc,
        (EC_DABT_CUR << 26) | ESR_IL | wnr | FSC_EXTERNAL,
        addr,
        `data abort at ${hex(addr)}${this.preciseAborts ? '' : ' (PC is the start of its translation block; --precise-aborts gives the instruction)'}`,
      );
      return;
    }
    if (err === UC_ERR_FETCH_UNMAPPED && this.vectorFetch(k, addr)) return;
    if (err === UC_ERR_FETCH_UNMAPPED) {
      // Unicorn names the physical address; ELR and FAR are virtual. An AArch64 translation block
      // never crosses a page, so the failed fetch is the block's first: the PC.
      this.deliverSync(
        k,
        pc,
        (EC_IABT_CUR << 26) | ESR_IL | FSC_EXTERNAL,
        pc,
        `instruction abort at ${hex(pc)}${pc === addr ? '' : ` (physical ${hex(addr)})`}`,
      );
      return;
    }
    const at = Number(this.uc.getReg(this.handles[k], R_PC));
    this.stopWithFault({ cpu: k, pc: at, what: `the CPU stopped: Unicorn error ${err}` });
  }

  /**
   * With the MMU off, a fetch from VBAR_EL1's vectors that hit nothing is QEMU having entered an
   * exception for a guest with no vectors: the report names that exception, not the fetch.
   */
  private vectorFetch(k: number, addr: number): boolean {
    const h = this.handles[k];
    const vbar = Number(this.uc.getReg(h, R_VBAR_EL1));
    if ((this.uc.getReg(h, R_SCTLR_EL1) & SCTLR_M) !== 0n || addr < vbar || addr >= vbar + 0x800)
      return false;
    const esr = Number(this.uc.getReg(h, R_ESR_EL1)) >>> 0;
    const elr = Number(this.uc.getReg(h, R_ELR_EL1));
    const far = Number(this.uc.getReg(h, R_FAR_EL1));
    this.stopWithFault({
      cpu: k,
      pc: elr,
      esr,
      far,
      what: `${describeEsr(esr)}, and VBAR_EL1 (${hex(vbar)}) has no vectors in RAM`,
    });
    return true;
  }

  /**
   * Enters the guest's synchronous exception vector for an external abort (an access to an
   * address where nothing is mapped: Unicorn stops instead of raising it). With the MMU off, a
   * guest with no vectors (VBAR_EL1 outside RAM) or faulting in its vectors (it would loop
   * forever) ends the run with a report; with the MMU on, VBAR_EL1 is virtual and QEMU's rules hold.
   */
  private deliverSync(k: number, elr: number, esr: number, far: number, what: string): void {
    const h = this.handles[k];
    const vbar = Number(this.uc.getReg(h, R_VBAR_EL1));
    const fault = { cpu: k, pc: elr, esr: esr >>> 0, far, what };
    if ((this.uc.getReg(h, R_SCTLR_EL1) & SCTLR_M) !== 0n) {
      this.uc.enterException(h, VECTOR_SYNC, elr, esr >>> 0, far);
      this.syncExceptions++;
      return;
    }
    if (!this.inRam(vbar, 0x800)) {
      this.stopWithFault({ ...fault, what: `${what}, and VBAR_EL1 (${hex(vbar)}) has no vectors in RAM` });
      return;
    }
    if (elr >= vbar && elr < vbar + 0x800) {
      this.stopWithFault({
        ...fault,
        what: `${what} inside the exception vectors (a fault while handling one)`,
      });
      return;
    }
    this.uc.enterException(h, VECTOR_SYNC, elr, esr >>> 0, far);
    this.syncExceptions++;
  }

  // ---- PSCI and semihosting ----

  private psciHost(caller: number) {
    return {
      cpuOf: (mpidr: bigint): number => {
        const m = Number(mpidr & 0xff00ffffffn);
        for (let k = 0; k < this.smp; k++) if ((mpidrOf(k) & 0xffffff) === m) return k;
        return -1;
      },
      isOn: (cpu: number) => this.state[cpu] !== CPU_OFF,
      cpuOn: (cpu: number, entry: bigint, context: bigint) => this.resetCpu(cpu, entry, context),
      cpuOff: (cpu: number) => {
        this.state[cpu] = CPU_OFF;
        this.vcpus[cpu].setOnline(false);
        this.uc.stop(this.handles[cpu]);
      },
      suspend: (cpu: number) => {
        if (!this.vcpus[cpu].wfiPoll()) this.state[cpu] = CPU_WFI;
        this.uc.stop(this.handles[cpu]);
      },
      systemOff: () => this.endRun(caller, 'system-off'),
      systemReset: () => this.endRun(caller, 'system-reset'),
    };
  }

  private semihostingHost() {
    return {
      read: (addr: number, into: Uint8Array) => this.readRam(addr, into),
      write: (addr: number, bytes: Uint8Array) => {
        if (!this.inRam(addr, bytes.length)) return false;
        this.ram.set(bytes, addr - VIRT_RAM_BASE);
        return true;
      },
      output: (bytes: Uint8Array) => this.output(bytes),
      exit: (status: number) => this.stopWith('semihosting-exit', status),
      cmdline: this.append,
      heap: {
        base: this.image ? this.image.imageHigh : VIRT_RAM_BASE,
        limit: VIRT_RAM_BASE + this.ramSize,
        stackBase: VIRT_RAM_BASE + this.ramSize,
        stackLimit: VIRT_RAM_BASE + this.ramSize - 0x100000,
      },
      clockCs: () => Math.floor((performance.now() - this.startMs) / 10),
    };
  }

  private endRun(k: number, reason: StopReason): void {
    this.stopWith(reason, this.exitLineStatus ?? 0);
    this.uc.stop(this.handles[k]);
  }

  /** Powers a vCPU on at `entry`: EL1h, DAIF masked, MMU off (QEMU's reset state), x0 = arg. */
  private resetCpu(k: number, entry: bigint, x0: bigint): void {
    const h = this.handles[k];
    for (let r = 0; r < 31; r++) this.uc.setReg(h, r, 0);
    this.uc.setReg(h, 0, x0);
    this.uc.setReg(h, R_SCTLR_EL1, this.resetSctlr);
    this.uc.setReg(h, R_PSTATE, PSTATE_RESET);
    this.uc.setReg(h, R_PC, entry);
    this.state[k] = CPU_RUNNING;
    this.vcpus[k].setOnline(true);
  }

  // ---- Output, input, memory ----

  private output(bytes: Uint8Array): void {
    this.write(bytes);
    // Track the last line for the `EXIT: STATUS=n` convention (kvmtool's).
    const text = this.decoder.decode(bytes, { stream: true });
    let start = 0;
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', start)) {
      this.endLine(this.lineBuf + text.slice(start, i));
      this.lineBuf = '';
      start = i + 1;
    }
    this.lineBuf += text.slice(start);
    // A guest that never prints a newline must not grow host memory without bound.
    if (this.lineBuf.length > 4096) this.lineBuf = this.lineBuf.slice(-256);
  }

  private endLine(line: string): void {
    const m = EXIT_LINE.exec(line.replace(/\r$/, ''));
    if (m) this.exitLineStatus = Number(m[1]) & 0xff;
  }

  private flushLine(): void {
    if (this.lineBuf) this.endLine(this.lineBuf);
  }

  private feedInput(): void {
    const n = Math.min(this.uart.rxSpace(), this.pendingInput.length);
    if (n > 0) this.uart.pushInput(this.pendingInput.splice(0, n));
  }

  private inRam(addr: number, len: number): boolean {
    return addr >= VIRT_RAM_BASE && addr + len <= VIRT_RAM_BASE + this.ramSize;
  }

  private readRam(addr: number, into: Uint8Array): boolean {
    if (!this.inRam(addr, into.length)) return false;
    into.set(this.ram.subarray(addr - VIRT_RAM_BASE, addr - VIRT_RAM_BASE + into.length));
    return true;
  }

  // ---- Ending ----

  private stopWith(reason: StopReason, status: number): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.status = status;
  }

  private stopWithFault(fault: MachineFault): void {
    if (this.reason !== undefined) return;
    this.fault = fault;
    this.stopWith('fault', STATUS_FAULT);
    this.uc.stop(this.handles[fault.cpu]);
  }

  private report(): RunReport {
    const reason = this.reason ?? 'time-limit';
    return {
      reason,
      status: this.status,
      message: reportMessage(reason, this.status, this.timeLimitMs, this.fault, () => this.describeCpus()),
      fault: this.fault,
      elapsedMs: performance.now() - this.startMs,
      idleMs: this.idleMs,
      tlbFlushes: this.ios.map((io) => io[IO_TLB_FLUSHES]),
      tbFlushes: this.ios.map((io) => io[IO_TB_FLUSHES]),
      spinYields: this.ios.map((io) => io[IO_SPINS]),
      codePages: this.ios.map((io) => io[IO_CODE_PAGES]),
      tlbPages: this.ios.map((io) => io[IO_TLB_PAGES]),
      blocks: this.blocks.slice(),
      syncExceptions: this.syncExceptions,
      gic: this.gic.stats(),
    };
  }

  /** Where each vCPU is, for reports. */
  private describeCpus(): string {
    const parts: string[] = [];
    for (let k = 0; k < this.smp; k++) {
      const st = this.state[k] === CPU_OFF ? 'off' : this.state[k] === CPU_WFI ? 'in WFI' : 'running';
      parts.push(`vCPU ${k} ${st} at PC ${hex(this.uc.getReg(this.handles[k], R_PC))}`);
    }
    return parts.join(', ');
  }

  /** The counter as the guest reads it (for tests and reports). */
  counter(): number {
    return this.gic.counter();
  }
}

/** QEMU virt's MPIDR for CPU k with a GICv3: Aff0 = k (16 CPUs per cluster), bit 31 RES1. */
export function mpidrOf(k: number): number {
  return (0x80000000 | ((k >> 4) << 8) | (k & 15)) >>> 0;
}

function isPhysTimerReg(enc: number): boolean {
  return enc === CNTPCT_EL0 || enc === CNTP_CTL_EL0 || enc === CNTP_CVAL_EL0 || enc === CNTP_TVAL_EL0;
}

function defaultOutput(bytes: Uint8Array): void {
  process.stdout.write(bytes);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
