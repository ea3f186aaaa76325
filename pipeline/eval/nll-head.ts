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
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GraphBuilder, opsetOf } from '../../models/onnx/graph.js';
import { loadModel, saveModel } from '../../models/onnx/io.js';
import { ensureDir, writeFileAtomic } from '../../models/util/atomic.js';
import { DataType, decodeModel, encodeModel, onnx, valueInfo, valueInfoShape, type GraphProto, type ModelProto, type NodeProto } from '../../models/onnx/proto.js';

export const NLL_OUTPUT = 'nll';
/** Part of the cache key: bump when the head changes, so that cached graphs are rebuilt. */
const HEAD_VERSION = 2;

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
  // Targets for all T positions: tokens 1..T-1 plus a dummy for the last position, whose result is dropped.
  // Working on the full logits and slicing the small [B, T] result avoids copying [B, T-1, vocab].
  const next = g.op('Slice', ['input_ids', one, end, axis1]);
  const dummy = g.op('Slice', ['input_ids', zero, one, axis1]);
  const target = g.op('Unsqueeze', [g.op('Concat', [next, dummy], { axis: 1 }), minusOne]);
  const picked = g.op('GatherElements', [logitsName, target], { axis: -1 });
  // ReduceLogSumExp subtracts the max internally in onnxruntime, so this is stable for large logits.
  const lse =
    opset >= 18
      ? g.op('ReduceLogSumExp', [logitsName, minusOne], { keepdims: 1 })
      : g.op('ReduceLogSumExp', [logitsName], { axes: [-1], keepdims: 1 });
  const full = g.op('Squeeze', [g.op('Sub', [lse, picked]), minusOne]);
  g.op('Slice', [full, zero, minusOne, axis1], {}, { outputs: [NLL_OUTPUT] });

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

function cacheKey(forwardPath: string): string {
  const h = createHash('sha1').update(`${HEAD_VERSION}|${forwardPath}`);
  for (const p of [forwardPath, `${forwardPath}_data`]) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    h.update(`|${st.size}|${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * Path of the scoring graph for a forward model file, built once and cached, keyed by the size and mtime of
 * the model and its weights file so that a retrained model gets a fresh graph.
 * Preferred: beside the model (`<name>.nll-<key>.onnx`), where it refers to the model's own external weights
 * file, so that no weight is copied or even read. When that directory is read-only, a full copy goes to
 * `cacheDir` (default: the OS temp dir).
 */
export function cachedNllGraph(forwardPath: string, opts: { cacheDir?: string } = {}): string {
  if (!existsSync(forwardPath)) throw new Error(`ONNX model not found: ${forwardPath}`);
  const key = cacheKey(forwardPath);
  const dir = dirname(forwardPath);
  const stem = basename(forwardPath).replace(/\.onnx$/, '');
  const beside = join(dir, `${stem}.nll-${key}.onnx`);
  const copy = join(opts.cacheDir ?? join(tmpdir(), 'collapse-nll-cache'), `${stem}.nll-${key}.onnx`);
  for (const p of [beside, copy]) if (existsSync(p)) return p;
  try {
    accessSync(dir, constants.W_OK);
    // Graph only: external tensors keep their (relative) locations, which resolve from the same directory.
    const graph = appendNllHead(decodeModel(readFileSync(forwardPath)));
    writeFileAtomic(beside, encodeModel(graph));
    for (const f of readdirSync(dir)) if (f.startsWith(`${stem}.nll-`) && f.endsWith('.onnx') && f !== basename(beside)) rmSync(join(dir, f), { force: true });
    return beside;
  } catch {
    // Read-only model directory: write a self-contained copy (weights included) to the cache dir.
  }
  try {
    ensureDir(dirname(copy));
    saveModel(appendNllHead(loadModel(forwardPath)), copy);
    return copy;
  } catch (e) {
    throw new Error(`could not write the scoring graph for ${forwardPath} to ${dirname(copy)} (${(e as Error).message}); pass a writable cache directory`);
  }
}
