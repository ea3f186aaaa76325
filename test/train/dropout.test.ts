// Dropout in training graphs: the masks' statistics, the sites against a naive Hugging Face OPT forward fed the
// same masks, the gradient through a fixed mask against finite differences, evaluation without dropout, and the
// engine's replay of a micro-batch's masks.
import * as ortRuntime from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildGradientGraph, type DropoutMask } from '../../models/grad/index.js';
import { type GraphProto, type ModelProto } from '../../models/onnx/proto.js';
import { buildOptForward, initOptWeights } from '../../models/opt/index.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { openSession, type ort } from '../../models/session.js';
import { buildArtifact, describeDropout, loadArtifact } from '../../models/train/artifact.js';
import type { ForwardSource as SourceModel } from '../../models/model-dir/index.js';
import { dropoutMasks, fillDropoutMask } from '../../models/train/dropout.js';
import { TrainEngine } from '../../models/train/engine.js';
import { Rng, seedOf } from '../../util/rng.js';
import { checkModelGradients, type Batch } from '../grad/model-fd.js';
import { toDouble } from '../grad/precision.js';
import { naiveOptLogits, noisyWeights } from '../opt/naive.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = TINY_CONFIG;
const B = 2, T = 8, H = cfg.hidden_size, NH = cfg.num_attention_heads;
const rates = { hidden: 0.3, attention: 0.2 };

function batch(seed: number): Batch {
  const r = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => 4 + r.int(cfg.vocab_size - 4));
  return { batch: B, seq: T, ids, labels: ids.map((v, k) => (k === 3 ? -100 : v)) };
}
const int64 = (v: readonly number[], dims: readonly number[]): ort.Tensor => new ortRuntime.Tensor('int64', BigInt64Array.from(v.map(BigInt)), dims);
const inputNames = (m: ModelProto): string[] => (m.graph as GraphProto).input.map((v) => v.name ?? '');

describe('dropout masks', () => {
  it('keep rate 1 - p and kept values exactly float32(1 / (1 - p)), within 5 sigma over 2^20 draws', () => {
    const n = 1 << 20;
    for (const p of [0.1, 0.5]) {
      const m = new Float32Array(n);
      fillDropoutMask(m, p, 12345);
      const scale = Math.fround(1 / (1 - p));
      let kept = 0, sum = 0, other = 0;
      for (const v of m) {
        if (v === scale) kept++;
        else if (v !== 0) other++;
        sum += v;
      }
      expect(other).toBe(0);
      const sigma = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * sigma);
      // E[mask] = 1: dropout keeps the expected activation.
      expect(Math.abs(sum / n - 1)).toBeLessThan((5 * sigma) / (1 - p));
    }
    const ones = new Float32Array(100);
    fillDropoutMask(ones, 0, 1);
    expect(ones.every((v) => v === 1)).toBe(true);
    expect(() => fillDropoutMask(ones, 1, 1)).toThrow(/\[0, 1\)/);
  });

  it('a mask is a function of its seed; seeds from (seed, step, micro, site) give independent masks', () => {
    const n = 1 << 18, p = 0.1;
    const a = new Float32Array(n), a2 = new Float32Array(n), b = new Float32Array(n);
    fillDropoutMask(a, p, seedOf(7, 3, 0, 0));
    fillDropoutMask(a2, p, seedOf(7, 3, 0, 0));
    fillDropoutMask(b, p, seedOf(7, 3, 1, 0));
    expect(a2.every((v, i) => v === a[i])).toBe(true);
    // Independent masks agree with probability p^2 + (1-p)^2.
    let agree = 0;
    for (let i = 0; i < n; i++) if ((a[i] === 0) === (b[i] === 0)) agree++;
    const q = p * p + (1 - p) * (1 - p);
    expect(Math.abs(agree / n - q)).toBeLessThan(5 * Math.sqrt((q * (1 - q)) / n));
    expect(new Set([seedOf(1, 2, 3, 0), seedOf(1, 3, 2, 0), seedOf(2, 1, 3, 0), seedOf(1, 2, 3, 1), seedOf(2 ** 32 + 1, 2, 3, 0)]).size).toBe(5);
    // dropoutMasks: one stream per site.
    const sites: DropoutMask[] = [{ name: 'x', shape: [64], ratio: 0.5 }, { name: 'y', shape: [64], ratio: 0.5 }];
    const m = dropoutMasks(sites, { seed: 1, step: 2, micro: 0 }, new Map());
    expect(m.get('x')).not.toEqual(m.get('y'));
  });
});

/** Sum of next-token NLL over non-ignored labels, from naive HF OPT logits with the given dropout multipliers. */
function naiveLossSum(weights: Map<string, Float32Array>, b: Batch, masks: Map<string, Float32Array>): number {
  let sum = 0;
  for (let s = 0; s < B; s++) {
    const ids = b.ids.slice(s * T, (s + 1) * T);
    const slice = (name: string, size: number) => masks.get(name)!.subarray(s * size, (s + 1) * size);
    const logits = naiveOptLogits(cfg, weights, ids, ids.map(() => 1), {
      attention: (l) => slice(`dropout_mask.${l}.attention`, NH * T * T),
      outProj: (l) => slice(`dropout_mask.${l}.out_proj`, T * H),
      fc2: (l) => slice(`dropout_mask.${l}.fc2`, T * H),
    });
    const V = cfg.vocab_size;
    for (let t = 0; t < T - 1; t++) {
      const label = b.labels[s * T + t + 1]!;
      if (label === -100) continue;
      const row = logits.subarray(t * V, (t + 1) * V);
      const max = Math.max(...row);
      let z = 0;
      for (const v of row) z += Math.exp(v - max);
      sum += max + Math.log(z) - row[label]!;
    }
  }
  return sum;
}

describe('dropout sites of the OPT training graph', () => {
  const weights = noisyWeights(cfg, 3);
  const forward = buildOptForward(cfg, weights, { withPast: false, present: false, dropout: rates });
  const b = batch(1);

  it('are the attention probabilities, out_proj and fc2 of every layer, and the loss matches a naive HF forward with the same masks', async () => {
    const gg = await buildGradientGraph(forward, { batch: B, seq: T, dropout: 'masks' });
    const expected = [0, 1].flatMap((l) => [
      { name: `dropout_mask.${l}.attention`, shape: [B, NH, T, T], ratio: Math.fround(0.2) },
      { name: `dropout_mask.${l}.out_proj`, shape: [B, T, H], ratio: Math.fround(0.3) },
      { name: `dropout_mask.${l}.fc2`, shape: [B, T, H], ratio: Math.fround(0.3) },
    ]);
    expect(gg.dropoutMasks).toEqual(expected);
    const masks = dropoutMasks(gg.dropoutMasks, { seed: 5, step: 0, micro: 0 }, new Map());
    const s = await openSession(gg.model, { threads: 1 });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(b.ids, [B, T]), attention_mask: int64(b.ids.map(() => 1), [B, T]), labels: int64(b.labels, [B, T]),
      loss_scale: new ortRuntime.Tensor('float32', Float32Array.of(1), []),
    };
    for (const p of gg.params) feeds[p] = new ortRuntime.Tensor('float32', weights.get(p)!, gg.shapes[p]!);
    const lossWith = async (m: Map<string, Float32Array>) => {
      for (const d of gg.dropoutMasks) feeds[d.name] = new ortRuntime.Tensor('float32', m.get(d.name)!, d.shape);
      return Number((await s.run(feeds, ['loss_sum'])).loss_sum!.data[0]);
    };
    const dropped = await lossWith(masks);
    const ones = new Map(gg.dropoutMasks.map((d) => [d.name, new Float32Array(masks.get(d.name)!.length).fill(1)]));
    const plain = await lossWith(ones);
    await s.release();
    expect(dropped).toBeCloseTo(naiveLossSum(weights, b, masks), 2);
    expect(plain).toBeCloseTo(naiveLossSum(weights, b, ones), 2);
    expect(Math.abs(dropped - plain)).toBeGreaterThan(0.05); // the masks change the loss
    // Without `dropout: 'masks'` the Dropout nodes are identities: the loss of all-ones masks.
    const noMasks = await buildGradientGraph(forward, { batch: B, seq: T });
    expect(noMasks.dropoutMasks).toEqual([]);
    expect(inputNames(noMasks.model).some((n) => n.startsWith('dropout_mask'))).toBe(false);
  });

  it('the gradient through a fixed mask matches finite differences (float64 copy of the graph)', async () => {
    const f64 = toDouble(forward);
    const gg = await buildGradientGraph(f64, { batch: B, seq: T, dropout: 'masks' });
    const masks = dropoutMasks(gg.dropoutMasks, { seed: 9, step: 4, micro: 1 }, new Map());
    const extraFeeds = Object.fromEntries(gg.dropoutMasks.map((d) => [d.name, new ortRuntime.Tensor('float64', Float64Array.from(masks.get(d.name)!), d.shape)]));
    const r = await checkModelGradients(f64, gg, b, { samples: 3, eps: 1e-6, rtol: 1e-5, atolFrac: 1e-6, extraFeeds });
    expect(r.checked).toBeGreaterThan(3 * gg.params.length - 1);
    expect(r.worst, r.detail).toBeLessThanOrEqual(1);
    // An entry of fc2's input gradient through a dropped unit is zero: the fc2 bias gradient is the masked sum.
    const fc2Mask = masks.get('dropout_mask.1.fc2')!;
    expect(fc2Mask.some((v) => v === 0)).toBe(true);
  });
});

describe('training artifact with dropout', () => {
  it('feeds masks to the gradient graphs only; evaluation has no dropout; a micro-batch replays its masks', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'dropout-art-'));
    try {
      const weights = initOptWeights(cfg, 2);
      const src: SourceModel = { dir: '(test)', kind: 'opt', optConfig: cfg, forward: buildOptForward(cfg, weights, { withPast: false, present: false }), weights, onnxPath: null, padId: 1 };
      const opt = { name: 'adamw' as const, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
      const withDrop = await buildArtifact(src, { microBatch: B, blockSize: T, optimizer: opt, dropout: rates }, join(tmp, 'drop'));
      const without = await buildArtifact(src, { microBatch: B, blockSize: T, optimizer: opt }, join(tmp, 'plain'));
      expect(withDrop.key).not.toBe(without.key);
      expect(withDrop.dropout.masks.length).toBe(6);
      expect(without.dropout.masks).toEqual([]);
      const a = loadArtifact(join(tmp, 'drop')), p = loadArtifact(join(tmp, 'plain'));
      const { loadModel } = await import('../../models/onnx/io.js');
      const evalModel = loadModel(a.graphs.eval as string);
      expect(inputNames(evalModel).some((n) => n.startsWith('dropout'))).toBe(false);
      expect((evalModel.graph as GraphProto).node.some((n) => n.opType === 'Dropout')).toBe(false);
      expect(inputNames(loadModel(a.graphs.grad as string)).filter((n) => n.startsWith('dropout_mask')).length).toBe(6);

      const ea = await TrainEngine.open(a.graphs, a.spec, a.initialWeights(), null, { threads: 1 });
      const ep = await TrainEngine.open(p.graphs, p.spec, p.initialWeights(), null, { threads: 1 });
      const bt = batch(4);
      const mb = { inputIds: BigInt64Array.from(bt.ids.map(BigInt)), attentionMask: new BigInt64Array(B * T).fill(1n), labels: BigInt64Array.from(bt.labels.map(BigInt)) };
      const nllA = await ea.nll(mb), nllP = await ep.nll(mb);
      for (let i = 0; i < nllP.length; i++) expect(nllA[i]).toBeCloseTo(nllP[i]!, 5);

      await expect(ea.accumulate(mb, 1)).rejects.toThrow(/dropout key/);
      const grads = async (key: { seed: number; step: number; micro: number }) => {
        const r = await ea.accumulate(mb, 1, key);
        const g = new Map([...ea.accumulated()!].map(([k, v]) => [k, v.slice()]));
        ea.discardGradients();
        return { loss: r.lossSum, g };
      };
      const k1 = await grads({ seed: 1, step: 3, micro: 0 });
      const k1again = await grads({ seed: 1, step: 3, micro: 0 });
      const k2 = await grads({ seed: 1, step: 4, micro: 0 });
      expect(k1again.loss).toBe(k1.loss);
      for (const [name, g] of k1.g) expect(k1again.g.get(name)).toEqual(g);
      expect(k2.loss).not.toBe(k1.loss);
      await Promise.all([ea.release(), ep.release()]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('a foreign graph trains without dropout and says its sites are unknown', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'dropout-foreign-'));
    try {
      const weights = initOptWeights(cfg, 2);
      const forward = buildOptForward(cfg, weights, { withPast: false, present: false });
      const src: SourceModel = { dir: '(test)', kind: 'onnx', optConfig: null, forward, weights, onnxPath: null, padId: 1 };
      const lines: string[] = [];
      const m = await buildArtifact(src, { microBatch: B, blockSize: T, optimizer: { name: 'sgd', weightDecay: 0, beta1: 0, beta2: 0, eps: 0 }, dropout: rates }, join(tmp, 'a'), (s) => lines.push(s));
      expect(m.dropout).toEqual({ rates, sites: 'unknown', masks: [] });
      expect(lines.join('\n')).toMatch(/dropout sites unknown.*not applied/);
      expect(describeDropout('onnx', null)).toMatch(/^dropout sites unknown/);
      expect(describeDropout('opt', { hidden: 0.1, attention: 0 })).toMatch(/^dropout 0.1 after the attention output projection and fc2/);
      expect(describeDropout('opt', { hidden: 0, attention: 0 })).toBe('dropout off');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});


describe('resume key', () => {
  it('a rerun with other dropout or optimizer options is refused by name; defaults leave older keys unchanged', async () => {
    const { finetuneResumeKey } = await import('../../pipeline/train/finetune.js');
    const { keyChanges } = await import('../../util/resume-key.js');
    const o = { model: 'm', train: 't', out: 'o', epochs: 1, batchSize: 4, microBatchSize: 4, lr: 1e-3 };
    const base = finetuneResumeKey(o, null, 'sha');
    expect(finetuneResumeKey({ ...o, dropout: 0, attentionDropout: 0, decayExclude: 'bias-and-norm', minLr: 0 }, null, 'sha')).toEqual(base);
    expect(keyChanges(base, finetuneResumeKey({ ...o, dropout: 0.1, decayExclude: 'none', schedule: 'cosine-epoch', minLr: 1e-6 }, null, 'sha')).sort()).toEqual([
      'decay-exclude (unset) -> "none"', 'dropout (unset) -> 0.1', 'min-lr (unset) -> 0.000001', 'schedule "linear" -> "cosine-epoch"',
    ]);
  });
});
