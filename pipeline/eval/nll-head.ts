// Forward-only scoring graph: a causal LM's forward graph with its `logits` output replaced by `nll`
// [B, T-1], the negative log-likelihood of token t+1 given tokens <= t. Computing logsumexp and the picked
// logit inside onnxruntime means only B x (T-1) floats come back to JavaScript instead of B x T x vocab,
// which is what makes scoring fast (see scripts/bench-eval.ts).
//
// nll[b, t] = logsumexp_v(logits[b, t, v]) - logits[b, t, input_ids[b, t+1]]
//
// Batch and sequence axes stay symbolic, so one graph serves every (batch, seq) and the on-disk cache is
// one file per model.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GraphBuilder, opsetOf } from '../../models/onnx/graph.js';
import { loadModel, saveModel } from '../../models/onnx/io.js';
import { DataType, onnx, valueInfo, valueInfoShape, type GraphProto, type ModelProto, type NodeProto } from '../../models/onnx/proto.js';

export const NLL_OUTPUT = 'nll';

/** The graph inputs a scorer must feed: token ids, and the attention mask when the forward declares one. */
export interface NllGraphInputs {
  hasAttentionMask: boolean;
  /** past_key_values inputs (a with-past export): fed as empty [B, heads, 0, head_dim] tensors. */
  past: { name: string; heads: number; headDim: number }[];
}

export function nllGraphInputs(model: ModelProto): NllGraphInputs {
  const inputs = model.graph?.input ?? [];
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const real = inputs.filter((i) => !inits.has(i.name ?? ''));
  const names = real.map((i) => i.name ?? '');
  if (!names.includes('input_ids')) throw new Error(`the model has no input_ids input (inputs: ${names.join(', ')}); is it a causal LM forward graph?`);
  const past: NllGraphInputs['past'] = [];
  for (const i of real) {
    const name = i.name ?? '';
    if (name === 'input_ids' || name === 'attention_mask') continue;
    if (!name.startsWith('past_key_values')) throw new Error(`cannot score with a model that needs input ${name}; expected input_ids, attention_mask and past_key_values.* only`);
    const { shape } = valueInfoShape(i);
    const heads = shape[1];
    const headDim = shape[3];
    if (typeof heads !== 'number' || typeof headDim !== 'number')
      throw new Error(`past input ${name} has symbolic heads/head_dim [${shape.join(', ')}]; export the forward without past or with static head dims`);
    past.push({ name, heads, headDim });
  }
  return { hasAttentionMask: names.includes('attention_mask'), past };
}

/** Returns a copy-free rewrite of `forward`: same nodes plus the NLL head; the only output is `nll`. */
export function appendNllHead(forward: ModelProto, logitsName = 'logits'): ModelProto {
  if (!forward.graph) throw new Error('model has no graph');
  const graph = forward.graph as GraphProto;
  if (!graph.output.some((o) => o.name === logitsName))
    throw new Error(`the model has no ${logitsName} output (outputs: ${graph.output.map((o) => o.name).join(', ')})`);
  const opset = opsetOf(forward);
  const g = new GraphBuilder('nllhead/');
  g.reserve(graph.node.flatMap((n) => (n.output ?? []).map(String)));
  g.reserve(graph.initializer.map((t) => t.name ?? ""));
  g.reserve(graph.input.map((t) => t.name ?? ''));

  const zero = g.i64([0]);
  const one = g.i64([1]);
  const minusOne = g.i64([-1]);
  const axis1 = g.i64([1]);
  const end = g.i64([Number.MAX_SAFE_INTEGER]);
  // Predictions at positions 0..T-2 and their targets, tokens 1..T-1.
  const pred = g.op('Slice', [logitsName, zero, minusOne, axis1]);
  const target = g.op('Slice', ['input_ids', one, end, axis1]);
  const target3 = g.op('Unsqueeze', [target, minusOne]);
  const picked = g.op('GatherElements', [pred, target3], { axis: -1 });
  // ReduceLogSumExp subtracts the max internally in onnxruntime, so this is stable for large logits.
  const lse =
    opset >= 18 ? g.op('ReduceLogSumExp', [pred, minusOne], { keepdims: 1 }) : g.op('ReduceLogSumExp', [pred], { axes: [-1], keepdims: 1 });
  const diff = g.op('Sub', [lse, picked]);
  g.op('Squeeze', [diff, minusOne], {}, { outputs: [NLL_OUTPUT] });

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

/**
 * Path of the scoring graph for a forward model file, built once and cached. The cache sits beside the model
 * (`.nll-cache/nll-<key>.onnx`) when that directory is writable, else in the OS temp dir; it is keyed by the model
 * file's size and mtime, so a retrained model gets a fresh graph.
 */
export function cachedNllGraph(forwardPath: string, opts: { cacheDir?: string } = {}): string {
  if (!existsSync(forwardPath)) throw new Error(`ONNX model not found: ${forwardPath}`);
  const st = statSync(forwardPath);
  const key = createHash('sha1').update(`${forwardPath}|${st.size}|${st.mtimeMs}`).digest('hex').slice(0, 12);
  const dirs = opts.cacheDir ? [opts.cacheDir] : [join(dirname(forwardPath), '.nll-cache'), join(tmpdir(), 'collapse-nll-cache')];
  for (const dir of dirs) {
    const path = join(dir, `nll-${key}.onnx`);
    if (existsSync(path)) return path;
  }
  const model = appendNllHead(loadModel(forwardPath));
  let lastError: Error | null = null;
  for (const dir of dirs) {
    const path = join(dir, `nll-${key}.onnx`);
    try {
      mkdirSync(dir, { recursive: true });
      saveModel(model, path);
      return path;
    } catch (e) {
      lastError = e as Error;
    }
  }
  throw new Error(`could not write the scoring graph for ${forwardPath} (${lastError?.message}); pass a writable cache dir`);
}
