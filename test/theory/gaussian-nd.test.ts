import { describe, expect, it } from 'vitest';
import { cholesky, simulateGaussianNd, symmetricEigenvalues, w2ToStandard } from '../../theory/gaussian-nd.js';
import { simulateGaussian } from '../../theory/gaussian.js';

describe('linear algebra helpers', () => {
  it('Jacobi eigenvalues of Q diag(l) Q^T recover l; Cholesky reproduces the matrix', () => {
    // Q: a product of two plane rotations in 3-D.
    const [c1, s1, c2, s2] = [Math.cos(0.7), Math.sin(0.7), Math.cos(-1.1), Math.sin(-1.1)];
    const R1 = [c1, -s1, 0, s1, c1, 0, 0, 0, 1];
    const R2 = [1, 0, 0, 0, c2, -s2, 0, s2, c2];
    const mul = (a: number[], b: number[]) => Array.from({ length: 9 }, (_, k) => [0, 1, 2].reduce((s, j) => s + a[3 * Math.floor(k / 3) + j]! * b[3 * j + (k % 3)]!, 0));
    const Q = mul(R1, R2);
    const Qt = [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => Q[3 * j + i]!));
    const A = Float64Array.from(mul(mul(Q, [0.05, 0, 0, 0, 1.5, 0, 0, 0, 4]), Qt));
    const ev = symmetricEigenvalues(A, 3);
    expect(ev[0]).toBeCloseTo(0.05, 12);
    expect(ev[1]).toBeCloseTo(1.5, 12);
    expect(ev[2]).toBeCloseTo(4, 12);
    const L = cholesky(A, 3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += L[i * 3 + k]! * L[j * 3 + k]!;
        expect(s).toBeCloseTo(A[i * 3 + j]!, 12);
      }
    }
    // W2 to N(0, I): |m|^2 + sum (sqrt(l) - 1)^2.
    expect(w2ToStandard(Float64Array.of(3, 4, 0), Float64Array.of(1, 4, 0.25))).toBeCloseTo(Math.sqrt(25 + 0 + 1 + 0.25), 12);
  });
});

describe('d-dimensional Gaussian refitting', () => {
  const d = 3;
  const M = 20;
  const runs = 2000;
  const res = simulateGaussianNd({ dims: d, samples: M, runs, generations: 40, seed: 5, quiet: true });

  it('trace(S)/d is a martingale: its mean stays at 1 (5 standard errors from the generation-g spread)', () => {
    for (const g of [1, 5, 10]) {
      const st = res.stats[g]!;
      let ss = 0;
      const v = res.variance.subarray(g * runs, (g + 1) * runs);
      for (const x of v) ss += (x - st.varMean) ** 2;
      const se = Math.sqrt(ss / (runs - 1) / runs);
      expect(Math.abs(st.varMean - 1)).toBeLessThan(5 * se);
    }
  });

  it('log det S drifts down as sum_i E[log(chi2(M-1-i)/(M-1))]; the smallest eigenvalue collapses first', () => {
    // E[log chi2(k)] = digamma(k/2) + log 2; digamma(x) ≈ log x - 1/(2x) - 1/(12x^2) for x >= 8.
    const digamma = (x: number) => Math.log(x) - 1 / (2 * x) - 1 / (12 * x * x) + 1 / (120 * x ** 4);
    let drift = 0;
    for (let i = 0; i < d; i++) drift += digamma((M - 1 - i) / 2) + Math.log(2) - Math.log(M - 1);
    for (const g of [10, 40]) {
      // sd of log det per generation ≈ sqrt(sum_i 2/(M-1-i)); the median's se is ~1.25 sd sqrt(g)/sqrt(runs).
      const sd = Math.sqrt([0, 1, 2].reduce((s, i) => s + 2 / (M - 1 - i), 0) * g);
      expect(Math.abs(res.stats[g]!.logDetMedian - drift * g)).toBeLessThan(5 * 1.25 * sd / Math.sqrt(runs) + 0.02 * Math.abs(drift * g));
    }
    expect(res.stats[40]!.minEigMedian).toBeLessThan(0.1 * res.stats[40]!.varMedian);
    expect(res.stats[40]!.w2Median).toBeGreaterThan(res.stats[10]!.w2Median);
  });

  it('the Wishart (Bartlett) sampler matches drawing every sample', () => {
    const fast = simulateGaussianNd({ dims: d, samples: M, runs, generations: 40, seed: 6, sampler: 'statistics', quiet: true });
    for (const g of [1, 10, 40]) {
      const sd = Math.sqrt([0, 1, 2].reduce((s, i) => s + 2 / (M - 1 - i), 0) * g);
      expect(Math.abs(fast.stats[g]!.logDetMedian - res.stats[g]!.logDetMedian)).toBeLessThan(5 * Math.SQRT2 * 1.25 * sd / Math.sqrt(runs));
    }
  });

  it('d = 1 agrees with the 1-D model in distribution', () => {
    const one = simulateGaussianNd({ dims: 1, samples: M, runs: 4000, generations: 30, seed: 7, quiet: true });
    const ref = simulateGaussian({ samples: M, runs: 4000, generations: 30, seed: 8, quiet: true });
    for (const g of [1, 10, 30]) {
      const sd = Math.sqrt((2 * g) / (M - 1));
      expect(Math.abs(Math.log(one.stats[g]!.varMedian) - Math.log(ref.stats[g]!.varMedian))).toBeLessThan((5 * Math.SQRT2 * 1.25 * sd) / Math.sqrt(4000));
    }
  });

  it('rejects M <= d', () => {
    expect(() => simulateGaussianNd({ dims: 5, samples: 5, runs: 1, generations: 1, seed: 0 })).toThrow(/M > d/);
  });
});
