// The report's figures as (data rows, Vega-Lite spec) pairs, built with the chart helpers of plot.ts:
//   ppl-histogram     per-sample perplexity (scored by the generation-0 model), overlaid per generation, log x
//   ppl-ridgeline     the same distributions for every generation, stacked
//   test-perplexity   real-test perplexity per generation: mean over seeds, band min..max
//   diversity         rep-2, distinct-2 and self-BLEU per generation (percent), mean over seeds, band min..max
//   tail-mass         shares beyond the real data's percentiles per generation (when measured)
import { lineBandChart, logBinEdges, logHistogramChart, logHistogramRows, ridgelineChart, type Row, type TopLevelSpec } from './plot.js';
import { pplKey, type RunData } from './run-data.js';

export interface Figure {
  id: string;
  title: string;
  caption: string;
  rows: Row[];
  spec: TopLevelSpec;
}

/** Per-sample perplexities of one generation, pooled over seeds. */
function pooledPpl(run: RunData, gen: number): number[] {
  const out: number[] = [];
  for (const seed of run.seeds) out.push(...(run.samplePpl.get(pplKey(seed, gen)) ?? []));
  return out;
}

const genLabel = (g: number): string => `gen ${g}`;

function histogramFigures(run: RunData, histGens: number[], bins: number): Figure[] {
  const all = new Map<number, number[]>();
  for (const g of run.generations) {
    const v = pooledPpl(run, g);
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
      id: 'ppl-histogram',
      title: 'Perplexity of generated data under the generation-0 model',
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
    id: 'ppl-ridgeline',
    title: 'Perplexity distributions across all generations',
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

interface Spread { mean: number; lo: number; hi: number; std: number; n: number }

function spread(values: number[]): Spread {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, lo: Math.min(...values), hi: Math.max(...values), std, n };
}

/** Mean and min..max over seeds of `pick(metrics)` per generation; null values are skipped. */
function seedSpreadRows(run: RunData, pick: (m: RunData['metrics'][number]) => number | null, series?: string): Row[] {
  const rows: Row[] = [];
  for (const g of run.generations) {
    const vs = run.metrics.filter((m) => m.generation === g).map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
    if (!vs.length) continue;
    const s = spread(vs);
    rows.push({ generation: g, ...(series ? { metric: series } : {}), mean: s.mean, lo: s.lo, hi: s.hi, std: s.std, seeds: s.n });
  }
  return rows;
}

/** Mean over seeds per generation with a min..max band (rows from seedSpreadRows), one line per `series`. */
function generationBandChart(rows: Row[], yTitle: string, series?: string) {
  return integerGenerationAxis(lineBandChart(rows, { x: 'generation', y: 'mean', lo: 'lo', hi: 'hi', series, points: true, xTitle: 'generation', yTitle, width: 520 }));
}

function testPerplexityFigure(run: RunData): Figure {
  const rows = seedSpreadRows(run, (m) => m.test_perplexity);
  return {
    id: 'test-perplexity',
    title: 'Real test perplexity per generation',
    caption: `Perplexity of each generation's model on the real test blocks: mean over ${run.seeds.length} seed(s), band from the lowest to the highest seed (the paper's figure 1a).`,
    rows,
    spec: generationBandChart(rows, 'test perplexity'),
  };
}

function diversityFigure(run: RunData): Figure {
  const rows = [
    ...seedSpreadRows(run, (m) => m.rep2, 'rep-2 (%)'),
    ...seedSpreadRows(run, (m) => m.distinct2 * 100, 'distinct-2 (%)'),
    ...seedSpreadRows(run, (m) => (m.self_bleu === null ? null : m.self_bleu * 100), 'self-BLEU (%)'),
  ];
  return {
    id: 'diversity',
    title: 'Diversity of the generated data',
    caption: 'rep-2 (share of repeated bigrams within a sample), distinct-2 (distinct bigrams over all bigrams of the corpus) and self-BLEU-4 of a seeded subsample, in percent; mean over seeds, band min..max.',
    rows,
    spec: generationBandChart(rows, 'percent', 'metric'),
  };
}

function tailFigure(run: RunData): Figure | null {
  if (!run.metrics.some((m) => m.tail_mass)) return null;
  const pct = (f: (t: NonNullable<RunData['metrics'][number]['tail_mass']>) => number) => (m: RunData['metrics'][number]) =>
    m.tail_mass ? f(m.tail_mass) * 100 : null;
  const rows = [
    ...seedSpreadRows(run, pct((t) => t.above_p90), 'above real p90'),
    ...seedSpreadRows(run, pct((t) => t.above_p99), 'above real p99'),
    ...seedSpreadRows(run, pct((t) => t.below_p10), 'below real p10'),
  ];
  return {
    id: 'tail-mass',
    title: 'Tail mass relative to the real data',
    caption: "Share of each generation's samples whose generation-0 perplexity lies beyond the real data's 90th / 99th percentile or below its 10th, in percent; mean over seeds, band min..max.",
    rows,
    spec: generationBandChart(rows, 'percent of samples', 'metric'),
  };
}

export function reportFigures(run: RunData, opts: { histogramGenerations: number[]; bins?: number }): Figure[] {
  const figs = histogramFigures(run, opts.histogramGenerations, opts.bins ?? 40);
  figs.push(testPerplexityFigure(run), diversityFigure(run));
  const tail = tailFigure(run);
  if (tail) figs.push(tail);
  return figs;
}
