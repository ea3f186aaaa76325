// Quantiles (numpy's linear interpolation), tail mass against reference percentiles, true-source log-likelihood.
import { describe, expect, it } from 'vitest';
import { completeSentences, quantiles, quantileSorted, tailMass, tailReference, trueLoglik } from '../../pipeline/eval/tail.js';

describe('quantiles', () => {
  it('interpolate linearly between order statistics like numpy.quantile', () => {
    // numpy.quantile([1, 2, 3, 4], [0.5, 0.9, 0.1]) = [2.5, 3.7, 1.3]
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBeCloseTo(2.5, 12);
    expect(quantileSorted([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 12);
    expect(quantileSorted([1, 2, 3, 4], 0.1)).toBeCloseTo(1.3, 12);
    const q = quantiles([4, 1, 3, 2]);
    expect(q.p50).toBeCloseTo(2.5, 12);
    expect(q.p01).toBeCloseTo(1.03, 12);
    expect(Object.keys(q)).toEqual(['p01', 'p05', 'p10', 'p25', 'p50', 'p75', 'p90', 'p95', 'p99']);
  });
});

describe('tail mass', () => {
  it('counts the shares beyond the real data percentiles', () => {
    const real = Array.from({ length: 101 }, (_, i) => i + 1); // 1..101: p10 = 11, p90 = 91, p99 = 100
    const ref = tailReference(real);
    expect(ref).toEqual({ p10: 11, p90: 91, p99: 100 });
    const m = tailMass([5, 10, 11, 50, 91, 95, 100, 150], ref);
    expect(m.below_p10).toBeCloseTo(2 / 8, 12); // 5, 10
    expect(m.above_p90).toBeCloseTo(3 / 8, 12); // 95, 100, 150
    expect(m.above_p99).toBeCloseTo(1 / 8, 12); // 150
  });
});

describe('true log-likelihood', () => {
  it('scores only the complete sentences inside a window', () => {
    expect(completeSentences('b c . a b . c d . e')).toBe('a b . c d .');
    expect(completeSentences('a b c')).toBe('');
    // a fake source: each word costs -1, "." costs -0.5; the word "zz" is impossible
    const logProb = (t: string): number =>
      t.split(' ').reduce((s, w) => s + (w === 'zz' ? -Infinity : w === '.' ? -0.5 : -1), 0);
    const r = trueLoglik(['x . a b . c . y', 'q . zz . r', 'no sentence'], logProb);
    // sample 1: "a b . c ." -> -4, 5 words, 2 sentences; sample 2 impossible; sample 3 not scorable
    expect(r.per_word).toBeCloseTo(-4 / 5, 12);
    expect(r.per_sentence).toBeCloseTo(-2, 12);
    expect(r.sentences).toBe(2);
    expect(r.impossible_share).toBeCloseTo(1 / 2, 12);
  });
});
