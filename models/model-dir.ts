// The model directory, in one place: opening one into its config (family by model_type), its ONNX graphs
// and their causal-LM interface (causal-lm.ts), its weights, its tokenizer files and its generation
// settings; choosing the graph each stage uses; and writing a fine-tuned copy that keeps the family and
// the graph layout. Hugging Face hub layout, loadable by transformers.js:
//   config.json, generation_config.json, tokenizer files,
//   onnx/model.onnx (+ onnx/model.onnx_data), or Optimum's onnx/decoder_model_merged.onnx,
//   decoder_model.onnx + decoder_with_past_model.onnx; model.safetensors (OPT built here: HF names).
// OPT directories with HF-named weights can be rebuilt from config + weights (models/opt); any other
// family runs on its exported graph, as long as that graph has the standard interface.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readJsonFile } from '../util/json.js';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { describeCausalLm, describeInterface, type CausalLm, type KvHints } from './causal-lm.js';
import { buildOptForward } from './opt/graph.js';
import { configJson, parseOptConfig, type OptConfig } from './opt/config.js';
import { checkWeights, DECODER, EMBED_TOKENS, LM_HEAD, optParamSpecs, type Weights } from './opt/weights.js';
import { loadModel, saveModel } from './onnx/io.js';
import { DataType, decodeModel, encodeModel, makeTensor, onnx, tensorValues, type ModelProto, type TensorProto } from './onnx/proto.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';
import { ensureDir, tmpName, writeJsonAtomic } from '../util/atomic.js';
import { hashFileInto } from '../util/sha256.js';
import { tokenizerIdentity, type TokenizerIdentity } from './tokenizer-identity.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
export const ONNX_FILE = 'onnx/model.onnx';
export const ONNX_DATA_FILE = 'onnx/model.onnx_data';
export const SAFETENSORS_FILE = 'model.safetensors';
/** Tokenizer files we copy when present (a fast tokenizer.json, or GPT-2/OPT vocab.json + merges.txt). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'added_tokens.json'];
/**
 * Graph files looked for, in this order: the plain layout (transformers.js / onnx-community), then
 * Optimum's merged decoder, its no-past decoder and its with-past decoder, each under onnx/ or at the top.
 */
export const GRAPH_FILES = ['model.onnx', 'decoder_model_merged.onnx', 'decoder_model.onnx', 'decoder_with_past_model.onnx'].flatMap((f) => [
  `onnx/${f}`,
  f,
]);

export type FileContents = Record<string, string | Uint8Array>;
type Json = Record<string, unknown>;

/** Model families, recognised by config.json's model_type. Other types run when their graph is standard. */
export type Family = 'opt' | 'gpt2' | 'llama' | 'gpt-neox' | 'other';
const FAMILY_OF: Record<string, Family> = {
  opt: 'opt',
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'llama',
  phi3: 'llama',
  gpt_neox: 'gpt-neox',
};
/** What the reference tokenizer of each family prepends (transformers' defaults). */
export const FAMILY_BOS: Record<Family, string> = {
  opt: 'prepends </s>',
  gpt2: 'adds no BOS',
  llama: 'prepends <s>',
  'gpt-neox': 'adds no BOS',
  other: 'as its tokenizer files say',
};

/** The family-independent facts of config.json (keys differ by family: n_layer vs num_hidden_layers...). */
export interface ModelConfig {
  modelType: string;
  family: Family;
  vocabSize: number | null;
  layers: number | null;
  hidden: number | null;
  heads: number | null;
  /** Key/value heads: fewer than `heads` under grouped-query attention. */
  kvHeads: number | null;
  headDim: number | null;
  maxPositions: number | null;
  raw: Json;
}

/** Special ids for decoding: generation_config.json first, then config.json; pad falls back to EOS (as HF). */
export interface GenerationSettings {
  bosId: number | null;
  eosId: number;
  /** Every EOS id when the config lists several (the first one ends beams). */
  eosIds: number[];
  padId: number;
  /** config.json's own pad_token_id (training masks only a real pad token). */
  configPadId: number | null;
}

export interface GraphFile {
  path: string;
  /** Relative to the model directory. */
  rel: string;
  lm: CausalLm;
  /** Whether the graph holds If nodes (Optimum's merged decoder): not differentiable. */
  hasIf: boolean;
  producer: string;
}

export interface ModelDir {
  dir: string;
  config: ModelConfig;
  configPath: string;
  /** The OPT config when this is an OPT directory (its graph can be rebuilt from HF-named weights). */
  opt: OptConfig | null;
  generationConfig: Json;
  generation: GenerationSettings;
  /** Every graph file found (GRAPH_FILES order); the first is the directory's main graph. */
  graphs: GraphFile[];
  /** The main graph; null for an OPT directory of safetensors only (its graph is rebuilt when needed). */
  onnxPath: string | null;
  /** The external weights file beside the main graph, when there is one. */
  onnxDataPath: string | null;
  safetensorsPath: string | null;
  /** HF-named OPT weights in model.safetensors: the graph can be rebuilt with or without a KV cache. */
  rebuildable: boolean;
  /** The directory itself: tokenizer files sit beside config.json, as on the hub. */
  tokenizerDir: string;
  /** Its tokenizer's fingerprint, which description is used, and whether two descriptions disagree. */
  tokenizer: TokenizerIdentity;
  producer: string;
}

const num = (raw: Json, ...keys: string[]): number | null => {
  for (const k of keys) if (typeof raw[k] === 'number') return raw[k] as number;
  return null;
};

/** config.json's facts under whichever key its family uses. */
export function readModelConfig(raw: Json, source: string): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  const family = FAMILY_OF[modelType] ?? 'other';
  const hidden = num(raw, 'hidden_size', 'n_embd', 'd_model');
  const heads = num(raw, 'num_attention_heads', 'n_head');
  const kvHeads = num(raw, 'num_key_value_heads') ?? heads;
  const headDim = num(raw, 'head_dim') ?? (hidden && heads ? hidden / heads : null);
  return {
    modelType,
    family,
    vocabSize: num(raw, 'vocab_size'),
    layers: num(raw, 'num_hidden_layers', 'n_layer', 'num_layers'),
    hidden,
    heads,
    kvHeads,
    headDim: headDim !== null && Number.isInteger(headDim) ? headDim : null,
    maxPositions: num(raw, 'max_position_embeddings', 'n_positions', 'n_ctx'),
    raw,
  };
}

function generationSettings(gen: Json, cfg: Json, source: string): GenerationSettings {
  const ids = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : typeof v === 'number' ? [v] : []);
  const eosIds = ids(gen.eos_token_id).length ? ids(gen.eos_token_id) : ids(cfg.eos_token_id);
  if (eosIds.length === 0)
    throw new Error(`${source}: no eos_token_id in ${GENERATION_CONFIG_FILE} or ${CONFIG_FILE}; add the id that ends a text (decoding needs it)`);
  const bosId = ids(gen.bos_token_id)[0] ?? ids(cfg.bos_token_id)[0] ?? null;
  const configPadId = ids(cfg.pad_token_id)[0] ?? null;
  const padId = ids(gen.pad_token_id)[0] ?? configPadId ?? eosIds[0]!;
  return { bosId, eosId: eosIds[0]!, eosIds, padId, configPadId };
}

export function generationConfigJson(cfg: OptConfig): Json {
  return { _from_model_config: true, bos_token_id: cfg.bos_token_id, eos_token_id: cfg.eos_token_id, pad_token_id: cfg.pad_token_id };
}

/** The tokenizer files present in `dir`; a clear error when it holds no usable tokenizer. */
export function tokenizerFilesFrom(dir: string): FileContents {
  const files: FileContents = {};
  for (const f of TOKENIZER_FILES) if (existsSync(join(dir, f))) files[f] = readFileSync(join(dir, f));
  if (!files['tokenizer.json'] && !(files['vocab.json'] && files['merges.txt']))
    throw new Error(`${dir} holds no tokenizer: expected tokenizer.json, or vocab.json + merges.txt (GPT-2/OPT byte-level BPE)`);
  return files;
}

function readGraphFile(dir: string, rel: string, hints: KvHints): GraphFile {
  const path = join(dir, rel);
  let model: ModelProto;
  try {
    // Only the graph is needed here: external weights stay unread.
    model = decodeModel(readFileSync(path));
  } catch (e) {
    throw new Error(`${path} is not a valid ONNX model (${(e as Error).message}); re-export or re-download it`);
  }
  return {
    path,
    rel,
    lm: describeCausalLm(model, path, hints),
    hasIf: (model.graph?.node ?? []).some((n) => n.opType === 'If'),
    producer: model.producerName ?? '',
  };
}

/**
 * Whether model.safetensors holds HF-named OPT weights (so the graph can be rebuilt). A file that cannot be read
 * (truncated, corrupt) is an error naming it: taken for "a foreign graph", it would be dropped from every copy.
 */
function hasOptWeights(path: string | null): boolean {
  return path !== null && readSafetensorsHeader(path).tensors.has(EMBED_TOKENS);
}

/** Opens and checks a model directory: config, graphs and their interface, tokenizer, generation settings. */
export function openModelDir(dir: string): ModelDir {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist (create one with \`collapse model init\` or \`collapse model import\`)`);
  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${dir} is not a model directory: ${CONFIG_FILE} is missing`);
  const raw = readJsonFile<Json>(configPath);
  const config = readModelConfig(raw, configPath);
  // The OPT config must be valid where the graph is rebuilt from it (HF-named weights); an exported OPT
  // graph runs on its own, so a config this project cannot rebuild from does not stop it.
  let opt: OptConfig | null = null;
  let optError: unknown = null;
  if (config.family === 'opt') {
    try {
      opt = parseOptConfig(raw, configPath);
    } catch (e) {
      optError = e;
    }
  }
  const genPath = join(dir, GENERATION_CONFIG_FILE);
  const generationConfig = existsSync(genPath) ? readJsonFile<Json>(genPath) : opt ? generationConfigJson(opt) : {};
  const generation = generationSettings(generationConfig, raw, dir);
  const hints: KvHints = { kvHeads: config.kvHeads ?? undefined, headDim: config.headDim ?? undefined };
  const graphs = GRAPH_FILES.filter((rel) => existsSync(join(dir, rel))).map((rel) => readGraphFile(dir, rel, hints));
  const st = join(dir, SAFETENSORS_FILE);
  const safetensorsPath = existsSync(st) ? st : null;
  if (optError && (graphs.length === 0 || hasOptWeights(safetensorsPath))) throw optError;
  const rebuildable = opt !== null && hasOptWeights(safetensorsPath);
  if (graphs.length === 0 && !rebuildable)
    throw new Error(
      `${dir}: no ONNX model (looked for ${GRAPH_FILES.filter((f) => f.startsWith('onnx/')).join(', ')}); ` +
        'export one (e.g. optimum-cli export onnx --task text-generation-with-past), or import OPT safetensors weights with `collapse model import`',
    );
  for (const g of graphs) {
    if (g.lm.vocab !== null && config.vocabSize !== null && g.lm.vocab !== config.vocabSize)
      throw new Error(`${dir}: the ONNX logits of ${g.rel} have ${g.lm.vocab} entries per token but ${CONFIG_FILE} says vocab_size ${config.vocabSize}`);
  }
  tokenizerFilesFrom(dir); // fails clearly when there is no tokenizer
  const tokenizer = tokenizerIdentity(dir)!;
  const main = graphs[0];
  return {
    dir,
    config,
    configPath,
    opt,
    generationConfig,
    generation,
    graphs,
    onnxPath: main?.path ?? null,
    onnxDataPath: main && existsSync(`${main.path}_data`) ? `${main.path}_data` : null,
    safetensorsPath,
    rebuildable,
    tokenizerDir: dir,
    tokenizer,
    producer: main?.producer ?? '',
  };
}

// ---------------------------------------------------------------------------------------------------
// What each stage uses.

/** What decoding needs from a model: its causal-LM graph (file or in memory), special ids, a name. */
export interface GenerationPlan {
  graph: string | ModelProto;
  eosId: number;
  padId: number;
  kvHints?: KvHints;
  /** Recorded in the corpus provenance. */
  name?: string;
  /** How it decodes, in words (`model info`, logs). */
  how?: string;
  /** Positions and vocabulary of the model (config.json), checked against the prompts before decoding. */
  positions?: number;
  vocabSize?: number;
}

/**
 * The graph generation uses: one with a KV cache when the directory has it (Optimum names included);
 * else, for OPT with HF-named weights, the graph rebuilt with a cache; else the plain graph, decoded by
 * recomputing the whole sequence each step (correct, slower).
 */
function generationGraph(md: ModelDir): { graph: GraphFile | 'rebuild'; how: string } {
  const kv = md.graphs.find((g) => g.lm.kv);
  if (kv) return { graph: kv, how: `KV cache through ${kv.rel}` };
  if (md.rebuildable) return { graph: 'rebuild', how: `KV cache through the OPT graph rebuilt from ${SAFETENSORS_FILE}, each prompt's keys held once for its beams` };
  return { graph: md.graphs[0]!, how: `recomputation through ${md.graphs[0]!.rel} (it has no KV cache)` };
}

export function generationPlan(md: ModelDir): GenerationPlan {
  const { graph, how } = generationGraph(md);
  return {
    graph: graph === 'rebuild' ? buildOptForward(md.opt!, readWeights(md.dir), { withPast: true, sharedPrompt: true }) : graph.path,
    how,
    eosId: md.generation.eosId,
    padId: md.generation.padId,
    kvHints: { kvHeads: md.config.kvHeads ?? undefined, headDim: md.config.headDim ?? undefined },
    name: md.dir,
    positions: md.config.maxPositions ?? undefined,
    vocabSize: md.config.vocabSize ?? undefined,
  };
}

/** The graph training and scoring use: one without If nodes, no-past graphs first (pasts are fed empty). */
export function forwardGraph(md: ModelDir): GraphFile {
  const plain = md.graphs.filter((g) => !g.hasIf);
  const g = plain.find((x) => !x.lm.kv) ?? plain[0];
  if (md.graphs.length === 0) throw new Error(`${md.dir} has no ONNX graph (only ${SAFETENSORS_FILE}); write one with \`collapse model import\``);
  if (!g)
    throw new Error(
      `${md.dir}: its only graph${md.graphs.length > 1 ? 's' : ''} (${md.graphs.map((x) => x.rel).join(', ')}) hold If nodes ` +
        "(Optimum's merged decoder), which cannot be differentiated; add onnx/decoder_model.onnx or onnx/model.onnx " +
        '(optimum-cli export onnx --no-post-process keeps them)',
    );
  return g;
}

/** What each stage will use, in words (`collapse model info`). */
export function stagePlan(md: ModelDir): { train: string; generate: string; eval: string } {
  let train: string;
  let evalWith: string;
  if (md.rebuildable) train = `the OPT graph rebuilt from ${SAFETENSORS_FILE} (HF-named weights)`;
  try {
    const g = forwardGraph(md);
    const how = `${g.rel}${g.lm.kv ? ' with empty pasts' : ''}${g.lm.positionIds ? ', positions 0..T-1' : ''}`;
    train ??= how;
    evalWith = how;
  } catch (e) {
    evalWith = `refused: ${(e as Error).message}`;
    train ??= evalWith;
  }
  const generate = generationGraph(md).how;
  return { train, generate, eval: evalWith };
}

/** `describeInterface` of each graph file, for `model info`. */
export function interfaceLines(md: ModelDir): string[] {
  return md.graphs.map((g) => `${g.rel}: ${describeInterface(g.lm, md.config.heads ?? undefined)}`);
}

// ---------------------------------------------------------------------------------------------------
// Training: the forward graph and its weights.

/** A forward graph and its weights, as the training artifact needs them (a directory, or built in memory). */
export interface ForwardSource {
  dir: string;
  /** 'opt': HF-named weights in model.safetensors, forward rebuilt by buildOptForward; 'onnx': the exported graph. */
  kind: 'opt' | 'onnx';
  optConfig: OptConfig | null;
  /** The forward graph used for training (weights as initializers). */
  forward: ModelProto;
  /** Float initializer values of the forward graph, by name. */
  weights: Map<string, Float32Array>;
  onnxPath: string | null;
  /** config.json's pad_token_id (null when the model has none). */
  padId: number | null;
}

/** A model directory as training sees it. */
export interface TrainingSource extends ForwardSource {
  md: ModelDir;
  /** The graph file the forward came from (null when rebuilt). */
  graphFile: GraphFile | null;
}

export function loadTrainingSource(dir: string): TrainingSource {
  const md = openModelDir(dir);
  const base = { dir, md, padId: md.generation.configPadId, onnxPath: md.onnxPath };
  if (md.rebuildable) {
    const weights: Weights = new Map();
    for (const [k, t] of readSafetensors(md.safetensorsPath!).tensors) if (t.data instanceof Float32Array) weights.set(k, t.data);
    const forward = buildOptForward(md.opt!, weights, { withPast: false, present: false });
    return { ...base, kind: 'opt', optConfig: md.opt, forward, graphFile: null, weights };
  }
  const g = forwardGraph(md);
  const forward = loadModel(g.path);
  const weights = new Map<string, Float32Array>();
  for (const t of (forward.graph?.initializer ?? []) as TensorProto[])
    if (t.dataType === DataType.FLOAT) weights.set(t.name, tensorValues(t) as Float32Array);
  return { ...base, kind: 'onnx', optConfig: null, forward, graphFile: g, weights, onnxPath: g.path };
}

/**
 * What the training graphs depend on, without the trainable values: the OPT config, or the exported graph
 * with its float weights reduced to name and shape. So every generation of a run shares one artifact.
 */
export function structureHash(src: ForwardSource): string {
  const h = createHash('sha256');
  if (src.kind === 'opt') return h.update(JSON.stringify(src.optConfig)).digest('hex');
  const g = src.forward.graph!;
  const stripped = onnx.ModelProto.create({
    ...src.forward,
    graph: onnx.GraphProto.create({
      ...g,
      initializer: (g.initializer as TensorProto[]).map((t) =>
        t.dataType === DataType.FLOAT && (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1) > 1
          ? onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: t.dataType })
          : t,
      ),
    }),
  });
  return h.update(encodeModel(stripped)).digest('hex');
}

/**
 * sha256 over the files that define a model directory: config, model.safetensors, every graph file and its
 * external weights (what a resumed training or generation must match, and a training summary records).
 */
export function modelSha256(dir: string): string {
  const h = createHash('sha256');
  for (const rel of [CONFIG_FILE, SAFETENSORS_FILE, ...GRAPH_FILES.flatMap((f) => [f, `${f}_data`])]) {
    const f = join(dir, rel);
    if (!existsSync(f)) continue;
    h.update(`/${rel}`);
    hashFileInto(h, f);
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------------
// Writing.

export interface ModelDirContents {
  config: OptConfig;
  weights: Weights;
  tokenizerFiles: FileContents;
  generationConfig?: Json;
}

/** Replaces `dir` by a directory filled by `fill` (built under a temporary name, then renamed). */
function replaceDir(dir: string, fill: (tmp: string) => void): void {
  const tmp = tmpName(dir);
  mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** transformers.js (in browsers) fetches external data only when config.json says so; Node finds it anyway. */
function markExternalData(cfg: Json, dir: string): Json {
  if (existsSync(join(dir, ONNX_DATA_FILE))) return { ...cfg, 'transformers.js_config': { ...((cfg['transformers.js_config'] as Json) ?? {}), use_external_data_format: true } };
  return cfg;
}

function safetensorsOf(config: OptConfig, weights: Weights): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, spec] of optParamSpecs(config)) out.set(name, { shape: spec.shape, data: weights.get(name)! });
  return out;
}

/** Writes a complete OPT model directory (atomically: a temporary directory renamed into place). */
export function writeModelDir(dir: string, contents: ModelDirContents, opts: { withPast?: boolean } = {}): void {
  const { config, weights } = contents;
  checkWeights(config, weights, `writeModelDir ${dir}`);
  replaceDir(dir, (tmp) => writeOptFiles(tmp, config, weights, contents.tokenizerFiles, contents.generationConfig ?? generationConfigJson(config), opts.withPast ?? true));
}

function writeOptFiles(tmp: string, config: OptConfig, weights: Weights, tokenizerFiles: FileContents, generationConfig: Json, withPast: boolean): void {
  mkdirSync(join(tmp, 'onnx'), { recursive: true });
  saveModel(buildOptForward(config, weights, { withPast }), join(tmp, ONNX_FILE));
  writeSafetensors(join(tmp, SAFETENSORS_FILE), safetensorsOf(config, weights), { format: 'pt' });
  for (const [name, content] of Object.entries(tokenizerFiles)) writeFileSync(join(tmp, name), content);
  writeJsonAtomic(join(tmp, CONFIG_FILE), markExternalData(configJson(config), tmp));
  writeJsonAtomic(join(tmp, GENERATION_CONFIG_FILE), generationConfig);
}

function asFloat(path: string, name: string, data: Float32Array | BigInt64Array | Int32Array): Float32Array {
  if (!(data instanceof Float32Array)) throw new Error(`${path}: tensor ${name} is an integer tensor, expected floating point weights`);
  return data;
}

/**
 * The weights of an OPT model directory under HF names: from model.safetensors, else from the ONNX
 * initializers that carry HF names (a graph built by this project).
 */
export function readWeights(dir: string): Weights {
  const md = openModelDir(dir);
  if (!md.opt) throw new Error(`${dir}: readWeights reads OPT weights under HF names; this is a ${md.config.modelType || 'model without model_type'}`);
  const weights: Weights = new Map();
  if (md.safetensorsPath) {
    for (const [name, t] of readSafetensors(md.safetensorsPath).tensors) weights.set(name, asFloat(md.safetensorsPath, name, t.data));
  } else {
    const model = loadModel(md.onnxPath!);
    const byName = new Map((model.graph!.initializer as TensorProto[]).map((t) => [t.name, t]));
    for (const name of optParamSpecs(md.opt).keys()) {
      const t = byName.get(name);
      if (!t)
        throw new Error(
          `${dir}: no ${SAFETENSORS_FILE}, and the ONNX graph has no initializer named ${name} (its weights do not use HF names); ` +
            'import the checkpoint with `collapse model import`',
        );
      if (t.dataType !== DataType.FLOAT) throw new Error(`${md.onnxPath!}: initializer ${name} is not float32`);
      weights.set(name, tensorValues(t) as Float32Array); // a copy: decoded bytes may view the whole file
    }
  }
  checkWeights(md.opt, weights, md.safetensorsPath ?? md.onnxPath!);
  return weights;
}

/** Top-level files a fine-tuned copy keeps: everything but weights and derived graphs. */
const isWeightsFile = (f: string): boolean =>
  f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || f.endsWith('.bin') || f.endsWith('.onnx') || f.endsWith('.onnx_data') || f.endsWith('.pt');

const isWeight = (t: TensorProto): boolean => t.dataType === DataType.FLOAT && (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1) > 1;
const contentKey = (t: TensorProto): string => `${(t.dims ?? []).join('x')}:${createHash('sha1').update(tensorValues(t) as Float32Array).digest('hex')}`;

/**
 * For a sibling graph file (Optimum writes decoder_model.onnx and decoder_with_past_model.onnx of one model,
 * with exporter names that differ): the trained value of each of its float weights, found by name when the
 * bytes agree with the trained graph's original tensor of that name, else by identical original content
 * (ties broken by a name one ends with). Null when a weight has no match or an ambiguous one with different
 * trained values (then the graph cannot be updated faithfully and is left out).
 */
function siblingWeights(model: ModelProto, original: Map<string, TensorProto>, trained: Map<string, Float32Array>): Map<string, Float32Array> | null {
  const byContent = new Map<string, string[]>();
  for (const [name, t] of original) {
    if (!isWeight(t)) continue;
    const k = contentKey(t);
    byContent.set(k, [...(byContent.get(k) ?? []), name]);
  }
  const out = new Map<string, Float32Array>();
  for (const t of (model.graph?.initializer ?? []) as TensorProto[]) {
    if (!isWeight(t)) continue;
    const k = contentKey(t);
    const same = original.get(t.name);
    let names = same && contentKey(same) === k ? [t.name] : (byContent.get(k) ?? []);
    // Equal contents (weights at their initial values): prefer the name that one of the two ends with.
    const suffix = names.filter((n) => n.endsWith(t.name) || t.name.endsWith(n));
    if (names.length > 1 && suffix.length === 1) names = suffix;
    const values = names.map((n) => trained.get(n)!);
    if (values.length === 0 || values.some((v) => v.some((x, i) => x !== values[0]![i]))) return null;
    out.set(t.name, values[0]!);
  }
  return out;
}

/** `model` with the given initializer values. */
function withInitializers(model: ModelProto, values: Map<string, Float32Array>, path: string): ModelProto {
  const inits = model.graph!.initializer as TensorProto[];
  for (let k = 0; k < inits.length; k++) {
    const t = inits[k]!;
    const data = values.get(t.name);
    if (!data) continue;
    const dims = (t.dims ?? []).map(Number);
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${path}: weight ${t.name} has shape [${dims}], the fine-tuned values are ${data.length}`);
    inits[k] = makeTensor(t.name, dims, data);
  }
  return model;
}

/**
 * Writes `outDir`: a fine-tuned copy of the training source with `weights` (trained tensors; the rest keep
 * the source's values), in the source's family and layout. OPT with HF-named weights: model.safetensors
 * and the graph rebuilt with the source's KV interface. Exported graphs: the trained graph file with new
 * initializer values; other graph files of the directory are written too when they hold the same weights
 * by name, and left out (with a log line) when they do not; config, tokenizer and generation files are copied.
 */
export function writeFinetuned(src: TrainingSource, weights: Map<string, Float32Array>, outDir: string, log: (s: string) => void = () => {}): void {
  for (const [name, data] of weights) {
    const own = src.weights.get(name);
    if (!own) throw new Error(`writeFinetuned: ${src.dir} has no weight named ${name}`);
    if (own.length !== data.length) throw new Error(`writeFinetuned: weight ${name} has ${data.length} values, ${src.dir}'s has ${own.length}`);
  }
  ensureDir(outDir);
  for (const f of readdirSync(src.dir)) {
    const p = join(src.dir, f);
    if (statSync(p).isFile() && !isWeightsFile(f)) copyFileSync(p, join(outDir, f));
  }
  const all = new Map([...src.weights].map(([k, v]) => [k, weights.get(k) ?? v]));
  if (src.kind === 'opt') {
    const main = src.md.graphs[0];
    const withPast = main ? main.lm.kv !== null : true; // a safetensors-only source gets the KV layout
    const genCfg = src.md.generationConfig;
    writeOptFiles(outDir, src.optConfig!, all, {}, genCfg, withPast);
    return;
  }
  // The trained graph's tensors as they were before training (src.weights was updated in place).
  const original = new Map(((loadModel(src.graphFile!.path).graph?.initializer ?? []) as TensorProto[]).map((t) => [t.name, t]));
  let wroteData = false;
  for (const g of src.md.graphs) {
    let model = loadModel(g.path);
    if (g.path === src.graphFile!.path) model = withInitializers(model, all, g.path);
    else {
      const values = siblingWeights(model, original, all);
      if (!values) {
        log(`fine-tuned copy: ${g.rel} left out (its weights could not all be matched to those of the trained graph ${src.graphFile!.rel})`);
        continue;
      }
      model = withInitializers(model, values, g.path);
    }
    const out = join(outDir, g.rel);
    ensureDir(dirname(out));
    saveModel(model, out);
    wroteData ||= existsSync(`${out}_data`);
  }
  if (wroteData) writeJsonAtomic(join(outDir, CONFIG_FILE), markExternalData(readJsonFile<Json>(join(outDir, CONFIG_FILE)), outDir));
}

// ---------------------------------------------------------------------------------------------------
// Importing an OPT checkpoint.

/** Maps a checkpoint tensor name to its HF OPTForCausalLM name (`decoder.*` and bare `*` forms are accepted). */
function hfName(name: string): string {
  if (name.startsWith(`${DECODER}.`) || name === LM_HEAD) return name;
  if (name.startsWith('decoder.')) return `model.${name}`;
  if (name.startsWith('model.')) return name;
  return `${DECODER}.${name}`;
}

/** The checkpoint's safetensors files: model.safetensors, or the shards of model.safetensors.index.json. */
function checkpointFiles(hfDir: string): string[] {
  const single = join(hfDir, SAFETENSORS_FILE);
  if (existsSync(single)) return [single];
  const index = join(hfDir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (readJsonFile<Json>(index).weight_map ?? {}) as Record<string, string>;
    return [...new Set(Object.values(map))].map((f) => join(hfDir, f));
  }
  if (existsSync(join(hfDir, 'pytorch_model.bin')))
    throw new Error(
      `${hfDir} has only pytorch_model.bin (a pickle, which cannot be read safely outside Python). Convert it to ` +
        'safetensors first, in Python: `from transformers import AutoModelForCausalLM; ' +
        `AutoModelForCausalLM.from_pretrained("${hfDir}").save_pretrained("${hfDir}", safe_serialization=True)\` ` +
        '(or `import torch; from safetensors.torch import save_file; ' +
        `save_file(torch.load("${hfDir}/pytorch_model.bin"), "${hfDir}/model.safetensors", metadata={"format": "pt"})\`), then import again`,
    );
  throw new Error(`${hfDir}: no ${SAFETENSORS_FILE} (nor model.safetensors.index.json) to import`);
}

/**
 * Imports a Hugging Face OPT checkpoint directory (config.json, model.safetensors, tokenizer files) into a
 * model directory of this project. Returns the names of checkpoint tensors that were not used.
 */
export function importHfCheckpoint(hfDir: string, outDir: string): { config: OptConfig; ignored: string[] } {
  const configPath = join(hfDir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${hfDir}: ${CONFIG_FILE} is missing (is this a Hugging Face model directory?)`);
  const raw = readJsonFile<Json>(configPath);
  const family = readModelConfig(raw, configPath).family;
  if (family !== 'opt')
    throw new Error(
      `${hfDir}: model_type ${JSON.stringify(raw.model_type)} has no graph builder here (only OPT is built from safetensors); ` +
        'export the model to ONNX (optimum-cli export onnx --model DIR --task text-generation-with-past OUT) and pass that directory',
    );
  const config = parseOptConfig(raw, configPath);
  const files = checkpointFiles(hfDir);
  const tokenizerFiles = tokenizerFilesFrom(hfDir);
  const specs = optParamSpecs(config);
  const weights: Weights = new Map();
  const ignored: string[] = [];
  for (const file of files) {
    for (const [rawName, t] of readSafetensors(file).tensors) {
      const name = hfName(rawName);
      const spec = specs.get(name);
      if (!spec) {
        ignored.push(rawName); // e.g. lm_head.weight of a tied model
        continue;
      }
      if (spec.shape.join(',') !== t.shape.join(','))
        throw new Error(`${file}: tensor ${rawName} has shape [${t.shape}], expected [${spec.shape}] for this config.json`);
      weights.set(name, asFloat(file, rawName, t.data));
    }
  }
  for (const [name, spec] of specs)
    if (!weights.has(name)) throw new Error(`${hfDir}: the checkpoint has no tensor ${name} (shape [${spec.shape}])`);
  const genPath = join(hfDir, GENERATION_CONFIG_FILE);
  writeModelDir(outDir, {
    config,
    weights,
    tokenizerFiles,
    generationConfig: existsSync(genPath) ? readJsonFile<Json>(genPath) : generationConfigJson(config),
  });
  return { config, ignored };
}
