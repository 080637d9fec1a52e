/**
 * The invariants a GIC at rest must hold, checked from the outside (independently of
 * device/snapshot.ts, which it tests): no lock held, every ap_list well formed and consistent with
 * irqApVcpu, every interrupt the oracle sends somewhere on an ap_list (on exactly its target's once
 * the lists are settled, e.g. right after snapshot() or restore()), LRs of a vCPU in the guest
 * agreeing with the interrupts they hold, and every per-interrupt field in range.
 *
 * Call it between instructions (no vCPU mid-instruction) on the thread that owns the GIC.
 * Returns the violations found (empty: all good), so a failing fuzz case can print them all.
 */

import {
  LR_HI_ACTIVE,
  LR_HI_GROUP,
  LR_HI_HW,
  LR_HI_PENDING,
  LR_HI_PRIORITY_SHIFT,
} from '../../src/arch/ich.ts';
import { targetOracle } from '../../src/core/irq.ts';
import {
  GC_LOCK,
  GITS_BASER_HI_VALID,
  I_BASER0_HI,
  I_CMD_LOCK,
  I_LOCK,
  IRQ_GROUP1,
  IRQ_HW,
  ITS_DEVICE_WORDS,
  ITS_DEVICES,
  ITS_EVENT_IDBITS,
  ITS_STRIDE,
  V_AP_COUNT,
  V_AP_HEAD,
  V_AP_LOCK,
  V_AP_TAIL,
  V_IN_GUEST,
  V_LR_ACT,
  V_LR_GRP0,
  V_LR_PEND,
  V_RUN_LOCK,
  V_USED_LRS,
  VCPU_STRIDE,
  type Vgic,
} from '../../src/index.ts';

export interface InvariantOptions {
  /**
   * The ap_lists are settled (no migration left for a prune to do): every listed interrupt is on
   * its oracle's list. Otherwise an interrupt retargeted meanwhile may still sit on its old list.
   */
  readonly settled?: boolean;
}

export function checkInvariants(gic: Vgic, o: InvariantOptions = {}): string[] {
  const s = gic.state;
  const bad: string[] = [];
  const say = (m: string) => {
    if (bad.length < 20) bad.push(m);
  };
  for (let slot = 0; slot < s.nSlots; slot++) if (s.irqLock[slot] !== 0) say(`irq_lock ${slot} held`);
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    if (s.vcpu[b + V_AP_LOCK] !== 0) say(`ap_list_lock ${v} held`);
    if (s.vcpu[b + V_RUN_LOCK] !== 0) say(`run_lock ${v} held`);
  }
  for (let k = 0; k < s.nIts; k++) {
    if (s.its[k * ITS_STRIDE + I_CMD_LOCK] !== 0) say(`cmd_lock of ITS ${k} held`);
    if (s.its[k * ITS_STRIDE + I_LOCK] !== 0) say(`its_lock of ITS ${k} held`);
  }
  if (s.globalCacheSize > 0 && s.globalCacheMeta[GC_LOCK] !== 0) say('global cache lock held');

  // Lists: bounded walks, so a broken list is reported, not looped over.
  const seenOn = new Int32Array(s.nSlots).fill(-1);
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    let prev = -1;
    let n = 0;
    let slot = s.vcpu[b + V_AP_HEAD];
    for (; slot !== -1 && n <= s.nSlots; slot = s.irqApNext[slot]) {
      if (!(slot >= 0 && slot < s.nSlots)) {
        say(`ap_list ${v} links to ${slot}`);
        break;
      }
      if (seenOn[slot] !== -1) {
        say(`slot ${slot} twice on ap_lists (${seenOn[slot]}, ${v})`);
        break;
      }
      seenOn[slot] = v;
      if (s.irqApVcpu[slot] !== v) say(`slot ${slot} on ap_list ${v} says ${s.irqApVcpu[slot]}`);
      if (s.irqApPrev[slot] !== prev)
        say(`slot ${slot} on ap_list ${v}: prev ${s.irqApPrev[slot]} != ${prev}`);
      prev = slot;
      n++;
    }
    if (s.vcpu[b + V_AP_TAIL] !== prev) say(`ap_list ${v} tail ${s.vcpu[b + V_AP_TAIL]} != ${prev}`);
    if (s.vcpu[b + V_AP_COUNT] !== n) say(`ap_list ${v} count ${s.vcpu[b + V_AP_COUNT]} != ${n}`);
  }
  for (let slot = 0; slot < s.nSlots; slot++) {
    const on = s.irqApVcpu[slot];
    if (on !== seenOn[slot]) say(`slot ${slot} claims ap_list ${on}, found on ${seenOn[slot]}`);
    const t = s.irqTarget[slot];
    if (!(t >= -1 && t < s.nVcpus)) say(`slot ${slot} targets ${t}`);
    if (slot < s.lpiBase && s.irqIntid[slot] !== (slot < s.spiBase ? slot % 32 : 32 + slot - s.spiBase))
      say(`slot ${slot} has INTID ${s.irqIntid[slot]}`);
    if (slot >= s.lpiBase && s.irqIntid[slot] !== 8192 + slot - s.lpiBase)
      say(`slot ${slot} has INTID ${s.irqIntid[slot]}`);
    const oracle = targetOracle(s, slot);
    // Pending, enabled and deliverable: on an ap_list, its target's once settled.
    if (oracle >= 0 && on < 0) say(`INTID ${s.irqIntid[slot]} deliverable to ${oracle} but on no ap_list`);
    if (o.settled && oracle !== on) say(`INTID ${s.irqIntid[slot]} on ap_list ${on}, oracle says ${oracle}`);
  }

  // LRs of vCPUs in the guest: each holds an interrupt of this vCPU's list, as its state says.
  for (let v = 0; v < s.nVcpus; v++) {
    const b = v * VCPU_STRIDE;
    if (s.vcpu[b + V_IN_GUEST] === 0) continue;
    const used = s.vcpu[b + V_USED_LRS];
    if (!(used >= 0 && used <= s.nLrs)) {
      say(`vCPU ${v} uses ${used} LRs`);
      continue;
    }
    const seen = new Set<number>();
    for (let n = 0; n < used; n++) {
      const li = s.lrIndex(v, n);
      const intid = s.lr[li];
      const hi = s.lr[li + 1];
      const slot = s.slotOf(v, intid);
      if (slot < 0) {
        say(`LR ${n} of vCPU ${v} holds INTID ${intid}`);
        continue;
      }
      if (seen.has(intid)) say(`INTID ${intid} in two LRs of vCPU ${v}`);
      seen.add(intid);
      if (s.irqApVcpu[slot] !== v)
        say(`INTID ${intid} in an LR of vCPU ${v} but on ap_list ${s.irqApVcpu[slot]}`);
      if (((hi >>> LR_HI_PRIORITY_SHIFT) & 0xff) !== s.irqPriority[slot])
        say(`LR ${n} of vCPU ${v}: priority differs from INTID ${intid}'s`);
      if (((hi & LR_HI_GROUP) !== 0) !== ((s.irqFlags[slot] & IRQ_GROUP1) !== 0))
        say(`LR ${n} of vCPU ${v}: group differs`);
      if (((hi & LR_HI_HW) !== 0) !== ((s.irqFlags[slot] & IRQ_HW) !== 0))
        say(`LR ${n} of vCPU ${v}: HW differs`);
      const bit = 1 << n;
      const pendOnly = (hi & (LR_HI_PENDING | LR_HI_ACTIVE)) === LR_HI_PENDING;
      if (((s.vcpu[b + V_LR_PEND] & bit) !== 0) !== pendOnly)
        say(`LR ${n} of vCPU ${v}: Pending mask differs`);
      if (((s.vcpu[b + V_LR_ACT] & bit) !== 0) !== ((hi & LR_HI_ACTIVE) !== 0))
        say(`LR ${n} of vCPU ${v}: Active mask differs`);
      if (((s.vcpu[b + V_LR_GRP0] & bit) !== 0) !== ((hi & LR_HI_GROUP) === 0))
        say(`LR ${n} of vCPU ${v}: group mask differs`);
    }
  }
  checkLpiBooks(gic, say);
  return bad;
}

/**
 * The ITS's books: lpiMapped has a bit exactly for the LPIs with references, those add up over the
 * ITSes, a device's ITE count is 0 unless it is mapped and never above 2^16, and an ITS whose device
 * table is invalid maps no device and holds no reference.
 */
function checkLpiBooks(gic: Vgic, say: (m: string) => void): void {
  const s = gic.state;
  for (let i = 0; i < s.nLpis; i++) {
    const bit = (s.lpiMapped[i >>> 5] >>> (i & 31)) & 1;
    if (bit !== (s.irqLpiRef[i] !== 0 ? 1 : 0))
      say(`LPI ${8192 + i}: mapped bit ${bit} with ${s.irqLpiRef[i]} references`);
    let refs = 0;
    for (let k = 0; k < s.nIts; k++) refs += s.itsLpiRef[k * s.nLpis + i];
    if (refs !== s.irqLpiRef[i]) say(`LPI ${8192 + i}: ${s.irqLpiRef[i]} references, ITSes hold ${refs}`);
  }
  for (let w = Math.ceil(s.nLpis / 32) * 32; w < s.lpiMapped.length * 32; w++)
    if ((s.lpiMapped[w >>> 5] >>> (w & 31)) & 1) say(`mapped bit ${w} beyond the LPI store`);
  for (let k = 0; k < s.nIts; k++) {
    const table = (s.its[k * ITS_STRIDE + I_BASER0_HI] & GITS_BASER_HI_VALID) !== 0;
    for (let d = 0; d < ITS_DEVICES; d++) {
      const live = (s.itsDevLive[k * ITS_DEVICE_WORDS + (d >>> 5)] >>> (d & 31)) & 1;
      const n = s.itsDevEvents[k * ITS_DEVICES + d];
      if (live && !table) say(`ITS ${k} device ${d} mapped without a device table`);
      if (n < 0 || n > 2 ** ITS_EVENT_IDBITS || (!live && n !== 0))
        say(`ITS ${k} device ${d} (live ${live}) counts ${n} ITEs`);
    }
    if (!table)
      for (let i = 0; i < s.nLpis; i++)
        if (s.itsLpiRef[k * s.nLpis + i] !== 0) say(`ITS ${k} holds LPI ${8192 + i} without a device table`);
  }
}
