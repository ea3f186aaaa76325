// The estimate's arithmetic (issue 26): from measured costs to each setting's seconds per generation, by hand.
// accumulate trains on a corpus that grows each generation; sampled candidates cost k decodings, beam candidates
// none; the model verifier scores k prompt+candidate pairs per prompt.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../pipeline/run/config.js';
import { generationSeconds, type StepCosts } from '../../pipeline/run/estimate.js';

const COSTS: StepCosts = { microStep: 1, update: 0.5, generateBatch: 2, scorePerSample: 0.01, trainOpen: 3, decoderOpen: 4, scorerOpen: 5 };
const ROWS = { train: 20, valid: 10, test: 30 };
const settings = [
  { name: 'replace', mix: { mode: 'replace' } },
  { name: 'accumulate', mix: { mode: 'accumulate' } },
  { name: 'model', mix: { mode: 'replace' }, select: { verifier: 'model', candidates: 3 } },
  { name: 'truth', mix: { mode: 'replace' }, select: { verifier: 'truth', candidates: 3 } },
];
const cfgOf = (strategy: string) => validateConfig({ generations: 4, train: { epochs: 2, batchSize: 8, microBatchSize: 4 }, generate: { strategy, batchSize: 10 }, settings });

describe('the estimate per generation', () => {
  it('counts accumulate\'s growing corpus, the model verifier\'s scoring, and beam candidates as free', () => {
    const [replace, accumulate, model, truth] = generationSeconds(cfgOf('beam'), COSTS, ROWS);
    // an epoch: ceil(20/8) = 3 steps of 2 micro-steps and an update (7.5 s) + 10 validation blocks (0.1 s)
    expect(replace).toMatchObject({ train: 3 + 2 * 7.6, generate: 4 + 2 * 2, select: 0 });
    expect(replace!.evaluate).toBeCloseTo(2 * 5 + 50 * 0.01, 12);
    // accumulate: (4 + 1) / 2 = 2.5 times the rows on average: ceil(50/8) = 7 steps
    expect(accumulate!.train).toBeCloseTo(3 + 2 * (7 * 2.5 + 0.1), 12);
    // 3 candidates x 20 prompts, each scored at twice a block's length
    expect(model!.select).toBeCloseTo(5 + 2 * 3 * 20 * 0.01, 12);
    expect(model!.generate).toBe(replace!.generate);
    expect(truth!.select).toBe(0);
    expect(model!.total).toBeCloseTo(model!.train + model!.generate + model!.select + model!.evaluate, 12);
  });
  it('sampled candidates cost k decodings', () => {
    const [replace, , model] = generationSeconds(cfgOf('sample'), COSTS, ROWS);
    expect(replace!.generate).toBe(4 + 2 * 2);
    expect(model!.generate).toBe(4 + 3 * 2 * 2);
  });
});
