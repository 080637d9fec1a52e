/**
 * The 32 virtio-mmio transports of QEMU 7.2's `virt` board (hw/arm/virt.c VIRT_MMIO: 0x0a000000,
 * 0x200 each, SPIs 16-47) with nothing plugged in, as `-nic none` and no `-device` leave them on
 * QEMU (hw/virtio/virtio-mmio.c, no backend): MagicValue "virt", Version 1 (QEMU's default
 * force-legacy), VendorID "QEMU", every other register zero and every write ignored. DeviceID 0
 * means "no device", so a driver that probes them claims none. Test suites written for the board
 * read them as an address whose accesses leave the guest and come back with known values
 * (kvm-unit-tests micro-bench's mmio_read_user reads 0x0a000008, the first DeviceID).
 * Not in the device tree (virt-dt.ts leaves them out, as Linux needs none).
 *
 * Who may call: the machine's MMIO dispatch, from one thread. No state.
 */

export const VIRTIO_MMIO_BASE = 0x0a00_0000;
/** 32 transports of 0x200 bytes. */
export const VIRTIO_MMIO_SIZE = 32 * 0x200;

const MAGIC_VALUE = 0x000;
const VERSION = 0x004;
const VENDOR_ID = 0x00c;

/**
 * A read of `size` bytes at `offset` in the window. QEMU hands the transport at most 4 bytes at a
 * time, each at its own offset, and a register answers only at its own offset, its value cut to
 * the access size (a byte read of the magic's second byte is 0, not 'r').
 */
export function virtioMmioRead(offset: number, size: number): number {
  let r = 0;
  switch (offset & 0x1ff) {
    case MAGIC_VALUE:
      r = 0x7472_6976;
      break;
    case VERSION:
      r = 1;
      break;
    case VENDOR_ID:
      r = 0x554d_4551;
      break;
  }
  return size < 4 ? r & (2 ** (size * 8) - 1) : r;
}

/** The high word of an 8-byte read: the second 4-byte piece. */
export function virtioMmioReadHi(offset: number, size: number): number {
  return size === 8 ? virtioMmioRead(offset + 4, 4) : 0;
}
