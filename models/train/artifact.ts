// The training artifact: everything a training run loads, built once per model structure and shapes.
//   ART/manifest.json      shapes, trainable names and shapes, optimizer settings, source checksum, graph files
//   ART/grad.onnx          micro-step: data + params -> loss_sum, token_count, grad.*
//   ART/norm.onnx          grad.* -> global gradient norm (clipping)
//   ART/update.onnx        the flat optimizer update (param, grad, moments, scalars -> new ones), run on slices
//   ART/step.onnx          grad + update fused (used when one micro-batch makes a whole batch)
//   ART/eval.onnx          data + params -> nll [B, T-1]
//   ART/weights.safetensors the initial trainable weights (those of the source model)
// The trainable weights are graph INPUTS everywhere, so one artifact serves every model with the same
// structure (e.g. each generation of a run): `collapse train` feeds the weights of the model it trains.
// The initial optimizer state is step 0 with zero moments; it is implicit (manifest.optimizerState) rather than
// gigabytes of zeros on disk.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildGradientGraph, buildNllGraph, type DropoutMask } from '../grad/index.js';
import { loadModel, saveModel } from '../onnx/io.js';
import { DataType, dimsOf, tensorValues, valueInfo, type GraphProto, type ModelProto, type TensorProto } from '../onnx/proto.js';
import { modelSha256, structureHash, type ForwardSource } from '../model-dir/index.js';
import { buildOptForward, type DropoutRates } from '../opt/index.js';
import { writeDirAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { cacheDir } from '../../util/cache.js';
import type { EngineGraphs, EngineSpec } from './engine.js';
import { fuseStep } from './fuse.js';
import { buildFlatUpdateGraph, buildNormGraph, noDecayOf, type DecayExclude, type OptimizerConfig, type ParamSpec } from './optimizers.js';
import { readTensorFile, writeTensorFile, type TensorMap } from './tensor-file.js';
import { checkOption } from '../../util/options.js';
import { readJsonFile } from '../../util/json.js';

export const ARTIFACT_FORMAT = 'collapse-train-artifact';
/** Bumped when a graph changes (4: the eval graph uses the one NLL head, models/grad/loss.ts). */
export const ARTIFACT_VERSION = 4;

export interface ArtifactManifest {
  format: typeof ARTIFACT_FORMAT;
  version: number;
  createdAt: string;
  source: { dir: string; kind: 'opt' | 'onnx'; sha256: string };
  /** Structural key: equal keys mean interchangeable artifacts. */
  key: string;
  microBatch: number;
  blockSize: number;
  inputs: string[];
  params: ParamSpec[];
  optimizer: OptimizerConfig;
  optimizerState: { step: 0; moments: 'zeros' };
  /**
   * Dropout of the gradient graphs: the rates asked for, where the sites are known ('opt': Hugging Face's
   * OPT sites; 'unknown': a foreign graph, trained without dropout) and the mask inputs to feed.
   */
  dropout: { rates: DropoutRates | null; sites: 'opt' | 'unknown'; masks: DropoutMask[] };
  padId: number | null;
  graphs: { grad: string; norm: string; update: string; fused: string; eval: string };
  weights: string;
  /** Bytes of each graph and weights file, so that a damaged cache entry is found and rebuilt (absent before issue 27). */
  files?: Record<string, number>;
}

export interface ArtifactOptions {
  microBatch: number;
  blockSize: number;
  /** Optimizer settings; noDecay defaults to HF Trainer's rule (biases and LayerNorm weights). */
  optimizer: Omit<OptimizerConfig, 'noDecay'> & { noDecay?: string[]; decayExclude?: DecayExclude };
  trainable?: string[];
  /** Dropout rates of training (OPT models only; default none). */
  dropout?: DropoutRates;
}

const hasDropout = (r: DropoutRates | undefined | null): r is DropoutRates => !!r && (r.hidden > 0 || r.attention > 0);

/** What training does about dropout for this model, in words (for `collapse model info` and the training log). */
export function describeDropout(kind: 'opt' | 'onnx', rates?: DropoutRates | null): string {
  if (kind === 'onnx')
    return `dropout sites unknown (a foreign ONNX graph): trained without dropout${hasDropout(rates) ? `; the requested dropout ${rates.hidden} / attention ${rates.attention} is not applied` : ''}`;
  if (!hasDropout(rates)) return 'dropout off';
  return `dropout ${rates.hidden} after the attention output projection and fc2, attention dropout ${rates.attention} (Hugging Face OPT sites; masks from the run seed)`;
}

/** sha256 over the files that define the source model (models/model-dir/source.ts modelSha256). */
export function sourceSha256(src: ForwardSource): string {
  return modelSha256(src.dir);
}

/** What the graphs depend on: the model structure (OPT config, or the whole foreign graph) and the options. */
export function structuralKey(src: ForwardSource, o: ArtifactOptions): string {
  const h = createHash('sha256');
  const dropout = src.kind === 'opt' && hasDropout(o.dropout) ? o.dropout : null;
  h.update(JSON.stringify({ v: ARTIFACT_VERSION, kind: src.kind, mb: o.microBatch, T: o.blockSize, opt: o.optimizer, tr: o.trainable ?? null, ...(dropout ? { dr: dropout } : {}) }));
  h.update(structureHash(src));
  return h.digest('hex').slice(0, 24);
}

/** Moves the given initializers of a graph to graph inputs (the weights are then fed at run time). */
export function initializersToInputs(model: ModelProto, names: readonly string[]): ModelProto {
  const g = model.graph as GraphProto;
  const set = new Set(names);
  const moved = (g.initializer as TensorProto[]).filter((t) => set.has(t.name));
  g.initializer = (g.initializer as TensorProto[]).filter((t) => !set.has(t.name));
  g.input.push(...moved.map((t) => valueInfo(t.name, t.dataType as DataType, dimsOf(t))));
  return model;
}

export async function buildArtifact(
  src: ForwardSource,
  o: ArtifactOptions,
  outDir: string,
  log: (s: string) => void = () => {},
  write: { keepExisting?: boolean } = {},
): Promise<ArtifactManifest> {
  checkOption('microBatchSize', o.microBatch, { int: true, min: 1 });
  checkOption('blockSize', o.blockSize, { int: true, min: 2 });
  const t0 = Date.now();
  log(`building the gradient graph (micro-batch ${o.microBatch} x ${o.blockSize} tokens)...`);
  // OPT models get the dropout sites in their training forward (inference-mode Dropout nodes, identities in the
  // eval graph); a foreign graph's sites are unknown, so it trains without dropout (and says so).
  const dropout = src.kind === 'opt' && hasDropout(o.dropout) ? o.dropout : null;
  const forward = dropout ? buildOptForward(src.optConfig!, src.weights, { withPast: false, present: false, dropout }) : src.forward;
  if (src.kind === 'onnx') log(describeDropout('onnx', o.dropout));
  const gg = await buildGradientGraph(forward, { batch: o.microBatch, seq: o.blockSize, trainable: o.trainable, dropout: dropout ? 'masks' : 'none' });
  const params: ParamSpec[] = gg.params.map((name) => ({ name, shape: gg.shapes[name]! }));
  const { decayExclude, ...opt } = o.optimizer;
  const optimizer: OptimizerConfig = { ...opt, noDecay: opt.noDecay ?? noDecayOf(decayExclude ?? 'bias-and-norm', params) };
  const evalModel = initializersToInputs(await buildNllGraph(forward, { batch: o.microBatch, seq: o.blockSize }), gg.params);
  const norm = buildNormGraph(params), update = buildFlatUpdateGraph(optimizer);
  const fused = fuseStep(gg.model, params, optimizer);
  const manifest: ArtifactManifest = {
    format: ARTIFACT_FORMAT, version: ARTIFACT_VERSION, createdAt: new Date().toISOString(),
    source: { dir: src.dir, kind: src.kind, sha256: sourceSha256(src) },
    key: structuralKey(src, o),
    microBatch: o.microBatch, blockSize: o.blockSize,
    inputs: (gg.model.graph?.input ?? []).map((i) => i.name ?? '').filter((n) => ['input_ids', 'attention_mask'].includes(n)),
    params, optimizer, optimizerState: { step: 0, moments: 'zeros' },
    dropout: { rates: o.dropout ?? null, sites: src.kind === 'opt' ? 'opt' : 'unknown', masks: gg.dropoutMasks },
    padId: src.padId,
    graphs: { grad: 'grad.onnx', norm: 'norm.onnx', update: 'update.onnx', fused: 'step.onnx', eval: 'eval.onnx' },
    weights: 'weights.safetensors',
  };
  await writeDirAtomic(outDir, (tmp) => {
    saveModel(gg.model, join(tmp, manifest.graphs.grad));
    saveModel(norm, join(tmp, manifest.graphs.norm));
    saveModel(update, join(tmp, manifest.graphs.update));
    saveModel(fused, join(tmp, manifest.graphs.fused));
    saveModel(evalModel, join(tmp, manifest.graphs.eval));
    writeTensorFile(join(tmp, manifest.weights), params.map((p) => [p.name, { data: src.weights.get(p.name)!, shape: p.shape }]));
    manifest.files = Object.fromEntries(artifactFiles(manifest).map((f) => [f, statSync(join(tmp, f)).size]));
    writeJsonAtomic(join(tmp, 'manifest.json'), manifest);
  }, write);
  log(`artifact written to ${outDir} (${params.length} trainable tensors, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return manifest;
}

export interface LoadedArtifact {
  dir: string;
  manifest: ArtifactManifest;
  graphs: EngineGraphs;
  spec: EngineSpec;
  initialWeights(): TensorMap;
}

export function loadArtifact(dir: string): LoadedArtifact {
  const mpath = join(dir, 'manifest.json');
  if (!existsSync(mpath)) throw new Error(`${dir} is not a training artifact (no manifest.json); build one with \`collapse artifact build\``);
  const manifest = readJsonFile<ArtifactManifest>(mpath);
  if (manifest.format !== ARTIFACT_FORMAT || manifest.version !== ARTIFACT_VERSION)
    throw new Error(`${mpath}: format ${manifest.format} v${manifest.version} is not ${ARTIFACT_FORMAT} v${ARTIFACT_VERSION}; rebuild it with \`collapse artifact build\``);
  const p = (f: string) => join(dir, f);
  return {
    dir, manifest,
    graphs: { grad: p(manifest.graphs.grad), norm: p(manifest.graphs.norm), update: p(manifest.graphs.update), fused: p(manifest.graphs.fused), eval: p(manifest.graphs.eval) },
    spec: { params: manifest.params, microBatch: manifest.microBatch, blockSize: manifest.blockSize, optimizer: manifest.optimizer, dropout: manifest.dropout?.masks ?? [] },
    initialWeights: () => new Map([...readTensorFile(p(manifest.weights)).tensors].map(([k, v]) => [k, v.data])),
  };
}

export function artifactCacheRoot(): string {
  return process.env.COLLAPSE_ARTIFACT_CACHE ?? join(cacheDir(), 'artifacts');
}

const artifactFiles = (m: ArtifactManifest): string[] => [...Object.values(m.graphs), m.weights];

/** What is wrong with a cache entry (a kill or a full disk while it was copied, a file edited or removed), or null. */
function cacheDamage(dir: string): string | null {
  let m: ArtifactManifest;
  try {
    m = readJsonFile<ArtifactManifest>(join(dir, 'manifest.json'));
  } catch (e) {
    return (e as Error).message;
  }
  if (m.format !== ARTIFACT_FORMAT || m.version !== ARTIFACT_VERSION) return `format ${m.format} v${m.version}, not ${ARTIFACT_FORMAT} v${ARTIFACT_VERSION}`;
  for (const f of artifactFiles(m)) {
    const st = statSync(join(dir, f), { throwIfNoEntry: false });
    if (!st) return `${f} is missing`;
    const want = m.files?.[f];
    if (want !== undefined && st.size !== want) return `${f} has ${st.size} bytes, its manifest says ${want}`;
  }
  return null;
}

/** The cached artifact for this model structure and options, built on first use; a damaged entry is rebuilt. */
export async function cachedArtifact(src: ForwardSource, o: ArtifactOptions, root = artifactCacheRoot(), log?: (s: string) => void): Promise<LoadedArtifact> {
  const dir = join(root, structuralKey(src, o));
  const damage = existsSync(dir) ? cacheDamage(dir) : 'absent';
  if (damage === null) log?.(`using the cached training artifact ${dir}`);
  else {
    if (damage !== 'absent') (log ?? ((s: string) => process.stderr.write(`${s}\n`)))(`the cached training artifact ${dir} is damaged (${damage}); building it again`);
    // Jobs of one run (seeds side by side under Slurm) may build a missing entry at once: the first one stays.
    // A damaged entry is replaced.
    await buildArtifact(src, o, dir, log, { keepExisting: damage === 'absent' });
  }
  return loadArtifact(dir);
}

/** Checks that a source model fits an artifact (same trainable tensors and shapes). */
export function checkCompatible(a: LoadedArtifact, src: ForwardSource): void {
  for (const p of a.manifest.params) {
    const w = src.weights.get(p.name);
    const n = p.shape.reduce((x, y) => x * y, 1);
    if (!w || w.length !== n)
      throw new Error(`model ${src.dir} does not fit artifact ${a.dir}: tensor ${p.name} [${p.shape}] is ${w ? `of ${w.length} values` : 'missing'}; rebuild the artifact for this model`);
  }
}


