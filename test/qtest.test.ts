import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GITS_IIDR_VALUE } from '../src/arch/its.ts';
import { QtestSession } from '../src/cli/qtest.ts';
import { E_ITS_CODES, GIC_IIDR, Vgic } from '../src/index.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function session(opts: Parameters<typeof Vgic.create>[0] = {}) {
  const q = new QtestSession(Vgic.create({ ram: { size: 1 << 20 }, ...opts }));
  return (line: string) => q.execute(line);
}

describe('qtest protocol', () => {
  test('reads answer OK with 16 hex digits, writes answer OK', () => {
    const q = session();
    assert.equal(q('readl 0x08000008'), 'OK 0x000000004b00343b');
    assert.equal(q('writel 0x08000000 3'), 'OK');
    assert.equal(q('readl 0x08000000'), 'OK 0x0000000000000053');
    assert.equal(q('readb 0x0800ffe8'), 'OK 0x0000000000000000', 'PIDR2 is 32-bit only: a byte read is RAZ');
    assert.equal(q('readl 0x0800ffe8'), 'OK 0x000000000000003b');
  });

  test('RAM accesses of every width, decimal and hex numbers', () => {
    const q = session();
    assert.equal(q('writeq 0x40000000 0x1122334455667788'), 'OK');
    assert.equal(q('readq 0x40000000'), 'OK 0x1122334455667788');
    assert.equal(q('readl 0x40000004'), 'OK 0x0000000011223344');
    assert.equal(q('readw 0x40000002'), 'OK 0x0000000000005566');
    assert.equal(q('readb 0x40000000'), 'OK 0x0000000000000088');
    assert.equal(q(`writeb ${0x40000010} 255`), 'OK');
    assert.equal(q('readb 0x40000010'), 'OK 0x00000000000000ff');
  });

  test('unmapped addresses read zero and are counted', () => {
    const q = session();
    assert.equal(q('readl 0x1000'), 'OK 0x0000000000000000');
    assert.equal(q('writel 0x1000 1'), 'OK');
    assert.equal(q('readq 0xffffffffffffff00'), 'OK 0x0000000000000000');
    const stats = JSON.parse(q('stats').slice(3));
    assert.equal(stats.mmioUnmapped, 2);
  });

  test('system registers by name (any case) and by generic encoding', () => {
    const q = session();
    assert.equal(q('sysreg_write 0 ICC_PMR_EL1 0xff'), 'OK');
    assert.equal(q('sysreg_read 0 icc_pmr_el1'), 'OK 0x00000000000000f8');
    assert.equal(q('sysreg_read 0 s3_0_c4_c6_0'), 'OK 0x00000000000000f8');
    assert.equal(q('sysreg_read 0 ICC_SRE_EL1'), 'OK 0x0000000000000007');
    assert.equal(q('sysreg_read 0 ICC_IAR1_EL1'), 'OK 0x00000000000003ff');
  });

  test('an SPI line drives delivery end to end', () => {
    const q = session({ vcpus: 2 });
    for (const l of [
      'writel 0x08000000 2', // EnableGrp1
      'writel 0x08000104 1', // ISENABLER1: SPI 32
      'writeq 0x08006100 1', // IROUTER32 → vCPU 1 (Aff0 = 1)
      'sysreg_write 1 ICC_PMR_EL1 0xf0',
      'sysreg_write 1 ICC_IGRPEN1_EL1 1',
    ]) {
      assert.equal(q(l), 'OK', l);
    }
    assert.equal(q('irq_line 32 1'), 'OK');
    assert.equal(q('sysreg_read 0 ICC_IAR1_EL1'), 'OK 0x00000000000003ff', 'not routed to vCPU 0');
    assert.equal(q('sysreg_read 1 ICC_HPPIR1_EL1'), 'OK 0x0000000000000020');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x0000000000000020');
    assert.equal(q('sysreg_read 1 ICC_RPR_EL1'), 'OK 0x0000000000000000');
    assert.equal(q('irq_line 32 0'), 'OK');
    assert.equal(q('sysreg_write 1 ICC_EOIR1_EL1 32'), 'OK');
    assert.equal(q('sysreg_read 1 ICC_RPR_EL1'), 'OK 0x00000000000000ff');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x00000000000003ff');
  });

  test('SGIs through ICC_SGI1R_EL1 and a PPI line', () => {
    const q = session({ vcpus: 2 });
    assert.equal(q('writel 0x08000000 2'), 'OK');
    assert.equal(q('cpu 1'), 'OK');
    assert.equal(q('writel 0x080d0100 0xffffffff'), 'OK', "vCPU 1's GICR_ISENABLER0 via its own frame");
    assert.equal(q('sysreg_write 1 ICC_PMR_EL1 0xf0'), 'OK');
    assert.equal(q('sysreg_write 1 ICC_IGRPEN1_EL1 1'), 'OK');
    assert.equal(q('sysreg_write 0 ICC_SGI1R_EL1 0x05000002'), 'OK', 'SGI 5 to Aff0 = 1');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x0000000000000005');
    assert.equal(q('sysreg_write 1 ICC_EOIR1_EL1 5'), 'OK');
    assert.equal(q('ppi_line 1 20 1'), 'OK');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x0000000000000014');
  });

  test('virtual time: clock_step and wfi on the timer', () => {
    const q = session({ time: 'virtual' });
    assert.equal(q('clock_read'), 'OK 0x0000000000000000');
    assert.equal(q('clock_step 1000'), 'OK 0x00000000000003e8');
    assert.equal(q('sysreg_read 0 CNTVCT_EL0'), 'OK 0x00000000000003e8');
    assert.equal(q('writel 0x080b0100 0x08000000'), 'OK', 'enable PPI 27');
    assert.equal(q('sysreg_write 0 ICC_PMR_EL1 0xf0'), 'OK');
    assert.equal(q('sysreg_write 0 ICC_IGRPEN1_EL1 1'), 'OK');
    assert.equal(q('writel 0x08000000 2'), 'OK');
    assert.equal(q('sysreg_write 0 CNTV_CVAL_EL0 5000'), 'OK');
    assert.equal(q('sysreg_write 0 CNTV_CTL_EL0 1'), 'OK');
    assert.equal(q('wfi 0 100'), 'OK irq');
    assert.equal(q('clock_read'), 'OK 0x0000000000001388');
    assert.equal(q('sysreg_read 0 ICC_IAR1_EL1'), 'OK 0x000000000000001b');
    assert.equal(q('sysreg_read 0 CNTV_CTL_EL0'), 'OK 0x0000000000000005');
  });

  test('bad lines answer ERR and the session goes on', () => {
    const q = session();
    const bad = [
      'bogus',
      'readl',
      'readl zz',
      'readl 0x08000000 5',
      'writeb 0x40000000 0x100',
      'writel 0x40000000 -1',
      'sysreg_read 0 ICC_NOPE_EL1',
      'sysreg_read 9 ICC_PMR_EL1',
      'sysreg_write 0 ICC_PMR_EL1 0x10000000000000000',
      'irq_line 1020 1',
      'irq_line 31 1',
      'irq_line 0xffffffffff 1',
      'irq_line 32 2',
      'ppi_line 0 27 1',
      'ppi_line 0 5 1',
      'cpu 1',
      'clock_step 5',
      'wfi',
      'readq 0x10000000000000000',
    ];
    for (const l of bad) assert.match(q(l), /^ERR /, l);
    assert.equal(q(''), '');
    assert.equal(q('# a comment'), '');
    assert.equal(q('readl 0x08000008'), 'OK 0x000000004b00343b', 'still alive');
  });

  test('the vgic qtest process: stdin to stdout, survives garbage, ends on quit', () => {
    const input = ['readl 0x08000008', '\u0000\u00ff garbage', 'help', 'quit', 'readl 0x08000008', ''].join(
      '\n',
    );
    const r = spawnSync(process.execPath, [MAIN, 'qtest', '--vcpus', '2', '--ram-size', '1M'], {
      input,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'OK 0x000000004b00343b');
    assert.match(lines[1], /^ERR unknown command/);
    assert.equal(lines.at(-1), 'OK', 'quit answers OK and nothing after it runs');
    assert.equal(lines.filter((l) => l.startsWith('OK 0x')).length, 1);
  });

  test('the CLI rejects bad options with a message', () => {
    const r = spawnSync(process.execPath, [MAIN, 'qtest', '--vcpus', 'many'], {
      input: '',
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--vcpus takes a whole number/);
    const r2 = spawnSync(process.execPath, [MAIN, 'qtest', '--vcpus', '1000'], {
      input: '',
      encoding: 'utf8',
    });
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /--vcpus takes a whole number 1\.\.512, got '1000'/);
  });
});

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
const hex16 = (v: number | bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

/** A command as 4 doublewords written into guest RAM with qtest writeq lines. */
function cmdLines(at: number, dws: readonly bigint[]): string[] {
  return dws.map((dw, j) => `writeq ${hex(at + 8 * j)} ${hex(dw)}`);
}

describe('qtest and the ITS', () => {
  // Guest RAM (1 MiB at 0x40000000): property table, two pending tables, device table,
  // collection table, command queue, one ITT. GICR of vCPU 1 at 0x080c0000, ITS 0 at 0x08080000.
  const RAM = 0x40000000;
  const PROP = RAM;
  const PEND = [RAM + 0x10000, RAM + 0x20000];
  const DEVT = RAM + 0x30000;
  const COLLT = RAM + 0x40000;
  const CMDQ = RAM + 0x50000;
  const ITT = RAM + 0x60000;
  const GICR = [0x080a0000, 0x080c0000];
  const ITS = 0x08080000;
  const LPI = 8200; // 0x2008
  const V = 1n << 63n;
  const MAPD = [0x08n | (2n << 32n), 4n, BigInt(ITT) | V, 0n]; // DeviceID 2, 32 events
  const MAPC = [0x09n, 0n, 3n | (1n << 16n) | V, 0n]; // ICID 3 → processor 1
  const MAPTI = [0x0an | (2n << 32n), 20n | (BigInt(LPI) << 32n), 3n, 0n]; // event 20 → LPI 8200
  const SYNC = [0x05n, 0n, 1n << 16n, 0n];
  const MAPTI_NO_DEVICE = [0x0an | (7n << 32n), 1n | (BigInt(LPI + 1) << 32n), 3n, 0n];

  function setup() {
    const q = session({ vcpus: 2, its: 1 });
    const run = (lines: readonly string[]) => {
      for (const l of lines) assert.equal(q(l), 'OK', l);
    };
    run([
      'writel 0x08000000 2', // GICD_CTLR.EnableGrp1
      `writeb ${hex(PROP + LPI - 8192)} 0xa3`, // priority 0xa0, Group 1, enabled
      `writeq ${hex(GICR[0] + 0x70)} ${hex(PROP | 13)}`, // PROPBASER: IDbits 13 (14 bits)
      ...GICR.map((rd, v) => `writeq ${hex(rd + 0x78)} ${hex(BigInt(PEND[v]) | (1n << 62n))}`), // PTZ
      ...GICR.map((rd) => `writel ${hex(rd)} 1`), // GICR_CTLR.EnableLPIs
      `writeq ${hex(ITS + 0x100)} ${hex(BigInt(DEVT | 0x200) | V)}`, // BASER0: 1 page of 64K
      `writeq ${hex(ITS + 0x108)} ${hex(BigInt(COLLT | 0x200) | V)}`, // BASER1
      `writeq ${hex(ITS + 0x80)} ${hex(BigInt(CMDQ) | V)}`, // CBASER: one 4K page
      `writeq ${hex(ITS + 0x88)} 0`, // CWRITER
      'sysreg_write 1 ICC_PMR_EL1 0xf0',
      'sysreg_write 1 ICC_IGRPEN1_EL1 1',
    ]);
    return { q, run };
  }

  test('LPI tables and an ITS programmed through write/read; msi delivers the LPI', () => {
    const { q, run } = setup();
    assert.equal(q('msi 0x08090040 2 20'), 'OK busy', 'the ITS is still disabled');
    assert.equal(q(`readl ${hex(ITS)}`), 'OK 0x0000000080000000', 'GITS_CTLR: quiescent, disabled');
    run([`writel ${hex(ITS)} 1`]);
    assert.equal(q(`readl ${hex(ITS)}`), 'OK 0x0000000080000001', 'GITS_CTLR.Enabled');
    run([...cmdLines(CMDQ, MAPD), ...cmdLines(CMDQ + 32, MAPC), ...cmdLines(CMDQ + 64, MAPTI)]);
    run([...cmdLines(CMDQ + 96, SYNC), `writeq ${hex(ITS + 0x88)} 0x80`]);
    assert.equal(q(`readq ${hex(ITS + 0x90)}`), 'OK 0x0000000000000080', 'CREADR caught up with CWRITER');
    assert.match(q('its_errors 0'), / errors=0 commands=4 /);
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x00000000000003ff', 'nothing pending yet');

    assert.equal(q('msi 0x08090040 2 20'), 'OK delivered');
    assert.equal(q('sysreg_read 0 ICC_IAR1_EL1'), 'OK 0x00000000000003ff', 'collection 3 is on vCPU 1');
    assert.equal(q('sysreg_read 1 ICC_HPPIR1_EL1'), `OK ${hex16(LPI)}`);
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), `OK ${hex16(LPI)}`);
    assert.equal(q('sysreg_read 1 ICC_RPR_EL1'), 'OK 0x00000000000000a0');
    assert.equal(q(`sysreg_write 1 ICC_EOIR1_EL1 ${LPI}`), 'OK');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), 'OK 0x00000000000003ff');
    // The same MSI again, hex arguments: served by the translation cache this time.
    assert.equal(q('msi 0x08090040 0x2 0x14'), 'OK delivered');
    assert.equal(q('sysreg_read 1 ICC_IAR1_EL1'), `OK ${hex16(LPI)}`);

    assert.equal(q('msi 0x08090040 2 21'), 'OK blocked', 'event 21 is not mapped');
    assert.equal(q('msi 0x08090040 9 20'), 'OK blocked', 'device 9 is not mapped');
    assert.equal(q('msi 0x08090040 2 0xffffffff'), 'OK blocked');
    assert.equal(q('msi 0x40000000 2 20'), 'OK blocked', 'not a doorbell');
    assert.equal(JSON.parse(q('stats').slice(3)).msiNoIts, 1);
    const st = q('its_errors 0');
    assert.match(st, / msiBlocked=3 msiBusy=1$/);
  });

  test('its_errors: every counter as NAME=count on one line, a bad command counted', () => {
    const { q, run } = setup();
    const fresh = q('its_errors 0');
    assert.equal(fresh.split('\n').length, 1);
    const pairs = fresh.split(' ');
    assert.equal(pairs[0], 'OK');
    assert.deepEqual(
      pairs.slice(1).map((p) => p.split('=')[0]),
      [
        ...E_ITS_CODES.map(([n]) => n),
        'errors',
        'commands',
        'commandReadFaults',
        'unknownCommands',
        'tableFaults',
        'cacheMisses',
        'msiBlocked',
        'msiBusy',
      ],
    );
    assert.ok(
      pairs.slice(1).every((p) => /^\w+=0$/.test(p)),
      fresh,
    );

    run([
      `writel ${hex(ITS)} 1`,
      ...cmdLines(CMDQ, MAPTI_NO_DEVICE),
      ...cmdLines(CMDQ + 32, [0x2an, 0n, 0n, 0n]),
    ]);
    run([`writeq ${hex(ITS + 0x88)} 0x40`]);
    assert.equal(q(`readq ${hex(ITS + 0x90)}`), 'OK 0x0000000000000040', 'failed commands do not stall');
    const after = q('its_errors 0');
    assert.match(after, / E_ITS_MAPTI_UNMAPPED_DEVICE=1 /);
    assert.match(after, / errors=1 commands=2 commandReadFaults=0 unknownCommands=1 /);
  });

  test('bad msi and its_errors lines answer ERR', () => {
    const { q } = setup();
    for (const l of [
      'msi',
      'msi 0x08090040 2',
      'msi 0x08090040 2 20 1',
      'msi 0x08090040 two 20',
      'msi 0x08090040 2 -1',
      'msi 0x08090040 0x100000000 20',
      'msi 0x08090040 2 4294967296',
      'msi 0x10000000000000000 2 20',
      'its_errors',
      'its_errors 1',
      'its_errors x',
      'its_errors 0 0',
    ]) {
      assert.match(q(l), /^ERR /, l);
    }
    const none = session();
    assert.match(none('its_errors 0'), /^ERR .*--its/);
    assert.equal(none('msi 0x08090040 0 0'), 'OK blocked', "no ITS: the doorbell is nobody's");
    assert.equal(q('msi 0x08090040 2 20'), 'OK busy', 'still alive');
  });

  test('vgic qtest --its 2: ITS 1 at 0x080a0000, the redistributors after it', () => {
    const input = [
      'readl 0x080a0004', // ITS 1's GITS_IIDR
      'readl 0x08080004', // ITS 0's
      'readq 0x080c0008', // GICR_TYPER of vCPU 0: PLPIS
      'readl 0x080c0004', // GICR_IIDR
      'readq 0x080e0008', // vCPU 1's: Processor_Number 1, Last, PLPIS, Aff0 1
      'msi 0x080b0040 0 0', // ITS 1's doorbell: disabled
      'its_errors 1',
      'help',
      'quit',
    ].join('\n');
    const r = spawnSync(process.execPath, [MAIN, 'qtest', '--its', '2', '--vcpus', '2', '--ram-size', '1M'], {
      input,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const iidr = `OK ${hex16(GITS_IIDR_VALUE)}`;
    assert.deepEqual(lines.slice(0, 7), [
      iidr,
      iidr,
      'OK 0x0000000000000001',
      `OK ${hex16(GIC_IIDR)}`,
      'OK 0x0000000100000111',
      'OK busy',
      lines[6],
    ]);
    assert.match(lines[6], /^OK E_ITS_\w+=0 .* msiBusy=1$/);
    assert.ok(
      lines.some((l) => /^# msi DOORBELL DEVID EVENTID/.test(l)),
      'help lists msi',
    );
    assert.ok(
      lines.some((l) => /^# its_errors ITS/.test(l)),
      'help lists its_errors',
    );
  });

  test('the CLI checks --its and documents it', () => {
    for (const [arg, msg] of [
      ['17', /--its takes a whole number 0\.\.16, got '17'/],
      ['x', /--its takes a whole number/],
    ] as const) {
      const r = spawnSync(process.execPath, [MAIN, 'qtest', '--its', arg], { input: '', encoding: 'utf8' });
      assert.equal(r.status, 2, arg);
      assert.match(r.stderr, msg);
    }
    const h = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    assert.match(h.stdout, /--its N\s+ITSes:[\s\S]*?\(0\.\.16; default 0\)/);
    assert.match(h.stdout, /0x08080000/);
  });
});

describe('vgic demo', () => {
  test('prints each vCPU acknowledging its interrupts in priority order', () => {
    const r = spawnSync(process.execPath, [MAIN, 'demo'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const blocks = r.stdout.split(/^vCPU (\d) acknowledged/m);
    assert.equal(blocks.length, 1 + 2 * 4, 'four vCPU sections');
    for (let v = 0; v < 4; v++) {
      const rows = blocks[2 + 2 * v]
        .split('\n')
        .map((l) => /^\s+\d+\s+(\d+)\s+(SGI|PPI|SPI)\s+0x([0-9a-f]{2})/.exec(l))
        .filter((m) => m !== null);
      assert.ok(rows.length >= 4, `vCPU ${v} acknowledged interrupts`);
      const intids = rows.map((m) => Number(m[1]));
      assert.ok(intids.includes(3), `vCPU ${v} got its self-SGI 3`);
      assert.equal(intids.includes(2), v !== 2, 'SGI 2 is broadcast by vCPU 2 to all others');
      // Taken with IRQs unmasked in one go: in priority order, except the timer which comes later.
      const prios = rows.filter((m) => m[1] !== '27').map((m) => Number.parseInt(m[3], 16));
      assert.deepEqual(
        prios,
        [...prios].sort((a, b) => a - b),
        `vCPU ${v} in priority order`,
      );
    }
    assert.match(blocks[2 + 2 * 3], /\s27\s+PPI/, 'vCPU 3 woke from WFI on its timer');
  });
});
