/**
 * The syndromes vgic's machine gives the one synchronous exception Unicorn leaves to the host, an
 * external abort on an unmapped address (Arm ARM D17.2.37 ESR_ELx), and the names reports use for
 * the exception classes QEMU raises.
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

const EC_NAMES: Record<number, string> = {
  0: 'undefined instruction',
  1: 'WFI/WFE trap',
  7: 'FP/SIMD access trap',
  14: 'illegal execution state',
  21: 'SVC',
  22: 'HVC',
  23: 'SMC',
  24: 'system register trap',
  32: 'instruction abort from EL0',
  33: 'instruction abort',
  34: 'PC alignment fault',
  36: 'data abort from EL0',
  37: 'data abort',
  38: 'SP alignment fault',
  44: 'floating-point exception',
  60: 'BRK',
};

/** A report's name for the exception an ESR describes. */
export function describeEsr(esr: number): string {
  const ec = esr >>> 26;
  return `${EC_NAMES[ec] ?? 'exception'} (EC 0x${ec.toString(16)})`;
}
