// Decoding only needs the logits of the last position. A causal-LM graph computes them for every position
// (prefill of 64 tokens x 16 prompts x 50k vocab is most of the prefill's work), so the LM-head MatMul is
// fed the last hidden state only: Slice(hidden, starts=-1, axis 1). The rewrite is applied only when the
// pattern is recognised for certain; otherwise the graph is returned unchanged (still correct, slower).
import onnxProto from 'onnx-proto';
import { kvNames, type KvLayout } from '../../models/causal-lm.js';
import { makeTensor, onnx, type ModelProto } from '../../models/onnx/proto.js';

type NodeProto = onnxProto.onnx.INodeProto;

/** The rank of a weight input when it is an initializer or a Transpose of one (the tied LM head). */
function weightRank(model: ModelProto, name: string, producers: Map<string, NodeProto>): number | null {
  const init = (model.graph?.initializer ?? []).find((t) => t.name === name);
  if (init) return init.dims?.length ?? 0;
  const p = producers.get(name);
  const src = p?.opType === 'Transpose' ? p.input?.[0] : undefined;
  if (src) return weightRank(model, src, producers);
  return null;
}

export function sliceLogitsToLastPosition(model: ModelProto, output = 'logits'): ModelProto {
  const graph = model.graph;
  if (!graph) return model;
  const nodesIn = graph.node ?? [];
  const initializers = graph.initializer ?? [];
  const out = (graph.output ?? []).find((o) => o.name === output);
  const rank = out?.type?.tensorType?.shape?.dim?.length;
  if (rank !== 3) return model;
  const producers = new Map<string, NodeProto>();
  for (const n of nodesIn) for (const o of n.output ?? []) producers.set(o, n);
  const inits = new Set(initializers.map((t) => t.name));

  let head = producers.get(output);
  // Allow one bias Add between the LM-head MatMul and the output.
  if (head?.opType === 'Add') {
    const [a, b] = head.input ?? [];
    const other = a && inits.has(a) ? b : b && inits.has(b) ? a : undefined;
    head = other ? producers.get(other) : undefined;
  }
  if (head?.opType !== 'MatMul') return model;
  const [hidden, weight] = head.input ?? [];
  if (!hidden || !weight || inits.has(hidden) || weightRank(model, weight, producers) !== 2) return model;

  const sliced = `${hidden}__last_position`;
  const consts = [
    makeTensor(`${sliced}__starts`, [1], BigInt64Array.of(-1n)),
    makeTensor(`${sliced}__ends`, [1], BigInt64Array.of(9223372036854775807n)),
    makeTensor(`${sliced}__axes`, [1], BigInt64Array.of(1n)),
  ];
  const slice = onnx.NodeProto.create({
    opType: 'Slice',
    name: `${sliced}__slice`,
    input: [hidden, ...consts.map((c) => c.name)],
    output: [sliced],
  });
  const newHead = onnx.NodeProto.create({ ...head, input: [sliced, weight] });
  const nodes: NodeProto[] = [];
  for (const n of nodesIn) {
    if (n === head) nodes.push(slice, newHead);
    else nodes.push(n);
  }
  const newGraph = onnx.GraphProto.create({ ...graph, node: nodes, initializer: [...initializers, ...consts] });
  return onnx.ModelProto.create({ ...model, graph: newGraph });
}

/** The output `withLogSumExp` adds: log(sum(exp(logits))) over the vocabulary, [batch, seq]. */
export const LOGSUMEXP = 'logits_logsumexp';

/**
 * Adds the log-softmax normaliser of the logits as an output, computed by onnxruntime's vectorised,
 * multi-threaded kernels instead of 50k Math.exp calls per beam in JavaScript.
 */
export function withLogSumExp(model: ModelProto, output = 'logits'): ModelProto {
  const graph = model.graph;
  if (!graph || !(graph.output ?? []).some((o) => o.name === output)) return model;
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = Number(opset?.version ?? 17);
  const extra: onnxProto.onnx.ITensorProto[] = [];
  const inputs = [output];
  const attribute: onnxProto.onnx.IAttributeProto[] = [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }];
  // Reduce ops take axes as an attribute up to opset 17 and as an input from opset 18.
  if (version >= 18) {
    extra.push(makeTensor(`${LOGSUMEXP}__axes`, [1], BigInt64Array.of(-1n)));
    inputs.push(`${LOGSUMEXP}__axes`);
  } else attribute.push({ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] });
  const node = onnx.NodeProto.create({ opType: 'ReduceLogSumExp', name: `${LOGSUMEXP}__reduce`, input: inputs, output: [LOGSUMEXP], attribute });
  const out = onnx.ValueInfoProto.create({
    name: LOGSUMEXP,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }] } } },
  });
  const newGraph = onnx.GraphProto.create({
    ...graph,
    node: [...(graph.node ?? []), node],
    initializer: [...(graph.initializer ?? []), ...extra],
    output: [...(graph.output ?? []), out],
  });
  return onnx.ModelProto.create({ ...model, graph: newGraph });
}

/** Output name of the key or value computed for the new tokens only (see withNewKeyValueOutputs). */
export const newKvName = (layer: number, kv: 'key' | 'value'): string => `new_key_values.${layer}.${kv}`;

/**
 * onnxruntime-node copies every output into a fresh JavaScript buffer, so returning the whole
 * present.{i}.key|value cache each step costs more than the step itself. When present = Concat(past, new)
 * on the sequence axis (the HF/Optimum pattern), this replaces the present outputs by the `new` part,
 * [batch, heads, seq, head_dim]; the caller keeps the cache. Returns null when the pattern is not found.
 */
export function withNewKeyValueOutputs(model: ModelProto, kv: KvLayout): { model: ModelProto; layers: number } | null {
  const graph = model.graph;
  if (!graph) return null;
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producers.set(o, n);
  const outputs = graph.output ?? [];
  const presentNames = new Set(kvNames(kv).map((n) => n.present));
  const present = outputs.filter((o) => presentNames.has(o.name ?? ''));
  if (present.length !== presentNames.size) return null;
  const renamed: onnxProto.onnx.IValueInfoProto[] = [];
  const identities: NodeProto[] = [];
  for (const n of kvNames(kv)) {
    const o = present.find((x) => x.name === n.present)!;
    const concat = producers.get(n.present);
    const axis = concat?.attribute?.find((a) => a.name === 'axis')?.i;
    if (concat?.opType !== 'Concat' || concat.input?.length !== 2 || concat.input[0] !== n.past || ![2, -2].includes(Number(axis))) return null;
    const name = newKvName(n.layer, n.kind);
    identities.push(onnx.NodeProto.create({ opType: 'Identity', name: `${name}__identity`, input: [concat.input[1]!], output: [name] }));
    const dims = o.type?.tensorType?.shape?.dim ?? [];
    renamed.push(
      onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d, i) => (i === 2 ? { dimParam: 'sequence_length' } : d)) } } },
      }),
    );
  }
  const newGraph = onnx.GraphProto.create({
    ...graph,
    node: [...(graph.node ?? []), ...identities],
    output: [...outputs.filter((o) => !present.includes(o)), ...renamed],
  });
  return { model: onnx.ModelProto.create({ ...model, graph: newGraph }), layers: kv.layers };
}
