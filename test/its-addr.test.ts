/**
 * Guest addresses with bit 31 set, and above 4 GiB (issue 13, defect 4): the command queue
 * (GITS_CBASER), the property and pending tables (GICR_PROPBASER/PENDBASER), the device and
 * collection tables (GITS_BASER<n>), MAPD's ITT address and a two-level device table's level-2
 * page all live in RAM at 0x80000000 or at 0x1_0000_0000, and the whole LPI flow works: MAPD,
 * MAPC, MAPTI, an MSI, IAR returning the LPI. A MAPD whose ITT is at 0x1_8000_0000 uses that
 * memory, not 0x8000_0000 (where a signed `&` put it).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { paFromWords } from '../src/arch/addr.ts';
import { lpiMachine, takeAll } from './helpers/its-machine.ts';

const RAM_SIZE = 64 << 20;

function fullFlow(ramBase: number, indirect: boolean): void {
  const m = lpiMachine({ ramBase, ramSize: RAM_SIZE, init: { indirect } });
  assert.ok(m.lpi.propBase >= ramBase && m.its.cmdq >= ramBase, 'the tables are in the RAM under test');
  if (indirect) m.its.mapL2Page(5);
  const itt = m.its.createDevice(5, 4);
  assert.ok(itt >= ramBase);
  for (let c = 0; c < 4; c++) assert.ok(m.its.mapc(c, c), `MAPC ${c} completed`);
  assert.ok(m.its.mapti(5, 3, 8200, 2));
  assert.equal(m.gic.its(0).errorCount(), 0, 'no command failed');
  assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 5, eventid: 3 }), 'delivered');
  assert.equal(takeAll(m.cpus), '2:8200');
  // INT through the queue, and a pending bit read from the pending table when mapped.
  assert.ok(m.its.int(5, 3));
  assert.equal(takeAll(m.cpus), '2:8200');
  assert.equal(m.gic.stats().lpiTableFault, 0, 'every LPI table access was in RAM');
}

describe('guest addresses with bit 31 set or above 4 GiB', () => {
  test('paFromWords is exact and unsigned', () => {
    assert.equal(paFromWords(0x80000000, 0, 0xffff0000), 0x80000000);
    assert.equal(paFromWords(0x80001234, 1, 0xffffff00), 0x180001200);
    assert.equal(paFromWords(0xffffffff, 0xffffffff, 0xffffffff), 2 ** 52 - 1);
    assert.equal(paFromWords(0xffffffff, 0xffffffff, 0xffff0000, 0xffff), 0xffff_ffff0000);
  });

  for (const indirect of [false, true]) {
    const kind = indirect ? 'two-level' : 'flat';
    test(`RAM at 0x80000000: the LPI flow through the ITS (${kind} device table)`, () => {
      fullFlow(0x80000000, indirect);
    });
    test(`RAM at 0x1_0000_0000: the LPI flow through the ITS (${kind} device table)`, () => {
      fullFlow(0x100000000, indirect);
    });
    test(`RAM at 0x1_8000_0000: the LPI flow through the ITS (${kind} device table)`, () => {
      fullFlow(0x180000000, indirect);
    });
  }

  test('MAPD with its ITT at 0x1_8000_0000 does not touch 0x8000_0000', () => {
    const m = lpiMachine({ ramBase: 0x80000000, ramSize: RAM_SIZE });
    const high = m.gic.memory.addRam(0x180000000, 4 << 20);
    const data = m.alloc.alloc(0x10000);
    const low = m.gic.memory.bytesAt(data, 0x10000) as Uint8Array;
    low.fill(0xa5);
    high.bytes.fill(0x5a);
    const itt = data + 0x100000000; // the same low 32 bits, above 4 GiB
    assert.ok(m.its.mapd(7, itt, 8));
    for (let c = 0; c < 4; c++) assert.ok(m.its.mapc(c, c));
    assert.ok(m.its.mapti(7, 9, 8300, 1));
    assert.equal(m.gic.its(0).errorCount(), 0);
    assert.ok(
      low.every((b) => b === 0xa5),
      'guest data at the ITT address minus 4 GiB is untouched',
    );
    const off = itt - high.base;
    assert.ok(
      high.bytes.subarray(off, off + 9 * 8).every((b) => b === 0),
      'the ITT was cleared',
    );
    assert.notEqual(m.gic.memory.read64(itt + 9 * 8), 0n, 'MAPTI wrote its ITE into the ITT');
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 7, eventid: 9 }), 'delivered');
    assert.equal(takeAll(m.cpus), '1:8300');
  });
});
