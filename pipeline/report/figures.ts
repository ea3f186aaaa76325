// The report's figures as (data rows, Vega-Lite spec) pairs, built with the chart helpers of plot.ts:
//   test-perplexity   real-test perplexity per generation: each seed thin, the mean over seeds bold, one
//                     colour per setting; the base model's zero-shot perplexity as a dashed line
//   ppl-histogram     per-sample perplexity (scored by the generation-0 model), overlaid per generation, log x
//   ppl-ridgeline     the same distributions for every generation, stacked
//   diversity         rep-2, distinct-2 and self-BLEU per generation (percent), mean over seeds, band min..max
//   tail-mass         shares beyond the real data's percentiles per generation (when measured)
//   true-loglik       (synthetic source) exact log-likelihood of the data under the true source, per setting
//   true-tail         (synthetic source) share of the true tail's mass present in the data, per setting
// A run with several settings gets the per-setting figures once per setting (id suffixed `-SETTING`).
import { lineBandChart, logBinEdges, logHistogramChart, logHistogramRows, ridgelineChart, seriesColor, type Row, type TopLevelSpec } from '../../figures/plot.js';
import { pplKey, type RunData } from './run-data.js';

export interface Figure {
  id: string;
  title: string;
  caption: string;
  rows: Row[];
  spec: TopLevelSpec;
}

/** Per-sample perplexities of one generation of a setting, pooled over seeds. */
function pooledPpl(run: RunData, setting: string, gen: number): number[] {
  const out: number[] = [];
  for (const seed of run.seeds) out.push(...(run.samplePpl.get(pplKey(setting, seed, gen)) ?? []));
  return out;
}

/** A figure id and title for one setting (unchanged when the run has one setting). */
function perSetting(run: RunData, setting: string, id: string, title: string): { id: string; title: string } {
  return run.settings.length > 1 ? { id: `${id}-${setting}`, title: `${title} (${setting})` } : { id, title };
}

const genLabel = (g: number): string => `gen ${g}`;

function histogramFigures(run: RunData, setting: string, histGens: number[], bins: number): Figure[] {
  const all = new Map<number, number[]>();
  for (const g of run.generations) {
    const v = pooledPpl(run, setting, g);
    if (v.length) all.set(g, v);
  }
  if (all.size === 0) return [];
  // Shared edges over every generation, so the overlaid and ridgeline views bin alike.
  const edges = logBinEdges((function* () { for (const v of all.values()) yield* v; })(), bins);
  const chosen = histGens.filter((g) => all.has(g));
  const seedsNote = run.seeds.length > 1 ? ` Samples of seeds ${run.seeds.join(', ')} are pooled.` : '';
  const figs: Figure[] = [];
  if (chosen.length) {
    const rows = logHistogramRows(new Map(chosen.map((g) => [genLabel(g), all.get(g)!])), bins, edges).map((r) => ({
      ...r,
      generation: Number(String(r.group).slice(4)),
    }));
    figs.push({
      ...perSetting(run, setting, 'ppl-histogram', 'Perplexity of generated data under the generation-0 model'),
      caption: `Histograms of per-sample perplexity (log axis) for generations ${chosen.join(', ')}, each sample scored by the model trained on real data (the paper's figure 1b).${seedsNote}`,
      rows,
      spec: logHistogramChart(rows, {
        xTitle: 'per-sample perplexity (generation-0 model)',
        yTitle: 'density (per decade)',
        groupTitle: 'generation',
        groupOrder: chosen.map(genLabel),
        width: 560,
        height: 320,
      }),
    });
  }
  const ridgeRows = logHistogramRows(new Map([...all].map(([g, v]) => [genLabel(g), v])), bins, edges).map((r) => ({
    ...r,
    generation: Number(String(r.group).slice(4)),
    center: Math.sqrt(Number(r.lo) * Number(r.hi)),
  }));
  figs.push({
    ...perSetting(run, setting, 'ppl-ridgeline', 'Perplexity distributions across all generations'),
    caption: `Ridgeline of the per-sample perplexity density for generations ${[...all.keys()].join(', ')} (log axis).${seedsNote}`,
    rows: ridgeRows,
    spec: ridgelineChart(ridgeRows, { x: 'center', y: 'density', group: 'generation', groupTitle: 'generation', logX: true, xTitle: 'per-sample perplexity (generation-0 model)', width: 520 }),
  });
  return figs;
}

/** Generations are integers: whole-number ticks on the x axis of a layered line chart. */
function integerGenerationAxis(spec: TopLevelSpec): TopLevelSpec {
  const layers = (spec as { layer?: { encoding?: { x?: Record<string, unknown> } }[] }).layer ?? [];
  for (const l of layers) if (l.encoding?.x) l.encoding.x.axis = { tickMinStep: 1, format: 'd' };
  return spec;
}

export interface Spread { mean: number; lo: number; hi: number; std: number; n: number }

/** Mean, sample standard deviation and min..max of values over seeds. */
export function spread(values: number[]): Spread {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, lo: Math.min(...values), hi: Math.max(...values), std, n };
}

type Rec = RunData['metrics'][number];

/** Mean and min..max over seeds of `pick(metrics)` per generation of the records given; nulls are skipped. */
function seedSpreadRows(records: readonly Rec[], generations: readonly number[], pick: (m: Rec) => number | null, extra: Row = {}): Row[] {
  const rows: Row[] = [];
  for (const g of generations) {
    const vs = records.filter((m) => m.generation === g).map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
    if (!vs.length) continue;
    const s = spread(vs);
    rows.push({ generation: g, ...extra, mean: s.mean, lo: s.lo, hi: s.hi, std: s.std, seeds: s.n });
  }
  return rows;
}

const ofSetting = (run: RunData, setting: string): Rec[] => run.metrics.filter((m) => m.setting === setting);

/** Mean over seeds per generation with a min..max band (rows from seedSpreadRows), one line per `series`. */
function generationBandChart(rows: Row[], yTitle: string, series?: string) {
  return integerGenerationAxis(lineBandChart(rows, { x: 'generation', y: 'mean', lo: 'lo', hi: 'hi', series, points: true, xTitle: 'generation', yTitle, width: 520 }));
}

/** The base model's zero-shot test perplexity (generation-0 records), mean over the records that have it. */
export function zeroShotPerplexity(run: RunData): number | null {
  const v = run.metrics.map((m) => m.base_test_perplexity).filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function testPerplexityFigure(run: RunData): Figure {
  // As the paper shows its five runs: each seed's curve thin, the mean over seeds bold, one colour per setting.
  const means = run.settings.flatMap((s) =>
    seedSpreadRows(ofSetting(run, s), run.generations, (m) => m.test_perplexity, { setting: s }).map((r): Row => ({ ...r, curve: 'mean', test_perplexity: r.mean as number })),
  );
  const perSeed: Row[] = run.metrics
    .filter((m) => Number.isFinite(m.test_perplexity))
    .map((m) => ({ generation: m.generation, setting: m.setting, curve: `seed ${m.seed}`, seed: m.seed, test_perplexity: m.test_perplexity }))
    .sort((a, b) => String(a.setting).localeCompare(String(b.setting)) || Number(a.seed) - Number(b.seed) || Number(a.generation) - Number(b.generation));
  const rows = [...means, ...perSeed];
  const x = { field: 'generation', type: 'quantitative', title: 'generation' };
  const y = { field: 'test_perplexity', type: 'quantitative', title: 'test perplexity', scale: { zero: false } };
  const color = seriesColor(rows, 'setting');
  const layer: object[] = [
    { transform: [{ filter: "datum.curve !== 'mean'" }], mark: { type: 'line', strokeWidth: 0.9, opacity: 0.5 }, encoding: { x, y, color, detail: { field: 'seed', type: 'nominal' } } },
    { transform: [{ filter: "datum.curve === 'mean'" }], mark: { type: 'line', point: true, strokeWidth: 3 }, encoding: { x, y, color } },
  ];
  const zs = zeroShotPerplexity(run);
  if (zs !== null) {
    // The zero-shot baseline: a dashed horizontal line across the generations.
    layer.push({
      data: { values: [{ zero_shot: zs, label: `zero-shot (base) ${zs.toFixed(1)}` }] },
      layer: [
        { mark: { type: 'rule', strokeDash: [6, 4], color: '#555' }, encoding: { y: { field: 'zero_shot', type: 'quantitative' } } },
        { mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#555' }, encoding: { y: { field: 'zero_shot', type: 'quantitative' }, x: { datum: run.generations[0] ?? 0, type: 'quantitative' }, text: { field: 'label' } } },
      ],
    });
  }
  const spec = integerGenerationAxis({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: rows },
    width: 520,
    height: 320,
    layer,
    config: { legend: { symbolOpacity: 1, labelLimit: 320 } },
  } as TopLevelSpec);
  return {
    id: 'test-perplexity',
    title: 'Real test perplexity per generation',
    caption: `Perplexity of each generation's model on the real test blocks: each seed's run thin, the mean over ${run.seeds.length} seed(s) bold, one colour per setting (the paper's figure 1a shows its five runs).${zs !== null ? ' Dashed: the base model before any fine-tuning (zero-shot).' : ''}`,
    rows,
    spec,
  };
}

function diversityFigure(run: RunData, setting: string): Figure {
  const recs = ofSetting(run, setting);
  const rows = [
    ...seedSpreadRows(recs, run.generations, (m) => m.rep2, { metric: 'rep-2 (%)' }),
    ...seedSpreadRows(recs, run.generations, (m) => m.distinct2 * 100, { metric: 'distinct-2 (%)' }),
    ...seedSpreadRows(recs, run.generations, (m) => (m.self_bleu === null ? null : m.self_bleu * 100), { metric: 'self-BLEU (%)' }),
  ];
  return {
    ...perSetting(run, setting, 'diversity', 'Diversity of the generated data'),
    caption: 'rep-2 (share of repeated bigrams within a sample), distinct-2 (distinct bigrams over all bigrams of the corpus) and self-BLEU-4 of a seeded subsample, in percent; mean over seeds, band min..max.',
    rows,
    spec: generationBandChart(rows, 'percent', 'metric'),
  };
}

function tailFigure(run: RunData, setting: string): Figure | null {
  const recs = ofSetting(run, setting);
  if (!recs.some((m) => m.tail_mass)) return null;
  const pct = (f: (t: NonNullable<Rec['tail_mass']>) => number) => (m: Rec) => (m.tail_mass ? f(m.tail_mass) * 100 : null);
  const rows = [
    ...seedSpreadRows(recs, run.generations, pct((t) => t.above_p90), { metric: 'above real p90' }),
    ...seedSpreadRows(recs, run.generations, pct((t) => t.above_p99), { metric: 'above real p99' }),
    ...seedSpreadRows(recs, run.generations, pct((t) => t.below_p10), { metric: 'below real p10' }),
    ...seedSpreadRows(recs, run.generations, (m) => (m.tail_mass_vs_gen0 ? m.tail_mass_vs_gen0.above_p99 * 100 : null), { metric: "above gen-0 data's p99" }),
  ];
  return {
    ...perSetting(run, setting, 'tail-mass', 'Tail mass relative to the real data'),
    caption: "Share of each generation's samples whose generation-0 perplexity lies beyond the real data's 90th / 99th percentile or below its 10th, and above the 99th percentile of generation 0's own data, in percent; mean over seeds, band min..max.",
    rows,
    spec: generationBandChart(rows, 'percent of samples', 'metric'),
  };
}

/**
 * What the true log-likelihood figure shows, read from its own rows rather than assumed: per setting, whether the
 * run's last generation's data are more or less likely under the source than the real continuations.
 */
function truthReading(settings: readonly string[], last: number, generated: readonly Row[], real: readonly Row[]): string {
  const at = (rows: readonly Row[], series: string) => rows.find((r) => r.generation === last && r.series === series)?.mean as number | undefined;
  const realMean = at(real, 'real continuations');
  if (realMean === undefined) return '';
  const parts = settings.flatMap((s) => {
    const gen = at(generated, `generated (${s})`);
    return gen === undefined ? [] : [{ s, higher: gen > realMean }];
  });
  if (parts.length === 0) return '';
  const say = (higher: boolean) =>
    higher
      ? "higher than real: the models write the source's most likely text (the narrowing of model collapse)"
      : 'lower than real: the models write text the source finds less likely than real text (their own errors)';
  if (parts.every((p) => p.higher === parts[0]!.higher)) return `At generation ${last}, ${say(parts[0]!.higher)}.`;
  return `At generation ${last}: ${parts.map((p) => `${p.s} ${say(p.higher)}`).join('; ')}.`;
}

/** Beyond the paper: the generated data against the true source (synthetic runs). */
function truthFigures(run: RunData): Figure[] {
  if (!run.metrics.some((m) => m.truth)) return [];
  const ll = run.settings.flatMap((s) => seedSpreadRows(ofSetting(run, s), run.generations, (m) => m.truth?.per_token ?? null, { series: `generated (${s})` }));
  const realLl = seedSpreadRows(run.metrics, run.generations, (m) => m.truth?.real_per_token ?? null, { series: 'real continuations' });
  const tail = run.settings.flatMap((s) => seedSpreadRows(ofSetting(run, s), run.generations, (m) => (m.truth ? m.truth.tail_seen * 100 : null), { series: `generated (${s})` }));
  const realTail = seedSpreadRows(run.metrics, run.generations, (m) => (m.truth ? m.truth.real_tail_seen * 100 : null), { series: 'real continuations' });
  const q = run.metrics.find((m) => m.truth)?.truth?.tail_q ?? 0;
  return [
    {
      id: 'true-loglik',
      title: 'Log-likelihood of the generated data under the TRUE source',
      caption: `Exact mean log-probability (nats per token) of each continuation given its prompt under the synthetic source that made the real data (topic marginalised), per generation; the real continuations of the same prompts for reference. ${truthReading(run.settings, Math.max(...run.generations), ll, realLl)} Mean over seeds, band min..max.`,
      rows: [...ll, ...realLl],
      spec: generationBandChart([...ll, ...realLl], 'log-likelihood (nats / token)', 'series'),
    },
    {
      id: 'true-tail',
      title: "How much of the source's tail survives",
      caption: `Share of the true probability mass of the source's rare words (each below ${q.toPrecision(2)}, together 20% of all mass) that appears in each generation's data; real continuations of the same prompts (an equally large sample of the truth) for reference. Mean over seeds, band min..max.`,
      rows: [...tail, ...realTail],
      spec: generationBandChart([...tail, ...realTail], 'percent of the tail mass present', 'series'),
    },
  ];
}

export function reportFigures(run: RunData, opts: { histogramGenerations: number[]; bins?: number }): Figure[] {
  const figs: Figure[] = [testPerplexityFigure(run)];
  for (const s of run.settings) figs.push(...histogramFigures(run, s, opts.histogramGenerations, opts.bins ?? 40));
  figs.push(...truthFigures(run));
  for (const s of run.settings) {
    figs.push(diversityFigure(run, s));
    const tail = tailFigure(run, s);
    if (tail) figs.push(tail);
  }
  return figs;
}
