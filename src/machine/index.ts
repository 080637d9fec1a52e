/**
 * `vgic/machine`: the AArch64 machine (QEMU virt's board on Unicorn CPUs, vgic as its GIC). Node
 * only: it loads a native addon, which is built on first use (machine/native.ts), never at install.
 * Kept out of the core entry (`vgic`) so that the core bundles for browsers without Node imports.
 *
 * @module vgic/machine
 */

// Types the machine's public signatures name (Machine.load, .uart, .rtc; loadUnicorn).
export type { ImageKind, ImageSegment, LoadedImage } from './image.ts';
export {
  Machine,
  type MachineFault,
  type MachineOptions,
  mpidrOf,
  type RunReport,
  type StopReason,
} from './machine.ts';
export type { CpuHandle, UnicornAddon } from './native.ts';
export { INSTALL_COMMAND, loadUnicorn, MachineUnavailableError } from './native.ts';
export type { PL011, PL011State } from './pl011.ts';
export type { PL031 } from './pl031.ts';
