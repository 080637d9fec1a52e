/**
 * A small DTB reader for tests: checks the header and the block layout (Devicetree Specification
 * v0.4, chapter 5) and returns the tree. Strict on purpose: any layout slip is an assertion failure
 * here rather than a confusing property mismatch later.
 */

import assert from 'node:assert/strict';

export interface DecodedNode {
  name: string;
  /** Property names in the order the DTB lists them. */
  propOrder: string[];
  props: Map<string, Uint8Array>;
  children: DecodedNode[];
}

export interface DecodedDtb {
  header: {
    magic: number;
    totalsize: number;
    offDtStruct: number;
    offDtStrings: number;
    offMemRsvmap: number;
    version: number;
    lastCompVersion: number;
    bootCpuidPhys: number;
    sizeDtStrings: number;
    sizeDtStruct: number;
  };
  reservations: { address: bigint; size: bigint }[];
  root: DecodedNode;
}

const TEXT = new TextDecoder();

export function decodeDtb(dtb: Uint8Array): DecodedDtb {
  const v = new DataView(dtb.buffer, dtb.byteOffset, dtb.byteLength);
  const u = (o: number) => v.getUint32(o);
  const header = {
    magic: u(0),
    totalsize: u(4),
    offDtStruct: u(8),
    offDtStrings: u(12),
    offMemRsvmap: u(16),
    version: u(20),
    lastCompVersion: u(24),
    bootCpuidPhys: u(28),
    sizeDtStrings: u(32),
    sizeDtStruct: u(36),
  };
  assert.equal(header.magic, 0xd00dfeed);
  assert.equal(header.totalsize, dtb.length);
  assert.equal(header.offMemRsvmap % 8, 0, 'reservation block 8-aligned');
  assert.equal(header.offDtStruct % 4, 0, 'structure block 4-aligned');
  assert.equal(header.sizeDtStruct % 4, 0);
  assert.ok(header.offDtStruct + header.sizeDtStruct <= header.offDtStrings);
  assert.ok(header.offDtStrings + header.sizeDtStrings <= dtb.length);

  const reservations: { address: bigint; size: bigint }[] = [];
  for (let o = header.offMemRsvmap; ; o += 16) {
    const address = v.getBigUint64(o);
    const size = v.getBigUint64(o + 8);
    if (address === 0n && size === 0n) break;
    reservations.push({ address, size });
  }

  const str = (off: number) => {
    assert.ok(off < header.sizeDtStrings, `string offset ${off} inside strings block`);
    const start = header.offDtStrings + off;
    const end = dtb.indexOf(0, start);
    assert.ok(end >= 0 && end < header.offDtStrings + header.sizeDtStrings);
    return TEXT.decode(dtb.subarray(start, end));
  };

  let at = header.offDtStruct;
  const end = header.offDtStruct + header.sizeDtStruct;
  const token = () => {
    assert.ok(at + 4 <= end, 'token inside structure block');
    const t = u(at);
    at += 4;
    return t;
  };
  const readNode = (): DecodedNode => {
    const nul = dtb.indexOf(0, at);
    const node: DecodedNode = {
      name: TEXT.decode(dtb.subarray(at, nul)),
      propOrder: [],
      props: new Map(),
      children: [],
    };
    at = (nul + 4) & ~3;
    for (;;) {
      const t = token();
      if (t === 3) {
        assert.equal(node.children.length, 0, `properties of ${node.name} precede its subnodes`);
        const len = u(at);
        const name = str(u(at + 4));
        assert.ok(!node.props.has(name), `duplicate property ${name}`);
        node.props.set(name, dtb.slice(at + 8, at + 8 + len));
        node.propOrder.push(name);
        at = (at + 8 + len + 3) & ~3;
      } else if (t === 1) {
        node.children.push(readNode());
      } else if (t === 2) {
        return node;
      } else {
        assert.equal(t, 4, `unexpected token ${t}`);
      }
    }
  };
  assert.equal(token(), 1, 'structure starts with FDT_BEGIN_NODE');
  const root = readNode();
  assert.equal(token(), 9, 'structure ends with FDT_END');
  assert.equal(at, end, 'FDT_END is the last token');
  return { header, reservations, root };
}

/** The node at a path like "/cpus/cpu@0". */
export function findNode(root: DecodedNode, path: string): DecodedNode | undefined {
  let n: DecodedNode | undefined = root;
  for (const part of path.split('/').filter((p) => p !== '')) {
    n = n?.children.find((c) => c.name === part);
  }
  return n;
}

export function propCells(node: DecodedNode, name: string): number[] {
  const b = node.props.get(name);
  assert.ok(b, `${node.name} has ${name}`);
  assert.equal(b.length % 4, 0);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: b.length / 4 }, (_, i) => v.getUint32(i * 4));
}

export function propStrings(node: DecodedNode, name: string): string[] {
  const b = node.props.get(name);
  assert.ok(b, `${node.name} has ${name}`);
  assert.equal(b[b.length - 1], 0, `${name} is NUL-terminated`);
  return TEXT.decode(b.subarray(0, b.length - 1)).split('\0');
}
