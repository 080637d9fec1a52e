/**
 * Locks are 32-bit words in the state buffer: 0 when free, else the owner's thread id.
 * A taker spins briefly, then sleeps in Atomics.wait (never an unbounded spin: these hosts have 2 cores);
 * where the platform forbids blocking (a browser's main thread) it spins and retries instead: the
 * holder is another thread that holds a lock for one short operation.
 *
 * Lock order (KVM's, arch/arm64/kvm/vgic/vgic.c), outermost first:
 *
 *     config lock (device API)  →  its cmd_lock  →  its_lock  →  LPI store lock
 *       →  run_lock (per vCPU)  →  ap_list_lock (per vCPU)  →  irq_lock (per interrupt)
 *
 * - run_lock is vgic's own: held by the thread running a vCPU while that vCPU executes one
 *   instruction (and its entry/exit work), released between instructions, around an IRQ
 *   handler, in WFI, and while an exit is emulated (MMIO, SGI generation, deactivation in
 *   software). Taking it halts the vCPU at an instruction boundary: its LRs are quiescent, so the
 *   taker may fold them back itself (core/vgic.ts haltVcpu; KVM's kvm_arm_halt_guest kicks the
 *   vCPU out of hardware instead). Several run_locks are taken in ascending vCPU order. A thread
 *   holding a run_lock never waits for an ITS lock, so ITS commands may halt vCPUs.
 *
 * - The ITS's cmd_lock guards CBASER/CREADR/CWRITER; its_lock guards the ITS tables, the
 *   collections and translation-cache fills. The LPI store lock (KVM's lpi_xa lock, one per GIC)
 *   guards an LPI's reference count across ITSes and its first map / last unmap (core/lpi.ts). Readers of the translation cache and of the LPI store
 *   take no lock (its/cache.ts says why that is safe).
 *
 * - The baseline design (translationCache: 'global-lru', its/global-cache.ts) adds one lock, the
 *   global translation-cache lock (v6.8-rc1's dist->lpi_list_lock), between its_lock and irq_lock:
 *
 *     its_lock  →  global cache lock  →  irq_lock
 *
 *   A fill and an invalidation take it with an its_lock held; an MSI's lookup takes it alone and
 *   drops it before taking the LPI's irq_lock. Nothing is taken while it is held.
 *
 * - To take an outer lock while holding an inner one, drop the inner one first and re-check
 *   (vgic_queue_irq_unlock in core/vgic.ts does this).
 * - When taking two ap_list_locks, take the lower vCPU id's first.
 * - The list registers, ICH_VMCR, the APRs and the timer of a vCPU belong to the thread running
 *   that vCPU and take no lock; other threads only touch a vCPU's ap_list (under its lock) and
 *   then kick it.
 * - Functions named `…Locked` expect the caller to hold the lock their first argument names.
 *
 * Who may call: core/ and device/. A lock taken twice by the same thread is a vgic bug and throws.
 */

import { describeValue, VgicError } from '../arch/errors.ts';

/** The owner id of the thread that creates a GIC (and of any thread that sets none). */
export const MAIN_OWNER_ID = 1;

/**
 * This thread's lock owner id. Explicit, never derived from the platform: a core that imports
 * nothing host-specific runs in browsers and bundlers (a bundler stubbing Node's threadId once
 * turned it into NaN, which corrupted an ap_list). Every other thread attaching to a shared state
 * sets a distinct one (Vgic.attach's ownerId, or setLockOwnerId).
 */
let ownerId = MAIN_OWNER_ID;
let ownerIdSet = false;

/** Sets this thread's lock owner id (must be unique among threads sharing a state, and non-zero). */
export function setLockOwnerId(id: number): void {
  if (!Number.isInteger(id) || id <= 0 || id > 0x7fffffff) {
    throw new VgicError(
      'INVALID_ARGUMENT',
      `lock owner id must be an integer in 1..2^31-1, got ${describeValue(id)}`,
    );
  }
  ownerId = id;
  ownerIdSet = true;
}

/** This thread's lock owner id. */
export function lockOwnerId(): number {
  return ownerId;
}

/** Whether this thread chose its owner id (setLockOwnerId / Vgic.attach's ownerId). */
export function lockOwnerIdSet(): boolean {
  return ownerIdSet;
}

/**
 * Whether this thread may block in Atomics.wait. A browser's main thread may not (it throws), and
 * without SharedArrayBuffer there is nothing to wait on. Probed once, with a value that does not
 * match: the platform's refusal comes before the comparison, so the probe never sleeps.
 */
let blocking: boolean | undefined;
export function canBlock(): boolean {
  if (blocking === undefined) {
    blocking = false;
    if (typeof SharedArrayBuffer === 'function') {
      try {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
        blocking = true;
      } catch {
        // a window's main thread: spin, retry and return early instead of sleeping
      }
    }
  }
  return blocking;
}
export class LockRecursionError extends Error {
  override name = 'LockRecursionError';
}

const SPINS = 200;

export function lock(words: Int32Array, i: number): void {
  if (Atomics.compareExchange(words, i, 0, ownerId) === 0) return;
  lockSlow(words, i);
}

function lockSlow(words: Int32Array, i: number): void {
  for (;;) {
    const cur = Atomics.load(words, i);
    if (cur === ownerId) {
      throw new LockRecursionError(
        `lock word ${i} is already held by owner id ${cur}, this thread's (a vgic bug, or two threads ` +
          'sharing one owner id: give each attaching thread its own, Vgic.attach(buffer, { ownerId }))',
      );
    }
    for (let n = 0; n < SPINS; n++) {
      if (Atomics.load(words, i) === 0 && Atomics.compareExchange(words, i, 0, ownerId) === 0) return;
    }
    const held = Atomics.load(words, i);
    if (held !== 0) {
      // A non-shared buffer has a single thread: nobody else can release it.
      if (typeof SharedArrayBuffer !== 'function' || !(words.buffer instanceof SharedArrayBuffer)) {
        throw new LockRecursionError(`lock word ${i} is held by ${held} in an unshared state`);
      }
      if (canBlock()) Atomics.wait(words, i, held, 1);
    }
  }
}

export function unlock(words: Int32Array, i: number): void {
  Atomics.store(words, i, 0);
  // Waiters sleep at most 1 ms, so a notify is only a latency improvement; skip it on the fast path.
}

/**
 * The named locks of the state. On an unshared state (an ArrayBuffer: one thread by construction)
 * the lock words are taken with plain loads and stores, which keeps the single-thread paths free of
 * Atomics (5-30 ns each on these hosts); a word found held is still a recursion bug and throws.
 */
interface LockedState {
  readonly shared: boolean;
  readonly irqLock: Int32Array;
  readonly vcpu: Int32Array;
}

/** vgic_irq->irq_lock of a slot. */
export function lockIrq(s: LockedState, slot: number): void {
  if (s.shared) lock(s.irqLock, slot);
  else plainLock(s.irqLock, slot);
}

export function unlockIrq(s: LockedState, slot: number): void {
  if (s.shared) Atomics.store(s.irqLock, slot, 0);
  else s.irqLock[slot] = 0;
}

/** vgic_cpu->ap_list_lock, at word index `i` of `vcpu` (V_AP_LOCK of the vCPU's block). */
export function lockApList(s: LockedState, i: number): void {
  if (s.shared) lock(s.vcpu, i);
  else plainLock(s.vcpu, i);
}

export function unlockApList(s: LockedState, i: number): void {
  if (s.shared) Atomics.store(s.vcpu, i, 0);
  else s.vcpu[i] = 0;
}

/**
 * Takes an ap_list_lock only if it is free. Taking it while holding an irq_lock (against the lock
 * order) is safe this way: a try never waits, so it cannot deadlock.
 */
export function tryLockApList(s: LockedState, i: number): boolean {
  if (s.shared) return Atomics.compareExchange(s.vcpu, i, 0, ownerId) === 0;
  if (s.vcpu[i] !== 0) return false;
  s.vcpu[i] = ownerId;
  return true;
}

/** run_lock of vCPU v (word V_RUN_LOCK of its block: `i` = v·VCPU_STRIDE + V_RUN_LOCK). */
export function lockRun(s: LockedState, i: number): void {
  if (s.shared) {
    if (Atomics.compareExchange(s.vcpu, i, 0, ownerId) !== 0) lockSlow(s.vcpu, i);
  } else plainLock(s.vcpu, i);
}

export function unlockRun(s: LockedState, i: number): void {
  if (s.shared) {
    // No notify (it costs more than the rest of an instruction): a halter spins through most
    // instructions and otherwise sleeps at most 1 ms.
    Atomics.store(s.vcpu, i, 0);
  } else s.vcpu[i] = 0;
}

/**
 * Any other lock word of the state (the ITS's cmd_lock and its_lock), with the same shared/unshared
 * split as the named locks above.
 */
export function lockWord(s: { readonly shared: boolean }, words: Int32Array, i: number): void {
  if (s.shared) lock(words, i);
  else plainLock(words, i);
}

export function unlockWord(s: { readonly shared: boolean }, words: Int32Array, i: number): void {
  if (s.shared) Atomics.store(words, i, 0);
  else words[i] = 0;
}

/** Takes such a word only if it is free (never waits). */
export function tryLockWord(s: { readonly shared: boolean }, words: Int32Array, i: number): boolean {
  if (s.shared) return Atomics.compareExchange(words, i, 0, ownerId) === 0;
  if (words[i] !== 0) return false;
  words[i] = ownerId;
  return true;
}

function plainLock(words: Int32Array, i: number): void {
  if (words[i] !== 0) throw new LockRecursionError(`lock word ${i} is already held in an unshared state`);
  words[i] = ownerId;
}
