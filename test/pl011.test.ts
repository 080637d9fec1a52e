/**
 * The PL011 UART (src/machine/pl011.ts): reset values and IDs as QEMU 7.2 returns them, the receive
 * FIFO with and without LCR_H.FEN, overruns, interrupt masking and clearing, access sizes, and the
 * snapshot state round trip.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VgicError } from '../src/arch/errors.ts';
import { PL011, PL011_ID, PL011Flag, PL011Int, PL011Reg, PL011Rsr } from '../src/machine/pl011.ts';

const FEN = 1 << 4;

function uart() {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const u = new PL011({ output: (b) => out.push(...b), irq: (l) => irqs.push(l) });
  return { u, out, irqs };
}

test('pl011: reset values and the PrimeCell IDs QEMU returns', () => {
  const { u } = uart();
  assert.equal(u.read(PL011Reg.FR, 4), PL011Flag.RXFE | PL011Flag.TXFE);
  assert.equal(u.read(PL011Reg.CR, 4), 0x300);
  assert.equal(u.read(PL011Reg.IFLS, 4), 0x12);
  for (const r of [
    PL011Reg.LCR_H,
    PL011Reg.IBRD,
    PL011Reg.FBRD,
    PL011Reg.ILPR,
    PL011Reg.IMSC,
    PL011Reg.RIS,
  ]) {
    assert.equal(u.read(r, 4), 0, `reg ${r}`);
  }
  assert.deepEqual(
    Array.from({ length: 8 }, (_, i) => u.read(0xfe0 + 4 * i, 4)),
    [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1],
  );
  assert.deepEqual(PL011_ID, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
  // Unknown offsets read as zero and ignore writes; so do read-only registers.
  assert.equal(u.read(0x4c, 4), 0);
  assert.equal(u.read(0x800, 4), 0);
  u.write(0x800, 4, 0xffff);
  u.write(PL011Reg.FR, 4, 0);
  u.write(0xfe0, 4, 0);
  assert.equal(u.read(PL011Reg.FR, 4), 0x90);
  assert.equal(u.read(0xfe0, 4), 0x11);
});

test('pl011: transmit goes straight to the sink and raises TXRIS', () => {
  const { u, out, irqs } = uart();
  for (const c of 'hi\n') u.write(PL011Reg.DR, 4, c.charCodeAt(0));
  u.write(PL011Reg.DR, 1, 0x41);
  assert.equal(String.fromCharCode(...out), 'hi\nA');
  assert.equal(u.read(PL011Reg.FR, 4) & (PL011Flag.TXFE | PL011Flag.TXFF | PL011Flag.BUSY), PL011Flag.TXFE);
  assert.equal(u.read(PL011Reg.RIS, 4), PL011Int.TX);
  assert.equal(u.read(PL011Reg.MIS, 4), 0, 'masked');
  assert.deepEqual(irqs, []);
  u.write(PL011Reg.IMSC, 4, PL011Int.TX);
  assert.equal(u.read(PL011Reg.MIS, 4), PL011Int.TX);
  assert.equal(u.irqLevel, true);
  u.write(PL011Reg.ICR, 4, PL011Int.TX);
  assert.equal(u.irqLevel, false);
  assert.deepEqual(irqs, [true, false]);
  assert.equal(u.read(PL011Reg.RIS, 4), 0);
});

test('pl011: receive FIFO of 16 with FEN, in order, RXFF/RXFE, overrun drops and counts', () => {
  const { u } = uart();
  u.write(PL011Reg.LCR_H, 4, FEN | 0x60);
  assert.equal(u.rxSpace(), 16);
  u.pushInput(Uint8Array.from({ length: 15 }, (_, i) => 0x30 + i));
  assert.equal(u.read(PL011Reg.FR, 4) & (PL011Flag.RXFE | PL011Flag.RXFF), 0);
  u.pushInput([0x3f]);
  assert.equal(u.read(PL011Reg.FR, 4) & PL011Flag.RXFF, PL011Flag.RXFF);
  assert.equal(u.rxSpace(), 0);
  u.pushInput([0x99, 0x98]);
  assert.equal(u.overruns, 2);
  assert.equal(u.read(PL011Reg.RSR_ECR, 4) & PL011Rsr.OE, PL011Rsr.OE);
  assert.equal(u.read(PL011Reg.RIS, 4) & PL011Int.OE, PL011Int.OE);
  const got: number[] = [];
  for (let i = 0; i < 16; i++) got.push(u.read(PL011Reg.DR, 4));
  assert.deepEqual(
    got,
    Array.from({ length: 16 }, (_, i) => 0x30 + i),
    'FIFO contents kept, extra dropped',
  );
  assert.equal(u.read(PL011Reg.FR, 4) & (PL011Flag.RXFE | PL011Flag.RXFF), PL011Flag.RXFE);
  assert.equal(u.read(PL011Reg.RSR_ECR, 4), PL011Rsr.OE, 'OE sticks across DR reads');
  u.write(PL011Reg.RSR_ECR, 4, 0);
  assert.equal(u.read(PL011Reg.RSR_ECR, 4), 0, 'ECR write clears');
  // Empty FIFO: QEMU hands back the slot under the read pointer again.
  assert.equal(u.read(PL011Reg.DR, 4), 0x30);
  // Wrap-around.
  u.pushInput([1, 2, 3]);
  assert.deepEqual([u.read(0, 4), u.read(0, 4), u.read(0, 4)], [1, 2, 3]);
});

test('pl011: without FEN the FIFO holds one character; toggling FEN empties it', () => {
  const { u } = uart();
  u.pushInput([0x61, 0x62]);
  assert.equal(u.overruns, 1);
  assert.equal(u.read(PL011Reg.FR, 4) & PL011Flag.RXFF, PL011Flag.RXFF);
  assert.equal(u.read(PL011Reg.DR, 4), 0x61);
  assert.equal(u.read(PL011Reg.FR, 4) & PL011Flag.RXFE, PL011Flag.RXFE);
  u.pushInput([0x63]);
  u.write(PL011Reg.LCR_H, 4, FEN);
  assert.equal(u.read(PL011Reg.FR, 4), PL011Flag.RXFE | PL011Flag.TXFE, 'emptied');
  u.pushInput([0x64]);
  u.write(PL011Reg.LCR_H, 4, FEN | 0x60); // FEN unchanged: kept
  assert.equal(u.read(PL011Reg.DR, 4), 0x64);
});

test('pl011: RX interrupt at the first character, masked by IMSC, cleared by draining or ICR', () => {
  const { u, irqs } = uart();
  u.write(PL011Reg.LCR_H, 4, FEN);
  u.pushInput([0x41]);
  assert.equal(u.read(PL011Reg.RIS, 4), PL011Int.RX);
  assert.equal(u.irqLevel, false, 'masked');
  u.write(PL011Reg.IMSC, 4, PL011Int.RX | PL011Int.RT);
  assert.equal(u.irqLevel, true);
  assert.equal(u.read(PL011Reg.MIS, 4), PL011Int.RX);
  u.pushInput([0x42]);
  u.read(PL011Reg.DR, 4);
  assert.equal(u.irqLevel, true, 'still one character left');
  u.read(PL011Reg.DR, 4);
  assert.equal(u.irqLevel, false, 'drained');
  u.pushInput([0x43]);
  assert.equal(u.irqLevel, true);
  u.write(PL011Reg.ICR, 4, PL011Int.RX);
  assert.equal(u.irqLevel, false, 'ICR clears the status even with data left');
  assert.equal(u.read(PL011Reg.FR, 4) & PL011Flag.RXFE, 0);
  u.write(PL011Reg.IMSC, 4, 0);
  assert.deepEqual(irqs, [true, false, true, false]);
  // The overrun interrupt is an error interrupt: it follows IMSC.OEIM.
  u.write(PL011Reg.IMSC, 4, PL011Int.OE);
  u.write(PL011Reg.LCR_H, 4, 0);
  u.pushInput([1, 2]);
  assert.equal(u.irqLevel, true);
  u.write(PL011Reg.ICR, 4, 0x7ff);
  assert.equal(u.irqLevel, false);
});

test('pl011: registers read back; access sizes as QEMU', () => {
  const { u, out } = uart();
  const rw: [number, number][] = [
    [PL011Reg.ILPR, 0x12],
    [PL011Reg.IBRD, 0x1a],
    [PL011Reg.FBRD, 0x3],
    [PL011Reg.LCR_H, 0x70],
    [PL011Reg.CR, 0x301],
    [PL011Reg.IFLS, 0x24],
    [PL011Reg.DMACR, 0x4],
  ];
  for (const [r, v] of rw) {
    u.write(r, 4, v);
    assert.equal(u.read(r, 4), v, `reg ${r}`);
  }
  // Byte and halfword accesses decode by offset >> 2 and truncate the value.
  assert.equal(u.read(PL011Reg.CR + 1, 1), 0x01);
  assert.equal(u.read(PL011Reg.CR, 2), 0x301);
  assert.equal(u.read(0xfe4 + 3, 1), 0x10);
  // An 8-byte access is two 4-byte ones: DR then RSR.
  u.write(PL011Reg.DR, 8, 2 ** 32 + 0x5a);
  assert.deepEqual(out, [0x5a]);
  assert.equal(u.read(PL011Reg.IBRD, 8), 0x1a + 0x3 * 2 ** 32);
  const isAddr = (e: unknown) => e instanceof VgicError && e.code === 'INVALID_ADDRESS';
  assert.throws(() => u.read(0, 3), isAddr);
  assert.throws(() => u.read(0x1000, 4), isAddr);
  assert.throws(() => u.read(0xffc, 8), isAddr);
  assert.throws(
    () => u.write(0, 1, 0x100),
    (e) => e instanceof VgicError,
  );
});

test('pl011: state round trip through JSON, reset, and bad state rejected', () => {
  const a = uart();
  a.u.write(PL011Reg.LCR_H, 4, FEN | 0x60);
  a.u.write(PL011Reg.IBRD, 4, 13);
  a.u.write(PL011Reg.IMSC, 4, PL011Int.RX);
  a.u.pushInput([0x10, 0x11, 0x12]);
  a.u.read(PL011Reg.DR, 4);
  const state = JSON.parse(JSON.stringify(a.u.getState()));
  const b = uart();
  b.u.setState(state);
  assert.deepEqual(b.u.getState(), a.u.getState());
  assert.equal(b.u.irqLevel, true);
  assert.deepEqual(b.irqs, [true], 'setState drives the line');
  assert.deepEqual([b.u.read(0, 4), b.u.read(0, 4)], [0x11, 0x12]);
  assert.equal(b.u.read(PL011Reg.IBRD, 4), 13);
  // getState is a copy.
  const s = b.u.getState();
  s.readFifo[0] = 0xff;
  assert.notEqual(b.u.getState().readFifo[0], 0xff);
  b.u.reset();
  assert.equal(b.u.irqLevel, false);
  assert.equal(b.u.read(PL011Reg.FR, 4), 0x90);
  const isArg = (e: unknown) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT';
  assert.throws(() => b.u.setState({ ...state, readFifo: [1] }), isArg);
  assert.throws(() => b.u.setState({ ...state, readCount: 17 }), isArg);
  assert.throws(() => b.u.setState({ ...state, lcr: 0, readPos: 3 }), isArg);
  assert.throws(() => b.u.setState({ ...state, cr: -1 }), isArg);
  assert.throws(() => b.u.setState({ ...state, ibrd: '1' }), isArg);
});
