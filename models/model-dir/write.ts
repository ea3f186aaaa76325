// Writing a complete OPT model directory (atomically), and reading an OPT directory's weights under HF names.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpName, writeJsonAtomic } from '../../util/atomic.js';
import { loadModel, saveModel } from '../onnx/io.js';
import { DataType, tensorValues, type TensorProto } from '../onnx/proto.js';
import { configJson, type OptConfig } from '../opt/config.js';
import { buildOptForward } from '../opt/graph.js';
import { checkWeights, optParamSpecs, type Weights } from '../opt/weights.js';
import { readSafetensors, writeSafetensors } from '../safetensors.js';
import { CONFIG_FILE, GENERATION_CONFIG_FILE, ONNX_DATA_FILE, ONNX_FILE, SAFETENSORS_FILE, type FileContents, type Json } from './files.js';
import { generationConfigJson, openModelDir } from './open.js';

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
export function markExternalData(cfg: Json, dir: string): Json {
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

export function writeOptFiles(tmp: string, config: OptConfig, weights: Weights, tokenizerFiles: FileContents, generationConfig: Json, withPast: boolean): void {
  mkdirSync(join(tmp, 'onnx'), { recursive: true });
  saveModel(buildOptForward(config, weights, { withPast }), join(tmp, ONNX_FILE));
  writeSafetensors(join(tmp, SAFETENSORS_FILE), safetensorsOf(config, weights), { format: 'pt' });
  for (const [name, content] of Object.entries(tokenizerFiles)) writeFileSync(join(tmp, name), content);
  writeJsonAtomic(join(tmp, CONFIG_FILE), markExternalData(configJson(config), tmp));
  writeJsonAtomic(join(tmp, GENERATION_CONFIG_FILE), generationConfig);
}

export function asFloat(path: string, name: string, data: Float32Array | BigInt64Array | Int32Array): Float32Array {
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
