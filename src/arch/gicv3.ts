/**
 * GICv3 memory-mapped register offsets and field layouts (GIC spec IHI 0069, chapter 12).
 * Names exactly as the specification: a reader with the spec finds each register by name.
 * Pure data: no state, callable from anywhere.
 */

// ---- Distributor, GICD_* (§12.9). One 64K frame. ----
export const GICD_CTLR = 0x0000;
export const GICD_TYPER = 0x0004;
export const GICD_IIDR = 0x0008;
export const GICD_TYPER2 = 0x000c;
export const GICD_STATUSR = 0x0010;
export const GICD_SETSPI_NSR = 0x0040;
export const GICD_CLRSPI_NSR = 0x0048;
export const GICD_SETSPI_SR = 0x0050;
export const GICD_CLRSPI_SR = 0x0058;
export const GICD_IGROUPR = 0x0080;
export const GICD_ISENABLER = 0x0100;
export const GICD_ICENABLER = 0x0180;
export const GICD_ISPENDR = 0x0200;
export const GICD_ICPENDR = 0x0280;
export const GICD_ISACTIVER = 0x0300;
export const GICD_ICACTIVER = 0x0380;
export const GICD_IPRIORITYR = 0x0400;
export const GICD_ITARGETSR = 0x0800;
export const GICD_ICFGR = 0x0c00;
export const GICD_IGRPMODR = 0x0d00;
export const GICD_NSACR = 0x0e00;
export const GICD_SGIR = 0x0f00;
export const GICD_CPENDSGIR = 0x0f10;
export const GICD_SPENDSGIR = 0x0f20;
export const GICD_IROUTER = 0x6000;
export const GICD_IDREGS = 0xffd0;
export const GICD_PIDR2 = 0xffe8;
export const GICD_FRAME_SIZE = 0x10000;

/** GICD_CTLR with GICD_CTLR.DS == 1 (single Security state, §12.9.4). */
export const GICD_CTLR_ENABLE_GRP0 = 1 << 0;
export const GICD_CTLR_ENABLE_GRP1 = 1 << 1; // EnableGrp1 (EnableGrp1A in the two-state view)
/** GICv4.1: SGIs of this VM are vSGIs without active state (only with GICD_TYPER2.nASSGIcap). */
export const GICD_CTLR_NASSGIREQ = 1 << 8;
/** GICD_TYPER2.nASSGIcap: GICD_CTLR.nASSGIreq is implemented (GICv4.1 direct vSGIs). */
export const GICD_TYPER2_NASSGICAP = 1 << 8;
export const GICD_CTLR_ARE = 1 << 4;
export const GICD_CTLR_DS = 1 << 6;
export const GICD_CTLR_RWP = 1 << 31;

/** GICD_TYPER fields (§12.9.38). */
export const GICD_TYPER_LPIS = 1 << 17;
export const GICD_TYPER_IDBITS_SHIFT = 19;
export const GICD_TYPER_A3V = 1 << 24;
export const GICD_TYPER_NO1N = 1 << 25;

/** GICD_IIDR as KVM: ProductID 'K' (0x4b), Revision = implementation_rev, Implementer ARM (0x43b). */
export const PRODUCT_ID_KVM = 0x4b;
export const IMPLEMENTER_ARM = 0x43b;
export const VGIC_IMPLEMENTATION_REV = 3;
export const GIC_IIDR = ((PRODUCT_ID_KVM << 24) | (VGIC_IMPLEMENTATION_REV << 12) | IMPLEMENTER_ARM) >>> 0;
/** PIDR2.ArchRev = 3 (GICv3): 0x3b as KVM and QEMU. */
export const GIC_PIDR2_ARCH_GICV3 = 0x3b;
/** PIDR2.ArchRev = 4 (GICv4): 0x4b, with direct injection. */
export const GIC_PIDR2_ARCH_GICV4 = 0x4b;

// ---- Redistributor, GICR_* (§12.10). RD_base frame + SGI_base frame, 64K each. ----
export const GICR_CTLR = 0x0000;
export const GICR_IIDR = 0x0004;
export const GICR_TYPER = 0x0008;
export const GICR_STATUSR = 0x0010;
export const GICR_WAKER = 0x0014;
export const GICR_SETLPIR = 0x0040;
export const GICR_CLRLPIR = 0x0048;
export const GICR_PROPBASER = 0x0070;
export const GICR_PENDBASER = 0x0078;
export const GICR_INVLPIR = 0x00a0;
export const GICR_INVALLR = 0x00b0;
export const GICR_SYNCR = 0x00c0;
export const GICR_IDREGS = 0xffd0;
export const GICR_PIDR2 = 0xffe8;

/** The SGI_base frame follows RD_base; its registers mirror the distributor's for INTIDs 0-31. */
export const GICR_SGI_BASE = 0x10000;
export const GICR_IGROUPR0 = GICR_SGI_BASE + GICD_IGROUPR;
export const GICR_ISENABLER0 = GICR_SGI_BASE + GICD_ISENABLER;
export const GICR_ICENABLER0 = GICR_SGI_BASE + GICD_ICENABLER;
export const GICR_ISPENDR0 = GICR_SGI_BASE + GICD_ISPENDR;
export const GICR_ICPENDR0 = GICR_SGI_BASE + GICD_ICPENDR;
export const GICR_ISACTIVER0 = GICR_SGI_BASE + GICD_ISACTIVER;
export const GICR_ICACTIVER0 = GICR_SGI_BASE + GICD_ICACTIVER;
export const GICR_IPRIORITYR0 = GICR_SGI_BASE + GICD_IPRIORITYR;
export const GICR_ICFGR0 = GICR_SGI_BASE + GICD_ICFGR;
export const GICR_IGRPMODR0 = GICR_SGI_BASE + GICD_IGRPMODR;
export const GICR_NSACR = GICR_SGI_BASE + GICD_NSACR;
/** One redistributor is two 64K frames: the GICv3 stride (GICv4 adds VLPI frames: 256K). */
export const GICR_STRIDE_V3 = 0x20000;

/** GICR_TYPER fields (§12.10.33); the upper word holds Aff3.Aff2.Aff1.Aff0. */
export const GICR_TYPER_PLPIS = 1 << 0;
export const GICR_TYPER_LAST = 1 << 4;
export const GICR_TYPER_PROCNUM_SHIFT = 8;

/** GICR_CTLR fields (§12.10.2). */
export const GICR_CTLR_ENABLE_LPIS = 1 << 0;
export const GICR_CTLR_CES = 1 << 1;
export const GICR_CTLR_IR = 1 << 2;
export const GICR_CTLR_RWP = 1 << 3;

/** Access-width bits for register descriptions (bytes 1, 2, 4, 8). */
export const W8 = 1;
export const W16 = 2;
export const W32 = 4;
export const W64 = 8;

/** Addresses of QEMU's `virt` board (hw/arm/virt.c), which vgic uses by default. */
export const VIRT_GICD_BASE = 0x08000000;
export const VIRT_GITS_BASE = 0x08080000;
export const VIRT_GICR_BASE = 0x080a0000;
export const VIRT_GICR_REGION_SIZE = 0xf60000;
export const VIRT_RAM_BASE = 0x40000000;
