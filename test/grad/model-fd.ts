// Whole-model checks: loss_sum against a cross-entropy computed in JavaScript from the forward graph's own
// logits, and sampled gradient entries against central finite differences of loss_sum.
import * as ortRuntime from 'onnxruntime-node';
import { buildGradientGraph, type GradientGraph } from '../../models/grad/index.js';
import { DataType, type GraphProto, type ModelProto, type TensorProto } from '../../models/onnx/proto.js';
import { openSession, type ort } from '../../models/session.js';
import { Rng } from '../../util/rng.js';

type Floats = Float32Array | Float64Array;

/** Float initializer values (copied: decoded protobuf bytes may view a shared pool). */
export function floatValues(t: TensorProto): Floats {
  const bytes = new Uint8Array(t.rawData!);
  if (t.dataType === DataType.DOUBLE) return new Float64Array(bytes.buffer);
  if (t.dataType === DataType.FLOAT) return new Float32Array(bytes.buffer);
  throw new Error(`${t.name}: not a float tensor stored as raw data`);
}

function floatTensor(data: Floats, dims: readonly number[]): ort.Tensor {
  return data instanceof Float64Array ? new ortRuntime.Tensor('float64', data, dims) : new ortRuntime.Tensor('float32', data, dims);
}
const int64 = (v: readonly number[], dims: readonly number[]): ort.Tensor => new ortRuntime.Tensor('int64', BigInt64Array.from(v.map(BigInt)), dims);

export interface Batch {
  batch: number;
  seq: number;
  ids: number[];
  labels: number[];
  mask?: number[];
}

/** Sum over non-ignored positions of -log softmax(logits[b, t])[labels[b, t + 1]], from the forward graph. */
export async function referenceLossSum(forward: ModelProto, b: Batch): Promise<{ lossSum: number; count: number; nll: number[] }> {
  const s = await openSession(forward, { threads: 1 });
  const feeds: Record<string, ort.Tensor> = { input_ids: int64(b.ids, [b.batch, b.seq]) };
  if (s.inputNames.includes('attention_mask')) feeds.attention_mask = int64(b.mask ?? b.ids.map(() => 1), [b.batch, b.seq]);
  for (const name of s.inputNames.filter((n) => n.startsWith('past_key_values'))) {
    throw new Error(`referenceLossSum: pass a forward without past inputs (${name})`);
  }
  const r = await s.run(feeds, ['logits']);
  await s.release();
  const logits = r.logits!.data as Floats;
  const V = r.logits!.dims[2]!;
  let lossSum = 0;
  let count = 0;
  const nll: number[] = [];
  for (let i = 0; i < b.batch; i++)
    for (let t = 0; t < b.seq - 1; t++) {
      const row = logits.subarray((i * b.seq + t) * V, (i * b.seq + t + 1) * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let z = 0;
      for (const v of row) z += Math.exp(v - max);
      const label = b.labels[i * b.seq + t + 1]!;
      const target = b.ids[i * b.seq + t + 1]!;
      nll.push(max + Math.log(z) - row[target]!);
      if (label === -100) continue;
      lossSum += max + Math.log(z) - row[label]!;
      count++;
    }
  return { lossSum, count, nll };
}

export interface GradCheck {
  worst: number;
  detail: string;
  checked: number;
  lossSum: number;
  count: number;
  grads: Record<string, Floats>;
}

/**
 * Runs the gradient graph and compares `samples` entries of every parameter's gradient (its largest entry plus
 * random ones) with central differences of loss_sum. Error ratio: |g - fd| / (atol + rtol |fd|), with atol
 * relative to max(1, the parameter's largest gradient entry).
 */
export async function checkModelGradients(
  forward: ModelProto,
  gg: GradientGraph,
  b: Batch,
  opts: { samples: number; eps: number; rtol: number; atolFrac: number; seed?: number; extraFeeds?: Record<string, ort.Tensor> },
): Promise<GradCheck> {
  const weights = new Map(((forward.graph?.initializer ?? []) as TensorProto[]).map((t) => [t.name, t]));
  const s = await openSession(gg.model, { threads: 2 });
  const logitsType = (gg.model.graph as GraphProto).input.find((v) => v.name === 'loss_scale')!.type!.tensorType!.elemType as DataType;
  const scale = logitsType === DataType.DOUBLE ? new ortRuntime.Tensor('float64', Float64Array.of(1), []) : new ortRuntime.Tensor('float32', Float32Array.of(1), []);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(b.ids, [b.batch, b.seq]),
    labels: int64(b.labels, [b.batch, b.seq]),
    loss_scale: scale,
    ...opts.extraFeeds,
  };
  if (s.inputNames.includes('attention_mask')) feeds.attention_mask = int64(b.mask ?? b.ids.map(() => 1), [b.batch, b.seq]);
  const values = new Map<string, Floats>();
  for (const p of gg.params) {
    values.set(p, floatValues(weights.get(p)!));
    feeds[p] = floatTensor(values.get(p)!, gg.shapes[p]!);
  }
  const r = await s.run(feeds);
  const grads: Record<string, Floats> = {};
  for (const p of gg.params) grads[p] = r[`grad.${p}`]!.data as Floats;
  const lossAt = async (p: string, k: number, d: number): Promise<number> => {
    const w = values.get(p)!.slice();
    w[k] = w[k]! + d;
    return Number((await s.run({ ...feeds, [p]: floatTensor(w, gg.shapes[p]!) }, ['loss_sum'])).loss_sum!.data[0]);
  };
  const rng = new Rng(opts.seed ?? 3);
  let worst = 0;
  let detail = '';
  let checked = 0;
  for (const p of gg.params) {
    const g = grads[p]!;
    let big = 0;
    for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[big]!)) big = k;
    const picks = opts.samples > 0 ? [big, ...Array.from({ length: opts.samples - 1 }, () => rng.int(g.length))] : [];
    const atol = opts.atolFrac * Math.max(Math.abs(g[big]!), 1);
    for (const k of picks) {
      const fd = ((await lossAt(p, k, opts.eps)) - (await lossAt(p, k, -opts.eps))) / (2 * opts.eps);
      const err = Math.abs(g[k]! - fd) / (atol + opts.rtol * Math.abs(fd));
      checked++;
      if (err > worst) {
        worst = err;
        detail = `${p}[${k}]: analytic ${g[k]} numeric ${fd}`;
      }
    }
  }
  await s.release();
  return { worst, detail, checked, lossSum: Number(r.loss_sum!.data[0]), count: Number(r.token_count!.data[0]), grads };
}

export async function gradientGraph(forward: ModelProto, b: Batch): Promise<GradientGraph> {
  return buildGradientGraph(forward, { batch: b.batch, seq: b.seq });
}

/** Largest |a - b| / (floor + rtol |b|) over all parameters, floor = atolFrac * max|b| over everything. */
export function compareGrads(a: Record<string, Floats>, b: Record<string, Floats>, rtol: number, atolFrac: number): { worst: number; detail: string } {
  let max = 0;
  for (const g of Object.values(b)) for (const v of g) max = Math.max(max, Math.abs(v));
  let worst = 0;
  let detail = '';
  for (const [p, g] of Object.entries(b)) {
    const x = a[p]!;
    for (let k = 0; k < g.length; k++) {
      const err = Math.abs(x[k]! - g[k]!) / (atolFrac * max + rtol * Math.abs(g[k]!));
      if (err > worst) {
        worst = err;
        detail = `${p}[${k}]: ${x[k]} vs ${g[k]}`;
      }
    }
  }
  return { worst, detail };
}
