/**
 * GICv4.1's V-commands (GIC IHI 0069 §5.3: VMAPP, VMAPTI, VMAPI, VMOVI, VMOVP, VSYNC, VINVALL,
 * INVDB, VSGI) and the physical commands' effect on an ITE that maps a vLPI (INT, CLEAR, DISCARD,
 * INV). QEMU 7.2 (hw/intc/arm_gicv3_its.c, GICv4.0) is the model for the checks; the GICv4.1
 * fields (VMAPP's VCONF_addr, PTZ, Default_Doorbell; VSGI; INVDB) follow the spec and Linux's
 * its_build_v*_cmd. They drive the one vPE engine through core/vpe-guest.ts.
 *
 * A vPEID names a vPE slot of the state (one per vCPU); an ID beyond them, or beyond what
 * GITS_BASER2's table holds, is out of range: no guest number grows host memory. The vPE table
 * in guest memory is never written (its format is IMPLEMENTATION DEFINED; the state buffer holds
 * the mappings). Every failure is an E_ITS_* code counted as the physical commands' are.
 *
 * Who may call: its/commands.ts with ITS k's cmd_lock and its_lock held.
 */

import {
  cmdAlloc,
  cmdDefaultDoorbell,
  cmdDoorbell,
  cmdPtz,
  cmdSgiClear,
  cmdSgiEnable,
  cmdSgiGroup,
  cmdSgiIntid,
  cmdSgiPriority,
  cmdVconfAddr,
  cmdVirtualId,
  cmdVmoviD,
  cmdVmovpDoorbell,
  cmdVpeId,
  cmdVptAddr,
  cmdVptSize,
  DOORBELL_NONE,
  E_ITS_INVDB_UNMAPPED_VPE,
  E_ITS_VINVALL_UNMAPPED_VPE,
  E_ITS_VMAPP_DOORBELL_OOR,
  E_ITS_VMAPP_PROCNUM_OOR,
  E_ITS_VMAPP_VPEID_OOR,
  E_ITS_VMAPP_VPTSIZE_OOR,
  E_ITS_VMAPTI_ID_OOR,
  E_ITS_VMAPTI_PHYSICALID_OOR,
  E_ITS_VMAPTI_UNMAPPED_DEVICE,
  E_ITS_VMAPTI_UNMAPPED_VPE,
  E_ITS_VMAPTI_VIRTUALID_OOR,
  E_ITS_VMOVI_NOT_VIRTUAL,
  E_ITS_VMOVI_PHYSICALID_OOR,
  E_ITS_VMOVI_UNMAPPED_INTERRUPT,
  E_ITS_VMOVI_UNMAPPED_VPE,
  E_ITS_VMOVP_PROCNUM_OOR,
  E_ITS_VMOVP_UNMAPPED_VPE,
  E_ITS_VSGI_UNMAPPED_VPE,
  E_ITS_VSYNC_UNMAPPED_VPE,
  GITS_CMD_INVDB,
  GITS_CMD_VINVALL,
  GITS_CMD_VMAPI,
  GITS_CMD_VMAPP,
  GITS_CMD_VMAPTI,
  GITS_CMD_VMOVI,
  GITS_CMD_VMOVP,
  GITS_CMD_VSGI,
  GITS_CMD_VSYNC,
  ITE_VIRTUAL,
} from '../arch/gicv4.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import { cmdDeviceId, cmdEventId, cmdTargetAddr, cmdValid, ITS_ITE_SIZE } from '../arch/its.ts';
import {
  gvpeClear,
  gvpeInv,
  gvpeInvDb,
  gvpeMap,
  gvpeMapped,
  gvpeMove,
  gvpeMoveRd,
  gvpeReadConfig,
  gvpeUnmap,
  gvpeVsgi,
} from '../core/vpe-guest.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import type { GicState } from '../state/layout.ts';
import {
  EV_GICV3_ITS_CMD_VINVALL,
  EV_GICV3_ITS_CMD_VMAPI,
  EV_GICV3_ITS_CMD_VMAPP,
  EV_GICV3_ITS_CMD_VMAPTI,
  EV_GICV3_ITS_CMD_VMOVI,
  EV_GICV3_ITS_CMD_VMOVP,
  EV_GICV3_ITS_CMD_VSYNC,
  EV_VGIC_ITS_CMD_INVDB,
  EV_VGIC_ITS_CMD_VSGI,
  traceEmit,
} from '../trace/trace.ts';
import {
  devEventsAt,
  dteBits,
  dteItt,
  iteIcid,
  itePintid,
  liveDte,
  readIte,
  tableEntryAddr,
  writeIte,
} from './tables.ts';
import { findIteLocked, iteVirtual, iteVirtualAt } from './translate.ts';

const OK = 0;

/** QEMU's trace event of a V-command (gicv3_its_cmd_v*); false if `cmd` is none. */
export function traceVCommand(cmd: Uint32Array): boolean {
  const dev = cmdDeviceId(cmd);
  const evt = cmdEventId(cmd);
  const p = cmdVpeId(cmd);
  switch (cmd[0] & 0xff) {
    case GITS_CMD_VMAPP:
      traceEmit(
        EV_GICV3_ITS_CMD_VMAPP,
        p,
        cmdTargetAddr(cmd),
        cmdValid(cmd) ? 1 : 0,
        cmdVptAddr(cmd),
        cmdVptSize(cmd),
      );
      return true;
    case GITS_CMD_VMAPTI:
      traceEmit(EV_GICV3_ITS_CMD_VMAPTI, dev, evt, p, cmdVirtualId(cmd), cmdDoorbell(cmd));
      return true;
    case GITS_CMD_VMAPI:
      traceEmit(EV_GICV3_ITS_CMD_VMAPI, dev, evt, p, cmdDoorbell(cmd));
      return true;
    case GITS_CMD_VMOVI:
      traceEmit(EV_GICV3_ITS_CMD_VMOVI, dev, evt, p, cmdVmoviD(cmd) ? 1 : 0, cmdDoorbell(cmd));
      return true;
    case GITS_CMD_VMOVP:
      traceEmit(EV_GICV3_ITS_CMD_VMOVP, p, cmdTargetAddr(cmd));
      return true;
    case GITS_CMD_VSYNC:
      traceEmit(EV_GICV3_ITS_CMD_VSYNC);
      return true;
    case GITS_CMD_VINVALL:
      traceEmit(EV_GICV3_ITS_CMD_VINVALL, p);
      return true;
    case GITS_CMD_INVDB:
      traceEmit(EV_VGIC_ITS_CMD_INVDB, p);
      return true;
    case GITS_CMD_VSGI:
      traceEmit(EV_VGIC_ITS_CMD_VSGI, p, cmdSgiIntid(cmd));
      return true;
    default:
      return false;
  }
}
/** runVCommandLocked: not a V-command (the caller counts it as unknown). */
export const NOT_V_COMMAND = -100;

/** Work done by the last V-command beyond its CMD_COST (bytes of tables read / 8). */
export let vWork = 0;

/** Whether vPEID p is in range: a vPE slot, and an entry GITS_BASER2's table holds. */
function vpeIdInRange(s: GicState, mem: GuestMemory, k: number, p: number): boolean {
  return p < s.nVcpus && tableEntryAddr(s, mem, k, 2, p) >= 0;
}

/** A doorbell field: 1023 (none) or an LPI of the store. */
const doorbellOk = (s: GicState, db: number): boolean => db === DOORBELL_NONE || s.lpiSlot(db) >= 0;

/**
 * Runs V-command `cmd` (8 words) on ITS k. Returns OK, an E_ITS_* code, or NOT_V_COMMAND.
 */
export function runVCommandLocked(s: GicState, mem: GuestMemory, k: number, cmd: Uint32Array): number {
  vWork = 0;
  switch (cmd[0] & 0xff) {
    case GITS_CMD_VMAPP:
      return vmapp(s, mem, k, cmd);
    case GITS_CMD_VMAPTI:
      return vmapti(s, mem, k, cmd, cmdVirtualId(cmd));
    case GITS_CMD_VMAPI:
      return vmapti(s, mem, k, cmd, cmdEventId(cmd));
    case GITS_CMD_VMOVI:
      return vmovi(s, mem, k, cmd);
    case GITS_CMD_VMOVP: {
      const p = cmdVpeId(cmd);
      const rd = cmdTargetAddr(cmd);
      if (!gvpeMapped(s, p)) return E_ITS_VMOVP_UNMAPPED_VPE;
      if (rd >= s.nVcpus) return E_ITS_VMOVP_PROCNUM_OOR;
      // GICv4.1: DB (DW2 bit 63) carries a new Default_Doorbell.
      const db = cmdValid(cmd) ? cmdVmovpDoorbell(cmd) : -1;
      if (db >= 0 && !doorbellOk(s, db)) return E_ITS_VMAPP_DOORBELL_OOR;
      // GITS_TYPER.VMOVP = 1: one VMOVP moves the vPE for every ITS (ITS_List and the sequence
      // number are not needed); the vPE's state is GIC-wide here.
      gvpeMoveRd(s, mem, p, rd, db);
      return OK;
    }
    case GITS_CMD_VSYNC:
      // Every V-command completes before CREADR moves: nothing to wait for.
      return gvpeMapped(s, cmdVpeId(cmd)) ? OK : E_ITS_VSYNC_UNMAPPED_VPE;
    case GITS_CMD_VINVALL: {
      const p = cmdVpeId(cmd);
      if (!gvpeMapped(s, p)) return E_ITS_VINVALL_UNMAPPED_VPE;
      vWork += gvpeReadConfig(s, mem, p);
      return OK;
    }
    case GITS_CMD_INVDB: {
      const p = cmdVpeId(cmd);
      if (!gvpeMapped(s, p)) return E_ITS_INVDB_UNMAPPED_VPE;
      gvpeInvDb(s, mem, p);
      return OK;
    }
    case GITS_CMD_VSGI: {
      const p = cmdVpeId(cmd);
      if (!gvpeMapped(s, p)) return E_ITS_VSGI_UNMAPPED_VPE;
      gvpeVsgi(
        s,
        p,
        cmdSgiIntid(cmd),
        cmdSgiPriority(cmd),
        cmdSgiGroup(cmd),
        cmdSgiEnable(cmd),
        cmdSgiClear(cmd),
      );
      return OK;
    }
    default:
      return NOT_V_COMMAND;
  }
}

/**
 * VMAPP vPEID, RDbase, V, VPT_addr, VPT_size, VCONF_addr, Default_Doorbell, PTZ, Alloc. A vPEID
 * out of range, an RDbase beyond the redistributors, a VPT_size beyond the LPI store's INTID bits
 * or a doorbell that is no LPI are refused (as QEMU, which checks all but the GICv4.1 fields).
 */
function vmapp(s: GicState, mem: GuestMemory, k: number, cmd: Uint32Array): number {
  const p = cmdVpeId(cmd);
  if (!vpeIdInRange(s, mem, k, p)) return E_ITS_VMAPP_VPEID_OOR;
  if (!cmdValid(cmd)) {
    // Alloc = 0 would keep the vPE for another ITS: with VMOVP = 1 there is one vPE table view
    // per GIC here, so an unmap with Alloc clear leaves the vPE mapped.
    if (gvpeMapped(s, p) && cmdAlloc(cmd)) vWork += gvpeUnmap(s, mem, p);
    return OK;
  }
  const rd = cmdTargetAddr(cmd);
  if (rd >= s.nVcpus) return E_ITS_VMAPP_PROCNUM_OOR;
  const bits = cmdVptSize(cmd) + 1;
  if (bits > Math.log2(VGIC_MIN_LPI + s.nLpis)) return E_ITS_VMAPP_VPTSIZE_OOR;
  const db = cmdDefaultDoorbell(cmd);
  if (!doorbellOk(s, db)) return E_ITS_VMAPP_DOORBELL_OOR;
  // A second VMAPP of a mapped vPE (Alloc clear: another ITS's view of it) changes nothing.
  if (gvpeMapped(s, p) && !cmdAlloc(cmd)) return OK;
  vWork += gvpeMap(s, mem, p, rd, db, cmdVptAddr(cmd), bits, cmdVconfAddr(cmd), cmdPtz(cmd));
  return OK;
}

/** VMAPTI DeviceID, EventID, vINTID, vPEID, Dbell_pINTID (and VMAPI, where vINTID = EventID). */
function vmapti(s: GicState, mem: GuestMemory, k: number, cmd: Uint32Array, vintid: number): number {
  const devid = cmdDeviceId(cmd);
  const eventid = cmdEventId(cmd);
  const p = cmdVpeId(cmd);
  if (liveDte(s, mem, k, devid) < 0) return E_ITS_VMAPTI_UNMAPPED_DEVICE;
  if (eventid >= 2 ** dteBits) return E_ITS_VMAPTI_ID_OOR;
  const at = dteItt + eventid * ITS_ITE_SIZE;
  if (mem.find(at, ITS_ITE_SIZE) === undefined) return E_ITS_VMAPTI_ID_OOR;
  if (vintid < VGIC_MIN_LPI || vintid >= VGIC_MIN_LPI + s.nLpis) return E_ITS_VMAPTI_VIRTUALID_OOR;
  // GICv4.1 doorbells are per vPE (VMAPP): the field is checked as QEMU does, then not used.
  if (!doorbellOk(s, cmdDoorbell(cmd))) return E_ITS_VMAPTI_PHYSICALID_OOR;
  if (!vpeIdInRange(s, mem, k, p)) return E_ITS_VMAPTI_UNMAPPED_VPE;
  // Mapping an event twice is UNPREDICTABLE; as MAPTI, the first mapping stays.
  if (readIte(mem, at)) return OK;
  writeIte(mem, at, (ITE_VIRTUAL | vintid) >>> 0, p, 0);
  const n = devEventsAt(k, devid);
  if (s.itsDevEvents[n] < 2 ** dteBits) s.itsDevEvents[n]++;
  return OK;
}

/** VMOVI DeviceID, EventID, vPEID, D, Doorbell: the vLPI (and its pending state) moves to vPEID. */
function vmovi(s: GicState, mem: GuestMemory, k: number, cmd: Uint32Array): number {
  if (cmdVmoviD(cmd) && !doorbellOk(s, cmdDoorbell(cmd))) return E_ITS_VMOVI_PHYSICALID_OOR;
  if (findIteLocked(s, mem, k, cmdDeviceId(cmd), cmdEventId(cmd)) >= 0) return E_ITS_VMOVI_NOT_VIRTUAL;
  if (!iteVirtual) return E_ITS_VMOVI_UNMAPPED_INTERRUPT;
  const at = iteVirtualAt;
  if (!readIte(mem, at)) return E_ITS_VMOVI_UNMAPPED_INTERRUPT;
  const q = cmdVpeId(cmd);
  const from = iteIcid;
  const vintid = itePintid & ~ITE_VIRTUAL;
  if (!gvpeMapped(s, from) || !gvpeMapped(s, q)) return E_ITS_VMOVI_UNMAPPED_VPE;
  writeIte(mem, at, (ITE_VIRTUAL | vintid) >>> 0, q, 0);
  gvpeMove(s, from, q, vintid);
  return OK;
}

// ---- the physical commands on a virtual ITE (findIteLocked set iteVirtual) ----

/** CLEAR on a vLPI: its pending state goes. */
export function vlpiClearLocked(s: GicState): boolean {
  const p = iteIcid;
  if (!gvpeMapped(s, p)) return false;
  gvpeClear(s, p, itePintid & ~ITE_VIRTUAL);
  return true;
}

/** INV on a vLPI: its property byte is read again from its vPE's VCONF table. */
export function vlpiInvLocked(s: GicState, mem: GuestMemory): boolean {
  const p = iteIcid;
  if (!gvpeMapped(s, p)) return false;
  gvpeInv(s, mem, p, itePintid & ~ITE_VIRTUAL);
  return true;
}

/** DISCARD of a vLPI: pending state and ITE go. */
export function vlpiDiscardLocked(s: GicState, mem: GuestMemory, k: number, devid: number): void {
  const p = iteIcid;
  if (gvpeMapped(s, p)) gvpeClear(s, p, itePintid & ~ITE_VIRTUAL);
  mem.writeWords(iteVirtualAt, 0, 0);
  const n = devEventsAt(k, devid);
  if (s.itsDevEvents[n] > 0) s.itsDevEvents[n]--;
}
