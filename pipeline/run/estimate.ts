// Before a long run: how long will it take? A short warm-up measures the three costs that dominate a
// generation on this machine (a training micro-step and an optimizer update, a beam-search batch of a few
// decoding steps, and scoring one batch), then scales them by the configuration's counts.
import { readBlocks } from '../../datasets/block-set.js';
import { generationPlan, loadTrainingSource, openModelDir } from '../../models/model-dir/index.js';
import { cachedArtifact } from '../../models/train/artifact.js';
import { TrainEngine } from '../../models/train/engine.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { openScorer, scoreBlocks } from '../eval/perplexity.js';
import { openDecoder } from '../generate/decoder/index.js';
import { resolveGenerateOptions } from '../generate/options.js';
import { decodeBatch } from '../generate/generate-corpus.js';
import { runSettings, type RunConfig } from './config.js';
import { artifactOptimizer } from '../train/finetune.js';
import { clipThreshold, resolveTrainOptions } from '../train/options.js';
import type { RunLayout } from './layout.js';

export interface Estimate {
  warmupSeconds: number;
  measured: { microStep: number; update: number; generateBatch: number; scorePerSample: number };
  /** Pretraining of a tiny base and the zero-shot scoring, before the generations. */
  setupSeconds: number;
  /** Per generation of each setting (settings differ in their epochs). */
  /** Per generation of each setting, averaged over the generations (accumulate's corpus grows each generation). */
  perGeneration: { setting: string; train: number; generate: number; select: number; evaluate: number; total: number }[];
  generations: number;
  seeds: number;
  totalSeconds: number;
}

const now = (): number => performance.now() / 1000;

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = now();
  const r = await fn();
  return [now() - t0, r];
}

export function formatDuration(s: number): string {
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min`;
  const h = Math.floor(s / 3600);
  return h >= 48 ? `${(s / 86400).toFixed(1)} days` : `${h} h ${Math.round((s - h * 3600) / 60)} min`;
}

export async function estimateRun(cfg: RunConfig, layout: RunLayout, model: string, opts: { seeds: number; shards: number }): Promise<Estimate> {
  const t0 = now();
  const t = cfg.train;
  const h = resolveTrainOptions(cfg.train);
  const threads = cfg.threads || undefined;
  const train = readBlocks(layout.split('train'));
  const valid = readBlocks(layout.split('valid'));
  const test = readBlocks(layout.split('test'));
  const T = train.blockSize;

  // Training: a warm-up step, then a timed one.
  const art = await cachedArtifact(loadTrainingSource(model), {
    microBatch: t.microBatchSize,
    blockSize: T,
    optimizer: artifactOptimizer(h), // as finetune builds it, so that the run reuses this artifact
    dropout: { hidden: h.dropout, attention: h.attentionDropout },
  });
  const [trainOpen, engine] = await time(() => TrainEngine.open(art.graphs, art.spec, art.initialWeights(), null, { threads, provider: cfg.provider }));
  const B = t.microBatchSize;
  const inputIds = new BigInt64Array(B * T);
  for (let i = 0; i < B * T; i++) inputIds[i] = BigInt(train.ids[i % train.ids.length]!);
  const batch = { inputIds, attentionMask: new BigInt64Array(B * T).fill(1n), labels: inputIds.slice() };
  // The first micro-batch of a step writes the gradients, later ones run the accumulating graph: a step with more
  // than one micro-batch times both (the warm-up step opens both sessions).
  const microPerStep = Math.ceil(t.batchSize / B);
  const step = async () => {
    const [first] = await time(() => engine.accumulate(batch, 1 / (B * T), { seed: 0, step: 0, micro: 0 }));
    const [later] = microPerStep > 1 ? await time(() => engine.accumulate(batch, 1 / (B * T), { seed: 0, step: 0, micro: 1 })) : [0];
    const [update] = await time(() => engine.applyUpdate(1e-12, clipThreshold(h))); // as the loop calls it (clipping reads every gradient)
    return { first, later, update };
  };
  await step();
  const { first, later, update } = await step();
  await engine.release();

  // Generation: one batch of prompts, decoded for 1 and for 8 steps after a warm-up call; the difference
  // separates the per-step cost from the prefill, and both scale to the configured continuation length.
  const g = cfg.generate;
  const gm = generationPlan(openModelDir(model));
  const [decoderOpen, decoder] = await time(() => openDecoder(gm.graph, { threads, provider: cfg.provider, kvHints: gm.kvHints, shortlist: g.strategy === 'beam' }));
  const n = Math.min(g.batchSize, train.rows);
  const prompts = Array.from({ length: n }, (_, i) => train.ids.slice(i * T, (i + 1) * T));
  const keys = prompts.map((_, i) => i);
  const decode = (steps: number) => decodeBatch(decoder, prompts, keys, resolveGenerateOptions({ ...g, newTokens: steps, minNewTokens: steps }), gm);
  const k = Math.min(8, g.newTokens);
  await decode(k);
  const [t1] = await time(() => decode(1));
  const [tk] = await time(() => decode(k));
  await decoder.release();
  const perStep = k > 1 ? Math.max(0, (tk - t1) / (k - 1)) : t1;
  const generateBatch = Math.max(0, t1 - perStep) + perStep * g.newTokens;

  // Scoring: a warm-up batch, then one timed batch of real blocks.
  const scored = Math.min(8, test.rows);
  const [scorerOpen, scorer] = await time(() => openScorer(model, { threads, provider: cfg.provider }));
  const sample = { ids: test.ids.subarray(0, scored * T), rows: scored, blockSize: T };
  await scoreBlocks(scorer, sample);
  const [scoreSecs] = await time(() => scoreBlocks(scorer, sample));
  await scorer.close();
  const scorePerSample = scoreSecs / scored;

  const microStep = (first + (microPerStep - 1) * later) / microPerStep;
  // Pretraining blocks are longer (pretrainBlockSize): counted in task-sized blocks of the same tokens.
  const pre = cfg.model.pretrainEpochs > 0 ? readBlocks(layout.split('pretrain')) : null;
  const pretrainRows = pre ? Math.ceil((pre.rows * pre.blockSize) / T) : 0;
  const costs: StepCosts = { microStep, update, generateBatch, scorePerSample, trainOpen, decoderOpen, scorerOpen };
  const rows = { train: train.rows, valid: valid.rows, test: test.rows };
  // Opening the sessions is a fixed cost of every training run, generation and scoring pass.
  const setupSeconds =
    (cfg.model.pretrainEpochs > 0 ? trainOpen + cfg.model.pretrainEpochs * epochSeconds(cfg, costs, pretrainRows, 0) : 0) + scorerOpen + test.rows * scorePerSample;
  const perGeneration = generationSeconds(cfg, costs, rows, opts.shards);
  const est: Estimate = {
    warmupSeconds: now() - t0,
    measured: { microStep, update, generateBatch, scorePerSample },
    setupSeconds,
    perGeneration,
    generations: cfg.generations,
    seeds: opts.seeds,
    totalSeconds: setupSeconds + perGeneration.reduce((a, p) => a + p.total, 0) * cfg.generations * opts.seeds,
  };
  writeJsonAtomic(layout.estimate, est);
  return est;
}

/** What the warm-up measured (seconds): a training micro-step and update, a decoding batch, one scored block, session opens. */
export interface StepCosts {
  microStep: number;
  update: number;
  generateBatch: number;
  scorePerSample: number;
  trainOpen: number;
  decoderOpen: number;
  scorerOpen: number;
}

/** One epoch over `rows` blocks and the scoring of `validRows` validation blocks. */
function epochSeconds(cfg: RunConfig, c: StepCosts, rows: number, validRows: number): number {
  const microPerStep = Math.ceil(cfg.train.batchSize / cfg.train.microBatchSize);
  return Math.ceil(rows / cfg.train.batchSize) * (microPerStep * c.microStep + c.update) + validRows * c.scorePerSample;
}

/** Each setting's seconds per generation from the measured costs, averaged over the run's generations. */
export function generationSeconds(cfg: RunConfig, c: StepCosts, rows: { train: number; valid: number; test: number }, shards = 1): Estimate['perGeneration'] {
  const g = cfg.generate;
  const G = cfg.generations;
  const evaluateSecs = 2 * c.scorerOpen + (rows.train + rows.test) * c.scorePerSample;
  return runSettings(cfg).map((s) => {
    // accumulate trains generation k on the original blocks and k generations of data: (G + 1) / 2 times on average.
    const rowsFactor = s.mix.mode === 'accumulate' ? (G + 1) / 2 : 1;
    const trainSecs = c.trainOpen + s.epochs * epochSeconds(cfg, c, Math.round(rows.train * rowsFactor), rows.valid);
    // Beam search returns its k best beams at no extra cost; sampling draws k sequences per prompt.
    const k = s.select?.candidates ?? 1;
    const generateSecs = c.decoderOpen + ((g.strategy === 'sample' ? k : 1) * Math.ceil(rows.train / g.batchSize) * c.generateBatch) / shards;
    // The model verifier scores k candidates per prompt, each with its prompt (twice a block's length).
    const selectSecs = s.select?.verifier === 'model' ? c.scorerOpen + 2 * k * rows.train * c.scorePerSample : 0;
    return { setting: s.name, train: trainSecs, generate: generateSecs, select: selectSecs, evaluate: evaluateSecs, total: trainSecs + generateSecs + selectSecs + evaluateSecs };
  });
}

export function describeEstimate(e: Estimate): string {
  const per = e.perGeneration
    .map((p) => `${e.perGeneration.length > 1 ? `${p.setting}: ` : ''}train ${formatDuration(p.train)}, generate ${formatDuration(p.generate)}, ${p.select > 0 ? `select ${formatDuration(p.select)}, ` : ''}evaluate ${formatDuration(p.evaluate)}`)
    .join('; ');
  return (
    `estimate: ${formatDuration(e.totalSeconds)} for ${e.perGeneration.length} setting(s) x ${e.seeds} seed(s) x ${e.generations} generations ` +
    `(${e.setupSeconds >= 1 ? `pretraining and zero-shot ${formatDuration(e.setupSeconds)}; ` : ''}per generation: ${per}; from a ${e.warmupSeconds.toFixed(0)} s warm-up)`
  );
}
