/**
 * Typed errors for misuse of the host API. Guests never cause these: guest mistakes get the
 * architectural behaviour (RAZ/WI, ignored, counted). Each message says what was wrong and what
 * is allowed.
 */

export type VgicErrorCode =
  | 'INVALID_CONFIG' // creation options out of range
  | 'INVALID_INTID' // an INTID the operation does not accept
  | 'INVALID_VCPU' // a vCPU index that does not exist
  | 'INVALID_ADDRESS' // an address or size the operation does not accept
  | 'INVALID_REGISTER' // a register the operation does not know
  | 'INVALID_ARGUMENT';

export class VgicError extends Error {
  override name = 'VgicError';
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
    throw new VgicError(code, `${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}
