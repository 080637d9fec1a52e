/**
 * `vgic qtest --gic-version 2`: one session (the CLI process, stdin/stdout) drives every GICv2
 * register: the distributor (CTLR, TYPER, IIDR, IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER,
 * IPRIORITYR, ITARGETSR, ICFGR, SGIR, CPENDSGIR, SPENDSGIR, PIDR2) and the CPU interface (CTLR,
 * PMR, BPR, IAR, EOIR, RPR, HPPIR, ABPR, AIAR, AEOIR, AHPPIR, APR0, NSAPR0, IIDR, DIR).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const D = 0x08000000;
const C = 0x08010000;
const h = (n: number) => `0x${n.toString(16)}`;
const ok = (n: number) => `OK 0x${n.toString(16).padStart(16, '0')}`;

test('a GICv2 qtest session drives every distributor and CPU interface register', () => {
  // [command, expected answer]
  const script: [string, string][] = [
    [`readl ${h(D + 0x004)}`, ok(0x27)], // TYPER: 2 CPUs (CPUNumber 1), 256 INTIDs
    [`readl ${h(D + 0x008)}`, ok(0x4b00343b)], // IIDR
    [`readl ${h(D + 0xfe8)}`, ok(0x2b)], // PIDR2: ArchRev 2
    [`writel ${h(D)} 1`, 'OK'],
    [`readl ${h(D)}`, ok(1)], // CTLR.Enable
    [`readl ${h(D + 0x080)}`, ok(0)], // IGROUPR0: Group 0
    [`readl ${h(D + 0x100)}`, ok(0xffff)], // ISENABLER0: SGIs enabled
    [`writel ${h(D + 0x180)} 0x10`, 'OK'], // ICENABLER0: SGI 4 off
    [`readl ${h(D + 0x100)}`, ok(0xffef)],
    [`writel ${h(D + 0x100)} 0x10`, 'OK'],
    [`writeb ${h(D + 0x400 + 40)} 0x48`, 'OK'], // IPRIORITYR byte: 5 bits kept
    [`readl ${h(D + 0x400 + 40)}`, ok(0x48)],
    [`readl ${h(D + 0x800)}`, ok(0x01010101)], // ITARGETSR0 (CPU 0's bank)
    [`writeb ${h(D + 0x800 + 40)} 2`, 'OK'], // SPI 40 → CPU 1
    [`readb ${h(D + 0x800 + 40)}`, ok(2)],
    [`writel ${h(D + 0xc08)} 0x20000`, 'OK'], // ICFGR2: SPI 40 edge
    [`readl ${h(D + 0xc08)}`, ok(0x20000)],
    [`writel ${h(D + 0x104)} 0x100`, 'OK'], // ISENABLER1: SPI 40
    [`writel ${h(D + 0x204)} 0x100`, 'OK'], // ISPENDR1: SPI 40 pending
    [`readl ${h(D + 0x204)}`, ok(0x100)],
    [`writel ${h(D + 0x284)} 0x100`, 'OK'], // ICPENDR1
    [`readl ${h(D + 0x204)}`, ok(0)],
    [`writel ${h(D + 0x304)} 0x100`, 'OK'], // ISACTIVER1
    [`readl ${h(D + 0x304)}`, ok(0x100)],
    [`writel ${h(D + 0x384)} 0x100`, 'OK'], // ICACTIVER1
    [`readl ${h(D + 0x384)}`, ok(0)],
    [`writel ${h(D + 0x080 + 4)} 0x200`, 'OK'], // IGROUPR1: SPI 41 Group 1
    [`readl ${h(D + 0x084)}`, ok(0x200)],
    // CPU interface of CPU 0
    [`writel ${h(C + 0x04)} 0xff`, 'OK'], // PMR
    [`readl ${h(C + 0x04)}`, ok(0xf8)],
    [`writel ${h(C + 0x08)} 4`, 'OK'], // BPR
    [`readl ${h(C + 0x08)}`, ok(4)],
    [`writel ${h(C + 0x1c)} 5`, 'OK'], // ABPR
    [`readl ${h(C + 0x1c)}`, ok(5)],
    [`writel ${h(C + 0x08)} 2`, 'OK'],
    [`writel ${h(C)} 0x3`, 'OK'], // CTLR: both groups
    [`readl ${h(C)}`, ok(3)],
    [`readl ${h(C + 0xfc)}`, ok(0x04b2043b)], // IIDR
    [`readl ${h(C + 0x0c)}`, ok(1023)], // IAR idle
    [`readl ${h(C + 0x14)}`, ok(0xff)], // RPR idle
    // SGI 3 from CPU 1 to CPU 0 (GICD_SGIR on CPU 1), with CPU 1's source in IAR
    ['cpu 1', 'OK'],
    [`writel ${h(D + 0xf00)} 0x10003`, 'OK'],
    ['cpu 0', 'OK'],
    [`readl ${h(D + 0xf10)}`, ok(0x02000000)], // CPENDSGIR0: SGI 3 from CPU 1
    [`writel ${h(D + 0xf20)} 0x01000000`, 'OK'], // SPENDSGIR0: and from CPU 0
    [`readl ${h(D + 0xf20)}`, ok(0x03000000)],
    [`readl ${h(C + 0x18)}`, ok(3)], // HPPIR: SGI 3 from CPU 0 first
    [`readl ${h(C + 0x0c)}`, ok(3)], // IAR
    [`readl ${h(C + 0x14)}`, ok(0)], // RPR: priority 0
    [`readl ${h(C + 0xd0)}`, ok(1)], // APR0
    [`readl ${h(C + 0xe0)}`, ok(0)], // NSAPR0 RAZ
    [`writel ${h(C + 0x10)} 3`, 'OK'], // EOIR
    [`readl ${h(C + 0x0c)}`, ok((1 << 10) | 3)], // IAR: the source CPU 1
    [`writel ${h(C + 0x10)} ${h((1 << 10) | 3)}`, 'OK'],
    // Group 1 SPI 41: IAR reads 1022 (AckCtl = 0), AHPPIR/AIAR/AEOIR take it
    [`writel ${h(D + 0x104)} 0x200`, 'OK'],
    [`writeb ${h(D + 0x800 + 41)} 1`, 'OK'],
    [`writel ${h(D + 0x204)} 0x200`, 'OK'],
    [`readl ${h(C + 0x0c)}`, ok(1022)],
    [`readl ${h(C + 0x28)}`, ok(41)], // AHPPIR
    [`readl ${h(C + 0x20)}`, ok(41)], // AIAR
    [`writel ${h(C + 0x24)} 41`, 'OK'], // AEOIR
    [`readl ${h(D + 0x304)}`, ok(0)],
    // EOImode 1: EOIR drops priority, DIR deactivates
    [`writel ${h(C)} 0x203`, 'OK'],
    [`writel ${h(D + 0xf00)} 0x2000005`, 'OK'], // SGIR filter 2: SGI 5 to self
    [`readl ${h(C + 0x0c)}`, ok(5)],
    [`writel ${h(C + 0x10)} 5`, 'OK'],
    [`readl ${h(D + 0x300)}`, ok(0x20)],
    [`writel ${h(C + 0x1000)} 5`, 'OK'], // DIR
    [`readl ${h(D + 0x300)}`, ok(0)],
    // SPI 40 went to CPU 1
    ['cpu 1', 'OK'],
    [`writel ${h(C + 0x04)} 0xf0`, 'OK'],
    [`writel ${h(C)} 1`, 'OK'],
    [`writel ${h(D + 0x204)} 0x100`, 'OK'],
    [`readl ${h(C + 0x0c)}`, ok(40)],
    [`writel ${h(C + 0x10)} 40`, 'OK'],
    ['sysreg_read 0 ICC_SRE_EL1', ok(0)], // no system-register interface
  ];
  const r = spawnSync(
    process.execPath,
    [MAIN, 'qtest', '--gic-version', '2', '--vcpus', '2', '--ram-size', '0'],
    { input: `${script.map(([c]) => c).join('\n')}\nstats\nquit\n`, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  script.forEach(([cmd, want], i) => {
    assert.equal(lines[i], want, `${cmd}`);
  });
  const stats = JSON.parse(lines[script.length].slice(3));
  assert.equal(stats.mmioBadAccess, 0);
  assert.equal(stats.sysregUnknown, 1);
});

test('qtest refuses --gic-version 4 and a GICv2 with 9 vCPUs', () => {
  for (const args of [
    ['--gic-version', '4'],
    ['--gic-version', '2', '--vcpus', '9'],
  ]) {
    const r = spawnSync(process.execPath, [MAIN, 'qtest', ...args], { input: '', encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /gic-version|at most 8/);
  }
});

test('vgic run --gic-version: 2 or 3 reach the machine options, anything else is a usage error', async () => {
  const { parseRunArgs, RunUsageError } = await import('../src/cli/run.ts');
  assert.equal(parseRunArgs(['k.elf', '--gic-version', '2']).options.gicVersion, 2);
  assert.equal(parseRunArgs(['k.elf']).options.gicVersion, 3);
  assert.throws(() => parseRunArgs(['k.elf', '--gic-version', '1']), RunUsageError);
});
