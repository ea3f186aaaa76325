// Batched beam search with the semantics of Hugging Face transformers 4.27-4.33 (`generate(num_beams=k)`,
// BeamSearchScorer + BeamHypotheses, early_stopping=False), which is what the paper's 2023 code ran:
//   - each step: log_softmax of every beam's last logits, then the processors (repetition penalty over the
//     beam's prompt + generated ids, min-new-tokens, no-repeat-ngram), then the beam's running score is added;
//   - per prompt the top 2k (beam, token) candidates in order: an EOS candidate ranked >= k is skipped, one
//     ranked < k finishes a hypothesis; the first k non-EOS candidates continue;
//   - a hypothesis is scored sum_logprobs / length ** length_penalty where, in those versions, length is the
//     full input_ids row: the (padded) prompt plus the generated tokens, EOS excluded. Versions >= 4.35
//     divide by the generated length instead, EOS included: `scoreLength: 'generated'`;
//   - a prompt is done once k hypotheses exist and the best running candidate cannot beat the worst kept one
//     (best / cur_len ** length_penalty, cur_len = the row length before this step's token);
//   - at max_new_tokens the running beams are finalised the same way; the best hypothesis is returned (the
//     `numReturnSequences` best, best first: HF's num_return_sequences), followed by EOS if it finished early
//     and padded with pad id to max_new_tokens.
// Initial beam scores are 0 for beam 0 and -1e9 for the others, so the first step draws from beam 0.
// A shortlist decoder (DecoderOptions.shortlist) returns each row's 2k best tokens and the processed tokens'
// logits instead of all of them; the scores and their order are the same as from the whole row.
import type { Decoder, Shortlist, ShortlistRequest, Logits } from './decoder/index.js';
import { logSumExp, processedIds, processRow, scanRow, scanTokens, TopK, type ProcessorOptions } from './logits.js';

export interface BeamSearchOptions extends ProcessorOptions {
  numBeams: number;
  maxNewTokens: number;
  padId: number;
  lengthPenalty?: number;
  /** Which length divides a hypothesis' sum of log-probs (see the header). Default 'sequence' (HF 4.27-4.33). */
  scoreLength?: 'sequence' | 'generated';
  /** HF num_return_sequences: the best finished hypotheses returned per prompt (1..numBeams, default 1). */
  numReturnSequences?: number;
  /** Called after every step with the number of steps done. */
  onStep?: (step: number) => void;
}

/**
 * One row per returned sequence, as HF returns them: numReturnSequences rows per prompt (one by default),
 * prompt after prompt, best first within a prompt (beam search) or in draw order (sampling).
 */
export interface GenerationResult {
  /** Per row: maxNewTokens generated ids (EOS then pad ids after an early finish). */
  tokens: Int32Array[];
  /** Per row: the returned hypothesis' score (beam search) or sum of log-probs (greedy / sampling). */
  scores: number[];
  /** Per row: generated tokens before padding (EOS included when it finished). */
  lengths: number[];
  /** Hypotheses finished by EOS during the search (all prompts), for diagnostics and tests. */
  finishedByEos: number;
}

interface Hypothesis {
  score: number;
  tokens: Int32Array; // generated tokens, EOS excluded
  order: number; // insertion order, for HF's tie rules
}

/** HF BeamHypotheses: keeps the k best finished hypotheses of one prompt. */
class Hypotheses {
  beams: Hypothesis[] = [];
  worst = 1e9;
  private added = 0;

  constructor(
    private readonly k: number,
    private readonly lengthPenalty: number,
  ) {}

  add(tokens: Int32Array, sumLogprobs: number, length: number): void {
    const score = sumLogprobs / length ** this.lengthPenalty;
    if (this.beams.length < this.k || score > this.worst) {
      this.beams.push({ score, tokens, order: this.added++ });
      if (this.beams.length > this.k) {
        // HF sorts (score, index) pairs and deletes the first: the lowest score, earliest on ties.
        const sorted = this.beams.map((b, i) => [b.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice(sorted[0]![1], 1);
        this.worst = sorted[1]![0];
      } else this.worst = Math.min(score, this.worst);
    }
  }

  isDone(bestSumLogprobs: number, curLen: number): boolean {
    if (this.beams.length < this.k) return false;
    return this.worst >= bestSumLogprobs / curLen ** this.lengthPenalty;
  }

  /**
   * The n best, best first, as HF's finalize pops them from sorted(beams, key=score): a stable ascending sort
   * popped from its end, so of equal scores the later inserted comes first.
   */
  ranked(n: number): Hypothesis[] {
    return [...this.beams].sort((a, b) => (b.score > a.score ? 1 : b.score < a.score ? -1 : b.order - a.order)).slice(0, n);
  }
}

/**
 * The request of a shortlist decoder for its rows: per row (`histRows`, rows of `hist` of `width`, first `len`
 * ids) the tokens the processors will set, padded with 0 (a token excluded but not processed is scored from
 * its logit like the others), and `k` candidates besides.
 */
function shortlistRequest(hist: Int32Array, width: number, histRows: ArrayLike<number>, len: number, generated: number, k: number, opts: BeamSearchOptions): ShortlistRequest {
  const lists = Array.from(histRows, (r) => processedIds(hist.subarray(r * width, r * width + len), generated, opts));
  const w = Math.max(0, ...lists.map((l) => l.length));
  const ids = new Int32Array(lists.length * w);
  lists.forEach((l, r) => ids.set(l, r * w));
  return { ids, width: w, k };
}

/**
 * scanRow of one beam's row from a shortlist decoder: the processors see the excluded tokens' logits; the
 * row's best other tokens and the excluded tokens the processors left alone are scanned in token order.
 */
function scanShortlistRow(c: Shortlist, vocab: number, lrow: number, lse: number, ids: Int32Array, generated: number, beamScore: number, base: number, top: TopK, opts: BeamSearchOptions): void {
  const w = c.excluded.width;
  const raw = new Map<number, number>();
  for (let j = 0; j < w; j++) raw.set(c.excluded.ids[lrow * w + j]!, c.excludedLogits[lrow * w + j]!);
  const overrides = processRow(
    (v) => {
      const x = raw.get(v);
      if (x === undefined) throw new Error(`beam search: token ${v} is processed but was not excluded from the shortlist`);
      return x - lse;
    },
    ids,
    generated,
    opts,
  );
  for (const [v, s] of overrides) overrides.set(v, s + beamScore);
  const list: [number, number][] = [];
  const best = new Set<number>();
  for (let j = 0; j < c.k; j++) {
    const x = c.values[lrow * c.k + j]!;
    if (x === -Infinity) break; // best first: the rest are -inf too
    const v = c.indices[lrow * c.k + j]!;
    list.push([v, x]);
    best.add(v);
  }
  // A row with fewer than k finite logits outside the excluded ids: its -inf places may hold excluded ids (masked to
  // -inf), so they are refilled as the whole row would rank its -inf tokens: the lowest ids that are not excluded.
  for (let v = 0; list.length < c.k && v < vocab; v++) if (!raw.has(v) && !best.has(v)) list.push([v, -Infinity]);
  for (const [v, x] of raw) if (!overrides.has(v)) list.push([v, x]);
  list.sort((p, q) => p[0] - q[0]);
  scanTokens(Int32Array.from(list, (p) => p[0]), Float64Array.from(list, (p) => p[1]), beamScore - lse, overrides, base, top);
}

/**
 * Row offsets (within a prompt's k decoder rows) for the new beams, given their parents' offsets: the first
 * child of each parent keeps the parent's row, the other children take the rows of beams that ended, in
 * order. Any placement gives the same results; this one leaves most cache rows where they are.
 */
export function placeBeams(parentOffsets: readonly number[]): Int32Array {
  const k = parentOffsets.length;
  const taken = new Uint8Array(k);
  const out = new Int32Array(k).fill(-1);
  parentOffsets.forEach((o, b) => {
    if (!taken[o]) (taken[o] = 1), (out[b] = o);
  });
  let free = 0;
  for (let b = 0; b < k; b++) {
    if (out[b] !== -1) continue;
    while (taken[free]) free++;
    taken[free] = 1;
    out[b] = free;
  }
  return out;
}

export async function beamSearch(
  decoder: Decoder,
  prompts: readonly Int32Array[],
  opts: BeamSearchOptions,
): Promise<GenerationResult> {
  const k = opts.numBeams;
  const P = prompts.length;
  const returned = opts.numReturnSequences ?? 1;
  if (!(k >= 1)) throw new Error(`numBeams must be >= 1, got ${k}`);
  if (!(Number.isInteger(returned) && returned >= 1 && returned <= k)) throw new Error(`numReturnSequences must be an integer from 1 to numBeams (${k}), got ${returned}`);
  if (!(opts.maxNewTokens >= 1)) throw new Error(`maxNewTokens must be >= 1, got ${opts.maxNewTokens}`);
  const lp = opts.lengthPenalty ?? 1;
  const promptLen = Math.max(...prompts.map((p) => p.length));
  const maxNew = opts.maxNewTokens;
  const width = promptLen + maxNew;

  // Per (prompt, beam) row: full history (left-padded prompt + generated), running score.
  let hist = new Int32Array(P * k * width);
  prompts.forEach((p, i) => {
    for (let b = 0; b < k; b++) {
      const row = (i * k + b) * width;
      hist.fill(opts.padId, row, row + promptLen - p.length);
      hist.set(p, row + promptLen - p.length);
    }
  });
  let beamScores = new Float64Array(P * k);
  for (let i = 0; i < P; i++) for (let b = 1; b < k; b++) beamScores[i * k + b] = -1e9;

  const hyps = Array.from({ length: P }, () => new Hypotheses(k, lp));
  const done = new Uint8Array(P);
  let finishedByEos = 0;
  // `active` lists the prompts still in the decoder, in decoder row order (k rows each). Within its k rows, a
  // prompt's beam b sits at row offset place[prompt * k + b]: a beam that continues from one parent takes the
  // parent's row, so the decoder moves only the cache rows of beams that fork (see placeBeams).
  let active = Array.from({ length: P }, (_, i) => i);
  const place = Int32Array.from({ length: P * k }, (_, i) => i % k);
  decoder.reserve?.(P * k, width);
  const request = (histRows: ArrayLike<number>, len: number, generated: number): ShortlistRequest | undefined =>
    decoder.shortlist ? shortlistRequest(hist, width, histRows, len, generated, 2 * k, opts) : undefined;
  // The decoder holds k rows per prompt from the start; the first logits come once per prompt.
  let logits: Logits = await decoder.prefill(prompts, opts.padId, k, request(Int32Array.from({ length: P }, (_, i) => i * k), promptLen, 0));
  let firstStep = true;
  const top = new TopK(2 * k);
  let generated = 0;

  for (; generated < maxNew; generated++) {
    const V = logits.vocab;
    const curLen = promptLen + generated;
    const nextParent: number[] = []; // per active prompt, per new beam: the beam it continues
    const nextTokens: number[] = [];
    const nextActive: number[] = [];
    const newHist = new Int32Array(hist.length);
    const newScores = new Float64Array(beamScores.length);

    active.forEach((prompt, a) => {
      top.reset();
      for (let b = 0; b < k; b++) {
        const row = prompt * k + b;
        const lrow = firstStep ? a : a * k + place[row]!;
        const off = lrow * V;
        const lse = logits.logSumExp?.[lrow] ?? logSumExp(logits.data, off, V);
        const ids = hist.subarray(row * width, row * width + curLen);
        if (logits.shortlist) {
          scanShortlistRow(logits.shortlist, V, lrow, lse, ids, generated, beamScores[row]!, b * V, top, opts);
          continue;
        }
        const overrides = processRow((v) => logits.data[off + v]! - lse, ids, generated, opts);
        for (const [v, s] of overrides) overrides.set(v, s + beamScores[row]!);
        scanRow(logits.data, off, V, beamScores[row]! - lse, overrides, b * V, top);
      }
      // BeamSearchScorer.process
      let kept = 0;
      for (let rank = 0; rank < top.size && kept < k; rank++) {
        const score = top.values[rank]!;
        const beam = Math.floor(top.indices[rank]! / V);
        const token = top.indices[rank]! % V;
        const src = prompt * k + beam;
        if (token === opts.eosId) {
          if (rank >= k) continue;
          const tokens = hist.slice(src * width + promptLen, src * width + curLen);
          // >= 4.35 counts the EOS in the generated length; 4.27-4.33 divide by the row without it.
          const length = opts.scoreLength === 'generated' ? generated + 1 : curLen;
          hyps[prompt]!.add(tokens, score, length);
          finishedByEos++;
        } else {
          const dst = prompt * k + kept;
          newHist.set(hist.subarray(src * width, src * width + curLen), dst * width);
          newHist[dst * width + curLen] = token;
          newScores[dst] = score;
          nextParent.push(beam);
          nextTokens.push(token);
          kept++;
        }
      }
      if (kept < k) throw new Error(`beam search: only ${kept} of ${k} continuations for prompt ${prompt} (vocabulary too small?)`);
      const curForDone = opts.scoreLength === 'generated' ? generated + 1 : curLen;
      if (hyps[prompt]!.isDone(top.values[0]!, curForDone)) done[prompt] = 1;
      else nextActive.push(prompt);
    });
    // Finished prompts keep their final beams in `newHist` / `newScores` but leave the decoder.
    hist = newHist;
    beamScores = newScores;
    opts.onStep?.(generated + 1);
    if (nextActive.length === 0 || generated + 1 === maxNew) {
      generated++;
      break;
    }
    const keep = new Set(nextActive);
    const from = new Int32Array(nextActive.length * k);
    const tokens = new Int32Array(nextActive.length * k);
    const histRows = new Int32Array(nextActive.length * k); // per new decoder row, its beam's row of `hist`
    let na = 0;
    active.forEach((prompt, a) => {
      if (!keep.has(prompt)) return;
      const parents = nextParent.slice(a * k, (a + 1) * k);
      const oldPlace = place.slice(prompt * k, (prompt + 1) * k);
      const newPlace = placeBeams(parents.map((parent) => oldPlace[parent]!));
      for (let b = 0; b < k; b++) {
        from[na * k + newPlace[b]!] = a * k + oldPlace[parents[b]!]!;
        tokens[na * k + newPlace[b]!] = nextTokens[a * k + b]!;
        histRows[na * k + newPlace[b]!] = prompt * k + b;
        place[prompt * k + b] = newPlace[b]!;
      }
      na++;
    });
    decoder.select(from);
    firstStep = false;
    active = nextActive;
    logits = await decoder.step(tokens, request(histRows, promptLen + generated + 1, generated + 1));
  }

  // BeamSearchScorer.finalize: running beams of unfinished prompts become hypotheses.
  const out: GenerationResult = { tokens: [], scores: [], lengths: [], finishedByEos };
  const total = promptLen + generated;
  for (let i = 0; i < P; i++) {
    const h = hyps[i]!;
    if (!done[i]) {
      for (let b = 0; b < k; b++) {
        const row = i * k + b;
        const length = opts.scoreLength === 'generated' ? generated : total;
        h.add(hist.slice(row * width + promptLen, row * width + total), beamScores[row]!, length);
      }
    }
    for (const hyp of h.ranked(returned)) {
      const tokens = new Int32Array(maxNew).fill(opts.padId);
      tokens.set(hyp.tokens);
      let length = hyp.tokens.length;
      if (length < maxNew) tokens[length++] = opts.eosId;
      out.tokens.push(tokens);
      out.scores.push(hyp.score);
      out.lengths.push(length);
    }
  }
  return out;
}
