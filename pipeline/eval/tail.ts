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
