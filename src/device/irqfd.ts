/**
 * GSI routing and irqfds (KVM_SET_GSI_ROUTING, KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE;
 * virt/kvm/eventfd.c, arch/arm64/kvm/vgic/vgic-irqfd.c), over one (Shared)ArrayBuffer so that a
 * device thread signals an interrupt without calling into any other thread.
 *
 * - The routing table maps a GSI to an irqchip pin (SPI pin + 32) or an MSI (address, data, devid),
 *   as kvm_set_routing_entry checks it; the default is KVM's flat table (GSI i → pin i). It is
 *   written under a sequence word, and readers retry a torn read (KVM replaces it under RCU).
 * - An irqfd is an eventfd's counter: signal() adds 1 to it, sets its bit in a summary bitmap and
 *   bumps a futex word. Whoever consumes — drain(), from any thread attached to the GIC (a vCPU
 *   thread's run loop, a dedicated injector, the main loop) — exchanges the summary words and the
 *   counters with 0 and injects once per irqfd found non-zero (eventfd reads coalesce as KVM's do).
 *   A signal that races with a drain leaves its bit or its count for the next one: none is lost.
 * - A resample irqfd drives a level line: its injection raises the line and leaves it high; when the
 *   guest EOIs the SPI, the vCPU's fold (core/ack.ts) lowers the line and signals the resamplefd
 *   (a second counter the device waits on), and the device signals again if it still needs service.
 *   The threads that run vCPUs call bindGic() so their folds see the resample irqfds.
 *
 * Who may call: any thread holding the buffer (IrqfdSet.attach). Configuration (routing, assign)
 * from one thread at a time (the VMM's); signal / drain / takeResample from any.
 */

import { describeValue, VgicError } from '../arch/errors.ts';
import { VGIC_FIRST_SPI } from '../arch/intid.ts';
import { setLevelAckListener } from '../core/ack.ts';
import {
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQCHIP_NUM_PINS,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_MAX_IRQ_ROUTES,
  KVM_MSI_VALID_DEVID,
  KvmError,
} from './kvm-uapi.ts';
import { MSI_COALESCED, MSI_DELIVERED, type Vgic } from './vgic.ts';

/** A KVM_SET_GSI_ROUTING entry (struct kvm_irq_routing_entry). */
export type GsiRoute =
  | {
      readonly gsi: number;
      readonly type: typeof KVM_IRQ_ROUTING_IRQCHIP;
      /** u.irqchip.irqchip: 0, the GIC. */
      readonly irqchip?: number;
      /** u.irqchip.pin: SPI pin + 32, below 988. */
      readonly pin: number;
    }
  | {
      readonly gsi: number;
      readonly type: typeof KVM_IRQ_ROUTING_MSI;
      /** KVM_MSI_VALID_DEVID (required once the GIC has an ITS). */
      readonly flags?: number;
      /** u.msi.address: the doorbell (an ITS's GITS_TRANSLATER), below 2^53. */
      readonly address: number;
      /** u.msi.data: the EventID. */
      readonly data: number;
      /** u.msi.devid: the DeviceID. */
      readonly devid?: number;
    };

export interface IrqfdStats {
  /** Signals consumed (the sum of the counters drained). */
  readonly signals: number;
  /** Injections made (one per irqfd found signalled by a drain). */
  readonly injections: number;
  /** MSI answers of those injections (MSI_DELIVERED / MSI_COALESCED / anything else). */
  readonly msiDelivered: number;
  readonly msiCoalesced: number;
  readonly msiFailed: number;
  /** Injections refused (no route, an SPI the GIC does not have). */
  readonly failed: number;
  /** Guest EOIs of resampled level SPIs (resamplefd signals). */
  readonly resamples: number;
}

// Header words.
const H_FUTEX = 0; // bumped by every signal(): a consumer sleeps on it
const H_SLEEPING = 1; // a consumer waits on H_FUTEX
const H_ROUTE_SEQ = 2; // odd while the routing table is written
const H_RESAMPLE_FUTEX = 3; // bumped by every resample
const H_NFDS = 4;
const H_STATS = 8; // IrqfdStats, in the order below
const ST_SIGNALS = 0;
const ST_INJECTIONS = 1;
const ST_MSI_DELIVERED = 2;
const ST_MSI_COALESCED = 3;
const ST_MSI_FAILED = 4;
const ST_FAILED = 5;
const ST_RESAMPLES = 6;
const HEADER = 16;

// A route: type, pin or address low, address high, data, devid.
const ROUTE_WORDS = 5;
const R_NONE = 0;

// An irqfd's flags word.
const FD_ASSIGNED = 1;
const FD_RESAMPLE = 2;

/** Irqfds an IrqfdSet holds by default (KVM has no fixed limit; each costs 16 bytes here). */
export const DEFAULT_MAX_IRQFDS = 1024;

export class IrqfdSet {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly maxIrqfds: number;
  private readonly w: Int32Array;
  private readonly shared: boolean;
  private readonly summary: number;
  private readonly counter: number;
  private readonly fdGsi: number;
  private readonly fdFlags: number;
  private readonly resampleCount: number;
  private readonly routes: number;
  /** Per irqchip pin: the resample irqfd driving it + 1, or 0. */
  private readonly pinResample: number;
  private readonly readRoute = new Int32Array(ROUTE_WORDS);
  private gic: Vgic | undefined;

  private constructor(buffer: ArrayBuffer | SharedArrayBuffer, init: boolean, maxIrqfds: number) {
    this.buffer = buffer;
    this.w = new Int32Array(buffer);
    this.shared = typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer;
    this.maxIrqfds = maxIrqfds;
    const words = maxIrqfds / 32;
    this.summary = HEADER;
    this.counter = this.summary + words;
    this.fdGsi = this.counter + maxIrqfds;
    this.fdFlags = this.fdGsi + maxIrqfds;
    this.resampleCount = this.fdFlags + maxIrqfds;
    this.routes = this.resampleCount + maxIrqfds;
    this.pinResample = this.routes + KVM_MAX_IRQ_ROUTES * ROUTE_WORDS;
    if (init) {
      this.w[H_NFDS] = maxIrqfds;
      this.w.fill(-1, this.fdGsi, this.fdGsi + maxIrqfds);
    }
  }

  private static words(maxIrqfds: number): number {
    return HEADER + maxIrqfds / 32 + 4 * maxIrqfds + KVM_MAX_IRQ_ROUTES * ROUTE_WORDS + KVM_IRQCHIP_NUM_PINS;
  }

  /**
   * A new irqfd set with KVM's default routing for `nSpis` SPIs (GSI i → pin i). `maxIrqfds` is a
   * multiple of 32 from 32 to 65536. Shared (a SharedArrayBuffer) where the platform has one.
   */
  static create(o: {
    readonly nSpis: number;
    readonly maxIrqfds?: number;
    readonly shared?: boolean;
  }): IrqfdSet {
    const max = o.maxIrqfds ?? DEFAULT_MAX_IRQFDS;
    if (!Number.isInteger(max) || max < 32 || max > 65536 || max % 32 !== 0) {
      throw new VgicError(
        'INVALID_CONFIG',
        `maxIrqfds must be a multiple of 32 in 32..65536, got ${describeValue(max)}`,
      );
    }
    const bytes = 4 * IrqfdSet.words(max);
    const shared = o.shared ?? typeof SharedArrayBuffer === 'function';
    const set = new IrqfdSet(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), true, max);
    const flat: GsiRoute[] = [];
    for (let i = 0; i < Math.min(o.nSpis, KVM_IRQCHIP_NUM_PINS); i++)
      flat.push({ gsi: i, type: KVM_IRQ_ROUTING_IRQCHIP, pin: i });
    set.setGsiRouting(flat, false);
    return set;
  }

  /** The same set in another thread, from its buffer (IrqfdSet.buffer). */
  static attach(buffer: ArrayBuffer | SharedArrayBuffer): IrqfdSet {
    const max = new Int32Array(buffer, 0, HEADER)[H_NFDS];
    if (
      !Number.isInteger(max) ||
      max < 32 ||
      max % 32 !== 0 ||
      buffer.byteLength !== 4 * IrqfdSet.words(max)
    ) {
      throw new VgicError('INVALID_ARGUMENT', 'IrqfdSet.attach takes an IrqfdSet.buffer');
    }
    return new IrqfdSet(buffer, false, max);
  }

  /**
   * Binds the GIC this thread injects into and whose vCPUs it runs: drain() injects into it, and
   * this thread's folds report EOIs of resampled level SPIs here. Every thread that runs vCPUs of a
   * GIC with resample irqfds binds it.
   */
  bindGic(gic: Vgic): void {
    if (this.gic !== undefined && this.gic !== gic) setLevelAckListener(this.gic.state, undefined);
    this.gic = gic;
    setLevelAckListener(gic.state, (intid) => this.levelAcked(intid));
  }

  /** Unbinds (this thread's folds no longer report to this set). */
  unbindGic(): void {
    if (this.gic !== undefined) setLevelAckListener(this.gic.state, undefined);
    this.gic = undefined;
  }

  // ---- KVM_SET_GSI_ROUTING ----

  /**
   * Replaces the whole routing table, as KVM_SET_GSI_ROUTING. EINVAL for a GSI ≥ 4096, an irqchip
   * other than 0, a pin ≥ 988, an unknown type, two entries for one GSI, or (with `devidRequired`,
   * i.e. the GIC has an ITS) an MSI entry without KVM_MSI_VALID_DEVID; E2BIG for more than 4096
   * entries. Nothing changes on an error.
   */
  setGsiRouting(entries: readonly GsiRoute[], devidRequired: boolean): void {
    if (!Array.isArray(entries))
      throw new KvmError('EINVAL', `routing entries must be an array, got ${describeValue(entries)}`);
    if (entries.length > KVM_MAX_IRQ_ROUTES) {
      throw new KvmError(
        'E2BIG',
        `at most ${KVM_MAX_IRQ_ROUTES} routing entries (KVM_MAX_IRQ_ROUTES), got ${entries.length}`,
      );
    }
    const table = new Int32Array(KVM_MAX_IRQ_ROUTES * ROUTE_WORDS);
    entries.forEach((e, i) => {
      const where = `routing entry ${i}`;
      if (typeof e !== 'object' || e === null) throw new KvmError('EINVAL', `${where} must be an object`);
      const gsi = e.gsi;
      if (!Number.isInteger(gsi) || gsi < 0 || gsi >= KVM_MAX_IRQ_ROUTES) {
        throw new KvmError(
          'EINVAL',
          `${where}: gsi must be an integer in 0..${KVM_MAX_IRQ_ROUTES - 1}, got ${describeValue(gsi)}`,
        );
      }
      const at = gsi * ROUTE_WORDS;
      if (table[at] !== R_NONE) throw new KvmError('EINVAL', `${where}: GSI ${gsi} has two entries`);
      if (e.type === KVM_IRQ_ROUTING_IRQCHIP) {
        if ((e.irqchip ?? 0) !== 0)
          throw new KvmError(
            'EINVAL',
            `${where}: irqchip must be 0 (the GIC), got ${describeValue(e.irqchip)}`,
          );
        if (!Number.isInteger(e.pin) || e.pin < 0 || e.pin >= KVM_IRQCHIP_NUM_PINS) {
          throw new KvmError(
            'EINVAL',
            `${where}: pin must be an integer in 0..${KVM_IRQCHIP_NUM_PINS - 1}, got ${describeValue(e.pin)}`,
          );
        }
        table[at] = KVM_IRQ_ROUTING_IRQCHIP;
        table[at + 1] = e.pin;
      } else if (e.type === KVM_IRQ_ROUTING_MSI) {
        const flags = e.flags ?? 0;
        if (flags !== 0 && flags !== KVM_MSI_VALID_DEVID)
          throw new KvmError('EINVAL', `${where}: flags must be 0 or KVM_MSI_VALID_DEVID`);
        if (devidRequired && flags !== KVM_MSI_VALID_DEVID) {
          throw new KvmError(
            'EINVAL',
            `${where}: the GIC has an ITS, so an MSI route needs flags KVM_MSI_VALID_DEVID and a devid`,
          );
        }
        if (!Number.isSafeInteger(e.address) || e.address < 0) {
          throw new KvmError(
            'EINVAL',
            `${where}: address must be an integer in 0..2^53-1, got ${describeValue(e.address)}`,
          );
        }
        if (!Number.isInteger(e.data) || e.data < 0 || e.data > 0xffffffff) {
          throw new KvmError(
            'EINVAL',
            `${where}: data must be a 32-bit integer, got ${describeValue(e.data)}`,
          );
        }
        const devid = flags === KVM_MSI_VALID_DEVID ? (e.devid ?? -1) : 0;
        if (!Number.isInteger(devid) || devid < 0 || devid > 0xffffffff) {
          throw new KvmError(
            'EINVAL',
            `${where}: devid must be a 32-bit integer, got ${describeValue(e.devid)}`,
          );
        }
        table[at] = KVM_IRQ_ROUTING_MSI;
        table[at + 1] = e.address >>> 0;
        table[at + 2] = Math.floor(e.address / 2 ** 32);
        table[at + 3] = e.data | 0;
        table[at + 4] = devid | 0;
      } else {
        throw new KvmError(
          'EINVAL',
          `${where}: type must be KVM_IRQ_ROUTING_IRQCHIP (1) or KVM_IRQ_ROUTING_MSI (2), got ${describeValue((e as { type: unknown }).type)}`,
        );
      }
    });
    const w = this.w;
    Atomics.add(w, H_ROUTE_SEQ, 1); // odd: readers retry
    w.set(table, this.routes);
    this.rebuildPinResample();
    Atomics.add(w, H_ROUTE_SEQ, 1);
  }

  /** Reads GSI `gsi`'s route into readRoute, consistent with one table version. */
  private route(gsi: number): Int32Array {
    const w = this.w;
    const r = this.readRoute;
    const at = this.routes + gsi * ROUTE_WORDS;
    for (;;) {
      const seq = Atomics.load(w, H_ROUTE_SEQ);
      if ((seq & 1) === 0) {
        for (let i = 0; i < ROUTE_WORDS; i++) r[i] = w[at + i];
        if (Atomics.load(w, H_ROUTE_SEQ) === seq) return r;
      }
    }
  }

  private rebuildPinResample(): void {
    const w = this.w;
    w.fill(0, this.pinResample, this.pinResample + KVM_IRQCHIP_NUM_PINS);
    for (let fd = 0; fd < this.maxIrqfds; fd++) {
      if ((w[this.fdFlags + fd] & (FD_ASSIGNED | FD_RESAMPLE)) !== (FD_ASSIGNED | FD_RESAMPLE)) continue;
      const at = this.routes + w[this.fdGsi + fd] * ROUTE_WORDS;
      if (w[at] === KVM_IRQ_ROUTING_IRQCHIP) Atomics.store(w, this.pinResample + w[at + 1], fd + 1);
    }
  }

  // ---- KVM_IRQFD ----

  /**
   * KVM_IRQFD: a new irqfd for `gsi`, its number returned (the "eventfd" signal() takes). With
   * KVM_IRQFD_FLAG_RESAMPLE the GSI must route to an irqchip pin, and no other resample irqfd may
   * drive that pin (EINVAL). ENOSPC when all maxIrqfds are assigned.
   */
  assign(gsi: number, flags = 0): number {
    if (!Number.isInteger(gsi) || gsi < 0 || gsi >= KVM_MAX_IRQ_ROUTES) {
      throw new KvmError(
        'EINVAL',
        `gsi must be an integer in 0..${KVM_MAX_IRQ_ROUTES - 1}, got ${describeValue(gsi)}`,
      );
    }
    if (flags !== 0 && flags !== KVM_IRQFD_FLAG_RESAMPLE) {
      throw new KvmError(
        'EINVAL',
        `assign flags must be 0 or KVM_IRQFD_FLAG_RESAMPLE (deassign() removes one), got ${describeValue(flags)}`,
      );
    }
    const w = this.w;
    const resample = flags === KVM_IRQFD_FLAG_RESAMPLE;
    if (resample) {
      const r = this.route(gsi);
      if (r[0] !== KVM_IRQ_ROUTING_IRQCHIP)
        throw new KvmError('EINVAL', `a resample irqfd needs GSI ${gsi} routed to an irqchip pin`);
      if (w[this.pinResample + r[1]] !== 0)
        throw new KvmError('EINVAL', `pin ${r[1]} already has a resample irqfd`);
    }
    for (let fd = 0; fd < this.maxIrqfds; fd++) {
      if (w[this.fdFlags + fd] !== 0) continue;
      Atomics.store(w, this.counter + fd, 0);
      Atomics.store(w, this.resampleCount + fd, 0);
      Atomics.store(w, this.fdGsi + fd, gsi);
      Atomics.store(w, this.fdFlags + fd, FD_ASSIGNED | (resample ? FD_RESAMPLE : 0));
      if (resample) this.rebuildPinResample();
      return fd;
    }
    throw new KvmError('ENOSPC', `all ${this.maxIrqfds} irqfds are assigned`);
  }

  /** KVM_IRQFD with KVM_IRQFD_FLAG_DEASSIGN. A signal not yet drained is dropped, as KVM's. */
  deassign(fd: number): void {
    this.checkFd(fd);
    const w = this.w;
    Atomics.store(w, this.fdFlags + fd, 0);
    Atomics.store(w, this.fdGsi + fd, -1);
    Atomics.store(w, this.counter + fd, 0);
    this.rebuildPinResample();
  }

  private checkFd(fd: number): void {
    if (
      !Number.isInteger(fd) ||
      fd < 0 ||
      fd >= this.maxIrqfds ||
      (this.w[this.fdFlags + fd] & FD_ASSIGNED) === 0
    ) {
      throw new KvmError('EINVAL', `${describeValue(fd)} is not an assigned irqfd (assign() returns them)`);
    }
  }

  /**
   * The device side: the eventfd write. Any thread; no lock, no call into another thread (two
   * atomic adds, one atomic or, and a notify only when a consumer sleeps). `fd` is trusted to be an
   * irqfd number from assign() (checked cheaply: a bad one is ignored).
   */
  signal(fd: number): void {
    if (!(fd >>> 0 === fd && fd < this.maxIrqfds)) return;
    const w = this.w;
    if (this.shared) {
      Atomics.add(w, this.counter + fd, 1);
      Atomics.or(w, this.summary + (fd >>> 5), 1 << (fd & 31));
      Atomics.add(w, H_FUTEX, 1);
      if (Atomics.load(w, H_SLEEPING) !== 0) Atomics.notify(w, H_FUTEX);
    } else {
      w[this.counter + fd]++;
      w[this.summary + (fd >>> 5)] |= 1 << (fd & 31);
      w[H_FUTEX]++;
    }
  }

  /**
   * Consumes every signalled irqfd and injects into the bound GIC: irqchip routes as KVM's
   * irqfd_inject (a level pulse, raised and lowered; a resample irqfd's line is only raised), MSI
   * routes through the ITS (KVM_SIGNAL_MSI). Returns the number of injections. Any thread.
   */
  drain(): number {
    const gic = this.gic;
    if (gic === undefined)
      throw new VgicError('INVALID_ARGUMENT', 'drain() needs bindGic(gic) first in this thread');
    const w = this.w;
    const words = this.maxIrqfds >>> 5;
    let injections = 0;
    for (let i = 0; i < words; i++) {
      if (w[this.summary + i] === 0) continue;
      let bits = Atomics.exchange(w, this.summary + i, 0);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const fd = (i << 5) | b;
        const n = Atomics.exchange(w, this.counter + fd, 0);
        const flags = Atomics.load(w, this.fdFlags + fd);
        if (n === 0 || flags === 0) continue;
        Atomics.add(w, H_STATS + ST_SIGNALS, n);
        injections++;
        this.inject(gic, Atomics.load(w, this.fdGsi + fd), (flags & FD_RESAMPLE) !== 0);
      }
    }
    if (injections !== 0) Atomics.add(w, H_STATS + ST_INJECTIONS, injections);
    return injections;
  }

  private inject(gic: Vgic, gsi: number, resample: boolean): void {
    const w = this.w;
    const r = this.route(gsi);
    if (r[0] === KVM_IRQ_ROUTING_MSI) {
      const res = gic.injectMsi((r[1] >>> 0) + (r[2] >>> 0) * 2 ** 32, r[4] >>> 0, r[3] >>> 0);
      Atomics.add(
        w,
        H_STATS +
          (res === MSI_DELIVERED
            ? ST_MSI_DELIVERED
            : res === MSI_COALESCED
              ? ST_MSI_COALESCED
              : ST_MSI_FAILED),
        1,
      );
      return;
    }
    const intid = r[1] + VGIC_FIRST_SPI;
    if (r[0] !== KVM_IRQ_ROUTING_IRQCHIP || intid >= gic.nrIrqs) {
      Atomics.add(w, H_STATS + ST_FAILED, 1);
      return;
    }
    gic.irqLine(intid, true);
    if (!resample) gic.irqLine(intid, false);
  }

  /**
   * Sleeps until some irqfd may be signalled or `timeoutMs` passes (a consumer thread's wait; not
   * on a browser's main thread). Returns at once if a signal is waiting.
   */
  waitForSignal(timeoutMs: number): void {
    const w = this.w;
    const seen = Atomics.load(w, H_FUTEX);
    if (this.pending()) return;
    Atomics.store(w, H_SLEEPING, 1);
    if (!this.pending()) Atomics.wait(w, H_FUTEX, seen, timeoutMs);
    Atomics.store(w, H_SLEEPING, 0);
  }

  /** Whether a signal waits for a drain. */
  pending(): boolean {
    const w = this.w;
    for (let i = 0; i < this.maxIrqfds >>> 5; i++) if (Atomics.load(w, this.summary + i) !== 0) return true;
    return false;
  }

  // ---- Resampling (KVM_IRQFD_FLAG_RESAMPLE) ----

  /** The fold's report (core/ack.ts): the guest EOI'd level SPI `intid`. Lowers the line if ours. */
  private levelAcked(intid: number): boolean {
    const w = this.w;
    const pin = intid - VGIC_FIRST_SPI;
    if (pin < 0 || pin >= KVM_IRQCHIP_NUM_PINS) return false;
    const fd1 = Atomics.load(w, this.pinResample + pin);
    if (fd1 === 0) return false;
    Atomics.add(w, this.resampleCount + fd1 - 1, 1);
    Atomics.add(w, H_STATS + ST_RESAMPLES, 1);
    Atomics.add(w, H_RESAMPLE_FUTEX, 1);
    if (this.shared) Atomics.notify(w, H_RESAMPLE_FUTEX);
    return true;
  }

  /** The resamplefd's read: how many EOIs since the last call (0 if none), reset to 0. */
  takeResample(fd: number): number {
    this.checkFd(fd);
    return Atomics.exchange(this.w, this.resampleCount + fd, 0);
  }

  /** Sleeps until a resample may have happened or `timeoutMs` passes (a device thread's wait). */
  waitForResample(fd: number, timeoutMs: number): void {
    this.checkFd(fd);
    const w = this.w;
    const seen = Atomics.load(w, H_RESAMPLE_FUTEX);
    if (Atomics.load(w, this.resampleCount + fd) !== 0) return;
    Atomics.wait(w, H_RESAMPLE_FUTEX, seen, timeoutMs);
  }

  stats(): IrqfdStats {
    const s = (i: number) => Atomics.load(this.w, H_STATS + i) >>> 0;
    return {
      signals: s(ST_SIGNALS),
      injections: s(ST_INJECTIONS),
      msiDelivered: s(ST_MSI_DELIVERED),
      msiCoalesced: s(ST_MSI_COALESCED),
      msiFailed: s(ST_MSI_FAILED),
      failed: s(ST_FAILED),
      resamples: s(ST_RESAMPLES),
    };
  }
}
