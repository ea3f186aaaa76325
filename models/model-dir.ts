// A model directory in Hugging Face hub layout, loadable by transformers.js and (for the weights) by
// transformers itself:
//   config.json, generation_config.json, tokenizer files,
//   onnx/model.onnx (+ onnx/model.onnx_data, the weights), model.safetensors (HF parameter names).
// Directories whose ONNX came from elsewhere (an Optimum / transformers.js export, or a plain torch export
// with only input_ids -> logits) load too: loadModelDir checks what the graph offers.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOptForward } from './opt/graph.js';
import { configJson, parseOptConfig, type OptConfig } from './opt/config.js';
import { checkWeights, DECODER, LM_HEAD, optParamSpecs, type Weights } from './opt/weights.js';
import { loadModel, saveModel } from './onnx/io.js';
import { DataType, decodeModel, makeTensor, tensorValues, valueInfoShape, type ModelProto, type TensorProto } from './onnx/proto.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';
import { tmpName, writeJsonAtomic } from './util/atomic.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
export const ONNX_FILE = 'onnx/model.onnx';
export const ONNX_DATA_FILE = 'onnx/model.onnx_data';
export const SAFETENSORS_FILE = 'model.safetensors';
/** Tokenizer files we copy when present (a fast tokenizer.json, or GPT-2/OPT vocab.json + merges.txt). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'added_tokens.json'];

export type FileContents = Record<string, string | Uint8Array>;

export interface IoInfo {
  name: string;
  dtype: DataType;
  shape: (number | string)[];
}

/** What an ONNX causal-LM graph offers. */
export interface GraphIo {
  inputs: IoInfo[];
  outputs: IoInfo[];
  hasAttentionMask: boolean;
  /** Has past_key_values.{i}.key|value inputs (and the matching present outputs). */
  hasPast: boolean;
  pastLayers: number;
}

export interface ModelDir {
  dir: string;
  config: OptConfig;
  configPath: string;
  generationConfig: Record<string, unknown>;
  onnxPath: string;
  /** The external weights file beside the ONNX, when there is one. */
  onnxDataPath: string | null;
  safetensorsPath: string | null;
  /** The directory itself: tokenizer files sit beside config.json, as on the hub. */
  tokenizerDir: string;
  io: GraphIo;
  /** `producer_name` of the ONNX (model-collapse for graphs built here). */
  producer: string;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

export function generationConfigJson(cfg: OptConfig): Record<string, unknown> {
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

/** Inputs/outputs of a causal-LM graph, checked: input_ids in, logits out, past/present in pairs. */
export function describeGraph(model: ModelProto, source: string): GraphIo {
  const io = (v: { name?: string | null }[]): IoInfo[] => v.map((x) => ({ name: x.name ?? '', ...valueInfoShape(x) }));
  const graph = model.graph;
  if (!graph) throw new Error(`${source}: the ONNX file has no graph`);
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
  // Older exporters list initializers among the inputs; those are not inputs a caller feeds.
  const inputs = io((graph.input ?? []).filter((x) => !initNames.has(x.name ?? '')));
  const outputs = io(graph.output ?? []);
  const inNames = new Set(inputs.map((x) => x.name));
  const outNames = new Set(outputs.map((x) => x.name));
  const missing: string[] = [];
  if (!inNames.has('input_ids')) missing.push('input `input_ids` (int64 [batch, seq])');
  if (!outNames.has('logits')) missing.push('output `logits` ([batch, seq, vocab])');
  const past = inputs.filter((x) => x.name.startsWith('past_key_values.'));
  for (const p of past) {
    const present = p.name.replace('past_key_values.', 'present.');
    if (!outNames.has(present)) missing.push(`output \`${present}\` (the KV cache output matching input ${p.name})`);
  }
  if (missing.length > 0)
    throw new Error(
      `${source} is not a causal-LM graph this project can use: missing ${missing.join(', ')}. ` +
        `It has inputs [${[...inNames].join(', ')}] and outputs [${[...outNames].join(', ')}]; ` +
        'export it with input_ids (and optionally attention_mask) as inputs and logits as output',
    );
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', ...past.map((p) => p.name)]);
  const unknown = inputs.filter((x) => !known.has(x.name)).map((x) => x.name);
  if (unknown.length > 0)
    throw new Error(`${source}: graph inputs [${unknown.join(', ')}] are not supported (expected input_ids, attention_mask, past_key_values.*)`);
  const layers = new Set(past.map((p) => p.name.split('.')[1]));
  return { inputs, outputs, hasAttentionMask: inNames.has('attention_mask'), hasPast: past.length > 0, pastLayers: layers.size };
}

/** Reads and checks a model directory (config, ONNX graph inputs/outputs, tokenizer). */
export function loadModelDir(dir: string): ModelDir {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist (create one with \`collapse model init\` or \`collapse model import\`)`);
  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${dir} is not a model directory: ${CONFIG_FILE} is missing`);
  const config = parseOptConfig(readJson(configPath), configPath);
  const genPath = join(dir, GENERATION_CONFIG_FILE);
  const generationConfig = existsSync(genPath) ? readJson(genPath) : generationConfigJson(config);
  const onnxPath = [join(dir, ONNX_FILE), join(dir, 'model.onnx')].find((p) => existsSync(p));
  if (!onnxPath)
    throw new Error(`${dir}: no ONNX model (expected ${ONNX_FILE}); import safetensors weights with \`collapse model import\``);
  let model: ModelProto;
  try {
    model = decodeModel(readFileSync(onnxPath));
  } catch (e) {
    throw new Error(`${onnxPath} is not a valid ONNX model (${(e as Error).message}); re-export or re-download it`);
  }
  const io = describeGraph(model, onnxPath);
  const logits = io.outputs.find((o) => o.name === 'logits')!;
  const vocab = logits.shape[2];
  if (typeof vocab === 'number' && vocab !== config.vocab_size)
    throw new Error(`${dir}: the ONNX logits have ${vocab} entries per token but ${CONFIG_FILE} says vocab_size ${config.vocab_size}`);
  tokenizerFilesFrom(dir); // fails clearly when there is no tokenizer
  const dataPath = `${onnxPath}_data`;
  const st = join(dir, SAFETENSORS_FILE);
  return {
    dir,
    config,
    configPath,
    generationConfig,
    onnxPath,
    onnxDataPath: existsSync(dataPath) ? dataPath : null,
    safetensorsPath: existsSync(st) ? st : null,
    tokenizerDir: dir,
    io,
    producer: model.producerName ?? '',
  };
}

export interface ModelDirContents {
  config: OptConfig;
  weights: Weights;
  tokenizerFiles: FileContents;
  generationConfig?: Record<string, unknown>;
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

function writeCommon(tmp: string, config: OptConfig, tokenizerFiles: FileContents, generationConfig: Record<string, unknown>): void {
  for (const [name, content] of Object.entries(tokenizerFiles)) writeFileSync(join(tmp, name), content);
  const cfg = configJson(config);
  // transformers.js (in browsers) fetches external data only when told; in Node onnxruntime finds it anyway.
  if (existsSync(join(tmp, ONNX_DATA_FILE))) cfg['transformers.js_config'] = { use_external_data_format: true };
  writeJsonAtomic(join(tmp, CONFIG_FILE), cfg);
  writeJsonAtomic(join(tmp, GENERATION_CONFIG_FILE), generationConfig);
}

function safetensorsOf(config: OptConfig, weights: Weights): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, spec] of optParamSpecs(config)) out.set(name, { shape: spec.shape, data: weights.get(name)! });
  return out;
}

/** Writes a complete model directory (atomically: a temporary directory renamed into place). */
export function writeModelDir(dir: string, contents: ModelDirContents): void {
  const { config, weights } = contents;
  checkWeights(config, weights, `writeModelDir ${dir}`);
  replaceDir(dir, (tmp) => {
    mkdirSync(join(tmp, 'onnx'));
    saveModel(buildOptForward(config, weights, { withPast: true }), join(tmp, ONNX_FILE));
    writeSafetensors(join(tmp, SAFETENSORS_FILE), safetensorsOf(config, weights), { format: 'pt' });
    writeCommon(tmp, config, contents.tokenizerFiles, contents.generationConfig ?? generationConfigJson(config));
  });
}

function asFloat(path: string, name: string, data: Float32Array | BigInt64Array | Int32Array): Float32Array {
  if (!(data instanceof Float32Array)) throw new Error(`${path}: tensor ${name} is an integer tensor, expected floating point weights`);
  return data;
}

/**
 * The weights of a model directory under HF names: from model.safetensors, else from the ONNX initializers
 * that carry HF names (a graph built by this project).
 */
export function readWeights(dir: string): Weights {
  const md = loadModelDir(dir);
  const weights: Weights = new Map();
  if (md.safetensorsPath) {
    for (const [name, t] of readSafetensors(md.safetensorsPath).tensors) weights.set(name, asFloat(md.safetensorsPath, name, t.data));
  } else {
    const model = loadModel(md.onnxPath);
    const byName = new Map((model.graph!.initializer as TensorProto[]).map((t) => [t.name, t]));
    for (const name of optParamSpecs(md.config).keys()) {
      const t = byName.get(name);
      if (!t)
        throw new Error(
          `${dir}: no ${SAFETENSORS_FILE}, and the ONNX graph has no initializer named ${name} (its weights do not use HF names); ` +
            'import the checkpoint with `collapse model import`',
        );
      if (t.dataType !== DataType.FLOAT) throw new Error(`${md.onnxPath}: initializer ${name} is not float32`);
      weights.set(name, tensorValues(t) as Float32Array); // a copy: decoded bytes may view the whole file
    }
  }
  checkWeights(md.config, weights, md.safetensorsPath ?? md.onnxPath);
  return weights;
}

/**
 * The forward graph of a model directory for a given use: rebuilt from config + weights when the weights
 * carry HF names (so `withPast` / `present` can be chosen), else the directory's own ONNX as it is
 * (a foreign export; check `io` for what it offers).
 */
export function loadForward(dir: string, opts: { withPast: boolean; present?: boolean }): { model: ModelProto; io: GraphIo; rebuilt: boolean } {
  const md = loadModelDir(dir);
  let weights: Weights | null = null;
  try {
    weights = readWeights(dir);
  } catch {
    weights = null; // not HF-named: use the graph as exported
  }
  if (weights) {
    const model = buildOptForward(md.config, weights, opts);
    return { model, io: describeGraph(model, dir), rebuilt: true };
  }
  return { model: loadModel(md.onnxPath), io: md.io, rebuilt: false };
}

/**
 * Writes `outDir`: a copy of model directory `srcDir` whose weights are replaced by `updated` (HF names;
 * a subset is fine, the rest stays). The ONNX keeps the source graph and gets new initializer values, so
 * this also works for graphs exported elsewhere, whose initializer names are then the names to use.
 */
export function withWeights(srcDir: string, outDir: string, updated: Weights): void {
  const src = loadModelDir(srcDir);
  const model = loadModel(src.onnxPath);
  const inits = model.graph!.initializer as TensorProto[];
  const byName = new Map(inits.map((t, k) => [t.name, k]));
  let stWeights: Weights | null = null;
  if (src.safetensorsPath) {
    stWeights = new Map();
    for (const [name, t] of readSafetensors(src.safetensorsPath).tensors) stWeights.set(name, asFloat(src.safetensorsPath, name, t.data));
  }
  for (const [name, data] of updated) {
    const k = byName.get(name);
    if (k === undefined && !stWeights?.has(name))
      throw new Error(`withWeights: ${srcDir} has no weight named ${name} (neither an ONNX initializer nor a tensor of ${SAFETENSORS_FILE})`);
    if (k !== undefined) {
      const t = inits[k]!;
      const dims = (t.dims ?? []).map(Number);
      const n = dims.reduce((a, b) => a * b, 1);
      if (n !== data.length) throw new Error(`withWeights: weight ${name} has ${data.length} values, the graph's has shape [${dims}]`);
      inits[k] = makeTensor(name, dims, data);
    }
    if (stWeights?.has(name)) {
      if (stWeights.get(name)!.length !== data.length)
        throw new Error(`withWeights: weight ${name} has ${data.length} values, ${SAFETENSORS_FILE} has ${stWeights.get(name)!.length}`);
      stWeights.set(name, data);
    }
  }
  replaceDir(outDir, (tmp) => {
    mkdirSync(join(tmp, 'onnx'));
    saveModel(model, join(tmp, ONNX_FILE));
    if (stWeights && src.safetensorsPath) {
      const header = readSafetensorsHeader(src.safetensorsPath);
      const tensors = new Map([...header.tensors].map(([name, info]) => [name, { shape: info.shape, data: stWeights.get(name)! }]));
      writeSafetensors(join(tmp, SAFETENSORS_FILE), tensors, header.metadata);
    }
    for (const f of TOKENIZER_FILES) if (existsSync(join(srcDir, f))) copyFileSync(join(srcDir, f), join(tmp, f));
    writeCommon(tmp, src.config, {}, src.generationConfig);
  });
}

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
    const map = (readJson(index).weight_map ?? {}) as Record<string, string>;
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
  const config = parseOptConfig(readJson(configPath), configPath);
  const files = checkpointFiles(hfDir);
  const tokenizerFiles = tokenizerFilesFrom(hfDir);
  const specs = optParamSpecs(config);
  const weights: Weights = new Map();
  const ignored: string[] = [];
  for (const file of files) {
    for (const [raw, t] of readSafetensors(file).tensors) {
      const name = hfName(raw);
      const spec = specs.get(name);
      if (!spec) {
        ignored.push(raw); // e.g. lm_head.weight of a tied model
        continue;
      }
      if (spec.shape.join(',') !== t.shape.join(','))
        throw new Error(`${file}: tensor ${raw} has shape [${t.shape}], expected [${spec.shape}] for this config.json`);
      weights.set(name, asFloat(file, raw, t.data));
    }
  }
  for (const [name, spec] of specs)
    if (!weights.has(name)) throw new Error(`${hfDir}: the checkpoint has no tensor ${name} (shape [${spec.shape}])`);
  const genPath = join(hfDir, GENERATION_CONFIG_FILE);
  writeModelDir(outDir, {
    config,
    weights,
    tokenizerFiles,
    generationConfig: existsSync(genPath) ? readJson(genPath) : generationConfigJson(config),
  });
  return { config, ignored };
}
