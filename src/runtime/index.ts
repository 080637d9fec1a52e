/**
 * `vgic/runtime`: vCPUs and injectors as programs on Node worker threads over one shared GIC
 * (runtime/runtime.ts). Node only (worker_threads); kept out of the core entry (`vgic`), which in a
 * browser attaches Web Workers itself (Vgic.attach with an ownerId).
 *
 * @module vgic/runtime
 */

export {
  IDLE,
  type InjectorProgram,
  type ProgramContext,
  type ProgramResult,
  until,
  type VcpuProgram,
  WFI,
  YIELD,
  type Yield,
} from './program.ts';
export { type ProgramReport, Runtime, type RuntimeOptions } from './runtime.ts';
