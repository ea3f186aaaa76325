// Fine-tuning a model directory on a block corpus: the programmatic API behind `collapse train`, and what the
// generational loop calls. Builds (or reuses) the training artifact, runs the resumable loop, and writes the
// best epoch's weights as a model directory in the family and layout of its input (models/model-dir.ts).
import { sha256 } from '../../util/sha256.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readBlocks } from '../../datasets/corpus.js';
import { loadTrainingSource, modelSha256, writeFinetuned } from '../../models/model-dir.js';
import { cachedArtifact, checkCompatible, describeDropout, loadArtifact, sourceSha256, type LoadedArtifact } from '../../models/train/artifact.js';
import { TrainEngine } from '../../models/train/engine.js';
import { DEFAULT_ADAMW, type DecayExclude, type OptimizerName, type ScheduleName } from '../../models/train/optimizers.js';
import type { TensorMap } from '../../models/train/tensor-file.js';
import { ensureDir, writeDirAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import type { Provider } from '../../models/session.js';
import { checkModelFits, checkWritable } from '../preflight.js';
import { checkNumber } from './cli-options.js';
import { checkResumeKey, trainLoop, type BlockCorpus } from './loop.js';
import { keyChanges } from '../../util/resume-key.js';

export interface FinetuneOptions {
  /** Model directory to fine-tune (its weights are the starting point). */
  model: string;
  /** A prebuilt artifact directory; default: build/reuse one in the artifact cache. */
  artifact?: string;
  train: string | BlockCorpus;
  valid?: string | BlockCorpus | null;
  out: string;
  epochs: number;
  batchSize: number;
  microBatchSize: number;
  lr: number;
  optimizer?: OptimizerName;
  weightDecay?: number;
  /** Parameters without weight decay (default bias-and-norm, the HF Trainer; the paper's code: none). */
  decayExclude?: DecayExclude;
  beta1?: number;
  beta2?: number;
  eps?: number;
  schedule?: ScheduleName;
  warmupSteps?: number;
  /** cosine-epoch's floor (CosineAnnealingLR's eta_min). */
  minLr?: number;
  maxGradNorm?: number | null;
  /** Dropout after the attention output projection and fc2 (HF OPT `dropout`; default 0). OPT models only. */
  dropout?: number;
  /** Dropout on the attention probabilities (HF OPT `attention_dropout`; default 0). */
  attentionDropout?: number;
  seed?: number;
  threads?: number;
  provider?: Provider;
  checkpointEvery?: number;
  /** Fused grad+update graph when --batch-size equals --micro-batch-size (a cross-check: slower, more peak memory). */
  fusedStep?: boolean;
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

function corpusOf(c: string | BlockCorpus, flag: string): BlockCorpus {
  if (typeof c !== 'string') return c;
  if (!existsSync(join(c, 'manifest.json'))) throw new Error(`${flag} ${c}: not a corpus directory (no manifest.json); create one with \`collapse prepare\``);
  const b = readBlocks(c);
  return { ids: b.ids, rows: b.rows, blockSize: b.blockSize };
}

/** Options that do not change the trained weights (where and how fast), left out of the resume key. */
const NOT_IN_KEY = ['model', 'artifact', 'train', 'valid', 'out', 'threads', 'provider', 'checkpointEvery', 'artifactCache', 'haltAfterSteps', 'log'] as const;

/**
 * What a checkpoint or a finished output must have been made with to be reused: the model's sha256, the
 * validation data's, and every other option with its default resolved. Options added to FinetuneOptions later
 * are covered without touching this function (only NOT_IN_KEY lists exceptions).
 */
const LATER_DEFAULTS: Record<string, unknown> = { decayExclude: 'bias-and-norm', minLr: 0, dropout: 0, attentionDropout: 0 };

export function finetuneResumeKey(o: FinetuneOptions, valid: BlockCorpus | null, modelSha: string): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...o };
  for (const k of NOT_IN_KEY) delete rest[k];
  const defaults = { optimizer: 'adamw', weightDecay: DEFAULT_ADAMW.weightDecay, beta1: DEFAULT_ADAMW.beta1, beta2: DEFAULT_ADAMW.beta2, eps: DEFAULT_ADAMW.eps, schedule: 'linear', warmupSteps: 0, maxGradNorm: null, seed: 0, fusedStep: false };
  const resolved: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) resolved[k] = v;
  // Options added later enter the key only when they differ from their default, so that outputs and checkpoints
  // made before they existed still match.
  for (const [k, d] of Object.entries(LATER_DEFAULTS)) if (resolved[k] === d) delete resolved[k];
  const validSha = valid ? sha256(new Uint8Array(valid.ids.buffer, valid.ids.byteOffset, valid.ids.byteLength)) : null;
  return { model: modelSha, valid: validSha, ...Object.fromEntries(Object.entries(resolved).sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** Checkpoint directory of a run writing `out` (beside it, so that `out` itself appears only when complete). */
export const checkpointDirOf = (out: string): string => `${resolve(out)}.ckpt`;

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  checkNumber('--epochs', o.epochs, { int: true, min: 1 });
  checkNumber('--micro-batch-size', o.microBatchSize, { int: true, min: 1 });
  checkNumber('--batch-size', o.batchSize, { int: true, min: o.microBatchSize });
  if (o.batchSize % o.microBatchSize !== 0) throw new Error(`--batch-size ${o.batchSize} must be a multiple of --micro-batch-size ${o.microBatchSize}`);
  checkNumber('--lr', o.lr, { gt: 0 });
  if (o.warmupSteps !== undefined) checkNumber('--warmup-steps', o.warmupSteps, { int: true, min: 0 });
  if (o.checkpointEvery !== undefined) checkNumber('--checkpoint-every', o.checkpointEvery, { int: true, min: 0 });
  if (o.maxGradNorm !== undefined && o.maxGradNorm !== null) checkNumber('--max-grad-norm', o.maxGradNorm, { gt: 0 });
  if (o.minLr !== undefined) checkNumber('--min-lr', o.minLr, { min: 0, max: o.lr });
  if (o.schedule === 'cosine-epoch' && (o.warmupSteps ?? 0) > 0) throw new Error(`--schedule cosine-epoch has no warmup (CosineAnnealingLR); drop --warmup-steps ${o.warmupSteps}`);
  for (const [flag, v] of [['--dropout', o.dropout], ['--attention-dropout', o.attentionDropout]] as const)
    if (v !== undefined && !(v >= 0 && v < 1)) throw new Error(`${flag} ${v}: expected a probability in [0, 1)`);
  const out = resolve(o.out);
  checkWritable(out, '--out');
  if (existsSync(out) && !existsSync(join(out, SUMMARY)))
    throw new Error(`--out ${out} exists and is not a finished training output; choose another --out or delete it`);
  const train = corpusOf(o.train, '--train');
  const valid = o.valid ? corpusOf(o.valid, '--valid') : null;
  const key = finetuneResumeKey(o, valid, modelSha256(o.model));
  if (existsSync(join(out, SUMMARY))) {
    const s = readJsonFile(join(out, SUMMARY)) as FinetuneResult & { resumeKey?: Record<string, unknown> };
    const changes = s.resumeKey ? keyChanges(s.resumeKey, key) : [];
    if (changes.length)
      throw new Error(`--out ${out} was trained with other options (${changes.join('; ')}); choose another --out, or delete it to train again`);
    // The model is committed: a checkpoint left by a kill between the rename and this point is no longer needed.
    rmSync(checkpointDirOf(out), { recursive: true, force: true });
    log(`${out} is already trained (${SUMMARY}); delete it to train again`);
    return { ...s, outDir: out };
  }
  checkResumeKey(checkpointDirOf(out), key);
  const src = loadTrainingSource(o.model);
  const limits = { model: o.model, positions: src.md.config.maxPositions ?? undefined, vocabSize: src.md.config.vocabSize ?? undefined };
  checkModelFits(limits, [
    { flag: '--train', path: typeof o.train === 'string' ? o.train : '(in memory)', blockSize: train.blockSize, ids: train.ids },
    ...(valid ? [{ flag: '--valid', path: typeof o.valid === 'string' ? o.valid : '(in memory)', blockSize: valid.blockSize, ids: valid.ids }] : []),
  ]);
  const optimizer = o.optimizer ?? 'adamw';
  const art: LoadedArtifact = o.artifact
    ? loadArtifact(o.artifact)
    : await cachedArtifact(src, {
        microBatch: o.microBatchSize,
        blockSize: train.blockSize,
        optimizer: {
          name: optimizer,
          weightDecay: o.weightDecay ?? DEFAULT_ADAMW.weightDecay,
          beta1: o.beta1 ?? DEFAULT_ADAMW.beta1,
          beta2: o.beta2 ?? DEFAULT_ADAMW.beta2,
          eps: o.eps ?? DEFAULT_ADAMW.eps,
          decayExclude: o.decayExclude ?? 'bias-and-norm',
        },
        dropout: { hidden: o.dropout ?? 0, attention: o.attentionDropout ?? 0 },
      }, o.artifactCache, log);
  if (o.artifact && art.manifest.microBatch !== o.microBatchSize)
    throw new Error(`--artifact ${o.artifact} was built for micro-batch ${art.manifest.microBatch}, not --micro-batch-size ${o.microBatchSize}`);
  checkCompatible(art, src);
  log(`training: ${describeDropout(src.kind, art.manifest.dropout?.rates ?? { hidden: o.dropout ?? 0, attention: o.attentionDropout ?? 0 })}`);
  // Shared, not copied (saves a weights-sized copy): the engine updates them in place; src is not reused.
  const weights: TensorMap = new Map(art.manifest.params.map((p) => [p.name, src.weights.get(p.name)!]));
  const engine = await TrainEngine.open(art.graphs, art.spec, weights, null, { threads: o.threads, provider: o.provider });
  try {
    const res = await trainLoop(engine, train, valid, {
      epochs: o.epochs, batchSize: o.batchSize, lr: o.lr,
      // minLr only where it means something, so other schedules keep their checkpoint fingerprints.
      schedule: { name: o.schedule ?? 'linear', warmupSteps: o.warmupSteps ?? 0, ...(o.schedule === 'cosine-epoch' ? { minLr: o.minLr ?? 0 } : {}) },
      maxGradNorm: o.maxGradNorm ?? null, seed: o.seed ?? 0, padId: art.manifest.padId,
      checkpointDir: checkpointDirOf(out), checkpointEvery: o.checkpointEvery ?? 50,
      fusedStep: o.fusedStep ?? false, haltAfterSteps: o.haltAfterSteps, resumeKey: key, label: `train ${o.out}`, log,
    });
    const result: FinetuneResult = { bestEpoch: res.bestEpoch, validLosses: res.validLosses, trainLosses: res.trainLosses, steps: res.steps, outDir: out };
    await writeDirAtomic(out, (tmp) => {
      writeFinetuned(src, res.bestWeights, tmp, log);
      writeJsonAtomic(join(tmp, SUMMARY), {
        ...result, outDir: undefined,
        source: { dir: resolve(src.dir), sha256: sourceSha256(src) }, artifact: art.dir, resumeKey: key,
        options: { ...o, train: typeof o.train === 'string' ? o.train : '(in memory)', valid: typeof o.valid === 'string' ? o.valid : o.valid ? '(in memory)' : null, log: undefined },
      });
    });
    rmSync(checkpointDirOf(out), { recursive: true, force: true });
    log(`best epoch ${res.bestEpoch + 1} (validation loss ${res.validLosses[res.bestEpoch]!.toFixed(4)}); model written to ${out}`);
    return result;
  } finally {
    await engine.release();
  }
}
