// Quantiles (numpy's linear interpolation), tail mass against reference percentiles, true-source log-likelihood.
import { describe, expect, it } from 'vitest';
import { completeSentences, pairedShift, quantiles, quantileSorted, tailMass, tailReference, trueLoglik } from '../../pipeline/eval/tail.js';

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

describe('paired shift against generation 0', () => {
  // Two-token continuations; generation 0 continues prompts 5, 7, 3, 9 and 11, and its row 2 (prompt 3) was too
  // short to score, so its perplexities are those of rows 0, 1, 3 and 4.
  const gen0 = { promptIds: [5, 7, 3, 9, 11], ids: [1, 2, 3, 4, 1, 1, 5, 6, 7, 8], blockSize: 2, ppl: [2, 3, 4, 5], scoredRows: [0, 1, 3, 4] };
  const one = (prompt: number, ids: number[], ppl: number) => ({ promptIds: [prompt], ids, blockSize: 2, ppl: [ppl], scoredRows: [0] });

  it('pairs the first scored row of each prompt: unchanged tokens, lower and higher perplexity, and the median log ratio', () => {
    const later = {
      promptIds: [9, 3, 5, 7, 7, 13, 11],
      ids: [5, 6, /* 3, unscored */ 1, 1, /* 5 */ 1, 3, /* 7 */ 3, 9, /* 7 again */ 3, 4, /* no partner */ 1, 1, /* 11 */ 8, 7],
      blockSize: 2,
      ppl: [4.0000001, 1, 6, 3, 1, 10],
      scoredRows: [0, 2, 3, 4, 5, 6],
    };
    const p = pairedShift(gen0, later)!;
    expect(p.prompts).toBe(4); // 9, 5, 7 (its first row), 11; 3 is scored on neither side, 13 has no partner
    expect([p.unchanged, p.more_probable, p.less_probable]).toEqual([0.25, 0.25, 0.5]);
    // log ratios 0, log(1/2), log(6/3), log(10/5): sorted -0.69, 0, 0.69, 0.69, median log(2) / 2
    expect(p.median_log_ratio).toBeCloseTo(Math.log(2) / 2, 12);
  });

  it('counts a different continuation of equal perplexity as not more probable, and finds nothing to pair as null', () => {
    expect(pairedShift(gen0, one(5, [2, 1], 2))).toMatchObject({ prompts: 1, unchanged: 0, more_probable: 0, less_probable: 1 });
    expect(pairedShift(gen0, one(99, [1, 2], 2))).toBeNull();
    expect(pairedShift(gen0, { ...one(3, [1, 1], 2), ppl: [], scoredRows: [] })).toBeNull();
    expect(() => pairedShift(gen0, { ...one(5, [1, 2, 3], 2), blockSize: 3 })).toThrow(/blocks of 3 tokens against generation 0's 2/);
    expect(() => pairedShift(gen0, { ...one(5, [1, 2], 2), scoredRows: [] })).toThrow(/1 perplexities for 0 scored rows/);
  });
});
