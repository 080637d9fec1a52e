/**
 * The virt board's empty virtio-mmio transports (src/machine/virtio-mmio.ts): the values QEMU 7.2
 * gives with no backend (guest/progs/ids.c compares the same reads with QEMU on the real board).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VIRTIO_MMIO_SIZE, virtioMmioRead, virtioMmioReadHi } from '../src/machine/virtio-mmio.ts';

test('virtio-mmio without a backend: magic, legacy version, no device, QEMU vendor; the rest zero', () => {
  for (const t of [0, 0x200 * 17, VIRTIO_MMIO_SIZE - 0x200]) {
    assert.equal(virtioMmioRead(t + 0x000, 4), 0x74726976, 'MagicValue "virt"');
    assert.equal(virtioMmioRead(t + 0x004, 4), 1, 'Version 1 (force-legacy)');
    assert.equal(virtioMmioRead(t + 0x008, 4), 0, 'DeviceID 0: nothing plugged in');
    assert.equal(virtioMmioRead(t + 0x00c, 4), 0x554d4551, 'VendorID "QEMU"');
    for (let off = 0x10; off < 0x200; off += 4) assert.equal(virtioMmioRead(t + off, 4), 0, `offset ${off}`);
  }
});

test('virtio-mmio: narrow reads answer only at a register offset, 8-byte reads are two words', () => {
  assert.equal(virtioMmioRead(0, 1), 0x76);
  assert.equal(virtioMmioRead(1, 1), 0, "the magic's second byte is not a register");
  assert.equal(virtioMmioRead(0, 2), 0x6976);
  assert.equal(virtioMmioRead(0, 8), 0x74726976);
  assert.equal(virtioMmioReadHi(0, 8), 1);
  assert.equal(virtioMmioReadHi(0, 4), 0);
});
