// Per-row logit arithmetic for decoding: log-softmax normaliser, Hugging Face's logits processors
// (repetition penalty, min-new-tokens, no-repeat-ngram) and the sampling warpers (temperature, top-k, top-p).
// Rows are views into one Float32Array [rows, vocab]; processed values are kept as small per-row
// overrides (token -> value) so that the 50k-entry rows are never copied.

/** log(sum(exp(row))) in float64, stable. */
export function logSumExp(logits: Float32Array, offset: number, vocab: number): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v]!;
    if (x > max) max = x;
  }
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v]! - max);
  return max + Math.log(sum);
}

/** Options shared by every decoding strategy. */
export interface ProcessorOptions {
  /** HF RepetitionPenaltyLogitsProcessor: > 1 discourages every id already in the row (prompt + generated). */
  repetitionPenalty?: number;
  /** HF MinNewTokensLengthLogitsProcessor: EOS is -inf while fewer than this many tokens were generated. */
  minNewTokens?: number;
  /** HF NoRepeatNGramLogitsProcessor: bans tokens that would repeat an n-gram of the row (0 = off). */
  noRepeatNgramSize?: number;
  eosId: number;
}

/**
 * The processed values of one row that differ from the plain scores, as token -> new score.
 * `score(v)` is the unprocessed score of token v (a log-prob for beam search, a logit for sampling);
 * `ids` is the row's full history (prompt including padding, then generated tokens), as HF's input_ids.
 * In HF's order: the repetition penalty on every id of the row, then banned n-grams and EOS before the minimum
 * length set to -inf (the map's order is that of processorPlan's keys).
 */
export function processRow(
  score: (v: number) => number,
  ids: Int32Array,
  generated: number,
  opts: ProcessorOptions,
): Map<number, number> {
  const { keys, blocked } = processorPlan(ids, generated, opts);
  const p = opts.repetitionPenalty ?? 1;
  const out = new Map<number, number>();
  for (const v of keys) {
    if (blocked.has(v)) out.set(v, -Infinity);
    else {
      const s = score(v); // p !== 1 here: without a penalty only blocked tokens are keys
      out.set(v, s < 0 ? s * p : s / p);
    }
  }
  return out;
}

/**
 * The tokens whose scores processRow sets for a row (its keys), computed before the scores exist: beam search
 * asks a shortlist decoder for these tokens' logits and for the best of the others (DecoderOptions.shortlist).
 */
export function processedIds(ids: Int32Array, generated: number, opts: ProcessorOptions): number[] {
  return processorPlan(ids, generated, opts).keys;
}

/** The tokens the processors touch, in first-touched order, and those set to -inf (banned n-grams, early EOS). */
function processorPlan(ids: Int32Array, generated: number, opts: ProcessorOptions): { keys: number[]; blocked: Set<number> } {
  const keys = new Set<number>();
  const blocked = new Set<number>();
  if ((opts.repetitionPenalty ?? 1) !== 1) for (const id of ids) keys.add(id);
  const n = opts.noRepeatNgramSize ?? 0;
  if (n > 0 && ids.length + 1 >= n) for (const v of bannedNgramTokens(ids, n)) keys.add(v), blocked.add(v);
  if (generated < (opts.minNewTokens ?? 0)) keys.add(opts.eosId), blocked.add(opts.eosId);
  return { keys: [...keys], blocked };
}

/** Tokens that would complete an n-gram already present in `ids` (HF _get_ngrams / _get_generated_ngrams). */
export function bannedNgramTokens(ids: Int32Array, n: number): number[] {
  const len = ids.length;
  if (len + 1 < n) return [];
  const start = len - (n - 1); // the last n-1 tokens form the prefix to match
  const banned: number[] = [];
  for (let i = 0; i + n <= len; i++) {
    let match = true;
    for (let j = 0; j < n - 1; j++) {
      if (ids[i + j] !== ids[start + j]) {
        match = false;
        break;
      }
    }
    if (match) banned.push(ids[i + n - 1]!);
  }
  return banned;
}

/**
 * Keeps the `k` best (value, index) pairs seen so far, sorted best first; ties keep the earlier index,
 * as a stable sort over the flattened (beam, token) order would.
 */
export class TopK {
  readonly values: Float64Array;
  readonly indices: Int32Array;
  size = 0;

  constructor(readonly k: number) {
    this.values = new Float64Array(k);
    this.indices = new Int32Array(k);
  }

  reset(): void {
    this.size = 0;
  }

  /** The value a candidate must exceed to enter. */
  get threshold(): number {
    return this.size < this.k ? -Infinity : this.values[this.k - 1]!;
  }

  push(value: number, index: number): void {
    if (this.size === this.k && !(value > this.values[this.k - 1]!)) return;
    let i = this.size < this.k ? this.size++ : this.k - 1;
    while (i > 0 && value > this.values[i - 1]!) {
      this.values[i] = this.values[i - 1]!;
      this.indices[i] = this.indices[i - 1]!;
      i--;
    }
    this.values[i] = value;
    this.indices[i] = index;
  }
}

/**
 * Scans one row whose score for token v is `logits[offset + v] + shift`, except for the tokens in
 * `overrides` whose score is given (already including the shift), pushing (score, base + v) into `top`.
 */
export function scanRow(
  logits: Float32Array,
  offset: number,
  vocab: number,
  shift: number,
  overrides: Map<number, number>,
  base: number,
  top: TopK,
): void {
  // Compare raw logits against the threshold moved into logit space: one subtraction per row, not per token.
  let raw = top.threshold - shift;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v]!;
    if (x < raw || overrides.has(v)) continue;
    const s = x + shift;
    if (s > top.threshold || top.size < top.k) {
      top.push(s, base + v);
      raw = top.threshold - shift;
    }
  }
  pushOverrides(overrides, base, top);
}

/**
 * scanRow over a row's shortlist only: `tokens` ascending (the order the full scan meets them) with their
 * logits `values`. Gives scanRow's result when the shortlist holds the row's best top.k tokens outside `overrides`.
 * The loop is scanRow's, written out again: sharing it through a per-token callback or method made the whole-row
 * scan 40-70% slower (scripts/bench-generate.ts --whole-logits, search 0.8 -> 1.1-1.4 s).
 */
export function scanTokens(tokens: Int32Array, values: Float64Array, shift: number, overrides: Map<number, number>, base: number, top: TopK): void {
  let raw = top.threshold - shift;
  for (let i = 0; i < tokens.length; i++) {
    const v = tokens[i]!;
    const x = values[i]!;
    if (x < raw || overrides.has(v)) continue;
    const s = x + shift;
    if (s > top.threshold || top.size < top.k) {
      top.push(s, base + v);
      raw = top.threshold - shift;
    }
  }
  pushOverrides(overrides, base, top);
}

function pushOverrides(overrides: Map<number, number>, base: number, top: TopK): void {
  for (const [v, s] of overrides) if (s > -Infinity) top.push(s, base + v);
}

/** Sampling warpers on a processed logit row, in HF order: temperature, top-k, top-p. Returns probabilities. */
export function warpedProbabilities(
  row: Float64Array,
  opts: { temperature?: number; topK?: number; topP?: number },
): Float64Array {
  const vocab = row.length;
  const t = opts.temperature ?? 1;
  if (!(t > 0)) throw new Error(`temperature must be > 0, got ${t}`);
  const x = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) x[v] = row[v]! / t;
  const k = opts.topK ?? 0;
  if (k > 0 && k < vocab) {
    // HF TopKLogitsWarper: remove logits below the k-th largest (ties at the k-th are kept).
    const kth = Float64Array.from(x).sort().reverse()[k - 1]!;
    for (let v = 0; v < vocab; v++) if (x[v]! < kth) x[v] = -Infinity;
  }
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (x[v]! > max) max = x[v]!;
  const probs = new Float64Array(vocab);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += probs[v] = Math.exp(x[v]! - max);
  for (let v = 0; v < vocab; v++) probs[v]! /= sum;
  const p = opts.topP ?? 1;
  if (p < 1) {
    // HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is <= 1 - top_p,
    // always keeping the most likely one.
    const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => probs[a]! - probs[b]! || a - b);
    let cum = 0;
    for (let i = 0; i < vocab - 1; i++) {
      const v = order[i]!;
      cum += probs[v]!;
      if (cum <= 1 - p) probs[v] = 0;
    }
    let kept = 0;
    for (let v = 0; v < vocab; v++) kept += probs[v]!;
    for (let v = 0; v < vocab; v++) probs[v]! /= kept;
  }
  return probs;
}
