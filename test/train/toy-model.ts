// A tiny differentiable "language model" for training tests that do not need models/opt or models/grad:
// a bigram table (logits[t] = W[id_t] + b) with hand-written gradients, following the gradient-builder
// contract (inputs input_ids, labels, loss_scale, params; outputs loss_sum, token_count, grad.<param>).
import type { Blocks } from '../../datasets/block-set.js';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { DataType, type ModelProto } from '../../models/onnx/proto.js';
import { Rng } from '../../util/rng.js';
import type { ParamSpec } from '../../models/train/optimizers.js';

const I = DataType.INT64, F = DataType.FLOAT;

function logits(g: GraphBuilder, V: number, B: number, T: number) {
  g.input('input_ids', I, [B, T]);
  g.input('W', F, [V, V]);
  g.input('b', F, [V]);
  const N = B * (T - 1);
  const ids = g.op('Reshape', [g.op('Slice', ['input_ids', g.i64([0]), g.i64([T - 1]), g.i64([1])]), g.i64([N])]);
  const lg = g.op('Add', [g.op('Gather', ['W', ids], { axis: 0 }), 'b']);
  return { ids, lg, N };
}

export function toyParams(V: number): ParamSpec[] {
  return [{ name: 'W', shape: [V, V] }, { name: 'b', shape: [V] }];
}

export function toyWeights(V: number, seed: number): Map<string, Float32Array> {
  const r = new Rng(seed);
  return new Map([
    ['W', Float32Array.from({ length: V * V }, () => r.normal() * 0.5)],
    ['b', Float32Array.from({ length: V }, () => r.normal() * 0.1)],
  ]);
}

export function toyGradGraph(V: number, B: number, T: number): ModelProto {
  const g = new GraphBuilder();
  const { ids, lg, N } = logits(g, V, B, T);
  g.input('labels', I, [B, T]);
  g.input('loss_scale', F, []);
  const tgt = g.op('Reshape', [g.op('Slice', ['labels', g.i64([1]), g.i64([T]), g.i64([1])]), g.i64([N])]);
  const validB = g.op('Not', [g.op('Equal', [tgt, g.i64([-100], [])])]);
  const valid = g.op('Cast', [validB], { to: F });
  const safe = g.op('Where', [validB, tgt, g.i64([0], [])]);
  const onehot = g.op('OneHot', [safe, g.i64([V], []), g.f32([0, 1])], { axis: -1 });
  const logp = g.op('LogSoftmax', [lg], { axis: -1 });
  const nll = g.op('Mul', [g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [logp, onehot]), g.i64([1])], { keepdims: 0 })]), valid]);
  g.opN('ReduceSum', [nll], { keepdims: 0 }, { outputs: ['loss_sum'] });
  g.opN('ReduceSum', [valid], { keepdims: 0 }, { outputs: ['token_count'] });
  const colValid = g.op('Unsqueeze', [valid, g.i64([1])]);
  const dl = g.op('Mul', [g.op('Mul', [g.op('Sub', [g.op('Softmax', [lg], { axis: -1 }), onehot]), colValid]), 'loss_scale']);
  g.opN('ReduceSum', [dl, g.i64([0])], { keepdims: 0 }, { outputs: ['grad.b'] });
  const onehotIn = g.op('OneHot', [ids, g.i64([V], []), g.f32([0, 1])], { axis: -1 });
  g.opN('MatMul', [g.op('Transpose', [onehotIn], { perm: [1, 0] }), dl], {}, { outputs: ['grad.W'] });
  g.output('loss_sum', F, []);
  g.output('token_count', F, []);
  g.output('grad.W', F, [V, V]);
  g.output('grad.b', F, [V]);
  return g.model({ opset: 17 });
}

export function toyNllGraph(V: number, B: number, T: number): ModelProto {
  const g = new GraphBuilder();
  const { lg, N } = logits(g, V, B, T);
  const tgt = g.op('Reshape', [g.op('Slice', ['input_ids', g.i64([1]), g.i64([T]), g.i64([1])]), g.i64([N, 1])]);
  const logp = g.op('LogSoftmax', [lg], { axis: -1 });
  const picked = g.op('GatherElements', [logp, tgt], { axis: 1 });
  g.opN('Reshape', [g.op('Neg', [picked]), g.i64([B, T - 1])], {}, { outputs: ['nll'] });
  g.output('nll', F, [B, T - 1]);
  return g.model({ opset: 17 });
}

/** A corpus of `rows` blocks of `T` ids in [0, V) (a repeating pattern plus noise, so there is something to learn). */
export function toyCorpus(V: number, rows: number, T: number, seed: number): Blocks {
  const r = new Rng(seed);
  const ids = new Int32Array(rows * T);
  for (let i = 0; i < rows; i++) {
    let x = r.int(V);
    for (let t = 0; t < T; t++) {
      ids[i * T + t] = x;
      x = r.next() < 0.8 ? (x * 3 + 1) % V : r.int(V);
    }
  }
  return { ids, rows, blockSize: T };
}
