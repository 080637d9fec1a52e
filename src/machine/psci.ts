/**
 * PSCI over HVC (Arm DEN0022 §5), as QEMU's virt board offers it with `method = "hvc"`: version,
 * CPU_ON/OFF/SUSPEND, AFFINITY_INFO, SYSTEM_OFF/RESET, MIGRATE_INFO_TYPE, FEATURES. The SMC64 and
 * SMC32 forms of each function are both accepted, as QEMU accepts them.
 *
 * Who may call: the machine's exit handler, on the machine's thread.
 */

export const PSCI_VERSION = 0x84000000;
export const PSCI_CPU_SUSPEND = 0x84000001;
export const PSCI_CPU_OFF = 0x84000002;
export const PSCI_CPU_ON = 0x84000003;
export const PSCI_AFFINITY_INFO = 0x84000004;
export const PSCI_MIGRATE = 0x84000005;
export const PSCI_MIGRATE_INFO_TYPE = 0x84000006;
export const PSCI_SYSTEM_OFF = 0x84000008;
export const PSCI_SYSTEM_RESET = 0x84000009;
export const PSCI_FEATURES = 0x8400000a;
/** The SMC64 function IDs are the SMC32 ones with bit 30 set. */
const SMC64 = 0x40000000;

export const PSCI_SUCCESS = 0;
export const PSCI_NOT_SUPPORTED = -1;
export const PSCI_INVALID_PARAMETERS = -2;
export const PSCI_ALREADY_ON = -4;

/** PSCI 1.1, what QEMU 7.2 reports to TCG guests. */
export const PSCI_VERSION_1_1 = 0x00010001;

/** AFFINITY_INFO answers. */
export const AFFINITY_ON = 0;
export const AFFINITY_OFF = 1;

/** What the machine gives PSCI. */
export interface PsciHost {
  /** The vCPU index whose MPIDR is `mpidr`, or -1. */
  cpuOf(mpidr: bigint): number;
  isOn(cpu: number): boolean;
  /** Powers `cpu` on at `entry` (EL1h, DAIF masked, MMU off) with x0 = context. */
  cpuOn(cpu: number, entry: bigint, context: bigint): void;
  cpuOff(caller: number): void;
  /** CPU_SUSPEND: a WFI-like wait (standby). */
  suspend(caller: number): void;
  systemOff(): void;
  systemReset(): void;
}

/** The function's base (SMC32) ID, or the ID itself when it is not one of PSCI's SMC64 forms. */
function baseId(fn: number): number {
  const smc32 = (fn & ~SMC64) >>> 0;
  return (fn & SMC64) !== 0 && smc32 >= 0x84000000 && smc32 <= 0x8400001f ? smc32 : fn >>> 0;
}

/** Executes a PSCI call; returns what the caller's x0 becomes (a signed 32-bit result). */
export function psciCall(
  host: PsciHost,
  caller: number,
  x0: bigint,
  x1: bigint,
  x2: bigint,
  x3: bigint,
): number {
  switch (baseId(Number(x0 & 0xffffffffn))) {
    case PSCI_VERSION:
      return PSCI_VERSION_1_1;
    case PSCI_CPU_ON: {
      const target = host.cpuOf(x1);
      if (target < 0) return PSCI_INVALID_PARAMETERS;
      if (host.isOn(target)) return PSCI_ALREADY_ON;
      host.cpuOn(target, x2, x3);
      return PSCI_SUCCESS;
    }
    case PSCI_CPU_OFF:
      host.cpuOff(caller);
      return PSCI_SUCCESS; // not seen by the caller: it is off
    case PSCI_CPU_SUSPEND:
      host.suspend(caller);
      return PSCI_SUCCESS;
    case PSCI_AFFINITY_INFO: {
      // Only level 0 (one CPU) is supported, as QEMU.
      if (x2 !== 0n) return PSCI_INVALID_PARAMETERS;
      const target = host.cpuOf(x1);
      if (target < 0) return PSCI_INVALID_PARAMETERS;
      return host.isOn(target) ? AFFINITY_ON : AFFINITY_OFF;
    }
    case PSCI_MIGRATE_INFO_TYPE:
      return 2; // Trusted OS not present: no migration needed
    case PSCI_SYSTEM_OFF:
      host.systemOff();
      return PSCI_SUCCESS;
    case PSCI_SYSTEM_RESET:
      host.systemReset();
      return PSCI_SUCCESS;
    case PSCI_FEATURES: {
      const f = baseId(Number(x1 & 0xffffffffn));
      const known =
        f === PSCI_VERSION ||
        f === PSCI_CPU_ON ||
        f === PSCI_CPU_OFF ||
        f === PSCI_CPU_SUSPEND ||
        f === PSCI_AFFINITY_INFO ||
        f === PSCI_MIGRATE_INFO_TYPE ||
        f === PSCI_SYSTEM_OFF ||
        f === PSCI_SYSTEM_RESET ||
        f === PSCI_FEATURES;
      return known ? PSCI_SUCCESS : PSCI_NOT_SUPPORTED;
    }
    default:
      void x3;
      return PSCI_NOT_SUPPORTED;
  }
}
