// Every rule of models/grad/rules.ts against central finite differences (float64 where onnxruntime's CPU build has
// the kernel; float32 for Erf/Gelu, whose double kernels are missing, with atol 2e-3 + rtol 2e-2 at eps 1e-2).
import { describe, expect, it } from 'vitest';
import { RULES } from '../../models/grad/index.js';
import { float } from '../../models/onnx/graph.js';
import { checkOpGradient, type OpCase } from './fd.js';

const i64 = (...v: number[]): { constant: BigInt64Array; dims: number[] } => ({ constant: BigInt64Array.from(v.map(BigInt)), dims: [v.length] });
const i64d = (dims: number[], v: number[]): { constant: BigInt64Array; dims: number[] } => ({ constant: BigInt64Array.from(v.map(BigInt)), dims });
const bools = (dims: number[], v: number[]): { constant: Uint8Array; dims: number[] } => ({ constant: Uint8Array.from(v), dims });
const x = (...shape: number[]): { shape: number[] } => ({ shape });
const pos = (...shape: number[]): { shape: number[]; positive: true } => ({ shape, positive: true });

const CASES: Record<string, OpCase[]> = {
  Identity: [{ op: 'Identity', inputs: [x(2, 3)] }],
  Dropout: [
    { op: 'Dropout', inputs: [x(2, 3)] },
    // A ratio with training_mode false: still the identity.
    { op: 'Dropout', inputs: [x(2, 3), { constant: Float64Array.of(0.3), dims: [] }, bools([], [0])] },
  ],
  Cast: [{ op: 'Cast', inputs: [x(2, 3)], attrs: { to: 11 } }],
  Reshape: [{ op: 'Reshape', inputs: [x(2, 3, 2), i64(3, 4)] }],
  Flatten: [{ op: 'Flatten', inputs: [x(2, 3, 2)], attrs: { axis: 2 } }],
  Squeeze: [{ op: 'Squeeze', inputs: [x(2, 1, 3), i64(1)] }],
  Unsqueeze: [{ op: 'Unsqueeze', inputs: [x(2, 3), i64(0, 3)] }],
  Transpose: [
    { op: 'Transpose', inputs: [x(2, 3, 4)], attrs: { perm: [1, 2, 0] } },
    { op: 'Transpose', inputs: [x(2, 3)] },
  ],
  Expand: [{ op: 'Expand', inputs: [x(3, 1), i64(2, 3, 4)] }],
  Add: [
    { op: 'Add', inputs: [x(2, 3), x(3)] },
    { op: 'Add', inputs: [x(2, 1, 3), x(4, 1)] },
  ],
  Sub: [{ op: 'Sub', inputs: [x(2, 3), x(2, 1)] }],
  Mul: [{ op: 'Mul', inputs: [x(2, 3), x(1, 3)] }, { op: 'Mul', inputs: [x(2, 3), x()] }],
  Div: [{ op: 'Div', inputs: [x(2, 3), pos(3)] }],
  Pow: [
    { op: 'Pow', inputs: [pos(2, 3), x(3)] },
    { op: 'Pow', inputs: [pos(2, 3), { constant: Float64Array.of(2), dims: [] }] },
  ],
  Where: [{ op: 'Where', inputs: [bools([2, 3], [1, 0, 1, 0, 0, 1]), x(2, 3), x(3)] }],
  Sum: [{ op: 'Sum', inputs: [x(2, 3), x(3), x(2, 1)] }],
  Neg: [{ op: 'Neg', inputs: [x(2, 3)] }],
  Sqrt: [{ op: 'Sqrt', inputs: [pos(2, 3)] }],
  Reciprocal: [{ op: 'Reciprocal', inputs: [pos(2, 3)] }],
  Exp: [{ op: 'Exp', inputs: [x(2, 3)] }],
  Log: [{ op: 'Log', inputs: [pos(2, 3)] }],
  Tanh: [{ op: 'Tanh', inputs: [x(2, 3)] }],
  Sigmoid: [{ op: 'Sigmoid', inputs: [x(2, 3)] }],
  Erf: [{ op: 'Erf', inputs: [x(2, 3)], precision: 'f32' }],
  // Values kept away from 0, where Relu has no derivative.
  Sin: [{ op: 'Sin', inputs: [x(2, 3)] }],
  Cos: [{ op: 'Cos', inputs: [x(2, 3)] }],
  Abs: [{ op: 'Abs', inputs: [{ shape: [2, 3], values: [-1.2, 0.7, 0.3, -0.4, 2.0, -0.9] }] }],
  Max: [{ op: 'Max', inputs: [{ shape: [2, 3], values: [-1.2, 0.7, 0.3, -0.4, 2.0, -0.9] }, { shape: [3], values: [0.1, -0.5, 0.6] }] }],
  Min: [{ op: 'Min', inputs: [{ shape: [2, 3], values: [-1.2, 0.7, 0.3, -0.4, 2.0, -0.9] }, { shape: [3], values: [0.1, -0.5, 0.6] }] }],
  Relu: [{ op: 'Relu', inputs: [{ shape: [2, 3], values: [-1.2, 0.7, 0.3, -0.4, 2.0, -0.9] }] }],
  Gelu: [
    { op: 'Gelu', inputs: [x(2, 3)], opset: 20, precision: 'f32' },
    { op: 'Gelu', inputs: [x(2, 3)], attrs: { approximate: 'tanh' }, opset: 20, precision: 'f32' },
  ],
  Softmax: [
    { op: 'Softmax', inputs: [x(2, 4)] },
    { op: 'Softmax', inputs: [x(2, 3, 2)], attrs: { axis: 1 } },
  ],
  LogSoftmax: [{ op: 'LogSoftmax', inputs: [x(2, 4)] }],
  LayerNormalization: [
    { op: 'LayerNormalization', inputs: [x(2, 3, 4), x(4), x(4)], attrs: { epsilon: 1e-5 }, lossOutputs: [0] },
    { op: 'LayerNormalization', inputs: [x(2, 3, 2), x(3, 2)], attrs: { axis: 1 }, lossOutputs: [0] },
  ],
  ReduceSum: [
    { op: 'ReduceSum', inputs: [x(2, 3, 2), i64(1)], attrs: { keepdims: 0 } },
    { op: 'ReduceSum', inputs: [x(2, 3)] },
  ],
  ReduceMean: [
    { op: 'ReduceMean', inputs: [x(2, 3, 2)], attrs: { axes: [-1], keepdims: 1 } },
    { op: 'ReduceMean', inputs: [x(2, 3, 2), i64(0, 2)], attrs: { keepdims: 0 }, opset: 18 },
  ],
  MatMul: [
    { op: 'MatMul', inputs: [x(2, 3, 4), x(4, 5)] },
    { op: 'MatMul', inputs: [x(2, 3, 4), x(2, 4, 2)] },
    { op: 'MatMul', inputs: [x(3, 4), x(2, 4, 2)] },
    { op: 'MatMul', inputs: [x(2, 1, 3, 4), x(3, 4, 2)] },
  ],
  Gemm: [
    { op: 'Gemm', inputs: [x(3, 4), x(4, 2), x(2)], attrs: { alpha: 0.5, beta: float(2) } },
    { op: 'Gemm', inputs: [x(4, 3), x(2, 4), x(3, 1)], attrs: { transA: 1, transB: 1 } },
    { op: 'Gemm', inputs: [x(4, 3), x(4, 2)], attrs: { transA: 1 } },
    { op: 'Gemm', inputs: [x(3, 4), x(2, 4), x()], attrs: { transB: 1 } },
  ],
  Gather: [
    // Repeated ids accumulate; a negative id counts from the end.
    { op: 'Gather', inputs: [x(5, 3), i64d([2, 3], [1, 4, 1, 0, 1, -1])] },
    { op: 'Gather', inputs: [x(2, 4, 3), i64d([3], [3, 0, 3])], attrs: { axis: 1 } },
    { op: 'Gather', inputs: [x(4, 3), i64d([], [2])] },
  ],
  GatherElements: [{ op: 'GatherElements', inputs: [x(2, 4), i64d([2, 3], [0, 3, 3, 1, 1, 2])], attrs: { axis: 1 } }],
  Concat: [{ op: 'Concat', inputs: [x(2, 1), x(2, 3), { constant: new Float64Array(0), dims: [2, 0] }], attrs: { axis: -1 } }],
  Split: [
    { op: 'Split', inputs: [x(2, 5), i64(2, 3)], attrs: { axis: 1 }, outputs: 2 },
    { op: 'Split', inputs: [x(4, 2)], outputs: 2, lossOutputs: [1] },
  ],
  Slice: [
    { op: 'Slice', inputs: [x(3, 5), i64(1, -4), i64(100, -1), i64(0, 1)] },
    { op: 'Slice', inputs: [x(2, 4), i64(1), i64(3)] },
  ],
  // Convolutions have float32 kernels only; they are linear in each input, so eps 1e-2 costs no accuracy.
  Conv: [
    { op: 'Conv', inputs: [x(2, 1, 8, 8), x(3, 1, 4, 4), x(3)], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] }, precision: 'f32' },
    { op: 'Conv', inputs: [x(2, 2, 5, 5), x(3, 2, 3, 3), x(3)], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] }, precision: 'f32' },
    // A stride that leaves the last row unread, asymmetric pads and a dilation.
    { op: 'Conv', inputs: [x(1, 2, 6, 5), x(2, 2, 2, 3)], attrs: { strides: [2, 1], pads: [0, 1, 1, 0], dilations: [1, 2] }, precision: 'f32' },
    { op: 'Conv', inputs: [x(2, 2, 7), x(3, 2, 3)], attrs: { strides: [2] }, precision: 'f32' },
  ],
  ConvTranspose: [
    { op: 'ConvTranspose', inputs: [x(2, 3, 2, 2), x(3, 2, 4, 4), x(2)], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] }, precision: 'f32' },
    { op: 'ConvTranspose', inputs: [x(1, 2, 3, 3), x(2, 2, 3, 3)], attrs: { strides: [2, 2], pads: [1, 0, 0, 1], output_padding: [1, 1], dilations: [1, 2] }, precision: 'f32' },
    { op: 'ConvTranspose', inputs: [x(2, 2, 3), x(2, 3, 2), x(3)], attrs: { strides: [3] }, precision: 'f32' },
  ],
  Softplus: [{ op: 'Softplus', inputs: [x(2, 3)], precision: 'f32' }],
};

describe('gradient rules vs central finite differences', () => {
  it('every rule in the table has at least one case here', () => {
    expect(Object.keys(RULES).filter((op) => !CASES[op])).toEqual([]);
  });
  for (const [op, cases] of Object.entries(CASES)) {
    cases.forEach((c, k) => {
      it(`${op} #${k} (${c.precision ?? 'f64'})`, async () => {
        const r = await checkOpGradient(c, 10 + k);
        expect(r.checked).toBeGreaterThan(0);
        expect(r.worst, r.detail).toBeLessThanOrEqual(1);
      });
    });
  }
});

describe('Dropout in training mode', () => {
  // Its mask changes from run to run, so finite differences cannot check it; within one run the gradient must
  // pass exactly through the kept units, scaled by 1 / (1 - ratio).
  it('the gradient is the run\'s own mask / (1 - ratio)', async () => {
    const { GraphBuilder } = await import('../../models/onnx/graph.js');
    const { DataType } = await import('../../models/onnx/proto.js');
    const { buildGradientOf } = await import('../../models/grad/index.js');
    const { openSession } = await import('../../models/session.js');
    const ort = await import('onnxruntime-node');
    const g = new GraphBuilder();
    g.input('x', DataType.FLOAT, [8, 16]);
    const ratio = g.scalar(0.25);
    const training = g.initializer('training', [], Uint8Array.of(1), DataType.BOOL);
    const [y] = g.opN('Dropout', ['x', ratio, training], {}, { outputs: ['y', 'mask'] });
    g.op('ReduceSum', [y!], { keepdims: 0 }, { outputs: ['loss'] });
    g.output('loss', DataType.FLOAT, []);
    const model = g.model({ name: 'dropout', opset: 17 });
    const feeds = { x: new ort.Tensor('float32', new Float32Array(128).fill(1), [8, 16]) };
    const gm = await buildGradientOf(model, { loss: 'loss', wrt: ['x'], feeds });
    const s = await openSession(gm, { threads: 1 });
    const r = await s.run(feeds);
    await s.release();
    const dx = r['grad.x']!.data as Float32Array;
    const kept = dx.filter((v) => v !== 0).length;
    expect(dx.every((v) => v === 0 || v === Math.fround(1 / 0.75))).toBe(true);
    expect(kept).toBeGreaterThan(64); // about 96 of 128 kept
    expect(Number(r.loss!.data[0])).toBeCloseTo(kept / 0.75, 3); // loss = sum of kept x / (1 - ratio): the same units
  });
});
