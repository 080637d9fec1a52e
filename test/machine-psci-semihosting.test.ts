/**
 * PSCI (src/machine/psci.ts) and semihosting (src/machine/semihosting.ts) as pure functions over
 * fake hosts: no CPU, so these run everywhere. Function IDs in both calling conventions, FEATURES,
 * AFFINITY_INFO, and semihosting's bounds-checked guest pointers.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AFFINITY_OFF,
  AFFINITY_ON,
  PSCI_AFFINITY_INFO,
  PSCI_ALREADY_ON,
  PSCI_CPU_OFF,
  PSCI_CPU_ON,
  PSCI_CPU_SUSPEND,
  PSCI_FEATURES,
  PSCI_INVALID_PARAMETERS,
  PSCI_MIGRATE,
  PSCI_MIGRATE_INFO_TYPE,
  PSCI_NOT_SUPPORTED,
  PSCI_SUCCESS,
  PSCI_SYSTEM_OFF,
  PSCI_SYSTEM_RESET,
  PSCI_VERSION,
  PSCI_VERSION_1_1,
  type PsciHost,
  psciCall,
} from '../src/machine/psci.ts';
import {
  ADP_STOPPED_APPLICATION_EXIT,
  type SemihostingHost,
  SYS_CLOCK,
  SYS_EXIT,
  SYS_EXIT_EXTENDED,
  SYS_GET_CMDLINE,
  SYS_HEAPINFO,
  SYS_WRITE,
  SYS_WRITE0,
  SYS_WRITEC,
  semihostingCall,
} from '../src/machine/semihosting.ts';

const SMC64 = 0x40000000;

class FakePsci implements PsciHost {
  readonly on: boolean[];
  readonly log: string[] = [];
  constructor(cpus: number) {
    this.on = Array.from({ length: cpus }, (_, k) => k === 0);
  }
  cpuOf(mpidr: bigint): number {
    const k = Number(mpidr & 0xffn);
    return (mpidr & ~0xffn) === 0n && k < this.on.length ? k : -1;
  }
  isOn(cpu: number): boolean {
    return this.on[cpu];
  }
  cpuOn(cpu: number, entry: bigint, context: bigint): void {
    this.on[cpu] = true;
    this.log.push(`on ${cpu} ${entry.toString(16)} ${context.toString(16)}`);
  }
  cpuOff(caller: number): void {
    this.on[caller] = false;
    this.log.push(`off ${caller}`);
  }
  suspend(caller: number): void {
    this.log.push(`suspend ${caller}`);
  }
  systemOff(): void {
    this.log.push('system-off');
  }
  systemReset(): void {
    this.log.push('system-reset');
  }
}

const call = (h: PsciHost, fn: number, a1 = 0n, a2 = 0n, a3 = 0n, caller = 0) =>
  psciCall(h, caller, BigInt(fn), a1, a2, a3);

describe('PSCI', () => {
  it('VERSION is 1.1 in both forms; unknown IDs are NOT_SUPPORTED', () => {
    const h = new FakePsci(2);
    assert.equal(call(h, PSCI_VERSION), PSCI_VERSION_1_1);
    assert.equal(call(h, PSCI_VERSION | SMC64), PSCI_VERSION_1_1);
    assert.equal(call(h, PSCI_MIGRATE), PSCI_NOT_SUPPORTED);
    assert.equal(call(h, 0x84000020), PSCI_NOT_SUPPORTED, 'just past the PSCI range');
    assert.equal(call(h, 0xc4000020), PSCI_NOT_SUPPORTED);
    assert.equal(call(h, 0x82000000), PSCI_NOT_SUPPORTED, 'SiP service');
    assert.equal(call(h, 0), PSCI_NOT_SUPPORTED);
    // Only the low 32 bits of x0 name the function (SMC Calling Convention).
    assert.equal(psciCall(h, 0, 0xffffffff_84000000n, 0n, 0n, 0n), PSCI_VERSION_1_1);
    assert.equal(call(h, PSCI_MIGRATE_INFO_TYPE), 2);
    assert.deepEqual(h.log, []);
  });

  it('CPU_ON in the SMC32 and SMC64 forms, ALREADY_ON, INVALID_PARAMETERS', () => {
    const h = new FakePsci(3);
    assert.equal(call(h, PSCI_CPU_ON | SMC64, 1n, 0x40001000n, 0xabcn), PSCI_SUCCESS);
    assert.equal(call(h, PSCI_CPU_ON, 2n, 0x40002000n, 7n), PSCI_SUCCESS);
    assert.deepEqual(h.log, ['on 1 40001000 abc', 'on 2 40002000 7']);
    assert.equal(call(h, PSCI_CPU_ON | SMC64, 1n, 0x40001000n), PSCI_ALREADY_ON);
    assert.equal(call(h, PSCI_CPU_ON | SMC64, 0n, 0x40001000n), PSCI_ALREADY_ON, 'the caller itself');
    assert.equal(call(h, PSCI_CPU_ON | SMC64, 3n, 0x40001000n), PSCI_INVALID_PARAMETERS);
    assert.equal(call(h, PSCI_CPU_ON | SMC64, 0x100n, 0x40001000n), PSCI_INVALID_PARAMETERS);
    assert.equal(h.log.length, 2, 'failed calls power nothing on');
  });

  it('AFFINITY_INFO: level 0 only, ON/OFF, bad MPIDR', () => {
    const h = new FakePsci(2);
    assert.equal(call(h, PSCI_AFFINITY_INFO | SMC64, 1n), AFFINITY_OFF);
    assert.equal(call(h, PSCI_AFFINITY_INFO, 0n), AFFINITY_ON);
    call(h, PSCI_CPU_ON | SMC64, 1n, 0x40000000n);
    assert.equal(call(h, PSCI_AFFINITY_INFO | SMC64, 1n), AFFINITY_ON);
    assert.equal(call(h, PSCI_AFFINITY_INFO | SMC64, 1n, 1n), PSCI_INVALID_PARAMETERS, 'level 1');
    assert.equal(call(h, PSCI_AFFINITY_INFO | SMC64, 5n), PSCI_INVALID_PARAMETERS);
    assert.equal(call(h, PSCI_CPU_OFF, 0n, 0n, 0n, 1), PSCI_SUCCESS);
    assert.equal(call(h, PSCI_AFFINITY_INFO | SMC64, 1n), AFFINITY_OFF);
  });

  it('CPU_OFF, CPU_SUSPEND, SYSTEM_OFF and SYSTEM_RESET reach the host for the caller', () => {
    const h = new FakePsci(2);
    call(h, PSCI_CPU_SUSPEND | SMC64, 0n, 0n, 0n, 1);
    call(h, PSCI_CPU_OFF, 0n, 0n, 0n, 1);
    call(h, PSCI_SYSTEM_OFF);
    call(h, PSCI_SYSTEM_RESET);
    assert.deepEqual(h.log, ['suspend 1', 'off 1', 'system-off', 'system-reset']);
  });

  it('FEATURES: implemented functions in both forms, others NOT_SUPPORTED', () => {
    const h = new FakePsci(1);
    for (const f of [
      PSCI_VERSION,
      PSCI_CPU_ON,
      PSCI_CPU_ON | SMC64,
      PSCI_CPU_OFF,
      PSCI_CPU_SUSPEND | SMC64,
      PSCI_AFFINITY_INFO | SMC64,
      PSCI_MIGRATE_INFO_TYPE,
      PSCI_SYSTEM_OFF,
      PSCI_SYSTEM_RESET,
      PSCI_FEATURES,
    ]) {
      assert.equal(call(h, PSCI_FEATURES, BigInt(f)), PSCI_SUCCESS, f.toString(16));
    }
    for (const f of [PSCI_MIGRATE, 0x8400000b, 0x8400000c, 0xc4000020, 0x12345678]) {
      assert.equal(call(h, PSCI_FEATURES, BigInt(f)), PSCI_NOT_SUPPORTED, f.toString(16));
    }
  });
});

/** A fake guest: RAM [base, base + size) as bytes, everything else unmapped. */
class FakeGuest implements SemihostingHost {
  readonly ram: Uint8Array;
  readonly chunks: Uint8Array[] = [];
  exitStatus: number | undefined;
  readonly heap = { base: 0x40100000, limit: 0x48000000, stackBase: 0x48000000, stackLimit: 0x47f00000 };
  readonly base: number;
  readonly cmdline: string;
  constructor(base: number, size: number, cmdline = '') {
    this.base = base;
    this.cmdline = cmdline;
    this.ram = new Uint8Array(size);
  }
  private inside(addr: number, len: number): boolean {
    return addr >= this.base && addr + len <= this.base + this.ram.length;
  }
  read(addr: number, into: Uint8Array): boolean {
    if (!this.inside(addr, into.length)) return false;
    into.set(this.ram.subarray(addr - this.base, addr - this.base + into.length));
    return true;
  }
  write(addr: number, bytes: Uint8Array): boolean {
    if (!this.inside(addr, bytes.length)) return false;
    this.ram.set(bytes, addr - this.base);
    return true;
  }
  output(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
  }
  exit(status: number): void {
    this.exitStatus = status;
  }
  clockCs(): number {
    return 42;
  }
  u64(addr: number, v: number): void {
    const d = new DataView(this.ram.buffer);
    d.setBigUint64(addr - this.base, BigInt(v), true);
  }
  str(addr: number, s: string): void {
    this.ram.set(new TextEncoder().encode(s), addr - this.base);
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

const BASE = 0x40000000;
const sh = (g: FakeGuest, op: number, p: number | bigint) => semihostingCall(g, op, BigInt(p));

describe('semihosting', () => {
  it('SYS_WRITEC and SYS_WRITE0 write from RAM, nothing from an unmapped pointer', () => {
    const g = new FakeGuest(BASE, 0x1000);
    g.str(BASE + 0x10, 'hi\0ignored');
    g.str(BASE + 0x20, 'Z');
    assert.equal(sh(g, SYS_WRITE0, BASE + 0x10), 0);
    assert.equal(sh(g, SYS_WRITEC, BASE + 0x20), 0);
    assert.equal(g.text(), 'hiZ');
    assert.equal(sh(g, SYS_WRITE0, 0x0a000000), 0);
    assert.equal(sh(g, SYS_WRITEC, 0xffff_ffff_ffffn), 0);
    assert.equal(g.text(), 'hiZ', 'unmapped pointers print nothing');
  });

  it('SYS_WRITE0 stops at the end of RAM when the string is not terminated', () => {
    const g = new FakeGuest(BASE, 0x1000);
    g.ram.fill(0x41, 0xff0);
    assert.equal(sh(g, SYS_WRITE0, BASE + 0xff0), 0);
    assert.equal(g.text(), 'A'.repeat(16));
  });

  it('SYS_WRITE: fd 1/2 written, other fds skipped, bad blocks -1, huge lengths capped', () => {
    const g = new FakeGuest(BASE, 0x1000);
    g.str(BASE + 0x100, 'payload');
    const block = (fd: number, buf: number, len: number) => {
      g.u64(BASE + 0x200, fd);
      g.u64(BASE + 0x208, buf);
      g.u64(BASE + 0x210, len);
      return sh(g, SYS_WRITE, BASE + 0x200);
    };
    assert.equal(block(1, BASE + 0x100, 7), 0);
    assert.equal(block(2, BASE + 0x100, 3), 0);
    assert.equal(g.text(), 'payloadpay');
    assert.equal(block(5, BASE + 0x100, 7), 7, 'not a console fd: nothing written');
    assert.equal(block(1, 0x0a000000, 7), 7, 'unmapped buffer: nothing written');
    // A length beyond RAM and beyond the 1 MiB cap: nothing read past RAM, no huge allocation.
    assert.equal(block(1, BASE + 0x100, 2 ** 40), 2 ** 40);
    assert.equal(g.text(), 'payloadpay');
    assert.equal(sh(g, SYS_WRITE, BASE + 0xff8), -1, 'the parameter block runs off RAM');
    assert.equal(sh(g, SYS_WRITE, 0), -1);
  });

  it('SYS_WRITE of more than the cap from a large RAM writes the capped part', () => {
    const g = new FakeGuest(BASE, 3 << 20);
    g.u64(BASE, 1);
    g.u64(BASE + 8, BASE + 0x100);
    g.u64(BASE + 16, 2 << 20);
    const notWritten = sh(g, SYS_WRITE, BASE);
    assert.equal(g.text().length, 1 << 20);
    assert.equal(notWritten, 1 << 20);
  });

  it('SYS_GET_CMDLINE: copied with NUL and length; too small a buffer or a bad pointer is -1', () => {
    const g = new FakeGuest(BASE, 0x1000, 'console=ttyAMA0 x=1');
    const n = 'console=ttyAMA0 x=1'.length;
    g.u64(BASE + 0x300, BASE + 0x400);
    g.u64(BASE + 0x308, 64);
    assert.equal(sh(g, SYS_GET_CMDLINE, BASE + 0x300), 0);
    assert.equal(
      Buffer.from(g.ram.subarray(0x400, 0x400 + n + 1)).toString('latin1'),
      'console=ttyAMA0 x=1\0',
    );
    assert.equal(new DataView(g.ram.buffer).getUint32(0x308, true), n);
    g.u64(BASE + 0x308, n); // no room for the NUL
    g.ram.fill(0xee, 0x500, 0x600);
    g.u64(BASE + 0x300, BASE + 0x500);
    assert.equal(sh(g, SYS_GET_CMDLINE, BASE + 0x300), -1);
    assert.ok(
      g.ram.subarray(0x500, 0x600).every((b) => b === 0xee),
      'nothing written',
    );
    g.u64(BASE + 0x300, 0x0a000000);
    g.u64(BASE + 0x308, 64);
    assert.equal(sh(g, SYS_GET_CMDLINE, BASE + 0x300), -1, 'unmapped buffer');
    assert.equal(sh(g, SYS_GET_CMDLINE, 0x0a000000), -1, 'unmapped block');
  });

  it('SYS_HEAPINFO writes four 64-bit words; -1 on a bad pointer', () => {
    const g = new FakeGuest(BASE, 0x1000);
    g.u64(BASE + 0x10, BASE + 0x100);
    assert.equal(sh(g, SYS_HEAPINFO, BASE + 0x10), 0);
    const d = new DataView(g.ram.buffer);
    assert.deepEqual(
      [0, 8, 16, 24].map((o) => Number(d.getBigUint64(0x100 + o, true))),
      [g.heap.base, g.heap.limit, g.heap.stackBase, g.heap.stackLimit],
    );
    g.u64(BASE + 0x10, BASE + 0xff0);
    assert.equal(sh(g, SYS_HEAPINFO, BASE + 0x10), -1, 'the block runs off RAM');
  });

  it('SYS_EXIT: ApplicationExit gives its subcode (low 8 bits), other reasons 1', () => {
    const g = new FakeGuest(BASE, 0x1000);
    g.u64(BASE, ADP_STOPPED_APPLICATION_EXIT);
    g.u64(BASE + 8, 0x103);
    sh(g, SYS_EXIT, BASE);
    assert.equal(g.exitStatus, 3);
    g.u64(BASE + 8, 0);
    sh(g, SYS_EXIT_EXTENDED, BASE);
    assert.equal(g.exitStatus, 0);
    g.u64(BASE, 0x20023); // ADP_Stopped_RunTimeErrorUnknown
    sh(g, SYS_EXIT, BASE);
    assert.equal(g.exitStatus, 1);
    g.exitStatus = undefined;
    sh(g, SYS_EXIT, 0x0a000000);
    assert.equal(g.exitStatus, 1, 'an unreadable block is still an exit, a failing one');
  });

  it('SYS_CLOCK from the host, unknown operations -1', () => {
    const g = new FakeGuest(BASE, 0x1000);
    assert.equal(sh(g, SYS_CLOCK, 0), 42);
    assert.equal(sh(g, 0x01, BASE), -1, 'SYS_OPEN is not offered');
    assert.equal(sh(g, 0xffff, BASE), -1);
  });
});
