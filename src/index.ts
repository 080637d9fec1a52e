/**
 * vgic: the ARM Generic Interrupt Controller (GICv3) as a virtual device, built the way KVM's
 * vgic is built. The core entry point (`vgic`): nothing in its import graph is host-specific and
 * no module has a top-level side effect, so it runs in Node, in browsers and in Web Workers, and
 * bundles without stubs. The Node-only parts have their own entries: `vgic/machine` (the AArch64
 * machine) and `vgic/runtime` (worker-thread programs).
 */

export { VgicError, type VgicErrorCode } from './arch/errors.ts';
export * from './arch/gicv3.ts';
export * from './arch/intid.ts';
export * from './arch/its.ts';
export * from './arch/sysreg.ts';
export { LockRecursionError, MAIN_OWNER_ID, setLockOwnerId } from './core/locks.ts';
export { Its, type ItsStats } from './device/its.ts';
export { USER_SYSREGS } from './device/sysregs.ts';
export { type IrqHandler, MAX_IRQ_NESTING, VCpu, type WfiResult } from './device/vcpu.ts';
export {
  type MsiResult,
  type RedistRegion,
  type TranslationCacheDesign,
  Vgic,
  type VgicAddressMap,
  type VgicAttachOptions,
  type VgicStats,
  type VgicV3Options,
} from './device/vgic.ts';
/** Vgic.dumpState()'s shape (KVM's debugfs vgic-state as data), its bounds, and Vgic.explain()'s answer. */
export type {
  DumpOptions,
  Explanation,
  IrqState,
  ItsState,
  LrState,
  VcpuState,
  VgicStateDump,
} from './device/vgic-state.ts';
export { GIC_DEFAULT_PMR, GIC_DEFAULT_PRIORITY, GicV3Guest } from './guest/gic-v3.ts';
export {
  enableLpisOnVcpu,
  GuestAllocator,
  ItsGuest,
  type ItsGuestOptions,
  LPI_PROP_DEFAULT,
  LpiTables,
  type VcpuLpis,
} from './guest/gic-v3-its.ts';
export { GuestMemory } from './memory/guest-memory.ts';
export * from './state/layout.ts';
/**
 * Trace events with QEMU's gicv3_* / KVM's vgic_* names: traceSubscribe(patterns, listener) on
 * this thread (QEMU -trace globs, `-` excludes), formatTraceEvent for QEMU's log line, the event
 * list, and traceMatch to check patterns. Zero cost while nothing is subscribed.
 */
export {
  formatTraceEvent,
  TRACE_EVENTS,
  type TraceEvent,
  type TraceEventType,
  type TraceSubscription,
  traceMatch,
  traceSubscribe,
} from './trace/trace.ts';
