// Opening a model directory: its config (family by model_type), graphs and their causal-LM interface, weights,
// tokenizer files and generation settings.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile } from '../../util/json.js';
import { describeCausalLm, type CausalLm, type KvHints } from '../causal-lm.js';
import { decodeModel, type ModelProto } from '../onnx/proto.js';
import { parseOptConfig, type OptConfig } from '../opt/config.js';
import { EMBED_TOKENS } from '../opt/weights.js';
import { readSafetensorsHeader } from '../safetensors.js';
import { tokenizerIdentity, type TokenizerIdentity } from '../tokenizer-identity.js';
import { CONFIG_FILE, FAMILY_OF, GENERATION_CONFIG_FILE, GRAPH_FILES, SAFETENSORS_FILE, TOKENIZER_FILES, type Family, type FileContents, type Json } from './files.js';

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
