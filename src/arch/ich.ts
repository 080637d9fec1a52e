/**
 * The GICv3 virtualization interface as data (GIC spec IHI 0069, §12.6 ICH_* and §12.7 ICV_*):
 * list-register layout, ICH_VMCR_EL2 fields, ICH_HCR_EL2 maintenance enables, ICH_MISR_EL2.
 * vgic stores list registers exactly in ICH_LR<n>_EL2 format, as two 32-bit words per LR.
 *
 * ICH_LR<n>_EL2 (64 bits), stored as lo = bits[31:0], hi = bits[63:32]:
 *
 *   63  62 61  60  59..56  55......48  47..42  41 (EOI when HW=0) 40......32  31..........0
 *  +------+---+-----+------+------------+-------+--------------------------+--------------+
 *  |State |HW |Group| RES0 |  Priority  | RES0  |   pINTID[9:0] (HW=1)     |   vINTID     |
 *  +------+---+-----+------+------------+-------+--------------------------+--------------+
 *  State: 00 invalid, 01 pending, 10 active, 11 pending and active.
 *
 * Pure data: no state, callable from anywhere.
 */

// Fields of the high word (bit positions minus 32).
export const LR_HI_PINTID_MASK = 0x3ff; // [41:32] when HW=1
export const LR_HI_EOI = 1 << 9; // [41] when HW=0: maintenance interrupt on EOI
export const LR_HI_PRIORITY_SHIFT = 16; // [55:48]
export const LR_HI_PRIORITY_MASK = 0xff << 16;
export const LR_HI_GROUP = 1 << 28; // [60]
export const LR_HI_HW = 1 << 29; // [61]
export const LR_HI_PENDING = 1 << 30; // [62]
export const LR_HI_ACTIVE = 1 << 31; // [63]
export const LR_HI_STATE = LR_HI_PENDING | LR_HI_ACTIVE;

/** Largest number of list registers (ICH_VTR_EL2.ListRegs + 1 ≤ 16), as KVM's VGIC_V3_MAX_LRS. */
export const VGIC_V3_MAX_LRS = 16;
export const VGIC_DEFAULT_LRS = 4;

/** Priority bits implemented (KVM's VGIC_PRI_BITS, ICH_VTR_EL2.PRIbits/PREbits = 5). */
export const VGIC_PRI_BITS = 5;
/** Mask of implemented priority bits for SGIs, PPIs and SPIs: GENMASK(7, 3). */
export const VGIC_PRI_MASK = (0xff << (8 - VGIC_PRI_BITS)) & 0xff;
/** Lowest legal ICV_BPR0 (7 - PREbits); ICV_BPR1's is one more. */
export const VGIC_MIN_BPR0 = 7 - VGIC_PRI_BITS;
/** Idle running priority. */
export const PRIO_IDLE = 0xff;

/** ICH_VMCR_EL2 (§12.6.13): the guest-visible CPU interface control state. */
export const VMCR_ENG0 = 1 << 0;
export const VMCR_ENG1 = 1 << 1;
export const VMCR_CBPR = 1 << 4;
export const VMCR_EOIM = 1 << 9;
export const VMCR_BPR1_SHIFT = 18;
export const VMCR_BPR0_SHIFT = 21;
export const VMCR_PMR_SHIFT = 24;
export const VMCR_BPR_MASK = 7;

/** ICH_HCR_EL2 (§12.6.3) maintenance enables used by KVM's vgic_v3_configure_hcr. */
export const HCR_UIE = 1 << 1;
export const HCR_LRENPIE = 1 << 2;
export const HCR_NPIE = 1 << 3;

/** ICH_MISR_EL2 (§12.6.10) maintenance interrupt status. */
export const MISR_EOI = 1 << 0;
export const MISR_U = 1 << 1;
export const MISR_LRENP = 1 << 2;
export const MISR_NP = 1 << 3;
