/**
 * vgic: the ARM Generic Interrupt Controller (GICv3) as a virtual device, built the way KVM's
 * vgic is built. Public entry point.
 */

export * from './arch/gicv3.ts';
export * from './arch/intid.ts';
export * from './arch/sysreg.ts';
export { attachState, GicState } from './state/layout.ts';
export { type RedistRegion, Vgic, type VgicStats, type VgicV3Options } from './device/vgic.ts';
export { type IrqHandler, VCpu, type WfiResult } from './device/vcpu.ts';
export { VgicError, type VgicErrorCode } from './device/errors.ts';
export { GuestMemory } from './memory/guest-memory.ts';
export { setLockOwnerId } from './core/locks.ts';
