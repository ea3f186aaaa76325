import { describe, expect, it } from 'vitest';
import { namedDistribution, simulateDiscrete } from '../../theory/discrete.js';

describe('discrete resampling', () => {
  // Theory: the fitted probabilities are a martingale and the chain absorbs in a delta, so the state a run
  // ends in is i with probability p_i. Each frequency over R runs is binomial(R, p_i)/R: we accept it inside
  // p_i ± 4 sqrt(p_i (1 - p_i) / R) (a 4-sigma interval; about 6e-5 chance per state of a false failure,
  // and the seed is fixed).
  it('absorbs in state i with frequency p_i (4-sigma binomial interval)', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const runs = 4000;
    const res = simulateDiscrete({ probs, samples: 20, runs, generations: 5000, seed: 7, quiet: true });
    expect(res.absorbedShare[res.generations]).toBe(1);
    for (let i = 0; i < probs.length; i++) {
      const p = probs[i]!;
      const h = 4 * Math.sqrt((p * (1 - p)) / runs);
      expect(Math.abs(res.absorptionFrequency[i]! - p)).toBeLessThan(h);
    }
    // State 3 (p = 0.05 <= 1/M = 0.05) is the tail.
    expect(res.tailStates).toEqual([3]);
  });

  it('generation-1 support equals the expected number of distinct draws; mean support never grows; all runs absorb', () => {
    const probs = namedDistribution('zipf', 30);
    const res = simulateDiscrete({ probs, samples: 50, runs: 300, generations: 20000, seed: 3, quiet: true });
    expect(res.supportMean[0]).toBe(30);
    // Generation 1 keeps on average sum_i 1 - (1 - p_i)^M states (the expected number of distinct states drawn).
    let expected = 0;
    for (const p of probs) expected += 1 - (1 - p) ** 50;
    const sd = Math.sqrt(res.supportStd[1]! ** 2 / 300);
    expect(Math.abs(res.supportMean[1]! - expected)).toBeLessThan(4 * sd + 1e-9);
    for (let g = 1; g <= 200; g++) expect(res.supportMean[g]!).toBeLessThanOrEqual(res.supportMean[g - 1]! + 1e-12);
    expect(res.absorbedShare[res.generations]).toBe(1);
    for (let r = 0; r < 300; r++) {
      expect(res.absorptionGeneration[r]).toBeGreaterThan(0);
      expect(res.finalState[r]).toBeGreaterThanOrEqual(0);
    }
  });

  it('accumulate mode never loses a state drawn in generation 1', () => {
    const res = simulateDiscrete({ probs: [0.4, 0.3, 0.2, 0.1], samples: 30, runs: 50, generations: 300, seed: 1, mode: 'accumulate', quiet: true });
    for (let g = 1; g <= 300; g++) expect(res.supportMean[g]).toBeCloseTo(res.supportMean[1]!, 12);
    expect(res.absorbedShare[300]).toBe(0);
  });

  it('never draws a zero-probability state', () => {
    const res = simulateDiscrete({ probs: [0, 0.3, 0, 0.7, 0], samples: 50, runs: 200, generations: 2000, seed: 2, quiet: true });
    expect(res.supportMean[0]).toBe(2);
    for (const s of res.finalState) expect([1, 3]).toContain(s);
    expect(res.absorptionFrequency[0]! + res.absorptionFrequency[2]! + res.absorptionFrequency[4]!).toBe(0);
  });

  it('is deterministic for a seed and rejects bad flags', () => {
    const a = simulateDiscrete({ probs: [0.6, 0.4], samples: 10, runs: 20, generations: 100, seed: 5, quiet: true });
    const b = simulateDiscrete({ probs: [0.6, 0.4], samples: 10, runs: 20, generations: 100, seed: 5, quiet: true });
    expect([...a.finalState]).toEqual([...b.finalState]);
    expect(() => simulateDiscrete({ probs: [0.6, 0.4], samples: 0, runs: 1, generations: 1, seed: 0 })).toThrow(/--samples/);
    expect(() => simulateDiscrete({ probs: [-1, 2], samples: 5, runs: 1, generations: 1, seed: 0 })).toThrow(/entry 0/);
  });
});
