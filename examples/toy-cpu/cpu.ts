/**
 * A toy CPU: a small register machine interpreted in TypeScript, standing in for an emulator's
 * own AArch64 (or any) CPU model. It is wired to vgic through the public contract only, as an
 * outside CPU would be (README "Wiring vgic into your CPU"):
 *
 * - its IRQ input follows the vCPU's output line (`VCpu.onOutputLine`), and it takes the exception
 *   at an instruction boundary when its own PSTATE.I is clear;
 * - loads and stores to the GIC's frames trap to `VCpu.mmioRead`/`mmioWrite`; to its RAM they go
 *   straight to the bytes vgic shares (`Vgic.memory`); to its own devices, to them;
 * - MRS/MSR of ICC_* and CNT* registers trap to `VCpu.readSysreg`/`writeSysreg`;
 * - at its instruction boundaries it calls `VCpu.step()` when vgic asks for an entry
 *   (`VCpu.entryRequested`: an injection, a kick) and every few instructions for the timer;
 * - WFI: when no interrupt is pending it lets the board run its devices until one is.
 */

import { OUTPUT_IRQ, type OutputLine, type VCpu } from 'vgic';

/** One instruction: an opcode and up to three operands (registers are numbers 0..7). */
export type Insn =
  | { op: 'movi'; rd: number; imm: number }
  | { op: 'addi'; rd: number; rn: number; imm: number }
  | { op: 'ldr'; rd: number; addr: number }
  | { op: 'str'; rs: number; addr: number }
  | { op: 'mrs'; rd: number; sysreg: number }
  | { op: 'msr'; sysreg: number; rs: number }
  | { op: 'beq'; rn: number; imm: number; target: string }
  | { op: 'bge'; rn: number; imm: number; target: string }
  | { op: 'b'; target: string }
  | { op: 'label'; name: string }
  | { op: 'daifclr' }
  | { op: 'wfi' }
  | { op: 'eret' }
  | { op: 'halt' };

/** A device of the board (not the GIC): a range of addresses the CPU's loads and stores reach. */
export interface BoardDevice {
  readonly base: number;
  readonly size: number;
  read(offset: number): number;
  write(offset: number, value: number): void;
}

/** What the board does for the CPU between instructions: time, devices, waiting. */
export interface Board {
  /** Called every `tickEvery` instructions with the instructions run since the last call. */
  tick(instructions: number): void;
  /** WFI with nothing pending: run the devices until one may have raised something; false: nothing ever will. */
  idle(): boolean;
}

const TIMER_POLL = 16;

export class ToyCpu {
  readonly regs = new Float64Array(8);
  pc = 0;
  /** PSTATE.I: IRQs masked (reset state), as at EL1. */
  masked = true;
  halted = false;
  instructions = 0;
  irqsTaken = 0;
  /** The IRQ input, driven by vgic's output line. */
  private irq = false;
  private elr = -1;
  private readonly code: Insn[];
  private readonly labels = new Map<string, number>();
  private readonly ram: Uint8Array;
  private readonly ramView: DataView;
  private readonly ramBase: number;
  private readonly vcpu: VCpu;
  private readonly devices: readonly BoardDevice[];
  private readonly board: Board;
  /** The label IRQ exceptions go to. */
  private readonly vector: string;

  constructor(vcpu: VCpu, program: Insn[], devices: readonly BoardDevice[], board: Board, vector: string) {
    this.vcpu = vcpu;
    this.devices = devices;
    this.board = board;
    this.vector = vector;
    this.code = program;
    program.forEach((insn, i) => {
      if (insn.op === 'label') this.labels.set(insn.name, i);
    });
    // Guest RAM is the buffer vgic reads its tables from: one copy, shared.
    const region = vcpu.gic.memory.regions[0];
    this.ram = region.bytes;
    this.ramView = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.bytes.byteLength);
    this.ramBase = region.base;
    vcpu.onOutputLine((line: OutputLine) => {
      this.irq = line === OUTPUT_IRQ;
    });
    this.irq = vcpu.outputLine() === OUTPUT_IRQ;
  }

  /** Runs until HALT or `maxInstructions`. */
  run(maxInstructions: number): void {
    const vcpu = this.vcpu;
    let sinceTick = 0;
    while (!this.halted && this.instructions < maxInstructions) {
      // Instruction boundary: an entry vgic asked for (it updates the output line), the timer.
      if (vcpu.entryRequested) vcpu.step();
      if (this.irq && !this.masked) this.takeIrq();
      this.execute(this.code[this.pc]);
      this.instructions++;
      if (++sinceTick === TIMER_POLL) {
        this.board.tick(sinceTick);
        sinceTick = 0;
        vcpu.step(); // an armed virtual timer whose deadline passed fires here
      }
    }
  }

  /** IRQ exception entry: save the return address, mask IRQs, go to the vector. */
  private takeIrq(): void {
    this.elr = this.pc;
    this.masked = true;
    this.irqsTaken++;
    this.pc = this.labels.get(this.vector) ?? 0;
  }

  private target(name: string): number {
    const t = this.labels.get(name);
    if (t === undefined) throw new Error(`no label ${name}`);
    return t;
  }

  private execute(insn: Insn): void {
    const r = this.regs;
    let next = this.pc + 1;
    switch (insn.op) {
      case 'label':
        break;
      case 'movi':
        r[insn.rd] = insn.imm;
        break;
      case 'addi':
        r[insn.rd] = r[insn.rn] + insn.imm;
        break;
      case 'ldr':
        r[insn.rd] = this.load(insn.addr);
        break;
      case 'str':
        this.store(insn.addr, r[insn.rs]);
        break;
      case 'mrs':
        // A trapped system register read (ICC_IAR1_EL1, CNTVCT_EL0...): vgic emulates it.
        r[insn.rd] = this.vcpu.readSysreg(insn.sysreg) + this.vcpu.hi * 2 ** 32;
        break;
      case 'msr': {
        const v = r[insn.rs];
        this.vcpu.writeSysreg(insn.sysreg, (v % 2 ** 32) >>> 0, Math.floor(v / 2 ** 32) >>> 0);
        break;
      }
      case 'beq':
        if (r[insn.rn] === insn.imm) next = this.target(insn.target);
        break;
      case 'bge':
        if (r[insn.rn] >= insn.imm) next = this.target(insn.target);
        break;
      case 'b':
        next = this.target(insn.target);
        break;
      case 'daifclr':
        this.masked = false;
        break;
      case 'wfi':
        // Nothing to take: let the board run its devices until something may be pending.
        // WFI wakes on a pending interrupt whatever PSTATE.I says.
        while (!this.irq && !this.vcpu.hasPendingIrq()) {
          if (this.vcpu.entryRequested || this.vcpu.wfiSleepMs() === 0) {
            this.vcpu.step();
            continue;
          }
          if (!this.board.idle()) {
            this.halted = true;
            break;
          }
        }
        break;
      case 'eret':
        next = this.elr;
        this.masked = false;
        // The IRQ input is a level: if it is still asserted, it is taken again at the boundary.
        this.irq = this.vcpu.outputLine() === OUTPUT_IRQ;
        break;
      case 'halt':
        this.halted = true;
        break;
    }
    this.pc = next;
  }

  private load(addr: number): number {
    const off = addr - this.ramBase;
    if (off >= 0 && off + 4 <= this.ram.byteLength) return this.ramView.getUint32(off, true);
    const dev = this.device(addr);
    if (dev !== undefined) return dev.read(addr - dev.base);
    // Everything else (the GIC's frames, or nothing) is vgic's: a trapped MMIO load.
    return this.vcpu.mmioRead(addr, 4);
  }

  private store(addr: number, value: number): void {
    const off = addr - this.ramBase;
    if (off >= 0 && off + 4 <= this.ram.byteLength) {
      this.ramView.setUint32(off, value >>> 0, true);
      return;
    }
    const dev = this.device(addr);
    if (dev !== undefined) dev.write(addr - dev.base, value >>> 0);
    else this.vcpu.mmioWrite(addr, 4, value >>> 0);
  }

  private device(addr: number): BoardDevice | undefined {
    for (const d of this.devices) if (addr >= d.base && addr < d.base + d.size) return d;
    return undefined;
  }
}
