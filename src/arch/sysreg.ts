/**
 * System-register encodings of the GICv3 CPU interface (ICC_*, GIC spec IHI 0069 §12.2) and of the
 * generic timer registers vgic models (Arm ARM D13.8). Pure data: callable from anywhere.
 *
 * Encoding: the 16-bit (Op0, Op1, CRn, CRm, Op2) packing of KVM's KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS
 * attribute: Op0[15:14] Op1[13:11] CRn[10:7] CRm[6:3] Op2[2:0].
 */

export const sysreg = (op0: number, op1: number, crn: number, crm: number, op2: number): number =>
  ((op0 & 3) << 14) | ((op1 & 7) << 11) | ((crn & 15) << 7) | ((crm & 15) << 3) | (op2 & 7);

export const ICC_PMR_EL1 = sysreg(3, 0, 4, 6, 0);
export const ICC_IAR0_EL1 = sysreg(3, 0, 12, 8, 0);
export const ICC_EOIR0_EL1 = sysreg(3, 0, 12, 8, 1);
export const ICC_HPPIR0_EL1 = sysreg(3, 0, 12, 8, 2);
export const ICC_BPR0_EL1 = sysreg(3, 0, 12, 8, 3);
export const ICC_AP0R0_EL1 = sysreg(3, 0, 12, 8, 4);
export const ICC_AP0R1_EL1 = sysreg(3, 0, 12, 8, 5);
export const ICC_AP0R2_EL1 = sysreg(3, 0, 12, 8, 6);
export const ICC_AP0R3_EL1 = sysreg(3, 0, 12, 8, 7);
export const ICC_AP1R0_EL1 = sysreg(3, 0, 12, 9, 0);
export const ICC_AP1R1_EL1 = sysreg(3, 0, 12, 9, 1);
export const ICC_AP1R2_EL1 = sysreg(3, 0, 12, 9, 2);
export const ICC_AP1R3_EL1 = sysreg(3, 0, 12, 9, 3);
export const ICC_DIR_EL1 = sysreg(3, 0, 12, 11, 1);
export const ICC_RPR_EL1 = sysreg(3, 0, 12, 11, 3);
export const ICC_SGI1R_EL1 = sysreg(3, 0, 12, 11, 5);
export const ICC_ASGI1R_EL1 = sysreg(3, 0, 12, 11, 6);
export const ICC_SGI0R_EL1 = sysreg(3, 0, 12, 11, 7);
export const ICC_IAR1_EL1 = sysreg(3, 0, 12, 12, 0);
export const ICC_EOIR1_EL1 = sysreg(3, 0, 12, 12, 1);
export const ICC_HPPIR1_EL1 = sysreg(3, 0, 12, 12, 2);
export const ICC_BPR1_EL1 = sysreg(3, 0, 12, 12, 3);
export const ICC_CTLR_EL1 = sysreg(3, 0, 12, 12, 4);
export const ICC_SRE_EL1 = sysreg(3, 0, 12, 12, 5);
export const ICC_IGRPEN0_EL1 = sysreg(3, 0, 12, 12, 6);
export const ICC_IGRPEN1_EL1 = sysreg(3, 0, 12, 12, 7);

export const CNTFRQ_EL0 = sysreg(3, 3, 14, 0, 0);
export const CNTVCT_EL0 = sysreg(3, 3, 14, 0, 2);
export const CNTV_TVAL_EL0 = sysreg(3, 3, 14, 3, 0);
export const CNTV_CTL_EL0 = sysreg(3, 3, 14, 3, 1);
export const CNTV_CVAL_EL0 = sysreg(3, 3, 14, 3, 2);

/** ICC_CTLR_EL1 fields (§12.2.6). */
export const ICC_CTLR_CBPR = 1 << 0;
export const ICC_CTLR_EOIMODE = 1 << 1;
export const ICC_CTLR_PRIBITS_SHIFT = 8;
export const ICC_CTLR_IDBITS_SHIFT = 11;

/** ICC_SGI1R_EL1 fields (§12.2.22), as a (lo, hi) pair of 32-bit words. */
export const SGIR_LO_TARGETLIST_MASK = 0xffff;
export const SGIR_LO_AFF1_SHIFT = 16;
export const SGIR_LO_INTID_SHIFT = 24;
export const SGIR_HI_AFF2_MASK = 0xff; // bits [39:32]
export const SGIR_HI_IRM = 1 << 8; // bit 40
export const SGIR_HI_RS_SHIFT = 12; // bits [47:44]
export const SGIR_HI_AFF3_SHIFT = 16; // bits [55:48]

/** CNTV_CTL_EL0 fields. */
export const CNTV_CTL_ENABLE = 1 << 0;
export const CNTV_CTL_IMASK = 1 << 1;
export const CNTV_CTL_ISTATUS = 1 << 2;

/** Every system register vgic implements, by its architectural name. */
export const SYSREG_NAMES: Readonly<Record<string, number>> = {
  ICC_PMR_EL1,
  ICC_IAR0_EL1,
  ICC_EOIR0_EL1,
  ICC_HPPIR0_EL1,
  ICC_BPR0_EL1,
  ICC_AP0R0_EL1,
  ICC_AP0R1_EL1,
  ICC_AP0R2_EL1,
  ICC_AP0R3_EL1,
  ICC_AP1R0_EL1,
  ICC_AP1R1_EL1,
  ICC_AP1R2_EL1,
  ICC_AP1R3_EL1,
  ICC_DIR_EL1,
  ICC_RPR_EL1,
  ICC_SGI1R_EL1,
  ICC_ASGI1R_EL1,
  ICC_SGI0R_EL1,
  ICC_IAR1_EL1,
  ICC_EOIR1_EL1,
  ICC_HPPIR1_EL1,
  ICC_BPR1_EL1,
  ICC_CTLR_EL1,
  ICC_SRE_EL1,
  ICC_IGRPEN0_EL1,
  ICC_IGRPEN1_EL1,
  CNTFRQ_EL0,
  CNTVCT_EL0,
  CNTV_TVAL_EL0,
  CNTV_CTL_EL0,
  CNTV_CVAL_EL0,
};

const NAME_BY_ENCODING = new Map<number, string>(Object.entries(SYSREG_NAMES).map(([n, e]) => [e, n]));

/** The architectural name of an encoding, or its generic `s3_0_c12_c12_0` form. */
export function sysregName(enc: number): string {
  const known = NAME_BY_ENCODING.get(enc);
  if (known !== undefined) return known;
  return `s${(enc >> 14) & 3}_${(enc >> 11) & 7}_c${(enc >> 7) & 15}_c${(enc >> 3) & 15}_${enc & 7}`;
}

/**
 * Parses a register name: an architectural name (case-insensitive) or the generic
 * `S<op0>_<op1>_C<n>_C<m>_<op2>` form. Returns the encoding, or -1 if it is neither.
 */
export function parseSysreg(name: string): number {
  const upper = name.toUpperCase();
  const known = SYSREG_NAMES[upper];
  if (known !== undefined) return known;
  const m = /^S([0-3])_([0-7])_C([0-9]|1[0-5])_C([0-9]|1[0-5])_([0-7])$/.exec(upper);
  if (!m) return -1;
  return sysreg(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}
