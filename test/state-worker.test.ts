/**
 * The state layout is the whole GIC: a worker thread given the SharedArrayBuffer attaches with
 * Vgic.attach and sees, and changes, the same interrupt controller as the thread that created it.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  GICD_CTLR,
  GICD_IPRIORITYR,
  GICD_ISENABLER,
  GICD_ISPENDR,
  ICC_EOIR1_EL1,
  ICC_IAR1_EL1,
  ICC_IGRPEN1_EL1,
  ICC_PMR_EL1,
  ICC_RPR_EL1,
  Vgic,
  VIRT_GICD_BASE,
} from '../src/index.ts';
import { attachState, H_MAGIC, H_VERSION, STATE_MAGIC } from '../src/state/layout.ts';
import type { StateWorkerResult, StateWorkerTask } from './fixtures/state-worker.ts';

const GICD = VIRT_GICD_BASE;
const WORKER_URL = new URL('./fixtures/state-worker.js', import.meta.url);

function runWorker(task: StateWorkerTask): Promise<StateWorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_URL, { workerData: task });
    let result: StateWorkerResult | undefined;
    w.once('message', (m: StateWorkerResult) => {
      result = m;
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (result === undefined) reject(new Error(`worker exited with code ${code} and no result`));
      else if (!result.ok) reject(new Error(`worker failed: ${result.error}`));
      else resolve(result);
    });
  });
}

test('a worker attaching to a shared GIC without its own lock owner id is refused, saying how', async () => {
  const r = await runWorker({ kind: 'attach-without-owner-id', buffer: sharedBuffer(make()) });
  assert.match(r.error ?? '', /^VgicError: a worker attaching to a shared GIC needs its own lock owner id/);
});

function make(): Vgic {
  return Vgic.create({ vcpus: 2, spis: 96, lrs: 4, time: 'virtual' });
}

function sharedBuffer(gic: Vgic): SharedArrayBuffer {
  const b = gic.state.buffer;
  assert.ok(b instanceof SharedArrayBuffer, 'the state is shared by default');
  return b;
}

/** Enables Group 1 at the distributor and on vCPU `v`'s CPU interface. */
function enableGroup1(gic: Vgic, v: number): void {
  const cpu = gic.vcpu(v);
  cpu.writel(GICD + GICD_CTLR, 2);
  cpu.writeSysreg(ICC_PMR_EL1, 0xf0);
  cpu.writeSysreg(ICC_IGRPEN1_EL1, 1);
}

describe('a worker attached to the state buffer', () => {
  test('sees what the main thread wrote (userspace and guest writes)', async () => {
    const gic = make();
    gic.writeDistReg(GICD_IPRIORITYR + 44, 0x00a80000); // INTID 46: 0xa8
    gic.vcpu(0).writel(GICD + GICD_CTLR, 2);
    const r = await runWorker({ kind: 'read', buffer: sharedBuffer(gic), intid: 46 });
    assert.equal(r.nVcpus, 2);
    assert.equal(r.nSpis, 96);
    assert.equal(r.shared, true);
    assert.equal(r.priority, 0xa8);
    assert.equal(r.ctlr, 0x52);
  });

  test('changes the same state: priority, enable and a pending SPI the main vCPU acknowledges', async () => {
    const gic = make();
    enableGroup1(gic, 0);
    const cpu = gic.vcpu(0);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 1023);
    const r = await runWorker({
      kind: 'inject',
      buffer: sharedBuffer(gic),
      intid: 77,
      priority: 0x50,
      enable: true,
    });
    assert.equal(r.accepted, true);
    // The main thread observes every change the worker made.
    assert.equal(Number(gic.readDistReg(GICD_IPRIORITYR + 76) >> 8n) & 0xff, 0x50);
    assert.equal(cpu.readb(GICD + GICD_IPRIORITYR + 77), 0x50);
    assert.equal(cpu.readl(GICD + GICD_ISENABLER + 8), 1 << (77 - 64));
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 8), 1 << (77 - 64));
    // ... and its vCPU takes the interrupt.
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 77);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0x50);
    cpu.writeSysreg(ICC_EOIR1_EL1, 77);
    assert.equal(cpu.readSysreg(ICC_RPR_EL1), 0xff);
    // Level SPI, line still high: pending again.
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 8), 1 << (77 - 64));
    gic.irqLine(77, false);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 8), 0);
  });

  test('a disabled SPI made pending by the worker is pending but not delivered', async () => {
    const gic = make();
    enableGroup1(gic, 1);
    const cpu = gic.vcpu(1);
    cpu.writeq(GICD + 0x6000 + 8 * 40, 1n); // IROUTER(40) -> vCPU 1
    const r = await runWorker({
      kind: 'inject',
      buffer: sharedBuffer(gic),
      intid: 40,
      priority: 0x10,
      enable: false,
    });
    assert.equal(r.accepted, true);
    assert.equal(cpu.readl(GICD + GICD_ISPENDR + 4), 1 << 8);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 1023);
    cpu.writel(GICD + GICD_ISENABLER + 4, 1 << 8);
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 40);
    cpu.writeSysreg(ICC_EOIR1_EL1, 40);
  });

  test('attaching does not disturb a running vCPU (its PSTATE.I stays clear)', async () => {
    const gic = make();
    enableGroup1(gic, 0);
    const cpu = gic.vcpu(0);
    const acked: number[] = [];
    cpu.onIrq((c) => {
      const intid = c.readSysreg(ICC_IAR1_EL1);
      acked.push(intid);
      gic.irqLine(intid, false); // the device is serviced before the EOI
      c.writeSysreg(ICC_EOIR1_EL1, intid);
    });
    cpu.unmaskIrqs();
    await runWorker({ kind: 'attach-only', buffer: sharedBuffer(gic) });
    assert.equal(cpu.irqsMasked, false);
    await runWorker({ kind: 'inject', buffer: sharedBuffer(gic), intid: 100, priority: 0x20, enable: true });
    cpu.step();
    assert.deepEqual(acked, [100]);
  });

  test('a main-thread WFI is woken by the worker raising an interrupt', async () => {
    const gic = make();
    enableGroup1(gic, 0);
    const cpu = gic.vcpu(0);
    const buffer = sharedBuffer(gic);
    const done = runWorker({ kind: 'inject', buffer, intid: 64, priority: 0x30, enable: true });
    // Blocks this thread until the worker's injection kicks vCPU 0 (or 20 s pass).
    const woke = cpu.wfi(20_000);
    await done;
    assert.equal(woke, 'irq');
    assert.equal(cpu.readSysreg(ICC_IAR1_EL1), 64);
    cpu.writeSysreg(ICC_EOIR1_EL1, 64);
  });
});

describe('attaching a state buffer', () => {
  test('in the same thread, attaching to the buffer gives the same GIC', () => {
    const gic = make();
    const other = Vgic.attach(gic.state.buffer);
    assert.equal(other.nVcpus, 2);
    assert.equal(other.nrIrqs, 128);
    other.writeDistReg(GICD_IPRIORITYR + 32, 0x88);
    assert.equal(gic.vcpu(0).readb(GICD + GICD_IPRIORITYR + 32), 0x88);
  });

  test('an unshared copy of the buffer is a snapshot', () => {
    const gic = make();
    gic.writeDistReg(GICD_IPRIORITYR + 32, 0x40);
    const copy = new ArrayBuffer(gic.state.buffer.byteLength);
    new Uint8Array(copy).set(new Uint8Array(gic.state.buffer));
    const snap = Vgic.attach(copy);
    assert.equal(snap.state.shared, false);
    assert.equal(snap.readDistReg(GICD_IPRIORITYR + 32), 0x40n);
    gic.writeDistReg(GICD_IPRIORITYR + 32, 0x80);
    assert.equal(snap.readDistReg(GICD_IPRIORITYR + 32), 0x40n);
  });

  test('attachState rejects a buffer with a bad magic (RangeError)', () => {
    const gic = make();
    const copy = new ArrayBuffer(gic.state.buffer.byteLength);
    new Uint8Array(copy).set(new Uint8Array(gic.state.buffer));
    assert.equal(new Int32Array(copy)[H_MAGIC], STATE_MAGIC);
    new Int32Array(copy)[H_MAGIC] = 0x12345678;
    assert.throws(() => attachState(copy), RangeError);
    assert.throws(() => Vgic.attach(copy), RangeError);
    assert.throws(() => attachState(new SharedArrayBuffer(4096)), RangeError, 'all zeros');
  });

  test('attachState rejects a too-small buffer, an unknown version and a truncated state', () => {
    assert.throws(() => attachState(new ArrayBuffer(8)), RangeError);
    const gic = make();
    const copy = new ArrayBuffer(gic.state.buffer.byteLength);
    new Uint8Array(copy).set(new Uint8Array(gic.state.buffer));
    new Int32Array(copy)[H_VERSION] = 99;
    assert.throws(() => attachState(copy), RangeError);
    const truncated = new ArrayBuffer(gic.state.buffer.byteLength - 8);
    new Uint8Array(truncated).set(new Uint8Array(gic.state.buffer, 0, truncated.byteLength));
    assert.throws(() => attachState(truncated), RangeError);
  });
});
