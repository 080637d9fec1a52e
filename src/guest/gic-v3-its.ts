/**
 * A guest-side ITS and LPI library for in-process TypeScript guests, in the spirit of KVM
 * selftests' lib/arm64/gic_v3_its.c and kvm-unit-tests' lib/arm64/gic-v3-its*.c: allocate the LPI
 * property and pending tables and the ITS tables in guest RAM, program GICR_PROPBASER/PENDBASER,
 * GITS_BASER<n>/CBASER, build commands and wait for CREADR to pass them.
 *
 * It uses only architectural interfaces (MMIO loads/stores and RAM stores of its own vCPU), so it
 * shows what a guest driver does. Who may call: code running on `cpu`.
 */

import {
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_PENDBASER,
  GICR_PROPBASER,
  VIRT_GITS_BASE,
} from '../arch/gicv3.ts';
import {
  GITS_CMD_INVDB,
  GITS_CMD_VINVALL,
  GITS_CMD_VMAPI,
  GITS_CMD_VMAPP,
  GITS_CMD_VMAPTI,
  GITS_CMD_VMOVI,
  GITS_CMD_VMOVP,
  GITS_CMD_VSGI,
  GITS_CMD_VSYNC,
} from '../arch/gicv4.ts';
import { VGIC_MIN_LPI } from '../arch/intid.ts';
import {
  GICR_PENDBASER_HI_PTZ,
  GITS_BASER,
  GITS_BASER_HI_INDIRECT,
  GITS_BASER_HI_VALID,
  GITS_CBASER,
  GITS_CMD_CLEAR,
  GITS_CMD_DISCARD,
  GITS_CMD_INT,
  GITS_CMD_INV,
  GITS_CMD_INVALL,
  GITS_CMD_MAPC,
  GITS_CMD_MAPD,
  GITS_CMD_MAPI,
  GITS_CMD_MAPTI,
  GITS_CMD_MOVALL,
  GITS_CMD_MOVI,
  GITS_CMD_SYNC,
  GITS_CREADR,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
  GITS_TRANSLATER,
  GITS_TYPER,
  ITS_CMD_SIZE,
  ITS_TABLE_PAGE,
  LPI_PROP_ENABLED,
} from '../arch/its.ts';
import type { VCpu } from '../device/vcpu.ts';
import { GicV3Guest } from './gic-v3.ts';

/** kvm-unit-tests' LPI_PROP_DEFAULT: priority 0xa0, Group 1 (bit 1), enabled. */
export const LPI_PROP_DEFAULT = 0xa0 | 0x2 | LPI_PROP_ENABLED;

/** A bump allocator over a guest RAM range (the guest's own page allocator, for tables). */
export class GuestAllocator {
  private next: number;
  readonly end: number;

  constructor(base: number, size: number) {
    this.next = base;
    this.end = base + size;
  }

  /** `size` bytes aligned to `align` (a power of two). Throws when the range is exhausted. */
  alloc(size: number, align = 0x10000): number {
    const at = Math.ceil(this.next / align) * align;
    if (at + size > this.end) throw new RangeError(`guest allocator: ${size} bytes do not fit`);
    this.next = at + size;
    return at;
  }
}

const hi32 = (x: number): number => Math.floor(x / 0x100000000);
const lo32 = (x: number): number => x % 0x100000000;
const q = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

/**
 * The LPI tables of a GIC: one property table shared by every redistributor (GICR_PROPBASER) and
 * one pending table per redistributor, as kvm-unit-tests' gicv3_lpi_alloc_tables.
 */
export class LpiTables {
  readonly cpu: VCpu;
  readonly idBits: number;
  readonly propBase: number;
  readonly pendBases: number[];

  /** `idBits`: INTID bits the tables cover (PROPBASER.IDbits + 1), 14..16. */
  constructor(cpu: VCpu, alloc: GuestAllocator, nRedists: number, idBits = 16) {
    this.cpu = cpu;
    this.idBits = idBits;
    const lpis = 2 ** idBits - VGIC_MIN_LPI;
    this.propBase = alloc.alloc(Math.max(lpis, 4096), 0x10000);
    this.pendBases = Array.from({ length: nRedists }, () =>
      alloc.alloc(Math.max(2 ** idBits / 8, 0x10000), 0x10000),
    );
  }

  /** Writes PROPBASER (through `rd`) and `rd`'s PENDBASER. PTZ says the pending table is zero. */
  program(rd: number, redistIndex: number, ptz = true): void {
    this.cpu.writeq(rd + GICR_PROPBASER, q(lo32(this.propBase) | (this.idBits - 1), hi32(this.propBase)));
    const pend = this.pendBases[redistIndex];
    this.cpu.writeq(rd + GICR_PENDBASER, q(lo32(pend), hi32(pend) | (ptz ? GICR_PENDBASER_HI_PTZ : 0)));
  }

  /** GICR_CTLR.EnableLPIs on redistributor `rd`. */
  enable(rd: number): void {
    this.cpu.writel(rd + GICR_CTLR, GICR_CTLR_ENABLE_LPIS);
  }

  disable(rd: number): void {
    this.cpu.writel(rd + GICR_CTLR, 0);
  }

  /** Sets an LPI's property byte (priority & 0xfc, Group 1, enable). */
  setConfig(intid: number, priority = 0xa0, enabled = true): void {
    this.cpu.writeb(
      this.propBase + intid - VGIC_MIN_LPI,
      (priority & 0xfc) | 0x2 | (enabled ? LPI_PROP_ENABLED : 0),
    );
  }

  /** Sets every property byte to `prop` (vgic_lpi_stress: LPI_PROP_DEFAULT). */
  fillConfig(prop = LPI_PROP_DEFAULT): void {
    const n = 2 ** this.idBits - VGIC_MIN_LPI;
    const word = BigInt(prop) * 0x0101010101010101n;
    for (let i = 0; i < n; i += 8) this.cpu.writeq(this.propBase + i, word);
  }

  /** Sets or clears an LPI's bit in a redistributor's pending table (gicv3_lpi_set_clr_pending). */
  setPending(redistIndex: number, intid: number, pending: boolean): void {
    const at = this.pendBases[redistIndex] + (intid >>> 3);
    const byte = this.cpu.readb(at);
    const bit = 1 << (intid & 7);
    this.cpu.writeb(at, pending ? byte | bit : byte & ~bit);
  }

  isPending(redistIndex: number, intid: number): boolean {
    return (this.cpu.readb(this.pendBases[redistIndex] + (intid >>> 3)) & (1 << (intid & 7))) !== 0;
  }
}

export interface ItsGuestOptions {
  /** Command queue size in 4K pages (CBASER.Size + 1), 1..256. Default 16 (64K, as kvm-unit-tests). */
  readonly cmdQueuePages?: number;
  /** 64K pages of the device table (level 1 when indirect). Default 1. */
  readonly deviceTablePages?: number;
  /** A two-level device table. Default false. */
  readonly indirect?: boolean;
  /** 64K pages of the collection table. Default 1. */
  readonly collectionTablePages?: number;
}

/** One ITS, driven from a vCPU. */
export class ItsGuest {
  readonly cpu: VCpu;
  readonly base: number;
  readonly alloc: GuestAllocator;
  cmdq = 0;
  cmdqBytes = 0;
  deviceTable = 0;
  collectionTable = 0;
  private cwriter = 0;

  constructor(cpu: VCpu, alloc: GuestAllocator, base = VIRT_GITS_BASE) {
    this.cpu = cpu;
    this.alloc = alloc;
    this.base = base;
  }

  /** The doorbell devices write MSIs to. */
  get doorbell(): number {
    return this.base + GITS_TRANSLATER;
  }

  typer(): bigint {
    return this.cpu.readq(this.base + GITS_TYPER);
  }

  /** its_init: tables and command queue allocated and programmed (the ITS stays disabled). */
  init(o: ItsGuestOptions = {}): void {
    const cmdPages = o.cmdQueuePages ?? 16;
    const devPages = o.deviceTablePages ?? 1;
    const collPages = o.collectionTablePages ?? 1;
    this.cmdqBytes = cmdPages * 4096;
    this.cmdq = this.alloc.alloc(this.cmdqBytes, 0x10000);
    this.deviceTable = this.alloc.alloc(devPages * ITS_TABLE_PAGE);
    this.collectionTable = this.alloc.alloc(collPages * ITS_TABLE_PAGE);
    this.writeBaser(0, this.deviceTable, devPages, o.indirect ?? false);
    this.writeBaser(1, this.collectionTable, collPages, false);
    this.cpu.writeq(
      this.base + GITS_CBASER,
      q(lo32(this.cmdq) | (cmdPages - 1), hi32(this.cmdq) | 0x80000000),
    );
    this.cpu.writeq(this.base + GITS_CWRITER, 0n);
    this.cwriter = 0;
  }

  /** Writes GITS_BASER<n>: Valid, (Indirect), the address and the number of 64K pages. */
  writeBaser(n: number, addr: number, pages: number, indirect: boolean): void {
    const at = this.base + GITS_BASER + 8 * n;
    const old = this.cpu.readq(at);
    const keepHi = Number(old >> 32n) & 0x07ff0000; // Type and Entry_Size are read-only anyway
    const hi = keepHi | hi32(addr) | GITS_BASER_HI_VALID | (indirect ? GITS_BASER_HI_INDIRECT : 0);
    this.cpu.writeq(at, q(lo32(addr) | (2 << 8) | (pages - 1), hi));
  }

  /** For a two-level device table: allocates and installs the level-2 page covering `devid`. */
  mapL2Page(devid: number): number {
    const page = this.alloc.alloc(ITS_TABLE_PAGE);
    const l1 = Math.floor(devid / (ITS_TABLE_PAGE / 8));
    this.cpu.writeq(this.deviceTable + l1 * 8, q(lo32(page), hi32(page) | 0x80000000));
    return page;
  }

  enable(): void {
    this.cpu.writel(this.base + GITS_CTLR, GITS_CTLR_ENABLED);
  }

  disable(): void {
    this.cpu.writel(this.base + GITS_CTLR, 0);
  }

  get creadr(): number {
    return Number(this.cpu.readq(this.base + GITS_CREADR) & 0xfffe0n);
  }

  /**
   * Queues one command (4 doublewords), advances CWRITER (wrapping at the end of the queue) and
   * waits until CREADR has passed it. Returns false if CREADR did not get there.
   */
  send(dw0: bigint, dw1 = 0n, dw2 = 0n, dw3 = 0n): boolean {
    const at = this.cmdq + this.cwriter;
    this.cpu.writeq(at, dw0);
    this.cpu.writeq(at + 8, dw1);
    this.cpu.writeq(at + 16, dw2);
    this.cpu.writeq(at + 24, dw3);
    this.cwriter = (this.cwriter + ITS_CMD_SIZE) % this.cmdqBytes;
    this.cpu.writeq(this.base + GITS_CWRITER, BigInt(this.cwriter));
    for (let i = 0; i < 1000; i++) if (this.creadr === this.cwriter) return true;
    return false;
  }

  /** Allocates an ITT for 2^eventBits events and maps the device (its_create_device). */
  createDevice(devid: number, eventBits: number): number {
    const itt = this.alloc.alloc(2 ** eventBits * 8, 256);
    this.mapd(devid, itt, eventBits, true);
    return itt;
  }

  mapd(devid: number, itt: number, eventBits: number, valid = true): boolean {
    return this.send(
      BigInt(GITS_CMD_MAPD) | (BigInt(devid) << 32n),
      BigInt(eventBits - 1),
      (BigInt(itt) & 0xffffffffff00n) | (valid ? 1n << 63n : 0n),
    );
  }

  /** MAPC with RDbase = processor number (GITS_TYPER.PTA = 0). */
  mapc(icid: number, rdbase: number, valid = true): boolean {
    return this.send(
      BigInt(GITS_CMD_MAPC),
      0n,
      BigInt(icid) | (BigInt(rdbase) << 16n) | (valid ? 1n << 63n : 0n),
    );
  }

  mapti(devid: number, eventid: number, intid: number, icid: number): boolean {
    return this.send(
      BigInt(GITS_CMD_MAPTI) | (BigInt(devid) << 32n),
      BigInt(eventid) | (BigInt(intid) << 32n),
      BigInt(icid),
    );
  }

  mapi(devid: number, eventid: number, icid: number): boolean {
    return this.send(BigInt(GITS_CMD_MAPI) | (BigInt(devid) << 32n), BigInt(eventid), BigInt(icid));
  }

  movi(devid: number, eventid: number, icid: number): boolean {
    return this.send(BigInt(GITS_CMD_MOVI) | (BigInt(devid) << 32n), BigInt(eventid), BigInt(icid));
  }

  private devEvent(op: number, devid: number, eventid: number): boolean {
    return this.send(BigInt(op) | (BigInt(devid) << 32n), BigInt(eventid));
  }

  discard(devid: number, eventid: number): boolean {
    return this.devEvent(GITS_CMD_DISCARD, devid, eventid);
  }

  clear(devid: number, eventid: number): boolean {
    return this.devEvent(GITS_CMD_CLEAR, devid, eventid);
  }

  int(devid: number, eventid: number): boolean {
    return this.devEvent(GITS_CMD_INT, devid, eventid);
  }

  inv(devid: number, eventid: number): boolean {
    return this.devEvent(GITS_CMD_INV, devid, eventid);
  }

  invall(icid: number): boolean {
    return this.send(BigInt(GITS_CMD_INVALL), 0n, BigInt(icid));
  }

  sync(rdbase: number): boolean {
    return this.send(BigInt(GITS_CMD_SYNC), 0n, BigInt(rdbase) << 16n);
  }

  movall(rd1: number, rd2: number): boolean {
    return this.send(BigInt(GITS_CMD_MOVALL), 0n, BigInt(rd1) << 16n, BigInt(rd2) << 16n);
  }

  // ---- GICv4.1 V-commands (field positions as Linux's its_build_v*_cmd) ----

  /** Allocates the vPE table and writes GITS_BASER2 (an ITS with GITS_TYPER.Virtual). */
  initVpeTable(pages = 1): number {
    const t = this.alloc.alloc(pages * ITS_TABLE_PAGE);
    this.writeBaser(2, t, pages, false);
    return t;
  }

  /**
   * VMAPP: vPE `vpeid` on redistributor `rd` with a VPT of 2^bits vINTIDs at `vpt` (64K-aligned),
   * vLPI properties at `vconf`, default doorbell `db` (1023: none); PTZ and Alloc as given.
   */
  vmapp(
    vpeid: number,
    o: {
      rd?: number;
      vpt?: number;
      bits?: number;
      vconf?: number;
      db?: number;
      valid?: boolean;
      ptz?: boolean;
      alloc?: boolean;
    },
  ): boolean {
    const valid = o.valid ?? true;
    const alloc = o.alloc ?? true;
    return this.send(
      BigInt(GITS_CMD_VMAPP) |
        (alloc ? 1n << 8n : 0n) |
        (o.ptz ? 1n << 9n : 0n) |
        (BigInt(o.vconf ?? 0) & 0xfffffffff0000n),
      BigInt(o.db ?? 1023) | (BigInt(vpeid) << 32n),
      (BigInt(o.rd ?? 0) << 16n) | (valid ? 1n << 63n : 0n),
      (BigInt(o.vpt ?? 0) & 0xfffffffff0000n) | BigInt((o.bits ?? 16) - 1),
    );
  }

  vmapti(devid: number, eventid: number, vintid: number, vpeid: number, db = 1023): boolean {
    return this.send(
      BigInt(GITS_CMD_VMAPTI) | (BigInt(devid) << 32n),
      BigInt(eventid) | (BigInt(vpeid) << 32n),
      BigInt(vintid) | (BigInt(db) << 32n),
    );
  }

  vmapi(devid: number, eventid: number, vpeid: number, db = 1023): boolean {
    return this.send(
      BigInt(GITS_CMD_VMAPI) | (BigInt(devid) << 32n),
      BigInt(eventid) | (BigInt(vpeid) << 32n),
      BigInt(db) << 32n,
    );
  }

  vmovi(devid: number, eventid: number, vpeid: number): boolean {
    return this.send(
      BigInt(GITS_CMD_VMOVI) | (BigInt(devid) << 32n),
      BigInt(eventid) | (BigInt(vpeid) << 32n),
    );
  }

  /** VMOVP (GITS_TYPER.VMOVP = 1: no ITS list, no sequence number); `db` ≥ 0 sets a new doorbell. */
  vmovp(vpeid: number, rd: number, db = -1): boolean {
    return this.send(
      BigInt(GITS_CMD_VMOVP),
      BigInt(vpeid) << 32n,
      (BigInt(rd) << 16n) | (db >= 0 ? 1n << 63n : 0n),
      db >= 0 ? BigInt(db) : 0n,
    );
  }

  private vpeCmd(op: number, vpeid: number): boolean {
    return this.send(BigInt(op), BigInt(vpeid) << 32n);
  }

  vsync(vpeid: number): boolean {
    return this.vpeCmd(GITS_CMD_VSYNC, vpeid);
  }

  vinvall(vpeid: number): boolean {
    return this.vpeCmd(GITS_CMD_VINVALL, vpeid);
  }

  invdb(vpeid: number): boolean {
    return this.vpeCmd(GITS_CMD_INVDB, vpeid);
  }

  /** VSGI: vSGI `sgi` of the vPE: priority, group, enable, and clear its pending state. */
  vsgi(
    vpeid: number,
    sgi: number,
    o: { priority?: number; group1?: boolean; enable?: boolean; clear?: boolean },
  ): boolean {
    return this.send(
      BigInt(GITS_CMD_VSGI) |
        (o.enable ? 1n << 8n : 0n) |
        (o.clear ? 1n << 9n : 0n) |
        (o.group1 ? 1n << 10n : 0n) |
        (BigInt(o.priority ?? 0) << 20n) |
        (BigInt(sgi) << 32n),
      BigInt(vpeid) << 32n,
    );
  }

  /** A raw command (for tests of unknown opcodes and malformed fields). */
  raw(dw0: bigint, dw1 = 0n, dw2 = 0n, dw3 = 0n): boolean {
    return this.send(dw0, dw1, dw2, dw3);
  }

  /** A CPU's MSI: a 32-bit write of `eventid` to GITS_TRANSLATER (DeviceID 0). */
  translate(eventid: number): void {
    this.cpu.writel(this.doorbell, eventid);
  }
}

/** What enableLpisOnVcpu set up on one vCPU. */
export interface VcpuLpis {
  readonly g: GicV3Guest;
  /** The allocator after the LPI tables: the boot vCPU allocates the ITS tables from it. */
  readonly alloc: GuestAllocator;
  readonly lpi: LpiTables;
}

/**
 * One vCPU's part of an SMP guest's LPI set-up (vgic_lpi_stress's per-vCPU gic_init + LPI
 * enable): its CPU interface on (and the distributor, on vCPU 0), the LPI tables allocated from
 * `ramBase`, and LPIs enabled on its redistributor. Every vCPU allocates in the same order, so all
 * agree on the table addresses without talking to each other.
 */
export function enableLpisOnVcpu(
  cpu: VCpu,
  o: {
    readonly ramBase: number;
    readonly ramSize: number;
    readonly vcpus: number;
    readonly lpiIdBits: number;
  },
): VcpuLpis {
  const g = new GicV3Guest(cpu);
  if (cpu.index === 0) g.enableDistributor();
  g.enableCpu();
  const alloc = new GuestAllocator(o.ramBase, o.ramSize);
  const lpi = new LpiTables(cpu, alloc, o.vcpus, o.lpiIdBits);
  lpi.program(g.rd, cpu.index);
  lpi.enable(g.rd);
  return { g, alloc, lpi };
}
