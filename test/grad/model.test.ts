// Whole-graph tests: a torch-style opset-14 transformer (float64), the project's tiny OPT and the torch.onnx export
// in ../shared (float32): loss_sum against a JavaScript cross-entropy of the forward's logits, gradients against
// central finite differences, the NLL graph, loss_scale, all-ignored batches and the clear errors.
import { describe, expect, it } from 'vitest';
import * as ortRuntime from 'onnxruntime-node';
import { buildGradientGraph, buildNllGraph } from '../../models/grad/index.js';
import { withNllHead } from '../../models/grad/loss.js';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { loadModel } from '../../models/onnx/io.js';
import { DataType, type GraphProto, type ModelProto, type TensorProto } from '../../models/onnx/proto.js';
import { buildOptForward, initOptWeights } from '../../models/opt/index.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { openSession, type ort } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { sharedPath } from '../helpers/shared.js';
import { checkModelGradients, compareGrads, floatValues, referenceLossSum, type Batch } from './model-fd.js';
import { toDouble } from './precision.js';
import { buildToyTransformer } from './toy-transformer.js';

function randomBatch(batch: number, seq: number, vocab: number, seed: number, ignore: number[] = []): Batch {
  const rng = new Rng(seed);
  const ids = Array.from({ length: batch * seq }, () => rng.int(vocab));
  const labels = ids.map((v, k) => (ignore.includes(k) ? -100 : v));
  return { batch, seq, ids, labels };
}

const graphOf = (m: ModelProto): GraphProto => m.graph as GraphProto;
const int64 = (v: readonly number[], dims: readonly number[]): ort.Tensor => new ortRuntime.Tensor('int64', BigInt64Array.from(v.map(BigInt)), dims);

async function runNll(model: ModelProto, b: Batch): Promise<{ nll: ArrayLike<number>; dims: readonly number[]; outputs: readonly string[] }> {
  const s = await openSession(model, { threads: 1 });
  const feeds: Record<string, ort.Tensor> = { input_ids: int64(b.ids, [b.batch, b.seq]) };
  if (s.inputNames.includes('attention_mask')) feeds.attention_mask = int64(b.mask ?? b.ids.map(() => 1), [b.batch, b.seq]);
  const r = await s.run(feeds);
  await s.release();
  return { nll: r.nll!.data as Float32Array, dims: r.nll!.dims, outputs: s.outputNames };
}

describe('torch-style opset-14 transformer (decomposed LayerNorm, shape subgraphs, tied head), float64', () => {
  const dims = { vocab: 11, hidden: 8, ffn: 16, positions: 16, layers: 2 };
  const forward = buildToyTransformer(dims, DataType.DOUBLE);
  const b = randomBatch(2, 6, dims.vocab, 1, [3, 7, 11]);

  it('loss_sum and token_count match a JavaScript cross-entropy; gradients match finite differences', async () => {
    const gg = await buildGradientGraph(forward, { batch: 2, seq: 6 });
    expect(gg.params.length).toBe(graphOf(forward).initializer.filter((t) => (t.dims ?? []).length > 0 && t.dataType === DataType.DOUBLE).length);
    // Shape subgraphs were folded: nothing shape-related is left to run at training time.
    const ops = new Set(graphOf(gg.model).node.map((n) => n.opType));
    for (const op of ['Shape', 'Range', 'Trilu']) expect(ops.has(op)).toBe(false);
    const ref = await referenceLossSum(forward, b);
    const r = await checkModelGradients(forward, gg, b, { samples: 3, eps: 1e-6, rtol: 1e-5, atolFrac: 1e-6 });
    expect(r.count).toBe(7); // 2 rows x 5 shifted positions, minus the 3 ignored labels
    expect(ref.count).toBe(r.count);
    expect(r.lossSum).toBeCloseTo(ref.lossSum, 9);
    expect(r.checked).toBe(3 * gg.params.length);
    expect(r.worst, r.detail).toBeLessThanOrEqual(1);
  });

  it('loss_scale scales every gradient; an all-ignored batch gives zero loss and zero (finite) gradients', async () => {
    const gg = await buildGradientGraph(forward, { batch: 2, seq: 6 });
    const s = await openSession(gg.model, { threads: 1 });
    const weights = new Map(gg.params.map((p) => [p, floatValues(graphOf(forward).initializer.find((t) => t.name === p) as TensorProto)]));
    const feeds = (labels: number[], scale: number): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {
        input_ids: int64(b.ids, [2, 6]),
        labels: int64(labels, [2, 6]),
        loss_scale: new ortRuntime.Tensor('float64', Float64Array.of(scale), []),
      };
      for (const p of gg.params) f[p] = new ortRuntime.Tensor('float64', weights.get(p) as Float64Array, gg.shapes[p]!);
      return f;
    };
    const one = await s.run(feeds(b.labels, 1));
    const quarter = await s.run(feeds(b.labels, 0.25));
    for (const p of gg.params) {
      const a = one[`grad.${p}`]!.data as Float64Array;
      const q = quarter[`grad.${p}`]!.data as Float64Array;
      for (let k = 0; k < a.length; k++) expect(q[k]).toBeCloseTo(0.25 * a[k]!, 12);
    }
    expect(Number(quarter.loss_sum!.data[0])).toBeCloseTo(Number(one.loss_sum!.data[0]), 12); // loss_sum is unscaled
    const none = await s.run(feeds(b.labels.map(() => -100), 1));
    expect(Number(none.loss_sum!.data[0])).toBe(0);
    expect(Number(none.token_count!.data[0])).toBe(0);
    for (const p of gg.params) for (const v of none[`grad.${p}`]!.data as Float64Array) expect(v).toBe(0);
    await s.release();
  });

  it('a trainable subset gets the same gradients as the full graph; the other weights stay initializers', async () => {
    const sub = ['layers.1.fc2.bias', 'embed_tokens.weight'];
    const full = await buildGradientGraph(forward, { batch: 2, seq: 6 });
    const part = await buildGradientGraph(forward, { batch: 2, seq: 6, trainable: sub });
    expect(part.params).toEqual(sub);
    expect(graphOf(part.model).output.map((o) => o.name)).toEqual(['loss_sum', 'token_count', ...sub.map((p) => `grad.${p}`)]);
    expect(graphOf(part.model).initializer.some((t) => t.name === 'layers.0.fc1.bias')).toBe(true);
    const rf = await checkModelGradients(forward, full, b, { samples: 0, eps: 0, rtol: 0, atolFrac: 0 });
    const rp = await checkModelGradients(forward, part, b, { samples: 0, eps: 0, rtol: 0, atolFrac: 0 });
    expect(rp.lossSum).toBeCloseTo(rf.lossSum, 12);
    for (const p of sub) rp.grads[p]!.forEach((v, k) => expect(v).toBeCloseTo(rf.grads[p]![k]!, 12));
  });

  it('buildNllGraph returns nll [B, T-1] equal to the JavaScript per-token NLL, and no logits', async () => {
    const nllModel = await buildNllGraph(forward, { batch: 2, seq: 6 });
    const ref = await referenceLossSum(forward, b);
    const r = await runNll(nllModel, b);
    expect(r.outputs).toEqual(['nll']);
    expect(r.dims).toEqual([2, 5]);
    ref.nll.forEach((v, k) => expect(r.nll[k]).toBeCloseTo(v, 10));
  });
});

describe('tiny OPT from models/opt (float32, attention_mask with padding)', () => {
  const weights = initOptWeights(TINY_CONFIG, 5);
  const forward = buildOptForward(TINY_CONFIG, weights, { withPast: false, present: false });
  const B = 2;
  const T = 8;
  const b = randomBatch(B, T, TINY_CONFIG.vocab_size, 2);
  // Row 1 is right-padded after 5 tokens: mask 0 and labels -100 there, as the trainer will feed it.
  b.mask = b.ids.map((_, k) => (k >= T + 5 ? 0 : 1));
  b.labels = b.labels.map((v, k) => (k >= T + 5 ? -100 : v));

  it('gradients match finite differences (float64 copy of the graph); the float32 graph agrees with it', async () => {
    const f64 = toDouble(forward);
    const gg64 = await buildGradientGraph(f64, { batch: B, seq: T });
    expect(gg64.params.length).toBe(weights.size);
    expect(graphOf(gg64.model).input.map((v) => v.name).slice(0, 4)).toEqual(['input_ids', 'attention_mask', 'labels', 'loss_scale']);
    const ref = await referenceLossSum(f64, b);
    const r64 = await checkModelGradients(f64, gg64, b, { samples: 3, eps: 1e-6, rtol: 1e-5, atolFrac: 1e-6 });
    expect(r64.count).toBe(7 + 4);
    expect(r64.lossSum).toBeCloseTo(ref.lossSum, 8);
    expect(r64.worst, r64.detail).toBeLessThanOrEqual(1);
    const gg32 = await buildGradientGraph(forward, { batch: B, seq: T });
    const r32 = await checkModelGradients(forward, gg32, b, { samples: 0, eps: 0, rtol: 0, atolFrac: 0 });
    expect(r32.lossSum).toBeCloseTo(ref.lossSum, 3);
    const cmp = compareGrads(r32.grads, r64.grads, 1e-3, 1e-5);
    expect(cmp.worst, cmp.detail).toBeLessThanOrEqual(1);
  });

  it('a forward with past_key_values inputs gives the same loss and gradients (past length 0)', async () => {
    const withPast = buildOptForward(TINY_CONFIG, weights, { withPast: true });
    const [a, c] = await Promise.all([
      buildGradientGraph(forward, { batch: B, seq: T }),
      buildGradientGraph(withPast, { batch: B, seq: T }),
    ]);
    expect(c.params).toEqual(a.params);
    expect(graphOf(c.model).input.some((v) => (v.name ?? '').startsWith('past'))).toBe(false);
    const ra = await checkModelGradients(forward, a, b, { samples: 1, eps: 5e-3, rtol: 3e-2, atolFrac: 2e-2 });
    const rc = await checkModelGradients(withPast, c, b, { samples: 1, eps: 5e-3, rtol: 3e-2, atolFrac: 2e-2 });
    expect(rc.lossSum).toBeCloseTo(ra.lossSum, 4);
    for (const p of a.params) {
      const x = ra.grads[p]!;
      const y = rc.grads[p]!;
      for (let k = 0; k < x.length; k += 97) expect(y[k]).toBeCloseTo(x[k]!, 4);
    }
  });

  it('buildNllGraph matches the JavaScript per-token NLL', async () => {
    const nllModel = await buildNllGraph(forward, { batch: B, seq: T });
    const ref = await referenceLossSum(forward, b);
    const r = await runNll(nllModel, b);
    ref.nll.forEach((v, k) => expect(r.nll[k]).toBeCloseTo(v, 3));
  });

  it('the validation graph (buildNllGraph) and the scoring graph (withNllHead) give the same NLLs', async () => {
    const validation = await runNll(await buildNllGraph(forward, { batch: B, seq: T }), b);
    const scoring = await runNll(withNllHead(forward), b);
    expect(scoring.outputs).toEqual(['nll']);
    expect(scoring.dims).toEqual([B, T - 1]);
    // Not bit for bit: the validation graph's forward is the static (constant-folded, Gemm-fused) copy.
    Array.from(scoring.nll).forEach((v, k) => expect(v).toBeCloseTo(validation.nll[k]!, 5));
  });
});

const torchPath = sharedPath('models/opt-tiny-torch-export-opset17/onnx/model.onnx');
describe.skipIf(!torchPath)('torch.onnx export in ../shared (input_ids only, opset 17, float32)', () => {
  it('builds, runs, and its gradients match finite differences', async () => {
    const forward = loadModel(torchPath!);
    const b = randomBatch(2, 8, 50272, 4, [2, 13]);
    const gg = await buildGradientGraph(forward, { batch: 2, seq: 8 });
    expect(gg.params).toContain('embed_tokens.weight');
    expect(gg.params).toContain('onnx::MatMul_253'); // the exporter's transposed LM head
    expect(graphOf(gg.model).input.some((v) => v.name === 'attention_mask')).toBe(false);
    const f64 = toDouble(forward);
    const ref = await referenceLossSum(f64, b);
    const gg64 = await buildGradientGraph(f64, { batch: 2, seq: 8 });
    const r64 = await checkModelGradients(f64, gg64, b, { samples: 2, eps: 1e-6, rtol: 1e-5, atolFrac: 1e-6 });
    expect(r64.count).toBe(12);
    expect(r64.lossSum).toBeCloseTo(ref.lossSum, 8);
    expect(r64.worst, r64.detail).toBeLessThanOrEqual(1);
    const r32 = await checkModelGradients(forward, gg, b, { samples: 0, eps: 0, rtol: 0, atolFrac: 0 });
    expect(r32.lossSum).toBeCloseTo(ref.lossSum, 2);
    const cmp = compareGrads(r32.grads, r64.grads, 1e-3, 1e-5);
    expect(cmp.worst, cmp.detail).toBeLessThanOrEqual(1);
    const nll = await runNll(await buildNllGraph(forward, { batch: 2, seq: 8 }), b);
    ref.nll.forEach((v, k) => expect(nll.nll[k]).toBeCloseTo(v, 3));
  });
});

describe('clear errors', () => {
  const tiny = (build: (g: GraphBuilder, ids: string, emb: string) => void): ModelProto => {
    const g = new GraphBuilder();
    const emb = g.initializer('emb', [5, 5], Float32Array.from({ length: 25 }, (_, k) => Math.sin(k)));
    const ids = g.input('input_ids', DataType.INT64, ['b', 's']);
    build(g, ids, emb);
    return g.model();
  };

  it('an op without a rule names the op type and the node', async () => {
    const m = tiny((g, ids, emb) => {
      g.op('Selu', [g.op('Gather', [emb, ids])], {}, { outputs: ['logits'], name: 'my_selu_node' });
      g.output('logits', DataType.FLOAT, ['b', 's', 5]);
    });
    await expect(buildGradientGraph(m, { batch: 1, seq: 3 })).rejects.toThrow(/no gradient rule for op Selu \(node my_selu_node\)/);
  });

  it('a graph without a `logits` output, or with logits of the wrong shape, is rejected', async () => {
    const noLogits = tiny((g, ids, emb) => {
      g.op('Gather', [emb, ids], {}, { outputs: ['hidden'] });
      g.output('hidden', DataType.FLOAT, ['b', 's', 5]);
    });
    await expect(buildGradientGraph(noLogits, { batch: 1, seq: 3 })).rejects.toThrow(/must output `logits` \[batch, seq, vocab\]; its outputs are: hidden/);
    const flat = tiny((g, ids, emb) => {
      g.op('ReduceSum', [g.op('Gather', [emb, ids]), g.i64([2])], { keepdims: 0 }, { outputs: ['logits'] });
      g.output('logits', DataType.FLOAT, ['b', 's']);
    });
    await expect(buildNllGraph(flat, { batch: 1, seq: 3 })).rejects.toThrow(/`logits` must have shape \[batch, seq, vocab\]/);
  });

  it('an unknown trainable name is rejected', async () => {
    const m = tiny((g, ids, emb) => {
      g.op('Gather', [emb, ids], {}, { outputs: ['logits'] });
      g.output('logits', DataType.FLOAT, ['b', 's', 5]);
    });
    await expect(buildGradientGraph(m, { batch: 1, seq: 3, trainable: ['nope'] })).rejects.toThrow(/trainable parameter nope is not an initializer/);
    const ok = await buildGradientGraph(m, { batch: 1, seq: 3, trainable: ['emb'] });
    expect(ok.params).toEqual(['emb']);
  });
});
