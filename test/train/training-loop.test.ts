import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TrainEngine } from '../../models/train/engine.js';
import { fuseStep } from '../../models/train/fuse.js';
import { buildFlatUpdateGraph, buildNormGraph, DEFAULT_ADAMW, type OptimizerConfig } from '../../models/train/optimizers.js';
import { TrainingHalted, trainLoop, type LoopOptions } from '../../pipeline/train/training-loop.js';
import { toyCorpus, toyGradGraph, toyNllGraph, toyParams, toyWeights } from './toy-model.js';

const V = 7, T = 6, MICRO = 2;
const chunk = 10; // the flat update runs W (49 values) in 5 slices
const adamw: OptimizerConfig = { ...DEFAULT_ADAMW, weightDecay: 0.01, noDecay: ['b'] };
const train = toyCorpus(V, 10, T, 5), valid = toyCorpus(V, 5, T, 6);
const tmp = mkdtempSync(join(tmpdir(), 'loop-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function engine(cfg: OptimizerConfig = adamw, micro = MICRO) {
  const params = toyParams(V);
  const grad = toyGradGraph(V, micro, T);
  return TrainEngine.open(
    { grad, update: buildFlatUpdateGraph(cfg), norm: buildNormGraph(params), fused: fuseStep(grad, params, cfg), eval: toyNllGraph(V, micro, T) },
    { params, microBatch: micro, blockSize: T, optimizer: cfg },
    toyWeights(V, 1), null, { threads: 1, updateChunk: chunk },
  );
}

const opts = (dir: string | null, extra: Partial<LoopOptions> = {}): LoopOptions => ({
  epochs: 2, batchSize: 4, lr: 0.05, schedule: { name: 'linear', warmupSteps: 1 }, maxGradNorm: 1, seed: 11, padId: null,
  checkpointDir: dir, checkpointEvery: 2, fusedStep: true, ...extra,
});

describe('trainLoop', () => {
  it('validation loss equals a naive JS mean NLL of the bigram model, and training lowers it', async () => {
    const e = await engine();
    const naive = (w: Map<string, Float32Array>) => {
      const W = w.get('W')!, b = w.get('b')!;
      let s = 0, n = 0;
      for (let r = 0; r < valid.rows; r++)
        for (let t = 0; t + 1 < T; t++) {
          const x = valid.ids[r * T + t]!, y = valid.ids[r * T + t + 1]!;
          const lg = Array.from({ length: V }, (_, k) => W[x * V + k]! + b[k]!);
          const mx = Math.max(...lg);
          const lse = mx + Math.log(lg.reduce((a, z) => a + Math.exp(z - mx), 0));
          s += lse - lg[y]!;
          n++;
        }
      return s / n;
    };
    const before = naive(e.weights);
    const res = await trainLoop(e, train, valid, opts(null, { epochs: 3, lr: 0.1 }));
    expect(res.validLosses).toHaveLength(3);
    expect(res.validLosses[2]!).toBeCloseTo(naive(e.weights), 5);
    expect(res.validLosses[2]!).toBeLessThan(before);
    expect(res.steps).toBe(9); // ceil(10 / 4) steps per epoch
    expect(res.validLosses[res.bestEpoch]).toBe(Math.min(...res.validLosses));
  });

  for (const micro of [MICRO, 4]) {
    it(`resumes after an interruption with bitwise-identical weights (${micro === 4 ? 'fused step' : 'accumulation'})`, async () => {
      const a = await engine(adamw, micro);
      const full = await trainLoop(a, train, valid, opts(join(tmp, `full${micro}`)));
      const dir = join(tmp, `halted${micro}`);
      await expect(trainLoop(await engine(adamw, micro), train, valid, opts(dir, { haltAfterSteps: 5 }))).rejects.toBeInstanceOf(TrainingHalted);
      const b = await engine(adamw, micro); // fresh process state: initial weights, zero moments
      const resumed = await trainLoop(b, train, valid, opts(dir));
      expect(resumed.resumedFromStep).toBe(4);
      expect(resumed.validLosses).toEqual(full.validLosses);
      expect(resumed.bestEpoch).toBe(full.bestEpoch);
      for (const [name, w] of a.weights) expect(Buffer.from(b.weights.get(name)!.buffer).equals(Buffer.from(w.buffer))).toBe(true);
      for (const [name, w] of full.bestWeights) expect(resumed.bestWeights.get(name)).toEqual(w);
    });
  }

  it('refuses a checkpoint written with other settings', async () => {
    const dir = join(tmp, 'other');
    await expect(trainLoop(await engine(), train, valid, opts(dir, { haltAfterSteps: 2 }))).rejects.toBeInstanceOf(TrainingHalted);
    await expect(trainLoop(await engine(), train, valid, opts(dir, { lr: 0.01 }))).rejects.toThrow(/other settings.*delete/);
  });

  it('stops with an error naming the step on non-finite values and writes no checkpoint', async () => {
    const sgd: OptimizerConfig = { name: 'sgd', weightDecay: 0, beta1: 0, beta2: 0, eps: 0, noDecay: [] };
    const dir = join(tmp, 'nan');
    await expect(trainLoop(await engine(sgd), train, valid, opts(dir, { lr: Infinity, checkpointEvery: 1 }))).rejects.toThrow(/non-finite .*step 1\b.*--lr/);
    expect(existsSync(join(dir, 'checkpoint.safetensors'))).toBe(false);
    // NaN in the weights shows up as a non-finite loss at the next step.
    const e = await engine(sgd);
    e.weights.get('W')![3] = NaN;
    await expect(trainLoop(e, train, valid, opts(null))).rejects.toThrow(/non-finite (loss|gradient norm) \(NaN\) at optimizer step 1 \(epoch 1, batch 1\/3\)/);
  });
});
