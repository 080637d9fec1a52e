/**
 * Host API misuse throws VgicError with a code, naming the argument and what is allowed (issue 13,
 * defect 8): never RangeError/TypeError/SyntaxError from BigInt(), and never a silent 0 or no-op
 * for an offset with no register or a width the register does not allow.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GICD_CTLR,
  GICD_ISENABLER,
  GITS_CBASER,
  GITS_CTLR,
  ICC_PMR_EL1,
  Vgic,
  VgicError,
  type VgicErrorCode,
} from '../src/index.ts';

/** Values that are wrong wherever a number is expected. */
const NOT_INTS: unknown[] = [Number.NaN, Number.POSITIVE_INFINITY, 1.5, '4', 4n, null, undefined, {}, true];
/** Offsets with no register in any frame (GICD 0x10 is reserved, GICR 0x18, ITS 0x1c). */
const NO_REG = { dist: 0x0014, redist: 0x0018, its: 0x0020 + 0x1c };

function gic() {
  return Vgic.create({ vcpus: 2, its: 1, ram: { size: 1 << 20 }, time: 'virtual' });
}

type Case = [string, (g: Vgic) => unknown, VgicErrorCode, RegExp?];

function cases(): Case[] {
  const c: Case[] = [];
  const add = (name: string, f: (g: Vgic) => unknown, code: VgicErrorCode, re?: RegExp) =>
    c.push([name, f, code, re]);
  for (const bad of [...NOT_INTS, -1, 2 ** 53, 0x20000]) {
    const b = bad as number;
    add(`readDistReg(${String(bad)})`, (g) => g.readDistReg(b), 'INVALID_ADDRESS', /register offset/);
    add(`writeDistReg(${String(bad)})`, (g) => g.writeDistReg(b, 0), 'INVALID_ADDRESS');
    add(`readRedistReg(0, ${String(bad)})`, (g) => g.readRedistReg(0, b), 'INVALID_ADDRESS');
    add(`readRedistReg(${String(bad)}, 0)`, (g) => g.readRedistReg(b, 0), 'INVALID_VCPU', /vcpu must be/);
    add(`its.readReg(${String(bad)})`, (g) => g.its(0).readReg(b), 'INVALID_ADDRESS');
    add(`vcpu(${String(bad)})`, (g) => g.vcpu(b), 'INVALID_VCPU');
    add(`its(${String(bad)})`, (g) => g.its(b), 'INVALID_ARGUMENT');
    add(`irqLine(${String(bad)})`, (g) => g.irqLine(b, true), 'INVALID_INTID');
    add(`ppiLine(0, ${String(bad)})`, (g) => g.ppiLine(0, b, true), 'INVALID_INTID');
    add(`getLineLevel(0, ${String(bad)})`, (g) => g.getLineLevel(0, b), 'INVALID_INTID');
    add(`readCpuSysreg(0, ${String(bad)})`, (g) => g.readCpuSysreg(0, b), 'INVALID_REGISTER');
    if (bad === 0x20000) continue; // a valid tick count, DeviceID and EventID
    add(`advanceTime(${String(bad)})`, (g) => g.advanceTime(b), 'INVALID_ARGUMENT');
    add(`injectMsi devid ${String(bad)}`, (g) => g.injectMsi(g.its(0).doorbell, b, 0), 'INVALID_ARGUMENT');
    add(
      `signalMsi eventid ${String(bad)}`,
      (g) => g.signalMsi({ doorbell: 0, devid: 0, eventid: b }),
      'INVALID_ARGUMENT',
    );
  }
  // Sizes other than 4 and 8, including the right number as a string or a bigint.
  for (const size of [1, 2, 3, 16, '4', 4n, Number.NaN]) {
    const sz = size as 4;
    add(
      `readDistReg size ${String(size)}`,
      (g) => g.readDistReg(GICD_CTLR, sz),
      'INVALID_ADDRESS',
      /size must be 4 or 8/,
    );
    add(`writeRedistReg size ${String(size)}`, (g) => g.writeRedistReg(0, 0, 0, sz), 'INVALID_ADDRESS');
    add(`its.writeReg size ${String(size)}`, (g) => g.its(0).writeReg(GITS_CTLR, 0, sz), 'INVALID_ADDRESS');
  }
  // Offsets with no register, and widths the register does not allow: used to read 0 / do nothing.
  add(
    'readDistReg no register',
    (g) => g.readDistReg(NO_REG.dist),
    'INVALID_REGISTER',
    /no GICD register at offset 0x14/,
  );
  add('writeDistReg no register', (g) => g.writeDistReg(NO_REG.dist, 1), 'INVALID_REGISTER');
  add('readRedistReg no register', (g) => g.readRedistReg(1, NO_REG.redist), 'INVALID_REGISTER');
  add('writeRedistReg no register', (g) => g.writeRedistReg(1, NO_REG.redist, 1), 'INVALID_REGISTER');
  add('its.readReg no register', (g) => g.its(0).readReg(NO_REG.its, 4), 'INVALID_REGISTER');
  add('its.writeReg no register', (g) => g.its(0).writeReg(NO_REG.its, 1, 4), 'INVALID_REGISTER');
  add(
    'readDistReg 8 bytes of a 32-bit register',
    (g) => g.readDistReg(GICD_ISENABLER, 8),
    'INVALID_ADDRESS',
    /allows 4-byte/,
  );
  add('writeDistReg unaligned', (g) => g.writeDistReg(GICD_CTLR + 2, 0), 'INVALID_ADDRESS', /multiples of 4/);
  add('its.readReg 8 bytes of GITS_CTLR', (g) => g.its(0).readReg(GITS_CTLR, 8), 'INVALID_ADDRESS');
  add('its.readReg CBASER+4 as 8 bytes', (g) => g.its(0).readReg(GITS_CBASER + 4, 8), 'INVALID_ADDRESS');
  // Values: wrong type, NaN, fractions, negative, too wide for the width, beyond 2^53 as a number.
  for (const v of [
    Number.NaN,
    Number.POSITIVE_INFINITY,
    1.5,
    -1,
    '1',
    'x',
    null,
    {},
    2 ** 53,
    -1n,
    1n << 64n,
  ]) {
    const val = v as number;
    add(
      `writeDistReg value ${String(v)}`,
      (g) => g.writeDistReg(GICD_CTLR, val),
      'INVALID_ARGUMENT',
      /register value must be/,
    );
    add(`writeRedistReg value ${String(v)}`, (g) => g.writeRedistReg(0, 0, val, 4), 'INVALID_ARGUMENT');
    add(`its.writeReg value ${String(v)}`, (g) => g.its(0).writeReg(GITS_CBASER, val, 8), 'INVALID_ARGUMENT');
    add(
      `writeCpuSysreg value ${String(v)}`,
      (g) => g.writeCpuSysreg(0, ICC_PMR_EL1, val),
      'INVALID_ARGUMENT',
    );
    // -1 is a bitmap (int32 all ones).
    if (v !== -1)
      add(`setLineLevel bitmap ${String(v)}`, (g) => g.setLineLevel(0, 32, val), 'INVALID_ARGUMENT');
  }
  add(
    'writeDistReg 2^32 in 4 bytes',
    (g) => g.writeDistReg(GICD_CTLR, 2 ** 32, 4),
    'INVALID_ARGUMENT',
    /0\.\.4294967295/,
  );
  add('writeDistReg 2^32n in 4 bytes', (g) => g.writeDistReg(GICD_CTLR, 1n << 32n, 4), 'INVALID_ARGUMENT');
  for (const level of [1, 'true', null, undefined, 0n]) {
    const l = level as unknown as boolean;
    add(
      `irqLine level ${String(level)}`,
      (g) => g.irqLine(40, l),
      'INVALID_ARGUMENT',
      /must be true or false/,
    );
    add(`ppiLine level ${String(level)}`, (g) => g.ppiLine(0, 20, l), 'INVALID_ARGUMENT');
  }
  for (const msi of [null, 'x', 5]) {
    add(
      `signalMsi(${String(msi)})`,
      (g) => g.signalMsi(msi as never),
      'INVALID_ARGUMENT',
      /doorbell, devid, eventid/,
    );
  }
  add(
    'signalMsi doorbell string',
    (g) => g.signalMsi({ doorbell: '1' as never, devid: 0, eventid: 0 }),
    'INVALID_ARGUMENT',
  );
  // Creation options.
  const opts: [string, unknown, VgicErrorCode][] = [
    ['redistRegions string', { redistRegions: 'x' }, 'INVALID_CONFIG'],
    ['redistRegions [1]', { redistRegions: [1] }, 'INVALID_CONFIG'],
    ['redistRegions base string', { redistRegions: [{ base: 'x', count: 1 }] }, 'INVALID_ADDRESS'],
    [
      'redistRegions count NaN',
      { redistRegions: [{ base: 0x080a0000, count: Number.NaN }] },
      'INVALID_CONFIG',
    ],
    ['its [5]', { its: [5] }, 'INVALID_CONFIG'],
    ['its 1.5', { its: 1.5 }, 'INVALID_CONFIG'],
    ['vcpus 2^53', { vcpus: 2 ** 53 }, 'INVALID_CONFIG'],
    ['vcpus 2n', { vcpus: 2n }, 'INVALID_CONFIG'],
    ['spis "64"', { spis: '64' }, 'INVALID_CONFIG'],
    ['shared "yes"', { shared: 'yes' }, 'INVALID_CONFIG'],
    ['ram "x"', { ram: 'x' }, 'INVALID_CONFIG'],
    ['ram size -1', { ram: { size: -1 } }, 'INVALID_CONFIG'],
    ['ram base 1', { ram: { base: 1, size: 4096 } }, 'INVALID_ADDRESS'],
    ['options "x"', 'x', 'INVALID_CONFIG'],
    ['distBase NaN', { distBase: Number.NaN }, 'INVALID_ADDRESS'],
  ];
  for (const [name, o, code] of opts) add(`Vgic.create(${name})`, () => Vgic.create(o as never), code);
  return c;
}

describe('host API misuse is a VgicError with a code', () => {
  test('every public method of Vgic and its ITS handle, bad arguments of every kind', () => {
    const g = gic();
    const all = cases();
    for (const [name, f, code, re] of all) {
      assert.throws(
        () => f(g),
        (e: unknown) => {
          assert.ok(e instanceof VgicError, `${name}: threw ${String(e)} instead of a VgicError`);
          assert.equal(e.code, code, `${name}: ${e.message}`);
          if (re) assert.match(e.message, re, name);
          return true;
        },
        name,
      );
    }
    assert.ok(all.length > 200, `${all.length} cases`);
  });

  test('messages name the argument, the bad value and what is allowed', () => {
    const g = gic();
    assert.throws(
      () => g.writeDistReg(GICD_CTLR, 'x' as never),
      /register value must be a bigint or an integer in 0\.\.4294967295 \(0xffffffff\) for a 4-byte access, got 'x' \(a string\)/,
    );
    assert.throws(
      () => g.readRedistReg(0, 4n as never),
      /GICR register offset must be an integer in 0\.\.131071, got 4n \(a bigint\)/,
    );
    assert.throws(
      () => Vgic.create({ redistRegions: 'x' as never }),
      /redistRegions must be an array of \{ base, count \}, got 'x'/,
    );
  });

  test('valid accesses still work at both widths and value types', () => {
    const g = gic();
    g.writeDistReg(GICD_CTLR, 2);
    g.writeDistReg(GICD_CTLR, 3n);
    assert.equal(g.readDistReg(GICD_CTLR) & 3n, 3n);
    g.its(0).writeReg(GITS_CBASER, 0x8000_0000_4000_0000n, 8);
    assert.equal(g.its(0).readReg(GITS_CBASER, 8) >> 63n, 1n);
  });
});
