// Tracing-off overhead, side by side in one process: the micro-benchmarks' eoi and mmio_read_vgic
// loops (src/bench/micro.ts) on two builds of vgic, e.g. main's dist and this branch's, trial by
// trial alternately so both see the same host load. Prints medians and min..max per build.
//
//   node bench/trace-overhead.mjs BASE_DIST HOOKS_DIST [rounds] [iterations]
//
// BASE_DIST / HOOKS_DIST: directories holding src/index.js (a build's dist/).
// CLOCK=cpu times each trial by the process's CPU time (process.cpuUsage: user + system) instead
// of the wall clock: on a host shared with other jobs, time spent descheduled then counts for
// neither build (cache and frequency effects of the other jobs still do).
import { median, runPaired, spread } from './paired.mjs';
import { pathToFileURL } from 'node:url';

const [baseDir, hooksDir, roundsArg, itersArg] = process.argv.slice(2);
if (!baseDir || !hooksDir) {
  console.error('usage: node bench/trace-overhead.mjs BASE_DIST HOOKS_DIST [rounds] [iterations]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 31);
const n = Number(itersArg ?? 200000);
const cpuClock = process.env.CLOCK === 'cpu';
const ICC_EOIR1_EL1 = (3 << 14) | (12 << 7) | (12 << 3) | 1;
const GICD_IIDR = 0x8;
const GICD_BASE = 0x08000000;

async function loops(dir) {
  const lib = await import(pathToFileURL(`${dir}/src/index.js`).href);
  const out = {};
  for (const shared of [true, false]) {
    const gic = lib.Vgic.create({ vcpus: 2, time: 'virtual', shared });
    const g = new lib.GicV3Guest(gic.vcpu(0));
    g.enableDistributor();
    g.enableCpu();
    const c0 = gic.vcpu(0);
    const sfx = shared ? '' : '/unshared';
    out[`eoi${sfx}`] = (k) => {
      for (let i = 0; i < k; i++) c0.writeSysreg(ICC_EOIR1_EL1, 1023);
    };
    out[`mmio_read_vgic${sfx}`] = (k) => {
      for (let i = 0; i < k; i++) c0.readl(GICD_BASE + GICD_IIDR);
    };
  }
  return out;
}

const builds = { base: await loops(baseDir), hooks: await loops(hooksDir) };
const { names, ns } = runPaired(builds, ['base', 'hooks'], rounds, n, cpuClock);
const rows = [];
for (const t of names) {
  const b = ns[`base ${t}`];
  const h = ns[`hooks ${t}`];
  // Paired: each round's hooks/base ratio, so a loaded moment affects both sides of a pair.
  const ratios = b.map((x, i) => h[i] / x);
  rows.push({
    test: t,
    base: spread(b),
    hooks: spread(h),
    'median ratio': `${((median(ratios) - 1) * 100).toFixed(1)}%`,
    'min vs min': `${((Math.min(...h) / Math.min(...b) - 1) * 100).toFixed(1)}%`,
  });
}
console.log(`ns per operation (${cpuClock ? 'CPU time' : 'wall clock'}), ${rounds} alternating rounds of ${n} calls`);
console.table(rows);
