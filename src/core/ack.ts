/**
 * kvm_notify_acked_irq for vgic: the guest's EOI of a level-sensitive SPI, seen when its LR folds
 * back (an LR that asked for an EOI maintenance interrupt and is now invalid; vgic_v3_fold_lr_state and
 * vgic_v2_fold_lr_state).
 * Resample irqfds (device/irqfd.ts, KVM_IRQFD_FLAG_RESAMPLE) register here to lower the line and
 * signal their resamplefd at that moment, as KVM's irqfd_resampler_ack does.
 *
 * Who may call: levelAcked() from the fold, with the slot's irq_lock held, so a listener only
 * touches its own words (Atomics), never a GIC lock. Listeners are per thread: each thread that
 * runs vCPUs registers the ones it needs (a module-level list, scanned only on such an EOI).
 */

import type { GicState } from '../state/layout.ts';

/**
 * A listener for one GIC (by its state buffer): called with the SPI's INTID; returns true when
 * the line should be lowered (a resample irqfd drove it).
 */
export type LevelAckListener = (intid: number) => boolean;

const buffers: (ArrayBuffer | SharedArrayBuffer)[] = [];
const listeners: LevelAckListener[] = [];

/** Whether any listener is registered in this thread (the fold's one check on the common path). */
export let ackListeners = 0;

/** Registers `f` for the GIC whose state is `s` in this thread (replacing an earlier one). */
export function setLevelAckListener(s: GicState, f: LevelAckListener | undefined): void {
  const i = buffers.indexOf(s.buffer);
  if (f === undefined) {
    if (i >= 0) {
      buffers.splice(i, 1);
      listeners.splice(i, 1);
    }
  } else if (i >= 0) listeners[i] = f;
  else {
    buffers.push(s.buffer);
    listeners.push(f);
  }
  ackListeners = buffers.length;
}

/** The guest EOI'd level SPI `intid` of GIC `s`; true if a listener wants its line lowered. */
export function levelAcked(s: GicState, intid: number): boolean {
  for (let i = 0; i < buffers.length; i++) if (buffers[i] === s.buffer) return listeners[i](intid);
  return false;
}
