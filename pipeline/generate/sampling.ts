// Greedy decoding and ancestral sampling with Hugging Face's semantics (greedy_search / sample):
// the processors act on the raw logits (repetition penalty: s < 0 -> s * p, else s / p; min-new-tokens;
// no-repeat-ngram), sampling then applies temperature, top-k and top-p and draws from the softmax.
// A row that emits EOS is finished; it is padded with pad id, and decoding stops when every row is.
// Each prompt draws from its own Rng seeded by (seed, prompt key), so that a prompt's sample does not
// depend on the batch or shard it falls in. numReturnSequences = k draws k independent samples per prompt
// (HF's num_return_sequences): the prompt is run once and held in k decoder rows; sample 0 draws from the
// prompt's own stream (so it is the sample that k = 1 gives), sample j > 0 from (that stream's seed, j).
import { Rng } from '../../util/rng.js';
import type { GenerationResult } from './beam-search.js';
import type { Decoder } from './decoder/index.js';
import { logSumExp, processRow, warpedProbabilities, type ProcessorOptions } from './logits.js';

export interface SamplingOptions extends ProcessorOptions {
  maxNewTokens: number;
  padId: number;
  /** false: greedy (argmax). */
  doSample: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Per prompt, a number mixed into the seed (e.g. the prompt's block id); default its index. */
  keys?: readonly number[];
  /** Samples per prompt (HF num_return_sequences; sampling only, default 1). */
  numReturnSequences?: number;
  onStep?: (step: number) => void;
}

/** A 32-bit mix of seed and key, so that nearby keys get unrelated streams. */
function mixSeed(seed: number, key: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(key + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

/** The seed of sample `rank` of the prompt with `key`: rank 0 is the prompt's own stream. */
export function sampleSeed(seed: number, key: number, rank: number): number {
  const own = mixSeed(seed, key);
  return rank === 0 ? own : mixSeed(own, rank);
}

export async function sampleSearch(decoder: Decoder, prompts: readonly Int32Array[], opts: SamplingOptions): Promise<GenerationResult> {
  const k = opts.numReturnSequences ?? 1;
  const maxNew = opts.maxNewTokens;
  if (!(maxNew >= 1)) throw new Error(`maxNewTokens must be >= 1, got ${maxNew}`);
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`numReturnSequences must be an integer >= 1, got ${k}`);
  if (k > 1 && !opts.doSample) throw new Error(`numReturnSequences ${k}: greedy decoding returns one sequence per prompt; sample or use beam search`);
  const P = prompts.length * k; // rows: prompt i's samples are rows i * k .. i * k + k - 1
  const promptLen = Math.max(...prompts.map((p) => p.length));
  const width = promptLen + maxNew;
  const hist = new Int32Array(P * width).fill(opts.padId);
  for (let i = 0; i < P; i++) hist.set(prompts[Math.floor(i / k)]!, i * width + promptLen - prompts[Math.floor(i / k)]!.length);
  const rngs = Array.from({ length: P }, (_, i) => {
    const p = Math.floor(i / k);
    return new Rng(sampleSeed(opts.seed ?? 0, opts.keys?.[p] ?? p, i % k));
  });
  const lengths = new Array<number>(P).fill(maxNew);
  const scores = new Array<number>(P).fill(0);
  const finished = new Uint8Array(P);

  decoder.reserve?.(P, width);
  let logits = await decoder.prefill(prompts, opts.padId, k);
  for (let t = 0; t < maxNew; t++) {
    const V = logits.vocab;
    const tokens = new Int32Array(P);
    for (let i = 0; i < P; i++) {
      const curLen = promptLen + t;
      if (finished[i]) {
        tokens[i] = opts.padId;
        hist[i * width + curLen] = opts.padId;
        continue;
      }
      const lrow = t === 0 ? Math.floor(i / k) : i; // the prefill's logits come once per prompt
      const off = lrow * V;
      const row = new Float64Array(V);
      for (let v = 0; v < V; v++) row[v] = logits.data[off + v]!;
      const ids = hist.subarray(i * width, i * width + curLen);
      for (const [v, s] of processRow((v) => row[v]!, ids, t, opts)) row[v] = s;
      let tok = 0;
      if (opts.doSample) {
        const probs = warpedProbabilities(row, opts);
        let u = rngs[i]!.next();
        tok = V - 1;
        for (let v = 0; v < V; v++) {
          u -= probs[v]!;
          if (u < 0 && probs[v]! > 0) {
            tok = v;
            break;
          }
        }
        while (probs[tok] === 0 && tok > 0) tok--; // rounding left u >= 0: take the last possible token
      } else {
        for (let v = 1; v < V; v++) if (row[v]! > row[tok]!) tok = v;
      }
      // The score is the model's own log-probability of the chosen tokens (before processors).
      scores[i]! += logits.data[off + tok]! - (logits.logSumExp?.[lrow] ?? logSumExp(logits.data, off, V));
      tokens[i] = tok;
      hist[i * width + curLen] = tok;
      if (tok === opts.eosId) {
        finished[i] = 1;
        lengths[i] = t + 1;
      }
    }
    opts.onStep?.(t + 1);
    if (t + 1 === maxNew || finished.every((f) => f === 1)) break;
    logits = await decoder.step(tokens);
  }
  return {
    tokens: Array.from({ length: P }, (_, i) => hist.slice(i * width + promptLen, (i + 1) * width)),
    scores,
    lengths,
    finishedByEos: finished.reduce((a, b) => a + b, 0),
  };
}
