/**
 * A flattened device tree (DTB) writer: the format of the Devicetree Specification v0.4, chapter 5
 * (header 5.2, memory reservation block 5.3, structure block 5.4, strings block 5.5). The machine
 * builds one tree per boot and hands the bytes to the guest, so the builder favours checks and
 * plainness over speed.
 *
 * Who may call: host code building a machine (src/machine/virt-dt.ts). Misuse (bad names, values out
 * of range, duplicates) throws VgicError('INVALID_ARGUMENT'); nothing here sees guest input.
 */

import { VgicError } from '../arch/errors.ts';

export const FDT_MAGIC = 0xd00dfeed;
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;

/** Structure block tokens (spec 5.4.1). */
export const FdtToken = {
  BEGIN_NODE: 1,
  END_NODE: 2,
  PROP: 3,
  NOP: 4,
  END: 9,
} as const;

/** Header size for version 17 (spec 5.2): ten big-endian u32 fields. */
export const FDT_HEADER_SIZE = 40;

// Spec 2.2.1 / 2.2.4: the characters node and property names may use.
const NODE_NAME = /^[0-9A-Za-z,._+-]{1,31}(@[0-9A-Za-z,._+-]+)?$/;
const PROP_NAME = /^[0-9A-Za-z,._+?#-]{1,31}$/;

const UTF8 = new TextEncoder();

function fail(message: string): never {
  throw new VgicError('INVALID_ARGUMENT', message);
}

function checkU32(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(`${what} must be a u32, got ${String(v)}`);
  return v;
}

/** Big-endian cells from u32 values. */
function cellBytes(what: string, values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setUint32(i * 4, checkU32(what, v));
  });
  return out;
}

/** A u64 (below 2^53: JS numbers) as its two cells, high first. */
export function u64Cells(v: number): [number, number] {
  if (!Number.isSafeInteger(v) || v < 0) fail(`a u64 cell pair needs an integer in 0..2^53-1, got ${v}`);
  return [Math.floor(v / 2 ** 32), v % 2 ** 32];
}

function stringBytes(what: string, list: readonly string[]): Uint8Array {
  const parts = list.map((s) => {
    if (s.includes('\0')) fail(`${what}: strings may not contain NUL`);
    return UTF8.encode(s);
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length + 1; // the NUL is already zero
  }
  return out;
}

export interface FdtProperty {
  readonly name: string;
  readonly value: Uint8Array;
}

/** One node: properties in insertion order, then children in insertion order. */
export class FdtNode {
  readonly name: string;
  readonly props: FdtProperty[] = [];
  readonly children: FdtNode[] = [];

  constructor(name: string) {
    // The root is the one node with an empty name.
    if (name !== '' && !NODE_NAME.test(name)) fail(`invalid device tree node name '${name}'`);
    this.name = name;
  }

  /** Adds a child node and returns it. */
  node(name: string): FdtNode {
    if (name === '') fail('only the root node has an empty name');
    if (this.children.some((c) => c.name === name))
      fail(`node '${name}' already exists under '${this.name}'`);
    const child = new FdtNode(name);
    this.children.push(child);
    return child;
  }

  child(name: string): FdtNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  prop(name: string): Uint8Array | undefined {
    return this.props.find((p) => p.name === name)?.value;
  }

  /** Raw bytes, copied. */
  bytes(name: string, value: Uint8Array): this {
    if (!PROP_NAME.test(name)) fail(`invalid device tree property name '${name}'`);
    if (this.props.some((p) => p.name === name)) fail(`property '${name}' already set on '${this.name}'`);
    this.props.push({ name, value: value.slice() });
    return this;
  }

  /** A property with no value (a boolean that is true by being present). */
  empty(name: string): this {
    return this.bytes(name, new Uint8Array(0));
  }

  u32(name: string, value: number): this {
    return this.bytes(name, cellBytes(name, [value]));
  }

  /** A <prop-encoded-array> of cells, e.g. interrupts = <0 1 4>. */
  cells(name: string, values: readonly number[]): this {
    return this.bytes(name, cellBytes(name, values));
  }

  /** u64 values, each as two cells (high, low). */
  u64s(name: string, values: readonly number[]): this {
    return this.cells(name, values.flatMap(u64Cells));
  }

  string(name: string, value: string): this {
    return this.bytes(name, stringBytes(name, [value]));
  }

  /** A <stringlist>: NUL-terminated strings back to back. */
  strings(name: string, values: readonly string[]): this {
    if (values.length === 0) fail(`${name}: a string list needs at least one string`);
    return this.bytes(name, stringBytes(name, values));
  }

  phandle(value: number): this {
    if (value === 0 || value === 0xffffffff) fail(`phandle ${value} is reserved`);
    return this.u32('phandle', value);
  }
}

export interface FdtOptions {
  /** Header boot_cpuid_phys: the physical ID (cpu node reg) of the boot CPU. */
  bootCpuidPhys?: number;
  /** First phandle allocPhandle() returns (QEMU starts at 0x8000). */
  firstPhandle?: number;
}

export class Fdt {
  readonly root = new FdtNode('');
  readonly bootCpuidPhys: number;
  private nextPhandle: number;

  constructor(opts: FdtOptions = {}) {
    this.bootCpuidPhys = checkU32('bootCpuidPhys', opts.bootCpuidPhys ?? 0);
    this.nextPhandle = checkU32('firstPhandle', opts.firstPhandle ?? 1);
    if (this.nextPhandle === 0) fail('firstPhandle must not be 0');
  }

  /** A fresh phandle value; set it on a node with node.phandle(v). */
  allocPhandle(): number {
    const v = this.nextPhandle++;
    if (v >= 0xffffffff) fail('out of phandles');
    return v;
  }

  toDtb(): Uint8Array {
    // Strings block: each property name once (spec 5.5 lets names share storage).
    const nameOff = new Map<string, number>();
    const strParts: Uint8Array[] = [];
    let strSize = 0;
    const stringOffset = (name: string): number => {
      let off = nameOff.get(name);
      if (off === undefined) {
        off = strSize;
        nameOff.set(name, off);
        const b = stringBytes(name, [name]);
        strParts.push(b);
        strSize += b.length;
      }
      return off;
    };

    // Structure block: sized first, so it is written into one buffer.
    const pad4 = (n: number) => (n + 3) & ~3;
    const nodeSize = (n: FdtNode): number => {
      let size = 4 + pad4(UTF8.encode(n.name).length + 1) + 4;
      for (const p of n.props) size += 12 + pad4(p.value.length);
      for (const c of n.children) size += nodeSize(c);
      return size;
    };
    const structSize = nodeSize(this.root) + 4;
    const struct = new Uint8Array(structSize);
    const sv = new DataView(struct.buffer);
    let at = 0;
    const emitNode = (n: FdtNode): void => {
      sv.setUint32(at, FdtToken.BEGIN_NODE);
      const name = UTF8.encode(n.name);
      struct.set(name, at + 4);
      at += 4 + pad4(name.length + 1);
      for (const p of n.props) {
        sv.setUint32(at, FdtToken.PROP);
        sv.setUint32(at + 4, p.value.length);
        sv.setUint32(at + 8, stringOffset(p.name));
        struct.set(p.value, at + 12);
        at += 12 + pad4(p.value.length);
      }
      for (const c of n.children) emitNode(c);
      sv.setUint32(at, FdtToken.END_NODE);
      at += 4;
    };
    emitNode(this.root);
    sv.setUint32(at, FdtToken.END);

    // Layout: header, reservation block (8-aligned, one all-zero terminator entry), structure
    // (4-aligned), strings (no alignment).
    const offRsvmap = FDT_HEADER_SIZE; // 40: already 8-aligned
    const offStruct = offRsvmap + 16;
    const offStrings = offStruct + structSize;
    const total = offStrings + strSize;
    const out = new Uint8Array(total);
    const v = new DataView(out.buffer);
    v.setUint32(0, FDT_MAGIC);
    v.setUint32(4, total);
    v.setUint32(8, offStruct);
    v.setUint32(12, offStrings);
    v.setUint32(16, offRsvmap);
    v.setUint32(20, FDT_VERSION);
    v.setUint32(24, FDT_LAST_COMP_VERSION);
    v.setUint32(28, this.bootCpuidPhys);
    v.setUint32(32, strSize);
    v.setUint32(36, structSize);
    out.set(struct, offStruct);
    let s = offStrings;
    for (const p of strParts) {
      out.set(p, s);
      s += p.length;
    }
    return out;
  }
}
