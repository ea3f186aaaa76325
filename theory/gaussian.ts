// The paper's single-dimensional Gaussian model (Section 3.2 and Theorem 3.1): each generation draws M
// samples from the previous fit N(mu, s^2) and refits mu and s^2 with the unbiased estimators. The fitted
// variance is a martingale (its mean stays at the original), yet it goes to 0 almost surely and the
// Wasserstein-2 distance to the original grows: its median falls while a few runs grow large.
//
// `accumulate` instead fits on every sample drawn so far (the data of all generations kept), which bounds
// the drift. Samples are N(mu, s^2) = mu + s z with z standard, so sums over z keep full precision.
//
// sampler 'samples' draws all M points, as the paper does. sampler 'statistics' draws only what the fit
// sees: for normal data the sample mean of z is N(0, 1/M) and (M-1) times the unbiased variance of z is
// chi-square(M-1), independently (Cochran's theorem), so one generation costs O(1) and has exactly the
// same distribution.
import { progress } from '../util/progress.js';
import { chiSquare, generationSlice, runRng, summarize } from './stats.js';
import { zigguratNormal } from './normal.js';

export type GaussianMode = 'replace' | 'accumulate';
export type GaussianSampler = 'samples' | 'statistics';

export interface GaussianOptions {
  /** M: samples per generation. */
  samples: number;
  runs: number;
  generations: number;
  seed: number;
  mode?: GaussianMode;
  sampler?: GaussianSampler;
  /** The original distribution (default N(0, 1)). */
  mu0?: number;
  var0?: number;
  quiet?: boolean;
}

/** Summary over runs of one generation: variance, W2 and mean; `collapsed` is 1% of the original variance. */
export function generationStats(g: number, runs: number, varM: Float64Array, w2M: Float64Array, muM: Float64Array, collapsed: number): GaussianGenerationStats {
  const vs = generationSlice(varM, runs, g);
  const sv = summarize(vs);
  const sw = summarize(generationSlice(w2M, runs, g));
  const sm = summarize(generationSlice(muM, runs, g));
  let below = 0;
  for (let r = 0; r < runs; r++) if (vs[r]! < collapsed) below++;
  return {
    generation: g,
    varMean: sv.mean,
    varMedian: sv.median,
    varQ05: sv.q05,
    varQ25: sv.q25,
    varQ75: sv.q75,
    varQ95: sv.q95,
    shareVarBelow1pct: below / runs,
    w2Mean: sw.mean,
    w2Median: sw.median,
    w2Q05: sw.q05,
    w2Q95: sw.q95,
    muMean: sm.mean,
    muStd: sm.std,
  };
}

export interface GaussianGenerationStats {
  generation: number;
  varMean: number;
  varMedian: number;
  varQ05: number;
  varQ25: number;
  varQ75: number;
  varQ95: number;
  /** Share of runs whose fitted variance is below 1% of the original. */
  shareVarBelow1pct: number;
  w2Mean: number;
  w2Median: number;
  w2Q05: number;
  w2Q95: number;
  muMean: number;
  muStd: number;
}

export interface GaussianResult {
  options: Required<Omit<GaussianOptions, 'quiet'>>;
  /** Generation-major matrices [(generations+1) * runs]: fitted mean and variance, W2 to the original. */
  mu: Float64Array;
  variance: Float64Array;
  w2: Float64Array;
  stats: GaussianGenerationStats[];
}

/** Wasserstein-2 distance between N(m1, v1) and N(m2, v2) in one dimension: sqrt((m1-m2)^2 + (s1-s2)^2). */
export function w2Gaussian1d(m1: number, v1: number, m2: number, v2: number): number {
  return Math.sqrt((m1 - m2) ** 2 + (Math.sqrt(v1) - Math.sqrt(v2)) ** 2);
}

export function simulateGaussian(o: GaussianOptions): GaussianResult {
  const { samples: M, runs, generations: G, seed } = o;
  const mode = o.mode ?? 'replace';
  const sampler = o.sampler ?? 'samples';
  const mu0 = o.mu0 ?? 0;
  const var0 = o.var0 ?? 1;
  for (const [flag, v, min] of [['--samples', M, 2], ['--runs', runs, 1], ['--generations', G, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`${flag}: ${v} is not an integer >= ${min}`);
  }
  if (!(var0 > 0)) throw new Error(`var0: ${var0} must be positive`);
  const n = (G + 1) * runs;
  const muM = new Float64Array(n);
  const varM = new Float64Array(n);
  const w2M = new Float64Array(n);
  const bar = o.quiet ? null : progress(`gaussian M=${M} ${mode} ${sampler}`, runs, { unit: 'runs', logEvery: Math.max(1, Math.floor(runs / 10)) });

  for (let r = 0; r < runs; r++) {
    const rng = runRng(seed, r);
    let mu = mu0;
    let v = var0;
    // accumulate: running count, mean and sum of squared deviations of all samples (Chan et al. merge).
    let total = 0;
    let totalMean = 0;
    let totalM2 = 0;
    muM[r] = mu;
    varM[r] = v;
    for (let g = 1; g <= G; g++) {
      // zbar and the sum of squared deviations of M standard normals.
      let zbar: number;
      let zss: number;
      if (sampler === 'statistics') {
        zbar = zigguratNormal(rng) / Math.sqrt(M);
        zss = chiSquare(rng, M - 1);
      } else {
        let sz = 0;
        let szz = 0;
        for (let j = 0; j < M; j++) {
          const z = zigguratNormal(rng);
          sz += z;
          szz += z * z;
        }
        zbar = sz / M;
        zss = Math.max(0, szz - M * zbar * zbar);
      }
      const batchMean = mu + Math.sqrt(v) * zbar;
      const batchM2 = v * zss;
      if (mode === 'replace') {
        mu = batchMean;
        v = batchM2 / (M - 1);
      } else {
        const delta = batchMean - totalMean;
        const merged = total + M;
        totalMean += (delta * M) / merged;
        totalM2 += batchM2 + (delta * delta * total * M) / merged;
        total = merged;
        mu = totalMean;
        v = totalM2 / (total - 1);
      }
      const k = g * runs + r;
      muM[k] = mu;
      varM[k] = v;
      w2M[k] = w2Gaussian1d(mu, v, mu0, var0);
    }
    bar?.update(r + 1);
  }
  bar?.stop();

  const stats: GaussianGenerationStats[] = [];
  for (let g = 0; g <= G; g++) stats.push(generationStats(g, runs, varM, w2M, muM, 0.01 * var0));
  return { options: { samples: M, runs, generations: G, seed, mode, sampler, mu0, var0 }, mu: muM, variance: varM, w2: w2M, stats };
}
