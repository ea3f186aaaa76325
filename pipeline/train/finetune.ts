// Fine-tuning a model directory on a block corpus: the programmatic API behind `collapse train`, and what the
// generational loop calls. Builds (or reuses) the training artifact, runs the resumable loop, and writes the
// best epoch's weights as a model directory in the family and layout of its input (models/model-dir/).
import { sha256 } from '../../util/sha256.js';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readBlocks } from '../../datasets/block-set.js';
import { loadTrainingSource, modelSha256, writeFinetuned } from '../../models/model-dir/index.js';
import { cachedArtifact, checkCompatible, describeDropout, loadArtifact, sourceSha256, type ArtifactOptions, type LoadedArtifact } from '../../models/train/artifact.js';
import { TrainEngine } from '../../models/train/engine.js';
import type { TensorMap } from '../../models/train/tensor-file.js';
import { writeDirAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import type { Provider } from '../../models/session.js';
import { checkModelFits, checkWritable } from '../preflight.js';
import { checkTrainBatch } from '../batch-fits.js';
import { OptionError } from '../../util/options.js';
import { clipThreshold, resolveTrainOptions, TRAIN_OPTIONS, type TrainOptions, type TrainOptionsInput } from './options.js';
import { recordOf } from '../../util/options.js';
import { checkResumeKey, trainLoop } from './training-loop.js';
import type { Blocks } from '../../datasets/block-set.js';
import { keyChanges } from '../../util/resume-key.js';

/** What to fine-tune, on what, and where to write it, with the training options (defaults: options.ts). */
export interface FinetuneOptions extends TrainOptionsInput {
  /** Model directory to fine-tune (its weights are the starting point). */
  model: string;
  /** A prebuilt artifact directory; default: build/reuse one in the artifact cache. */
  artifact?: string;
  train: string | Blocks;
  valid?: string | Blocks | null;
  out: string;
  /** Where checkpoints go while training; default beside `out` (`OUT.ckpt`). A run passes its layout's. */
  checkpointDir?: string;
  threads?: number;
  provider?: Provider;
  artifactCache?: string;
  /** Testing aid (see LoopOptions.haltAfterSteps). */
  haltAfterSteps?: number;
  log?: (line: string) => void;
}

export interface FinetuneResult {
  bestEpoch: number;
  validLosses: number[];
  trainLosses: number[];
  steps: number;
  outDir: string;
}

const SUMMARY = 'train-summary.json';

function corpusOf(c: string | Blocks, flag: string): Blocks {
  if (typeof c !== 'string') return c;
  if (!existsSync(join(c, 'manifest.json'))) throw new Error(`${flag} ${c}: not a corpus directory (no manifest.json); create one with \`collapse prepare\``);
  return readBlocks(c);
}

/** Training options that do not change the trained weights, left out of the resume key. */
const NOT_IN_KEY = ['checkpointEvery'];

/**
 * What a checkpoint or a finished output must have been made with to be reused: the model's sha256, the
 * validation data's, and every training option with its default resolved (options added to TrainOptions later
 * are covered without touching this function; NOT_IN_KEY lists the exceptions).
 */
export function finetuneResumeKey(o: TrainOptionsInput, valid: Blocks | null, modelSha: string): Record<string, unknown> {
  const h = resolveTrainOptions(o);
  // 0 and null both turn clipping off: one key for both. Settings declared `addedLater` enter the key only when
  // they differ from their default, so that outputs and checkpoints made before they existed still match.
  const resolved = recordOf(TRAIN_OPTIONS, { ...h, maxGradNorm: clipThreshold(h) }, NOT_IN_KEY);
  const validSha = valid ? sha256(new Uint8Array(valid.ids.buffer, valid.ids.byteOffset, valid.ids.byteLength)) : null;
  return { model: modelSha, valid: validSha, ...Object.fromEntries(Object.entries(resolved).sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** The artifact's optimizer settings (the artifact cache is keyed by them, so every caller builds them here). */
export function artifactOptimizer(h: TrainOptions): ArtifactOptions['optimizer'] {
  return { name: h.optimizer, weightDecay: h.weightDecay, beta1: h.beta1, beta2: h.beta2, eps: h.eps, decayExclude: h.decayExclude };
}

/** Checkpoint directory of a training writing `out` (beside it, so that `out` itself appears only when complete). */
const checkpointDirOf = (o: FinetuneOptions): string => resolve(o.checkpointDir ?? `${o.out}.ckpt`);

/** Whether `out` holds a finished training's output (its summary is written last, inside the model directory). */
export const trainingFinished = (out: string): boolean => existsSync(join(out, SUMMARY));

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const h = resolveTrainOptions(o);
  const out = resolve(o.out);
  const ckpt = checkpointDirOf(o);
  checkWritable(out, '--out');
  if (existsSync(out) && !trainingFinished(out))
    throw new Error(`--out ${out} exists and is not a finished training output; choose another --out or delete it`);
  const train = corpusOf(o.train, '--train');
  const valid = o.valid ? corpusOf(o.valid, '--valid') : null;
  const key = finetuneResumeKey(h, valid, modelSha256(o.model));
  if (trainingFinished(out)) {
    const s = readJsonFile(join(out, SUMMARY)) as FinetuneResult & { resumeKey?: Record<string, unknown> };
    const changes = s.resumeKey ? keyChanges(s.resumeKey, key) : [];
    if (changes.length)
      throw new Error(`--out ${out} was trained with other options (${changes.join('; ')}); choose another --out, or delete it to train again`);
    // The model is committed: a checkpoint left by a kill between the rename and this point is no longer needed.
    rmSync(ckpt, { recursive: true, force: true });
    log(`${out} is already trained (${SUMMARY}); delete it to train again`);
    // What the training that wrote it returned, nothing more (the summary also holds its options and source).
    return { bestEpoch: s.bestEpoch, validLosses: s.validLosses, trainLosses: s.trainLosses, steps: s.steps, outDir: out };
  }
  checkResumeKey(ckpt, key);
  const src = loadTrainingSource(o.model);
  const limits = { model: o.model, positions: src.md.config.maxPositions ?? undefined, vocabSize: src.md.config.vocabSize ?? undefined, tokenizer: src.md.tokenizer };
  checkModelFits(limits, [
    { flag: '--train', path: typeof o.train === 'string' ? o.train : '(in memory)', stored: typeof o.train === 'string', blockSize: train.blockSize, ids: train.ids },
    ...(valid ? [{ flag: '--valid', path: typeof o.valid === 'string' ? o.valid : '(in memory)', stored: typeof o.valid === 'string', blockSize: valid.blockSize, ids: valid.ids }] : []),
  ]);
  checkTrainBatch(h, { rows: train.rows, blockSize: train.blockSize, path: typeof o.train === 'string' ? o.train : 'the training data' }, limits.vocabSize);
  const dropout = { hidden: h.dropout, attention: h.attentionDropout };
  const art: LoadedArtifact = o.artifact
    ? loadArtifact(o.artifact)
    : await cachedArtifact(src, { microBatch: h.microBatchSize, blockSize: train.blockSize, optimizer: artifactOptimizer(h), dropout }, o.artifactCache, log);
  if (o.artifact && art.manifest.microBatch !== h.microBatchSize)
    throw new OptionError('microBatchSize', h.microBatchSize, (name) => `the artifact ${o.artifact} was built for micro-batch ${art.manifest.microBatch}; pass ${name('microBatchSize')} ${art.manifest.microBatch} or another artifact`);
  checkCompatible(art, src);
  log(`training: ${describeDropout(src.kind, art.manifest.dropout?.rates ?? dropout)}`);
  // Shared, not copied (saves a weights-sized copy): the engine updates them in place; src is not reused.
  const weights: TensorMap = new Map(art.manifest.params.map((p) => [p.name, src.weights.get(p.name)!]));
  const engine = await TrainEngine.open(art.graphs, art.spec, weights, null, { threads: o.threads, provider: o.provider });
  try {
    const res = await trainLoop(engine, train, valid, {
      epochs: h.epochs, batchSize: h.batchSize, lr: h.lr,
      // minLr only where it means something, so other schedules keep their checkpoint fingerprints.
      schedule: { name: h.schedule, warmupSteps: h.warmupSteps, ...(h.schedule === 'cosine-epoch' ? { minLr: h.minLr } : {}) },
      maxGradNorm: clipThreshold(h), seed: h.seed, padId: art.manifest.padId,
      checkpointDir: ckpt, checkpointEvery: h.checkpointEvery,
      fusedStep: h.fusedStep, haltAfterSteps: o.haltAfterSteps, resumeKey: key, label: `train ${o.out}`, log,
    });
    const result: FinetuneResult = { bestEpoch: res.bestEpoch, validLosses: res.validLosses, trainLosses: res.trainLosses, steps: res.steps, outDir: out };
    await writeDirAtomic(out, (tmp) => {
      writeFinetuned(src, res.bestWeights, tmp, log);
      writeJsonAtomic(join(tmp, SUMMARY), {
        ...result, outDir: undefined,
        source: { dir: resolve(src.dir), sha256: sourceSha256(src) }, artifact: art.dir, resumeKey: key,
        options: { ...o, ...h, train: typeof o.train === 'string' ? o.train : '(in memory)', valid: typeof o.valid === 'string' ? o.valid : o.valid ? '(in memory)' : null, checkpointDir: undefined, log: undefined },
      });
    });
    rmSync(ckpt, { recursive: true, force: true });
    log(`best epoch ${res.bestEpoch + 1} (validation loss ${res.validLosses[res.bestEpoch]!.toFixed(4)}); model written to ${out}`);
    return result;
  } finally {
    await engine.release();
  }
}
