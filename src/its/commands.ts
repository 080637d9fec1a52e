/**
 * The ITS command queue and the physical commands (GIC IHI 0069 §5.3): MAPD, MAPC, MAPTI, MAPI,
 * MOVI, DISCARD, CLEAR, INT, INV, INVALL, SYNC, MOVALL. KVM: vgic_its_process_commands,
 * vgic_its_handle_command, vgic_its_cmd_handle_<cmd>, with KVM's checks and E_ITS_* conditions.
 *
 * A command that fails is skipped and the queue goes on (KVM and QEMU: CREADR advances, never
 * Stalled); each failure is counted per E_ITS code in the ITS's words. Unknown opcodes are
 * ignored (counted); GICv4.1's V-commands run in its/vcommands.ts with direct injection. A command that cannot be read from guest memory is skipped (§6.3.2).
 *
 * The queue is processed in the CWRITER (or GITS_CTLR) write, but one guest access does at most
 * WORK_BUDGET units of work (a unit is one table entry or LPI visited; each command costs at
 * least CMD_COST): a full queue of the costliest commands would otherwise stall the vCPU, with the
 * ITS locks held, for tens of seconds. What is left stays between CREADR and CWRITER and goes on
 * at the next GITS_CREADR or GITS_CTLR read by the guest (and the next CWRITER/CTLR write), so a
 * guest polling CREADR for completion — every driver does: Linux's
 * its_wait_for_range_completion, kvm-unit-tests, the guest libraries here — sees it progress on
 * every poll, and each poll costs at most one budget. KVM and QEMU run the whole queue in the
 * write. At least one command runs per pass, and every command's own cost is bounded by what is
 * mapped (per-device ITE counts, the mapped-LPI bitmap), at most 2^16 ITEs for one device.
 *
 * Who may call: mmio/its.ts with the ITS's cmd_lock held; each command takes its_lock.
 */

import { paFromWords } from '../arch/addr.ts';
import { E_ITS_MOVI_VIRTUAL_INTERRUPT } from '../arch/gicv4.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  cmdCollection,
  cmdDeviceId,
  cmdEventId,
  cmdIttAddr,
  cmdOpcode,
  cmdPhysicalId,
  cmdSize,
  cmdTargetAddr,
  cmdTargetAddr2,
  cmdValid,
  E_ITS_CLEAR_UNMAPPED_INTERRUPT,
  E_ITS_DISCARD_UNMAPPED_INTERRUPT,
  E_ITS_INT_UNMAPPED_INTERRUPT,
  E_ITS_INV_UNMAPPED_INTERRUPT,
  E_ITS_INVALL_UNMAPPED_COLLECTION,
  E_ITS_MAPC_COLLECTION_OOR,
  E_ITS_MAPC_PROCNUM_OOR,
  E_ITS_MAPD_DEVICE_OOR,
  E_ITS_MAPD_ITTSIZE_OOR,
  E_ITS_MAPTI_ID_OOR,
  E_ITS_MAPTI_PHYSICALID_OOR,
  E_ITS_MAPTI_UNMAPPED_DEVICE,
  E_ITS_MOVALL_PROCNUM_OOR,
  E_ITS_MOVI_UNMAPPED_COLLECTION,
  E_ITS_MOVI_UNMAPPED_INTERRUPT,
  eItsIndex,
  GITS_CBASER_HI_VALID,
  GITS_CMD_CLEAR,
  GITS_CMD_DISCARD,
  GITS_CMD_INT,
  GITS_CMD_INV,
  GITS_CMD_INVALL,
  GITS_CMD_MAPC,
  GITS_CMD_MAPD,
  GITS_CMD_MAPI,
  GITS_CMD_MAPTI,
  GITS_CMD_MOVALL,
  GITS_CMD_MOVI,
  GITS_CMD_SYNC,
  ITS_CMD_SIZE,
  ITS_EVENT_IDBITS,
  ITS_ITE_SIZE,
} from '../arch/its.ts';
import { lockWord, unlockWord } from '../core/locks.ts';
import {
  invallLpis,
  lpiClearPending,
  lpiIdLimit,
  lpiMap,
  lpiRetarget,
  lpiSetPending,
  lpiUnmap,
  nextMappedLpi,
  updateLpiConfig,
} from '../core/lpi.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import {
  type GicState,
  I_CBASER_HI,
  I_CBASER_LO,
  I_CMD_READ_FAULT,
  I_CMD_UNKNOWN,
  I_COMMANDS,
  I_CREADR,
  I_CWRITER,
  I_ERR_BASE,
  I_LOCK,
  I_MSI_BUSY,
  ITS_COLLECTIONS,
  ITS_STRIDE,
} from '../state/layout.ts';
import {
  EV_GICV3_ITS_CMD_CLEAR,
  EV_GICV3_ITS_CMD_DISCARD,
  EV_GICV3_ITS_CMD_INT,
  EV_GICV3_ITS_CMD_INV,
  EV_GICV3_ITS_CMD_INVALL,
  EV_GICV3_ITS_CMD_MAPC,
  EV_GICV3_ITS_CMD_MAPD,
  EV_GICV3_ITS_CMD_MAPI,
  EV_GICV3_ITS_CMD_MAPTI,
  EV_GICV3_ITS_CMD_MOVALL,
  EV_GICV3_ITS_CMD_MOVI,
  EV_GICV3_ITS_CMD_SYNC,
  EV_GICV3_ITS_CMD_UNKNOWN,
  EV_GICV3_ITS_PROCESS_COMMAND,
  EV_VGIC_ITS_CMD_ERROR,
  traceEmit,
  tracing,
} from '../trace/trace.ts';
import { cacheInvalidateLocked } from './cache.ts';
import {
  clearItt,
  devEventsAt,
  dteBits,
  dteItt,
  entry,
  iteIcid,
  itePintid,
  iteScanNext,
  iteScanRead,
  iteScanStart,
  liveDte,
  readIte,
  setDeviceLive,
  tableEntryAddr,
  writeDte,
  writeIte,
} from './tables.ts';
import {
  findIteLocked,
  iteVirtual,
  itsEnabled,
  RESOLVE_BUSY,
  RESOLVE_VIRTUAL,
  resolveLpiLocked,
  vlpiSetPendingLocked,
} from './translate.ts';
import {
  NOT_V_COMMAND,
  runVCommandLocked,
  traceVCommand,
  vlpiClearLocked,
  vlpiDiscardLocked,
  vlpiInvLocked,
  vWork,
} from './vcommands.ts';

const OK = 0;

/**
 * The work one guest access may do in the queue. A unit is about 15 ns here (a 2-core EPYC VM):
 * a word of the mapped-LPI bitmap or 8 ITEs scanned; a command, or an LPI whose state a command
 * changes (locks, queueing, a property read), costs CMD_COST. Measured: test/its-bounds.test.ts.
 */
export const WORK_BUDGET = 1 << 15;
export const CMD_COST = 64;
/** Work done by the command being run, beyond CMD_COST. */
let work = 0;

/** The command being processed, as 8 little-endian words. */
const cmd = new Uint32Array(8);

/** The command queue's size in bytes: (CBASER.Size + 1) 4K pages. */
export function cmdQueueBytes(s: GicState, k: number): number {
  return ((s.its[k * ITS_STRIDE + I_CBASER_LO] & 0xff) + 1) * 4096;
}

/**
 * vgic_its_process_commands: run the commands between CREADR and CWRITER. Caller holds ITS k's
 * cmd_lock. Does nothing while the ITS is disabled or CBASER is invalid.
 */
export function processCommandsLocked(s: GicState, mem: GuestMemory, k: number): void {
  const w = k * ITS_STRIDE;
  if (!itsEnabled(s, k) || (s.its[w + I_CBASER_HI] & GITS_CBASER_HI_VALID) === 0) return;
  const hi = s.its[w + I_CBASER_HI];
  if (hi & 0xf0000) return; // a queue above 2^48 is not RAM: every command would be a read fault
  const base = paFromWords(s.its[w + I_CBASER_LO], hi, 0xffff0000, 0xffff);
  const size = cmdQueueBytes(s, k);
  // CREADR and CWRITER are below `size` (their writes check it), so this ends within one lap.
  let spent = 0;
  for (
    let n = 0;
    s.its[w + I_CWRITER] !== s.its[w + I_CREADR] && n < size / ITS_CMD_SIZE && spent < WORK_BUDGET;
    n++
  ) {
    work = CMD_COST;
    const at = base + s.its[w + I_CREADR];
    let ok = true;
    for (let j = 0; j < 4 && ok; j++) {
      ok = mem.readWords(at + 8 * j, entry);
      cmd[2 * j] = entry[0];
      cmd[2 * j + 1] = entry[1];
    }
    if (ok) handleCommand(s, mem, k);
    else s.its[w + I_CMD_READ_FAULT]++;
    const next = s.its[w + I_CREADR] + ITS_CMD_SIZE;
    s.its[w + I_CREADR] = next >= size ? 0 : next;
    spent += work;
  }
}

/** Runs `cmd` under its_lock and counts its outcome. */
function handleCommand(s: GicState, mem: GuestMemory, k: number): void {
  const w = k * ITS_STRIDE;
  lockWord(s, s.its, w + I_LOCK);
  s.its[w + I_COMMANDS]++;
  if (tracing.on !== 0) traceCommand(k, s.its[w + I_CREADR]);
  const err = runCommandLocked(s, mem, k);
  if (tracing.on !== 0 && err > 0) traceEmit(EV_VGIC_ITS_CMD_ERROR, k, cmdOpcode(cmd), err);
  if (err > 0) s.its[w + I_ERR_BASE + eItsIndex(err)]++;
  else if (err === RESOLVE_BUSY) s.its[w + I_MSI_BUSY]++;
  unlockWord(s, s.its, w + I_LOCK);
}

/** QEMU's trace events of one command: gicv3_its_process_command, then its gicv3_its_cmd_*. */
function traceCommand(k: number, rdOffset: number): void {
  const op = cmdOpcode(cmd);
  traceEmit(EV_GICV3_ITS_PROCESS_COMMAND, rdOffset, op, k);
  const dev = cmdDeviceId(cmd);
  const evt = cmdEventId(cmd);
  switch (op) {
    case GITS_CMD_MAPD:
      traceEmit(EV_GICV3_ITS_CMD_MAPD, dev, cmdSize(cmd), cmdIttAddr(cmd), cmdValid(cmd) ? 1 : 0);
      break;
    case GITS_CMD_MAPC:
      traceEmit(EV_GICV3_ITS_CMD_MAPC, cmdCollection(cmd), cmdTargetAddr(cmd), cmdValid(cmd) ? 1 : 0);
      break;
    case GITS_CMD_MAPTI:
      traceEmit(EV_GICV3_ITS_CMD_MAPTI, dev, evt, cmdCollection(cmd), cmdPhysicalId(cmd));
      break;
    case GITS_CMD_MAPI:
      traceEmit(EV_GICV3_ITS_CMD_MAPI, dev, evt, cmdCollection(cmd));
      break;
    case GITS_CMD_MOVI:
      traceEmit(EV_GICV3_ITS_CMD_MOVI, dev, evt, cmdCollection(cmd));
      break;
    case GITS_CMD_DISCARD:
      traceEmit(EV_GICV3_ITS_CMD_DISCARD, dev, evt);
      break;
    case GITS_CMD_CLEAR:
      traceEmit(EV_GICV3_ITS_CMD_CLEAR, dev, evt);
      break;
    case GITS_CMD_INT:
      traceEmit(EV_GICV3_ITS_CMD_INT, dev, evt);
      break;
    case GITS_CMD_INV:
      traceEmit(EV_GICV3_ITS_CMD_INV, dev, evt);
      break;
    case GITS_CMD_INVALL:
      traceEmit(EV_GICV3_ITS_CMD_INVALL, cmdCollection(cmd));
      break;
    case GITS_CMD_MOVALL:
      traceEmit(EV_GICV3_ITS_CMD_MOVALL, cmdTargetAddr(cmd), cmdTargetAddr2(cmd));
      break;
    case GITS_CMD_SYNC:
      traceEmit(EV_GICV3_ITS_CMD_SYNC);
      break;
    default:
      if (!traceVCommand(cmd)) traceEmit(EV_GICV3_ITS_CMD_UNKNOWN, op);
      break;
  }
}

/** Returns OK, an E_ITS_* code, RESOLVE_BUSY, or -100 for an ignored opcode. */
function runCommandLocked(s: GicState, mem: GuestMemory, k: number): number {
  switch (cmdOpcode(cmd)) {
    case GITS_CMD_MAPD:
      return mapd(s, mem, k);
    case GITS_CMD_MAPC:
      return mapc(s, mem, k);
    case GITS_CMD_MAPTI:
      return mapti(s, mem, k, cmdPhysicalId(cmd));
    case GITS_CMD_MAPI:
      return mapti(s, mem, k, cmdEventId(cmd));
    case GITS_CMD_MOVI:
      return movi(s, mem, k);
    case GITS_CMD_DISCARD:
      return discard(s, mem, k);
    case GITS_CMD_CLEAR: {
      if (findIteLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd)) < 0)
        return iteVirtual && vlpiClearLocked(s) ? OK : E_ITS_CLEAR_UNMAPPED_INTERRUPT;
      lpiClearPending(s, s.lpiSlot(itePintid));
      return OK;
    }
    case GITS_CMD_INT: {
      const r = resolveLpiLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd));
      if (r === RESOLVE_BUSY) return RESOLVE_BUSY;
      // A vLPI of an unmapped vPE (or beyond its VPT) has nowhere to be pending: unmapped.
      if (r === RESOLVE_VIRTUAL) return vlpiSetPendingLocked(s) > 0 ? OK : E_ITS_INT_UNMAPPED_INTERRUPT;
      if (r < 0) return E_ITS_INT_UNMAPPED_INTERRUPT;
      lpiSetPending(s, r);
      return OK;
    }
    case GITS_CMD_INV: {
      if (findIteLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd)) < 0)
        return iteVirtual && vlpiInvLocked(s, mem) ? OK : E_ITS_INV_UNMAPPED_INTERRUPT;
      updateLpiConfig(s, mem, s.lpiSlot(itePintid));
      return OK;
    }
    case GITS_CMD_INVALL: {
      const target = s.itsColl[k * ITS_COLLECTIONS + cmdCollection(cmd)];
      if (target < 0) return E_ITS_INVALL_UNMAPPED_COLLECTION;
      work += s.lpiMapped.length + invallLpis(s, mem, target) * CMD_COST;
      return OK;
    }
    case GITS_CMD_MOVALL:
      return movall(s, k);
    case GITS_CMD_SYNC:
      // "We are in sync all of the time" (KVM): every command completes before CREADR moves.
      return OK;
    default: {
      // GICv4.1's V-commands, with direct injection (without it they are unknown opcodes).
      const r = s.direct ? runVCommandLocked(s, mem, k, cmd) : NOT_V_COMMAND;
      if (r !== NOT_V_COMMAND) {
        work += vWork;
        return r;
      }
      s.its[k * ITS_STRIDE + I_CMD_UNKNOWN]++;
      return -100;
    }
  }
}

/**
 * Drops the references a device's valid ITEs hold (the device unmapped or remapped). The ITT is
 * read only until the device's count of ITEs is met: a device that maps nothing costs nothing.
 */
function releaseItt(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  itt: number,
  bits: number,
): void {
  const at = devEventsAt(k, devid);
  let left = s.itsDevEvents[at];
  s.itsDevEvents[at] = 0;
  if (left <= 0) return;
  iteScanStart(mem, itt, bits);
  for (let e = iteScanNext(mem); e >= 0; e = iteScanNext(mem)) {
    const slot = s.lpiSlot(((entry[0] >>> 16) | ((entry[1] & 0xffff) << 16)) >>> 0);
    if (slot >= 0) lpiUnmap(s, k, slot);
    work += CMD_COST;
    if (--left === 0) break;
  }
  work += iteScanRead() >>> 3;
}

/** MAPD DeviceID, ITT_addr, Size, V. */
function mapd(s: GicState, mem: GuestMemory, k: number): number {
  const devid = cmdDeviceId(cmd);
  const bits = cmdSize(cmd) + 1;
  const valid = cmdValid(cmd);
  const dte = tableEntryAddr(s, mem, k, 0, devid);
  if (dte < 0) return E_ITS_MAPD_DEVICE_OOR;
  if (valid && bits > ITS_EVENT_IDBITS) return E_ITS_MAPD_ITTSIZE_OOR;
  if (liveDte(s, mem, k, devid) >= 0) {
    releaseItt(s, mem, k, devid, dteItt, dteBits);
    cacheInvalidateLocked(s, k);
  }
  s.itsDevEvents[devEventsAt(k, devid)] = 0;
  setDeviceLive(s, k, devid, valid);
  if (!valid) {
    // Clear the DTE (e9649129d33d): a later save must not resurrect the device.
    mem.writeWords(dte, 0, 0);
    return OK;
  }
  const itt = cmdIttAddr(cmd);
  // KVM keeps a new device's ITEs in a fresh list; here the ITT is the list, so it starts empty.
  clearItt(mem, itt, bits);
  work += (2 ** bits) >>> 3;
  writeDte(mem, dte, itt, bits, 0);
  return OK;
}

/** MAPC ICID, RDbase, V. */
function mapc(s: GicState, mem: GuestMemory, k: number): number {
  const icid = cmdCollection(cmd);
  const rd = cmdTargetAddr(cmd);
  if (rd >= s.nVcpus) return E_ITS_MAPC_PROCNUM_OOR;
  const c = k * ITS_COLLECTIONS + icid;
  if (!cmdValid(cmd)) {
    // Its ITEs keep their ICID: a later MAPC of the same ICID routes them again (the spec's
    // model; KVM forgets the ITEs' collection instead). Pending LPIs stay where they are.
    s.itsColl[c] = -1;
    cacheInvalidateLocked(s, k);
    return OK;
  }
  if (tableEntryAddr(s, mem, k, 1, icid) < 0) return E_ITS_MAPC_COLLECTION_OOR;
  if (s.itsColl[c] === rd) return OK;
  s.itsColl[c] = rd;
  // update_affinity_collection: every LPI mapped through this collection follows it.
  const router = (k << 16) | icid;
  work += s.lpiMapped.length;
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    const slot = s.lpiBase + i;
    if (s.irqLpiRef[i] !== 0 && s.irqRouter[slot] === router) {
      lpiRetarget(s, slot, rd, router);
      work += CMD_COST;
    }
  }
  return OK;
}

/** MAPTI DeviceID, EventID, pINTID, ICID (and MAPI, where pINTID = EventID). */
function mapti(s: GicState, mem: GuestMemory, k: number, pintid: number): number {
  const devid = cmdDeviceId(cmd);
  const eventid = cmdEventId(cmd);
  const icid = cmdCollection(cmd);
  if (liveDte(s, mem, k, devid) < 0) return E_ITS_MAPTI_UNMAPPED_DEVICE;
  if (eventid >= 2 ** dteBits) return E_ITS_MAPTI_ID_OOR;
  const at = dteItt + eventid * ITS_ITE_SIZE;
  if (mem.find(at, ITS_ITE_SIZE) === undefined) return E_ITS_MAPTI_ID_OOR;
  if (pintid < VGIC_MIN_LPI || pintid >= lpiIdLimit(s)) return E_ITS_MAPTI_PHYSICALID_OOR;
  const target = s.itsColl[k * ITS_COLLECTIONS + icid];
  if (target < 0 && tableEntryAddr(s, mem, k, 1, icid) < 0) return E_ITS_MAPC_COLLECTION_OOR;
  // Mapping an event twice is UNPREDICTABLE; KVM (and vgic) keep the first mapping.
  if (readIte(mem, at)) return OK;
  writeIte(mem, at, pintid, icid, 0);
  // A guest that clears ITEs behind the ITS's back and maps them again would otherwise push the
  // count past the ITT's size (a snapshot then refused); the readers stop at the ITT's end anyway.
  const n = devEventsAt(k, devid);
  if (s.itsDevEvents[n] < 2 ** dteBits) s.itsDevEvents[n]++;
  lpiMap(s, mem, k, s.lpiSlot(pintid), target, (k << 16) | icid);
  return OK;
}

/** MOVI DeviceID, EventID, ICID. */
function movi(s: GicState, mem: GuestMemory, k: number): number {
  const at = findIteLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd));
  if (at < 0) return iteVirtual ? E_ITS_MOVI_VIRTUAL_INTERRUPT : E_ITS_MOVI_UNMAPPED_INTERRUPT;
  const icid = cmdCollection(cmd);
  if (s.itsColl[k * ITS_COLLECTIONS + iteIcid] < 0) return E_ITS_MOVI_UNMAPPED_COLLECTION;
  const target = s.itsColl[k * ITS_COLLECTIONS + icid];
  if (target < 0) return E_ITS_MOVI_UNMAPPED_COLLECTION;
  const pintid = itePintid;
  cacheInvalidateLocked(s, k);
  writeIte(mem, at, pintid, icid, 0);
  lpiRetarget(s, s.lpiSlot(pintid), target, (k << 16) | icid);
  return OK;
}

/** DISCARD DeviceID, EventID. */
function discard(s: GicState, mem: GuestMemory, k: number): number {
  const at = findIteLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd));
  if (at < 0 && iteVirtual) {
    vlpiDiscardLocked(s, mem, k, cmdDeviceId(cmd));
    return OK;
  }
  if (at < 0 || s.itsColl[k * ITS_COLLECTIONS + iteIcid] < 0) return E_ITS_DISCARD_UNMAPPED_INTERRUPT;
  const slot = s.lpiSlot(itePintid);
  cacheInvalidateLocked(s, k);
  lpiClearPending(s, slot);
  lpiUnmap(s, k, slot);
  // Clear the ITE (7602ffd1d5e8): a later save must not resurrect it.
  mem.writeWords(at, 0, 0);
  const n = devEventsAt(k, cmdDeviceId(cmd));
  if (s.itsDevEvents[n] > 0) s.itsDevEvents[n]--;
  return OK;
}

/** MOVALL RDbase1, RDbase2: the LPIs targeting RD1 move to RD2 (only those: KVM moves them all). */
function movall(s: GicState, k: number): number {
  const from = cmdTargetAddr(cmd);
  const to = cmdTargetAddr2(cmd);
  if (from >= s.nVcpus || to >= s.nVcpus) return E_ITS_MOVALL_PROCNUM_OOR;
  if (from === to) return OK;
  work += s.lpiMapped.length;
  for (let i = nextMappedLpi(s, 0); i >= 0; i = nextMappedLpi(s, i + 1)) {
    const slot = s.lpiBase + i;
    if (s.irqLpiRef[i] !== 0 && s.irqTarget[slot] === from) {
      lpiRetarget(s, slot, to, s.irqRouter[slot]);
      work += CMD_COST;
    }
  }
  cacheInvalidateLocked(s, k);
  return OK;
}
