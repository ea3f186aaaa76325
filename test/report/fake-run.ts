// A micro run directory with plausible evaluation files (what the loop's evaluate step writes), for the
// report tests before and independently of the generational loop.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic.js';
import { Rng } from '../../util/rng.js';
import { writeGenerationEval, type GenerationMetrics } from '../../pipeline/eval/metrics-schema.js';
import { quantiles } from '../../pipeline/eval/tail.js';
import { RunLayout } from '../../pipeline/run/layout.js';

export interface FakeRun {
  root: string;
  seeds: number[];
  generations: number[];
  testPerplexity: (seed: number, gen: number) => number;
  samples: number;
}

/** Log-normal per-sample perplexities that narrow and shift down with the generation, plus a growing tail. */
/** `degenerate`: generation-0 data that loop (rep-2 75%) and a generation-1 model 3x worse, for the guard. */
export function makeFakeRun(root: string, opts: { seeds?: number[]; generations?: number; samples?: number; histogramGenerations?: number[]; degenerate?: boolean } = {}): FakeRun {
  const seeds = opts.seeds ?? [0, 1];
  const generations = Array.from({ length: opts.generations ?? 10 }, (_, g) => g);
  const samples = opts.samples ?? 200;
  const testPerplexity = (seed: number, gen: number): number => (opts.degenerate && gen > 0 ? 100 : 30 + 2.5 * gen + seed * 0.75);
  mkdirSync(root, { recursive: true });
  const layout = new RunLayout(root);
  writeJsonAtomic(layout.manifest, {
    name: 'micro',
    config: {
      name: 'micro',
      seeds,
      generations: generations.length,
      generate: { repetitionPenalty: 3, noRepeatNgramSize: 4 },
      train: { epochs: 4 },
      eval: { histogramGenerations: opts.histogramGenerations ?? [0, 1, 2, 3, 5, 9] },
    },
  });
  for (const seed of seeds) {
    for (const gen of generations) {
      const rng = new Rng(seed * 100 + gen);
      const ppl = Array.from({ length: samples }, () => Math.exp(Math.log(20 / (1 + 0.08 * gen)) + (0.6 / (1 + 0.15 * gen)) * rng.normal() + (rng.next() < 0.01 * gen ? 2 : 0)));
      const mean = ppl.reduce((a, b) => a + b, 0) / samples;
      const metrics: GenerationMetrics = {
        schema_version: 2,
        setting: 'replace',
        generation: gen,
        seed,
        base_test_perplexity: gen === 0 ? 45 + seed : null,
        tail_mass_vs_gen0: { above_p99: 0.01 + 0.003 * gen },
        truth: null,
        model: join(root, `seed-${seed}`, 'gen-0', 'model'),
        corpus: join(root, `seed-${seed}`, `gen-${gen}`, 'corpus'),
        samples,
        unscored_samples: 0,
        block_size: 64,
        perplexity: mean * 0.95,
        mean_nll: Math.log(mean * 0.95),
        per_sample_ppl_mean: mean,
        per_sample_ppl_quantiles: quantiles(ppl),
        rep2: opts.degenerate ? 75 : 5 + 3 * gen,
        rep3: 2 + 2 * gen,
        rep4: 1 + 1.5 * gen,
        distinct1: 0.3 - 0.01 * gen,
        distinct2: 0.7 - 0.03 * gen,
        distinct3: 0.9 - 0.03 * gen,
        self_bleu: 0.2 + 0.04 * gen,
        self_bleu_samples: 100,
        tail_reference: { p10: 12, p90: 35, p99: 60 },
        tail_mass: { above_p90: Math.max(0, 0.1 - 0.008 * gen), above_p99: 0.01 + 0.002 * gen, below_p10: 0.1 + 0.05 * gen },
        true_loglik: { per_word: -3 - 0.1 * gen, per_sentence: -25 - gen, sentences: 300, impossible_share: 0.01 * gen },
        test_model: join(root, `seed-${seed}`, `gen-${gen}`, 'model'),
        test_perplexity: testPerplexity(seed, gen),
        test_nll: Math.log(testPerplexity(seed, gen)),
        test_blocks: 100,
        valid_loss: Math.log(testPerplexity(seed, gen)) - 0.01,
        examples: [
          { prompt_block_id: 3, prompt: 'the cathedral was built in the <b>late</b> century by', continuation: `gen ${gen} seed ${seed}: the tower ${'of the tower '.repeat(gen)}was finished .` },
          { prompt_block_id: 8, prompt: 'another prompt', continuation: `other continuation ${gen}` },
        ],
        seconds: 1.5,
        evaluated_at: '2026-01-01T00:00:00.000Z',
      };
      const at = { setting: 'replace', seed, gen };
      writeGenerationEval({ metrics: layout.metrics(at), samplePpl: layout.samplePpl(at) }, metrics, ppl);
    }
  }
  // A generation still running: a directory without metrics.
  mkdirSync(layout.genDir({ setting: 'replace', seed: seeds[0]!, gen: generations.length }), { recursive: true });
  return { root, seeds, generations, testPerplexity, samples };
}
