import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.js';
import { zigguratNormal } from '../../theory/normal.js';

/** Φ(x) via erfc (Abramowitz-Stegun 7.1.26, absolute error < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

describe('ziggurat normal', () => {
  const n = 1_000_000;
  const rng = new Rng(99);
  const xs = new Float64Array(n);
  for (let i = 0; i < n; i++) xs[i] = zigguratNormal(rng);

  it('has the moments of N(0, 1)', () => {
    let m1 = 0;
    let m2 = 0;
    let m4 = 0;
    for (const x of xs) {
      m1 += x;
      m2 += x * x;
      m4 += x ** 4;
    }
    m1 /= n;
    m2 /= n;
    m4 /= n;
    // Standard errors: mean 1/sqrt(n), E[x^2] sqrt(2/n), E[x^4] sqrt(96/n).
    expect(Math.abs(m1)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m2 - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m4 - 3)).toBeLessThan(5 * Math.sqrt(96 / n));
  });

  it('matches the normal CDF at many points, tails included (4-sigma binomial bands)', () => {
    const sorted = Float64Array.from(xs).sort();
    const cdfAt = (x: number) => {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      return lo / n;
    };
    for (let x = -4.5; x <= 4.5; x += 0.25) {
      const p = phi(x);
      expect(Math.abs(cdfAt(x) - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n) + 2e-7);
    }
    // Beyond the ziggurat's base (|x| > 3.44) the tail sampler is used: P(|x| > 3.5) ≈ 4.65e-4.
    const beyond = xs.filter((x) => Math.abs(x) > 3.5).length / n;
    const p = 2 * (1 - phi(3.5));
    expect(Math.abs(beyond - p)).toBeLessThan(4 * Math.sqrt(p / n));
  });

  it('is deterministic for a seed', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    for (let i = 0; i < 100; i++) expect(zigguratNormal(a)).toBe(zigguratNormal(b));
  });
});
