import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { QtestSession } from '../src/cli/qtest.ts';
import { Vgic } from '../src/index.ts';

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
    assert.match(r2.stderr, /vcpus must be an integer in 1\.\.512/);
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
