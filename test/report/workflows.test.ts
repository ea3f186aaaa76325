// The report of a six-setting run (the tiny-workflows preset's shape): the test-perplexity figure carries every
// setting's mean and every seed's curve, one colour per setting, and renders; the page has the paired table.
import { describe, expect, it } from 'vitest';
import { renderSvg, type Row } from '../../figures/plot.js';
import type { GenerationMetrics } from '../../pipeline/eval/metrics-schema.js';
import { reportFigures } from '../../pipeline/report/figures.js';
import { reportHtml } from '../../pipeline/report/html.js';
import type { RunData } from '../../pipeline/report/run-data.js';

const SETTINGS = ['replace', 'accumulate', 'accumulate-subsample', 'curated-truth', 'curated-model', 'curated-random'];
const ppl = (s: number, seed: number, g: number) => 20 + s * (1 + g) + seed * 0.5;
const metrics = SETTINGS.flatMap((setting, s) =>
  [0, 1, 2].flatMap((seed) =>
    [0, 1, 2].map(
      (generation) =>
        ({
          setting, seed, generation, test_perplexity: ppl(s, seed, generation), base_test_perplexity: generation === 0 ? 32 : null, per_sample_ppl_quantiles: {},
          rep2: 1, rep3: 0, rep4: 0, distinct1: 0.5, distinct2: 0.5, distinct3: 0.5, self_bleu: null, truth: null, tail_mass: null, tail_mass_vs_gen0: null, examples: [],
          ...(setting.startsWith('curated') ? { selection: { verifier: setting.slice(8), candidates: 5, drop_worst: 0, rho: 0.5, p_star: 0.25, truth_kept: -1, truth_all: -2 } } : {}),
        }) as unknown as GenerationMetrics,
    ),
  ),
);
const run: RunData = { root: '/x', name: 'tiny-workflows', manifest: null, settings: SETTINGS, seeds: [0, 1, 2], generations: [0, 1, 2], metrics, samplePpl: new Map(), pending: [] };

describe('a six-setting report', () => {
  it('the test-perplexity figure: six means, eighteen seed curves, six colours, the zero-shot line; it renders', async () => {
    const fig = reportFigures(run, { histogramGenerations: [0, 2] })[0]!;
    expect(fig.id).toBe('test-perplexity');
    const means = fig.rows.filter((r: Row) => r.curve === 'mean');
    expect(new Set(means.map((r) => r.setting))).toEqual(new Set(SETTINGS));
    const m = means.find((r) => r.setting === 'curated-truth' && r.generation === 2)!;
    expect(m.test_perplexity).toBeCloseTo(ppl(3, 1, 2), 12); // the mean of seeds 0, 1, 2 is seed 1's value
    expect(new Set(fig.rows.filter((r) => r.curve !== 'mean').map((r) => `${r.setting}/${r.seed}`)).size).toBe(18);
    const spec = fig.spec as unknown as { layer: { encoding?: { color?: { sort: string[] } } }[] };
    expect(new Set(spec.layer[0]!.encoding!.color!.sort)).toEqual(new Set(SETTINGS));
    const svg = await renderSvg(fig.spec);
    for (const s of SETTINGS) expect(svg).toContain(s);
    expect(svg).toContain('zero-shot (base) 32.0');
  });
  it('the page: 15 paired rows, and the verifiers by generation', () => {
    const html = reportHtml(run, [], { generatedAt: 'now' });
    expect(html.match(/<table class="paired">[\s\S]*?<\/table>/)![0].match(/<tr><td>/g)).toHaveLength(15);
    // replace - accumulate at generation 2 is -3 on every seed: no spread, the interval is the point.
    expect(html).toContain('<tr><td>replace</td><td>accumulate</td><td>2</td><td>3</td><td>-3</td><td>[-3, -3] *</td></tr>');
    expect(html).toContain('<th>curated-model (model, k 5)</th>');
    expect(html).toContain('<td>0.5 / 25.0%</td>');
  });
});
