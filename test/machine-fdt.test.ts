/**
 * The DTB writer (src/machine/fdt.ts) and the virt device tree (src/machine/virt-dt.ts): decoded back
 * with test/helpers/fdt-decode.ts; checked by dtc when it is installed (no warnings); compared node by
 * node with the DTB QEMU 7.2's virt board dumps when qemu-system-aarch64 is installed.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { VgicError } from '../src/arch/errors.ts';
import { Fdt } from '../src/machine/fdt.ts';
import { type VirtDtOptions, virtDeviceTree } from '../src/machine/virt-dt.ts';
import { type DecodedNode, decodeDtb, findNode, propCells, propStrings } from './helpers/fdt-decode.ts';

const VIRT: VirtDtOptions = {
  ramBase: 0x4000_0000,
  ramSize: 128 * 1024 * 1024,
  cpus: 2,
  gicdBase: 0x0800_0000,
  gicrBase: 0x080a_0000,
  gicrSize: 0xf6_0000,
  itsBase: 0x0808_0000,
  uartBase: 0x0900_0000,
};

function have(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function node(root: DecodedNode, path: string): DecodedNode {
  const n = findNode(root, path);
  assert.ok(n, `node ${path} exists`);
  return n;
}

test('fdt: header, empty reservation block, layout and deduplicated strings', () => {
  const fdt = new Fdt({ bootCpuidPhys: 3, firstPhandle: 7 });
  fdt.root.u32('#address-cells', 2).u32('#size-cells', 2).string('model', 'm');
  const a = fdt.root.node('a@1000').u64s('reg', [0x1_0000_0000, 0x1000]).empty('flag');
  a.phandle(fdt.allocPhandle());
  a.node('b')
    .strings('compatible', ['x,y', 'z'])
    .bytes('raw', Uint8Array.of(1, 2, 3));
  fdt.root.node('c').u32('#address-cells', 1).cells('list', [1, 0xffffffff]);
  const dtb = fdt.toDtb();
  const d = decodeDtb(dtb);
  assert.equal(d.header.version, 17);
  assert.equal(d.header.lastCompVersion, 16);
  assert.equal(d.header.bootCpuidPhys, 3);
  assert.deepEqual(d.reservations, []);
  // '#address-cells' is used by two nodes but stored once.
  const strings = new TextDecoder().decode(
    dtb.subarray(d.header.offDtStrings, d.header.offDtStrings + d.header.sizeDtStrings),
  );
  assert.equal(strings.split('\0').filter((s) => s === '#address-cells').length, 1);
  assert.equal(d.root.name, '');
  assert.deepEqual(d.root.propOrder, ['#address-cells', '#size-cells', 'model']);
  const na = node(d.root, '/a@1000');
  assert.deepEqual(propCells(na, 'reg'), [1, 0, 0, 0x1000]);
  assert.equal(na.props.get('flag')?.length, 0);
  assert.deepEqual(propCells(na, 'phandle'), [7]);
  const nb = node(d.root, '/a@1000/b');
  assert.deepEqual(propStrings(nb, 'compatible'), ['x,y', 'z']);
  assert.deepEqual([...(nb.props.get('raw') ?? [])], [1, 2, 3]);
  assert.deepEqual(propCells(node(d.root, '/c'), 'list'), [1, 0xffffffff]);
});

test('fdt: misuse throws VgicError', () => {
  const fdt = new Fdt();
  const isArg = (e: unknown) => e instanceof VgicError && e.code === 'INVALID_ARGUMENT';
  assert.throws(() => fdt.root.node('bad name'), isArg);
  assert.throws(() => fdt.root.node('x').node('y').node('y').u32('y', 1).u32('y', 2), isArg);
  assert.throws(() => fdt.root.node('x'), isArg); // duplicate node
  assert.throws(() => fdt.root.u32('v', -1), isArg);
  assert.throws(() => fdt.root.u32('v', 2 ** 32), isArg);
  assert.throws(() => fdt.root.u64s('v', [2 ** 53]), isArg);
  assert.throws(() => fdt.root.string('s', 'a\0b'), isArg);
  assert.throws(() => fdt.root.strings('s', []), isArg);
  assert.throws(() => fdt.root.phandle(0), isArg);
  assert.throws(() => fdt.root.u32('this-property-name-is-far-too-long', 1), isArg);
});

test('virt DT: the nodes and properties of QEMU virt (gic-version=3)', () => {
  const d = decodeDtb(virtDeviceTree({ ...VIRT, bootargs: 'console=ttyAMA0 earlycon' }));
  const r = d.root;
  assert.deepEqual(
    r.children.map((c) => c.name),
    ['psci', 'memory@40000000', 'pl011@9000000', 'intc@8000000', 'cpus', 'timer', 'apb-pclk', 'chosen'],
  );
  assert.deepEqual(propCells(r, '#address-cells'), [2]);
  assert.deepEqual(propCells(r, '#size-cells'), [2]);
  assert.deepEqual(propStrings(r, 'compatible'), ['linux,dummy-virt']);
  assert.deepEqual(propStrings(r, 'model'), ['linux,dummy-virt']);

  const mem = node(r, '/memory@40000000');
  assert.deepEqual(propStrings(mem, 'device_type'), ['memory']);
  assert.deepEqual(propCells(mem, 'reg'), [0, 0x4000_0000, 0, 0x800_0000]);

  const intc = node(r, '/intc@8000000');
  const gicPhandle = propCells(intc, 'phandle')[0];
  assert.deepEqual(propCells(r, 'interrupt-parent'), [gicPhandle]);
  assert.deepEqual(propStrings(intc, 'compatible'), ['arm,gic-v3']);
  assert.deepEqual(propCells(intc, '#interrupt-cells'), [3]);
  assert.deepEqual(propCells(intc, '#redistributor-regions'), [1]);
  assert.deepEqual(propCells(intc, 'reg'), [0, 0x800_0000, 0, 0x1_0000, 0, 0x80a_0000, 0, 0xf6_0000]);
  assert.ok(intc.props.has('interrupt-controller') && intc.props.has('ranges'));
  assert.ok(!intc.props.has('interrupts'), 'no maintenance interrupt without virtualization');
  const its = node(r, '/intc@8000000/its@8080000');
  assert.deepEqual(propStrings(its, 'compatible'), ['arm,gic-v3-its']);
  assert.deepEqual(propCells(its, 'reg'), [0, 0x808_0000, 0, 0x2_0000]);
  assert.deepEqual(propCells(its, '#msi-cells'), [1]);
  assert.ok(its.props.has('msi-controller'));

  const cpu1 = node(r, '/cpus/cpu@1');
  assert.deepEqual(propCells(cpu1, 'reg'), [1]);
  assert.deepEqual(propStrings(cpu1, 'enable-method'), ['psci']);
  assert.deepEqual(propStrings(cpu1, 'device_type'), ['cpu']);
  assert.deepEqual(
    propCells(node(r, '/cpus/cpu-map/socket0/cluster0/core1'), 'cpu'),
    propCells(cpu1, 'phandle'),
  );

  const psci = node(r, '/psci');
  assert.deepEqual(propStrings(psci, 'compatible'), ['arm,psci-1.0', 'arm,psci-0.2', 'arm,psci']);
  assert.deepEqual(propStrings(psci, 'method'), ['hvc']);
  assert.deepEqual(propCells(psci, 'cpu_on'), [0xc4000003]);
  assert.deepEqual(propCells(psci, 'cpu_off'), [0x84000002]);

  const uart = node(r, '/pl011@9000000');
  assert.deepEqual(propStrings(uart, 'compatible'), ['arm,pl011', 'arm,primecell']);
  assert.deepEqual(propCells(uart, 'interrupts'), [0, 1, 4]);
  const clk = propCells(node(r, '/apb-pclk'), 'phandle')[0];
  assert.deepEqual(propCells(uart, 'clocks'), [clk, clk]);

  assert.deepEqual(propCells(node(r, '/timer'), 'interrupts'), [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]);
  const chosen = node(r, '/chosen');
  assert.deepEqual(propStrings(chosen, 'bootargs'), ['console=ttyAMA0 earlycon']);
  assert.deepEqual(propStrings(chosen, 'stdout-path'), ['/pl011@9000000']);
});

test('virt DT: options (1 CPU, virtualization, timer PPIs, bad config)', () => {
  const r = decodeDtb(
    virtDeviceTree({ ...VIRT, cpus: 1, virtualization: true, timerIrqs: { virt: 12 } }),
  ).root;
  assert.ok(!node(r, '/cpus/cpu@0').props.has('enable-method'), 'QEMU: no enable-method for one CPU');
  assert.equal(findNode(r, '/cpus/cpu@1'), undefined);
  assert.deepEqual(propStrings(node(r, '/psci'), 'method'), ['smc']);
  assert.deepEqual(propCells(node(r, '/intc@8000000'), 'interrupts'), [1, 9, 4]);
  assert.deepEqual(propCells(node(r, '/timer'), 'interrupts').slice(6, 9), [1, 12, 4]);
  assert.ok(!node(r, '/chosen').props.has('bootargs'));
  const isCfg = (e: unknown) => e instanceof VgicError && e.code === 'INVALID_CONFIG';
  assert.throws(() => virtDeviceTree({ ...VIRT, cpus: 0 }), isCfg);
  assert.throws(() => virtDeviceTree({ ...VIRT, cpus: 9 }), isCfg);
  assert.throws(() => virtDeviceTree({ ...VIRT, timerIrqs: { hyp: 16 } }), isCfg);
  assert.throws(() => virtDeviceTree({ ...VIRT, bootargs: 'a\0' }), isCfg);
});

test('virt DT: dtc decompiles it without warnings', (t) => {
  if (!have('dtc')) {
    t.skip('dtc not on PATH');
    return;
  }
  for (const cpus of [1, 2, 8]) {
    const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', '-o', '-', '-'], {
      input: virtDeviceTree({ ...VIRT, cpus, bootargs: 'console=ttyAMA0' }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', `dtc warnings for ${cpus} CPUs`);
    assert.match(r.stdout, /compatible = "arm,gic-v3-its";/);
  }
});

for (const gic of [3, 2] as const)
  test(`virt DT, gic-version=${gic}: same nodes, properties and phandles as the DTB QEMU 7.2 dumps`, (t) => {
    if (!have('qemu-system-aarch64')) {
      t.skip('qemu-system-aarch64 not on PATH');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'vgic-virt-dtb-'));
    try {
      for (const cpus of [1, 2, 4]) {
        const kernel = join(dir, 'k.bin');
        writeFileSync(kernel, new Uint8Array(4));
        const initrd = join(dir, 'initrd.bin');
        writeFileSync(initrd, new Uint8Array(4096));
        const out = join(dir, `virt${cpus}.dtb`);
        const args = [
          '-M',
          `virt,gic-version=${gic},dumpdtb=${out}`,
          '-cpu',
          'max',
          '-smp',
          String(cpus),
          '-m',
          '128M',
          '-nographic',
          '-nic',
          'none',
          '-kernel',
          kernel,
          '-append',
          'console=ttyAMA0',
          '-initrd',
          initrd,
        ];
        const r = spawnSync('qemu-system-aarch64', args, { encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, 0, r.stderr);
        const qemu = decodeDtb(new Uint8Array(readFileSync(out))).root;
        // QEMU's initrd for a tiny kernel in 128 MiB: RAM + 64 MiB.
        const ours = decodeDtb(
          virtDeviceTree({
            ...VIRT,
            ...(gic === 2 ? { gicVersion: 2, gicCpuBase: 0x08010000 } : {}),
            cpus,
            bootargs: 'console=ttyAMA0',
            rtcBase: 0x09010000,
            initrd: { start: 0x44000000, end: 0x44001000 },
          }),
        ).root;
        // Nodes QEMU has and the machine does not: exactly the devices left out.
        const left = qemu.children.map((c) => c.name).filter((n) => !ours.children.some((c) => c.name === n));
        for (const n of left) {
          assert.match(n, /^(platform-bus|pmu|virtio_mmio|fw-cfg|pcie|pl061|gpio-keys|flash)\b/, n);
        }
        const compare = (a: DecodedNode, q: DecodedNode | undefined, path: string): void => {
          assert.ok(q, `QEMU has ${path}`);
          // rng-seed and kaslr-seed are random per boot in QEMU; the machine leaves them out.
          const qProps = q.propOrder.filter((p) => !(path === '/chosen' && /^(rng|kaslr)-seed$/.test(p)));
          assert.deepEqual(a.propOrder, qProps, `property order of ${path}`);
          for (const p of a.propOrder) assert.deepEqual(a.props.get(p), q.props.get(p), `${path} ${p}`);
          // The GICv2m MSI frame QEMU puts under a GICv2: the machine has none.
          const kept = (n: string) => (path === '/' ? !left.includes(n) : !/^v2m@/.test(n));
          assert.deepEqual(
            a.children.map((c) => c.name),
            q.children.map((c) => c.name).filter(kept),
            `children of ${path}`,
          );
          for (const c of a.children) {
            compare(
              c,
              q.children.find((x) => x.name === c.name),
              `${path === '/' ? '' : path}/${c.name}`,
            );
          }
        };
        compare(ours, qemu, '/');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
