// Wall time of the analytic models at the paper's sizes (issue #8):
//   Gaussian, M = 1000 samples, 1000 generations, 100 runs (every sample drawn, and the O(1) statistics sampler);
//   GMM, 2 full-covariance components, N = 1000 points, 2000 generations, EM tol 1e-5 / at most 2000 iterations.
// Usage: npx tsx scripts/bench-theory.ts [--quick]
import { cpus, loadavg } from 'node:os';
import { simulateGaussian } from '../theory/gaussian.js';
import { simulateGmm } from '../theory/gmm.js';

const quick = process.argv.includes('--quick');
const scale = quick ? 10 : 1;

// CPU time is printed too: on a shared machine wall time mostly measures the neighbours.
function time<T>(label: string, f: () => T): T {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = f();
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  process.stdout.write(`${label.padEnd(58)} wall ${wall.toFixed(2)} s, cpu ${((c.user + c.system) / 1e6).toFixed(2)} s\n`);
  return r;
}

process.stdout.write(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
const G = 1000 / scale;
const g = time(`gaussian M=1000, ${G} generations, 100 runs, all samples`, () =>
  simulateGaussian({ samples: 1000, generations: G, runs: 100, seed: 0, quiet: true }),
);
const gs = time(`gaussian M=1000, ${G} generations, 100 runs, statistics`, () =>
  simulateGaussian({ samples: 1000, generations: G, runs: 100, seed: 0, sampler: 'statistics', quiet: true }),
);
const gmmG = 2000 / scale;
const m = time(`gmm N=1000, ${gmmG} generations, 1 run`, () => simulateGmm({ samples: 1000, generations: gmmG, runs: 1, seed: 0, quiet: true }));
const last = (r: typeof g) => r.stats[r.stats.length - 1]!;
const iters = m.records.map((r) => r.iterations);
process.stdout.write(
  `  gaussian generation ${G}: variance median ${last(g).varMedian.toFixed(3)} (statistics sampler ${last(gs).varMedian.toFixed(3)}), ` +
    `mean ${last(g).varMean.toFixed(3)}\n` +
    `  gmm: L2 to generation 0 at ${gmmG}: ${m.l2ToGen0[gmmG]!.toFixed(4)}; EM iterations mean ${(iters.reduce((a, b) => a + b, 0) / iters.length).toFixed(1)}, max ${Math.max(...iters)}\n`,
);
