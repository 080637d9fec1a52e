// The MSI fast path (a translation-cache hit), side by side in one process on two builds of vgic,
// e.g. a build without translation-cache statistics and one with them: lpi-bench's "inject" loop
// (signalMsi on a warm cache, every LPI already pending: hit + coalesce) and a hit that sets the
// LPI pending (each MSI's LPI acknowledged and EOIed before the next round), shared and unshared,
// trial by trial alternately so both builds see the same host load.
//
//   node bench/msi-hit-overhead.mjs BASE_DIST NEW_DIST [rounds] [iterations]
//
// BASE_DIST / NEW_DIST: directories holding src/index.js (a build's dist/). CLOCK=cpu times
// trials by process CPU time instead of the wall clock (as bench/trace-overhead.mjs).
import { median, runPaired, spread } from './paired.mjs';
import { pathToFileURL } from 'node:url';

const [baseDir, newDir, roundsArg, itersArg] = process.argv.slice(2);
if (!baseDir || !newDir) {
  console.error('usage: node bench/msi-hit-overhead.mjs BASE_DIST NEW_DIST [rounds] [iterations]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 31);
const n = Number(itersArg ?? 200000);
const cpuClock = process.env.CLOCK === 'cpu';
const ICC_IAR1_EL1 = (3 << 14) | (12 << 7) | (12 << 3) | 0;
const ICC_EOIR1_EL1 = (3 << 14) | (12 << 7) | (12 << 3) | 1;
const EVENTS = 16;

async function loops(dir) {
  const lib = await import(pathToFileURL(`${dir}/src/index.js`).href);
  const out = {};
  for (const shared of [true, false]) {
    const gic = lib.Vgic.create({ vcpus: 1, lrs: 16, its: 1, ram: { size: 32 << 20 }, time: 'virtual', shared });
    const cpu = gic.vcpu(0);
    const g = new lib.GicV3Guest(cpu);
    g.enableDistributor();
    g.enableCpu();
    const alloc = new lib.GuestAllocator(0x40000000, 32 << 20);
    const lpi = new lib.LpiTables(cpu, alloc, 1, 14);
    lpi.fillConfig();
    lpi.program(g.rd, 0);
    lpi.enable(g.rd);
    const its = new lib.ItsGuest(cpu, alloc);
    its.init();
    its.enable();
    its.createDevice(0, 4);
    its.mapc(0, 0);
    for (let e = 0; e < EVENTS; e++) if (!its.mapti(0, e, 8192 + e, 0)) throw new Error('MAPTI');
    const doorbell = its.doorbell;
    const sfx = shared ? '' : '/unshared';
    let e = 0;
    out[`inject (hit, coalesced)${sfx}`] = (k) => {
      for (let i = 0; i < k; i++) {
        gic.signalMsi({ doorbell, devid: 0, eventid: e });
        e = e + 1 === EVENTS ? 0 : e + 1;
      }
    };
    // 16 MSIs (each a hit that sets its LPI pending), then 16 IAR/EOIR: per LPI.
    out[`batch=16 (hit, new)${sfx}`] = (k) => {
      for (let i = 0; i < k; i += 16) {
        for (let j = 0; j < 16; j++) gic.signalMsi({ doorbell, devid: 0, eventid: j });
        for (let j = 0; j < 16; j++) cpu.writeSysreg(ICC_EOIR1_EL1, cpu.readSysreg(ICC_IAR1_EL1));
      }
    };
  }
  return out;
}

const builds = { base: await loops(baseDir), new: await loops(newDir) };
const { names, ns } = runPaired(builds, ['base', 'new'], rounds, n, cpuClock);
const rows = [];
for (const t of names) {
  const b = ns[`base ${t}`];
  const h = ns[`new ${t}`];
  const ratios = b.map((x, i) => h[i] / x);
  const rs = [...ratios].sort((x, y) => x - y);
  rows.push({
    test: t,
    base: spread(b),
    new: spread(h),
    'median ratio': `${((median(ratios) - 1) * 100).toFixed(1)}%`,
    'ratio p25..p75': `${((rs[Math.floor(rs.length / 4)] - 1) * 100).toFixed(1)}..${((rs[Math.floor((3 * rs.length) / 4)] - 1) * 100).toFixed(1)}%`,
  });
}
console.log(`ns per MSI (${cpuClock ? 'CPU time' : 'wall clock'}), ${rounds} alternating rounds of ${n} MSIs`);
console.table(rows);
