import { describe, expect, it } from 'vitest';
import { simulateGaussian, w2Gaussian1d } from '../../theory/gaussian.js';
import { Rng } from '../../util/rng.js';
import { chiSquare } from '../../theory/stats.js';

describe('Gaussian refitting', () => {
  const M = 20;
  const runs = 4000;
  const res = simulateGaussian({ samples: M, runs, generations: 200, seed: 11, quiet: true });
  const at = (g: number) => res.stats[g]!;

  it('keeps the mean of the fitted variance at the original (martingale), within 5 standard errors', () => {
    // Var(s_g^2) = (1 + 2/(M-1))^g - 1 for unit original variance (each step multiplies by chi2(M-1)/(M-1)).
    for (const g of [1, 5, 10, 20]) {
      const se = Math.sqrt((1 + 2 / (M - 1)) ** g - 1) / Math.sqrt(runs);
      expect(Math.abs(at(g).varMean - 1)).toBeLessThan(5 * se);
    }
  });

  it('median variance falls and the share below 1% of the original grows', () => {
    // log s_g^2 is a random walk with drift E[log(chi2(k)/k)] ≈ -1/k - 1/(3k^2) per step, k = M - 1.
    const k = M - 1;
    const drift = -1 / k - 1 / (3 * k * k);
    for (const g of [10, 50, 100]) {
      expect(Math.log(at(g).varMedian)).toBeGreaterThan(drift * g - 0.1 * g * Math.abs(drift) - 0.1);
      expect(Math.log(at(g).varMedian)).toBeLessThan(drift * g + 0.1 * g * Math.abs(drift) + 0.1);
    }
    expect(at(10).varMedian).toBeLessThan(0.7);
    const shares = [0, 25, 50, 100, 150, 200].map((g) => at(g).shareVarBelow1pct);
    expect(shares[0]).toBe(0);
    for (let i = 1; i < shares.length; i++) expect(shares[i]!).toBeGreaterThan(shares[i - 1]!);
    expect(shares[shares.length - 1]!).toBeGreaterThan(0.8);
    // And W2 to the original grows in the median.
    expect(at(200).w2Median).toBeGreaterThan(at(50).w2Median);
    expect(at(50).w2Median).toBeGreaterThan(at(5).w2Median);
  });

  it('the sufficient-statistic sampler has the same distribution as drawing every sample', () => {
    const fast = simulateGaussian({ samples: M, runs, generations: 50, seed: 12, sampler: 'statistics', quiet: true });
    for (const g of [1, 10, 50]) {
      // Medians of log-variance: the sd of log s_g^2 is about sqrt(2g/k); the median's se is ~1.25 sd/sqrt(runs).
      const se = (1.25 * Math.sqrt((2 * g) / (M - 1))) / Math.sqrt(runs);
      expect(Math.abs(Math.log(fast.stats[g]!.varMedian) - Math.log(at(g).varMedian))).toBeLessThan(5 * Math.SQRT2 * se);
      // Median |mu_g| (robust: mu_g has heavy tails); relative se about 2.6% for the difference.
      const medAbs = (m: Float64Array) => Float64Array.from(m.subarray(g * runs, (g + 1) * runs), Math.abs).sort()[runs >> 1]!;
      expect(Math.abs(medAbs(fast.mu) / medAbs(res.mu) - 1)).toBeLessThan(0.1);
    }
  });

  it('accumulating all samples stops the collapse', () => {
    const acc = simulateGaussian({ samples: M, runs: 500, generations: 200, seed: 13, mode: 'accumulate', quiet: true });
    expect(acc.stats[200]!.shareVarBelow1pct).toBe(0);
    expect(acc.stats[200]!.varMedian).toBeGreaterThan(0.7);
    expect(acc.stats[200]!.varMedian).toBeLessThan(1.3);
  });

  it('generation 1 fit: unbiased variance has mean 1 and variance 2/(M-1)', () => {
    const v = res.variance.subarray(runs, 2 * runs);
    let s = 0;
    let ss = 0;
    for (const x of v) {
      s += x;
      ss += x * x;
    }
    const mean = s / runs;
    const variance = ss / runs - mean * mean;
    expect(Math.abs(mean - 1)).toBeLessThan(5 * Math.sqrt(2 / (M - 1) / runs));
    expect(Math.abs(variance - 2 / (M - 1)) / (2 / (M - 1))).toBeLessThan(0.15);
  });
});

describe('helpers', () => {
  it('W2 closed form for 1-D Gaussians', () => {
    expect(w2Gaussian1d(0, 1, 0, 1)).toBe(0);
    expect(w2Gaussian1d(3, 4, 0, 1)).toBeCloseTo(Math.sqrt(9 + 1), 12);
    // Against the quantile coupling: W2^2 = ∫0^1 (F1^-1(u) - F2^-1(u))^2 du = (m1-m2)^2 + (s1-s2)^2 E[z^2].
    const rng = new Rng(1);
    let acc = 0;
    const n = 200000;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      acc += (1 + 2 * z - (0 + 0.5 * z)) ** 2;
    }
    expect(Math.sqrt(acc / n)).toBeCloseTo(w2Gaussian1d(1, 4, 0, 0.25), 2);
  });

  it('chi-square sampler has mean k and variance 2k', () => {
    const rng = new Rng(3);
    for (const k of [1, 3, 19, 999]) {
      const n = 40000;
      let s = 0;
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const x = chiSquare(rng, k);
        s += x;
        ss += x * x;
      }
      const m = s / n;
      expect(Math.abs(m - k)).toBeLessThan(5 * Math.sqrt((2 * k) / n));
      expect(Math.abs(ss / n - m * m - 2 * k) / (2 * k)).toBeLessThan(0.06);
    }
  });
});
