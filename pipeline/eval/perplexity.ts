// Perplexity of fixed-length token blocks under a causal LM, forward only, through the NLL graph
// (scoring-graph.ts), batched.
//   per-sample perplexity: exp(mean NLL of the T-1 next-token predictions inside one sample)
//   corpus perplexity:     exp(mean NLL over every prediction of every block), the Hugging Face
//                          run_clm convention for validation/test perplexity (all blocks have equal length).
import { EVAL_DEFAULTS } from './options.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeCausalLm, lmFeeds, type CausalLm } from '../../models/causal-lm.js';
import { CONFIG_FILE, forwardGraph, GRAPH_FILES, openModelDir } from '../../models/model-dir/index.js';
import type { ort } from '../../models/session.js';
import { floatData, openSession, type Provider } from '../../models/session.js';
import { decodeModel } from '../../models/onnx/proto.js';
import { progress } from '../../util/progress.js';
import type { Blocks } from '../../datasets/block-set.js';
import { NLL_OUTPUT } from '../../models/grad/loss.js';
import { cachedNllGraph } from './scoring-graph.js';


export interface ScorerOptions {
  provider?: Provider;
  threads?: number;
  /** Where the scoring graph is cached (default: the cache directory's nll/). */
  cacheDir?: string;
}

export interface Scorer {
  /** NLL [rows, blockSize-1] of token t+1 given <= t, for a batch of blocks. */
  nll(ids: Int32Array, rows: number, blockSize: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** The forward ONNX file of a model directory (the graph its model directory picks for scoring), or the file itself. */
export function forwardModelPath(modelPath: string): string {
  if (!existsSync(modelPath)) throw new Error(`model not found: ${modelPath} (pass a model directory or an .onnx file)`);
  if (statSync(modelPath).isFile()) return modelPath;
  if (existsSync(join(modelPath, CONFIG_FILE))) return forwardGraph(openModelDir(modelPath)).path;
  const found = GRAPH_FILES.map((rel) => join(modelPath, rel)).find((p) => existsSync(p));
  if (!found) throw new Error(`${modelPath} holds no forward graph (looked for ${GRAPH_FILES.join(', ')})`);
  return found;
}

export async function openScorer(modelPath: string, opts: ScorerOptions = {}): Promise<Scorer> {
  const forward = forwardModelPath(modelPath);
  const graphPath = await cachedNllGraph(forward, { cacheDir: opts.cacheDir });
  // Only the graph's inputs are needed: decode the file without resolving its external weights.
  const lm = describeCausalLm(decodeModel(readFileSync(forward)), forward);
  const session = await openSession(graphPath, { provider: opts.provider ?? 'cpu', threads: opts.threads });
  return {
    nll: (ids, rows, blockSize) => runNll(session, lm, ids, rows, blockSize),
    close: () => session.release(),
  };
}

async function runNll(session: ort.InferenceSession, lm: CausalLm, ids: Int32Array, rows: number, blockSize: number): Promise<Float32Array> {
  if (blockSize < 2) throw new Error(`blocks of ${blockSize} token(s) have no next-token predictions; need at least 2`);
  if (ids.length !== rows * blockSize) throw new Error(`ids holds ${ids.length} values, expected ${rows} x ${blockSize}`);
  const out = await session.run(lmFeeds(lm, { ids, rows, seq: blockSize }));
  const nll = floatData(out[NLL_OUTPUT], NLL_OUTPUT);
  if (nll.length !== rows * (blockSize - 1)) throw new Error(`scoring graph returned ${nll.length} values, expected ${rows} x ${blockSize - 1}`);
  return nll;
}

export interface BlockScores {
  /** exp(mean NLL) of each scored block (rows with at least 2 real tokens), in row order. */
  samplePpl: Float64Array;
  /** Mean NLL of each scored block (natural log). */
  sampleNll: Float64Array;
  /** Row index of each scored block. */
  scoredRows: Int32Array;
  /** Rows with fewer than 2 real tokens: no prediction to score. */
  unscored: number;
  /** Mean NLL over all predictions of all blocks, and their count. */
  meanNll: number;
  predictions: number;
  /** exp(meanNll). */
  perplexity: number;
}

/** Predictions of real tokens in row r: token t+1 < length (causal, so trailing padding changes nothing before it). */
export function realPredictions(blocks: Blocks, r: number): number {
  return Math.min(blocks.blockSize - 1, Math.max(0, (blocks.lengths?.[r] ?? blocks.blockSize) - 1));
}

/** The rows scoreBlocks scores (those with a real prediction), in order: the rows of its samplePpl. */
export function scoredRowsOf(blocks: Blocks): Int32Array {
  return Int32Array.from({ length: blocks.rows }, (_, r) => r).filter((r) => realPredictions(blocks, r) >= 1);
}

/** Scores every block in batches of `batchSize`, with a progress bar. */
export async function scoreBlocks(scorer: Scorer, blocks: Blocks, opts: { batchSize?: number; label?: string } = {}): Promise<BlockScores> {
  const { rows, blockSize, ids, lengths } = blocks;
  if (rows === 0) throw new Error('no blocks to score: the corpus is empty');
  const batch = Math.max(1, opts.batchSize ?? EVAL_DEFAULTS.batchSize);
  const per = blockSize - 1;
  const sampleNll: number[] = [];
  const scoredRows: number[] = [];
  let total = 0;
  let predictions = 0;
  const bar = progress(opts.label ?? 'perplexity', rows, { unit: 'samples', logEvery: rows >= 2000 ? Math.floor(rows / 10) : 0 });
  const start = Date.now();
  for (let r0 = 0; r0 < rows; r0 += batch) {
    const n = Math.min(batch, rows - r0);
    const nll = await scorer.nll(ids.subarray(r0 * blockSize, (r0 + n) * blockSize), n, blockSize);
    for (let b = 0; b < n; b++) {
      const k = realPredictions(blocks, r0 + b);
      if (k < 1) continue;
      let s = 0;
      for (let t = 0; t < k; t++) s += nll[b * per + t]!;
      sampleNll.push(s / k);
      scoredRows.push(r0 + b);
      total += s;
      predictions += k;
    }
    const done = r0 + n;
    bar.update(done, { rate: `${(done / ((Date.now() - start) / 1000 || 1)).toFixed(1)}/s` });
  }
  bar.stop();
  if (predictions === 0) throw new Error(`none of the ${rows} blocks has 2 or more real tokens: nothing to score`);
  const meanNll = total / predictions;
  return {
    samplePpl: Float64Array.from(sampleNll, Math.exp),
    sampleNll: Float64Array.from(sampleNll),
    scoredRows: Int32Array.from(scoredRows),
    unscored: rows - scoredRows.length,
    meanNll,
    predictions,
    perplexity: Math.exp(meanNll),
  };
}

/** One-shot helper: opens the model, scores the blocks, closes it. */
export async function perplexityOf(modelPath: string, blocks: Blocks, opts: ScorerOptions & { batchSize?: number; label?: string } = {}): Promise<BlockScores> {
  const scorer = await openScorer(modelPath, opts);
  try {
    return await scoreBlocks(scorer, blocks, opts);
  } finally {
    await scorer.close();
  }
}
