// Writing a fine-tuned copy of a model directory: the same family and graph layout, the trained weights in every
// graph file (sibling graphs matched by name or content).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ensureDir, writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import { loadModel, saveModel } from '../onnx/io.js';
import { makeTensor, tensorValues, type ModelProto, type TensorProto } from '../onnx/proto.js';
import { isFloat32Weight } from '../onnx/weights.js';
import { CONFIG_FILE, type Json } from './files.js';
import type { TrainingSource } from './source.js';
import { markExternalData, writeOptFiles } from './write.js';

/** Top-level files a fine-tuned copy keeps: everything but weights and derived graphs. */
const isWeightsFile = (f: string): boolean =>
  f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || f.endsWith('.bin') || f.endsWith('.onnx') || f.endsWith('.onnx_data') || f.endsWith('.pt');

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
    if (!isFloat32Weight(t)) continue;
    const k = contentKey(t);
    byContent.set(k, [...(byContent.get(k) ?? []), name]);
  }
  const out = new Map<string, Float32Array>();
  for (const t of (model.graph?.initializer ?? []) as TensorProto[]) {
    if (!isFloat32Weight(t)) continue;
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
