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
import { lpiMap } from '../core/lpi.ts';
import { VgicError } from '../device/errors.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { type GicState, I_BASER0_HI, ITS_COLLECTIONS, ITS_STRIDE } from '../state/layout.ts';
import { cacheInvalidateLocked } from './cache.ts';
import {
  baserAddr,
  baserBytes,
  baserValid,
  clearDevices,
  deviceLive,
  dteBits,
  dteItt,
  entry,
  l2PageAddr,
  liveDte,
  readDte,
  setDeviceLive,
  tableEntryAddr,
  writeDte,
} from './tables.ts';

const fail = (k: number, what: string): never => {
  throw new VgicError('INVALID_ARGUMENT', `ITS ${k} tables: ${what}`);
};

const hex = (n: number): string => `0x${n.toString(16)}`;

/** The valid devices of ITS k in DeviceID order, with their DTE addresses. */
function liveDevices(s: GicState, mem: GuestMemory, k: number): { ids: number[]; at: number[] } {
  const ids: number[] = [];
  const at: number[] = [];
  if (!baserValid(s, k, 0)) return { ids, at };
  for (let id = 0; id < 2 ** ITS_DEVBITS; id++) {
    const a = liveDte(s, mem, k, id);
    if (a >= 0) {
      ids.push(id);
      at.push(a);
    }
  }
  return { ids, at };
}

/** vgic_its_save_tables_v0: write ITS k's state into its tables in guest memory. */
export function saveTablesLocked(s: GicState, mem: GuestMemory, k: number): void {
  const used = new Uint8Array(ITS_COLLECTIONS);
  const { ids, at } = liveDevices(s, mem, k);
  for (let d = 0; d < ids.length; d++) {
    readDte(mem, at[d]);
    const itt = dteItt;
    const bits = dteBits;
    // ITT first, each ITE's next pointing at the following valid one.
    let prev = -1;
    let prevLo = 0;
    let prevHi = 0;
    for (let e = 0; e < 2 ** bits; e++) {
      if (!mem.readWords(itt + e * ITS_ITE_SIZE, entry)) continue;
      const pintid = ((entry[0] >>> 16) | ((entry[1] & 0xffff) << 16)) >>> 0;
      if (pintid === 0) continue;
      used[entry[0] & 0xffff] = 1;
      if (prev >= 0)
        writeIteNext(mem, itt + prev * ITS_ITE_SIZE, prevLo, prevHi, Math.min(e - prev, ABI_ITE_NEXT_MAX));
      prev = e;
      prevLo = entry[0];
      prevHi = entry[1];
    }
    if (prev >= 0) writeIteNext(mem, itt + prev * ITS_ITE_SIZE, prevLo, prevHi, 0);
    const next = d + 1 < ids.length ? Math.min(ids[d + 1] - ids[d], ABI_DTE_NEXT_MAX) : 0;
    if (!writeDte(mem, at[d], itt, bits, next)) fail(k, `DTE of device ${ids[d]} is not in RAM`);
  }
  saveCollections(s, mem, k, used);
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

/** The address of a valid-looking DTE that the restored device list does not contain, or -1. */
function deviceLiveOrStale(s: GicState, mem: GuestMemory, k: number, id: number): number {
  if (deviceLive(s, k, id)) return -1;
  const at = tableEntryAddr(s, mem, k, 0, id);
  return at >= 0 && mem.readWords(at, entry) && (entry[1] & 0x80000000) !== 0 ? at : -1;
}

/** What a walk of the device chain meets. */
interface Walk {
  /** Called for each device on the DTE chain, then each ITE on its ITT chain. */
  device(id: number, dteAt: number, itt: number, bits: number): void;
  ite(eventid: number, pintid: number, icid: number): void;
}

/** Follows the rev-0 chains of ITS k's device table, validating every entry met. */
function walkDevices(s: GicState, mem: GuestMemory, k: number, colls: Int32Array, w: Walk): void {
  if (!baserValid(s, k, 0)) return;
  const base = baserAddr(s, k, 0);
  const bytes = baserBytes(s, k, 0);
  if (base < 0) fail(k, 'the device table address is beyond 2^48');
  const scanL2 = (start: number, tableAt: number, entries: number): boolean => {
    let i = 0;
    while (i < entries && start + i < 2 ** ITS_DEVBITS) {
      const at = tableAt + i * ITS_DTE_SIZE;
      if (!mem.readWords(at, entry)) fail(k, `device table entry at ${hex(at)} is not in RAM`);
      if ((entry[1] & 0x80000000) === 0) {
        i++;
        continue;
      }
      const next = (entry[1] >>> 17) & ABI_DTE_NEXT_MAX;
      const bits = (entry[0] & 0x1f) + 1;
      const itt = ((entry[0] >>> 5) + (entry[1] & 0x1ffff) * 2 ** 27) * 256;
      const id = start + i;
      if (bits > ITS_EVENT_IDBITS)
        fail(k, `device ${id} has ${bits} EventID bits (at most ${ITS_EVENT_IDBITS})`);
      w.device(id, at, itt, bits);
      walkItt(s, mem, k, colls, id, itt, bits, w);
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
  for (let l1 = 0; l1 < bytes / 8 && l1 * perPage < 2 ** ITS_DEVBITS; l1++) {
    if (!mem.readWords(base + l1 * 8, entry)) fail(k, `level-1 device table entry ${l1} is not in RAM`);
    if ((entry[1] & ABI_L1E_HI_VALID) === 0) continue;
    const l2 = l2PageAddr(entry[0], entry[1]);
    if (l2 < 0) fail(k, `level-1 entry ${l1} points beyond 2^48`);
    if (!scanL2(l1 * perPage, l2, perPage)) return;
  }
}

function walkItt(
  s: GicState,
  mem: GuestMemory,
  k: number,
  colls: Int32Array,
  devid: number,
  itt: number,
  bits: number,
  w: Walk,
): void {
  let e = 0;
  while (e < 2 ** bits) {
    const at = itt + e * ITS_ITE_SIZE;
    if (!mem.readWords(at, entry)) fail(k, `ITE ${e} of device ${devid} at ${hex(at)} is not in RAM`);
    const pintid = ((entry[0] >>> 16) | ((entry[1] & 0xffff) << 16)) >>> 0;
    if (pintid === 0) {
      e++;
      continue;
    }
    const icid = entry[0] & 0xffff;
    const next = entry[1] >>> 16;
    if (pintid < VGIC_MIN_LPI || pintid >= VGIC_MIN_LPI + s.nLpis) {
      fail(k, `ITE ${e} of device ${devid} maps INTID ${pintid}, not an LPI below ${VGIC_MIN_LPI + s.nLpis}`);
    }
    if (colls[icid] === -2) fail(k, `ITE ${e} of device ${devid} names collection ${icid}, which has no CTE`);
    w.ite(e, pintid, icid);
    if (next === 0) return;
    e += next;
  }
}

/** vgic_its_restore_tables_v0: ITS k's state from its tables (collections, then devices). */
export function restoreTablesLocked(s: GicState, mem: GuestMemory, k: number): void {
  for (let i = 0; i < ITS_COLLECTIONS; i++) {
    if (s.itsColl[k * ITS_COLLECTIONS + i] >= 0)
      fail(k, `collection ${i} is mapped: restore needs a reset ITS`);
  }
  for (let i = 0; i < s.nLpis; i++) {
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
  const dtes: number[] = [];
  const devIds: number[] = [];
  const itts: number[] = [];
  const mapped: number[] = [];
  walkDevices(s, mem, k, colls, {
    device: (id, at, itt, bits) => {
      devIds.push(id);
      dtes.push(at);
      itts.push(itt, bits, mapped.length);
    },
    ite: (e, pintid, icid) => mapped.push(e, pintid, icid),
  });
  // Phase 2: apply. The device list is exactly the chain's devices; ITEs off the ITT chains are
  // not part of the restored state: clear them.
  clearDevices(s, k);
  for (const id of devIds) setDeviceLive(s, k, id, true);
  if (baserValid(s, k, 0)) {
    for (let id = 0; id < 2 ** ITS_DEVBITS; id++) {
      const at = deviceLiveOrStale(s, mem, k, id);
      if (at >= 0) mem.writeWords(at, 0, 0);
    }
  }
  for (let i = 0; i < ITS_COLLECTIONS; i++)
    s.itsColl[k * ITS_COLLECTIONS + i] = colls[i] >= 0 ? colls[i] : -1;
  for (let d = 0; d < dtes.length; d++) {
    const itt = itts[3 * d];
    const bits = itts[3 * d + 1];
    const from = itts[3 * d + 2];
    const to = d + 1 < dtes.length ? itts[3 * (d + 1) + 2] : mapped.length;
    const keep = new Uint8Array(2 ** bits);
    for (let j = from; j < to; j += 3) keep[mapped[j]] = 1;
    for (let e = 0; e < 2 ** bits; e++) {
      const at = itt + e * ITS_ITE_SIZE;
      if (keep[e] === 0) {
        if (mem.readWords(at, entry) && (entry[0] | entry[1]) !== 0) mem.writeWords(at, 0, 0);
      } else if (mem.readWords(at, entry)) {
        mem.writeWords(at, entry[0], entry[1] & 0xffff); // live entries carry no next
      }
    }
    writeDte(mem, dtes[d], itt, bits, 0);
    for (let j = from; j < to; j += 3) {
      const icid = mapped[j + 2];
      lpiMap(s, mem, k, s.lpiSlot(mapped[j + 1]), s.itsColl[k * ITS_COLLECTIONS + icid], (k << 16) | icid);
    }
  }
  cacheInvalidateLocked(s, k);
}
