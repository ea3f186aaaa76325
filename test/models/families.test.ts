// Other causal-LM families through every stage, against the PyTorch references in ../shared/models
// (GPT-2 and Llama exported by torch.onnx; the same Llama with an Optimum-layout KV cache):
//   - the last-position logits equal PyTorch's within 1e-4;
//   - HF-semantics beam search gives the reference continuations token for token, with and without the cache;
//   - one full-batch SGD step of `collapse train` equals -lr x a float64 finite-difference gradient;
//   - transformers.js loads the fine-tuned GPT-2 and Llama directories and runs them.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { describeCausalLm, lmFeeds, type CausalLm } from '../../models/causal-lm.js';
import { forwardGraph, generationPlan, openModelDir, stagePlan } from '../../models/model-dir/index.js';
import { loadModel, saveModel } from '../../models/onnx/io.js';
import { DataType, onnx, valueInfo, type ModelProto, type TensorProto } from '../../models/onnx/proto.js';
import { openSession } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { beamSearch } from '../../pipeline/generate/beam-search.js';
import { openDecoder, PresentCacheDecoder } from '../../pipeline/generate/decoder/index.js';
import { withLogSumExp } from '../../models/graph-surgery.js';
import { finetune } from '../../pipeline/train/finetune.js';
import { toDouble } from '../grad/precision.js';
import { sharedPath } from '../helpers/shared.js';

interface Reference {
  input_ids: number[][];
  logits_last_position: number[][];
  beam_search: { num_beams: number; new_tokens: number; min_new_tokens: number; repetition_penalty: number; eos_token_id: number; continuations: number[][] };
}

const tmp = mkdtempSync(join(tmpdir(), 'families-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DIRS = ['gpt2-tiny-torch-export-opset17', 'llama-tiny-torch-export-opset17', 'llama-tiny-kv-optimum-layout-opset17'] as const;

async function beams(graph: string | ModelProto, ref: Reference, opts: { noCache?: boolean; shortlist?: boolean } = {}, decoder?: PresentCacheDecoder): Promise<number[][]> {
  const bs = ref.beam_search;
  const dec = decoder ?? (await openDecoder(graph, { threads: 1, noCache: opts.noCache, shortlist: opts.shortlist }));
  try {
    const res = await beamSearch(dec, ref.input_ids.map((r) => Int32Array.from(r)), {
      numBeams: bs.num_beams,
      maxNewTokens: bs.new_tokens,
      minNewTokens: bs.min_new_tokens,
      repetitionPenalty: bs.repetition_penalty,
      eosId: bs.eos_token_id,
      padId: bs.eos_token_id,
    });
    return res.tokens.map((t) => Array.from(t));
  } finally {
    await dec.release();
  }
}

for (const name of DIRS) {
  const dir = sharedPath(`models/${name}`);
  describe.skipIf(!dir)(name, () => {
    const ref = (): Reference => JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')) as Reference;

    it('is recognised by config and interface; its last-position logits equal PyTorch within 1e-4', async () => {
      const md = openModelDir(dir!);
      expect(md.config.family).toBe(name.startsWith('gpt2') ? 'gpt2' : 'llama');
      const kv = name.includes('-kv-');
      expect(md.graphs[0]!.lm.kv !== null).toBe(kv);
      if (kv) {
        expect(md.graphs[0]!.lm.kv).toEqual({ layers: 2, kvHeads: 2, headDim: 8, dtype: DataType.FLOAT }); // GQA: 4 query heads
        expect(stagePlan(md).generate).toMatch(/KV cache/);
      } else expect(stagePlan(md).generate).toMatch(/recomputation/);
      const g = forwardGraph(md);
      const r = ref();
      const B = r.input_ids.length;
      const T = r.input_ids[0]!.length;
      const s = await openSession(g.path, { threads: 1 });
      const out = await s.run(lmFeeds(g.lm, { ids: r.input_ids.flat(), rows: B, seq: T }));
      await s.release();
      const logits = out.logits!.data as Float32Array;
      const V = out.logits!.dims[2]!;
      let worst = 0;
      let scale = 0;
      for (let b = 0; b < B; b++)
        for (let v = 0; v < V; v++) {
          const want = r.logits_last_position[b]![v]!;
          worst = Math.max(worst, Math.abs(logits[(b * T + T - 1) * V + v]! - want));
          scale = Math.max(scale, Math.abs(want));
        }
      expect(scale).toBeGreaterThan(0.5);
      expect(worst).toBeLessThan(1e-4);
    });

    it('beam search gives the reference continuations token for token, with and without the KV cache', async () => {
      const md = openModelDir(dir!);
      const plan = generationPlan(md);
      const want = ref().beam_search.continuations;
      expect(await beams(plan.graph, ref())).toEqual(want);
      expect(await beams(plan.graph, ref(), { noCache: true })).toEqual(want);
      expect(await beams(plan.graph, ref(), { shortlist: true })).toEqual(want); // as `collapse generate` decodes
      if (md.graphs[0]!.lm.kv) {
        // The general present -> past feedback (used for graphs the slot cache cannot rewrite) agrees too.
        const proto = loadModel(md.onnxPath!);
        const lm = describeCausalLm(proto, name);
        const dec = new PresentCacheDecoder(await openSession(withLogSumExp(proto), { threads: 1 }), lm, lm.kv!);
        expect(await beams(proto, ref(), {}, dec)).toEqual(want);
      }
    });
  });
}

const llamaKv = sharedPath('models/llama-tiny-kv-optimum-layout-opset17');
const llama = sharedPath('models/llama-tiny-torch-export-opset17');
describe.skipIf(!llamaKv || !llama)('Llama with and without the Optimum KV cache', () => {
  it('left-padded prompts of different lengths decode to the same tokens through the cache, its feedback and recomputation', async () => {
    const path = join(llamaKv!, 'onnx/model.onnx');
    const prompts = [Int32Array.from([5, 6, 7, 8, 9, 10, 11]), Int32Array.from([100, 200, 300]), Int32Array.from([4000, 17, 9000, 12, 13])];
    const run = async (dec: Awaited<ReturnType<typeof openDecoder>>) => {
      const r = await beamSearch(dec, prompts, { numBeams: 3, maxNewTokens: 6, minNewTokens: 6, repetitionPenalty: 1.5, eosId: 50256, padId: 50256 });
      await dec.release();
      return { tokens: r.tokens.map((t) => Array.from(t)), scores: r.scores };
    };
    const proto = loadModel(path);
    const lm = describeCausalLm(proto, path);
    const kv = await run(await openDecoder(path, { threads: 1 }));
    const feedback = await run(new PresentCacheDecoder(await openSession(withLogSumExp(proto), { threads: 1 }), lm, lm.kv!));
    const recompute = await run(await openDecoder(path, { threads: 1, noCache: true }));
    // A beam shortlist instead of whole logits, through Optimum's graph (the present-feedback decoder here).
    const shortlist = await run(await openDecoder(path, { threads: 1, shortlist: true }));
    expect(shortlist).toEqual(kv);
    expect(feedback.tokens).toEqual(kv.tokens);
    expect(recompute.tokens).toEqual(kv.tokens);
    kv.scores.forEach((s, i) => expect(recompute.scores[i]).toBeCloseTo(s, 4));
    // Prompts of one length: the cache-less export of the same weights gives the same tokens.
    const same = [prompts[0]!, Int32Array.from([1, 2, 3, 4, 5, 6, 7])];
    const a = await beamSearch(await openDecoder(path, { threads: 1 }), same, { numBeams: 2, maxNewTokens: 5, minNewTokens: 5, eosId: 50256, padId: 50256 });
    const b = await beamSearch(await openDecoder(join(llama!, 'onnx/model.onnx'), { threads: 1 }), same, { numBeams: 2, maxNewTokens: 5, minNewTokens: 5, eosId: 50256, padId: 50256 });
    expect(a.tokens.map((t) => Array.from(t))).toEqual(b.tokens.map((t) => Array.from(t)));
  });
});

/** Float initializer values by name (copies). */
function floatInits(model: ModelProto): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of (model.graph?.initializer ?? []) as TensorProto[])
    if (t.dataType === DataType.FLOAT && t.rawData && t.rawData.length > 4) out.set(t.name, new Float32Array(new Uint8Array(t.rawData).buffer));
  return out;
}

/** A float64 copy of a graph whose named weights are inputs (ONNX Runtime does not let a feed override an initializer). */
interface Graph64 {
  session: ort.InferenceSession;
  lm: CausalLm;
  weights: Map<string, { data: Float64Array; dims: number[] }>;
}

async function graph64(model: ModelProto, names: string[]): Promise<Graph64> {
  const f64 = toDouble(model);
  const g = f64.graph!;
  const weights = new Map<string, { data: Float64Array; dims: number[] }>();
  for (const n of names) {
    const t = (g.initializer as TensorProto[]).find((x) => x.name === n)!;
    weights.set(n, { data: new Float64Array(new Uint8Array(t.rawData!).buffer), dims: (t.dims ?? []).map(Number) });
    g.input!.push(valueInfo(n, DataType.DOUBLE, weights.get(n)!.dims));
  }
  g.initializer = (g.initializer as TensorProto[]).filter((t) => !weights.has(t.name));
  // Optimisation off: ONNX Runtime's fusions (QuickGelu...) exist for float32 only.
  const session = await openSession(f64, { threads: 1, optimization: 'disabled' });
  return { session, lm: describeCausalLm(model, 'f32'), weights };
}

/** Mean next-token NLL of the blocks under the float64 graph, with one weight entry moved by `delta`. */
async function meanNll64(m: Graph64, ids: Int32Array, rows: number, T: number, move?: { name: string; k: number; delta: number }): Promise<number> {
  const feeds = lmFeeds(m.lm, { ids, rows, seq: T });
  for (const n of Object.keys(feeds)) if (n.startsWith('past_key_values')) feeds[n] = new ort.Tensor('float64', new Float64Array(0), feeds[n]!.dims);
  for (const [n, w] of m.weights) {
    let data = w.data;
    if (move?.name === n) {
      data = data.slice();
      data[move.k] = data[move.k]! + move.delta;
    }
    feeds[n] = new ort.Tensor('float64', data, w.dims);
  }
  const out = await m.session.run(feeds);
  const logits = out.logits!.data as Float64Array;
  const V = out.logits!.dims[2]!;
  let sum = 0;
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < T - 1; t++) {
      const row = logits.subarray((r * T + t) * V, (r * T + t + 1) * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let z = 0;
      for (const v of row) z += Math.exp(v - max);
      sum += max + Math.log(z) - row[ids[r * T + t + 1]!]!;
    }
  return sum / (rows * (T - 1));
}

for (const [name, dir] of [
  ['gpt2', sharedPath('models/gpt2-tiny-torch-export-opset17')],
  ['llama', sharedPath('models/llama-tiny-kv-optimum-layout-opset17')],
] as const) {
  describe.skipIf(!dir)(`${name}: one SGD step and the fine-tuned directory`, () => {
    it('equals -lr x a float64 finite-difference gradient; transformers.js loads and runs the fine-tuned copy', async () => {
      const rows = 4;
      const T = 12;
      const rng = new Rng(7);
      const ids = Int32Array.from({ length: rows * T }, () => rng.int(50256));
      const out = join(tmp, `${name}-sgd`);
      const lr = 1;
      await finetune({
        model: dir!, train: { ids, rows, blockSize: T }, valid: null, out, epochs: 1, batchSize: rows, microBatchSize: 2,
        lr, optimizer: 'sgd', weightDecay: 0, maxGradNorm: null, seed: 1, threads: 1, artifactCache: join(tmp, 'cache'), log: () => {},
      });
      const md = openModelDir(out);
      expect(md.config.family).toBe(name);
      const src = forwardGraph(openModelDir(dir!));
      expect(md.graphs.map((g) => [g.rel, g.lm.kv])).toEqual([[src.rel, src.lm.kv]]); // family and layout kept
      const before = floatInits(loadModel(src.path));
      const after = floatInits(loadModel(md.onnxPath!));
      // Check the largest update and two random entries of four tensors against central differences.
      const names = [...before.keys()].filter((n) => before.get(n)!.length > 1);
      const picked = [names[0]!, names[1]!, names[Math.floor(names.length / 2)]!, names[names.length - 1]!];
      const m64 = await graph64(loadModel(src.path), picked);
      const base = await meanNll64(m64, ids, rows, T);
      expect(base).toBeGreaterThan(5); // ~log(50257) for random weights: a real loss, not a degenerate one
      let worst = 0;
      let detail = '';
      let biggest = 0;
      for (const n of picked) {
        const w0 = before.get(n)!;
        const w1 = after.get(n)!;
        const step = Float64Array.from(w0, (v, k) => (v - w1[k]!) / lr);
        let big = 0;
        for (let k = 0; k < step.length; k++) if (Math.abs(step[k]!) > Math.abs(step[big]!)) big = k;
        biggest = Math.max(biggest, Math.abs(step[big]!));
        for (const k of [big, rng.int(step.length), rng.int(step.length)]) {
          const eps = 1e-5;
          const fd = ((await meanNll64(m64, ids, rows, T, { name: n, k, delta: eps })) - (await meanNll64(m64, ids, rows, T, { name: n, k, delta: -eps }))) / (2 * eps);
          const err = Math.abs(step[k]! - fd) / (1e-6 + 2e-3 * Math.abs(fd));
          if (err > worst) [worst, detail] = [err, `${n}[${k}]: step/lr ${step[k]} vs finite difference ${fd}`];
        }
      }
      await m64.session.release();
      expect(biggest).toBeGreaterThan(1e-3); // the step moved the weights
      expect(worst, detail).toBeLessThanOrEqual(1);

      const { AutoModelForCausalLM, Tensor, env } = await import('@huggingface/transformers');
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      env.localModelPath = dirname(out);
      const model = await AutoModelForCausalLM.from_pretrained(basename(out), { local_files_only: true, dtype: 'fp32', device: 'cpu' });
      const prompt = Array.from(ids.subarray(0, 6));
      const big = (a: number[]): BigInt64Array => BigInt64Array.from(a, (x) => BigInt(x));
      const tjs = (await model({
        input_ids: new Tensor('int64', big(prompt), [1, 6]),
        attention_mask: new Tensor('int64', big([1, 1, 1, 1, 1, 1]), [1, 6]),
      })) as { logits: { data: Float32Array; dims: number[] } };
      const ours = await openSession(md.onnxPath!, { threads: 1 });
      const mine = (await ours.run(lmFeeds(md.graphs[0]!.lm, { ids: prompt, rows: 1, seq: 6 }))).logits!.data as Float32Array;
      await ours.release();
      let diff = 0;
      for (let k = 0; k < mine.length; k++) diff = Math.max(diff, Math.abs(tjs.logits.data[k]! - mine[k]!));
      expect(diff).toBeLessThan(1e-4);
      const gen = (await model.generate({
        input_ids: new Tensor('int64', big(prompt), [1, 6]),
        attention_mask: new Tensor('int64', big([1, 1, 1, 1, 1, 1]), [1, 6]),
        max_new_tokens: 3,
        do_sample: false,
      })) as { dims: number[] };
      expect(gen.dims).toEqual([1, 9]);
      await model.dispose();
    });
  });
}

describe.skipIf(!llamaKv || !llama)("Optimum's two-file layout and an unknown model_type", () => {
  it('decoder_model.onnx trains, decoder_with_past_model.onnx generates, and the fine-tuned copy updates both', async () => {
    const dir = join(tmp, 'optimum-llama');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) copyFileSync(join(llamaKv!, f), join(dir, f));
    // A model type the project does not know: the graphs' standard interface is enough.
    const cfg = JSON.parse(readFileSync(join(llamaKv!, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'my_llama', architectures: ['MyLlamaForCausalLM'] }));
    copyFileSync(join(llama!, 'onnx/model.onnx'), join(dir, 'onnx/decoder_model.onnx'));
    copyFileSync(join(llamaKv!, 'onnx/model.onnx'), join(dir, 'onnx/decoder_with_past_model.onnx'));
    const md = openModelDir(dir);
    expect(md.config.family).toBe('other');
    expect(md.config.kvHeads).toBe(2);
    expect(forwardGraph(md).rel).toBe('onnx/decoder_model.onnx');
    const plan = generationPlan(md);
    expect(plan.graph).toBe(join(dir, 'onnx/decoder_with_past_model.onnx'));
    const r = JSON.parse(readFileSync(join(llamaKv!, 'reference.json'), 'utf8')) as Reference;
    expect(await beams(plan.graph, r)).toEqual(r.beam_search.continuations);

    const rows = 2;
    const T = 8;
    const ids = Int32Array.from({ length: rows * T }, (_, k) => (k * 7919 + 11) % 50256);
    const out = join(tmp, 'optimum-llama-ft');
    await finetune({
      model: dir, train: { ids, rows, blockSize: T }, valid: null, out, epochs: 1, batchSize: rows, microBatchSize: rows,
      lr: 0.5, optimizer: 'sgd', weightDecay: 0, maxGradNorm: null, seed: 1, threads: 1, artifactCache: join(tmp, 'cache'), log: () => {},
    });
    const ft = openModelDir(out);
    expect(ft.graphs.map((g) => g.rel)).toEqual(['onnx/decoder_model.onnx', 'onnx/decoder_with_past_model.onnx']);
    const logitsOf = async (path: string): Promise<Float32Array> => {
      const s = await openSession(path, { threads: 1 });
      const lm = describeCausalLm(loadModel(path), path);
      const o = (await s.run(lmFeeds(lm, { ids, rows, seq: T }))).logits!.data as Float32Array;
      await s.release();
      return o;
    };
    const [before, plain, withPast] = await Promise.all([
      logitsOf(join(dir, 'onnx/decoder_model.onnx')),
      logitsOf(join(out, 'onnx/decoder_model.onnx')),
      logitsOf(join(out, 'onnx/decoder_with_past_model.onnx')),
    ]);
    let moved = 0;
    let agree = 0;
    for (let k = 0; k < plain.length; k++) {
      moved = Math.max(moved, Math.abs(plain[k]! - before[k]!));
      agree = Math.max(agree, Math.abs(plain[k]! - withPast[k]!));
    }
    expect(moved).toBeGreaterThan(1e-3); // the step changed the model...
    expect(agree).toBeLessThan(1e-4); // ...and both files of the copy hold the same new weights
  });
});

/**
 * An Optimum-style merged decoder built from the KV export: If(use_cache_branch) with the same body in both
 * branches (Optimum's two branches are the with-past and the no-past graphs of one model).
 */
function mergedDecoder(kv: ModelProto): ModelProto {
  const g = kv.graph!;
  const isOut = (o: string): boolean => g.output!.some((x) => x.name === o);
  const branch = (tag: string) => {
    const inner = new Set((g.node ?? []).flatMap((n) => n.output ?? []));
    const name = (x: string): string => (inner.has(x) || isOut(x) ? `${tag}/${x}` : x);
    return onnx.GraphProto.create({
      name: tag,
      node: (g.node ?? []).map((n) => onnx.NodeProto.create({ ...n, name: `${tag}/${n.name}`, input: n.input!.map(name), output: n.output!.map(name) })),
      output: g.output!.map((o) => onnx.ValueInfoProto.create({ ...o, name: `${tag}/${o.name}` })),
    });
  };
  const ifNode = onnx.NodeProto.create({
    opType: 'If',
    name: 'optimum::if',
    input: ['use_cache_branch'],
    output: g.output!.map((o) => o.name!),
    attribute: [
      { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('then') },
      { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('else') },
    ],
  });
  return onnx.ModelProto.create({ ...kv, graph: onnx.GraphProto.create({ ...g, node: [ifNode], input: [...g.input!, valueInfo('use_cache_branch', DataType.BOOL, [1])] }) });
}

describe.skipIf(!llamaKv)("Optimum's merged decoder (If on use_cache_branch)", () => {
  it('generates the reference continuations by feeding presents back; training asks for the no-If graph', async () => {
    const dir = join(tmp, 'merged-llama');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) copyFileSync(join(llamaKv!, f), join(dir, f));
    saveModel(mergedDecoder(loadModel(join(llamaKv!, 'onnx/model.onnx'))), join(dir, 'onnx/decoder_model_merged.onnx'));
    const md = openModelDir(dir);
    expect(md.graphs.map((g) => [g.rel, g.hasIf, g.lm.useCacheBranch !== null])).toEqual([['onnx/decoder_model_merged.onnx', true, true]]);
    const plan = generationPlan(md);
    const r = JSON.parse(readFileSync(join(llamaKv!, 'reference.json'), 'utf8')) as Reference;
    expect(await beams(plan.graph, r)).toEqual(r.beam_search.continuations);
    expect(() => forwardGraph(md)).toThrow(/hold If nodes .*add onnx\/decoder_model\.onnx/);
    expect(stagePlan(md).train).toMatch(/^refused: /);
  });
});
