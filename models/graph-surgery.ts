// Decoding only needs the logits of the last position. A causal-LM graph computes them for every position
// (prefill of 64 tokens x 16 prompts x 50k vocab is most of the prefill's work), so the LM-head MatMul is
// fed the last hidden state only: Slice(hidden, starts=-1, axis 1). The rewrite is applied only when the
// pattern is recognised for certain; otherwise the graph is returned unchanged (still correct, slower).
import onnxProto from 'onnx-proto';
import { kvNames, type KvLayout } from './causal-lm.js';
import { makeTensor, onnx, type ModelProto } from './onnx/proto.js';

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

/** The LM head: the MatMul that makes `output` (through one bias Add at most) and its weight's orientation. */
interface LmHead {
  graph: onnxProto.onnx.IGraphProto;
  node: NodeProto;
  hidden: string;
  weight: string;
  producers: Map<string, NodeProto>;
}

function findLmHead(model: ModelProto, output: string): LmHead | null {
  const graph = model.graph;
  if (!graph) return null;
  const out = (graph.output ?? []).find((o) => o.name === output);
  const rank = out?.type?.tensorType?.shape?.dim?.length;
  if (rank !== 3) return null;
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producers.set(o, n);
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  let head = producers.get(output);
  // Allow one bias Add between the LM-head MatMul and the output.
  if (head?.opType === 'Add') {
    const [a, b] = head.input ?? [];
    const other = a && inits.has(a) ? b : b && inits.has(b) ? a : undefined;
    head = other ? producers.get(other) : undefined;
  }
  if (head?.opType !== 'MatMul') return null;
  const [hidden, weight] = head.input ?? [];
  if (!hidden || !weight || inits.has(hidden) || weightRank(model, weight, producers) !== 2) return null;
  return { graph, node: head, hidden, weight, producers };
}

/** The graph with `head` replaced by `replacement` nodes and `consts` added to the initializers. */
function replaceNode(model: ModelProto, graph: onnxProto.onnx.IGraphProto, head: NodeProto, replacement: NodeProto[], consts: onnxProto.onnx.ITensorProto[]): ModelProto {
  const nodes: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    if (n === head) nodes.push(...replacement);
    else nodes.push(n);
  }
  const newGraph = onnx.GraphProto.create({ ...graph, node: nodes, initializer: [...(graph.initializer ?? []), ...consts] });
  return onnx.ModelProto.create({ ...model, graph: newGraph });
}

export function sliceLogitsToLastPosition(model: ModelProto, output = 'logits'): ModelProto {
  const lm = findLmHead(model, output);
  if (!lm) return model;
  const sliced = `${lm.hidden}__last_position`;
  const consts = [
    makeTensor(`${sliced}__starts`, [1], BigInt64Array.of(-1n)),
    makeTensor(`${sliced}__ends`, [1], BigInt64Array.of(9223372036854775807n)),
    makeTensor(`${sliced}__axes`, [1], BigInt64Array.of(1n)),
  ];
  const slice = onnx.NodeProto.create({
    opType: 'Slice',
    name: `${sliced}__slice`,
    input: [lm.hidden, ...consts.map((c) => c.name)],
    output: [sliced],
  });
  const newHead = onnx.NodeProto.create({ ...lm.node, input: [sliced, lm.weight] });
  return replaceNode(model, lm.graph, lm.node, [slice, newHead], consts);
}

/** Vocabulary columns per LM-head product in splitLmHead. */
export const LM_HEAD_SLICE = 2048;

/**
 * Computes the LM head as products over vocabulary slices of `columns` (then one Concat) instead of one MatMul.
 * At decoding's thin shapes (80 rows x 768 x 50272) onnxruntime's SGEMM streams the whole [rows, vocab] output
 * through memory once per 256-deep block of the hidden size; a slice's output stays in cache. Measured on
 * OPT-125m's head, 80 rows, 1 thread: 115 -> 44 ms CPU. The slices of the weight are constants, which
 * onnxruntime folds (Slice, Transpose of an initializer) and prepacks like the whole weight. The sums are the
 * same (each logit is one dot product either way).
 */
export function splitLmHead(model: ModelProto, output = 'logits', columns = LM_HEAD_SLICE): ModelProto {
  const lm = findLmHead(model, output);
  if (!lm) return model;
  // The weight is [hidden, vocab], or the Transpose of a [vocab, hidden] initializer (a tied embedding).
  const transpose = lm.producers.get(lm.weight);
  const perm = transpose?.attribute?.find((a) => a.name === 'perm')?.ints?.map(Number);
  const tied = transpose?.opType === 'Transpose' && perm?.[0] === 1 && perm[1] === 0 ? transpose.input![0]! : null;
  const source = tied ?? lm.weight;
  const init = (lm.graph.initializer ?? []).find((t) => t.name === source);
  if (!init?.dims || init.dims.length !== 2) return model;
  const vocabAxis = tied ? 0 : 1;
  const vocab = Number(init.dims[vocabAxis]);
  if (!(vocab > 2 * columns)) return model;
  const base = `${source}__lm_head_slice`;
  const consts = [makeTensor(`${base}__axes`, [1], BigInt64Array.of(BigInt(vocabAxis)))];
  const nodes: NodeProto[] = [];
  const parts: string[] = [];
  for (let s = 0, i = 0; s < vocab; s += columns, i++) {
    const name = `${base}${i}`;
    consts.push(makeTensor(`${name}__starts`, [1], BigInt64Array.of(BigInt(s))));
    consts.push(makeTensor(`${name}__ends`, [1], BigInt64Array.of(BigInt(Math.min(vocab, s + columns)))));
    nodes.push(onnx.NodeProto.create({ opType: 'Slice', name: `${name}__slice`, input: [source, `${name}__starts`, `${name}__ends`, `${base}__axes`], output: [name] }));
    let w = name;
    if (tied) {
      w = `${name}__t`;
      nodes.push(onnx.NodeProto.create({ opType: 'Transpose', name: `${name}__transpose`, input: [name], output: [w], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] }] }));
    }
    nodes.push(onnx.NodeProto.create({ opType: 'MatMul', name: `${name}__matmul`, input: [lm.node.input![0]!, w], output: [`${name}__logits`] }));
    parts.push(`${name}__logits`);
  }
  nodes.push(
    onnx.NodeProto.create({
      opType: 'Concat',
      name: `${base}__concat`,
      input: parts,
      output: [lm.node.output![0]!],
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
    }),
  );
  const split = replaceNode(model, lm.graph, lm.node, nodes, consts);
  // The whole transposed embedding would now feed nothing; onnxruntime would still fold it (a copy of the head).
  if (!tied || (split.graph!.node ?? []).some((n) => n.input?.includes(lm.weight))) return split;
  const kept = (split.graph!.node ?? []).filter((n) => n !== transpose);
  return onnx.ModelProto.create({ ...split, graph: onnx.GraphProto.create({ ...split.graph!, node: kept }) });
}

/** The output `withLogSumExp` adds: log(sum(exp(logits))) over the vocabulary, [batch, seq]. */
export const LOGSUMEXP = 'logits_logsumexp';

/**
 * Adds the log-softmax normaliser of the logits as an output, computed by onnxruntime's vectorised,
 * multi-threaded kernels instead of 50k Math.exp calls per beam in JavaScript: max + log(sum(exp(x - max))).
 * Spelled out rather than ReduceLogSumExp, whose kernel takes ~3x longer (80 x 50272 logits: 17 -> 5 ms CPU).
 */
export function withLogSumExp(model: ModelProto, output = 'logits'): ModelProto {
  const graph = model.graph;
  if (!graph || !(graph.output ?? []).some((o) => o.name === output)) return model;
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = Number(opset?.version ?? 17);
  const INT = onnx.AttributeProto.AttributeType.INT;
  const INTS = onnx.AttributeProto.AttributeType.INTS;
  const axesName = `${LOGSUMEXP}__axes`;
  const extra = [makeTensor(axesName, [1], BigInt64Array.of(-1n))];
  // Reduce ops over the last axis, keeping it; axes became an input in opset 13 (ReduceSum, Squeeze) and 18 (ReduceMax).
  const last = (opType: string, input: string, name: string, axesAsInputFrom: number): NodeProto =>
    onnx.NodeProto.create({
      opType,
      name: `${name}__node`,
      input: version >= axesAsInputFrom ? [input, axesName] : [input],
      output: [name],
      attribute: [
        ...(opType === 'Squeeze' ? [] : [{ name: 'keepdims', type: INT, i: 1 }]),
        ...(version >= axesAsInputFrom ? [] : [{ name: 'axes', type: INTS, ints: [-1] }]),
      ],
    });
  const n = (opType: string, input: string[], name: string): NodeProto => onnx.NodeProto.create({ opType, name: `${name}__node`, input, output: [name] });
  const max = `${LOGSUMEXP}__max`;
  const nodes = [
    last('ReduceMax', output, max, 18),
    n('Sub', [output, max], `${LOGSUMEXP}__shifted`),
    n('Exp', [`${LOGSUMEXP}__shifted`], `${LOGSUMEXP}__exp`),
    last('ReduceSum', `${LOGSUMEXP}__exp`, `${LOGSUMEXP}__sum`, 13),
    n('Log', [`${LOGSUMEXP}__sum`], `${LOGSUMEXP}__log`),
    n('Add', [`${LOGSUMEXP}__log`, max], `${LOGSUMEXP}__kept`),
    last('Squeeze', `${LOGSUMEXP}__kept`, LOGSUMEXP, 13),
  ];
  const out = onnx.ValueInfoProto.create({
    name: LOGSUMEXP,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }] } } },
  });
  const newGraph = onnx.GraphProto.create({
    ...graph,
    node: [...(graph.node ?? []), ...nodes],
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
  // A Concat that only fed a present output is now dead; onnxruntime would still run it (copying the whole
  // cache each step), so it is dropped. One the attention still reads (most exports) stays.
  const consumed = new Set((graph.node ?? []).flatMap((n) => n.input ?? []));
  const dead = new Set(kvNames(kv).map((n) => n.present).filter((name) => !consumed.has(name)));
  const nodes = (graph.node ?? []).filter((n) => !(n.opType === 'Concat' && n.output?.length === 1 && dead.has(n.output[0]!)));
  const newGraph = onnx.GraphProto.create({
    ...graph,
    node: [...nodes, ...identities],
    output: [...outputs.filter((o) => !present.includes(o)), ...renamed],
  });
  return { model: onnx.ModelProto.create({ ...model, graph: newGraph }), layers: kv.layers };
}

/** Inputs and outputs that `withBeamShortlist` adds (the `logits` output is dropped). */
export const SHORTLIST = {
  /** int64 [batch, width]: per row, the tokens whose scores the logits processors set (masked out of the top-k). */
  excludedIds: 'candidate_excluded_ids',
  /** int64 [1]: how many shortlisted tokens per row. */
  k: 'candidate_k',
  /** float [batch, width]: the raw logits of the excluded tokens, for the processors. */
  excludedLogits: 'candidate_excluded_logits',
  /** float / int64 [batch, k]: the k largest logits of the other tokens and their token ids, best first. */
  values: 'candidate_values',
  indices: 'candidate_indices',
} as const;

/**
 * Beam search needs, of each row's 50k logits, only the few best and the few that its logits processors change
 * (repetition penalty, banned n-grams, EOS before the minimum length): the processors only lower scores, so a
 * row's best 2k candidates are its best 2k unprocessed tokens or processed ones. This makes the graph return
 * exactly those: TopK over the last position's logits with the processed tokens set to -inf
 * (ScatterElements), and the processed tokens' raw logits (GatherElements); `logits` stops being an output.
 * The 16 MB of logits per step then never leave onnxruntime (its outputs are copied into JavaScript), and the
 * top-k runs on onnxruntime's threads instead of a 4M-element JavaScript scan (scripts/bench-generate.ts).
 * TopK breaks ties by the lower index, as the JavaScript scan does. `lastPosition` adds the slice to the last
 * position for graphs whose logits sliceLogitsToLastPosition could not reduce. Null where the graph has no
 * rank-3 `logits` output or an opset below 11 (GatherElements, ScatterElements, TopK's `largest`).
 */
export function withBeamShortlist(model: ModelProto, opts: { lastPosition: boolean }, output = 'logits'): ModelProto | null {
  const graph = model.graph;
  const out = (graph?.output ?? []).find((o) => o.name === output);
  if (!graph || out?.type?.tensorType?.shape?.dim?.length !== 3) return null;
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (Number(opset?.version ?? 0) < 11) return null;
  const c = SHORTLIST;
  const INT = onnx.AttributeProto.AttributeType.INT;
  const INTS = onnx.AttributeProto.AttributeType.INTS;
  const n = (opType: string, input: string[], outs: string[], attribute: onnxProto.onnx.IAttributeProto[] = []): NodeProto =>
    onnx.NodeProto.create({ opType, name: `${outs[0]}__node`, input, output: outs, attribute });
  const lastAxis = [{ name: 'axis', type: INT, i: -1 }];
  const version = Number(opset!.version);
  const unsqueeze = (x: string, y: string, axis: number): NodeProto =>
    version >= 13 ? n('Unsqueeze', [x, `${y}__axes`], [y]) : n('Unsqueeze', [x], [y], [{ name: 'axes', type: INTS, ints: [axis] }]);
  const squeeze = (x: string, y: string, axis: number): NodeProto =>
    version >= 13 ? n('Squeeze', [x, `${y}__axes`], [y]) : n('Squeeze', [x], [y], [{ name: 'axes', type: INTS, ints: [axis] }]);
  const consts = [
    makeTensor(`${c.excludedIds}__3d__axes`, [1], BigInt64Array.of(1n)),
    makeTensor(`${c.excludedLogits}__axes`, [1], BigInt64Array.of(1n)),
    makeTensor(`${c.values}__axes`, [1], BigInt64Array.of(1n)),
    makeTensor(`${c.indices}__axes`, [1], BigInt64Array.of(1n)),
    makeTensor(`${c.excludedIds}__minus_inf`, [1, 1, 1], Float32Array.of(-Infinity)),
  ];
  let logits = output;
  const nodes: NodeProto[] = [];
  if (opts.lastPosition) {
    logits = `${c.values}__last_position`;
    consts.push(makeTensor(`${logits}__starts`, [1], BigInt64Array.of(-1n)), makeTensor(`${logits}__ends`, [1], BigInt64Array.of(9223372036854775807n)));
    nodes.push(n('Slice', [output, `${logits}__starts`, `${logits}__ends`, `${c.values}__axes`], [logits]));
  }
  const ids3 = `${c.excludedIds}__3d`; // [batch, 1, width], the logits' rank
  nodes.push(
    unsqueeze(c.excludedIds, ids3, 1),
    n('GatherElements', [logits, ids3], [`${c.excludedLogits}__3d`], lastAxis),
    squeeze(`${c.excludedLogits}__3d`, c.excludedLogits, 1),
    n('Shape', [ids3], [`${ids3}__shape`]),
    n('Expand', [`${c.excludedIds}__minus_inf`, `${ids3}__shape`], [`${ids3}__fill`]),
    n('ScatterElements', [logits, ids3, `${ids3}__fill`], [`${c.values}__masked`], lastAxis),
    n('TopK', [`${c.values}__masked`, c.k], [`${c.values}__3d`, `${c.indices}__3d`], [...lastAxis, { name: 'largest', type: INT, i: 1 }, { name: 'sorted', type: INT, i: 1 }]),
    squeeze(`${c.values}__3d`, c.values, 1),
    squeeze(`${c.indices}__3d`, c.indices, 1),
  );
  const io = (name: string, elemType: number, dims: (string | number)[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const newGraph = onnx.GraphProto.create({
    ...graph,
    node: [...(graph.node ?? []), ...nodes],
    initializer: [...(graph.initializer ?? []), ...consts],
    input: [...(graph.input ?? []), io(c.excludedIds, INT64, ['batch_size', 'excluded']), io(c.k, INT64, [1])],
    output: [
      ...(graph.output ?? []).filter((o) => o.name !== output),
      io(c.excludedLogits, FLOAT, ['batch_size', 'excluded']),
      io(c.values, FLOAT, ['batch_size', 'candidates']),
      io(c.indices, INT64, ['batch_size', 'candidates']),
    ],
  });
  return onnx.ModelProto.create({ ...model, graph: newGraph });
}
