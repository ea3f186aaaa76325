// Forward-only scoring graph: a causal LM's forward graph with its `logits` output replaced by `nll`
// [B, T-1], the negative log-likelihood of token t+1 given tokens <= t. Computing logsumexp and the picked
// logit inside onnxruntime means only B x (T-1) floats come back to JavaScript instead of B x T x vocab,
// which is what makes scoring fast (see scripts/bench-eval.ts).
//
// nll[b, t] = logsumexp_v(logits[b, t, v]) - logits[b, t, input_ids[b, t+1]]
//
// Batch and sequence axes stay symbolic, so one graph serves every (batch, seq) and the on-disk cache is
// one entry per model. The inputs are the forward's own (models/causal-lm.ts says how to feed them).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GraphBuilder, opsetOf } from '../../models/onnx/graph.js';
import { ensureDir, writeDirAtomic, writeFileAtomic } from '../../util/atomic.js';
import { cacheDir } from '../../util/cache.js';
import { DataType, decodeModel, encodeModel, onnx, valueInfo, type GraphProto, type ModelProto, type NodeProto } from '../../models/onnx/proto.js';

export const NLL_OUTPUT = 'nll';
/** Part of the cache key: bump when the head changes, so that cached graphs are rebuilt. */
const HEAD_VERSION = 2;

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
  return h.digest('hex').slice(0, 16);
}

/** Scoring graphs kept in the cache (least recently used ones beyond this are removed). */
const KEEP = 8;

export const nllCacheRoot = (): string => join(cacheDir(), 'nll');

/**
 * Path of the scoring graph for a forward model file, built once and kept in the cache (not in the model
 * directory, which stays exactly what a user can publish), keyed by the size and mtime of the model and
 * its weights file so that a retrained model gets a fresh graph. The graph refers to the model's external
 * weights files, which are hard-linked beside it (copied across file systems): no weight is decoded.
 */
export async function cachedNllGraph(forwardPath: string, opts: { cacheDir?: string } = {}): Promise<string> {
  if (!existsSync(forwardPath)) throw new Error(`ONNX model not found: ${forwardPath}`);
  const root = opts.cacheDir ?? nllCacheRoot();
  const entry = join(root, cacheKey(forwardPath));
  const path = join(entry, 'model.nll.onnx');
  if (existsSync(path)) {
    const now = new Date();
    utimesSync(entry, now, now); // recently used
    return path;
  }
  const forward = decodeModel(readFileSync(forwardPath));
  const locations = new Set<string>();
  for (const t of forward.graph?.initializer ?? [])
    for (const e of t.externalData ?? []) if (e.key === 'location' && e.value) locations.add(e.value);
  try {
    ensureDir(root);
    await writeDirAtomic(entry, (tmp) => {
      for (const loc of locations) {
        const src = join(dirname(forwardPath), loc);
        const dst = join(tmp, loc);
        ensureDir(dirname(dst));
        try {
          linkSync(src, dst);
        } catch {
          copyFileSync(src, dst);
        }
      }
      writeFileAtomic(join(tmp, 'model.nll.onnx'), encodeModel(appendNllHead(forward)));
    });
  } catch (e) {
    throw new Error(`could not write the scoring graph for ${forwardPath} to ${root} (${(e as Error).message}); set COLLAPSE_CACHE_DIR to a writable directory`);
  }
  if (!existsSync(path)) throw new Error(`internal: the scoring graph ${path} was not written`);
  const entries = readdirSync(root)
    .map((f) => ({ f, t: statSync(join(root, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of entries.slice(KEEP)) rmSync(join(root, f), { recursive: true, force: true });
  return path;
}
