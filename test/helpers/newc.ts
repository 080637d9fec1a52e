/**
 * A small reader for cpio "newc" archives (the kernel's initramfs format), so that the tests can
 * check what src/machine/initramfs.ts writes without a cpio binary. Strict: it throws on a bad
 * magic, a missing trailer or misaligned records, instead of guessing.
 */

export interface NewcRecord {
  readonly name: string;
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtime: number;
  readonly rdevmajor: number;
  readonly rdevminor: number;
  readonly data: Uint8Array;
  /** Byte offset of the header in the archive. */
  readonly offset: number;
}

const dec = new TextDecoder();

/** Every record before the trailer, and where the trailer ended (the archive's used length). */
export function readNewc(bytes: Uint8Array): { records: NewcRecord[]; end: number } {
  const records: NewcRecord[] = [];
  let at = 0;
  for (;;) {
    if (at % 4 !== 0) throw new Error(`record at ${at} is not 4-byte aligned`);
    if (at + 110 > bytes.length) throw new Error(`archive ends at ${bytes.length} without a trailer`);
    const head = dec.decode(bytes.subarray(at, at + 110));
    if (!head.startsWith('070701')) throw new Error(`bad magic '${head.slice(0, 6)}' at ${at}`);
    const f = (i: number) => {
      const h = head.slice(6 + 8 * i, 14 + 8 * i);
      if (!/^[0-9a-f]{8}$/.test(h)) throw new Error(`bad field ${i} '${h}' at ${at}`);
      return Number.parseInt(h, 16);
    };
    const namesize = f(11);
    const nameStart = at + 110;
    if (bytes[nameStart + namesize - 1] !== 0) throw new Error(`name at ${nameStart} is not NUL-terminated`);
    const name = dec.decode(bytes.subarray(nameStart, nameStart + namesize - 1));
    const dataStart = nameStart + namesize + ((4 - ((110 + namesize) % 4)) % 4);
    const filesize = f(6);
    const data = bytes.subarray(dataStart, dataStart + filesize);
    if (data.length !== filesize) throw new Error(`'${name}' data runs past the archive`);
    const next = dataStart + filesize + ((4 - (filesize % 4)) % 4);
    // Padding must be zeros (the kernel skips it unread, but a writer bug shows here first).
    for (let i = nameStart + namesize; i < dataStart; i++)
      if (bytes[i] !== 0) throw new Error(`name padding of '${name}'`);
    for (let i = dataStart + filesize; i < next; i++)
      if (bytes[i] !== 0) throw new Error(`data padding of '${name}'`);
    if (name === 'TRAILER!!!') return { records, end: next };
    records.push({
      name,
      ino: f(0),
      mode: f(1),
      uid: f(2),
      gid: f(3),
      nlink: f(4),
      mtime: f(5),
      rdevmajor: f(9),
      rdevminor: f(10),
      data,
      offset: at,
    });
    at = next;
  }
}
