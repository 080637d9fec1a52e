/**
 * How a run of vgic's machine ended: the report `Machine.run()` returns and the one line that
 * says it. Pure data and formatting: callable from anywhere.
 */

import type { VgicStats } from '../device/vgic.ts';

export type StopReason =
  | 'system-off'
  | 'semihosting-exit'
  | 'system-reset'
  | 'time-limit'
  | 'fault'
  | 'cpus-off'
  | 'idle';

export interface MachineFault {
  readonly cpu: number;
  /** Where it happened (ELR the guest would have seen). */
  readonly pc: number;
  /** The syndrome vgic computed, when there is one. */
  readonly esr?: number;
  /** The faulting address, for aborts. */
  readonly far?: number;
  readonly what: string;
}

export interface RunReport {
  readonly reason: StopReason;
  /** The exit status: semihosting's, else a final `EXIT: STATUS=n` line's, else 0 (124 time limit, 125 fault, 126 idle). */
  readonly status: number;
  /** One line saying how the run ended. */
  readonly message: string;
  readonly fault?: MachineFault;
  readonly elapsedMs: number;
  /** Translation blocks executed, per vCPU. */
  readonly blocks: readonly number[];
  /** Synchronous exceptions delivered to the guest's vectors. */
  readonly syncExceptions: number;
  /** Host milliseconds every vCPU spent waiting (WFI with nothing to run). */
  readonly idleMs: number;
  /** Per vCPU: TLB / translated-code flushes caused by other vCPUs' broadcast maintenance. */
  readonly tlbFlushes: readonly number[];
  readonly tbFlushes: readonly number[];
  /** Per vCPU: slices ended because it spun in a short loop while another vCPU could run. */
  readonly spinYields: readonly number[];
  /** Per vCPU: pages of translated code dropped for another vCPU's IC IVAU. */
  readonly codePages: readonly number[];
  /** Per vCPU: TLB pages dropped for another vCPU's TLBI VA*IS. */
  readonly tlbPages: readonly number[];
  readonly gic: VgicStats;
}

export const STATUS_TIME_LIMIT = 124;
export const STATUS_FAULT = 125;
export const STATUS_IDLE = 126;

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

/** The report's one line; `cpus` describes where each vCPU is (called only when needed). */
export function reportMessage(
  reason: StopReason,
  status: number,
  timeLimitMs: number,
  fault: MachineFault | undefined,
  cpus: () => string,
): string {
  switch (reason) {
    case 'system-off':
      return `PSCI SYSTEM_OFF, exit status ${status}`;
    case 'system-reset':
      return `PSCI SYSTEM_RESET (the machine does not reboot), exit status ${status}`;
    case 'semihosting-exit':
      return `semihosting SYS_EXIT, exit status ${status}`;
    case 'time-limit':
      return `time limit of ${timeLimitMs} ms reached; ${cpus()}`;
    case 'cpus-off':
      return 'every vCPU is off (PSCI CPU_OFF)';
    case 'idle':
      return `every vCPU waits in WFI with no timer armed and no input to come; ${cpus()}`;
    default: {
      const f = fault!;
      return (
        `guest fault on vCPU ${f.cpu} at PC ${hex(f.pc)}: ${f.what}` +
        (f.esr !== undefined ? `; ESR_EL1 ${hex(f.esr)} (EC ${hex(f.esr >>> 26)})` : '') +
        (f.far !== undefined && f.far !== 0 ? `; FAR_EL1 ${hex(f.far)}` : '')
      );
    }
  }
}
