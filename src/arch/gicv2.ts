/**
 * GICv2 as data (GIC spec IHI 0048B): the distributor's 4K frame (§4.3), the CPU interface's 8K
 * frame (§4.4, GICC_* and, for a guest, the virtual CPU interface GICV_* of §5.3 at the same
 * offsets), the GICH_LR list-register layout (§5.3.8) and QEMU virt's GICv2 map.
 * Pure data: no state, callable from anywhere.
 *
 * GICH_LR<n> (32 bits), one word per LR:
 *
 *   31   30    29..28   27......23   22..20   19          18..13   12..10    9........0
 *  +----+-----+--------+------------+--------+-----------------------------+-----------+
 *  | HW |Grp1 | State  | Priority   |  RES0  | HW=1: PhysicalID [19:10]    | VirtualID |
 *  |    |     |        | [7:3]      |        | HW=0: EOI [19], CPUID [12:10]|          |
 *  +----+-----+--------+------------+--------+-----------------------------+-----------+
 *  State: 00 invalid, 01 pending, 10 active, 11 pending and active.
 */

// ---- Distributor, GICD_* (§4.3). One 4K frame. ----
export const GICD_V2_FRAME_SIZE = 0x1000;
export const GICD_V2_ENABLE = 1 << 0; // GICD_CTLR.Enable (KVM's single dist->enabled)
/** GICD_TYPER.CPUNumber: the number of implemented CPU interfaces minus one. */
export const GICD_TYPER_CPUNUMBER_SHIFT = 5;
export const GICD_V2_IDREGS = 0xfd0;
/** PIDR2.ArchRev = 2 (GICv2), as QEMU's GIC reports it. */
export const GIC_PIDR2_ARCH_GICV2 = 0x2b;

/** GICD_SGIR (§4.3.15). */
export const SGIR_INTID_MASK = 0xf;
export const SGIR_TARGETLIST_SHIFT = 16;
export const SGIR_FILTER_SHIFT = 24;
export const SGIR_FILTER_LIST = 0;
export const SGIR_FILTER_OTHERS = 1;
export const SGIR_FILTER_SELF = 2;

/** At most 8 CPU interfaces: the target lists and SGI source fields are 8 bits. */
export const VGIC_V2_MAX_CPUS = 8;

// ---- CPU interface, GICC_* (§4.4). ----
export const GICC_CTLR = 0x00;
export const GICC_PMR = 0x04;
export const GICC_BPR = 0x08;
export const GICC_IAR = 0x0c;
export const GICC_EOIR = 0x10;
export const GICC_RPR = 0x14;
export const GICC_HPPIR = 0x18;
export const GICC_ABPR = 0x1c;
export const GICC_AIAR = 0x20;
export const GICC_AEOIR = 0x24;
export const GICC_AHPPIR = 0x28;
export const GICC_APR0 = 0xd0;
export const GICC_NSAPR0 = 0xe0;
export const GICC_IIDR = 0xfc;
export const GICC_DIR = 0x1000;
export const GICC_FRAME_SIZE = 0x2000;

/** GICC_CTLR / GICV_CTLR bits (§5.3.1, the view without Security Extensions). */
export const GICC_CTLR_ENABLE_GRP0 = 1 << 0;
export const GICC_CTLR_ENABLE_GRP1 = 1 << 1;
export const GICC_CTLR_ACKCTL = 1 << 2;
export const GICC_CTLR_FIQEN = 1 << 3;
export const GICC_CTLR_CBPR = 1 << 4;
export const GICC_CTLR_EOIMODE = 1 << 9;
/** GICC_IAR / GICC_EOIR: the source CPU of an SGI in bits [12:10]. */
export const GICC_IAR_CPUID_SHIFT = 10;
export const GICC_INTID_MASK = 0x3ff;
/** KVM's GICC_IIDR: ProductID 'K', architecture version 2, implementer ARM. */
export const GICC_IIDR_KVM = ((0x4b << 20) | (2 << 16) | 0x43b) >>> 0;
/** INTID 1022: a Group 1 interrupt is the highest pending one, but GICC_IAR cannot acknowledge it (AckCtl = 0). */
export const INTID_GRP1_SPURIOUS = 1022;

// ---- GICH_LR<n> (§5.3.8). ----
export const GICH_LR_VIRTUALID = 0x3ff;
export const GICH_LR_PHYSID_CPUID_SHIFT = 10;
export const GICH_LR_PHYSID_MASK = 0x3ff << 10;
export const GICH_LR_CPUID_MASK = 7 << 10;
export const GICH_LR_EOI = 1 << 19;
export const GICH_LR_PRIORITY_SHIFT = 23; // priority[7:3] in [27:23]
export const GICH_LR_PRIORITY_MASK = 0x1f << 23;
export const GICH_LR_PENDING = 1 << 28;
export const GICH_LR_ACTIVE = 1 << 29;
export const GICH_LR_STATE = GICH_LR_PENDING | GICH_LR_ACTIVE;
export const GICH_LR_GROUP1 = 1 << 30;
export const GICH_LR_HW = 1 << 31;
/** Bits of a GICH_LR that must be zero: [22:20], and [18:13] when HW = 0. */
export const GICH_LR_RES0 = 0x7 << 20;

// ---- QEMU virt's GICv2 map (hw/arm/virt.c: VIRT_GIC_DIST, VIRT_GIC_CPU). ----
export const VIRT_V2_GICD_BASE = 0x08000000;
export const VIRT_V2_GICC_BASE = 0x08010000;
/** GICv2 frames need 4K alignment (KVM_VGIC_V2_DIST_SIZE / _CPU_SIZE alignment). */
export const GICV2_FRAME_ALIGN = 0x1000;
