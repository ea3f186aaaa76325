// Static shapes and shape-subgraph folding for a causal-LM forward graph.
// The training shapes [batch, seq] are fixed, so everything that depends only on shapes (Shape, Range, Trilu masks,
// ConstantOfShape, position ids of a torch export...) is computed ONCE and stored as constants. The gradient rules
// then only see tensors that depend on data (input_ids, attention_mask, parameters), each with a known static shape.
import * as ortRuntime from 'onnxruntime-node';
import { attrInt, constantNodeValue, opsetOf } from '../onnx/graph.js';
import {
  DataType,
  dataTypeOfOrt,
  dimsOf,
  FLOAT_TYPES,
  makeTensor,
  numel,
  onnx,
  tensorValues,
  valueInfo,
  valueInfoShape,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type TypedArray,
  type ValueInfoProto,
} from '../onnx/proto.js';
import { describeCausalLm, trainingConstants } from '../causal-lm.js';
import { openSession, type ort } from '../session.js';

export interface TensorInfo {
  dtype: DataType;
  shape: number[];
}

/** A forward graph with static shapes: data inputs, nodes in topological order, and the shape/type of every tensor. */
export interface StaticForward {
  opset: number;
  nodes: NodeProto[];
  initializers: Map<string, TensorProto>;
  /** input_ids (+ attention_mask) with shapes [batch, seq]. */
  inputs: ValueInfoProto[];
  info: Map<string, TensorInfo>;
  logits: string;
  vocab: number;
}

/** Kahn's algorithm: exported graphs are usually sorted, but nothing in ONNX forbids otherwise. */
export function topoSort(nodes: NodeProto[], available: Set<string>): NodeProto[] {
  const have = new Set(available);
  const out: NodeProto[] = [];
  let pending = nodes;
  while (pending.length > 0) {
    const next: NodeProto[] = [];
    for (const n of pending) {
      if (n.input.every((i) => i === '' || have.has(i))) {
        out.push(n);
        for (const o of n.output) have.add(o);
      } else next.push(n);
    }
    if (next.length === pending.length) {
      const n = next[0]!;
      const missing = n.input.filter((i) => i !== '' && !have.has(i));
      throw new Error(`forward graph: node ${n.name} (${n.opType}) reads undefined tensor(s) ${missing.join(', ')}`);
    }
    pending = next;
  }
  return out;
}

/** Nodes needed to compute `outputs` (in the given order). */
export function pruneNodes(nodes: NodeProto[], outputs: Iterable<string>): NodeProto[] {
  const needed = new Set(outputs);
  const keep: NodeProto[] = [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.output.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const i of n.input) if (i) needed.add(i);
  }
  return keep.reverse();
}

/**
 * Small and integer tensors get their own copy of raw bytes: protobufjs decodes bytes as Node Buffers that view a
 * shared pool, which typed-array views of `.buffer` would misread. Large float weights are left untouched.
 */
function ownBytes(t: TensorProto): TensorProto {
  const raw = t.rawData;
  if (!raw || raw.length === 0 || (FLOAT_TYPES.has(t.dataType as DataType) && raw.length > 1 << 16)) return t;
  return onnx.TensorProto.create({ ...t, rawData: new Uint8Array(raw) });
}

function ortToTensor(name: string, t: ort.Tensor): TensorProto {
  const dtype = dataTypeOfOrt(t.type);
  if (dtype === undefined) throw new Error(`tensor ${name}: unsupported element type ${t.type}`);
  return makeTensor(name, t.dims, t.data as TypedArray, dtype);
}

function dummyFeeds(inputs: ValueInfoProto[], batch: number, seq: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of inputs) {
    const { dtype } = valueInfoShape(v);
    const fill = v.name === 'attention_mask' ? 1 : 0;
    const n = batch * seq;
    if (dtype === DataType.INT64) feeds[v.name] = new ortRuntime.Tensor('int64', new BigInt64Array(n).fill(BigInt(fill)), [batch, seq]);
    else if (dtype === DataType.INT32) feeds[v.name] = new ortRuntime.Tensor('int32', new Int32Array(n).fill(fill), [batch, seq]);
    else if (dtype === DataType.FLOAT) feeds[v.name] = new ortRuntime.Tensor('float32', new Float32Array(n).fill(fill), [batch, seq]);
    else throw new Error(`forward graph input ${v.name}: unsupported element type ${dtype}`);
  }
  return feeds;
}

/**
 * Runs `nodes` once with every intermediate tensor as an output (optimisation off so that none is fused away) and
 * returns each tensor's type and shape, plus the values of the tensors named in `keep`. Large float initializers
 * are fed as inputs (zero-copy) instead of being serialised into the probe model. Outputs are fetched in chunks
 * of about `chunkBytes` to bound the memory of the probe on large models.
 */
export async function probeTensors(
  base: ModelProto,
  nodes: NodeProto[],
  initializers: Map<string, TensorProto>,
  inputs: ValueInfoProto[],
  feeds: Record<string, ort.Tensor>,
  keep: Set<string>,
  only?: string[],
  chunkBytes = 512 << 20,
): Promise<Probe> {
  const info = new Map<string, TensorInfo>();
  const values = new Map<string, TensorProto>();
  const names = only ?? nodes.flatMap((n) => n.output.filter((o) => o !== ''));
  const allFeeds = { ...feeds };
  const probeInputs = [...inputs];
  const small: TensorProto[] = [];
  for (const [name, t] of initializers) {
    const data = t.dataType === DataType.FLOAT ? floatView(t) : null;
    if (!data || data.length < 4096) {
      small.push(t);
      continue;
    }
    allFeeds[name] = new ortRuntime.Tensor('float32', data, dimsOf(t));
    probeInputs.push(valueInfo(name, DataType.FLOAT, dimsOf(t)));
  }
  const model = onnx.ModelProto.create({
    irVersion: base.irVersion,
    opsetImport: base.opsetImport,
    graph: onnx.GraphProto.create({ name: 'probe', node: nodes, initializer: small, input: probeInputs, output: [] }),
  });
  let chunk = 64; // first guess; later chunks are sized from the bytes seen so far
  let seenBytes = 0;
  let seenCount = 0;
  for (let k = 0; k < names.length; k += chunk) {
    if (seenCount > 0) chunk = Math.max(16, Math.floor(chunkBytes / Math.max(1, seenBytes / seenCount)));
    const part = names.slice(k, k + chunk);
    model.graph!.output = part.map((name) => onnx.ValueInfoProto.create({ name }));
    const session = await openSession(model, { threads: 2, optimization: 'disabled' });
    try {
      const res = await session.run(allFeeds);
      for (const name of part) {
        const t = res[name];
        if (!t) throw new Error(`probe run did not return ${name}`);
        const dtype = dataTypeOfOrt(t.type);
        if (dtype === undefined) throw new Error(`tensor ${name}: unsupported element type ${t.type}`);
        info.set(name, { dtype, shape: [...t.dims] });
        seenBytes += numel([...t.dims]) * 4;
        seenCount++;
        if (keep.has(name)) values.set(name, ortToTensor(name, t));
      }
    } finally {
      await session.release();
    }
  }
  return { info, values };
}

export interface Probe {
  info: Map<string, TensorInfo>;
  values: Map<string, TensorProto>;
}

/**
 * Values of the fold frontier, computed by running only the data-independent nodes: Shape/Size of data tensors
 * become constants from the predicted shapes, so no forward pass at the training batch is needed.
 */
async function foldedValues(
  base: ModelProto,
  live: NodeProto[],
  dynamic: Set<string>,
  initializers: Map<string, TensorProto>,
  frontier: Set<string>,
  shapeOf: (t: string) => number[] | undefined,
): Promise<Map<string, TensorProto>> {
  const inits = new Map(initializers);
  const nodes: NodeProto[] = [];
  const values = new Map<string, TensorProto>();
  for (const n of live) {
    if (n.output.some((o) => dynamic.has(o))) continue;
    const src = n.input[0] ?? '';
    if ((n.opType === 'Shape' || n.opType === 'Size') && dynamic.has(src)) {
      const shape = shapeOf(src);
      if (!shape) throw new Error(`internal: no predicted shape for ${src}`);
      const rank = shape.length;
      const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
      const dims = n.opType === 'Size' ? [] : [1];
      const data = n.opType === 'Size' ? [numel(shape)] : shape.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', rank)));
      if (dims.length) dims[0] = data.length;
      const t = makeTensor(n.output[0]!, dims, BigInt64Array.from(data.map(BigInt)));
      inits.set(t.name, t);
      if (frontier.has(t.name)) values.set(t.name, t);
    } else nodes.push(n);
  }
  const wanted = [...frontier].filter((f) => !values.has(f));
  if (wanted.length === 0) return values;
  const run = await probeTensors(base, nodes, inits, [], {}, new Set(wanted), wanted);
  for (const [name, t] of run.values) values.set(name, t);
  return values;
}

/** A Float32Array over a float tensor's raw bytes (a view when aligned, else a copy). */
function floatView(t: TensorProto): Float32Array | null {
  const raw = t.rawData;
  if (!raw || raw.length === 0) return null;
  if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  return new Float32Array(new Uint8Array(raw).buffer);
}

/**
 * Copies nodes (the caller's model is never changed). Constant nodes become initializers (added to `initializers`);
 * LayerNormalization exposes Mean and InvStdDev so that its gradient need not recompute them.
 */
export function copyNodes(source: NodeProto[], initializers: Map<string, TensorProto>): NodeProto[] {
  const used = new Set<string>([...initializers.keys()]);
  for (const n of source) for (const o of n.output) used.add(o);
  const fresh = (base: string): string => {
    let k = 0;
    while (used.has(`${base}_${k}`)) k++;
    used.add(`${base}_${k}`);
    return `${base}_${k}`;
  };
  const nodes: NodeProto[] = [];
  for (const n0 of source) {
    if (n0.opType === 'Constant') {
      const t = ownBytes(constantNodeValue(n0));
      initializers.set(n0.output[0]!, makeTensor(n0.output[0]!, dimsOf(t), tensorValues(t), t.dataType as DataType));
      continue;
    }
    const n = onnx.NodeProto.create({ ...n0, input: [...n0.input], output: [...n0.output], attribute: [...n0.attribute] });
    if (n.opType === 'LayerNormalization') {
      while (n.output.length < 3) n.output.push('');
      n.output = n.output.map((o, k) => (o ? o : fresh(`${n.name || 'LayerNorm'}_${k === 1 ? 'mean' : 'inv_std'}`)));
    }
    nodes.push(n);
  }
  return nodes;
}

/** Initializers keyed by name, with small/integer ones owning their bytes. */
export function initializerMap(model: ModelProto): Map<string, TensorProto> {
  return new Map(((model.graph?.initializer ?? []) as TensorProto[]).map((t) => [t.name, ownBytes(t)]));
}

export interface StaticOptions {
  batch: number;
  seq: number;
  /** Initializers that stay variable (parameters): never folded. */
  variables: Set<string>;
  /** Predict shapes from cheap probes at batch 1 and 2 (default true; false probes every tensor at `batch`). */
  affineProbe?: boolean;
}

/**
 * Fixes the input shapes to [batch, seq], drops past_key_values (past length 0) and extra outputs, runs the graph
 * once to learn every tensor's static shape, and folds every tensor that depends on no data into a constant.
 */
export async function staticForward(forward: ModelProto, opts: StaticOptions): Promise<StaticForward> {
  const { batch, seq } = opts;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seq) || seq < 2) throw new Error(`seq must be an integer >= 2 (next-token loss), got ${seq}`);
  if (!forward.graph) throw new Error('forward model has no graph');
  const graph = forward.graph as GraphProto;
  const gNodes = graph.node as NodeProto[];
  const gOutputs = graph.output as ValueInfoProto[];
  const opset = opsetOf(forward);
  if (opset < 13) throw new Error(`forward graph uses opset ${opset}; the gradient builder needs opset >= 13 (re-export with a newer opset)`);
  for (const n of gNodes) {
    if (n.domain && n.domain !== 'ai.onnx')
      throw new Error(`forward graph node ${n.name} (${n.opType}) is in domain ${n.domain}: only standard ONNX ops can be differentiated`);
  }
  const logitsOut = gOutputs.find((o) => o.name === 'logits');
  if (!logitsOut)
    throw new Error(
      `forward graph must output \`logits\` [batch, seq, vocab]; its outputs are: ${gOutputs.map((o) => o.name).join(', ') || '(none)'}`,
    );

  const initializers = initializerMap(forward);
  // The causal-LM interface decides what is data (input_ids, attention_mask: fed at [batch, seq]) and what
  // is constant at fixed shapes without padding (position ids, empty pasts: causal-lm.ts).
  const lm = describeCausalLm(forward, 'forward graph');
  const inputs: ValueInfoProto[] = [lm.inputIds, ...(lm.attentionMask ? [lm.attentionMask] : [])].map((v) => valueInfo(v.name, v.dtype, [batch, seq]));
  const constants = trainingConstants(lm, batch, seq);
  for (const t of constants) initializers.set(t.name, t);
  const batchConstants = (b: number): TensorProto[] => trainingConstants(lm, b, seq);
  const nodes = copyNodes(gNodes, initializers);
  const available = new Set<string>([...initializers.keys(), ...inputs.map((v) => v.name)]);
  let live = pruneNodes(topoSort(nodes, available), ['logits']);

  // Shapes of every tensor and values of the fold frontier (see the probes below).
  const info = new Map<string, TensorInfo>();
  for (const [name, t] of initializers) info.set(name, { dtype: t.dataType as DataType, shape: dimsOf(t) });
  for (const v of inputs) info.set(v.name, { dtype: valueInfoShape(v).dtype, shape: [batch, seq] });

  const dynamic = new Set<string>([...inputs.map((v) => v.name), ...[...opts.variables].filter((n) => initializers.has(n))]);
  for (const n of live) {
    const dyn = n.opType !== 'Shape' && n.opType !== 'Size' && n.input.some((i) => dynamic.has(i));
    if (dyn) for (const o of n.output) dynamic.add(o);
  }
  // Static tensors read by dynamic nodes are the fold frontier: their values are needed.
  const frontier = new Set<string>();
  for (const n of live) {
    if (!n.output.some((o) => dynamic.has(o))) continue;
    for (const i of n.input) if (i && !dynamic.has(i) && !initializers.has(i)) frontier.add(i);
  }
  if (!dynamic.has('logits')) throw new Error('forward graph: `logits` does not depend on input_ids');

  // Probes at batch 1 and 2 are cheap; shapes are affine in the batch size, so they predict the shapes at `batch`.
  // The folded values then come from running only the data-independent nodes (no forward pass at `batch`).
  const probeAt = (b: number, keep: Set<string>, only?: string[]): Promise<Probe> => {
    const inits = new Map(initializers);
    for (const t of batchConstants(b)) inits.set(t.name, t);
    const ins = inputs.map((v) => valueInfo(v.name, valueInfoShape(v).dtype, [b, seq]));
    return probeTensors(forward, live, inits, ins, dummyFeeds(ins, b, seq), keep, only);
  };
  let probed: Probe | null = null;
  if (batch > 2 && opts.affineProbe !== false) {
    const p1 = await probeAt(1, new Set());
    const p2 = await probeAt(2, new Set());
    const predicted = new Map<string, TensorInfo>();
    let affine = true;
    for (const [name, i1] of p1.info) {
      const i2 = p2.info.get(name);
      if (!i2 || i2.shape.length !== i1.shape.length) affine = false;
      else predicted.set(name, { dtype: i1.dtype, shape: i1.shape.map((d, k) => d + (batch - 1) * (i2.shape[k]! - d)) });
    }
    if (affine && [...predicted.values()].every((i) => i.shape.every((d) => d >= 0))) {
      const shapeOf = (t: string): number[] | undefined => predicted.get(t)?.shape ?? info.get(t)?.shape;
      probed = { info: predicted, values: await foldedValues(forward, live, dynamic, initializers, frontier, shapeOf) };
    }
  }
  probed ??= await probeAt(batch, frontier);
  for (const [name, i] of probed.info) info.set(name, i);
  for (const [name, t] of probed.values) initializers.set(name, t);

  const logitsInfo = info.get('logits')!;
  const [b, t, vocab] = logitsInfo.shape;
  if (logitsInfo.shape.length !== 3 || b !== batch || t !== seq || vocab === undefined)
    throw new Error(`forward graph output \`logits\` must have shape [batch, seq, vocab] = [${batch}, ${seq}, V], got [${logitsInfo.shape}]`);
  if (!FLOAT_TYPES.has(logitsInfo.dtype)) throw new Error(`forward graph output \`logits\` must be float, got ONNX type ${logitsInfo.dtype}`);

  live = pruneNodes(
    live.filter((n) => n.output.some((o) => dynamic.has(o))),
    ['logits'],
  );
  const usedNames = new Set(live.flatMap((n) => n.input));
  for (const name of [...initializers.keys()]) if (!usedNames.has(name)) initializers.delete(name);
  return { opset, nodes: live, initializers, inputs, info, logits: 'logits', vocab };
}
