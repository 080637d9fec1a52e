/**
 * The Arm PrimeCell UART (PL011, TRM DDI 0183) as QEMU 7.2's `virt` board models it
 * (hw/char/pl011.c): the register file and its values, the receive FIFO, and one combined
 * interrupt line (UARTINTR: any bit of UARTMIS set). Where QEMU departs from the TRM this does too,
 * so a guest sees the same UART on both machines:
 *  - transmit is instant: a DR write goes straight to the output sink, TXFE stays 1, TXFF and BUSY
 *    stay 0, and TXRIS is set on every DR write (and is 0 after reset until the first one);
 *  - the receive interrupt fires at one character whatever IFLS says (QEMU's read_trigger is 1:
 *    with no receive-timeout interrupt modelled, a higher level would strand characters), so RTRIS
 *    is never set;
 *  - UARTCR's enable bits and loopback are stored but not acted on; DMA is not modelled;
 *  - registers are decoded by offset >> 2 for any access size: a 1- or 2-byte access reads the
 *    whole register and keeps the low bytes, an 8-byte access is two 4-byte ones (QEMU's memory
 *    core splits it), unknown offsets read as zero and ignore writes.
 * One addition: pushInput() into a full FIFO drops the byte, sets UARTRSR.OE and RIS.OEIS and
 * counts it (QEMU never overflows: its chardev waits for room). rxSpace() lets the host pace input
 * the way QEMU's can_receive does.
 *
 * Who may call: the machine's MMIO dispatch (read/write) and its console (pushInput), from one
 * thread; getState()/setState() for snapshots.
 */

import { VgicError } from '../arch/errors.ts';

export const PL011_SIZE = 0x1000;
export const PL011_FIFO_DEPTH = 16;

/** Register offsets (TRM 3.2). */
export const PL011Reg = {
  DR: 0x000,
  RSR_ECR: 0x004,
  FR: 0x018,
  ILPR: 0x020,
  IBRD: 0x024,
  FBRD: 0x028,
  LCR_H: 0x02c,
  CR: 0x030,
  IFLS: 0x034,
  IMSC: 0x038,
  RIS: 0x03c,
  MIS: 0x040,
  ICR: 0x044,
  DMACR: 0x048,
  PERIPH_ID0: 0xfe0,
  CELL_ID3: 0xffc,
} as const;

/** UARTFR bits. */
export const PL011Flag = {
  BUSY: 1 << 3,
  RXFE: 1 << 4,
  TXFF: 1 << 5,
  RXFF: 1 << 6,
  TXFE: 1 << 7,
} as const;

/** UARTRIS / UARTMIS / UARTIMSC / UARTICR bits. */
export const PL011Int = {
  RI: 1 << 0,
  CTS: 1 << 1,
  DCD: 1 << 2,
  DSR: 1 << 3,
  RX: 1 << 4,
  TX: 1 << 5,
  RT: 1 << 6,
  FE: 1 << 7,
  PE: 1 << 8,
  BE: 1 << 9,
  OE: 1 << 10,
} as const;

/** UARTRSR / UARTECR bits. */
export const PL011Rsr = { FE: 1 << 0, PE: 1 << 1, BE: 1 << 2, OE: 1 << 3 } as const;

const LCR_H_FEN = 1 << 4;

/** PeriphID0..3 then CellID0..3, as QEMU's pl011_id_arm (PL011 r1p5). */
export const PL011_ID: readonly number[] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/** Everything a snapshot needs; plain JSON. Mirrors QEMU's vmstate_pl011. */
export interface PL011State {
  flags: number;
  lcr: number;
  rsr: number;
  cr: number;
  dmacr: number;
  intEnabled: number;
  intLevel: number;
  /** The receive ring, 16 slots; readPos and readCount select the live ones. */
  readFifo: number[];
  readPos: number;
  readCount: number;
  ilpr: number;
  ibrd: number;
  fbrd: number;
  ifl: number;
  overruns: number;
}

export interface PL011Options {
  /** Transmitted bytes (one per DR write). */
  output?: (bytes: Uint8Array) => void;
  /** The interrupt line; called when the level changes. */
  irq?: (level: boolean) => void;
}

export class PL011 {
  private s: PL011State = PL011.resetState();
  private level = false;
  private readonly output: (bytes: Uint8Array) => void;
  private readonly irq: (level: boolean) => void;

  constructor(opts: PL011Options = {}) {
    this.output = opts.output ?? (() => {});
    this.irq = opts.irq ?? (() => {});
  }

  private static resetState(): PL011State {
    return {
      flags: PL011Flag.RXFE | PL011Flag.TXFE,
      lcr: 0,
      rsr: 0,
      cr: 0x300, // TXE | RXE
      dmacr: 0,
      intEnabled: 0,
      intLevel: 0,
      readFifo: new Array(PL011_FIFO_DEPTH).fill(0),
      readPos: 0,
      readCount: 0,
      ilpr: 0,
      ibrd: 0,
      fbrd: 0,
      ifl: 0x12,
      overruns: 0,
    };
  }

  /** Device reset (the overrun counter is host statistics and survives). */
  reset(): void {
    const overruns = this.s.overruns;
    this.s = PL011.resetState();
    this.s.overruns = overruns;
    this.update();
  }

  /** The interrupt line's level: UARTMIS != 0. */
  get irqLevel(): boolean {
    return this.level;
  }

  /** Bytes dropped because the receive FIFO was full. */
  get overruns(): number {
    return this.s.overruns;
  }

  private depth(): number {
    return this.s.lcr & LCR_H_FEN ? PL011_FIFO_DEPTH : 1;
  }

  /** Room in the receive FIFO: push no more than this to avoid overruns. */
  rxSpace(): number {
    return Math.max(0, this.depth() - this.s.readCount);
  }

  private update(): void {
    const level = (this.s.intLevel & this.s.intEnabled) !== 0;
    if (level !== this.level) {
      this.level = level;
      this.irq(level);
    }
  }

  private resetFifo(): void {
    const s = this.s;
    s.readCount = 0;
    s.readPos = 0;
    s.flags = (s.flags & ~(PL011Flag.RXFF | PL011Flag.TXFF)) | PL011Flag.RXFE | PL011Flag.TXFE;
  }

  /** Characters from the host side of the line. */
  pushInput(bytes: Uint8Array | readonly number[]): void {
    const s = this.s;
    for (const b of bytes) {
      const depth = this.depth();
      if (s.readCount >= depth) {
        s.overruns++;
        s.rsr |= PL011Rsr.OE;
        s.intLevel |= PL011Int.OE;
        continue;
      }
      s.readFifo[(s.readPos + s.readCount) & (depth - 1)] = b & 0xff;
      s.readCount++;
      s.flags &= ~PL011Flag.RXFE;
      if (s.readCount === depth) s.flags |= PL011Flag.RXFF;
      // QEMU's read_trigger is always 1: the RX interrupt rises with the first character.
      if (s.readCount === 1) s.intLevel |= PL011Int.RX;
    }
    this.update();
  }

  read(offset: number, size: number): number {
    checkAccess(offset, size);
    if (size === 8) return this.read32(offset) + this.read32(offset + 4) * 2 ** 32;
    const r = this.read32(offset);
    return size === 4 ? r : r & (2 ** (size * 8) - 1);
  }

  write(offset: number, size: number, value: number): void {
    checkAccess(offset, size);
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (size * 8)) {
      throw new VgicError('INVALID_ARGUMENT', `PL011 ${size}-byte write value out of range: ${value}`);
    }
    if (size === 8) {
      this.write32(offset, value % 2 ** 32);
      this.write32(offset + 4, Math.floor(value / 2 ** 32));
    } else {
      this.write32(offset, value);
    }
  }

  private read32(offset: number): number {
    const s = this.s;
    if (offset >= PL011Reg.PERIPH_ID0 && offset < PL011_SIZE)
      return PL011_ID[(offset - PL011Reg.PERIPH_ID0) >> 2];
    switch (offset >> 2) {
      case PL011Reg.DR >> 2: {
        // As QEMU: an empty FIFO returns the slot under readPos again (stale data, no underflow).
        s.flags &= ~PL011Flag.RXFF;
        const c = s.readFifo[s.readPos];
        if (s.readCount > 0) {
          s.readCount--;
          s.readPos = (s.readPos + 1) & (this.depth() - 1);
        }
        if (s.readCount === 0) {
          s.flags |= PL011Flag.RXFE;
          s.intLevel &= ~PL011Int.RX;
        }
        // The character's error bits land in RSR; OE stays until ECR is written (TRM 3.3.2).
        s.rsr = ((c >> 8) & 0xf) | (s.rsr & PL011Rsr.OE);
        this.update();
        return c;
      }
      case PL011Reg.RSR_ECR >> 2:
        return s.rsr;
      case PL011Reg.FR >> 2:
        return s.flags;
      case PL011Reg.ILPR >> 2:
        return s.ilpr;
      case PL011Reg.IBRD >> 2:
        return s.ibrd;
      case PL011Reg.FBRD >> 2:
        return s.fbrd;
      case PL011Reg.LCR_H >> 2:
        return s.lcr;
      case PL011Reg.CR >> 2:
        return s.cr;
      case PL011Reg.IFLS >> 2:
        return s.ifl;
      case PL011Reg.IMSC >> 2:
        return s.intEnabled;
      case PL011Reg.RIS >> 2:
        return s.intLevel;
      case PL011Reg.MIS >> 2:
        return s.intLevel & s.intEnabled;
      case PL011Reg.DMACR >> 2:
        return s.dmacr;
      default:
        return 0;
    }
  }

  private write32(offset: number, value: number): void {
    const s = this.s;
    switch (offset >> 2) {
      case PL011Reg.DR >> 2:
        this.output(Uint8Array.of(value & 0xff));
        s.intLevel |= PL011Int.TX;
        this.update();
        return;
      case PL011Reg.RSR_ECR >> 2:
        s.rsr = 0;
        return;
      case PL011Reg.ILPR >> 2:
        s.ilpr = value;
        return;
      case PL011Reg.IBRD >> 2:
        s.ibrd = value;
        return;
      case PL011Reg.FBRD >> 2:
        s.fbrd = value;
        return;
      case PL011Reg.LCR_H >> 2:
        // Turning the FIFOs on or off empties them (QEMU; the TRM flushes on disable).
        if ((s.lcr ^ value) & LCR_H_FEN) this.resetFifo();
        s.lcr = value;
        return;
      case PL011Reg.CR >> 2:
        s.cr = value;
        return;
      case PL011Reg.IFLS >> 2:
        s.ifl = value;
        return;
      case PL011Reg.IMSC >> 2:
        s.intEnabled = value;
        this.update();
        return;
      case PL011Reg.ICR >> 2:
        s.intLevel &= ~value;
        this.update();
        return;
      case PL011Reg.DMACR >> 2:
        s.dmacr = value;
        return;
      default:
      // FR, RIS, MIS, the ID registers and unknown offsets: writes ignored.
    }
  }

  getState(): PL011State {
    return { ...this.s, readFifo: [...this.s.readFifo] };
  }

  /** Restores a getState() result; checks it, since a snapshot file is outside our control. */
  setState(state: PL011State): void {
    const u32 = (what: string, v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new VgicError('INVALID_ARGUMENT', `PL011 state ${what} must be a u32, got ${String(v)}`);
      }
      return v;
    };
    if (!Array.isArray(state.readFifo) || state.readFifo.length !== PL011_FIFO_DEPTH) {
      throw new VgicError('INVALID_ARGUMENT', `PL011 state readFifo must have ${PL011_FIFO_DEPTH} entries`);
    }
    const next: PL011State = {
      flags: u32('flags', state.flags),
      lcr: u32('lcr', state.lcr),
      rsr: u32('rsr', state.rsr),
      cr: u32('cr', state.cr),
      dmacr: u32('dmacr', state.dmacr),
      intEnabled: u32('intEnabled', state.intEnabled),
      intLevel: u32('intLevel', state.intLevel),
      readFifo: state.readFifo.map((v, i) => u32(`readFifo[${i}]`, v)),
      readPos: u32('readPos', state.readPos),
      readCount: u32('readCount', state.readCount),
      ilpr: u32('ilpr', state.ilpr),
      ibrd: u32('ibrd', state.ibrd),
      fbrd: u32('fbrd', state.fbrd),
      ifl: u32('ifl', state.ifl),
      overruns: u32('overruns', state.overruns),
    };
    const depth = next.lcr & LCR_H_FEN ? PL011_FIFO_DEPTH : 1;
    if (next.readPos >= depth || next.readCount > depth) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `PL011 state readPos ${next.readPos} / readCount ${next.readCount} do not fit a FIFO of ${depth}`,
      );
    }
    this.s = next;
    this.update();
  }
}

function checkAccess(offset: number, size: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > PL011_SIZE) {
    throw new VgicError(
      'INVALID_ADDRESS',
      `PL011 offset must be in 0..0xfff with the access inside, got ${offset}`,
    );
  }
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    throw new VgicError('INVALID_ADDRESS', `PL011 access size must be 1, 2, 4 or 8, got ${size}`);
  }
}
