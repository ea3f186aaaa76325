// The shape of the per-sample perplexity distribution: quantiles, and tail mass relative to the real data.
// Model collapse shows as a distribution that narrows onto low perplexities (the tails vanish) while a long
// high-perplexity tail of errors appears; the paper's figure 1b shows it as histograms.
export const QUANTILE_LEVELS = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] as const;

/** Quantile with linear interpolation between order statistics (numpy's default, Hyndman & Fan type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (q <= 0) return sorted[0]!;
  if (q >= 1) return sorted[n - 1]!;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** Quantiles keyed "p01", "p05", ..., "p99". */
export function quantiles(values: ArrayLike<number>, levels: readonly number[] = QUANTILE_LEVELS): Record<string, number> {
  const s = sortedCopy(values);
  const out: Record<string, number> = {};
  for (const q of levels) out[`p${String(Math.round(q * 100)).padStart(2, '0')}`] = quantileSorted(s, q);
  return out;
}

/** Reference thresholds: quantiles of the real data's per-sample perplexity under the generation-0 model. */
export interface TailReference {
  p10: number;
  p90: number;
  p99: number;
}

export function tailReference(realPpl: ArrayLike<number>): TailReference {
  const s = sortedCopy(realPpl);
  if (s.length === 0) throw new Error('tail reference: the real data has no scored samples');
  return { p10: quantileSorted(s, 0.1), p90: quantileSorted(s, 0.9), p99: quantileSorted(s, 0.99) };
}

export interface TailMass {
  /** Share of samples with perplexity above the real data's 90th / 99th percentile. */
  above_p90: number;
  above_p99: number;
  /** Share of samples below the real data's 10th percentile. */
  below_p10: number;
}

/** Shares (0..1) of `ppl` (scored by the generation-0 model) beyond the reference thresholds. */
export function tailMass(ppl: ArrayLike<number>, ref: TailReference): TailMass {
  const n = ppl.length;
  if (n === 0) return { above_p90: 0, above_p99: 0, below_p10: 0 };
  let a90 = 0;
  let a99 = 0;
  let b10 = 0;
  for (let i = 0; i < n; i++) {
    const v = ppl[i]!;
    if (v > ref.p90) a90++;
    if (v > ref.p99) a99++;
    if (v < ref.p10) b10++;
  }
  return { above_p90: a90 / n, above_p99: a99 / n, below_p10: b10 / n };
}

/** Exact log-likelihood of samples under the true (synthetic) source; null where nothing was scorable. */
export interface TrueLoglik {
  /** Total log-probability of the complete sentences / their words, "." included (nats per word). */
  per_word: number | null;
  /** Mean log-probability of one complete sentence (nats). */
  per_sentence: number | null;
  /** Complete sentences scored, over all samples. */
  sentences: number;
  /** Share of scored samples that the source gives probability 0 (an unknown word, an over-long sentence). */
  impossible_share: number;
}

/**
 * The complete sentences inside a window of text: a block cut from a stream starts and ends mid-sentence,
 * so the text before the first "." and after the last "." is dropped. Returns "" when none is complete.
 */
export function completeSentences(text: string, end = '.'): string {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const first = words.indexOf(end);
  const last = words.lastIndexOf(end);
  if (first < 0 || last <= first) return '';
  return words.slice(first + 1, last + 1).join(' ');
}

/**
 * `logProb(text)` is the exact log-probability of whole sentences under the true source
 * (datasets/synthetic.ts SyntheticSource.logProb; -Infinity for impossible text). Each sample is reduced
 * to its complete sentences first; impossible samples are counted apart so that the means stay finite.
 */
export function trueLoglik(texts: readonly string[], logProb: (text: string) => number, end = '.'): TrueLoglik {
  let sum = 0;
  let words = 0;
  let sentences = 0;
  let scored = 0;
  let impossible = 0;
  for (const t of texts) {
    const body = completeSentences(t, end);
    if (!body) continue;
    scored++;
    const lp = logProb(body);
    if (!Number.isFinite(lp)) {
      impossible++;
      continue;
    }
    const w = body.split(' ');
    sum += lp;
    words += w.length;
    sentences += w.filter((x) => x === end).length;
  }
  return {
    per_word: words ? sum / words : null,
    per_sentence: sentences ? sum / sentences : null,
    sentences,
    impossible_share: scored ? impossible / scored : 0,
  };
}

/** One generation's continuations, scored by the generation-0 model: row r continues prompt `promptIds[r]`. */
export interface ScoredContinuations {
  promptIds: ArrayLike<number>;
  /** Row-major token ids, `blockSize` per row. */
  ids: ArrayLike<number>;
  blockSize: number;
  /** Per-sample perplexities of the scored rows (a row with fewer than 2 real tokens has none) and their rows. */
  ppl: ArrayLike<number>;
  scoredRows: ArrayLike<number>;
}

/**
 * A generation's data against generation 0's, prompt by prompt (the first row of each prompt on both sides):
 * the shares of prompts whose continuation is unchanged, more probable or less probable (ties included) under
 * the generation-0 model, and the median log ratio of the perplexities. Pairing removes the spread between
 * prompts, so it tells sharpening (more probable) from drift (less probable) that a histogram mixes.
 */
export interface PairedShift {
  prompts: number;
  unchanged: number;
  more_probable: number;
  less_probable: number;
  median_log_ratio: number;
}

export function pairedShift(gen0: ScoredContinuations, later: ScoredContinuations): PairedShift | null {
  if (gen0.blockSize !== later.blockSize) throw new Error(`paired shift: blocks of ${later.blockSize} tokens against generation 0's ${gen0.blockSize}`);
  const T = gen0.blockSize;
  // Prompt -> index of its first scored row in `ppl`.
  const first = (c: ScoredContinuations): Map<number, number> => {
    if (c.scoredRows.length !== c.ppl.length) throw new Error(`paired shift: ${c.ppl.length} perplexities for ${c.scoredRows.length} scored rows`);
    const m = new Map<number, number>();
    for (let i = 0; i < c.ppl.length; i++) if (!m.has(c.promptIds[c.scoredRows[i]!]!)) m.set(c.promptIds[c.scoredRows[i]!]!, i);
    return m;
  };
  const base = first(gen0);
  let unchanged = 0;
  let more = 0;
  let less = 0;
  const logRatios: number[] = [];
  for (const [prompt, i] of first(later)) {
    const i0 = base.get(prompt);
    if (i0 === undefined) continue;
    const [r, r0] = [later.scoredRows[i]!, gen0.scoredRows[i0]!];
    let same = true;
    for (let t = 0; t < T && same; t++) same = gen0.ids[r0 * T + t] === later.ids[r * T + t];
    if (same) {
      unchanged++;
      logRatios.push(0);
      continue;
    }
    if (later.ppl[i]! < gen0.ppl[i0]!) more++;
    else less++;
    logRatios.push(Math.log(later.ppl[i]! / gen0.ppl[i0]!));
  }
  const n = logRatios.length;
  if (n === 0) return null;
  return { prompts: n, unchanged: unchanged / n, more_probable: more / n, less_probable: less / n, median_log_ratio: quantileSorted(sortedCopy(logRatios), 0.5) };
}
