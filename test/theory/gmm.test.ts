import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.js';
import { fitGmm, mixture, mixtureDensity, mixtureL2, sampleMixture, simulateGmm, type Mixture2 } from '../../theory/gmm.js';

/** ∫(f-g)^2 by the midpoint rule on a square grid wide enough to hold both mixtures' mass. */
function l2Numeric(f: Mixture2, g: Mixture2, lim = 12, h = 0.02): number {
  let s = 0;
  for (let x = -lim + h / 2; x < lim; x += h) {
    for (let y = -lim + h / 2; y < lim; y += h) s += (mixtureDensity(f, x, y) - mixtureDensity(g, x, y)) ** 2;
  }
  return Math.sqrt(s * h * h);
}

describe('closed-form L2 distance between 2-D mixtures', () => {
  it('matches numerical integration on a grid', () => {
    const f = mixture([0.3, 0.7], [-1, 0.5, 2, -1], [1.2, 0.4, 0.8, 0.5, -0.2, 1.5]);
    const g = mixture([0.6, 0.4], [0, 0, 1.5, 1], [2, -0.5, 1, 0.3, 0, 0.3]);
    const h = mixture([1], [0.2, -0.3], [1, 0.1, 1]);
    for (const [a, b] of [[f, g], [f, h], [g, h]] as const) {
      const exact = mixtureL2(a, b);
      expect(exact).toBeGreaterThan(0.01);
      expect(Math.abs(exact - l2Numeric(a, b)) / exact).toBeLessThan(1e-4);
    }
    expect(mixtureL2(f, f)).toBeLessThan(1e-7);
    // A component order swap is the same density.
    const fSwap = mixture([0.7, 0.3], [2, -1, -1, 0.5], [0.5, -0.2, 1.5, 1.2, 0.4, 0.8]);
    expect(mixtureL2(f, fSwap)).toBeLessThan(1e-7);
  });
});

describe('EM', () => {
  it('recovers a well-separated known mixture', () => {
    const truth = mixture([0.35, 0.65], [-4, 1, 3, -2], [1.0, 0.5, 0.8, 0.6, -0.25, 0.4]);
    const rng = new Rng(21);
    const n = 20000;
    const pts = sampleMixture(truth, n, rng);
    const fit = fitGmm(pts, rng, { tol: 1e-5, maxIter: 2000 });
    expect(fit.converged).toBe(true);
    const m = fit.mixture;
    // Match components by the sign of the x mean.
    const order = m.means[0]! < m.means[2]! ? [0, 1] : [1, 0];
    for (let k = 0; k < 2; k++) {
      const j = order[k]!;
      // Standard errors at n = 20000 are ~0.004 for weights, <0.01 for means, ~0.01 for covariances.
      expect(Math.abs(m.weights[j]! - truth.weights[k]!)).toBeLessThan(0.02);
      for (let d = 0; d < 2; d++) expect(Math.abs(m.means[2 * j + d]! - truth.means[2 * k + d]!)).toBeLessThan(0.05);
      for (let d = 0; d < 3; d++) expect(Math.abs(m.covs[3 * j + d]! - truth.covs[3 * k + d]!)).toBeLessThan(0.06);
    }
    // The fit's mean log-likelihood is at least the truth's on the same points (EM maximises it).
    let ll = 0;
    for (let i = 0; i < n; i++) ll += Math.log(mixtureDensity(truth, pts[2 * i]!, pts[2 * i + 1]!));
    expect(fit.logLik).toBeGreaterThanOrEqual(ll / n - 1e-9);
    expect(mixtureL2(m, truth)).toBeLessThan(0.02);
  });

  it('samples a mixture with the right moments', () => {
    const truth = mixture([0.25, 0.75], [-2, 0, 2, 1], [1, 0.6, 1, 0.8, -0.3, 0.5]);
    const n = 100000;
    const pts = sampleMixture(truth, n, new Rng(4));
    let mx = 0;
    let my = 0;
    for (let i = 0; i < n; i++) {
      mx += pts[2 * i]! / n;
      my += pts[2 * i + 1]! / n;
    }
    expect(mx).toBeCloseTo(0.25 * -2 + 0.75 * 2, 1);
    expect(my).toBeCloseTo(0.75, 1);
  });
});

describe('generational GMM', () => {
  it('generation 0 is at distance 0 from itself and the fits drift away', () => {
    const res = simulateGmm({ samples: 500, generations: 60, runs: 3, seed: 2, keepSamplesAt: [0, 60], quiet: true });
    for (let r = 0; r < 3; r++) expect(res.l2ToGen0[r]).toBe(0);
    const meanAt = (g: number) => (res.l2ToGen0[g * 3]! + res.l2ToGen0[g * 3 + 1]! + res.l2ToGen0[g * 3 + 2]!) / 3;
    expect(meanAt(60)).toBeGreaterThan(meanAt(1));
    expect(res.records.every((r) => r.converged)).toBe(true);
    expect(res.kept.map((k) => `${k.run}:${k.generation}`)).toEqual(['0:0', '0:60', '1:0', '1:60', '2:0', '2:60']);
    // Seeded: the same options give the same distances.
    const again = simulateGmm({ samples: 500, generations: 5, runs: 1, seed: 2, quiet: true });
    expect([...again.l2ToGen0]).toEqual([...res.l2ToGen0.filter((_, i) => i % 3 === 0).slice(0, 6)]);
  });
});
