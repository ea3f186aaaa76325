// The paper's VAE experiment (VAE_experiments.ipynb in Zakahler/curse_recurse): generation 0 is a VAE trained on
// real digits; generation k + 1 is a fresh VAE trained on images that generation k's decoder makes from fresh
// N(0, I) latents, one decoded batch for every real batch. Each generation is measured by its decoded samples:
// where the ORIGINAL (generation-0) encoder puts them (trace and log-determinant of the covariance of their
// latent means), how far apart they are in pixel space, and the ELBO of the generation's VAE on real held-out
// digits. Model collapse: the means narrow, the samples grow alike, the real-data ELBO worsens.
//
// Every generation draws from its own generators (runRng(seed, 2g) for training, runRng(seed, 2g + 1) for the
// measurements), so a resumed run reproduces an uninterrupted one bit for bit.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readJsonFile } from '../util/json.js';
import { join } from 'node:path';
import type { ImageSet } from '../datasets/digit-images.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { Rng } from '../util/rng.js';
import { progress } from '../util/progress.js';
import { runRng } from './stats.js';
import { checkArch, initParams, paramSpecs, type VaeArch, type VaeParams } from './vae-graph.js';
import { covariance, latentSpread, meanPairwiseDistance, principalAxes } from './vae-metrics.js';
import { PAPER_ADAM, VaeSessions, VaeTrainer } from './vae-train.js';

export interface VaeOptions {
  capacity: number;
  latent: number;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  beta: number;
  /** Generations after generation 0. */
  generations: number;
  seed: number;
  /** Real images held out for the ELBO (taken by a fixed permutation, the same for every seed). */
  holdout: number;
  /** Decoded samples measured per generation; the first 100 make the grid. */
  evalSamples: number;
  threads?: number;
  quiet?: boolean;
  /** Directory for per-generation checkpoints (weights + measurements); with `resume`, finished generations are read back. */
  checkpointDir?: string;
  resume?: boolean;
}

export interface VaeGeneration {
  generation: number;
  /** Mean training loss per image over the last epoch (BCE + beta KL, nats). */
  trainLoss: number;
  /** ELBO per image on the real held-out digits (one reparameterised sample), and its two terms. */
  elbo: number;
  recon: number;
  kl: number;
  /** Covariance of the original encoder's latent means of this generation's samples. */
  latentTrace: number;
  latentLogDet: number;
  /** Standard deviation of all latent-mean values (the notebook's printed number). */
  latentStd: number;
  /** Mean pairwise Euclidean pixel distance of the samples. */
  diversity: number;
  seconds: number;
  /** The first (up to) 100 samples [n, H, W]. */
  grid: Float32Array;
  /** Original-encoder latent means of all measured samples [evalSamples, L] (the grid's come first). */
  means: Float32Array;
}

export interface VaeResult {
  options: Omit<VaeOptions, 'quiet' | 'checkpointDir' | 'resume' | 'threads'> & { data: string; images: number; train: number; height: number; width: number };
  /** The same measurements on the real held-out digits, for scale. */
  reference: { latentTrace: number; latentLogDet: number; latentStd: number; diversity: number; images: number };
  /** Original-encoder means of the held-out digits [n, L], and the two principal axes (with their centre) of
   *  those means: figures project every generation on them. */
  realMeans: Float32Array;
  axes: { center: number[]; vectors: number[][]; variances: number[] };
  generations: VaeGeneration[];
  resumedGenerations: number;
}

/** Settings a run starts from; flags override them. `mnist` is the notebook's 28x28 model and training (30 epochs,
 *  batch 256, Adam 1e-3 with weight decay 1e-5, latent 20, capacity 64, beta 1, 5 generations after the first).
 *  `digits` keeps all of it but the batch: 1,500 training images make 6 batches of 256 per epoch, 180 Adam steps
 *  per generation against the notebook's 7,050; batches of 32 give 1,410 steps (real ELBO -24.6 vs -25.2 nats). */
export const VAE_PRESETS = {
  digits: { height: 8, width: 8, capacity: 64, latent: 20, epochs: 30, batch: 32, lr: 1e-3, weightDecay: 1e-5, beta: 1, generations: 5, holdout: 297, evalSamples: 1000 },
  mnist: { height: 28, width: 28, capacity: 64, latent: 20, epochs: 30, batch: 256, lr: 1e-3, weightDecay: 1e-5, beta: 1, generations: 5, holdout: 10000, evalSamples: 1000 },
} as const;
export type VaePreset = keyof typeof VAE_PRESETS;

/** The preset for images of this size, or an error that says which sizes have one. */
export function presetFor(data: { height: number; width: number; source: string }, name?: string): VaePreset {
  const names = Object.keys(VAE_PRESETS) as VaePreset[];
  if (name !== undefined && !names.includes(name as VaePreset)) throw new Error(`--preset ${name}: choose one of ${names.join(', ')}`);
  const found = name ? (name as VaePreset) : names.find((n) => VAE_PRESETS[n].height === data.height && VAE_PRESETS[n].width === data.width);
  if (!found) return 'digits'; // other sizes (multiples of 4) run with the digits settings
  const p = VAE_PRESETS[found];
  if (p.height !== data.height || p.width !== data.width) {
    throw new Error(`--preset ${found} is for ${p.height}x${p.width} images, but ${data.source} holds ${data.height}x${data.width} images; drop --preset or use matching data`);
  }
  return found;
}

export const GRID = 100;
const HOLDOUT_SEED = 0x0d161751;

function normals(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

/** Train/held-out split by a fixed permutation (independent of --seed, so ELBOs of different seeds compare). */
export function splitImages(data: ImageSet, holdout: number): { train: Float32Array; test: Float32Array; nTrain: number } {
  const size = data.height * data.width;
  if (!Number.isInteger(holdout) || holdout < 1 || holdout >= data.count) {
    throw new Error(`--holdout: ${holdout} must be an integer from 1 to ${data.count - 1} (the data has ${data.count} images)`);
  }
  const perm = new Rng(HOLDOUT_SEED).permutation(data.count);
  const nTrain = data.count - holdout;
  const train = new Float32Array(nTrain * size);
  const test = new Float32Array(holdout * size);
  perm.forEach((src, i) => (i < nTrain ? train : test).set(data.pixels.subarray(src * size, (src + 1) * size), (i < nTrain ? i : i - nTrain) * size));
  return { train, test, nTrain };
}

function checkOptions(o: VaeOptions): void {
  const ints: [string, number, number][] = [['epochs', o.epochs, 1], ['batch', o.batch, 1], ['generations', o.generations, 0], ['eval-samples', o.evalSamples, 2]];
  for (const [flag, v, min] of ints) if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: ${v} is not an integer >= ${min}`);
  if (!(o.lr > 0)) throw new Error(`--lr: ${o.lr} must be positive`);
  if (!(o.weightDecay >= 0)) throw new Error(`--weight-decay: ${o.weightDecay} must be >= 0`);
  if (!(o.beta >= 0)) throw new Error(`--beta: ${o.beta} must be >= 0`);
}

// ------------------------------------------------------------------------------------------- checkpoints

function flatten(params: VaeParams, arch: VaeArch): Uint8Array {
  const parts = paramSpecs(arch).map((p) => params.get(p.name)!);
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return new Uint8Array(out.buffer);
}

function unflatten(bytes: Uint8Array, arch: VaeArch, file: string): VaeParams {
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: VaeParams = new Map();
  let o = 0;
  for (const p of paramSpecs(arch)) {
    const n = p.shape.reduce((x, y) => x * y, 1);
    out.set(p.name, all.slice(o, o + n));
    o += n;
  }
  if (o !== all.length) throw new Error(`${file}: ${all.length} weights, the architecture has ${o}; delete the checkpoint directory or drop --resume`);
  return out;
}

interface Checkpoint {
  fingerprint: string;
  generation: Omit<VaeGeneration, 'grid' | 'means'> & { grid: number[]; means: number[] };
}

function saveGeneration(dir: string, fingerprint: string, gen: VaeGeneration, params: VaeParams, arch: VaeArch): void {
  const k = gen.generation;
  writeFileAtomic(join(dir, `gen-${k}.weights.f32`), flatten(params, arch));
  // The measurements last: a generation counts as done only once its weights are on disk.
  const c: Checkpoint = { fingerprint, generation: { ...gen, grid: [...gen.grid], means: [...gen.means] } };
  writeJsonAtomic(join(dir, `gen-${k}.json`), c);
}

function loadGeneration(dir: string, fingerprint: string, k: number, arch: VaeArch): { gen: VaeGeneration; params: VaeParams } | null {
  const meta = join(dir, `gen-${k}.json`);
  const weights = join(dir, `gen-${k}.weights.f32`);
  if (!existsSync(meta) || !existsSync(weights)) return null;
  const c = readJsonFile<Checkpoint>(meta);
  if (c.fingerprint !== fingerprint) {
    throw new Error(`--resume: ${meta} was made with other options or data; rerun with the same options, or without --resume to start over`);
  }
  const gen: VaeGeneration = { ...c.generation, grid: Float32Array.from(c.generation.grid), means: Float32Array.from(c.generation.means) };
  return { gen, params: unflatten(readFileSync(weights), arch, weights) };
}

// ------------------------------------------------------------------------------------------- the recursion

export async function simulateVae(data: ImageSet, o: VaeOptions): Promise<VaeResult> {
  checkOptions(o);
  const arch: VaeArch = { height: data.height, width: data.width, capacity: o.capacity, latent: o.latent };
  checkArch(arch);
  const size = data.height * data.width;
  const { train, test, nTrain } = splitImages(data, o.holdout);
  const nTest = o.holdout;
  const L = o.latent;
  const optimizer = { ...PAPER_ADAM, weightDecay: o.weightDecay };
  const sessions = await VaeSessions.open(arch, { lr: o.lr, beta: o.beta, optimizer }, o.threads);
  const batchesPerEpoch = Math.ceil(nTrain / o.batch);
  const { quiet: _quiet, checkpointDir: _dir, resume: _resume, threads: _threads, ...kept } = o;
  const fingerprint = JSON.stringify({ ...kept, generations: undefined, source: data.source, count: data.count, h: data.height, w: data.width });
  if (o.checkpointDir) mkdirSync(o.checkpointDir, { recursive: true });

  const totalSteps = (o.generations + 1) * o.epochs * batchesPerEpoch;
  const bar = o.quiet ? null : progress('vae', totalSteps, { unit: 'steps', logEvery: Math.max(1, Math.floor(totalSteps / 20)) });
  const generations: VaeGeneration[] = [];
  let original: VaeParams | null = null;
  let previous: VaeParams | null = null;
  let resumed = 0;
  try {
    for (let g = 0; g <= o.generations; g++) {
      if (o.resume && o.checkpointDir) {
        const done = loadGeneration(o.checkpointDir, fingerprint, g, arch);
        if (done) {
          generations.push(done.gen);
          original ??= done.params;
          previous = done.params;
          resumed++;
          bar?.update((g + 1) * o.epochs * batchesPerEpoch, { gen: g, resumed: 'yes' });
          continue;
        }
      }
      const t0 = performance.now();
      const rng = runRng(o.seed, 2 * g);
      const trainer = new VaeTrainer(sessions, initParams(arch, rng));
      let epochLoss = 0;
      for (let e = 0; e < o.epochs; e++) {
        epochLoss = 0;
        const perm = rng.permutation(nTrain);
        for (let b = 0; b < batchesPerEpoch; b++) {
          const rows = Math.min(o.batch, nTrain - b * o.batch);
          let x: Float32Array;
          if (previous) {
            // The notebook keeps iterating the real loader and swaps each batch for as many decoded images.
            x = await sessions.decodeImages(previous, normals(rng, rows * L));
          } else {
            x = new Float32Array(rows * size);
            for (let i = 0; i < rows; i++) x.set(train.subarray(perm[b * o.batch + i]! * size, (perm[b * o.batch + i]! + 1) * size), i * size);
          }
          const loss = await trainer.trainStep(x, normals(rng, rows * L));
          if (!Number.isFinite(loss)) throw new Error(`generation ${g}, epoch ${e + 1}: the loss is ${loss}; lower --lr`);
          epochLoss += loss;
          bar?.update((g * o.epochs + e) * batchesPerEpoch + b + 1, { gen: g, loss: (loss / rows).toFixed(2) });
        }
      }
      const params = trainer.params;
      original ??= params;

      // Measurements, from their own generator.
      const mrng = runRng(o.seed, 2 * g + 1);
      const samples = await sessions.decodeImages(params, normals(mrng, o.evalSamples * L));
      const { mu } = await sessions.encodeImages(original, samples);
      const spread = latentSpread(mu, L);
      const { recon, kl } = await sessions.elboTerms(params, test, normals(mrng, nTest * L));
      let r = 0;
      let k = 0;
      for (let i = 0; i < nTest; i++) {
        r += recon[i]! / nTest;
        k += kl[i]! / nTest;
      }
      const nGrid = Math.min(GRID, o.evalSamples);
      const gen: VaeGeneration = {
        generation: g,
        trainLoss: epochLoss / nTrain,
        elbo: -(r + k),
        recon: r,
        kl: k,
        latentTrace: spread.trace,
        latentLogDet: spread.logDet,
        latentStd: spread.std,
        diversity: meanPairwiseDistance(samples, size),
        seconds: (performance.now() - t0) / 1000,
        grid: samples.slice(0, nGrid * size),
        means: mu,
      };
      generations.push(gen);
      if (o.checkpointDir) saveGeneration(o.checkpointDir, fingerprint, gen, params, arch);
      previous = params;
    }
    const realMu = (await sessions.encodeImages(original!, test)).mu;
    const realSpread = latentSpread(realMu, L);
    const axes = principalAxes(covariance(realMu, L), L, Math.min(2, L));
    const center = Array.from({ length: L }, (_, j) => {
      let m = 0;
      for (let i = 0; i < nTest; i++) m += realMu[i * L + j]! / nTest;
      return m;
    });
    return {
      options: { ...kept, data: data.source, images: data.count, train: nTrain, height: data.height, width: data.width },
      reference: {
        latentTrace: realSpread.trace,
        latentLogDet: realSpread.logDet,
        latentStd: realSpread.std,
        diversity: meanPairwiseDistance(test.subarray(0, Math.min(nTest, o.evalSamples) * size), size),
        images: Math.min(nTest, o.evalSamples),
      },
      generations,
      resumedGenerations: resumed,
      realMeans: realMu,
      axes: { center, vectors: axes.vectors.map((v) => [...v]), variances: axes.values },
    };
  } finally {
    bar?.stop();
    await sessions.release();
  }
}
