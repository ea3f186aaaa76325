// Per-sample perplexity through the NLL graph equals a naive computation from the forward graph's logits
// (log-softmax in plain JavaScript, float64).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { saveModel } from '../../models/onnx/io.js';
import { DataType, type ModelProto } from '../../models/onnx/proto.js';
import { floatData, i64, openSession } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { trailingPadLengths, type Blocks } from '../../datasets/block-set.js';
import { forwardModelPath, openScorer, scoreBlocks } from '../../pipeline/eval/perplexity.js';
import { sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'eval-ppl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny causal LM: embeddings, a causal prefix sum (CumSum over time), masked, then a linear head. */
function tinyForward(V: number, H: number, seed: number): ModelProto {
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  g.input('input_ids', DataType.INT64, ['batch', 'seq']);
  g.input('attention_mask', DataType.INT64, ['batch', 'seq']);
  const E = g.initializer('embed', [V, H], Float32Array.from({ length: V * H }, () => rng.normal()));
  const W = g.initializer('head', [H, V], Float32Array.from({ length: H * V }, () => rng.normal() * 0.7));
  const b = g.initializer('bias', [V], Float32Array.from({ length: V }, () => rng.normal()));
  const x = g.op('Gather', [E, 'input_ids'], { axis: 0 });
  const m = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { to: DataType.FLOAT }), g.i64([-1])]);
  const h = g.op('CumSum', [g.op('Mul', [x, m]), g.i64([1])]);
  g.op('Add', [g.op('MatMul', [h, W]), b], {}, { outputs: ['logits'] });
  g.output('logits', DataType.FLOAT, ['batch', 'seq', V]);
  return g.model();
}

function randomBlocks(rows: number, blockSize: number, vocab: number, seed: number): Blocks {
  const rng = new Rng(seed);
  return { ids: Int32Array.from({ length: rows * blockSize }, () => rng.int(vocab)), rows, blockSize };
}

/** exp(mean NLL) per row from full logits, in float64; rows with `lengths` count their first length-1 predictions. */
async function naivePerplexity(modelPath: string, blocks: Blocks, withMask: boolean, lengths?: number[]): Promise<number[]> {
  const session = await openSession(modelPath, { threads: 1 });
  const { rows, blockSize: T, ids } = blocks;
  const feeds: Record<string, ReturnType<typeof i64>> = { input_ids: i64(Array.from(ids), [rows, T]) };
  if (withMask) feeds.attention_mask = i64(new Array(rows * T).fill(1), [rows, T]);
  const logits = floatData((await session.run(feeds)).logits, 'logits');
  await session.release();
  const V = logits.length / (rows * T);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let nll = 0;
    const k = (lengths?.[r] ?? T) - 1;
    if (k < 1) continue;
    for (let t = 0; t < k; t++) {
      const base = (r * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[base + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[base + v]! - max);
      nll -= logits[base + ids[r * T + t + 1]!]! - max - Math.log(z);
    }
    out.push(Math.exp(nll / k));
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!) / want[i]!).toBeLessThan(1e-4);
}

describe('per-sample perplexity', () => {
  it('matches a naive log-softmax over the logits of a hand-built causal graph (batches of 3, last one partial)', async () => {
    const path = join(tmp, 'tiny', 'model.onnx');
    mkdirSync(join(tmp, 'tiny'), { recursive: true });
    saveModel(tinyForward(37, 8, 1), path);
    const blocks = randomBlocks(7, 12, 37, 2);
    const want = await naivePerplexity(path, blocks, true);
    const scorer = await openScorer(join(tmp, 'tiny'), { threads: 1, cacheDir: join(tmp, 'cache') });
    const got = await scoreBlocks(scorer, blocks, { batchSize: 3 });
    await scorer.close();
    expectClose(got.samplePpl, want);
    // Perplexity over all blocks: exp of the mean NLL of all 7 x 11 predictions.
    const meanNll = want.reduce((a, p) => a + Math.log(p), 0) / want.length;
    expect(Math.abs(got.perplexity - Math.exp(meanNll)) / Math.exp(meanNll)).toBeLessThan(1e-4);
    expect(got.predictions).toBe(7 * 11);
    // Not trivially uniform: the random model's perplexity differs from the vocabulary size.
    expect(Math.abs(got.perplexity - 37)).toBeGreaterThan(1);
  });

  it('scores only the real tokens of padded rows and leaves rows under 2 tokens out', async () => {
    const blocks = randomBlocks(5, 10, 36, 4); // ids 0..35: the pad id 36 appears only as padding
    const lengths = [10, 6, 1, 2, 0];
    for (let r = 0; r < 5; r++) blocks.ids.fill(36, r * 10 + lengths[r]!, (r + 1) * 10);
    expect(Array.from(trailingPadLengths(blocks, 36))).toEqual(lengths);
    const want = await naivePerplexity(join(tmp, 'tiny', 'model.onnx'), blocks, true, lengths);
    const scorer = await openScorer(join(tmp, 'tiny'), { threads: 1 });
    const got = await scoreBlocks(scorer, { ...blocks, lengths }, { batchSize: 2 });
    await scorer.close();
    expectClose(got.samplePpl, want);
    expect(Array.from(got.scoredRows)).toEqual([0, 1, 3]);
    expect(got.unscored).toBe(2);
    expect(got.predictions).toBe(9 + 5 + 1);
  });

  it('rejects blocks too short to predict anything', async () => {
    const scorer = await openScorer(join(tmp, 'tiny'), { threads: 1, cacheDir: join(tmp, 'cache') });
    await expect(scorer.nll(Int32Array.of(1, 2), 2, 1)).rejects.toThrow(/at least 2/);
    await scorer.close();
  });

  const torchOpt = sharedPath('models/opt-tiny-torch-export-opset17');
  it.skipIf(!torchOpt)('matches the naive computation on the torch-exported tiny OPT (vocab 50272)', async () => {
    const blocks = randomBlocks(3, 16, 50272, 3);
    const scorer = await openScorer(torchOpt!, { threads: 2, cacheDir: join(tmp, 'cache-opt') });
    const got = await scoreBlocks(scorer, blocks, { batchSize: 2 });
    await scorer.close();
    const want = await naivePerplexity(forwardModelPath(torchOpt!), blocks, false);
    expectClose(got.samplePpl, want);
  });
});
