// The Gaussian model in d dimensions: N(m, S) refitted each generation with the sample mean and the
// unbiased sample covariance of M draws. As in 1-D, E[S_{g+1} | S_g] = S_g (a matrix martingale), while
// the eigenvalues wander to 0. The original is N(0, I), so the Wasserstein-2 distance has the closed form
// W2^2 = |m|^2 + sum_i (sqrt(lambda_i) - 1)^2 over the eigenvalues of S.
//
// Samples are m + L z (S = L L^T), so the fit only needs zbar and the scatter Z of the z's: the new mean is
// m + L zbar, the new scatter L Z L^T. sampler 'statistics' draws zbar ~ N(0, I/M) and Z ~ Wishart(I, M-1)
// (Bartlett decomposition) directly: same distribution, no O(M) loop.
import { progress } from '../util/progress.js';
import { zigguratNormal } from './normal.js';
import { chiSquare, generationSlice, runRng, summarize } from './stats.js';
import { generationStats, type GaussianGenerationStats, type GaussianMode, type GaussianOptions, type GaussianResult, type GaussianSampler } from './gaussian.js';

/** The 1-D options with a dimension; the original is N(0, I_d). */
export interface GaussianNdOptions extends Omit<GaussianOptions, 'mu0' | 'var0'> {
  dims: number;
}

export interface GaussianNdStats extends GaussianGenerationStats {
  /** Median over runs of the smallest eigenvalue of the fitted covariance. */
  minEigMedian: number;
  /** Median over runs of log det S (the log generalised variance; 0 for the original). */
  logDetMedian: number;
}

export interface GaussianNdResult extends Omit<GaussianResult, 'stats'> {
  dims: number;
  stats: GaussianNdStats[];
  /** Generation-major [(generations+1) * runs]: smallest eigenvalue of each fit. */
  minEig: Float64Array;
}

/** Eigenvalues of a symmetric d x d matrix (row-major, copied) by cyclic Jacobi rotations. */
export function symmetricEigenvalues(a: Float64Array, d: number): Float64Array {
  const m = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * d + q]! - m[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          // Rotate columns p and q, then rows p and q.
          const mkp = m[k * d + p]!;
          const mkq = m[k * d + q]!;
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p * d + k]!;
          const mqk = m[q * d + k]!;
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
      }
    }
  }
  const ev = new Float64Array(d);
  for (let i = 0; i < d; i++) ev[i] = m[i * d + i]!;
  return ev.sort();
}

/** Lower Cholesky factor of a symmetric positive semi-definite matrix (clamps tiny negative pivots to 0). */
export function cholesky(a: Float64Array, d: number, out = new Float64Array(d * d)): Float64Array {
  out.fill(0);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let k = 0; k < j; k++) s -= out[i * d + k]! * out[j * d + k]!;
      if (i === j) out[i * d + i] = Math.sqrt(Math.max(0, s));
      else out[i * d + j] = out[j * d + j]! > 0 ? s / out[j * d + j]! : 0;
    }
  }
  return out;
}

/** W2 between N(m, S) and N(0, I): sqrt(|m|^2 + sum (sqrt(lambda_i) - 1)^2). */
export function w2ToStandard(mean: Float64Array, eig: Float64Array): number {
  let s = 0;
  for (const v of mean) s += v * v;
  for (const l of eig) s += (Math.sqrt(Math.max(0, l)) - 1) ** 2;
  return Math.sqrt(s);
}

export function simulateGaussianNd(o: GaussianNdOptions): GaussianNdResult {
  const { dims: d, samples: M, runs, generations: G, seed } = o;
  const mode = o.mode ?? 'replace';
  const sampler = o.sampler ?? 'samples';
  for (const [flag, v, min] of [['--dims', d, 1], ['--samples', M, d + 1], ['--runs', runs, 1], ['--generations', G, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`${flag}: ${v} is not an integer >= ${min}${flag === '--samples' ? ' (the covariance needs M > d)' : ''}`);
  }
  const n = (G + 1) * runs;
  const muNorm = new Float64Array(n);
  const varM = new Float64Array(n);
  const w2M = new Float64Array(n);
  const minEig = new Float64Array(n);
  const logDet = new Float64Array(n);
  const mean = new Float64Array(d);
  const cov = new Float64Array(d * d);
  const L = new Float64Array(d * d);
  const z = new Float64Array(d);
  const zsum = new Float64Array(d);
  const zz = new Float64Array(d * d); // scatter of z about zbar
  const A = new Float64Array(d * d); // Bartlett factor
  const LZ = new Float64Array(d * d);
  const bMean = new Float64Array(d);
  const bM2 = new Float64Array(d * d);
  const tMean = new Float64Array(d);
  const tM2 = new Float64Array(d * d);
  const bar = o.quiet ? null : progress(`gaussian d=${d} M=${M} ${mode} ${sampler}`, runs, { unit: 'runs', logEvery: Math.max(1, Math.floor(runs / 10)) });

  for (let r = 0; r < runs; r++) {
    const rng = runRng(seed, r);
    mean.fill(0);
    cov.fill(0);
    for (let i = 0; i < d; i++) cov[i * d + i] = 1;
    tMean.fill(0);
    tM2.fill(0);
    let total = 0;
    varM[r] = 1;
    minEig[r] = 1;
    for (let g = 1; g <= G; g++) {
      cholesky(cov, d, L);
      // zbar (in zsum) and the scatter zz of M standard normal vectors.
      zz.fill(0);
      if (sampler === 'statistics') {
        for (let i = 0; i < d; i++) zsum[i] = zigguratNormal(rng) / Math.sqrt(M);
        A.fill(0);
        for (let i = 0; i < d; i++) {
          A[i * d + i] = Math.sqrt(chiSquare(rng, M - 1 - i));
          for (let j = 0; j < i; j++) A[i * d + j] = zigguratNormal(rng);
        }
        for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let k = 0; k <= j; k++) s += A[i * d + k]! * A[j * d + k]!;
          zz[i * d + j] = s;
          zz[j * d + i] = s;
        }
      } else {
        zsum.fill(0);
        for (let t = 0; t < M; t++) {
          for (let i = 0; i < d; i++) {
            const v = zigguratNormal(rng);
            z[i] = v;
            zsum[i]! += v;
          }
          for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) zz[i * d + j]! += z[i]! * z[j]!;
        }
        for (let i = 0; i < d; i++) zsum[i] = zsum[i]! / M;
        for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) {
          const v = zz[i * d + j]! - M * zsum[i]! * zsum[j]!;
          zz[i * d + j] = v;
          zz[j * d + i] = v;
        }
      }
      // Batch mean m + L zbar and scatter L zz L^T.
      for (let i = 0; i < d; i++) {
        let s = mean[i]!;
        for (let k = 0; k <= i; k++) s += L[i * d + k]! * zsum[k]!;
        bMean[i] = s;
      }
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k <= i; k++) s += L[i * d + k]! * zz[k * d + j]!;
        LZ[i * d + j] = s;
      }
      for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k <= j; k++) s += LZ[i * d + k]! * L[j * d + k]!;
        bM2[i * d + j] = s;
        bM2[j * d + i] = s;
      }
      if (mode === 'replace') {
        mean.set(bMean);
        for (let i = 0; i < d * d; i++) cov[i] = bM2[i]! / (M - 1);
      } else {
        const merged = total + M;
        for (let i = 0; i < d; i++) z[i] = bMean[i]! - tMean[i]!; // delta
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) tM2[i * d + j]! += bM2[i * d + j]! + (z[i]! * z[j]! * total * M) / merged;
        for (let i = 0; i < d; i++) tMean[i]! += (z[i]! * M) / merged;
        total = merged;
        mean.set(tMean);
        for (let i = 0; i < d * d; i++) cov[i] = tM2[i]! / (total - 1);
      }
      const ev = symmetricEigenvalues(cov, d);
      const k = g * runs + r;
      let tr = 0;
      let ld = 0;
      for (const l of ev) {
        tr += l;
        ld += Math.log(Math.max(l, 1e-300));
      }
      let mn = 0;
      for (const v of mean) mn += v * v;
      muNorm[k] = Math.sqrt(mn);
      varM[k] = tr / d;
      minEig[k] = ev[0]!;
      logDet[k] = ld;
      w2M[k] = w2ToStandard(mean, ev);
    }
    bar?.update(r + 1);
  }
  bar?.stop();

  const stats: GaussianNdStats[] = [];
  for (let g = 0; g <= G; g++) {
    stats.push({
      ...generationStats(g, runs, varM, w2M, muNorm, 0.01),
      minEigMedian: summarize(generationSlice(minEig, runs, g)).median,
      logDetMedian: summarize(generationSlice(logDet, runs, g)).median,
    });
  }
  return {
    options: { samples: M, runs, generations: G, seed, mode, sampler, mu0: 0, var0: 1 },
    dims: d,
    mu: muNorm,
    variance: varM,
    w2: w2M,
    minEig,
    stats,
  };
}
