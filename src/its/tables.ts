/**
 * The ITS tables in guest memory (GIC IHI 0069 §5.2: Device table, ITTs, Collection table) and
 * their entry formats, which are KVM's ITS table ABI rev 0 (arch/its.ts) both live and when saved.
 *
 * The Device table and the ITTs *are* vgic's storage for device and event mappings: the guest gave
 * that memory to the ITS for exactly this, so no guest command grows host memory. Collections live
 * in the state (itsColl, 64K entries per ITS, allocated at creation) and reach guest memory only on
 * save. Every address comes from the guest and is checked: an entry outside RAM is "not mapped".
 *
 * Who may call: its/ with the ITS's its_lock held (table contents are guarded by it).
 * Results of reads go to module scratch (no allocation per walk).
 */

import { paFromWords } from '../arch/addr.ts';
import {
  ABI_DTE_HI_VALID,
  ABI_L1E_HI_VALID,
  GITS_BASER_HI_INDIRECT,
  GITS_BASER_HI_VALID,
  GITS_BASER_LO_SIZE_MASK,
  ITS_DEVBITS,
  ITS_DTE_SIZE,
  ITS_EVENT_IDBITS,
  ITS_ITE_SIZE,
  ITS_TABLE_PAGE,
} from '../arch/its.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  type GicState,
  I_BASER0_HI,
  I_BASER0_LO,
  ITS_DEVICE_WORDS,
  ITS_DEVICES,
  ITS_STRIDE,
} from '../state/layout.ts';

/** Scratch for 64-bit entries. */
export const entry = new Uint32Array(2);

/** A level-1 entry's 64K-aligned level-2 page (PA 47:16), or -1 if it sets PA bits 51:48. */
export function l2PageAddr(lo: number, hi: number): number {
  if (hi & 0xf0000) return -1;
  return paFromWords(lo, hi, 0xffff0000, 0xffff);
}

/** BASER<n>'s table address (64K-aligned), or -1. */
export function baserAddr(s: GicState, k: number, n: 0 | 1 | 2): number {
  const i = k * ITS_STRIDE + I_BASER0_LO + 2 * n;
  // With 64K pages, PA bits 51:48 sit in bits 15:12; the high word's 19:16 is Entry_Size.
  if (s.its[i] & 0xf000) return -1;
  return paFromWords(s.its[i], s.its[i + 1], 0xffff0000, 0xffff);
}

/** BASER<n>'s table size in bytes ((Size + 1) 64K pages). */
export function baserBytes(s: GicState, k: number, n: 0 | 1 | 2): number {
  return ((s.its[k * ITS_STRIDE + I_BASER0_LO + 2 * n] & GITS_BASER_LO_SIZE_MASK) + 1) * ITS_TABLE_PAGE;
}

export function baserValid(s: GicState, k: number, n: 0 | 1 | 2): boolean {
  return (s.its[k * ITS_STRIDE + I_BASER0_HI + 2 * n] & GITS_BASER_HI_VALID) !== 0;
}

/**
 * vgic_its_check_id: the guest address of entry `id` of table BASER<n> (flat or two-level), or -1
 * if the ID is beyond the table, its level-1 entry is invalid, or the entry is not in RAM.
 */
export function tableEntryAddr(s: GicState, mem: GuestMemory, k: number, n: 0 | 1 | 2, id: number): number {
  if (!baserValid(s, k, n) || id < 0 || id >= 2 ** ITS_DEVBITS) return -1;
  const base = baserAddr(s, k, n);
  if (base < 0) return -1;
  const bytes = baserBytes(s, k, n);
  let at: number;
  if ((s.its[k * ITS_STRIDE + I_BASER0_HI + 2 * n] & GITS_BASER_HI_INDIRECT) === 0) {
    if (id >= bytes / ITS_DTE_SIZE) return -1;
    at = base + id * ITS_DTE_SIZE;
  } else {
    const perPage = ITS_TABLE_PAGE / ITS_DTE_SIZE;
    const l1 = Math.floor(id / perPage);
    if (l1 >= bytes / 8) return -1;
    if (!mem.readWords(base + l1 * 8, entry) || (entry[1] & ABI_L1E_HI_VALID) === 0) return -1;
    const l2 = l2PageAddr(entry[0], entry[1]);
    if (l2 < 0) return -1;
    at = l2 + (id % perPage) * ITS_DTE_SIZE;
  }
  return mem.find(at, 8) === undefined ? -1 : at;
}

// ---- DTE: |63 V|62:49 next|48:5 ITT_addr[51:8]|4:0 Size-1| ----

/** Last DTE read: ITT address and EventID bits. */
export let dteItt = 0;
export let dteBits = 0;

/**
 * Reads the DTE at `at`; true if valid (dteItt / dteBits set). A Size beyond the 16 EventID bits
 * MAPD accepts can only come from a guest writing its table: invalid, so no walk is ever longer
 * than 2^16 entries.
 */
export function readDte(mem: GuestMemory, at: number): boolean {
  if (!mem.readWords(at, entry) || (entry[1] & ABI_DTE_HI_VALID) === 0) return false;
  const bits = (entry[0] & 0x1f) + 1;
  if (bits > ITS_EVENT_IDBITS) return false;
  const field = (entry[0] >>> 5) + (entry[1] & 0x1ffff) * 2 ** 27; // ITT_addr[51:8]
  dteItt = field * 256;
  dteBits = bits;
  return true;
}

/** Is DeviceID `devid` mapped on ITS k (the device-list bitmap)? */
export function deviceLive(s: GicState, k: number, devid: number): boolean {
  return (s.itsDevLive[k * ITS_DEVICE_WORDS + (devid >>> 5)] & (1 << (devid & 31))) !== 0;
}

export function setDeviceLive(s: GicState, k: number, devid: number, live: boolean): void {
  const i = k * ITS_DEVICE_WORDS + (devid >>> 5);
  if (live) s.itsDevLive[i] |= 1 << (devid & 31);
  else s.itsDevLive[i] &= ~(1 << (devid & 31));
}

/** Forgets every device of ITS k (reset, BASER0 made invalid): guest memory is not touched. */
export function clearDevices(s: GicState, k: number): void {
  s.itsDevLive.fill(0, k * ITS_DEVICE_WORDS, (k + 1) * ITS_DEVICE_WORDS);
  s.itsDevEvents.fill(0, k * ITS_DEVICES, (k + 1) * ITS_DEVICES);
}

/** The next mapped DeviceID of ITS k at or after `from`, or -1 (a walk of the device bitmap). */
export function nextLiveDevice(s: GicState, k: number, from: number): number {
  const base = k * ITS_DEVICE_WORDS;
  let w = from >>> 5;
  if (w >= ITS_DEVICE_WORDS) return -1;
  let bits = s.itsDevLive[base + w] & (-1 << (from & 31));
  while (bits === 0) {
    if (++w >= ITS_DEVICE_WORDS) return -1;
    bits = s.itsDevLive[base + w];
  }
  return (w << 5) | (31 - Math.clz32(bits & -bits));
}

/** itsDevEvents of (ITS k, devid): the valid ITEs its ITT holds. */
export const devEventsAt = (k: number, devid: number): number => k * ITS_DEVICES + devid;

/** The DTE address of a mapped device (its DTE read: dteItt / dteBits), or -1. */
export function liveDte(s: GicState, mem: GuestMemory, k: number, devid: number): number {
  if (devid < 0 || devid >= 2 ** ITS_DEVBITS || !deviceLive(s, k, devid)) return -1;
  const at = tableEntryAddr(s, mem, k, 0, devid);
  return at >= 0 && readDte(mem, at) ? at : -1;
}

export function writeDte(mem: GuestMemory, at: number, itt: number, bits: number, next: number): boolean {
  const field = itt / 256;
  const lo = (((field % 2 ** 27) << 5) | (bits - 1)) >>> 0;
  const hi = (ABI_DTE_HI_VALID | (next << 17) | (Math.floor(field / 2 ** 27) & 0x1ffff)) >>> 0;
  return mem.writeWords(at, lo, hi);
}

// ---- ITE: |63:48 next|47:16 pINTID|15:0 ICID| ----

export let itePintid = 0;
export let iteIcid = 0;

/** Reads the ITE at `at`; true if it maps an interrupt (pINTID != 0). */
export function readIte(mem: GuestMemory, at: number): boolean {
  if (!mem.readWords(at, entry)) return false;
  itePintid = ((entry[0] >>> 16) | ((entry[1] & 0xffff) << 16)) >>> 0;
  iteIcid = entry[0] & 0xffff;
  return itePintid !== 0;
}

export function writeIte(mem: GuestMemory, at: number, pintid: number, icid: number, next: number): boolean {
  return mem.writeWords(at, ((pintid << 16) | icid) >>> 0, ((pintid >>> 16) | (next << 16)) >>> 0);
}

/** Address of ITE `eventid` in the ITT of the last DTE read. */
export const iteAddr = (eventid: number): number => dteItt + eventid * ITS_ITE_SIZE;

// ---- Scanning an ITT for its valid ITEs, with one range lookup instead of one per entry ----

let scanItt = 0;
let scanEnd = 0;
let scanNext = 0;
let scanView: DataView | undefined;

/** Starts a scan of the 2^bits entries of the ITT at `itt` (iteScanNext gives the valid ones). */
export function iteScanStart(mem: GuestMemory, itt: number, bits: number): void {
  const len = 2 ** bits * ITS_ITE_SIZE;
  const all = mem.bytesAt(itt, len);
  scanView = all === undefined ? undefined : new DataView(all.buffer, all.byteOffset, len);
  scanItt = itt;
  scanEnd = 2 ** bits;
  scanNext = 0;
}

/**
 * The EventID of the next valid ITE (pINTID != 0) of the scan, its words in `entry`, or -1 at the
 * end. Entries outside RAM are skipped.
 */
export function iteScanNext(mem: GuestMemory): number {
  const v = scanView;
  while (scanNext < scanEnd) {
    const e = scanNext++;
    let lo: number;
    let hi: number;
    if (v !== undefined) {
      lo = v.getUint32(e * ITS_ITE_SIZE, true);
      hi = v.getUint32(e * ITS_ITE_SIZE + 4, true);
    } else {
      if (!mem.readWords(scanItt + e * ITS_ITE_SIZE, entry)) continue;
      lo = entry[0];
      hi = entry[1];
    }
    if (lo >>> 16 !== 0 || (hi & 0xffff) !== 0) {
      entry[0] = lo;
      entry[1] = hi;
      return e;
    }
  }
  return -1;
}

/** Entries the current scan has read so far (its cost). */
export const iteScanRead = (): number => scanNext;

/** Zeroes the part of an ITT that is in RAM (a new mapping starts empty, whatever the memory held). */
export function clearItt(mem: GuestMemory, itt: number, bits: number): void {
  const len = 2 ** bits * ITS_ITE_SIZE;
  if (mem.fillZero(itt, len)) return;
  for (let at = itt; at < itt + len; at += ITS_ITE_SIZE) mem.writeWords(at, 0, 0);
}
