/**
 * The syndromes vgic's machine gives the synchronous exceptions Unicorn leaves to the host
 * (Arm ARM D17.2.37 ESR_ELx): exception class, IL, and the ISS fields it fills.
 * Pure data: callable from anywhere.
 */

export const ESR_IL = 1 << 25;
export const EC_UNKNOWN = 0x00;
export const EC_SVC64 = 0x15;
export const EC_IABT_CUR = 0x21;
export const EC_DABT_CUR = 0x25;
export const EC_BRK64 = 0x3c;
/** Synchronous external abort, not on a table walk. */
export const FSC_EXTERNAL = 0x10;
export const ESR_WNR = 1 << 6;
