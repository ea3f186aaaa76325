// The heads appended to a causal LM's `logits` (Hugging Face semantics: position t predicts token t + 1).
// Both work on all T positions and slice only small [B, T] results, so that the [B, T, V] logits are never
// sliced or padded (each would be one more pass over the largest tensor), and no [B, T, V] tensor leaves
// the graph:
//   appendNllHead:  nll [B, T-1], the one evaluation head: validation loss (the training artifact's eval
//                   graph) and every perplexity (the scoring graph, withNllHead) come from it;
//   appendLossHead: the training head, a masked NLL sum with its gradient written by hand.
import { GraphBuilder, opsetOf } from '../onnx/graph.js';
import { DataType, onnx, valueInfo, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js';

export const IGNORE_INDEX = -100;
/** The evaluation graphs' output: per-token NLL [B, T-1]. */
export const NLL_OUTPUT = 'nll';

interface HeadDims {
  batch: number;
  seq: number;
  dtype: DataType;
}

interface Shifted {
  /** log-softmax of the logits, [B, T, V]. */
  logp: string;
  /** Target index per position (ignored ones replaced by 0), [B, T, 1] int64. */
  index: string;
  /** Per-token NLL of the shifted target, [B, T] (position T-1 has no target: its value is meaningless). */
  nll: string;
  /** 1 where the shifted target is not ignored, float [B, T] (0 at T-1). */
  mask: string;
}

function shiftedNll(g: GraphBuilder, logits: string, targets: string, d: HeadDims): Shifted {
  const { batch: B, seq: T } = d;
  const next = g.op('Concat', [g.op('Slice', [targets, g.i64([1]), g.i64([T]), g.i64([1])]), g.i64(new Array<number>(B).fill(IGNORE_INDEX), [B, 1])], {
    axis: 1,
  });
  const valid = g.op('Not', [g.op('Equal', [next, g.i64([IGNORE_INDEX], [])])]);
  const safe = g.op('Where', [valid, next, g.i64([0], [])]); // ignored -> any valid id; masked out below
  const index = g.op('Unsqueeze', [safe, g.i64([2])]);
  const logp = g.op('LogSoftmax', [logits], { axis: -1 });
  const picked = g.op('GatherElements', [logp, index], { axis: 2 });
  const nll = g.op('Neg', [g.op('Reshape', [picked, g.i64([B, T])])]);
  const mask = g.op('Cast', [valid], { to: d.dtype });
  return { logp, index, nll, mask };
}

/**
 * nll[b, t] = logsumexp_v(logits[b, t, v]) - logits[b, t, ids[b, t+1]], [B, T-1], written to `out`.
 * Batch and sequence may be symbolic. Only B x (T-1) floats leave the graph instead of B x T x vocab, which is
 * what makes scoring fast (scripts/bench-eval.ts).
 */
export function appendNllHead(g: GraphBuilder, logits: string, ids: string, o: { opset: number; out: string }): string {
  const zero = g.i64([0]);
  const one = g.i64([1]);
  const minusOne = g.i64([-1]);
  const axis1 = g.i64([1]);
  const end = g.i64([Number.MAX_SAFE_INTEGER]);
  // Targets for all T positions: tokens 1..T-1 plus a dummy for the last position, whose result is dropped.
  const next = g.op('Slice', [ids, one, end, axis1]);
  const dummy = g.op('Slice', [ids, zero, one, axis1]);
  const target = g.op('Unsqueeze', [g.op('Concat', [next, dummy], { axis: 1 }), minusOne]);
  const picked = g.op('GatherElements', [logits, target], { axis: -1 });
  // ReduceLogSumExp subtracts the max internally in onnxruntime, so this is stable for large logits.
  const lse =
    o.opset >= 18
      ? g.op('ReduceLogSumExp', [logits, minusOne], { keepdims: 1 })
      : g.op('ReduceLogSumExp', [logits], { axes: [-1], keepdims: 1 });
  const full = g.op('Squeeze', [g.op('Sub', [lse, picked]), minusOne]);
  return g.op('Slice', [full, zero, minusOne, axis1], {}, { outputs: [o.out] });
}

/**
 * The scoring graph: `forward` (untouched, copy-free: same nodes and initializers) with the NLL head; its only
 * output is `nll` [batch, seq_minus_1]. Its inputs are the forward's own (models/causal-lm.ts says how to feed them).
 */
export function withNllHead(forward: ModelProto, logitsName = 'logits'): ModelProto {
  if (!forward.graph) throw new Error('model has no graph');
  const graph = forward.graph as GraphProto;
  if (!graph.output.some((o) => o.name === logitsName))
    throw new Error(`the model has no ${logitsName} output (outputs: ${graph.output.map((o) => o.name).join(', ')})`);
  const g = new GraphBuilder('nllhead/');
  g.reserve(graph.node.flatMap((n) => (n.output ?? []).map(String)));
  g.reserve(graph.initializer.map((t) => t.name ?? ''));
  g.reserve(graph.input.map((t) => t.name ?? ''));
  appendNllHead(g, logitsName, 'input_ids', { opset: opsetOf(forward), out: NLL_OUTPUT });
  const out = onnx.ModelProto.create({ ...forward });
  out.graph = onnx.GraphProto.create({
    ...graph,
    node: [...graph.node, ...(g.nodes as NodeProto[])],
    initializer: [...graph.initializer, ...g.initializers],
    output: [valueInfo(NLL_OUTPUT, DataType.FLOAT, ['batch', 'seq_minus_1'])],
    valueInfo: graph.valueInfo,
  });
  return out;
}

export interface LossHead {
  lossSum: string;
  tokenCount: string;
  /** d(loss_sum * loss_scale)/d logits, written by hand: w * (softmax(logits) - onehot(target)), w = mask * scale. */
  dLogits: string;
}

/**
 * The training head. Its gradient is one fused expression rather than the generic LogSoftmax/GatherElements
 * rules: three passes over [B, T, V] instead of about eight (the LM head dominates small models' steps).
 */
export function appendLossHead(g: GraphBuilder, logits: string, labels: string, lossScale: string, d: HeadDims): LossHead {
  const s = shiftedNll(g, logits, labels, d);
  const lossSum = g.op('ReduceSum', [g.op('Mul', [s.nll, s.mask]), g.i64([0, 1])], { keepdims: 0 });
  const tokenCount = g.op('ReduceSum', [s.mask, g.i64([0, 1])], { keepdims: 0 });
  const w = g.op('Unsqueeze', [g.op('Mul', [s.mask, lossScale]), g.i64([2])]); // [B, T, 1]
  const weighted = g.op('Mul', [g.op('Exp', [s.logp]), w]);
  const dLogits = g.op('ScatterElements', [weighted, s.index, g.op('Neg', [w])], { axis: 2, reduction: 'add' });
  return { lossSum, tokenCount, dLogits };
}
