// Finite-difference harness: one small graph per op, loss = sum_k sum(y_k * R_k) with fixed random R_k, and the
// builder's gradient of every differentiable input compared to central differences of that loss.
import { GraphBuilder, type Attrs } from '../../models/onnx/graph.js';
import { DataType, onnx, type ModelProto, type TypedArray } from '../../models/onnx/proto.js';
import { buildGradientOf } from '../../models/grad/index.js';
import { openSession, type ort } from '../../models/session.js';
import * as ortRuntime from 'onnxruntime-node';
import { Rng } from '../../util/rng.js';

export type Precision = 'f64' | 'f32';

export type InputSpec =
  | { shape: number[]; grad?: boolean; positive?: boolean; values?: number[] }
  | { constant: TypedArray; dims: number[] }
  | null;

export interface OpCase {
  op: string;
  inputs: InputSpec[];
  attrs?: Attrs;
  opset?: number;
  /** Number of node outputs (default 1) and which of them enter the loss (default all). */
  outputs?: number;
  lossOutputs?: number[];
  precision?: Precision;
}

export interface FdResult {
  /** Largest |analytic - numeric| / (atol + rtol |numeric|) over all checked entries (<= 1 passes). */
  worst: number;
  checked: number;
  detail: string;
}

const floatArray = (p: Precision, n: number): Float32Array | Float64Array => (p === 'f64' ? new Float64Array(n) : new Float32Array(n));
const ortType = (p: Precision): 'float64' | 'float32' => (p === 'f64' ? 'float64' : 'float32');

function makeTensor(p: Precision, data: Float32Array | Float64Array, dims: readonly number[]): ort.Tensor {
  return new ortRuntime.Tensor(ortType(p), data, dims);
}

async function outputDims(model: ModelProto, names: string[], feeds: Record<string, ort.Tensor>): Promise<number[][]> {
  const probe = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...model.graph, output: names.map((name) => onnx.ValueInfoProto.create({ name })) }) });
  const s = await openSession(probe, { threads: 1, optimization: 'disabled' });
  const r = await s.run(feeds);
  await s.release();
  return names.map((n) => [...r[n]!.dims]);
}

export async function checkOpGradient(c: OpCase, seed = 1): Promise<FdResult> {
  const p = c.precision ?? 'f64';
  const dtype = p === 'f64' ? DataType.DOUBLE : DataType.FLOAT;
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const feeds: Record<string, ort.Tensor> = {};
  const wrt: string[] = [];
  const names = c.inputs.map((spec, k) => {
    if (spec === null) return '';
    if ('constant' in spec) return g.constant(spec.constant, spec.dims);
    const name = g.input(`x${k}`, dtype, spec.shape);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = floatArray(p, n);
    for (let j = 0; j < n; j++) {
      const v = spec.values ? spec.values[j]! : rng.normal();
      data[j] = spec.positive ? 0.5 + Math.abs(v) : v;
    }
    feeds[name] = makeTensor(p, data, spec.shape);
    if (spec.grad !== false) wrt.push(name);
    return name;
  });
  const ys = g.opN(c.op, names, c.attrs ?? {}, { outputs: c.outputs ?? 1 });
  const used = c.lossOutputs ?? ys.map((_, k) => k);
  const opset = c.opset ?? 17;
  const dims = await outputDims(g.model({ opset }), used.map((k) => ys[k]!), feeds);
  const terms = used.map((k, j) => {
    const d = dims[j]!;
    const n = d.reduce((a, b) => a * b, 1);
    const r = floatArray(p, n);
    for (let i = 0; i < n; i++) r[i] = rng.normal();
    return g.op('ReduceSum', [g.op('Mul', [ys[k]!, g.constant(r, d)])], { keepdims: 0 });
  });
  g.op(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, { outputs: ['loss'] });
  g.output('loss', dtype, []);
  const lossModel = g.model({ opset });

  const gradModel = await buildGradientOf(lossModel, { loss: 'loss', wrt, feeds });
  const gs = await openSession(gradModel, { threads: 1 });
  const analytic = await gs.run(feeds);
  await gs.release();

  const ls = await openSession(lossModel, { threads: 1, optimization: 'disabled' });
  const lossAt = async (f: Record<string, ort.Tensor>): Promise<number> => Number((await ls.run(f)).loss!.data[0]);
  const eps = p === 'f64' ? 1e-6 : 1e-2;
  const [atol, rtol] = p === 'f64' ? [1e-6, 1e-5] : [2e-3, 2e-2];
  let worst = 0;
  let checked = 0;
  let detail = '';
  for (const name of wrt) {
    const base = feeds[name]!.data as Float32Array | Float64Array;
    const grad = analytic[`grad.${name}`]!.data as Float32Array | Float64Array;
    for (let i = 0; i < base.length; i++) {
      const plus = base.slice();
      const minus = base.slice();
      plus[i] = base[i]! + eps;
      minus[i] = base[i]! - eps;
      const fp = await lossAt({ ...feeds, [name]: makeTensor(p, plus, feeds[name]!.dims) });
      const fm = await lossAt({ ...feeds, [name]: makeTensor(p, minus, feeds[name]!.dims) });
      const numeric = (fp - fm) / (2 * eps);
      const err = Math.abs(grad[i]! - numeric) / (atol + rtol * Math.abs(numeric));
      checked++;
      if (err > worst) {
        worst = err;
        detail = `${name}[${i}]: analytic ${grad[i]} numeric ${numeric}`;
      }
    }
  }
  await ls.release();
  return { worst, checked, detail };
}
