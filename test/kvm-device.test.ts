/**
 * KVM's device interface (device/kvm-device.ts) against Documentation/virt/kvm/devices/
 * arm-vgic-v3.rst, arm-vgic-its.rst, arm-vgic.rst and vgic-kvm-device.c: a VMM's sequence
 * (create, GRP_ADDR, NR_IRQS, CTRL_INIT, register groups) works, and every error condition the
 * documents list answers with KVM's errno (EINVAL, ENXIO, EBUSY, EEXIST, ENOENT, E2BIG, ENODEV,
 * EFAULT), for the GICv3, its ITSes and the GICv2 (INIT from its two frames, GRP_DIST_REGS and
 * GRP_CPU_REGS by vcpu_index).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QtestSession } from '../src/cli/qtest.ts';
import {
  GICC_ABPR,
  GICC_APR0,
  GICC_BPR,
  GICC_CTLR,
  GICC_EOIR,
  GICC_IAR,
  GICC_IIDR,
  GICC_PMR,
  GICD_CTLR,
  GICD_ICFGR,
  GICD_IPRIORITYR,
  GICD_ISENABLER,
  GICD_ITARGETSR,
  GICD_TYPER,
  GICR_CTLR,
  GICR_PENDBASER,
  GICR_TYPER,
  GITS_BASER,
  GITS_CBASER,
  GITS_CTLR,
  GITS_CWRITER,
  GicV2Guest,
  ICC_PMR_EL1,
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_ITS_RESTORE_TABLES,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_CPUID_SHIFT,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
  KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
  KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  type KvmErrno,
  KvmError,
  type KvmVgicDevice,
  KvmVm,
  VGIC_ADDR_UNDEF,
  Vgic,
  VgicError,
} from '../src/index.ts';
import { V_RUN_LOCK, VCPU_STRIDE } from '../src/state/layout.ts';
import { lpiMachine } from './helpers/its-machine.ts';

const DIST = 0x08000000;
const RDIST = 0x080a0000;
const ITS = 0x08080000;

function errno(e: KvmErrno, f: () => unknown): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof KvmError, `a KvmError, got ${String(err)}`);
    assert.ok(err instanceof VgicError, 'a KvmError is a VgicError');
    assert.equal(err.errno, e, err.message);
    assert.match(err.message, new RegExp(`^${e}: .{10,}`));
    return true;
  });
}

const region = (index: number, base: number, count: number, flags = 0): bigint =>
  (BigInt(count) << 52n) | BigInt(base) | (BigInt(flags) << 12n) | BigInt(index);

/** A VMM's GICv3 sequence: device, addresses, NR_IRQS, an ITS, INIT. */
function v3vm(vcpus = 2, o: { its?: boolean; ram?: boolean } = {}) {
  const vm = new KvmVm({ vcpus, time: 'virtual', ...(o.ram ? { ram: { size: 16 << 20 } } : {}) });
  const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, region(0, RDIST, vcpus));
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 128);
  const its = o.its ? vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS) : undefined;
  its?.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  return { vm, gic, its };
}

const V2_DIST = 0x08000000;
const V2_CPU = 0x08010000;

/** A VMM's GICv2 sequence: device, DIST and CPU addresses, NR_IRQS 128, INIT. */
function v2vm(vcpus = 2) {
  const vm = new KvmVm({ vcpus, time: 'virtual' });
  const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, V2_DIST);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, V2_CPU);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 128);
  assert.equal(vm.initialized, false);
  gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  return { vm, gic };
}

/** GICv2's register attr: vcpu_index << 32 | offset (KVM_DEV_ARM_VGIC_CPUID_SHIFT). */
const v2attr = (v: number, offset: number): bigint =>
  (BigInt(v) << KVM_DEV_ARM_VGIC_CPUID_SHIFT) | BigInt(offset);

/** mpidr << 32 | offset, with vCPU v's affinity (Aff0 = v below 16). */
const mpidr = (v: number, low: number): bigint => (BigInt(v) << 32n) | BigInt(low);

describe('KVM_CREATE_DEVICE', () => {
  test('one GIC per VM (EEXIST), unknown types (ENODEV), an ITS only beside a GICv3 (ENODEV)', () => {
    const vm = new KvmVm({ vcpus: 2 });
    errno('ENODEV', () => vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS));
    errno('ENODEV', () => vm.createDevice(42));
    vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    errno('EEXIST', () => vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3));
    errno('EEXIST', () => vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2));
    assert.equal(vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS).type, KVM_DEV_TYPE_ARM_VGIC_ITS);
    const v2 = new KvmVm({ vcpus: 1 });
    v2.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
    errno('ENODEV', () => v2.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS));
  });

  test('a GICv2 serves at most 8 vCPUs (E2BIG)', () => {
    errno('E2BIG', () => new KvmVm({ vcpus: 9 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V2));
    new KvmVm({ vcpus: 8 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
  });
});

describe('KVM_DEV_ARM_VGIC_GRP_ADDR (GICv3)', () => {
  test('reads VGIC_ADDR_UNDEF until set, then the address; EEXIST on a second set', () => {
    const gic = new KvmVm({ vcpus: 2 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST), VGIC_ADDR_UNDEF);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST), BigInt(DIST));
    errno('EEXIST', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0x09000000));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, RDIST);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST), BigInt(RDIST));
    errno('EEXIST', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x0a000000));
  });

  test('64K alignment (EINVAL), the IPA range (E2BIG), unknown or GICv2 attributes (ENXIO)', () => {
    const gic = new KvmVm({ vcpus: 2 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    // KVM's "invalid user pointer for attr->addr": a value that is no 64-bit number.
    errno('EFAULT', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 'x' as never));
    errno('EFAULT', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, -1));
    errno('EFAULT', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, 1.5));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST + 0x1000));
    errno('E2BIG', () =>
      gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 2 ** 48 - 0x10000 + 0x10000),
    );
    errno('E2BIG', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 1n << 60n));
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, DIST));
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, 77, DIST));
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST));
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION), true);
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU), false);
    // Nothing was set by the refused calls.
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST), VGIC_ADDR_UNDEF);
  });

  test('redistributor regions: in index order, count > 0, flags 0, no overlap, no mixing with REDIST', () => {
    const gic = new KvmVm({ vcpus: 4 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    const R = KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION;
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(1, RDIST, 2)));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(0, RDIST, 0)));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(0, RDIST, 2, 1)));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(0, RDIST, 2));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(2, 0x0a000000, 2)));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(1, RDIST + 0x20000, 2)));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x0a000000));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(1, 0x0a000000, 2));
    // A region read presets the index in the value.
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, 1), region(1, 0x0a000000, 2));
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, 0), region(0, RDIST, 2));
    errno('ENOENT', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, 5));
    const legacy = new KvmVm({ vcpus: 2 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    legacy.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, RDIST);
    errno('EINVAL', () => legacy.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, R, region(1, 0x0a000000, 2)));
  });

  test('the legacy redistributors may not overlap the distributor (EINVAL)', () => {
    const gic = new KvmVm({ vcpus: 2 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    errno('EINVAL', () =>
      gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, DIST - 0x20000),
    );
  });
});

describe('KVM_DEV_ARM_VGIC_GRP_NR_IRQS and GRP_CTRL INIT', () => {
  test('64..1024 in steps of 32 (EINVAL), once (EBUSY), read back', () => {
    const vm = new KvmVm({ vcpus: 1 });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 32n);
    for (const bad of [32, 63, 100, 1056])
      errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, bad));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 96);
    errno('EBUSY', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 128));
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 96n);
  });

  test('INIT needs both addresses (ENXIO) and no overlapping frames (EINVAL); then the GIC exists', () => {
    const vm = new KvmVm({ vcpus: 2 });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    errno('ENXIO', () => vm.gic);
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, region(0, RDIST, 1));
    // One redistributor for two vCPUs.
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT));
    gic.setAttr(
      KVM_DEV_ARM_VGIC_GRP_ADDR,
      KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
      region(1, RDIST + 0x20000, 1),
    );
    const its = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS);
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, DIST);
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT));
    // No register access before INIT (KVM: -EBUSY while !vgic_initialized).
    errno('EBUSY', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_TYPER));
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES));
    const ok = new KvmVm({ vcpus: 2 });
    const g = ok.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    g.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    g.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, RDIST);
    g.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    // Default NR_IRQS: KVM's VGIC_NR_IRQS_LEGACY (256).
    assert.equal(ok.gic.nrIrqs, 256);
    assert.equal(g.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 256n);
    // INIT again is a no-op; addresses and NR_IRQS are fixed now.
    g.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    errno('EBUSY', () => g.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 128));
    errno('ENXIO', () => g.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, 99));
  });

  test('GRP_MAINT_IRQ must be a PPI (EINVAL) set before INIT (EBUSY)', () => {
    const vm = new KvmVm({ vcpus: 1 });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ, 0, 40));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ, 0, 25);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ, 0), 25n);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, RDIST);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    errno('EBUSY', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ, 0, 25));
    // vgic fixes the frames at INIT: a new redistributor region afterwards is EBUSY.
    const { gic: g } = v3vm(1);
    errno('EBUSY', () =>
      g.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, region(1, 0x0a000000, 1)),
    );
  });
});

describe('register groups (GICv3)', () => {
  test('GRP_DIST_REGS: 32-bit userspace access; unknown offsets ENXIO, unaligned EINVAL', () => {
    const { vm, gic } = v3vm();
    const typer = Number(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_TYPER));
    assert.equal(typer & 0x1f, 128 / 32 - 1, 'ITLinesNumber from NR_IRQS');
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISENABLER + 4, 0x00010001);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISENABLER + 4), 0x00010001n);
    assert.equal(vm.gic.readDistReg(GICD_ISENABLER + 4), 0x00010001n);
    // The distributor ignores the mpidr.
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, mpidr(1, GICD_ISENABLER + 4)), 0x00010001n);
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x8000));
    errno('EINVAL', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_TYPER + 2));
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_TYPER), true);
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x8000), false);
    // GICv2's CPU interface group is not a GICv3 group.
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0));
  });

  test('GRP_REDIST_REGS: mpidr << 32 | offset; an mpidr no vCPU has is EINVAL', () => {
    const { gic } = v3vm(2);
    const t1 = gic.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, mpidr(1, GICR_TYPER));
    assert.equal((t1 >> 8n) & 0xffffn, 1n, 'GICR_TYPER.Processor_Number of vCPU 1');
    const aff = gic.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, mpidr(1, GICR_TYPER + 4));
    assert.equal(aff, 1n, 'GICR_TYPER[63:32] = affinity of vCPU 1');
    errno('EINVAL', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, mpidr(5, GICR_TYPER)));
    errno('EINVAL', () =>
      gic.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0xff00_0000_0000_0000n | BigInt(GICR_TYPER)),
    );
  });

  test("GRP_CPU_SYSREGS: KVM's Op0..Op2 encoding; unknown ENXIO, bits [63:32] EINVAL", () => {
    const { vm, gic } = v3vm(2);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, mpidr(1, ICC_PMR_EL1), 0xa0);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, mpidr(1, ICC_PMR_EL1)), 0xa0n);
    assert.equal(vm.gic.readCpuSysreg(1, ICC_PMR_EL1), 0xa0);
    assert.equal(vm.gic.readCpuSysreg(0, ICC_PMR_EL1), 0);
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, mpidr(0, 0x1234)));
    errno('EINVAL', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, mpidr(0, ICC_PMR_EL1), 1n << 40n));
    errno('EINVAL', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, mpidr(3, ICC_PMR_EL1)));
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, ICC_PMR_EL1), true);
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, 0x1234), false);
  });

  test('GRP_LEVEL_INFO: line levels of 32 INTIDs; info ≠ 0 or vINTID % 32 EINVAL; beyond NR_IRQS RAZ/WI', () => {
    const { vm, gic } = v3vm(1);
    // SPI 40 level-sensitive (ICFGR: level is 0b00, the reset value).
    assert.equal(vm.gic.readDistReg(GICD_ICFGR + 8) & 0x30000n, 0n);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32, 1 << 8);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32), 1n << 8n);
    vm.gic.irqLine(41, true);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32), 3n << 8n);
    errno('EINVAL', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 33));
    errno('EINVAL', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, (1n << 10n) | 32n));
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 512), 0n);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 512, 0xffffffff);
  });

  test('EBUSY while a vCPU runs (its run_lock held by another thread)', () => {
    const { vm, gic, its } = v3vm(2, { its: true, ram: true });
    const s = vm.gic.state;
    // Another thread's vCPU 1 inside an instruction: lock owner id 99 holds its run_lock.
    Atomics.store(s.vcpu, VCPU_STRIDE + V_RUN_LOCK, 99);
    try {
      errno('EBUSY', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_TYPER));
      errno('EBUSY', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, ICC_PMR_EL1));
      errno('EBUSY', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES));
      errno('EBUSY', () => its?.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES));
      errno('EBUSY', () => its?.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CTLR));
    } finally {
      Atomics.store(s.vcpu, VCPU_STRIDE + V_RUN_LOCK, 0);
    }
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES);
  });
});

describe('the ITS device (arm-vgic-its.rst)', () => {
  test('GRP_ADDR: 64K-aligned (EINVAL), once (EEXIST), before the GIC INIT (EBUSY), unknown attr ENXIO', () => {
    const vm = new KvmVm({ vcpus: 1 });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    const its = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS);
    const late = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_ITS);
    assert.equal(its.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE), VGIC_ADDR_UNDEF);
    errno('EINVAL', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS + 0x8000));
    errno('E2BIG', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, 2 ** 48 - 0x10000));
    // The ITS answers -ENODEV for a wrong GRP_ADDR attribute (vgic_its_set_attr), not -ENXIO.
    errno('ENODEV', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, ITS));
    errno('ENODEV', () => its.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, 0));
    // "ITS not properly configured": no frame yet for the control operations.
    errno('ENXIO', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES));
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS);
    errno('EEXIST', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS + 0x20000));
    // Registers exist once the GIC is initialised.
    errno('ENXIO', () => its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CTLR));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, RDIST);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    assert.equal(vm.gic.nIts, 1);
    assert.equal(its.its.doorbell, ITS + 0x10040);
    errno('EBUSY', () => late.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS + 0x20000));
    errno('ENXIO', () => late.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CTLR));
  });

  test('GRP_ITS_REGS: 64-bit registers at full width, 8-aligned (EINVAL); unknown offsets ENXIO', () => {
    const { vm, its } = v3vm(1, { its: true, ram: true });
    assert.ok(its);
    const cbaser = (1n << 63n) | 0x40100000n | 1n;
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CBASER, cbaser);
    assert.equal(
      its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CBASER) & ~(0xffn << 53n),
      cbaser & ~(0xffn << 53n),
    );
    assert.equal(vm.gic.its(0).readReg(GITS_CBASER) & 0xffffffffffn, cbaser & 0xffffffffffn);
    errno('EINVAL', () => its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CBASER + 4));
    errno('EINVAL', () => its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CTLR + 2));
    errno('ENXIO', () => its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, 0x5000));
    assert.equal(its.hasAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_BASER), true);
    assert.equal(its.hasAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, 0x5000), false);
    // A userspace CWRITER write runs no command.
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_CWRITER, 0x40);
    assert.equal(vm.gic.its(0).stats().commands, 0);
    errno('ENXIO', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, 0, 0));
  });

  test('GRP_CTRL: INIT no-op, RESET, SAVE/RESTORE_TABLES; tables outside RAM EFAULT; unknown ENXIO', () => {
    const { vm, its } = v3vm(1, { its: true, ram: true });
    assert.ok(its);
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    errno('ENXIO', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, 77));
    assert.equal(its.hasAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_CTRL_RESET), true);
    // A collection table outside RAM (0x20000000: below the RAM at 0x40000000), one mapped collection.
    its.setAttr(
      KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
      GITS_BASER + 8,
      (1n << 63n) | (4n << 56n) | (7n << 48n) | 0x20000000n,
    );
    its.setAttr(
      KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
      GITS_BASER,
      (1n << 63n) | (1n << 56n) | (7n << 48n) | 0x40200000n,
    );
    vm.gic.state.itsColl[3] = 0;
    errno('EFAULT', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES));
    vm.gic.state.itsColl[3] = -1;
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_CTRL_RESET);
    assert.equal(
      its.getAttr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GITS_BASER + 8) >> 63n,
      0n,
      'RESET clears BASER.Valid',
    );
    its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES);
    // Inconsistent restored data (EINVAL): a valid CTE naming vCPU 99 of a 1-vCPU VM.
    its.setAttr(
      KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
      GITS_BASER + 8,
      (1n << 63n) | (4n << 56n) | (7n << 48n) | 0x40300000n,
    );
    vm.gic.memory.write64(0x40300000, (1n << 63n) | (99n << 16n) | 5n);
    errno('EINVAL', () => its.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES));
  });

  test('SAVE_PENDING_TABLES with a pending table outside guest RAM is EFAULT', () => {
    const m = lpiMachine({ vcpus: 2 });
    const vm = KvmVm.fromVgic(m.gic);
    // vCPU 1's pending table moved outside RAM (LPIs off while PENDBASER changes, then on again).
    m.gic.writeRedistReg(1, GICR_CTLR, 0);
    m.gic.writeRedistReg(1, GICR_PENDBASER, 0x20000000, 8);
    m.gic.writeRedistReg(1, GICR_CTLR, 1);
    m.its.createDevice(1, 2);
    assert.ok(m.its.mapc(0, 1));
    assert.ok(m.its.mapti(1, 0, 8200, 0));
    assert.equal(m.gic.signalMsi({ doorbell: m.its.doorbell, devid: 1, eventid: 0 }), 'delivered');
    errno('EFAULT', () =>
      vm.gicDevice?.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES),
    );
    // With every pending table in RAM it succeeds.
    const ok = KvmVm.fromVgic(lpiMachine({ vcpus: 2 }).gic);
    ok.gicDevice?.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES);
  });
});

describe('GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2, arm-vgic.rst)', () => {
  test('GRP_ADDR DIST and CPU: 4K-aligned (EINVAL), once (EEXIST); GICv3 attributes ENXIO', () => {
    const vm = new KvmVm({ vcpus: 2 });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, 0x08000000);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, 0x08010000);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU), 0x08010000n);
    errno('EEXIST', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, 0x08020000));
    const g2 = new KvmVm({ vcpus: 1 }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
    errno('EINVAL', () => g2.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, 0x08000800));
    errno('ENXIO', () => g2.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0x08000000));
    errno('ENXIO', () => g2.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, 0));
    errno('ENXIO', () => g2.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0));
    g2.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 64);
    assert.equal(g2.hasAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0), true);
    assert.equal(g2.hasAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES), false);
  });

  test('CTRL_INIT builds the GICv2 from DIST, CPU and NR_IRQS; an address unset ENXIO, overlapping frames EINVAL', () => {
    const dev = (vcpus = 2) => new KvmVm({ vcpus, time: 'virtual' }).createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
    const init = (d: KvmVgicDevice) => d.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    // vgic_v2_map_resources: both frames must be set.
    const none = dev();
    errno('ENXIO', () => init(none));
    const distOnly = dev();
    distOnly.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, V2_DIST);
    errno('ENXIO', () => init(distOnly));
    const cpuOnly = dev();
    cpuOnly.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, V2_CPU);
    errno('ENXIO', () => init(cpuOnly));
    // vgic_v2_check_base: a 4K distributor and an 8K CPU interface may touch, not overlap.
    for (const [d, c, ok] of [
      [0x08001000, 0x08000000, false], // the distributor on the CPU interface's second page
      [0x08000000, 0x07fff000, false], // the CPU interface's second page on the distributor
      [0x08000000, 0x08000000, false],
      [0x08002000, 0x08000000, true],
      [0x08000000, 0x08001000, true],
    ] as const) {
      const x = dev();
      x.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, d);
      x.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, c);
      if (ok) init(x);
      else errno('EINVAL', () => init(x));
    }
    // Before INIT the VM has no GIC; after it, a GICv2 with those frames and NR_IRQS.
    const { vm, gic } = v2vm(3);
    assert.equal(vm.gic.gicVersion, 2);
    assert.equal(vm.gic.nVcpus, 3);
    assert.equal(vm.gic.distBase, V2_DIST);
    assert.equal(vm.gic.cpuBase, V2_CPU);
    assert.equal(vm.gic.nrIrqs, 128);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 128n);
    // The guest finds its distributor and CPU interface at those addresses.
    const cpu = vm.gic.vcpu(2);
    assert.equal(cpu.readl(V2_DIST + GICD_TYPER) & 0x1f, 128 / 32 - 1, 'ITLinesNumber');
    assert.equal((cpu.readl(V2_DIST + GICD_TYPER) >>> 5) & 7, 2, 'CPUNumber: 3 CPU interfaces');
    assert.equal(cpu.readl(V2_CPU + GICC_IIDR), 0x04b2043b);
    init(gic); // vgic_init on an initialised GIC: nothing to do
    errno('EBUSY', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 64));
    // Without NR_IRQS: KVM's legacy 256 interrupts.
    const legacy = dev(1);
    legacy.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, V2_DIST);
    legacy.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, V2_CPU);
    init(legacy);
    assert.equal(legacy.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 256n);
    assert.equal(legacy.hasAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT), true);
  });

  test("GRP_DIST_REGS: vcpu_index << 32 | offset reaches that vCPU's bank; shared registers are shared", () => {
    const { vm, gic } = v2vm(3);
    const g = vm.gic;
    // ITARGETSR0-7 read as each CPU sees them: its own CPU interface's bit.
    for (let v = 0; v < 3; v++) {
      assert.equal(
        gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(v, GICD_ITARGETSR)),
        BigInt((1 << v) * 0x01010101),
      );
    }
    // ISENABLER0 is banked (SGIs and PPIs of vCPU 1 only); ISENABLER1 (SPIs 32-63) is shared.
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(1, GICD_ISENABLER), 1 << 27);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(1, GICD_ISENABLER + 4), 0x100);
    assert.equal(
      gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(1, GICD_ISENABLER)),
      BigInt(0xffff | (1 << 27)),
    );
    assert.equal(
      gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(0, GICD_ISENABLER)),
      0xffffn,
      'vCPU 0 unchanged',
    );
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(2, GICD_ISENABLER + 4)), 0x100n);
    // The guest sees what userspace wrote, through its own bank.
    assert.equal(g.vcpu(1).readl(V2_DIST + GICD_ISENABLER), 0xffff | (1 << 27));
    assert.equal(g.vcpu(0).readl(V2_DIST + GICD_ISENABLER + 4), 0x100);
    // A priority and an SPI's targets round trip; the value is a __u32 (the upper half not read).
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(0, GICD_IPRIORITYR + 40), 0xffff_ffff_a0b0c0d0n);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(2, GICD_IPRIORITYR + 40)), 0xa0b0c0d0n);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(0, GICD_ITARGETSR + 40), 0x04020104);
    assert.equal(g.vcpu(0).readl(V2_DIST + GICD_ITARGETSR + 40), 0x04020104);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(0, GICD_CTLR), 1);
    assert.equal(g.vcpu(2).readl(V2_DIST + GICD_CTLR), 1);
    // Bits [63:40] are reserved: KVM reads only vcpu_index [39:32] and the offset.
    assert.equal(
      gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, (1n << 40n) | v2attr(2, GICD_ITARGETSR)),
      0x04040404n,
    );
    // A GICv2 guest sees its interrupt: SPI 40 (level, enabled above) targeted at vCPU 1.
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(0, GICD_ITARGETSR + 40), 0x02);
    const guest = new GicV2Guest(g.vcpu(1), V2_DIST, V2_CPU);
    guest.enableCpu(0xf0);
    g.irqLine(40, true);
    g.vcpu(1).step();
    assert.equal(guest.iar(), 40);
  });

  test('GRP_CPU_REGS: CTLR, PMR as VMPriMask, BPR, ABPR, APR0, IIDR of the named vCPU', () => {
    const { vm, gic } = v2vm(2);
    const cpu = vm.gic.vcpu(1);
    const attr = (off: number) => v2attr(1, off);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_PMR), 0x15);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_PMR)), 0x15n);
    assert.equal(cpu.readl(V2_CPU + GICC_PMR), 0x15 << 3, 'KVM exports PMR as GICH_VMCR.VMPriMask');
    cpu.writel(V2_CPU + GICC_CTLR, 0x201);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_CTLR)), 0x201n);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_BPR), 4);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_ABPR), 5);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_APR0), 0x10);
    assert.equal(cpu.readl(V2_CPU + GICC_BPR), 4);
    assert.equal(cpu.readl(V2_CPU + GICC_ABPR), 5);
    assert.equal(cpu.readl(V2_CPU + GICC_APR0), 0x10);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_APR0)), 0x10n);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, attr(GICC_IIDR)), 0x04b2043bn);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, v2attr(0, GICC_PMR)), 0n, 'per vCPU');
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, v2attr(0, GICC_CTLR)), 0n);
  });

  test('register errnos: no such vCPU EINVAL, no register ENXIO, before INIT or vCPUs running EBUSY; hasAttr', () => {
    const vm = new KvmVm({ vcpus: 2, time: 'virtual' });
    const gic = vm.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, V2_DIST);
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, V2_CPU);
    const DR = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
    const CR = KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
    // KVM_HAS_DEVICE_ATTR needs no INIT (vgic_v2_has_attr_regs): the frames are fixed tables.
    assert.equal(gic.hasAttr(DR, v2attr(1, GICD_ITARGETSR)), true);
    assert.equal(gic.hasAttr(CR, v2attr(1, GICC_PMR)), true);
    assert.equal(gic.hasAttr(CR, v2attr(0, GICC_APR0 + 12)), true, 'APR3');
    assert.equal(gic.hasAttr(CR, v2attr(0, GICC_IAR)), false, 'IAR is no userspace register');
    assert.equal(gic.hasAttr(DR, v2attr(0, GICD_ITARGETSR + 2)), false, 'only aligned 32-bit accesses');
    assert.equal(gic.hasAttr(DR, v2attr(0, 0x1000)), false, 'beyond the 4K frame');
    assert.equal(gic.hasAttr(DR, v2attr(0, 0x0c)), false, 'a reserved offset');
    errno('EINVAL', () => gic.hasAttr(DR, v2attr(2, GICD_CTLR)));
    errno('EINVAL', () => gic.hasAttr(CR, v2attr(255, GICC_PMR)));
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0), false);
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, ICC_PMR_EL1), false);
    assert.equal(gic.hasAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32), false);
    // No vCPU with that index: EINVAL, before anything else (vgic_v2_parse_attr).
    errno('EINVAL', () => gic.getAttr(DR, v2attr(2, GICD_CTLR)));
    errno('EINVAL', () => gic.setAttr(CR, v2attr(2, GICC_PMR), 1));
    // Before INIT: EBUSY (vgic's frames are fixed at INIT).
    errno('EBUSY', () => gic.getAttr(DR, v2attr(0, GICD_CTLR)));
    errno('EBUSY', () => gic.setAttr(CR, v2attr(1, GICC_PMR), 1));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
    // No register there: ENXIO (KVM's region lookup), unaligned included.
    errno('ENXIO', () => gic.getAttr(CR, v2attr(0, GICC_IAR)));
    errno('ENXIO', () => gic.setAttr(CR, v2attr(0, GICC_EOIR), 0));
    errno('ENXIO', () => gic.getAttr(CR, v2attr(0, 0x100)));
    errno('ENXIO', () => gic.getAttr(DR, v2attr(0, 0x1000)));
    errno('ENXIO', () => gic.getAttr(DR, v2attr(0, 0xffff_fffc)));
    errno('ENXIO', () => gic.getAttr(DR, v2attr(0, GICD_ISENABLER + 2)));
    errno('ENXIO', () => gic.setAttr(DR, v2attr(1, 0x0c), 0));
    // GICv3 groups on a GICv2: ENXIO.
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0));
    errno('ENXIO', () => gic.getAttr(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32));
    errno('ENXIO', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ, 0, 25));
    // A vCPU running on another thread (its run_lock held): EBUSY (KVM's lock_all_vcpus).
    const s = vm.gic.state;
    Atomics.store(s.vcpu, VCPU_STRIDE + V_RUN_LOCK, 99);
    try {
      errno('EBUSY', () => gic.getAttr(DR, v2attr(0, GICD_CTLR)));
      errno('EBUSY', () => gic.setAttr(CR, v2attr(0, GICC_PMR), 1));
      assert.equal(gic.hasAttr(CR, v2attr(1, GICC_PMR)), true, 'KVM_HAS_DEVICE_ATTR does not lock the vCPUs');
    } finally {
      Atomics.store(s.vcpu, VCPU_STRIDE + V_RUN_LOCK, 0);
    }
    gic.setAttr(CR, v2attr(0, GICC_PMR), 1);
    assert.equal(gic.getAttr(CR, v2attr(0, GICC_PMR)), 1n);
    // A GICv3 has no GRP_CPU_REGS.
    const v3 = v3vm(1).gic;
    assert.equal(v3.hasAttr(CR, GICC_PMR), false);
    errno('ENXIO', () => v3.getAttr(CR, GICC_PMR));
  });
});

describe('KvmVm.fromVgic and vgic qtest', () => {
  test('an existing GIC answers KVM attributes: its addresses, NR_IRQS, registers, errnos', () => {
    const g = Vgic.create({ vcpus: 2, spis: 96, its: 1, ram: { size: 1 << 20 }, time: 'virtual' });
    const vm = KvmVm.fromVgic(g);
    const gic = vm.gicDevice;
    assert.ok(gic);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 128n);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST), BigInt(g.distBase));
    assert.equal(
      gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, 0),
      region(0, g.redistRegions[0].base, 2),
    );
    assert.equal(
      vm.itsDevs[0].getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE),
      BigInt(g.itsBases[0]),
    );
    errno('EEXIST', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, DIST));
    errno('EBUSY', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 64));
  });

  test('a GICv2 made with the host API: a KVM_DEV_TYPE_ARM_VGIC_V2 device with its frames, NR_IRQS, registers', () => {
    const g = Vgic.create({ gicVersion: 2, vcpus: 2, spis: 64, time: 'virtual' });
    const vm = KvmVm.fromVgic(g);
    const gic = vm.gicDevice;
    assert.ok(gic);
    assert.equal(gic.type, KVM_DEV_TYPE_ARM_VGIC_V2);
    assert.equal(vm.itsDevs.length, 0);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST), BigInt(g.distBase));
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU), BigInt(g.cpuBase));
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0), 96n);
    errno('EEXIST', () => gic.setAttr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, 0x08020000));
    gic.setAttr(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, v2attr(1, GICC_PMR), 0x1f);
    assert.equal(g.readCpuReg(1, GICC_PMR), 0x1f);
    assert.equal(gic.getAttr(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, v2attr(1, GICD_ITARGETSR)), 0x02020202n);
    const q = new QtestSession(g);
    assert.equal(q.execute('kvm_get_attr gic DIST_REGS 0x100000800'), 'OK 0x0000000002020202');
    assert.equal(q.execute('kvm_set_attr gic CPU_REGS 0x4 0x10'), 'OK');
    assert.equal(q.execute('kvm_get_attr gic CPU_REGS 0x4'), 'OK 0x0000000000000010');
    assert.equal(q.execute('kvm_has_attr gic CPU_REGS 0xc'), 'OK 0');
    assert.match(q.execute('kvm_get_attr gic CPU_REGS 0x200000004'), /^ERR EINVAL: /);
  });

  test('qtest kvm_set_attr / kvm_get_attr / kvm_has_attr, refusals as ERR <errno>', () => {
    const q = new QtestSession(Vgic.create({ vcpus: 2, its: 1, ram: { size: 1 << 20 } }));
    const run = (line: string) => q.execute(line);
    assert.equal(run('kvm_get_attr gic DIST_REGS 0x4'), 'OK 0x00000000027a0007');
    assert.equal(run('kvm_set_attr gic KVM_DEV_ARM_VGIC_GRP_DIST_REGS 0x104 0x3'), 'OK');
    assert.equal(run('kvm_get_attr gic 1 0x104'), 'OK 0x0000000000000003');
    assert.equal(run('kvm_get_attr gic REDIST_REGS 0x100000008'), 'OK 0x0000000000000111');
    assert.equal(run(`kvm_get_attr gic CPU_SYSREGS 0x${ICC_PMR_EL1.toString(16)}`), 'OK 0x0000000000000000');
    assert.equal(run('kvm_has_attr gic CPU_SYSREGS 0x1234'), 'OK 0');
    assert.equal(run('kvm_has_attr its0 CTRL 1'), 'OK 1');
    assert.match(run('kvm_set_attr gic NR_IRQS 0 128'), /^ERR EBUSY: /);
    assert.match(run('kvm_get_attr gic LEVEL_INFO 33'), /^ERR EINVAL: /);
    assert.match(run('kvm_get_attr its0 ITS_REGS 0x84'), /^ERR EINVAL: /);
    assert.match(run('kvm_get_attr its1 ITS_REGS 0x8'), /^ERR DEV must be gic or its0\.\.its0/);
    assert.match(run('kvm_get_attr gic'), /^ERR usage: kvm_get_attr DEV GROUP ATTR/);
  });
});
