// The paper's Gaussian-mixture experiment: a full-covariance 2-D mixture is fitted by EM to N points, N
// points are drawn from the fit, refitted, and so on for many generations. The closed-form L2 distance
// between each generation's fit and the generation-0 fit shows the mixture drifting and losing its tails.
//
// Points are interleaved Float64Arrays [x0, y0, x1, y1, ...]; covariances are [a, b, c] for [[a, b], [b, c]].
import type { Rng } from '../util/rng.js';
import { progress } from '../util/progress.js';
import { runRng } from './stats.js';
import { zigguratNormal } from './normal.js';

export interface Mixture2 {
  weights: Float64Array; // K
  means: Float64Array; // 2K
  covs: Float64Array; // 3K
}

export interface EmOptions {
  components?: number;
  /** Stop when the mean log-likelihood improves by less than this (scikit-learn's default 1e-3; the paper's 1e-5). */
  tol?: number;
  maxIter?: number;
  /** Added to covariance diagonals, as scikit-learn's reg_covar, so that a collapsing component stays invertible. */
  regCovar?: number;
}

export interface EmFit {
  mixture: Mixture2;
  /** Mean log-likelihood per point at the last E-step. */
  logLik: number;
  iterations: number;
  converged: boolean;
}

const LOG_2PI = Math.log(2 * Math.PI);

export function mixture(weights: number[], means: number[], covs: number[]): Mixture2 {
  const K = weights.length;
  if (means.length !== 2 * K || covs.length !== 3 * K) {
    throw new Error(`mixture: ${K} weights need ${2 * K} mean values and ${3 * K} covariance values [a, b, c] per component`);
  }
  for (let k = 0; k < K; k++) {
    const [a, b, c] = [covs[3 * k]!, covs[3 * k + 1]!, covs[3 * k + 2]!];
    if (!(a > 0 && a * c - b * b > 0)) throw new Error(`mixture: covariance ${k} [${a}, ${b}, ${c}] is not positive definite`);
  }
  const s = weights.reduce((x, y) => x + y, 0);
  return { weights: Float64Array.from(weights, (w) => w / s), means: Float64Array.from(means), covs: Float64Array.from(covs) };
}

/** Density N(d; 0, S) of a 2-D offset d under covariance S = [a, b, c], in log space. */
function logNormal2(dx: number, dy: number, a: number, b: number, c: number): number {
  const det = a * c - b * b;
  const q = (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det;
  return -LOG_2PI - 0.5 * Math.log(det) - 0.5 * q;
}

/** Component k's covariance [a, b, c] = [var x, cov xy, var y]. */
const covOf = (m: Mixture2, k: number): [number, number, number] => [m.covs[3 * k]!, m.covs[3 * k + 1]!, m.covs[3 * k + 2]!];

/** Draws n points from a mixture. */
export function sampleMixture(m: Mixture2, n: number, rng: Rng, out = new Float64Array(2 * n)): Float64Array {
  const K = m.weights.length;
  // Cholesky factors [l11, l21, l22] per component.
  const chol = new Float64Array(3 * K);
  for (let k = 0; k < K; k++) {
    const [a, b, c] = covOf(m, k);
    const l11 = Math.sqrt(a);
    const l21 = b / l11;
    chol[3 * k] = l11;
    chol[3 * k + 1] = l21;
    chol[3 * k + 2] = Math.sqrt(Math.max(0, c - l21 * l21));
  }
  for (let i = 0; i < n; i++) {
    let u = rng.next();
    let k = 0;
    while (k < K - 1 && u >= m.weights[k]!) u -= m.weights[k++]!;
    const z1 = zigguratNormal(rng);
    const z2 = zigguratNormal(rng);
    out[2 * i] = m.means[2 * k]! + chol[3 * k]! * z1;
    out[2 * i + 1] = m.means[2 * k + 1]! + chol[3 * k + 1]! * z1 + chol[3 * k + 2]! * z2;
  }
  return out;
}

/** k-means++ seeding followed by Lloyd iterations; returns a hard assignment of every point. */
export function kmeans(points: Float64Array, K: number, rng: Rng, maxIter = 100): Int32Array {
  const n = points.length / 2;
  const centers = new Float64Array(2 * K);
  const d2 = new Float64Array(n).fill(Infinity);
  let first = rng.int(n);
  for (let k = 0; k < K; k++) {
    centers[2 * k] = points[2 * first]!;
    centers[2 * k + 1] = points[2 * first + 1]!;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = (points[2 * i]! - centers[2 * k]!) ** 2 + (points[2 * i + 1]! - centers[2 * k + 1]!) ** 2;
      if (d < d2[i]!) d2[i] = d;
      total += d2[i]!;
    }
    // Next center with probability proportional to the squared distance to the nearest chosen one.
    let u = rng.next() * total;
    first = n - 1;
    for (let i = 0; i < n; i++) {
      u -= d2[i]!;
      if (u < 0) {
        first = i;
        break;
      }
    }
  }
  const assign = new Int32Array(n).fill(-1);
  const sums = new Float64Array(3 * K);
  for (let it = 0; it < maxIter; it++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestD = Infinity;
      for (let k = 0; k < K; k++) {
        const d = (points[2 * i]! - centers[2 * k]!) ** 2 + (points[2 * i + 1]! - centers[2 * k + 1]!) ** 2;
        if (d < bestD) {
          bestD = d;
          best = k;
        }
      }
      if (assign[i] !== best) {
        changed++;
        assign[i] = best;
      }
    }
    if (changed === 0) break;
    sums.fill(0);
    for (let i = 0; i < n; i++) {
      const k = assign[i]!;
      sums[3 * k]! += points[2 * i]!;
      sums[3 * k + 1]! += points[2 * i + 1]!;
      sums[3 * k + 2]! += 1;
    }
    for (let k = 0; k < K; k++) {
      if (sums[3 * k + 2]! === 0) continue; // an empty cluster keeps its center
      centers[2 * k] = sums[3 * k]! / sums[3 * k + 2]!;
      centers[2 * k + 1] = sums[3 * k + 1]! / sums[3 * k + 2]!;
    }
  }
  return assign;
}

/** M-step: weights, means and covariances from responsibilities resp[i * K + k]. */
function mStep(points: Float64Array, resp: Float64Array, K: number, reg: number, out: Mixture2): void {
  const n = points.length / 2;
  for (let k = 0; k < K; k++) {
    let nk = 0;
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      const r = resp[i * K + k]!;
      nk += r;
      sx += r * points[2 * i]!;
      sy += r * points[2 * i + 1]!;
    }
    nk += 10 * Number.EPSILON; // as scikit-learn: an empty component does not divide by zero
    const mx = sx / nk;
    const my = sy / nk;
    let a = 0;
    let b = 0;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const r = resp[i * K + k]!;
      const dx = points[2 * i]! - mx;
      const dy = points[2 * i + 1]! - my;
      a += r * dx * dx;
      b += r * dx * dy;
      c += r * dy * dy;
    }
    out.weights[k] = nk / n;
    out.means[2 * k] = mx;
    out.means[2 * k + 1] = my;
    out.covs[3 * k] = a / nk + reg;
    out.covs[3 * k + 1] = b / nk;
    out.covs[3 * k + 2] = c / nk + reg;
  }
  let s = 0;
  for (let k = 0; k < K; k++) s += out.weights[k]!;
  for (let k = 0; k < K; k++) out.weights[k] = out.weights[k]! / s;
}

/** E-step: fills resp and returns the mean log-likelihood per point. */
function eStep(points: Float64Array, m: Mixture2, resp: Float64Array): number {
  const n = points.length / 2;
  const K = m.weights.length;
  // Per component: log weight + log normaliser, the precision matrix [pa, pb, pc] and the mean.
  const cst = new Float64Array(6 * K);
  for (let k = 0; k < K; k++) {
    const [a, b, c] = covOf(m, k);
    const det = a * c - b * b;
    cst[6 * k] = Math.log(m.weights[k]!) - LOG_2PI - 0.5 * Math.log(det);
    cst[6 * k + 1] = c / det;
    cst[6 * k + 2] = -b / det;
    cst[6 * k + 3] = a / det;
    cst[6 * k + 4] = m.means[2 * k]!;
    cst[6 * k + 5] = m.means[2 * k + 1]!;
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = points[2 * i]!;
    const y = points[2 * i + 1]!;
    let max = -Infinity;
    for (let k = 0; k < K; k++) {
      const dx = x - cst[6 * k + 4]!;
      const dy = y - cst[6 * k + 5]!;
      const l = cst[6 * k]! - 0.5 * (cst[6 * k + 1]! * dx * dx + 2 * cst[6 * k + 2]! * dx * dy + cst[6 * k + 3]! * dy * dy);
      resp[i * K + k] = l;
      if (l > max) max = l;
    }
    let s = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp(resp[i * K + k]! - max);
      resp[i * K + k] = e;
      s += e;
    }
    total += max + Math.log(s);
    const inv = 1 / s;
    for (let k = 0; k < K; k++) resp[i * K + k] = resp[i * K + k]! * inv;
  }
  return total / n;
}

/** Fits a full-covariance 2-D Gaussian mixture by EM from a k-means(++) start (as scikit-learn's GaussianMixture). */
export function fitGmm(points: Float64Array, rng: Rng, o: EmOptions = {}): EmFit {
  const K = o.components ?? 2;
  const tol = o.tol ?? 1e-5;
  const maxIter = o.maxIter ?? 2000;
  const reg = o.regCovar ?? 1e-6;
  const n = points.length / 2;
  if (!Number.isInteger(n) || n < K) throw new Error(`fitGmm: need at least ${K} points (got ${n})`);
  const resp = new Float64Array(n * K);
  const assign = kmeans(points, K, rng);
  for (let i = 0; i < n; i++) resp[i * K + assign[i]!] = 1;
  const m: Mixture2 = { weights: new Float64Array(K), means: new Float64Array(2 * K), covs: new Float64Array(3 * K) };
  mStep(points, resp, K, reg, m);
  let prev = -Infinity;
  let logLik = -Infinity;
  let it = 0;
  let converged = false;
  while (it < maxIter) {
    it++;
    logLik = eStep(points, m, resp);
    mStep(points, resp, K, reg, m);
    if (Math.abs(logLik - prev) < tol) {
      converged = true;
      break;
    }
    prev = logLik;
  }
  return { mixture: m, logLik, iterations: it, converged };
}

/** ∫ f g over R^2 for two mixtures: Σ_ij w_i v_j N(m_i; n_j, A_i + B_j). */
export function mixtureInnerProduct(f: Mixture2, g: Mixture2): number {
  let s = 0;
  for (let i = 0; i < f.weights.length; i++) {
    for (let j = 0; j < g.weights.length; j++) {
      const lp = logNormal2(
        f.means[2 * i]! - g.means[2 * j]!,
        f.means[2 * i + 1]! - g.means[2 * j + 1]!,
        f.covs[3 * i]! + g.covs[3 * j]!,
        f.covs[3 * i + 1]! + g.covs[3 * j + 1]!,
        f.covs[3 * i + 2]! + g.covs[3 * j + 2]!,
      );
      s += f.weights[i]! * g.weights[j]! * Math.exp(lp);
    }
  }
  return s;
}

/** Closed-form L2 distance sqrt(∫ (f - g)^2) between two 2-D Gaussian mixtures. */
export function mixtureL2(f: Mixture2, g: Mixture2): number {
  return Math.sqrt(Math.max(0, mixtureInnerProduct(f, f) - 2 * mixtureInnerProduct(f, g) + mixtureInnerProduct(g, g)));
}

/** Density of a mixture at (x, y), for numerical checks and plots. */
export function mixtureDensity(m: Mixture2, x: number, y: number): number {
  let s = 0;
  for (let k = 0; k < m.weights.length; k++) {
    s += m.weights[k]! * Math.exp(logNormal2(x - m.means[2 * k]!, y - m.means[2 * k + 1]!, ...covOf(m, k)));
  }
  return s;
}

/** The default original mixture: two elongated, well-separated components. */
export const DEFAULT_MIXTURE: Mixture2 = mixture([0.5, 0.5], [-2, 0, 2, 1], [1, 0.6, 1, 0.8, -0.3, 0.5]);

export interface GmmOptions {
  samples: number;
  generations: number;
  runs: number;
  seed: number;
  truth?: Mixture2;
  em?: EmOptions;
  /** Generations whose samples are kept (for scatter plots). */
  keepSamplesAt?: number[];
  quiet?: boolean;
}

export interface GmmGenerationRecord {
  run: number;
  generation: number;
  /** L2 distance of this generation's fit to the generation-0 fit (the paper's measure) and to the truth. */
  l2ToGen0: number;
  l2ToTruth: number;
  logLik: number;
  iterations: number;
  converged: boolean;
  mixture: { weights: number[]; means: number[]; covs: number[] };
}

export interface GmmResult {
  options: { samples: number; generations: number; runs: number; seed: number; em: Required<EmOptions> };
  truth: Mixture2;
  /** Generation-major [(generations+1) * runs]. */
  l2ToGen0: Float64Array;
  l2ToTruth: Float64Array;
  records: GmmGenerationRecord[];
  /** Kept samples per (run, generation): the points the fit of that generation was made on. */
  kept: { run: number; generation: number; points: Float64Array }[];
}

/**
 * Generation 0 fits N points from the truth; generation g fits N points drawn from the fit of g - 1.
 */
export function simulateGmm(o: GmmOptions): GmmResult {
  const { samples: N, generations: G, runs, seed } = o;
  for (const [flag, v, min] of [['--samples', N, 2], ['--runs', runs, 1], ['--generations', G, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`${flag}: ${v} is not an integer >= ${min}`);
  }
  const truth = o.truth ?? DEFAULT_MIXTURE;
  const em: Required<EmOptions> = { components: 2, tol: 1e-5, maxIter: 2000, regCovar: 1e-6, ...o.em };
  const keep = new Set(o.keepSamplesAt ?? []);
  const l2ToGen0 = new Float64Array((G + 1) * runs);
  const l2ToTruth = new Float64Array((G + 1) * runs);
  const records: GmmGenerationRecord[] = [];
  const kept: GmmResult['kept'] = [];
  const points = new Float64Array(2 * N);
  const bar = o.quiet ? null : progress('gmm', runs * (G + 1), { unit: 'fits', logEvery: Math.max(1, Math.floor((runs * (G + 1)) / 20)) });
  for (let r = 0; r < runs; r++) {
    const rng = runRng(seed, r);
    let source = truth;
    let gen0: Mixture2 | null = null;
    for (let g = 0; g <= G; g++) {
      sampleMixture(source, N, rng, points);
      if (keep.has(g)) kept.push({ run: r, generation: g, points: points.slice() });
      const fit = fitGmm(points, rng, em);
      gen0 ??= fit.mixture;
      const k = g * runs + r;
      l2ToGen0[k] = mixtureL2(fit.mixture, gen0);
      l2ToTruth[k] = mixtureL2(fit.mixture, truth);
      records.push({
        run: r,
        generation: g,
        l2ToGen0: l2ToGen0[k]!,
        l2ToTruth: l2ToTruth[k]!,
        logLik: fit.logLik,
        iterations: fit.iterations,
        converged: fit.converged,
        mixture: { weights: [...fit.mixture.weights], means: [...fit.mixture.means], covs: [...fit.mixture.covs] },
      });
      source = fit.mixture;
      bar?.update(r * (G + 1) + g + 1, { l2: l2ToGen0[k]!.toFixed(4) });
    }
  }
  bar?.stop();
  return { options: { samples: N, generations: G, runs, seed, em }, truth, l2ToGen0, l2ToTruth, records, kept };
}
