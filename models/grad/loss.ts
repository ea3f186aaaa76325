// The next-token loss head appended to `logits` (Hugging Face causal-LM semantics: logits[:, :-1] predict
// targets[:, 1:]). Log-softmax and the gather stay in the graph, so no [B, T, V] tensor leaves it.
import type { GraphBuilder } from '../onnx/graph.js';
import { DataType } from '../onnx/proto.js';
import type { TensorInfo } from './static.js';

export const IGNORE_INDEX = -100;

export interface NllHead {
  /** NLL of token t+1 given tokens <= t, [B, T-1] (0 at ignored positions when masked). */
  nll: string;
  /** 1 where the target is not IGNORE_INDEX, float [B, T-1]. */
  mask: string;
}

/** Appends the per-token NLL of `targets` [B, T] int64 under `logits` [B, T, V]; records static shapes in `info`. */
export function appendNllHead(
  g: GraphBuilder,
  info: Map<string, TensorInfo>,
  logits: string,
  targets: string,
  dims: { batch: number; seq: number; vocab: number; dtype: DataType },
): NllHead {
  const { batch: B, seq: T, vocab: V, dtype } = dims;
  const note = (name: string, shape: number[], dt: DataType = dtype): string => {
    info.set(name, { dtype: dt, shape });
    return name;
  };
  const shifted = note(g.op('Slice', [logits, g.i64([0]), g.i64([T - 1]), g.i64([1])]), [B, T - 1, V]);
  const next = note(g.op('Slice', [targets, g.i64([1]), g.i64([T]), g.i64([1])]), [B, T - 1], DataType.INT64);
  const valid = note(g.op('Not', [g.op('Equal', [next, g.i64([IGNORE_INDEX], [])])]), [B, T - 1], DataType.BOOL);
  const safe = note(g.op('Where', [valid, next, g.i64([0], [])]), [B, T - 1], DataType.INT64); // -100 -> any valid id
  const logp = note(g.op('LogSoftmax', [shifted], { axis: -1 }), [B, T - 1, V]);
  const idx = note(g.op('Unsqueeze', [safe, g.i64([2])]), [B, T - 1, 1], DataType.INT64);
  const picked = note(g.op('GatherElements', [logp, idx], { axis: 2 }), [B, T - 1, 1]);
  const flat = note(g.op('Reshape', [picked, g.i64([B, T - 1])]), [B, T - 1]);
  const nll = note(g.op('Neg', [flat]), [B, T - 1]);
  const mask = note(g.op('Cast', [valid], { to: dtype }), [B, T - 1]);
  return { nll, mask };
}
