/**
 * GICv4.1 as data (GIC IHI 0069, chapters on virtual LPIs, §5.3 V-commands, §12.11 the VLPI_base
 * frame): the redistributor's VLPI registers and their fields, the ITS's virtual ID bits, the
 * V-command opcodes and fields, and their E_ITS_* conditions. Names as the spec and Linux's
 * include/linux/irqchip/arm-gic-v3.h; field positions as Linux's its_build_v*_cmd encode them.
 * Pure data: no state, callable from anywhere.
 */

import { paFromWords } from './addr.ts';

// ---- Redistributor: four 64K frames (RD_base, SGI_base, VLPI_base, reserved) ----
/** A GICv4 redistributor is 256K: the stride of QEMU's gic-version=4 and of GIC-600/700. */
export const GICR_STRIDE_V4 = 0x40000;
export const GICR_VLPI_BASE = 0x20000;
export const GICR_VPROPBASER = GICR_VLPI_BASE + 0x70;
export const GICR_VPENDBASER = GICR_VLPI_BASE + 0x78;
export const GICR_VSGIR = GICR_VLPI_BASE + 0x80;
export const GICR_VSGIPENDR = GICR_VLPI_BASE + 0x88;

/** GICR_TYPER: VLPIS (virtual LPIs and direct injection), RVPEID (GICv4.1: VPENDBASER holds a vPEID). */
export const GICR_TYPER_VLPIS = 1 << 1;
export const GICR_TYPER_RVPEID = 1 << 7;

/**
 * GICR_VPROPBASER in the GICv4.1 format (a view of the vPE configuration table, the table
 * GITS_BASER2 also describes): high word Valid 31, Entry_Size 29:27 (RO), Indirect 23,
 * Page_Size 22:21, Z 20, PA 19:0 (bits 51:32); low word PA 31:12, Size 6:0.
 */
export const VPROPBASER_HI_VALID = 1 << 31;
export const VPROPBASER_HI_ESZ_SHIFT = 27;
export const VPROPBASER_HI_RW = VPROPBASER_HI_VALID | (1 << 23) | (3 << 21) | (1 << 20) | 0xfffff;
export const VPROPBASER_LO_RW = 0xfffff000 | 0x7f;

/**
 * GICR_VPENDBASER in the GICv4.1 format: high word Valid 31, DB 30 (doorbell requested as the vPE
 * leaves), PendingLast 29, Dirty 28, vGrp0En 27, vGrp1En 26; low word vPEID 15:0.
 */
export const VPENDBASER_HI_VALID = 1 << 31;
export const VPENDBASER_HI_DB = 1 << 30;
export const VPENDBASER_HI_PENDING_LAST = 1 << 29;
export const VPENDBASER_HI_DIRTY = 1 << 28;
export const VPENDBASER_HI_VGRP0EN = 1 << 27;
export const VPENDBASER_HI_VGRP1EN = 1 << 26;
export const VPENDBASER_LO_VPEID = 0xffff;

/** GICR_VSGIPENDR: Busy 31 (never set here: the query completes in the GICR_VSGIR write), Pending 15:0. */
export const VSGIPENDR_BUSY = 1 << 31;

/** GICR_INVLPIR / GICR_INVALLR in GICv4.1: V (high word bit 31) and vPEID (high word 15:0). */
export const GICR_INV_HI_V = 1 << 31;

/** GICD_TYPER2: VIL (bit 7: VID is meaningful), VID 4:0 (vPEID bits - 1). */
export const GICD_TYPER2_VIL = 1 << 7;

/** The vPEID bits a GIC with `slots` vPE slots reports (GICD_TYPER2.VID + 1): at least 1. */
export function vpeIdBits(slots: number): number {
  return Math.max(1, Math.ceil(Math.log2(slots)));
}

// ---- ITS ----
/** GITS_TYPER low word: Virtual (bit 1). High word: VMOVP (37: one VMOVP moves a vPE on every ITS), VMAPP (40: GICv4.1 VMAPP). */
export const GITS_TYPER_VIRTUAL = 1 << 1;
export const GITS_TYPER_HI_VMOVP = 1 << 5;
export const GITS_TYPER_HI_VMAPP = 1 << 8;
/** GITS_BASER<n>.Type of the vPE table. */
export const GITS_BASER_TYPE_VPE = 2;
/** vPE table entry size (bytes) GITS_BASER2 and GICR_VPROPBASER report: QEMU's GITS_VPE_SIZE. */
export const ITS_VPE_ENTRY_SIZE = 8;

/** An LPI INTID of 1023 names no doorbell (VMAPP Default_Doorbell, VMAPTI Dbell_pINTID). */
export const DOORBELL_NONE = 1023;

// ---- V-commands (opcode | 0x20 of their physical counterparts; VMOVP, VSGI, INVDB have none) ----
export const GITS_CMD_VMOVI = 0x21;
export const GITS_CMD_VMOVP = 0x22;
export const GITS_CMD_VSGI = 0x23;
export const GITS_CMD_VSYNC = 0x25;
export const GITS_CMD_VMAPP = 0x29;
export const GITS_CMD_VMAPTI = 0x2a;
export const GITS_CMD_VMAPI = 0x2b;
export const GITS_CMD_VINVALL = 0x2d;
export const GITS_CMD_INVDB = 0x2e;

export const V_COMMAND_NAMES: Readonly<Record<number, string>> = {
  [GITS_CMD_VMOVI]: 'VMOVI',
  [GITS_CMD_VMOVP]: 'VMOVP',
  [GITS_CMD_VSGI]: 'VSGI',
  [GITS_CMD_VSYNC]: 'VSYNC',
  [GITS_CMD_VMAPP]: 'VMAPP',
  [GITS_CMD_VMAPTI]: 'VMAPTI',
  [GITS_CMD_VMAPI]: 'VMAPI',
  [GITS_CMD_VINVALL]: 'VINVALL',
  [GITS_CMD_INVDB]: 'INVDB',
};

/** Field extractors over a command as 8 little-endian words (DW n = w[2n] | w[2n+1] << 32). */
/** vPEID (DW1 47:32). */
export const cmdVpeId = (w: Uint32Array): number => w[3] & 0xffff;
/** VMAPTI vINTID (DW2 31:0). */
export const cmdVirtualId = (w: Uint32Array): number => w[4];
/** VMAPTI Dbell_pINTID, VMOVI Doorbell (DW2 63:32). */
export const cmdDoorbell = (w: Uint32Array): number => w[5];
/** VMOVI D (DW2 bit 0): the Doorbell field is valid. */
export const cmdVmoviD = (w: Uint32Array): boolean => (w[4] & 1) !== 0;
/** VMAPP Alloc (DW0 bit 8) and PTZ (DW0 bit 9). */
export const cmdAlloc = (w: Uint32Array): boolean => (w[0] & (1 << 8)) !== 0;
export const cmdPtz = (w: Uint32Array): boolean => (w[0] & (1 << 9)) !== 0;
/** VMAPP VCONF_addr (DW0 51:16): the vLPI configuration table, 64K-aligned. */
export const cmdVconfAddr = (w: Uint32Array): number => paFromWords(w[0], w[1], 0xffff0000, 0xfffff);
/** VMAPP Default_Doorbell (DW1 31:0). */
export const cmdDefaultDoorbell = (w: Uint32Array): number => w[2];
/** VMAPP VPT_addr (DW3 51:16), 64K-aligned. */
export const cmdVptAddr = (w: Uint32Array): number => paFromWords(w[6], w[7], 0xffff0000, 0xfffff);
/** VMAPP VPT_size (DW3 7:0): vINTID bits - 1. */
export const cmdVptSize = (w: Uint32Array): number => w[6] & 0xff;
/** VMOVP Default_Doorbell (DW3 31:0) and DB (DW2 bit 63: it is valid). */
export const cmdVmovpDoorbell = (w: Uint32Array): number => w[6];
/** VSGI: vINTID (DW0 35:32), Priority (DW0 27:20), Group (10), Clear (9), Enable (8). */
export const cmdSgiIntid = (w: Uint32Array): number => w[1] & 0xf;
export const cmdSgiPriority = (w: Uint32Array): number => (w[0] >>> 20) & 0xff;
export const cmdSgiGroup = (w: Uint32Array): boolean => (w[0] & (1 << 10)) !== 0;
export const cmdSgiClear = (w: Uint32Array): boolean => (w[0] & (1 << 9)) !== 0;
export const cmdSgiEnable = (w: Uint32Array): boolean => (w[0] & (1 << 8)) !== 0;

// ---- E_ITS_* conditions of the V-commands ----
/*
 * The spec leaves a bad V-command's effect CONSTRAINED UNPREDICTABLE and Linux names no codes for
 * them; these follow the physical codes' encoding (0x01 << 16 | opcode << 8 | reason, reasons as
 * the physical ones: 01/02 ID out of range, 04 unmapped device, 05 EventID out of range, 06
 * physical INTID out of range, 07 unmapped interrupt) with 0x0b for an unmapped vPE and 0x0c for
 * an ITE of the wrong kind, and each names one of QEMU's checks (hw/intc/arm_gicv3_its.c).
 */
export const E_ITS_VMAPP_VPEID_OOR = 0x012901;
export const E_ITS_VMAPP_PROCNUM_OOR = 0x012902;
export const E_ITS_VMAPP_VPTSIZE_OOR = 0x012903;
export const E_ITS_VMAPP_DOORBELL_OOR = 0x012906;
export const E_ITS_VMAPTI_UNMAPPED_DEVICE = 0x012a04;
export const E_ITS_VMAPTI_ID_OOR = 0x012a05;
export const E_ITS_VMAPTI_VIRTUALID_OOR = 0x012a01;
export const E_ITS_VMAPTI_PHYSICALID_OOR = 0x012a06;
export const E_ITS_VMAPTI_UNMAPPED_VPE = 0x012a0b;
export const E_ITS_VMOVI_UNMAPPED_INTERRUPT = 0x012107;
export const E_ITS_VMOVI_NOT_VIRTUAL = 0x01210c;
export const E_ITS_VMOVI_UNMAPPED_VPE = 0x01210b;
export const E_ITS_VMOVI_PHYSICALID_OOR = 0x012106;
export const E_ITS_VMOVP_UNMAPPED_VPE = 0x01220b;
export const E_ITS_VMOVP_PROCNUM_OOR = 0x012202;
export const E_ITS_VSGI_UNMAPPED_VPE = 0x01230b;
export const E_ITS_VSYNC_UNMAPPED_VPE = 0x01250b;
export const E_ITS_VINVALL_UNMAPPED_VPE = 0x012d0b;
export const E_ITS_INVDB_UNMAPPED_VPE = 0x012e0b;
/** A physical command (MOVI) on an ITE that maps a vLPI. */
export const E_ITS_MOVI_VIRTUAL_INTERRUPT = 0x01010c;

export const E_ITS_V_CODES: readonly (readonly [string, number])[] = [
  ['E_ITS_VMAPP_VPEID_OOR', E_ITS_VMAPP_VPEID_OOR],
  ['E_ITS_VMAPP_PROCNUM_OOR', E_ITS_VMAPP_PROCNUM_OOR],
  ['E_ITS_VMAPP_VPTSIZE_OOR', E_ITS_VMAPP_VPTSIZE_OOR],
  ['E_ITS_VMAPP_DOORBELL_OOR', E_ITS_VMAPP_DOORBELL_OOR],
  ['E_ITS_VMAPTI_UNMAPPED_DEVICE', E_ITS_VMAPTI_UNMAPPED_DEVICE],
  ['E_ITS_VMAPTI_ID_OOR', E_ITS_VMAPTI_ID_OOR],
  ['E_ITS_VMAPTI_VIRTUALID_OOR', E_ITS_VMAPTI_VIRTUALID_OOR],
  ['E_ITS_VMAPTI_PHYSICALID_OOR', E_ITS_VMAPTI_PHYSICALID_OOR],
  ['E_ITS_VMAPTI_UNMAPPED_VPE', E_ITS_VMAPTI_UNMAPPED_VPE],
  ['E_ITS_VMOVI_UNMAPPED_INTERRUPT', E_ITS_VMOVI_UNMAPPED_INTERRUPT],
  ['E_ITS_VMOVI_NOT_VIRTUAL', E_ITS_VMOVI_NOT_VIRTUAL],
  ['E_ITS_VMOVI_UNMAPPED_VPE', E_ITS_VMOVI_UNMAPPED_VPE],
  ['E_ITS_VMOVI_PHYSICALID_OOR', E_ITS_VMOVI_PHYSICALID_OOR],
  ['E_ITS_VMOVP_UNMAPPED_VPE', E_ITS_VMOVP_UNMAPPED_VPE],
  ['E_ITS_VMOVP_PROCNUM_OOR', E_ITS_VMOVP_PROCNUM_OOR],
  ['E_ITS_VSGI_UNMAPPED_VPE', E_ITS_VSGI_UNMAPPED_VPE],
  ['E_ITS_VSYNC_UNMAPPED_VPE', E_ITS_VSYNC_UNMAPPED_VPE],
  ['E_ITS_VINVALL_UNMAPPED_VPE', E_ITS_VINVALL_UNMAPPED_VPE],
  ['E_ITS_INVDB_UNMAPPED_VPE', E_ITS_INVDB_UNMAPPED_VPE],
  ['E_ITS_MOVI_VIRTUAL_INTERRUPT', E_ITS_MOVI_VIRTUAL_INTERRUPT],
];

/**
 * A virtual ITE in an ITT (the ITT is vgic's live table, 8 bytes an entry: |63:48 next|47:16
 * pINTID|15:0 ICID|): the pINTID field holds ITE_VIRTUAL | vINTID and the ICID field the vPEID. No
 * physical LPI has bit 31 set (LPI INTIDs are below 2^16), so the two kinds never collide.
 */
export const ITE_VIRTUAL = 0x80000000;
