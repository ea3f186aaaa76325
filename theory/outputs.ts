// Results of the analytic models as files: CSV + JSON for every table, figures through the report's
// plotting path, a summary.json, and a few summary lines for the terminal.
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { barChart, lineBandChart, logHistogramChart, logHistogramRows, renderFigure, renderFigureWithData, scatterChart, writeData, type Row } from '../figures/plot.js';
import type { DiscreteResult } from './discrete.js';
import type { GaussianResult } from './gaussian.js';
import type { GmmResult } from './gmm.js';
import { generationSlice, summarize } from './stats.js';

export interface OutputOptions {
  figures?: boolean;
}

/** Rows of a long per-generation table are thinned for figures (SVGs stay small); the CSV keeps all. */
function thin<T>(rows: T[], max = 1500): T[] {
  if (rows.length <= max) return rows;
  const step = Math.ceil(rows.length / max);
  return rows.filter((_, i) => i % step === 0 || i === rows.length - 1);
}

const fmt = (v: number, d = 4) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(d) : v.toExponential(2));

// ------------------------------------------------------------------------------------------- discrete

/** Binomial confidence interval p ± z sqrt(p(1-p)/n) around the theoretical probability. */
export function binomialInterval(p: number, n: number, z: number): [number, number] {
  const h = z * Math.sqrt((p * (1 - p)) / n);
  return [p - h, p + h];
}

export async function writeDiscrete(res: DiscreteResult, out: string, o: OutputOptions = {}): Promise<string[]> {
  const G = res.generations;
  // The figures stop a little after the last run absorbed; the tables keep every generation.
  let lastLive = 0;
  for (let g = 0; g <= G; g++) if (res.absorbedShare[g]! < 1) lastLive = g;
  const shown = Math.min(G, Math.ceil(lastLive * 1.1) + 1);
  // After every run has absorbed nothing changes, so the table stops there too.
  const perGen: Row[] = [];
  for (let g = 0; g <= shown; g++) {
    perGen.push({
      generation: g,
      support_mean: res.supportMean[g]!,
      support_std: res.supportStd[g]!,
      support_lo: res.supportMean[g]! - res.supportStd[g]!,
      support_hi: res.supportMean[g]! + res.supportStd[g]!,
      support_min: res.supportMin[g]!,
      support_max: res.supportMax[g]!,
      tail_mass_mean: res.tailMassMean[g]!,
      absorbed_share: res.absorbedShare[g]!,
    });
  }
  const runs: Row[] = [...res.absorptionGeneration].map((ag, r) => ({ run: r, absorption_generation: ag, final_state: res.finalState[r]! }));
  const z = 4;
  const absorption = [...res.probs].map((p, i) => {
    const [lo, hi] = binomialInterval(p, res.runs, z);
    const f = res.absorptionFrequency[i]!;
    return { state: i, p, frequency: f, ci4_lo: lo, ci4_hi: hi, inside: f >= lo && f <= hi, tail: res.tailStates.includes(i) };
  });
  writeData(perGen, join(out, 'per_generation'));
  writeData(runs, join(out, 'runs'));
  writeData(absorption as Row[], join(out, 'absorption'));
  const absorbed = [...res.absorptionGeneration].filter((g) => g >= 0);
  const absGen = summarize(Float64Array.from(absorbed));
  const outside = absorption.filter((r) => !r.inside).length;
  const summary = {
    model: 'discrete',
    mode: res.mode,
    samples: res.samples,
    runs: res.runs,
    generations: G,
    tableGenerations: shown,
    states: res.probs.length,
    tailStates: res.tailStates.length,
    tailMass: res.tailStates.reduce((s, i) => s + res.probs[i]!, 0),
    absorbedRuns: absorbed.length,
    absorptionGeneration: absorbed.length ? absGen : null,
    statesOutside4SigmaInterval: outside,
  };
  writeJsonAtomic(join(out, 'summary.json'), summary);
  if (o.figures !== false) {
    const rows = thin(perGen);
    await renderFigure(
      lineBandChart(rows, { x: 'generation', y: 'support_mean', lo: 'support_lo', hi: 'support_hi', title: `Support size of the fit (M=${res.samples}, ${res.runs} runs, mean ± std)`, yTitle: 'states with non-zero probability' }),
      join(out, 'support'),
    );
    await renderFigure(lineBandChart(rows, { x: 'generation', y: 'tail_mass_mean', title: `Fitted mass of the original tail (p_i <= 1/M), mean over runs`, yTitle: 'tail mass' }), join(out, 'tail_mass'));
    await renderFigure(lineBandChart(rows, { x: 'generation', y: 'absorbed_share', title: 'Share of runs absorbed in a delta', yTitle: 'share of runs' }), join(out, 'absorbed'));
    const bars: Row[] = absorption.slice(0, 40).flatMap((r): Row[] => [
      { state: r.state, kind: 'theory p_i', value: r.p },
      { state: r.state, kind: 'observed', value: r.frequency },
    ]);
    await renderFigure(barChart(bars, { x: 'state', y: 'value', series: 'kind', title: 'Frequency of the absorbing state vs p_i', yTitle: 'probability' }), join(out, 'absorption'));
    if (absorbed.length) {
      const hist = logHistogramRows({ [`M=${res.samples}`]: absorbed.map((g) => Math.max(g, 1)) }, 30);
      await renderFigureWithData(
        logHistogramChart(hist, { title: 'Generations to absorption in a delta', xTitle: 'generation of absorption', groupTitle: 'samples' }),
        hist,
        join(out, 'absorption_generation_hist'),
      );
    }
  }
  const lines = [
    `discrete (${res.mode}): ${res.probs.length} states, M=${res.samples}, ${res.runs} runs, up to ${G} generations`,
    `  original tail (p_i <= 1/M): ${summary.tailStates} states, mass ${fmt(summary.tailMass)}`,
    `  absorbed: ${absorbed.length}/${res.runs} runs` +
      (absorbed.length ? `; generations to absorption median ${absGen.median.toFixed(0)}, mean ${absGen.mean.toFixed(1)}, 95% ${absGen.q95.toFixed(0)}` : ''),
    `  absorbing-state frequency vs p_i: ${res.probs.length - outside}/${res.probs.length} states inside the 4-sigma binomial interval`,
  ];
  return lines;
}

// ------------------------------------------------------------------------------------------- gaussian

/** d-dimensional results (gaussian-nd.ts) carry `dims`; their "variance" is trace(S)/d and "mu" is |m|. */
type AnyGaussianResult = GaussianResult & { dims?: number };
const seriesName = (res: AnyGaussianResult) => `${res.dims && res.dims > 1 ? `d=${res.dims} ` : ''}M=${res.options.samples} ${res.options.mode}`;

export async function writeGaussian(results: AnyGaussianResult[], out: string, o: OutputOptions = {}): Promise<string[]> {
  const rows: Row[] = [];
  const finals: Row[] = [];
  for (const res of results) {
    const series = seriesName(res);
    for (const s of res.stats) {
      // Log-scale figures cannot show 0: clamp (the CSV keeps the value).
      rows.push({ series, samples: res.options.samples, mode: res.options.mode, ...s, varQ05Plot: Math.max(s.varQ05, 1e-300) });
    }
    const last = res.stats[res.stats.length - 1]!;
    finals.push({ series, ...last });
  }
  writeData(rows, join(out, 'per_generation'));
  writeJsonAtomic(join(out, 'summary.json'), {
    model: 'gaussian',
    runs: results.map((r) => ({ dims: r.dims ?? 1, ...r.options })),
    note: results.some((r) => (r.dims ?? 1) > 1) ? 'for d > 1, variance columns are trace(S)/d and mu columns are |m|' : undefined,
    final: finals,
  });
  if (o.figures !== false) {
    const fig = thin(rows, 6000);
    const common = { x: 'generation', series: 'series' };
    await renderFigure(
      lineBandChart(fig, { ...common, y: 'varMedian', lo: 'varQ05Plot', hi: 'varQ95', logY: true, title: 'Fitted variance: median, 5-95% band over runs', yTitle: 'variance (original = 1)' }),
      join(out, 'variance_median'),
    );
    await renderFigure(lineBandChart(fig, { ...common, y: 'varMean', title: 'Fitted variance: mean over runs (a martingale)', yTitle: 'mean variance' }), join(out, 'variance_mean'));
    await renderFigure(
      lineBandChart(fig, { ...common, y: 'w2Median', lo: 'w2Q05', hi: 'w2Q95', title: 'Wasserstein-2 distance to the original: median, 5-95% band', yTitle: 'W2' }),
      join(out, 'w2'),
    );
    await renderFigure(lineBandChart(fig, { ...common, y: 'shareVarBelow1pct', title: 'Share of runs with variance < 1% of the original', yTitle: 'share of runs' }), join(out, 'collapsed_share'));
  }
  return results.map((res) => {
    const s = res.stats[res.stats.length - 1]!;
    return (
      `gaussian ${seriesName(res)}, ${res.options.runs} runs, generation ${s.generation}: ` +
      `variance mean ${fmt(s.varMean)} median ${fmt(s.varMedian)}, <1% in ${(100 * s.shareVarBelow1pct).toFixed(1)}% of runs, W2 median ${fmt(s.w2Median)}`
    );
  });
}

// ------------------------------------------------------------------------------------------- gmm

export async function writeGmm(res: GmmResult, out: string, o: OutputOptions = {}): Promise<string[]> {
  const { generations: G, runs } = res.options;
  const perRun: Row[] = res.records.map((r) => ({
    run: r.run,
    generation: r.generation,
    l2_to_gen0: r.l2ToGen0,
    l2_to_truth: r.l2ToTruth,
    loglik: r.logLik,
    iterations: r.iterations,
    converged: r.converged,
    ...Object.fromEntries(r.mixture.weights.map((w, k) => [`w${k}`, w])),
    ...Object.fromEntries(r.mixture.means.map((m, j) => [`mean${j >> 1}_${j & 1 ? 'y' : 'x'}`, m])),
    ...Object.fromEntries(r.mixture.covs.map((c, j) => [`cov${Math.floor(j / 3)}_${['xx', 'xy', 'yy'][j % 3]}`, c])),
  }));
  const perGen: Row[] = [];
  for (let g = 0; g <= G; g++) {
    const s = summarize(generationSlice(res.l2ToGen0, runs, g));
    const t = summarize(generationSlice(res.l2ToTruth, runs, g));
    perGen.push({ generation: g, l2_mean: s.mean, l2_median: s.median, l2_q05: s.q05, l2_q95: s.q95, l2_truth_mean: t.mean });
  }
  const samples: Row[] = [];
  for (const k of res.kept) for (let i = 0; i < k.points.length / 2; i++) samples.push({ run: k.run, generation: k.generation, x: k.points[2 * i]!, y: k.points[2 * i + 1]! });
  writeData(perRun, join(out, 'fits'));
  writeData(perGen, join(out, 'per_generation'));
  if (samples.length) writeData(samples, join(out, 'samples'));
  const last = perGen[perGen.length - 1]!;
  const nonConverged = res.records.filter((r) => !r.converged).length;
  const iters = summarize(Float64Array.from(res.records, (r) => r.iterations));
  writeJsonAtomic(join(out, 'summary.json'), {
    model: 'gmm',
    options: res.options,
    truth: { weights: [...res.truth.weights], means: [...res.truth.means], covs: [...res.truth.covs] },
    final: last,
    emIterations: iters,
    nonConvergedFits: nonConverged,
  });
  if (o.figures !== false) {
    const band = runs > 1 ? { lo: 'l2_q05', hi: 'l2_q95' } : {};
    await renderFigure(
      lineBandChart(thin(perGen), { x: 'generation', y: 'l2_mean', ...band, title: `L2 distance of the fit to the generation-0 fit (N=${res.options.samples}, ${runs} run${runs > 1 ? 's' : ''})`, yTitle: 'L2 distance' }),
      join(out, 'l2'),
    );
    const run0 = samples.filter((s) => s.run === 0);
    if (run0.length) {
      await renderFigure(scatterChart(run0, { x: 'x', y: 'y', facet: 'generation', columns: 4, size: 6, width: 180, height: 180, title: 'Samples the fit of each generation was made on (run 0)' }), join(out, 'samples'));
    }
  }
  return [
    `gmm: ${res.options.em.components} components, N=${res.options.samples}, ${runs} run(s), ${G} generations, EM tol ${res.options.em.tol}, at most ${res.options.em.maxIter} iterations`,
    `  L2 to generation 0 at generation ${G}: mean ${fmt(last.l2_mean as number)} (median ${fmt(last.l2_median as number)}); to the truth ${fmt(last.l2_truth_mean as number)}`,
    `  EM iterations: median ${iters.median}, max ${Math.max(...res.records.map((r) => r.iterations))}; fits not converged: ${nonConverged}`,
  ];
}
