/**
 * Guest physical addresses given as two 32-bit words (a 64-bit register or table entry split in
 * halves). Every such address is the guest's choice and goes through here.
 *
 * JavaScript's `&` yields a *signed* 32-bit integer: `0x80000000 & 0xffff0000` is -2^31, so an
 * address with bit 31 set computed as `hi * 2^32 + (lo & mask)` lands 2 GiB low — on another
 * part of guest RAM. The low word is therefore masked and then made unsigned with `>>> 0`, and
 * the high word keeps at most PA bits 51:32, so the result is exact (below 2^52 < 2^53) and never
 * negative. Bits the caller's format does not allow belong in its own checks.
 *
 * Who may call: anyone; pure functions.
 */

/** PA bits 51:32 in a high word. */
const HI_PA_MASK = 0xfffff;

/** (hi & hiMask & 0xfffff)·2^32 + (lo & loMask), as an exact non-negative number below 2^52. */
export function paFromWords(lo: number, hi: number, loMask: number, hiMask = HI_PA_MASK): number {
  return (hi & hiMask & HI_PA_MASK) * 0x100000000 + ((lo & loMask) >>> 0);
}
