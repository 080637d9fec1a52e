/**
 * Save and restore of an ITS's tables in KVM's ITS table ABI rev 0
 * (Documentation/virt/kvm/devices/arm-vgic-its.rst; KVM vgic-its.c vgic_its_save_tables_v0 /
 * vgic_its_restore_tables_v0): DTEs and ITEs carry `next` offsets, devices are saved in DeviceID
 * order with each ITT before its DTE, then the collections (in ICID order, a zero entry closing a
 * table that is not full). Restore reads the collections first, then the devices.
 *
 * vgic's live tables already are rev-0 entries in guest memory, so saving fills in the `next`
 * fields and writes the collection table; restoring validates everything first (nothing changes if
 * any entry is inconsistent), then rebuilds the LPI store and collections, and clears the entries
 * the restored state does not contain (they are not part of it: KVM would never read them, and
 * vgic's live tables must not see them either).
 *
 * Who may call: device/its.ts with ITS k's cmd_lock and its_lock held, vCPUs stopped.
 */

import { VgicError } from '../arch/errors.ts';
import { ITE_VIRTUAL } from '../arch/gicv4.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  ABI_CTE_HI_VALID,
  ABI_CTE_NOT_MAPPED,
  ABI_DTE_NEXT_MAX,
  ABI_ITE_NEXT_MAX,
  ABI_L1E_HI_VALID,
  GITS_BASER_HI_INDIRECT,
  ITS_CTE_SIZE,
  ITS_DEVBITS,
  ITS_DTE_SIZE,
  ITS_EVENT_IDBITS,
  ITS_ITE_SIZE,
  ITS_TABLE_PAGE,
} from '../arch/its.ts';
import { lpiMap, nextMappedLpi } from '../core/lpi.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { type GicState, I_BASER0_HI, ITS_COLLECTIONS, ITS_STRIDE } from '../state/layout.ts';
import { cacheInvalidateLocked } from './cache.ts';
import {
  baserAddr,
  baserBytes,
  baserValid,
  clearDevices,
  devEventsAt,
  deviceLive,
  dteBits,
  dteItt,
  entry,
  iteScanNext,
  iteScanStart,
  l2PageAddr,
  liveDte,
  nextLiveDevice,
  setDeviceLive,
  tableEntryAddr,
  writeDte,
} from './tables.ts';

const fail = (k: number, what: string): never => {
  throw new VgicError('INVALID_ARGUMENT', `ITS ${k} tables: ${what}`);
};

const hex = (n: number): string => `0x${n.toString(16)}`;

/** DTE address of the device nextSavedDevice found. */
let savedAt = 0;

/** The first mapped device of ITS k at or after `from` whose DTE reads valid (savedAt, dteItt, dteBits set), or -1. */
function nextSavedDevice(s: GicState, mem: GuestMemory, k: number, from: number): number {
  for (let id = nextLiveDevice(s, k, from); id >= 0; id = nextLiveDevice(s, k, id + 1)) {
    const at = liveDte(s, mem, k, id);
    if (at >= 0) {
      savedAt = at;
      return id;
    }
  }
  return -1;
}

/**
 * vgic_its_save_tables_v0: write ITS k's state into its tables in guest memory. The cost follows
 * what is mapped: the device bitmap gives the devices, and an ITT is read only until its device's
 * count of ITEs is met (nothing of a device that maps no event).
 */
export function saveTablesLocked(s: GicState, mem: GuestMemory, k: number): void {
  const used = new Uint8Array(ITS_COLLECTIONS);
  let id = baserValid(s, k, 0) ? nextSavedDevice(s, mem, k, 0) : -1;
  while (id >= 0) {
    const at = savedAt;
    const itt = dteItt;
    const bits = dteBits;
    saveItt(s, mem, k, id, itt, bits, used);
    const nextId = nextSavedDevice(s, mem, k, id + 1);
    const next = nextId >= 0 ? Math.min(nextId - id, ABI_DTE_NEXT_MAX) : 0;
    if (!writeDte(mem, at, itt, bits, next)) fail(k, `DTE of device ${id} is not in RAM`);
    id = nextId;
  }
  saveCollections(s, mem, k, used);
}

/** A device's ITEs, each one's next pointing at the following valid one (the ITT before its DTE). */
function saveItt(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  itt: number,
  bits: number,
  used: Uint8Array,
): void {
  let left = s.itsDevEvents[devEventsAt(k, devid)];
  if (left <= 0) return;
  let prev = -1;
  let prevLo = 0;
  let prevHi = 0;
  iteScanStart(mem, itt, bits);
  for (let e = iteScanNext(mem); e >= 0; e = iteScanNext(mem)) {
    // A virtual ITE (GICv4.1 VMAPTI) names a vPEID, not a collection.
    if ((entry[1] & 0x8000) === 0) used[entry[0] & 0xffff] = 1;
    if (prev >= 0)
      writeIteNext(mem, itt + prev * ITS_ITE_SIZE, prevLo, prevHi, Math.min(e - prev, ABI_ITE_NEXT_MAX));
    prev = e;
    prevLo = entry[0];
    prevHi = entry[1];
    if (--left === 0) break;
  }
  if (prev >= 0) writeIteNext(mem, itt + prev * ITS_ITE_SIZE, prevLo, prevHi, 0);
}

function writeIteNext(mem: GuestMemory, at: number, lo: number, hi: number, next: number): void {
  mem.writeWords(at, lo, ((hi & 0xffff) | (next << 16)) >>> 0);
}

/** vgic_its_save_collection_table: mapped collections, and the ones ITEs name without a mapping. */
function saveCollections(s: GicState, mem: GuestMemory, k: number, used: Uint8Array): void {
  if (!baserValid(s, k, 1)) return;
  const base = baserAddr(s, k, 1);
  const max = baserBytes(s, k, 1);
  let at = base;
  for (let icid = 0; icid < ITS_COLLECTIONS; icid++) {
    const target = s.itsColl[k * ITS_COLLECTIONS + icid];
    if (target < 0 && used[icid] === 0) continue;
    if (at + ITS_CTE_SIZE > base + max)
      fail(k, `the collection table (${max} bytes) is too small for the collections`);
    const rd = target < 0 ? ABI_CTE_NOT_MAPPED : target;
    const lo = (((rd & 0xffff) << 16) | icid) >>> 0;
    const hi = (ABI_CTE_HI_VALID | Math.floor(rd / 0x10000)) >>> 0;
    if (!mem.writeWords(at, lo, hi)) fail(k, `collection table entry at ${hex(at)} is not in RAM`);
    at += ITS_CTE_SIZE;
  }
  if (at < base + max && !mem.writeWords(at, 0, 0))
    fail(k, `collection table entry at ${hex(at)} is not in RAM`);
}

/**
 * Clears the valid-looking DTEs the restored device list does not contain. Only the entries the
 * table has are visited (a flat table's, or each valid level-1 entry's page), each level-1 entry
 * read once: looking each of the 2^16 DeviceIDs up on its own cost ~60 ms per restore, whatever
 * the tables held.
 */
function clearStaleDtes(s: GicState, mem: GuestMemory, k: number): void {
  const base = baserAddr(s, k, 0);
  if (base < 0) return;
  const bytes = baserBytes(s, k, 0);
  const perPage = ITS_TABLE_PAGE / ITS_DTE_SIZE;
  if ((s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_INDIRECT) === 0) {
    clearStaleIn(s, mem, k, base, 0, Math.min(MAX_DEVICES, bytes / ITS_DTE_SIZE));
    return;
  }
  for (let l1 = 0; l1 < bytes / 8 && l1 * perPage < MAX_DEVICES; l1++) {
    if (!mem.readWords(base + l1 * 8, entry) || (entry[1] & ABI_L1E_HI_VALID) === 0) continue;
    const l2 = l2PageAddr(entry[0], entry[1]);
    if (l2 >= 0) clearStaleIn(s, mem, k, l2, l1 * perPage, Math.min(perPage, MAX_DEVICES - l1 * perPage));
  }
}

/** clearStaleDtes over `n` DTEs at `at0`, for DeviceIDs from `id0`. */
function clearStaleIn(s: GicState, mem: GuestMemory, k: number, at0: number, id0: number, n: number): void {
  for (let i = 0; i < n; i++) {
    if (deviceLive(s, k, id0 + i)) continue;
    const at = at0 + i * ITS_DTE_SIZE;
    if (mem.readWords(at, entry) && (entry[1] & 0x80000000) !== 0) mem.writeWords(at, 0, 0);
  }
}

/**
 * The device chain as restore reads it: at most 2^16 devices (DeviceIDs strictly increase along the
 * chain), in fixed-size arrays, so restore holds no memory that grows with the guest's tables.
 */
const MAX_DEVICES = 2 ** ITS_DEVBITS;
let chainIds = new Int32Array(0);
let chainDte = new Float64Array(0);
let chainItt = new Float64Array(0);
let chainBits = new Uint8Array(0);
let chainLen = 0;

/** Reads the rev-0 DTE chain of ITS k's device table into the chain arrays, checking each DTE. */
function readDeviceChain(s: GicState, mem: GuestMemory, k: number): void {
  if (chainIds.length === 0) {
    chainIds = new Int32Array(MAX_DEVICES);
    chainDte = new Float64Array(MAX_DEVICES);
    chainItt = new Float64Array(MAX_DEVICES);
    chainBits = new Uint8Array(MAX_DEVICES);
  }
  chainLen = 0;
  if (!baserValid(s, k, 0)) return;
  const base = baserAddr(s, k, 0);
  const bytes = baserBytes(s, k, 0);
  if (base < 0) fail(k, 'the device table address is beyond 2^48');
  const scanL2 = (start: number, tableAt: number, entries: number): boolean => {
    let i = 0;
    while (i < entries && start + i < MAX_DEVICES) {
      const at = tableAt + i * ITS_DTE_SIZE;
      if (!mem.readWords(at, entry)) fail(k, `device table entry at ${hex(at)} is not in RAM`);
      if ((entry[1] & 0x80000000) === 0) {
        i++;
        continue;
      }
      const next = (entry[1] >>> 17) & ABI_DTE_NEXT_MAX;
      const bits = (entry[0] & 0x1f) + 1;
      const id = start + i;
      if (bits > ITS_EVENT_IDBITS)
        fail(k, `device ${id} has ${bits} EventID bits (at most ${ITS_EVENT_IDBITS})`);
      chainIds[chainLen] = id;
      chainDte[chainLen] = at;
      chainItt[chainLen] = ((entry[0] >>> 5) + (entry[1] & 0x1ffff) * 2 ** 27) * 256;
      chainBits[chainLen] = bits;
      chainLen++;
      if (next === 0) return false;
      i += next;
    }
    return true;
  };
  if ((s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_INDIRECT) === 0) {
    scanL2(0, base, bytes / ITS_DTE_SIZE);
    return;
  }
  const perPage = ITS_TABLE_PAGE / ITS_DTE_SIZE;
  for (let l1 = 0; l1 < bytes / 8 && l1 * perPage < MAX_DEVICES; l1++) {
    if (!mem.readWords(base + l1 * 8, entry)) fail(k, `level-1 device table entry ${l1} is not in RAM`);
    if ((entry[1] & ABI_L1E_HI_VALID) === 0) continue;
    const l2 = l2PageAddr(entry[0], entry[1]);
    if (l2 < 0) fail(k, `level-1 entry ${l1} points beyond 2^48`);
    if (!scanL2(l1 * perPage, l2, perPage)) return;
  }
}

/**
 * Two devices whose ITTs overlap cannot be restored: each ITE would belong to both (KVM's save
 * would have written both devices' ITEs into the same memory), and walking one shared ITT once per
 * device is what let 700 DTEs naming one full 16-bit ITT gather 46 million entries.
 */
function checkIttsDisjoint(k: number): void {
  if (chainLen < 2) return;
  const order = new Int32Array(chainLen);
  for (let d = 0; d < chainLen; d++) order[d] = d;
  order.sort((a, b) => chainItt[a] - chainItt[b]);
  for (let j = 1; j < chainLen; j++) {
    const a = order[j - 1];
    const b = order[j];
    if (chainItt[a] + 2 ** chainBits[a] * ITS_ITE_SIZE > chainItt[b]) {
      fail(
        k,
        `devices ${chainIds[a]} and ${chainIds[b]} have overlapping ITTs (${hex(chainItt[a])}, ${hex(chainItt[b])})`,
      );
    }
  }
}

/** Zeroes the entries [from, to) of an ITT that are in RAM and not zero already. */
function clearItes(mem: GuestMemory, itt: number, from: number, to: number): void {
  if (from >= to) return;
  if (mem.fillZero(itt + from * ITS_ITE_SIZE, (to - from) * ITS_ITE_SIZE)) return;
  for (let e = from; e < to; e++) {
    const at = itt + e * ITS_ITE_SIZE;
    if (mem.readWords(at, entry) && (entry[0] | entry[1]) !== 0) mem.writeWords(at, 0, 0);
  }
}

/**
 * Follows device d's ITT chain, checking every ITE. With `apply`, also makes the state hold them:
 * each ITE maps its LPI and loses its next field (live entries carry none), the entries the chain
 * skips are cleared (they are not part of the restored state), and the device's count is set.
 */
function walkItt(
  s: GicState,
  mem: GuestMemory,
  k: number,
  colls: Int32Array,
  d: number,
  apply: boolean,
): void {
  const devid = chainIds[d];
  const itt = chainItt[d];
  const n = 2 ** chainBits[d];
  let count = 0;
  let e = 0;
  let cleared = 0;
  while (e < n) {
    const at = itt + e * ITS_ITE_SIZE;
    if (!mem.readWords(at, entry)) fail(k, `ITE ${e} of device ${devid} at ${hex(at)} is not in RAM`);
    const pintid = ((entry[0] >>> 16) | ((entry[1] & 0xffff) << 16)) >>> 0;
    if (pintid === 0) {
      e++;
      continue;
    }
    const icid = entry[0] & 0xffff;
    const next = entry[1] >>> 16;
    if (pintid & ITE_VIRTUAL) {
      // GICv4.1 (an extension of ABI rev 0, which has no vLPIs): ITE_VIRTUAL | vINTID and a vPEID.
      // The vPEs themselves are in the state (snapshots), not in the ITS's tables.
      const vintid = pintid & ~ITE_VIRTUAL;
      if (!s.direct || vintid < VGIC_MIN_LPI || vintid >= VGIC_MIN_LPI + s.nLpis || icid >= s.nVcpus)
        fail(
          k,
          `ITE ${e} of device ${devid} maps vINTID ${vintid} of vPE ${icid}, which this GIC cannot hold`,
        );
      if (apply) {
        clearItes(mem, itt, cleared, e);
        mem.writeWords(at, entry[0], entry[1] & 0xffff);
        cleared = e + 1;
      }
      count++;
      if (next === 0) break;
      e += next;
      continue;
    }
    if (pintid < VGIC_MIN_LPI || pintid >= VGIC_MIN_LPI + s.nLpis) {
      fail(k, `ITE ${e} of device ${devid} maps INTID ${pintid}, not an LPI below ${VGIC_MIN_LPI + s.nLpis}`);
    }
    if (colls[icid] === -2) fail(k, `ITE ${e} of device ${devid} names collection ${icid}, which has no CTE`);
    if (apply) {
      clearItes(mem, itt, cleared, e);
      mem.writeWords(at, entry[0], entry[1] & 0xffff);
      cleared = e + 1;
      lpiMap(s, mem, k, s.lpiSlot(pintid), s.itsColl[k * ITS_COLLECTIONS + icid], (k << 16) | icid);
    }
    count++;
    if (next === 0) break;
    e += next;
  }
  if (apply) {
    clearItes(mem, itt, cleared, n);
    s.itsDevEvents[devEventsAt(k, devid)] = count;
  }
}

/**
 * vgic_its_restore_tables_v0: ITS k's state from its tables (collections, then devices). Streaming:
 * the chains are read twice (check, then apply), never gathered, so memory stays fixed and time
 * follows the size of the chains the tables hold.
 */
export function restoreTablesLocked(s: GicState, mem: GuestMemory, k: number): void {
  for (let i = 0; i < ITS_COLLECTIONS; i++) {
    if (s.itsColl[k * ITS_COLLECTIONS + i] >= 0)
      fail(k, `collection ${i} is mapped: restore needs a reset ITS`);
  }
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    if (s.itsLpiRef[k * s.nLpis + i] !== 0) {
      fail(k, `LPI ${VGIC_MIN_LPI + i} is mapped by this ITS: restore needs a reset ITS`);
    }
  }
  // Phase 1: read and check everything; -2 marks an ICID without a CTE.
  const colls = new Int32Array(ITS_COLLECTIONS).fill(-2);
  if (baserValid(s, k, 1)) {
    const base = baserAddr(s, k, 1);
    const max = baserBytes(s, k, 1) / ITS_CTE_SIZE;
    for (let i = 0; i < max; i++) {
      const at = base + i * ITS_CTE_SIZE;
      if (!mem.readWords(at, entry)) fail(k, `collection table entry ${i} at ${hex(at)} is not in RAM`);
      if ((entry[1] & ABI_CTE_HI_VALID) === 0) break;
      const icid = entry[0] & 0xffff;
      const rd = (entry[0] >>> 16) + (entry[1] & 0xfffff) * 0x10000;
      if (rd !== ABI_CTE_NOT_MAPPED && rd >= s.nVcpus)
        fail(k, `CTE ${i}: RDBase ${rd} is not a vCPU (0..${s.nVcpus - 1})`);
      if (colls[icid] !== -2) fail(k, `collection ${icid} appears twice`);
      if (tableEntryAddr(s, mem, k, 1, icid) < 0)
        fail(k, `collection ${icid} is beyond the collection table`);
      colls[icid] = rd === ABI_CTE_NOT_MAPPED ? -1 : rd;
    }
  }
  readDeviceChain(s, mem, k);
  checkIttsDisjoint(k);
  for (let d = 0; d < chainLen; d++) walkItt(s, mem, k, colls, d, false);
  // Phase 2: apply. The device list is exactly the chain's devices.
  clearDevices(s, k);
  for (let d = 0; d < chainLen; d++) setDeviceLive(s, k, chainIds[d], true);
  if (baserValid(s, k, 0)) clearStaleDtes(s, mem, k);
  for (let i = 0; i < ITS_COLLECTIONS; i++)
    s.itsColl[k * ITS_COLLECTIONS + i] = colls[i] >= 0 ? colls[i] : -1;
  for (let d = 0; d < chainLen; d++) {
    walkItt(s, mem, k, colls, d, true);
    writeDte(mem, chainDte[d], chainItt[d], chainBits[d], 0);
  }
  cacheInvalidateLocked(s, k);
}
