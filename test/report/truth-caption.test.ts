// The true-log-likelihood figure's caption says what the run's data show, not what collapse is expected to show:
// a run whose generated data are less likely than the real continuations under the source must not be told
// that its models "write the source's most likely text".
import { describe, expect, it } from 'vitest';
import type { GenerationMetrics } from '../../pipeline/eval/metrics-schema.js';
import { reportFigures } from '../../pipeline/report/figures.js';
import type { RunData } from '../../pipeline/report/run-data.js';

function runWith(perToken: Record<string, number>): RunData {
  const settings = Object.keys(perToken);
  const metrics = settings.flatMap((setting) =>
    [0, 1].map(
      (generation) =>
        ({
          setting, seed: 0, generation, test_perplexity: 10 + generation, base_test_perplexity: generation === 0 ? 30 : null, per_sample_ppl_quantiles: {},
          rep2: 1, rep3: 0, rep4: 0, distinct1: 0.5, distinct2: 0.5, distinct3: 0.5, self_bleu: null, tail_mass: null, tail_mass_vs_gen0: null, examples: [],
          // Generation 0 always above real; the last generation as given: the caption reads the last one.
          truth: { per_token: generation === 0 ? -0.5 : perToken[setting]!, real_per_token: -1, tail_q: 0.001, tail_seen: 0.5, real_tail_seen: 0.9 },
        }) as unknown as GenerationMetrics,
    ),
  );
  return { root: '/x', name: 'r', manifest: null, settings, seeds: [0], generations: [0, 1], metrics, samplePpl: new Map(), pending: [] };
}
const caption = (run: RunData) => reportFigures(run, { histogramGenerations: [0] }).find((f) => f.id === 'true-loglik')!.caption;

describe("the true log-likelihood figure's caption", () => {
  it('says higher than real when the last generation is', () => {
    expect(caption(runWith({ replace: -0.8 }))).toContain("At generation 1, higher than real: the models write the source's most likely text");
  });
  it('says lower than real when the last generation is', () => {
    const c = caption(runWith({ replace: -1.7 }));
    expect(c).toContain('At generation 1, lower than real');
    expect(c).not.toContain('most likely text');
  });
  it('names each setting when they differ', () => {
    expect(caption(runWith({ replace: -1.7, 'keep-original': -0.9 }))).toContain('At generation 1: replace lower than real: the models write text the source finds less likely than real text (their own errors); keep-original higher than real');
  });
});
