// The causal-LM graph interface, in one place: what an ONNX causal LM takes and returns, and how each
// input is fed. Every stage (training, generation, scoring, `model info`) reads a graph through
// describeCausalLm and feeds it through lmFeeds, so a new export layout is taught here once.
//
//   input_ids        [batch, seq]          int64 (or int32)
//   attention_mask   [batch, past + seq]   optional; 1 = real token, 0 = padding
//   position_ids     [batch, seq]          optional; HF rule: cumsum(mask) - 1, padding positions 1
//   past_key_values.N.key|value           optional, Optimum layout [batch, kv_heads, past, head_dim];
//   present.N.key|value                   the matching outputs [batch, kv_heads, past + seq, head_dim]
//   prompt_key_values.N.key|value         optional (our OPT decoding graph), [prompts, kv_heads, prompt, head_dim]: the
//                                         keys/values of a common prefix per prompt, shared by its batch / prompts
//                                         consecutive rows and attended before the past; fed empty when unused
//   use_cache_branch [1] bool             Optimum merged decoders: true when a past is fed
//   token_type_ids   [batch, seq]          optional, zeros; cache_position [seq]: past .. past+seq-1;
//   num_logits_to_keep / logits_to_keep    optional scalar, 0 (every position)
//   logits           [batch, seq, vocab]
// Grouped-query attention shows as kv_heads < the config's attention heads; the cache holds kv_heads.
import { DataType, valueInfoShape, type ModelProto, type TensorProto } from './onnx/proto.js';
import { makeTensor } from './onnx/proto.js';
import * as ort from 'onnxruntime-node';

export interface TensorSpec {
  name: string;
  dtype: DataType;
  shape: (number | string)[];
}

export type KvKind = 'key' | 'value';

/** The KV cache of a graph with past inputs. */
export interface KvLayout {
  layers: number;
  /** Key/value heads (fewer than the attention heads under grouped-query attention). */
  kvHeads: number;
  headDim: number;
  dtype: DataType;
}

export interface CausalLm {
  inputIds: TensorSpec;
  attentionMask: TensorSpec | null;
  positionIds: TensorSpec | null;
  /** Optimum merged decoders select their with-past branch by this input. */
  useCacheBranch: TensorSpec | null;
  /** Inputs some exports add, fed with their neutral value (zeros, positions, keep every logit). */
  tokenTypeIds: TensorSpec | null;
  cachePosition: TensorSpec | null;
  logitsToKeep: TensorSpec | null;
  kv: KvLayout | null;
  /** prompt_key_values.N.* inputs: a per-prompt prefix cache shared by the prompt's rows (see the header). */
  sharedPrompt: boolean;
  logits: TensorSpec;
  /** Entries per token of the logits, when the graph states it. */
  vocab: number | null;
}

export const INPUT_IDS = 'input_ids';
export const ATTENTION_MASK = 'attention_mask';
export const POSITION_IDS = 'position_ids';
export const USE_CACHE_BRANCH = 'use_cache_branch';
export const TOKEN_TYPE_IDS = 'token_type_ids';
export const CACHE_POSITION = 'cache_position';
const LOGITS_TO_KEEP = ['num_logits_to_keep', 'logits_to_keep'];
export const LOGITS = 'logits';
export const pastName = (layer: number, kind: KvKind): string => `past_key_values.${layer}.${kind}`;
export const presentName = (layer: number, kind: KvKind): string => `present.${layer}.${kind}`;
export const promptKvName = (layer: number, kind: KvKind): string => `prompt_key_values.${layer}.${kind}`;
const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PROMPT_KV = /^prompt_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present\.(\d+)\.(key|value)$/;

/** Whether a graph input is a KV-cache input (Optimum naming). */
export const isPastInput = (name: string): boolean => PAST.test(name);

/** The past/present names of every layer, in feed order. */
export function kvNames(kv: KvLayout): { past: string; present: string; prompt: string; layer: number; kind: KvKind }[] {
  const out: { past: string; present: string; prompt: string; layer: number; kind: KvKind }[] = [];
  for (let l = 0; l < kv.layers; l++)
    for (const kind of ['key', 'value'] as const) out.push({ past: pastName(l, kind), present: presentName(l, kind), prompt: promptKvName(l, kind), layer: l, kind });
  return out;
}

/** Numbers the config knows when the graph leaves the cache's heads or head size symbolic. */
export interface KvHints {
  kvHeads?: number;
  headDim?: number;
}

/**
 * Reads and checks a graph's interface. Refuses only what cannot run, naming what is missing:
 * no input_ids, no logits, a past without its present, inputs nobody knows how to feed.
 */
export function describeCausalLm(model: ModelProto, source: string, hints: KvHints = {}): CausalLm {
  const graph = model.graph;
  if (!graph) throw new Error(`${source}: the ONNX file has no graph`);
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const spec = (v: { name?: string | null }): TensorSpec => ({ name: v.name ?? '', ...valueInfoShape(v) });
  // Older exporters list initializers among the inputs; those are not inputs a caller feeds.
  const inputs = (graph.input ?? []).filter((x) => !initNames.has(x.name ?? '')).map(spec);
  const outputs = (graph.output ?? []).map(spec);
  const input = (n: string) => inputs.find((x) => x.name === n) ?? null;
  const outNames = new Set(outputs.map((x) => x.name));
  const missing: string[] = [];
  if (!input(INPUT_IDS)) missing.push('input `input_ids` (int64 [batch, seq])');
  if (!outNames.has(LOGITS)) missing.push('output `logits` ([batch, seq, vocab])');
  const past = inputs.filter((x) => PAST.test(x.name));
  for (const p of past) {
    const [, l, k] = PAST.exec(p.name)!;
    if (!outNames.has(presentName(Number(l), k as KvKind)))
      missing.push(`output \`${presentName(Number(l), k as KvKind)}\` (the KV cache output matching input ${p.name})`);
  }
  const describeIo = () =>
    `It has inputs [${inputs.map((x) => x.name).join(', ')}] and outputs [${outputs.map((x) => x.name).join(', ')}]`;
  if (missing.length > 0)
    throw new Error(
      `${source} is not a causal-LM graph this project can use: missing ${missing.join(', ')}. ${describeIo()}; ` +
        'export it with input_ids (optionally attention_mask, position_ids, past_key_values.N.key/value) as inputs and logits as output',
    );
  const promptKv = inputs.filter((x) => PROMPT_KV.test(x.name));
  const pastNames = new Set(past.map((p) => p.name));
  const orphans = promptKv.filter((x) => !pastNames.has(x.name.replace('prompt_key_values', 'past_key_values')));
  if (orphans.length > 0 || (promptKv.length > 0 && promptKv.length !== past.length))
    throw new Error(`${source}: prompt_key_values inputs need a past_key_values input of the same layer and kind each. ${describeIo()}`);
  const known = new Set([INPUT_IDS, ATTENTION_MASK, POSITION_IDS, USE_CACHE_BRANCH, TOKEN_TYPE_IDS, CACHE_POSITION, ...LOGITS_TO_KEEP, ...past.map((p) => p.name), ...promptKv.map((p) => p.name)]);
  const unknown = inputs.filter((x) => !known.has(x.name)).map((x) => x.name);
  if (unknown.length > 0)
    throw new Error(
      `${source}: graph input(s) [${unknown.join(', ')}] cannot be fed (known: input_ids, attention_mask, position_ids, ` +
        `past_key_values.N.key|value, use_cache_branch, token_type_ids, cache_position, num_logits_to_keep). ${describeIo()}`,
    );
  const ids = input(INPUT_IDS)!;
  if (ids.dtype !== DataType.INT64 && ids.dtype !== DataType.INT32)
    throw new Error(`${source}: input_ids has element type ${DataType[ids.dtype]}, expected int64 or int32`);
  const logits = outputs.find((o) => o.name === LOGITS)!;
  const vocab = logits.shape.length === 3 && typeof logits.shape[2] === 'number' ? logits.shape[2] : null;
  return {
    inputIds: ids,
    attentionMask: input(ATTENTION_MASK),
    positionIds: input(POSITION_IDS),
    useCacheBranch: input(USE_CACHE_BRANCH),
    tokenTypeIds: input(TOKEN_TYPE_IDS),
    cachePosition: input(CACHE_POSITION),
    logitsToKeep: inputs.find((x) => LOGITS_TO_KEEP.includes(x.name)) ?? null,
    kv: past.length > 0 ? kvLayout(past, source, hints) : null,
    sharedPrompt: promptKv.length > 0,
    logits,
    vocab,
  };
}

function kvLayout(past: TensorSpec[], source: string, hints: KvHints): KvLayout {
  const layers = new Set(past.map((p) => Number(PAST.exec(p.name)![1])));
  for (let l = 0; l < layers.size; l++)
    for (const k of ['key', 'value'] as const)
      if (!past.some((p) => p.name === pastName(l, k)))
        throw new Error(`${source}: KV-cache inputs are not past_key_values.0..${layers.size - 1}.key|value (missing ${pastName(l, k)})`);
  const first = past.find((p) => p.name === pastName(0, 'key'))!;
  if (first.shape.length !== 4) throw new Error(`${source}: ${first.name} has shape [${first.shape}], expected [batch, kv_heads, past, head_dim]`);
  const kvHeads = typeof first.shape[1] === 'number' ? first.shape[1] : hints.kvHeads;
  const headDim = typeof first.shape[3] === 'number' ? first.shape[3] : hints.headDim;
  if (kvHeads === undefined || headDim === undefined)
    throw new Error(
      `${source}: ${first.name} has symbolic heads or head size [${first.shape}] and config.json does not give them ` +
        '(num_key_value_heads / num_attention_heads and hidden_size or head_dim)',
    );
  if (first.dtype !== DataType.FLOAT)
    throw new Error(`${source}: the KV cache is ${DataType[first.dtype]}; only float32 graphs run here (use the fp32 export, onnx/model.onnx)`);
  return { layers: layers.size, kvHeads, headDim, dtype: first.dtype };
}

/** A short description of the interface, for `model info` and logs. */
export function describeInterface(lm: CausalLm, attentionHeads?: number): string {
  const parts = ['input_ids'];
  if (lm.attentionMask) parts.push('attention_mask');
  if (lm.positionIds) parts.push('position_ids');
  let kv = 'no KV cache';
  if (lm.kv) {
    const gqa = attentionHeads && attentionHeads > lm.kv.kvHeads ? `, grouped-query attention (${attentionHeads} query heads)` : '';
    kv = `KV cache ${lm.kv.layers} layers x ${lm.kv.kvHeads} KV heads x ${lm.kv.headDim}${gqa}`;
    if (lm.useCacheBranch) kv += ', merged (use_cache_branch)';
  }
  return `${parts.join(' + ')} -> logits${lm.vocab ? ` [.., ${lm.vocab}]` : ''}; ${kv}`;
}

/**
 * Position ids of the last `seq` columns of a [rows, total] mask, as transformers computes them:
 * cumsum(mask) - 1, and 1 where the mask is 0 (left padding; those positions are never attended).
 */
export function positionsFromMask(mask: Uint8Array, rows: number, total: number, seq = total): BigInt64Array {
  const out = new BigInt64Array(rows * seq);
  for (let r = 0; r < rows; r++) {
    let count = 0;
    for (let j = 0; j < total; j++) {
      const m = mask[r * total + j]!;
      count += m ? 1 : 0;
      const k = j - (total - seq);
      if (k >= 0) out[r * seq + k] = BigInt(m ? count - 1 : 1);
    }
  }
  return out;
}

function idsTensor(lm: CausalLm, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (lm.inputIds.dtype === DataType.INT32) return new ort.Tensor('int32', Int32Array.from(data), dims);
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(data), (v) => BigInt(v)), dims);
}

function intTensor(spec: TensorSpec, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (spec.dtype === DataType.INT32) return new ort.Tensor('int32', Int32Array.from(values), dims);
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), dims);
}

/** Constant inputs at past length `past` and `seq` new tokens, as ONNX tensors (training) or values (feeds). */
function neutralValues(lm: CausalLm, rows: number, seq: number, past: number): { spec: TensorSpec; values: number[]; dims: number[] }[] {
  const out: { spec: TensorSpec; values: number[]; dims: number[] }[] = [];
  if (lm.tokenTypeIds) out.push({ spec: lm.tokenTypeIds, values: new Array<number>(rows * seq).fill(0), dims: [rows, seq] });
  if (lm.cachePosition) out.push({ spec: lm.cachePosition, values: Array.from({ length: seq }, (_, k) => past + k), dims: [seq] });
  if (lm.logitsToKeep) out.push({ spec: lm.logitsToKeep, values: [0], dims: lm.logitsToKeep.shape.length === 0 ? [] : [1] });
  return out;
}

function maskTensor(spec: TensorSpec, mask: Uint8Array, dims: number[]): ort.Tensor {
  if (spec.dtype === DataType.INT32) return new ort.Tensor('int32', Int32Array.from(mask), dims);
  if (spec.dtype === DataType.FLOAT) return new ort.Tensor('float32', Float32Array.from(mask), dims);
  if (spec.dtype === DataType.BOOL) return new ort.Tensor('bool', Uint8Array.from(mask), dims);
  return new ort.Tensor('int64', BigInt64Array.from(mask, (v) => BigInt(v)), dims);
}

export interface FeedInput {
  /** New token ids, [rows, seq] row-major. */
  ids: ArrayLike<number>;
  rows: number;
  seq: number;
  /** [rows, past + seq], 1 for real tokens; default all ones. */
  mask?: Uint8Array;
  /** Cache tensors by past name, each [rows, kv_heads, past, head_dim]; default: empty (past length 0). */
  past?: Record<string, ort.Tensor>;
  /** Shared-prompt tensors by prompt_key_values name, [prompts, kv_heads, prompt, head_dim]; default: empty. */
  prompt?: Record<string, ort.Tensor>;
  /** Past length (the mask covers past + seq columns); default 0. */
  pastLength?: number;
  /** Position ids [rows, seq]; default: from the mask (positionsFromMask). */
  positions?: BigInt64Array;
}

/** The feeds of one forward call, for whatever inputs the graph declares. */
export function lmFeeds(lm: CausalLm, f: FeedInput): Record<string, ort.Tensor> {
  const { rows, seq } = f;
  const total = (f.pastLength ?? 0) + seq;
  const mask = f.mask ?? new Uint8Array(rows * total).fill(1);
  if (mask.length !== rows * total) throw new Error(`attention mask has ${mask.length} values, expected ${rows} x ${total}`);
  const feeds: Record<string, ort.Tensor> = { [INPUT_IDS]: idsTensor(lm, f.ids, [rows, seq]) };
  if (lm.attentionMask) feeds[ATTENTION_MASK] = maskTensor(lm.attentionMask, mask, [rows, total]);
  if (lm.positionIds) {
    const pos = f.positions ?? positionsFromMask(mask, rows, total, seq);
    feeds[POSITION_IDS] =
      lm.positionIds.dtype === DataType.INT32 ? new ort.Tensor('int32', Int32Array.from(pos, Number), [rows, seq]) : new ort.Tensor('int64', pos, [rows, seq]);
  }
  if (lm.kv) {
    const { kvHeads, headDim } = lm.kv;
    for (const n of kvNames(lm.kv)) {
      feeds[n.past] = f.past?.[n.past] ?? new ort.Tensor('float32', new Float32Array(0), [rows, kvHeads, 0, headDim]);
      if (lm.sharedPrompt) feeds[n.prompt] = f.prompt?.[n.prompt] ?? new ort.Tensor('float32', new Float32Array(0), [rows, kvHeads, 0, headDim]);
    }
  }
  if (lm.useCacheBranch) feeds[USE_CACHE_BRANCH] = new ort.Tensor('bool', Uint8Array.of((f.pastLength ?? 0) > 0 ? 1 : 0), [1]);
  for (const n of neutralValues(lm, rows, seq, f.pastLength ?? 0)) feeds[n.spec.name] = intTensor(n.spec, n.values, n.dims);
  return feeds;
}

/**
 * Inputs that are constants when training at fixed shapes [batch, seq] with no padding: position ids
 * 0..seq-1, empty pasts, the no-past branch, zero token types, cache positions 0..seq-1, every logit.
 * input_ids and attention_mask stay data inputs.
 */
export function trainingConstants(lm: CausalLm, batch: number, seq: number): TensorProto[] {
  const out: TensorProto[] = [];
  if (lm.positionIds) {
    const pos = Array.from({ length: batch * seq }, (_, k) => k % seq);
    out.push(
      lm.positionIds.dtype === DataType.INT32
        ? makeTensor(POSITION_IDS, [batch, seq], Int32Array.from(pos))
        : makeTensor(POSITION_IDS, [batch, seq], BigInt64Array.from(pos, BigInt)),
    );
  }
  if (lm.kv) for (const n of kvNames(lm.kv)) out.push(makeTensor(n.past, [batch, lm.kv.kvHeads, 0, lm.kv.headDim], new Float32Array(0)));
  if (lm.useCacheBranch) out.push(makeTensor(USE_CACHE_BRANCH, [1], Uint8Array.of(0), DataType.BOOL));
  for (const n of neutralValues(lm, batch, seq, 0))
    out.push(
      n.spec.dtype === DataType.INT32
        ? makeTensor(n.spec.name, n.dims, Int32Array.from(n.values))
        : makeTensor(n.spec.name, n.dims, BigInt64Array.from(n.values, BigInt)),
    );
  return out;
}
