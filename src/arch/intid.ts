/**
 * INTID ranges of the GICv3 architecture (GIC spec IHI 0069, §2.2 "INTIDs").
 * Pure data: no state, callable from anywhere.
 */

/** SGIs 0-15, PPIs 16-31: banked per PE ("private"). */
export const VGIC_NR_SGIS = 16;
export const VGIC_NR_PRIVATE_IRQS = 32;
/** First SPI. */
export const VGIC_FIRST_SPI = 32;
/** Largest INTID an SPI may have (1019); 1020-1023 are special. */
export const VGIC_MAX_SPI = 1019;
/** Special INTIDs (§2.2.1). 1023 is "spurious": no pending interrupt. */
export const INTID_SECURE = 1020;
export const INTID_NONSECURE = 1021;
export const INTID_SPURIOUS = 1023;
/** First LPI. */
export const VGIC_MIN_LPI = 8192;

/** KVM's default and limits for the number of SPIs (KVM_DEV_ARM_VGIC_GRP_NR_IRQS counts all INTIDs, 64..1024). */
export const VGIC_DEFAULT_SPIS = 224;
export const VGIC_MAX_SPIS = 988;

/** The virtual arch timer's PPI on QEMU virt and KVM (CNTV, INTID 27). */
export const PPI_VTIMER = 27;

export const isSgi = (intid: number): boolean => intid < VGIC_NR_SGIS;
export const isPrivate = (intid: number): boolean => intid < VGIC_NR_PRIVATE_IRQS;
export const isSpecial = (intid: number): boolean => intid >= INTID_SECURE && intid <= INTID_SPURIOUS;
