// Paired, alternating timing of two builds of the same loops (used by trace-overhead.mjs and
// msi-hit-overhead.mjs): each round runs every loop on both builds, in alternating order, so a
// loaded moment of the host falls on both sides of a pair. CLOCK=cpu times CPU, not wall clock.

/** Runs `rounds` rounds of `n` iterations of every loop on builds[a] and builds[b]; ns per iteration. */
export function runPaired(builds, [a, b], rounds, n, cpuClock) {
  const names = Object.keys(builds[a]);
  const ns = {};
  for (const x of [a, b]) for (const t of names) ns[`${x} ${t}`] = [];
  for (const x of [a, b]) for (const t of names) builds[x][t](n); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const t of names) {
      for (const x of r % 2 === 0 ? [a, b] : [b, a]) {
        if (cpuClock) {
          const c0 = process.cpuUsage();
          builds[x][t](n);
          const c = process.cpuUsage(c0);
          ns[`${x} ${t}`].push(((c.user + c.system) * 1000) / n);
        } else {
          const t0 = process.hrtime.bigint();
          builds[x][t](n);
          ns[`${x} ${t}`].push(Number(process.hrtime.bigint() - t0) / n);
        }
      }
    }
  }
  return { names, ns };
}

export const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};

/** "median (min..max)" of a sample. */
export const spread = (v) =>
  `${median(v).toFixed(2)} (${Math.min(...v).toFixed(2)}..${Math.max(...v).toFixed(2)})`;
