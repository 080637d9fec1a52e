/**
 * The Arm PrimeCell real-time clock (PL031, TRM DDI 0224) as QEMU 7.2's `virt` board has it
 * (hw/rtc/pl031.c, at 0x09010000 on SPI 2): a 32-bit seconds counter that starts at the host's
 * wall-clock time, a match register and one interrupt line (RTCINTR = RIS & IMSC). Linux's
 * rtc-pl031 driver reads it at boot to set the system time, so a guest has the date as on QEMU.
 * Like QEMU, RTCCR reads 1 (the counter always runs), RTCLR writes move the counter, and accesses
 * are decoded by offset >> 2 whatever their size; unknown offsets read as zero and ignore writes.
 *
 * Who may call: the machine's MMIO dispatch, from one thread. The match interrupt is evaluated at
 * each access and when the machine polls `update()` (once per slice).
 */

export const PL031_SIZE = 0x1000;

const DR = 0x00;
const MR = 0x04;
const LR = 0x08;
const CR = 0x0c;
const IMSC = 0x10;
const RIS = 0x14;
const MIS = 0x18;
const ICR = 0x1c;
/** PrimeCell identification, 0xfe0..0xffc (QEMU's values: part 0x031, designer Arm, cell B105F00D). */
const IDS = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

export interface Pl031Options {
  /** Host wall-clock seconds (default: Date.now() / 1000). */
  readonly now?: () => number;
  /** Drives the interrupt line. */
  readonly irq: (level: boolean) => void;
}

export class PL031 {
  private readonly now: () => number;
  private readonly irq: (level: boolean) => void;
  /** Counter value = host seconds + offset (RTCLR writes change the offset). */
  private offset = 0;
  private match = 0;
  /** A match was written and has not fired yet (QEMU arms a timer on each RTCMR write). */
  private armed = false;
  private imsc = 0;
  private ris = 0;
  private level = false;

  constructor(opts: Pl031Options) {
    this.now = opts.now ?? (() => Date.now() / 1000);
    this.irq = opts.irq;
  }

  private counter(): number {
    return (Math.floor(this.now()) + this.offset) >>> 0;
  }

  /** Sets RIS once the counter has reached the match value, and drives the line. */
  update(): void {
    if (this.armed && ((this.counter() - this.match) | 0) >= 0) {
      this.armed = false;
      this.ris = 1;
    }
    const level = (this.ris & this.imsc) !== 0;
    if (level !== this.level) {
      this.level = level;
      this.irq(level);
    }
  }

  read(offset: number, size: number): number {
    const reg = offset & ~3;
    let v = 0;
    switch (reg) {
      case DR:
        v = this.counter();
        break;
      case MR:
        v = this.match;
        break;
      case LR:
        v = this.counter();
        break;
      case CR:
        v = 1;
        break;
      case IMSC:
        v = this.imsc;
        break;
      case RIS:
        this.update();
        v = this.ris;
        break;
      case MIS:
        this.update();
        v = this.ris & this.imsc;
        break;
      default:
        if (reg >= 0xfe0 && reg <= 0xffc) v = IDS[(reg - 0xfe0) >> 2];
    }
    if (size < 4) v = (v >>> ((offset & 3) * 8)) & (2 ** (size * 8) - 1);
    return v >>> 0;
  }

  write(offset: number, _size: number, value: number): void {
    switch (offset & ~3) {
      case MR:
        this.match = value >>> 0;
        this.armed = true;
        break;
      case LR:
        this.offset = (value >>> 0) - Math.floor(this.now());
        break;
      case IMSC:
        this.imsc = value & 1;
        break;
      case ICR:
        this.ris &= ~value & 1;
        break;
      default:
        return;
    }
    this.update();
  }
}
