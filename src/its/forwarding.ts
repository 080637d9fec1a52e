/**
 * Forwarding an MSI's LPI to direct injection (KVM's kvm_vgic_v4_set_forwarding /
 * kvm_vgic_v4_unset_forwarding, vgic-v4.c): the ITS resolves (DeviceID, EventID) as for an MSI
 * (vgic_its_resolve_lpi), and the LPI becomes a vLPI of its target's vPE — on hardware a VMAPTI
 * of the host interrupt — or stops being one. Pending state moves between the software path and
 * the VPT without loss or duplication (core/vpe.ts).
 *
 * Who may call: device/vgic.ts (the host API), any thread. Takes its_lock, then the LPI's irq_lock.
 */

import { lockWord, unlockWord } from '../core/locks.ts';
import { vpeForward, vpeUnforward } from '../core/vpe.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { type GicState, I_LOCK, ITS_STRIDE } from '../state/layout.ts';
import { RESOLVE_BUSY, resolveLpiLocked } from './translate.ts';

/** itsSetForwarding's failures (a result ≥ 0 is the LPI's slot). */
export const FORWARD_BLOCKED = -1; // no valid mapping, or its collection is not mapped
export const FORWARD_BUSY = -2; // the ITS, or the target's LPIs, are disabled

/**
 * Forwards (on) or unforwards (off) the LPI that (devid, eventid) translates to through ITS k.
 * Returns its slot, or FORWARD_BLOCKED / FORWARD_BUSY.
 */
export function itsSetForwarding(
  s: GicState,
  mem: GuestMemory,
  k: number,
  devid: number,
  eventid: number,
  on: boolean,
): number {
  const lockAt = k * ITS_STRIDE + I_LOCK;
  lockWord(s, s.its, lockAt);
  try {
    const r = resolveLpiLocked(s, mem, k, devid, eventid);
    if (r < 0) return r === RESOLVE_BUSY ? FORWARD_BUSY : FORWARD_BLOCKED;
    // Under its_lock the mapping cannot go away; the LPI's irq_lock orders the flag against MSIs.
    if (on) return vpeForward(s, r) ? r : FORWARD_BLOCKED;
    vpeUnforward(s, r);
    return r;
  } finally {
    unlockWord(s, s.its, lockAt);
  }
}
