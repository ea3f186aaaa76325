// The next-token loss head appended to `logits` (Hugging Face causal-LM semantics: position t predicts
// targets[t + 1]). It works on all T positions with the last target set to "ignored", so that the [B, T, V]
// logits are never sliced or padded (each would be one more pass over the largest tensor of the step).
// Log-softmax and the gather stay in the graph: no [B, T, V] tensor leaves it.
import type { GraphBuilder } from '../onnx/graph.js';
import { DataType } from '../onnx/proto.js';

export const IGNORE_INDEX = -100;

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

/** Per-token NLL for evaluation: nll [B, T-1] = -log p(targets[t+1] | tokens <= t). */
export function appendNllHead(g: GraphBuilder, logits: string, targets: string, d: HeadDims): string {
  const s = shiftedNll(g, logits, targets, d);
  return g.op('Slice', [s.nll, g.i64([0]), g.i64([d.seq - 1]), g.i64([1])]);
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
