/**
 * Arm semihosting (Arm "Semihosting for AArch32 and AArch64" v2), the calls bare-metal test
 * programs use: `HLT #0xF000` with the operation in W0 and a parameter (or a parameter block's
 * address) in X1. Unicorn reports the HLT as an undefined instruction; the machine recognises the
 * encoding and comes here. Every guest pointer is bounds-checked through `mem`.
 *
 * Who may call: the machine's exit handler, on the machine's thread.
 */

/** HLT #0xF000, the AArch64 semihosting trap. */
export const SEMIHOSTING_HLT = 0xd45e0000;

export const SYS_WRITEC = 0x03;
export const SYS_WRITE0 = 0x04;
export const SYS_WRITE = 0x05;
export const SYS_CLOCK = 0x10;
export const SYS_TIME = 0x11;
export const SYS_ERRNO = 0x13;
export const SYS_GET_CMDLINE = 0x15;
export const SYS_HEAPINFO = 0x16;
export const SYS_EXIT = 0x18;
export const SYS_EXIT_EXTENDED = 0x20;

/** ADP_Stopped_ApplicationExit: the reason code whose subcode is the exit status. */
export const ADP_STOPPED_APPLICATION_EXIT = 0x20026;

/** Longest SYS_WRITE0 string or SYS_WRITE buffer copied per call (a guest chooses the length). */
const MAX_WRITE = 1 << 20;

export interface SemihostingHost {
  /** Reads guest RAM; false when [addr, addr + into.length) is not RAM. */
  read(addr: number, into: Uint8Array): boolean;
  write(addr: number, bytes: Uint8Array): boolean;
  /** Console output (fd 1 and 2, SYS_WRITEC, SYS_WRITE0). */
  output(bytes: Uint8Array): void;
  exit(status: number): void;
  readonly cmdline: string;
  readonly heap: {
    readonly base: number;
    readonly limit: number;
    readonly stackBase: number;
    readonly stackLimit: number;
  };
  /** Centiseconds since the run started. */
  clockCs(): number;
}

const scratch = new Uint8Array(32);
const view = new DataView(scratch.buffer);

function readU64(host: SemihostingHost, addr: number): number | undefined {
  const b = scratch.subarray(0, 8);
  if (!host.read(addr, b)) return undefined;
  return view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
}

/** Executes a semihosting call; returns the new X0 (-1 for failure, as the spec's convention). */
export function semihostingCall(host: SemihostingHost, op: number, param: bigint): number {
  const p = Number(param & 0xffffffffffffn);
  switch (op) {
    case SYS_WRITEC: {
      const b = scratch.subarray(0, 1);
      if (host.read(p, b)) host.output(b.slice());
      return 0;
    }
    case SYS_WRITE0: {
      const out: number[] = [];
      const b = scratch.subarray(0, 1);
      for (let a = p; out.length < MAX_WRITE; a++) {
        if (!host.read(a, b) || b[0] === 0) break;
        out.push(b[0]);
      }
      host.output(Uint8Array.from(out));
      return 0;
    }
    case SYS_WRITE: {
      const fd = readU64(host, p);
      const buf = readU64(host, p + 8);
      const len = readU64(host, p + 16);
      if (fd === undefined || buf === undefined || len === undefined) return -1;
      if (fd !== 1 && fd !== 2) return len;
      const n = Math.min(len, MAX_WRITE);
      const bytes = new Uint8Array(n);
      if (!host.read(buf, bytes)) return len;
      host.output(bytes);
      return len - n; // bytes not written
    }
    case SYS_CLOCK:
      return host.clockCs();
    case SYS_TIME:
      return Math.floor(Date.now() / 1000);
    case SYS_ERRNO:
      return 0;
    case SYS_GET_CMDLINE: {
      const buf = readU64(host, p);
      const size = readU64(host, p + 8);
      if (buf === undefined || size === undefined) return -1;
      const text = new TextEncoder().encode(host.cmdline);
      if (text.length + 1 > size) return -1;
      const out = new Uint8Array(text.length + 1);
      out.set(text);
      if (!host.write(buf, out)) return -1;
      const len = new Uint8Array(8);
      new DataView(len.buffer).setUint32(0, text.length, true);
      host.write(p + 8, len);
      return 0;
    }
    case SYS_HEAPINFO: {
      const blockAddr = readU64(host, p);
      if (blockAddr === undefined) return -1;
      const out = new Uint8Array(32);
      const dv = new DataView(out.buffer);
      const h = host.heap;
      [h.base, h.limit, h.stackBase, h.stackLimit].forEach((v, i) => {
        dv.setUint32(i * 8, v >>> 0, true);
        dv.setUint32(i * 8 + 4, Math.floor(v / 2 ** 32), true);
      });
      return host.write(blockAddr, out) ? 0 : -1;
    }
    case SYS_EXIT:
    case SYS_EXIT_EXTENDED: {
      // AArch64: X1 points at {reason, subcode}; any reason but ApplicationExit is a failure (QEMU: 1).
      const reason = readU64(host, p);
      const subcode = readU64(host, p + 8);
      host.exit(reason === ADP_STOPPED_APPLICATION_EXIT ? (subcode ?? 0) & 0xff : 1);
      return 0;
    }
    default:
      return -1;
  }
}
