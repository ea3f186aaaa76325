// Training: the forward graph and its weights (ForwardSource, TrainingSource), and the hashes that identify them.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hashFileInto } from '../../util/sha256.js';
import { loadModel } from '../onnx/io.js';
import { DataType, encodeModel, onnx, tensorValues, type ModelProto, type TensorProto } from '../onnx/proto.js';
import { isFloat32Weight } from '../onnx/weights.js';
import type { OptConfig } from '../opt/config.js';
import { buildOptForward } from '../opt/graph.js';
import type { Weights } from '../opt/weights.js';
import { readSafetensors } from '../safetensors.js';
import { CONFIG_FILE, GRAPH_FILES, SAFETENSORS_FILE } from './files.js';
import { openModelDir, type GraphFile, type ModelDir } from './open.js';
import { forwardGraph } from './plan.js';

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
        isFloat32Weight(t)
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
