/**
 * Typed errors for misuse of the host API. Guests never cause these: guest mistakes get the
 * architectural behaviour (RAZ/WI, ignored, counted). Each message says what was wrong and what
 * is allowed.
 */

/** {@link VgicError.code}: which argument class was wrong. */
export type VgicErrorCode =
  | 'INVALID_CONFIG' // creation options out of range
  | 'INVALID_INTID' // an INTID the operation does not accept
  | 'INVALID_VCPU' // a vCPU index that does not exist
  | 'INVALID_ADDRESS' // an address or size the operation does not accept
  | 'INVALID_REGISTER' // a register the operation does not know
  | 'INVALID_ARGUMENT';

/**
 * What the host API throws when it is misused (a wrong type, an out-of-range number, a register
 * offset or width that does not exist, bad creation options): the message says what was wrong and
 * what is allowed. Guests never cause one.
 */
export class VgicError extends Error {
  override name = 'VgicError';
  /** The kind of misuse, for programs (the message is for people). */
  readonly code: VgicErrorCode;
  constructor(code: VgicErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function checkInt(
  code: VgicErrorCode,
  what: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new VgicError(code, `${what} must be an integer in ${min}..${max}, got ${describeValue(value)}`);
  }
  return value;
}

/** A 64-bit register value from the host as (lo, hi) words: a bigint or a safe integer, 0..2^(8·size)-1. */
export const valueWords = { lo: 0, hi: 0 };

export function checkRegValue(what: string, value: unknown, size: 4 | 8): typeof valueWords {
  const max = size === 8 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  if (typeof value === 'bigint') {
    if (value < 0n || value > max) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `${what} must be 0..0x${max.toString(16)} for a ${size}-byte access, got ${value}n`,
      );
    }
    valueWords.lo = Number(value & 0xffffffffn);
    valueWords.hi = Number(value >> 32n);
    return valueWords;
  }
  const limit = size === 8 ? Number.MAX_SAFE_INTEGER : 0xffffffff;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > limit) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `${what} must be a bigint or an integer in 0..${limit} (0x${limit.toString(16)}) for a ${size}-byte access, got ${describeValue(value)}`,
    );
  }
  valueWords.lo = value >>> 0;
  valueWords.hi = Math.floor(value / 0x1_0000_0000);
  return valueWords;
}

/** A value as an error message shows it, with its type when that is what was wrong. */
export function describeValue(x: unknown): string {
  if (typeof x === 'number') return String(x);
  if (typeof x === 'bigint') return `${x}n (a bigint)`;
  if (typeof x === 'string') return `'${x}' (a string)`;
  if (x === null) return 'null';
  if (typeof x === 'object') return `an object (${(x as object).constructor?.name ?? 'no prototype'})`;
  return `${String(x)} (${typeof x})`;
}

export function checkBool(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new VgicError('INVALID_ARGUMENT', `${what} must be true or false, got ${describeValue(value)}`);
  }
  return value;
}
