/** The invariant checker lives with the adversarial engine (src/bench/invariants.ts), which the CLI runs too. */
export { checkCaches, checkInvariants, type InvariantOptions } from '../../src/bench/invariants.ts';
