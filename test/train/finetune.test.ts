import type { Blocks } from '../../datasets/block-set.js';
import { describeError } from '../../scripts/cli.js';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../models/onnx/io.js';
import { f32, i64, openSession } from '../../models/session.js';
import { readSafetensors } from '../../models/safetensors.js';
import { loadTrainingSource } from '../../models/model-dir/index.js';
import { buildArtifact, loadArtifact } from '../../models/train/artifact.js';
import { TrainEngine } from '../../models/train/engine.js';
import { countTargets, microBatches } from '../../pipeline/train/training-loop.js';
import { finetune } from '../../pipeline/train/finetune.js';
import { sharedPath } from '../helpers/shared.js';
import { patternBlocks, writeBlocksCorpus, writeTinyOptDir } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'finetune-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ADAMW = { name: 'adamw' as const, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Mean next-token NLL of blocks under a forward ONNX file, computed from its logits in JS. */
async function forwardNll(onnxPath: string, b: Blocks): Promise<number> {
  const model = loadModel(onnxPath);
  const s = await openSession(model, { threads: 1 });
  const T = b.blockSize;
  const feeds: Record<string, ReturnType<typeof f32>> = { input_ids: i64(Array.from(b.ids), [b.rows, T]) };
  for (const inp of model.graph!.input!) {
    const n = inp.name!;
    if (n === 'attention_mask') feeds[n] = i64(new Array(b.rows * T).fill(1), [b.rows, T]);
    if (n.startsWith('past_key_values')) {
      const dims = inp.type!.tensorType!.shape!.dim!;
      feeds[n] = f32(new Float32Array(0), [b.rows, Number(dims[1]!.dimValue), 0, Number(dims[3]!.dimValue)]);
    }
  }
  const logits = (await s.run(feeds)).logits!.data as Float32Array;
  const V = logits.length / (b.rows * T);
  let sum = 0;
  for (let r = 0; r < b.rows; r++)
    for (let t = 0; t + 1 < T; t++) {
      const row = logits.subarray((r * T + t) * V, (r * T + t + 1) * V);
      let mx = -Infinity;
      for (const x of row) mx = Math.max(mx, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - mx);
      sum += mx + Math.log(z) - row[b.ids[r * T + t + 1]!]!;
    }
  return sum / (b.rows * (T - 1));
}

describe('tiny OPT training', () => {
  it('overfits one small batch (loss < 0.05 within 300 AdamW steps)', async () => {
    const dir = join(tmp, 'opt-overfit');
    writeTinyOptDir(dir, 1);
    await buildArtifact(loadTrainingSource(dir), { microBatch: 4, blockSize: 16, optimizer: ADAMW }, join(tmp, 'art-overfit'));
    const art = loadArtifact(join(tmp, 'art-overfit'));
    expect(art.manifest.inputs).toEqual(['input_ids', 'attention_mask']);
    expect(art.manifest.params.length).toBeGreaterThan(20);
    const e = await TrainEngine.open(art.graphs, art.spec, art.initialWeights(), null, { threads: 1 });
    const data = patternBlocks(4, 16, 512, 2);
    const [mb] = microBatches(data, [0, 1, 2, 3], 4, 1);
    const n = countTargets(mb!, 16);
    expect(n).toBe(4 * 15);
    let first = NaN, loss = NaN, steps = 0;
    for (; steps < 300; steps++) {
      const r = await e.fusedStep(mb!, 1 / n, 3e-3, null);
      loss = r.lossSum / n;
      if (steps === 0) first = loss;
      if (loss < 0.05) break;
    }
    expect(first).toBeGreaterThan(5); // ~ln(512) at init
    expect(loss).toBeLessThan(0.05);
    const nll = await e.nll(mb!);
    expect(nll.length).toBe(4 * 15);
    await e.release();
  });

  it('finetune: corpus dirs in, best-epoch model dir out (reloadable, its forward scores the validation loss)', async () => {
    const model = join(tmp, 'opt-ft');
    writeTinyOptDir(model, 3);
    const train = patternBlocks(24, 16, 512, 4), valid = patternBlocks(8, 16, 512, 5);
    writeBlocksCorpus(join(tmp, 'train'), train);
    writeBlocksCorpus(join(tmp, 'valid'), valid);
    const out = join(tmp, 'ft-out');
    const res = await finetune({
      model, train: join(tmp, 'train'), valid: join(tmp, 'valid'), out, epochs: 3, batchSize: 8, microBatchSize: 4,
      lr: 3e-3, seed: 1, threads: 1, artifactCache: join(tmp, 'cache'), log: () => {},
    });
    expect(res.validLosses).toHaveLength(3);
    expect(res.steps).toBe(9);
    expect(res.validLosses[res.bestEpoch]).toBe(Math.min(...res.validLosses));
    expect(res.validLosses[2]!).toBeLessThan(res.validLosses[0]!);
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'onnx/model.onnx', 'train-summary.json']) expect(existsSync(join(out, f))).toBe(true);
    expect(existsSync(`${out}.ckpt`)).toBe(false);
    const again = loadTrainingSource(out);
    expect(again.kind).toBe('opt');
    // The written forward graph (KV-cache layout, rebuilt from the weights) scores exactly the best epoch's loss.
    expect(await forwardNll(join(out, 'onnx/model.onnx'), valid)).toBeCloseTo(res.validLosses[res.bestEpoch]!, 4);
    // A rerun of the finished command returns the stored result without training.
    const rerun = await finetune({ model, train: join(tmp, 'train'), valid: join(tmp, 'valid'), out, epochs: 3, batchSize: 8, microBatchSize: 4, lr: 3e-3, seed: 1, log: () => {} });
    expect(rerun.validLosses).toEqual(res.validLosses);
  });

  it('finetune with a prebuilt --artifact; a micro-batch mismatch and a missing corpus are clear errors', async () => {
    const model = join(tmp, 'opt-art');
    writeTinyOptDir(model, 4);
    const art = join(tmp, 'prebuilt');
    const m = await buildArtifact(loadTrainingSource(model), { microBatch: 2, blockSize: 16, optimizer: ADAMW }, art);
    expect(m.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.graphs.update.length).toBeGreaterThanOrEqual(1);
    const train = patternBlocks(4, 16, 512, 7);
    const base = { model, artifact: art, train, epochs: 1, batchSize: 4, lr: 1e-3, threads: 1, log: () => {} };
    await expect(finetune({ ...base, microBatchSize: 4, out: join(tmp, 'a1') })).rejects.toThrow(/microBatchSize 4: the artifact .* was built for micro-batch 2; pass microBatchSize 2/);
    await expect(finetune({ ...base, microBatchSize: 2, out: join(tmp, 'a2'), train: join(tmp, 'nope') })).rejects.toThrow(/--train .*nope: not a corpus directory/);
    // A library call's error names the option; the CLI tells the same error in flags.
    const bad = await finetune({ ...base, batchSize: 6, microBatchSize: 4, out: join(tmp, 'a4') }).catch((e: Error) => e);
    expect((bad as Error).message).toBe('batchSize 6: batchSize must be a multiple of microBatchSize');
    expect(describeError(bad)).toBe('collapse: --batch-size 6: --batch-size must be a multiple of --micro-batch-size\n');
    await expect(finetune({ ...base, microBatchSize: 2, beta1: 1.5, out: join(tmp, 'a5') })).rejects.toThrow(/^beta1 1\.5: /);
    const res = await finetune({ ...base, microBatchSize: 2, out: join(tmp, 'a3') });
    expect(res.steps).toBe(1);
    expect(res.validLosses).toHaveLength(1);
  });

  const torchExport = sharedPath('models/opt-tiny-torch-export-opset17');
  it.skipIf(!torchExport)('trains a torch.onnx export (input_ids only) and writes it back with replaced initializers', async () => {
    const out = join(tmp, 'torch-out');
    const train = patternBlocks(8, 16, 50272, 6);
    const res = await finetune({
      model: torchExport!, train, valid: train, out, epochs: 2, batchSize: 4, microBatchSize: 2, lr: 1e-2, seed: 2, threads: 1,
      artifactCache: join(tmp, 'cache'), log: () => {},
    });
    expect(res.validLosses[1]!).toBeLessThan(res.validLosses[0]!);
    const src = loadTrainingSource(out);
    expect(src.kind).toBe('onnx');
    expect(await forwardNll(join(out, 'onnx/model.onnx'), train)).toBeCloseTo(res.validLosses[res.bestEpoch]!, 4);
    // The exported graph holds the weights; no safetensors under exporter names pretends to be a checkpoint.
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toContain('"opt"');
  });
});
