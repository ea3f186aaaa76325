// Statistics against table values and hand computations: Student's t quantiles (the values of any t table, to
// the digits of scipy.stats.t.ppf), the t-interval of a mean, Spearman's rho with ties, and the report's
// paired differences between settings.
import { describe, expect, it } from 'vitest';
import type { GenerationMetrics } from '../../pipeline/eval/metrics-schema.js';
import { pairedDifferences } from '../../pipeline/report/paired.js';
import { spearman, studentTCdf, studentTQuantile, tInterval } from '../../util/stats.js';

describe("Student's t", () => {
  it('quantiles equal the tables', () => {
    const table: [number, number, number][] = [
      [0.975, 1, 12.706204736174696],
      [0.975, 2, 4.302652729749464],
      [0.975, 3, 3.182446305284263],
      [0.975, 4, 2.7764451051977987],
      [0.975, 10, 2.2281388519649385],
      [0.975, 30, 2.0422724563012373],
      [0.95, 5, 2.015048372669157],
      [0.025, 2, -4.302652729749464],
    ];
    for (const [p, df, t] of table) expect(studentTQuantile(p, df)).toBeCloseTo(t, 8);
    expect(studentTQuantile(0.5, 7)).toBe(0);
    // df = 1 is the Cauchy distribution: P(T <= t) = 1/2 + atan(t) / pi.
    for (const t of [-3, -0.5, 0.2, 4]) expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 12);
  });
  it('the 95% interval of a mean by hand', () => {
    // [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), t(0.975, 3) = 3.182446305284263.
    const half = 3.182446305284263 * Math.sqrt(5 / 3) / 2;
    const r = tInterval([1, 2, 3, 4]);
    expect(r.mean).toBe(2.5);
    expect(r.lo!).toBeCloseTo(2.5 - half, 10);
    expect(r.hi!).toBeCloseTo(2.5 + half, 10);
    expect(tInterval([3])).toEqual({ mean: 3, lo: null, hi: null, n: 1 });
  });
  it("Spearman's rho: ties get their mean rank; a constant side has none", () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 40, 30])).toBeCloseTo(1 - (6 * 2) / (4 * 15), 12);
    expect(spearman([1, 1, 2], [1, 2, 3])).toBeCloseTo(1.5 / Math.sqrt(3), 12);
    expect(spearman([1, 1], [1, 2])).toBeNull();
  });
});

describe('paired differences between settings', () => {
  const rec = (setting: string, seed: number, generation: number, test_perplexity: number) => ({ setting, seed, generation, test_perplexity }) as GenerationMetrics;
  const metrics = [
    ...[10, 12, 14].map((p, s) => rec('A', s, 1, p)),
    ...[9, 10, 11].map((p, s) => rec('B', s, 1, p)),
    ...[8, 11].map((p, s) => rec('C', s, 1, p)), // C has no seed 2
    ...[1, 2, 3].flatMap((s) => ['A', 'B', 'C'].map((x) => rec(x, s - 1, 0, 100))),
  ];
  it('the mean difference at the last generation and its 95% t-interval, over the seeds both have', () => {
    const [ab, ac, bc] = pairedDifferences(metrics, ['A', 'B', 'C']);
    // A - B = [1, 2, 3]: mean 2, sd 1, t(0.975, 2) = 4.302652729749464.
    expect(ab).toMatchObject({ a: 'A', b: 'B', generation: 1, seeds: [0, 1, 2], n: 3, mean: 2 });
    expect(ab!.lo!).toBeCloseTo(2 - 4.302652729749464 / Math.sqrt(3), 10);
    expect(ab!.hi!).toBeCloseTo(2 + 4.302652729749464 / Math.sqrt(3), 10);
    // A - C = [2, 1] on seeds 0 and 1: mean 1.5, sd sqrt(1/2), t(0.975, 1) = 12.706204736174696.
    expect(ac).toMatchObject({ a: 'A', b: 'C', seeds: [0, 1], n: 2, mean: 1.5 });
    expect(ac!.hi!).toBeCloseTo(1.5 + 12.706204736174696 * Math.sqrt(0.5) / Math.sqrt(2), 10);
    // B - C = [1, -1]: mean 0.
    expect(bc).toMatchObject({ a: 'B', b: 'C', mean: 0, n: 2 });
  });
});
