/**
 * The GICv3 Interrupt Translation Service as data (GIC spec IHI 0069, chapter 5 "Locality-specific
 * Peripheral Interrupts and the ITS", §5.3 command formats, §12.19 GITS_* registers), the
 * redistributor's LPI table registers (§12.10), and KVM's ITS table ABI rev 0
 * (Documentation/virt/kvm/devices/arm-vgic-its.rst). Names exactly as the specification.
 * Pure data and pure field extractors: no state, callable from anywhere.
 */

import { paFromWords } from './addr.ts';
import { IMPLEMENTER_ARM, PRODUCT_ID_KVM } from './gicv3.ts';
import { E_ITS_V_CODES } from './gicv4.ts';

// ---- GITS_* register offsets (§12.19). The ITS is two 64K frames: control, then translation. ----
export const GITS_CTLR = 0x0000;
export const GITS_IIDR = 0x0004;
export const GITS_TYPER = 0x0008;
export const GITS_STATUSR = 0x0040;
export const GITS_UMSIR = 0x0048;
export const GITS_CBASER = 0x0080;
export const GITS_CWRITER = 0x0088;
export const GITS_CREADR = 0x0090;
export const GITS_BASER = 0x0100; // GITS_BASER<n>, 8 × 64-bit
export const GITS_IDREGS = 0xffd0;
export const GITS_TRANSLATER = 0x10040;
export const GITS_FRAME_SIZE = 0x20000;

/** GITS_CTLR (§12.19.6). */
export const GITS_CTLR_ENABLED = 1 << 0;
export const GITS_CTLR_QUIESCENT = 1 << 31;

/**
 * GITS_TYPER as KVM (vgic_mmio_read_its_typer): Physical, ITT_entry_size 8, IDbits 16, Devbits 16,
 * PTA 0 (RDbase is a processor number), CIL 0 (16-bit collection IDs), no HCC.
 */
export const ITS_DEVBITS = 16;
export const ITS_EVENT_IDBITS = 16;
export const ITS_ITE_SIZE = 8;
export const GITS_TYPER_PHYSICAL = 1 << 0;
export const GITS_TYPER_LO =
  (GITS_TYPER_PHYSICAL |
    ((ITS_ITE_SIZE - 1) << 4) |
    ((ITS_EVENT_IDBITS - 1) << 8) |
    ((ITS_DEVBITS - 1) << 13)) >>>
  0;

/** GITS_IIDR as KVM: Revision = the table ABI revision (0), ProductID 'K', Implementer ARM. */
export const ITS_ABI_REV = 0;
export const GITS_IIDR_VALUE = ((PRODUCT_ID_KVM << 24) | (ITS_ABI_REV << 12) | IMPLEMENTER_ARM) >>> 0;
/** ITS peripheral ID registers (PIDR0 0x92, PIDR1 0xb4, PIDR2 0x3b as KVM). Offset from GITS_IDREGS. */
export function gitsIdReg(at: number): number {
  switch (at) {
    case 0x10:
      return 0x92; // PIDR0
    case 0x14:
      return 0xb4; // PIDR1
    case 0x18:
      return 0x3b; // PIDR2: ArchRev 3
    case 0x20:
      return 0x0d; // CIDR0..3: the CoreSight component ID
    case 0x24:
      return 0xf0;
    case 0x28:
      return 0x05;
    case 0x2c:
      return 0xb1;
    default:
      return 0;
  }
}

/**
 * GITS_BASER<n> fields (§12.19.2), high word / low word split. vgic implements BASER0 (Device table)
 * and BASER1 (Collection table), 64K pages only, 8-byte entries (KVM's ABI rev 0).
 */
export const GITS_BASER_HI_VALID = 1 << 31;
export const GITS_BASER_HI_INDIRECT = 1 << 30;
export const GITS_BASER_HI_TYPE_SHIFT = 24; // bits 58:56
export const GITS_BASER_HI_ESZ_SHIFT = 16; // bits 52:48, Entry_Size - 1
export const GITS_BASER_HI_ADDR_MASK = 0xffff; // bits 47:32 of the table address
export const GITS_BASER_LO_ADDR_MASK = 0xffff0000; // bits 31:16 (64K-aligned)
export const GITS_BASER_LO_PAGE_SIZE_64K = 2 << 8;
export const GITS_BASER_LO_SIZE_MASK = 0xff; // number of 64K pages - 1
export const GITS_BASER_TYPE_DEVICE = 1;
export const GITS_BASER_TYPE_COLLECTION = 4;
/** Bits the guest may set: cacheability and shareability (kept, without effect), Valid, Indirect. */
export const GITS_BASER_HI_RW = 0xf8000000 | (7 << 21) | GITS_BASER_HI_ADDR_MASK; // 63:59, 55:53, 47:32
export const GITS_BASER_LO_RW = GITS_BASER_LO_ADDR_MASK | (3 << 10) | GITS_BASER_LO_SIZE_MASK;
export const ITS_TABLE_PAGE = 0x10000;
export const ITS_DTE_SIZE = 8;
export const ITS_CTE_SIZE = 8;

/** GITS_CBASER (§12.19.3): Valid, the queue address (64K-aligned as KVM keeps it) and Size (4K pages - 1). */
export const GITS_CBASER_HI_VALID = 1 << 31;
export const GITS_CBASER_HI_RW = 0xb8000000 | (7 << 21) | 0xffff; // Valid, Inner/OuterCache, address 47:32
export const GITS_CBASER_LO_RW = 0xffff0000 | (3 << 10) | 0xff;
/** Command-queue offsets: 32-byte commands, offset bits 19:5 (ITS_CMD_OFFSET). */
export const ITS_CMD_SIZE = 32;
export const ITS_CMD_OFFSET_MASK = 0x000fffe0;

// ---- ITS commands (§5.3). A command is 4 little-endian doublewords, read here as 8 words. ----
export const GITS_CMD_MOVI = 0x01;
export const GITS_CMD_INT = 0x03;
export const GITS_CMD_CLEAR = 0x04;
export const GITS_CMD_SYNC = 0x05;
export const GITS_CMD_MAPD = 0x08;
export const GITS_CMD_MAPC = 0x09;
export const GITS_CMD_MAPTI = 0x0a;
export const GITS_CMD_MAPI = 0x0b;
export const GITS_CMD_INV = 0x0c;
export const GITS_CMD_INVALL = 0x0d;
export const GITS_CMD_MOVALL = 0x0e;
export const GITS_CMD_DISCARD = 0x0f;

export const ITS_COMMAND_NAMES: Readonly<Record<number, string>> = {
  [GITS_CMD_MOVI]: 'MOVI',
  [GITS_CMD_INT]: 'INT',
  [GITS_CMD_CLEAR]: 'CLEAR',
  [GITS_CMD_SYNC]: 'SYNC',
  [GITS_CMD_MAPD]: 'MAPD',
  [GITS_CMD_MAPC]: 'MAPC',
  [GITS_CMD_MAPTI]: 'MAPTI',
  [GITS_CMD_MAPI]: 'MAPI',
  [GITS_CMD_INV]: 'INV',
  [GITS_CMD_INVALL]: 'INVALL',
  [GITS_CMD_MOVALL]: 'MOVALL',
  [GITS_CMD_DISCARD]: 'DISCARD',
};

/** Field extractors over a command as 8 little-endian words w[0..7] (DW n = w[2n] | w[2n+1] << 32). */
export const cmdOpcode = (w: Uint32Array): number => w[0] & 0xff;
export const cmdDeviceId = (w: Uint32Array): number => w[1];
export const cmdEventId = (w: Uint32Array): number => w[2];
/** MAPTI pINTID (DW1 63:32). */
export const cmdPhysicalId = (w: Uint32Array): number => w[3];
/** MAPD Size: EventID bits - 1 (DW1 4:0). */
export const cmdSize = (w: Uint32Array): number => w[2] & 0x1f;
/** ICID (DW2 15:0). */
export const cmdCollection = (w: Uint32Array): number => w[4] & 0xffff;
/** Valid (DW2 bit 63). */
export const cmdValid = (w: Uint32Array): boolean => (w[5] & 0x80000000) !== 0;
/** RDbase of MAPC/SYNC/MOVALL (DW2 51:16); with GITS_TYPER.PTA = 0 it is a processor number. */
export const cmdTargetAddr = (w: Uint32Array): number => (w[4] >>> 16) + (w[5] & 0xfffff) * 0x10000;
/** RDbase2 of MOVALL (DW3 51:16). */
export const cmdTargetAddr2 = (w: Uint32Array): number => (w[6] >>> 16) + (w[7] & 0xfffff) * 0x10000;
/** MAPD ITT_addr (DW2 51:8), a 256-byte-aligned guest physical address. */
export const cmdIttAddr = (w: Uint32Array): number => paFromWords(w[4], w[5], 0xffffff00);

// ---- E_ITS_* error conditions (Linux include/linux/irqchip/arm-gic-v3.h) ----
export const E_ITS_MOVI_UNMAPPED_INTERRUPT = 0x010107;
export const E_ITS_MOVI_UNMAPPED_COLLECTION = 0x010109;
export const E_ITS_INT_UNMAPPED_INTERRUPT = 0x010307;
export const E_ITS_CLEAR_UNMAPPED_INTERRUPT = 0x010507;
export const E_ITS_MAPD_DEVICE_OOR = 0x010801;
export const E_ITS_MAPD_ITTSIZE_OOR = 0x010802;
export const E_ITS_MAPC_PROCNUM_OOR = 0x010902;
export const E_ITS_MAPC_COLLECTION_OOR = 0x010903;
export const E_ITS_MAPTI_UNMAPPED_DEVICE = 0x010a04;
export const E_ITS_MAPTI_ID_OOR = 0x010a05;
export const E_ITS_MAPTI_PHYSICALID_OOR = 0x010a06;
export const E_ITS_INV_UNMAPPED_INTERRUPT = 0x010c07;
export const E_ITS_INVALL_UNMAPPED_COLLECTION = 0x010d09;
export const E_ITS_MOVALL_PROCNUM_OOR = 0x010e01;
export const E_ITS_DISCARD_UNMAPPED_INTERRUPT = 0x010f07;

/** Every E_ITS_* condition with its name, in a fixed order (the index of its error counter). */
export const E_ITS_CODES: readonly (readonly [string, number])[] = [
  ['E_ITS_MOVI_UNMAPPED_INTERRUPT', E_ITS_MOVI_UNMAPPED_INTERRUPT],
  ['E_ITS_MOVI_UNMAPPED_COLLECTION', E_ITS_MOVI_UNMAPPED_COLLECTION],
  ['E_ITS_INT_UNMAPPED_INTERRUPT', E_ITS_INT_UNMAPPED_INTERRUPT],
  ['E_ITS_CLEAR_UNMAPPED_INTERRUPT', E_ITS_CLEAR_UNMAPPED_INTERRUPT],
  ['E_ITS_MAPD_DEVICE_OOR', E_ITS_MAPD_DEVICE_OOR],
  ['E_ITS_MAPD_ITTSIZE_OOR', E_ITS_MAPD_ITTSIZE_OOR],
  ['E_ITS_MAPC_PROCNUM_OOR', E_ITS_MAPC_PROCNUM_OOR],
  ['E_ITS_MAPC_COLLECTION_OOR', E_ITS_MAPC_COLLECTION_OOR],
  ['E_ITS_MAPTI_UNMAPPED_DEVICE', E_ITS_MAPTI_UNMAPPED_DEVICE],
  ['E_ITS_MAPTI_ID_OOR', E_ITS_MAPTI_ID_OOR],
  ['E_ITS_MAPTI_PHYSICALID_OOR', E_ITS_MAPTI_PHYSICALID_OOR],
  ['E_ITS_INV_UNMAPPED_INTERRUPT', E_ITS_INV_UNMAPPED_INTERRUPT],
  ['E_ITS_INVALL_UNMAPPED_COLLECTION', E_ITS_INVALL_UNMAPPED_COLLECTION],
  ['E_ITS_MOVALL_PROCNUM_OOR', E_ITS_MOVALL_PROCNUM_OOR],
  ['E_ITS_DISCARD_UNMAPPED_INTERRUPT', E_ITS_DISCARD_UNMAPPED_INTERRUPT],
  // GICv4.1's V-commands (arch/gicv4.ts), counted only with direct injection.
  ...E_ITS_V_CODES,
];

/** Counter index of an E_ITS code (0..34), or -1. */
export function eItsIndex(code: number): number {
  for (let i = 0; i < E_ITS_CODES.length; i++) if (E_ITS_CODES[i][1] === code) return i;
  return -1;
}

// ---- Redistributor LPI registers (§12.10.23 PROPBASER, §12.10.22 PENDBASER) ----
/** GICR_PROPBASER: IDbits (4:0), cacheability/shareability, PA 51:12. Low/high word masks of what is kept. */
export const GICR_PROPBASER_IDBITS_MASK = 0x1f;
export const GICR_PROPBASER_LO_RW = 0xfffff000 | (3 << 10) | (7 << 7) | 0x1f;
export const GICR_PROPBASER_HI_RW = (7 << 24) | 0xffff; // OuterCache 58:56, PA 47:32
/** GICR_PENDBASER: PTZ (bit 62, reads as zero), PA 51:16, cacheability/shareability. */
export const GICR_PENDBASER_HI_PTZ = 1 << 30;
export const GICR_PENDBASER_LO_RW = 0xffff0000 | (3 << 10) | (7 << 7);
export const GICR_PENDBASER_HI_RW = GICR_PENDBASER_HI_PTZ | (7 << 24) | 0xffff;
/** The LPI property byte (§5.1.1): priority 7:2, Enable bit 0. */
export const LPI_PROP_ENABLED = 1 << 0;
export const LPI_PROP_PRIORITY_MASK = 0xfc;
/** LPI INTID bits vgic supports (KVM's INTERRUPT_ID_BITS_ITS). */
export const LPI_ID_BITS_MAX = 16;
/** Smallest LPI INTID space: below 14 bits there are no LPIs. */
export const LPI_ID_BITS_MIN = 14;

// ---- KVM ITS table ABI rev 0 (8-byte little-endian entries), as hi/lo word fields ----
/** DTE: |63 V|62:49 next|48:5 ITT_addr[51:8]|4:0 Size-1|. */
export const ABI_DTE_HI_VALID = 1 << 31;
export const ABI_DTE_NEXT_SHIFT = 49;
export const ABI_DTE_NEXT_MAX = 2 ** 14 - 1;
/** CTE: |63 V|62:52 RES0|51:16 RDBase (vCPU id)|15:0 ICID|. RDBase 0xffffffff: collection not mapped. */
export const ABI_CTE_HI_VALID = 1 << 31;
export const ABI_CTE_NOT_MAPPED = 0xffffffff;
/** ITE: |63:48 next|47:16 pINTID|15:0 ICID|; pINTID 0 is an invalid entry. */
export const ABI_ITE_NEXT_MAX = 2 ** 16 - 1;
/** Indirect (two-level) tables: L1 entry |63 V|51:16 L2 page address|, L2 pages are 64K. */
export const ABI_L1E_HI_VALID = 1 << 31;
