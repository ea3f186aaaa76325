// A small causal transformer written the way torch.onnx (opset 14) exports one: input_ids only, positions and the
// causal mask from Shape/Range/ConstantOfShape/Trilu subgraphs, LayerNorm decomposed into
// ReduceMean/Sub/Pow/Sqrt/Div, exporter-style names, and a tied LM head (Transpose of the token embedding).
import { GraphBuilder } from '../../models/onnx/graph.js';
import { DataType, makeTensor, type ModelProto } from '../../models/onnx/proto.js';
import { Rng } from '../../util/rng.js';

export interface ToyDims {
  vocab: number;
  hidden: number;
  ffn: number;
  positions: number;
  layers: number;
}

export function buildToyTransformer(dims: ToyDims, dtype: DataType, seed = 7): ModelProto {
  const { vocab: V, hidden: D, ffn: F, positions: P } = dims;
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const arr = (n: number, f: () => number): Float32Array | Float64Array => {
    const a = dtype === DataType.DOUBLE ? new Float64Array(n) : new Float32Array(n);
    for (let k = 0; k < n; k++) a[k] = f();
    return a;
  };
  const weight = (name: string, shape: number[], std = 0.3): string =>
    g.initializer(name, shape, arr(shape.reduce((a, b) => a * b, 1), () => std * rng.normal()));
  const ones = (name: string, n: number): string => g.initializer(name, [n], arr(n, () => 1 + 0.1 * rng.normal()));
  const scalar = (v: number): string => g.constant(arr(1, () => v), []);
  const i64 = (v: number[], d?: number[]): string => g.i64(v, d);

  const tok = weight('embed_tokens.weight', [V, D], 1);
  const posW = weight('embed_positions.weight', [P, D], 0.5);
  const ids = g.input('input_ids', DataType.INT64, ['batch', 'seq']);

  // Shape subgraphs, as an exporter writes them.
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), i64([1], [])], { axis: 0 });
  const positions = g.op('Range', [i64([0], []), seqLen, i64([1], [])]);
  let h = g.op('Add', [g.op('Gather', [tok, ids]), g.op('Unsqueeze', [g.op('Gather', [posW, positions]), i64([0])])]);
  const sq = g.op('Concat', [g.op('Unsqueeze', [seqLen, i64([0])]), g.op('Unsqueeze', [seqLen, i64([0])])], { axis: 0 });
  const big = makeTensor('value', [1], arr(1, () => -1e4));
  const mask = g.op('Trilu', [g.op('ConstantOfShape', [sq], { value: big }), i64([1], [])], { upper: 1 });

  const layerNorm = (x: string, name: string): string => {
    const mean = g.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = g.op('Sub', [x, mean]);
    const variance = g.op('ReduceMean', [g.op('Pow', [d, scalar(2)])], { axes: [-1], keepdims: 1 });
    const y = g.op('Div', [d, g.op('Sqrt', [g.op('Add', [variance, scalar(1e-5)])])]);
    return g.op('Add', [g.op('Mul', [y, ones(`${name}.weight`, D)]), weight(`${name}.bias`, [D], 0.1)]);
  };
  let mm = 100;
  const linear = (x: string, name: string, i: number, o: number): string =>
    g.op('Add', [weight(`${name}.bias`, [o], 0.1), g.op('MatMul', [x, weight(`onnx::MatMul_${mm++}`, [i, o], 1 / Math.sqrt(i))])]);

  for (let l = 0; l < dims.layers; l++) {
    const x = layerNorm(h, `layers.${l}.ln1`);
    const q = linear(x, `layers.${l}.q_proj`, D, D);
    const k = linear(x, `layers.${l}.k_proj`, D, D);
    const v = linear(x, `layers.${l}.v_proj`, D, D);
    const scores = g.op('Div', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]), scalar(Math.sqrt(D))]);
    const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 });
    h = g.op('Add', [h, linear(g.op('MatMul', [probs, v]), `layers.${l}.out_proj`, D, D)]);
    const y = layerNorm(h, `layers.${l}.ln2`);
    const u = linear(y, `layers.${l}.fc1`, D, F);
    // sigmoid(u) * tanh(u): smooth, and not a pattern onnxruntime fuses into a float32-only kernel.
    const act = g.op('Mul', [g.op('Sigmoid', [u]), g.op('Tanh', [u])]);
    h = g.op('Add', [h, linear(act, `layers.${l}.fc2`, F, D)]);
  }
  h = layerNorm(h, 'final_layer_norm');
  g.op('MatMul', [h, g.op('Transpose', [tok], { perm: [1, 0] })], {}, { outputs: ['logits'] });
  g.output('logits', dtype, ['batch', 'seq', V]);
  return g.model({ opset: 14, producer: 'pytorch' });
}
