// The paper code's optimizer settings, each against PyTorch's formulas written out naively: torch.optim.AdamW
// with weight decay on every parameter, CosineAnnealingLR(T_max = epochs, eta_min) stepped once per epoch, and
// no gradient clipping when train.maxGradNorm is 0.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../pipeline/run/config.js';
import { clipThreshold, resolveTrainOptions } from '../../pipeline/train/options.js';
import { trainLoop } from '../../pipeline/train/training-loop.js';
import { TrainEngine, type MicroBatch } from '../../models/train/engine.js';
import { buildFlatUpdateGraph, buildNormGraph, noDecayOf, scheduledLr, type OptimizerConfig, type ScheduleConfig } from '../../models/train/optimizers.js';
import { optParamShapes } from '../../models/opt/index.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { toyCorpus, toyGradGraph, toyNllGraph, toyParams, toyWeights } from './toy-model.js';

const V = 7, B = 2, T = 6;
const corpus = toyCorpus(V, 8, T, 3);

function batch(from: number): MicroBatch {
  const inputIds = BigInt64Array.from(corpus.ids.subarray(from * T, (from + B) * T), (x) => BigInt(x));
  return { inputIds, attentionMask: new BigInt64Array(inputIds.length).fill(1n), labels: inputIds.slice() };
}

async function engine(cfg: OptimizerConfig): Promise<TrainEngine> {
  const params = toyParams(V);
  return TrainEngine.open(
    { grad: toyGradGraph(V, B, T), update: buildFlatUpdateGraph(cfg), norm: buildNormGraph(params), eval: toyNllGraph(V, B, T) },
    { params, microBatch: B, blockSize: T, optimizer: cfg },
    toyWeights(V, 1),
    null,
    { threads: 1, updateChunk: 16 },
  );
}

const copy = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()]));

/** torch.optim.AdamW's single-tensor step in float64, optionally after clip_grad_norm_(maxNorm). */
function naiveAdamW(state: { p: Map<string, Float64Array>; m: Map<string, Float64Array>; v: Map<string, Float64Array> }, grads: Map<string, Float32Array>,
  t: number, lr: number, wd: (name: string) => number, maxNorm: number | null): void {
  let sq = 0;
  for (const g of grads.values()) for (const x of g) sq += x * x;
  const coef = maxNorm === null ? 1 : Math.min(1, maxNorm / (Math.sqrt(sq) + 1e-6));
  for (const [name, p] of state.p) {
    const g = grads.get(name)!, m = state.m.get(name)!, v = state.v.get(name)!;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * coef;
      p[i]! *= 1 - lr * wd(name);
      m[i] = 0.9 * m[i]! + 0.1 * gi;
      v[i] = 0.999 * v[i]! + 0.001 * gi * gi;
      p[i]! -= (lr / (1 - 0.9 ** t)) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
    }
  }
}

function naiveState(w: Map<string, Float32Array>) {
  const p = new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));
  return { p, m: new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)])), v: new Map([...p].map(([k, v]) => [k, new Float64Array(v.length)])) };
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float64Array>): number {
  let d = 0;
  for (const [k, x] of b) for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(a.get(k)![i]! - x[i]!));
  return d;
}

describe('weight decay on every parameter (torch.optim.AdamW on model.parameters())', () => {
  it('decayExclude none: biases decay too, matching a naive AdamW over 3 steps', async () => {
    const params = toyParams(V);
    expect(noDecayOf('none', params)).toEqual([]);
    expect(noDecayOf('bias-and-norm', params)).toEqual(['b']);
    const cfg: OptimizerConfig = { name: 'adamw', weightDecay: 0.3, beta1: 0.9, beta2: 0.999, eps: 1e-8, noDecay: noDecayOf('none', params) };
    const e = await engine(cfg), excl = await engine({ ...cfg, noDecay: noDecayOf('bias-and-norm', params) });
    const ref = naiveState(e.weights);
    for (let t = 1; t <= 3; t++) {
      await e.accumulate(batch(0), 1 / 10);
      await excl.accumulate(batch(0), 1 / 10);
      const g = copy(e.accumulated()!);
      await e.applyUpdate(0.05, null);
      await excl.applyUpdate(0.05, null);
      naiveAdamW(ref, g, t, 0.05, () => 0.3, null);
      expect(maxDiff(e.weights, ref.p)).toBeLessThan(1e-6);
    }
    // Excluding the bias from decay changes it (so the comparison above could fail).
    expect(Math.abs(excl.weights.get('b')![0]! - e.weights.get('b')![0]!)).toBeGreaterThan(1e-4);
  });

  it('bias-and-norm on OPT names excludes every bias and LayerNorm weight and nothing else', () => {
    const params = [...optParamShapes(TINY_CONFIG)].map(([name, shape]) => ({ name, shape }));
    const ex = new Set(noDecayOf('bias-and-norm', params));
    for (const p of params) expect(ex.has(p.name), p.name).toBe(p.name.endsWith('.bias') || /layer_norm\.weight$/.test(p.name));
    expect(noDecayOf('none', params)).toEqual([]);
  });
});

/** CosineAnnealingLR's own recursive (chainable) form, as torch.optim.lr_scheduler computes it step after step. */
function torchCosineRecursive(base: number, etaMin: number, tMax: number, epochs: number): number[] {
  const out = [base];
  for (let e = 1; e < epochs; e++) {
    const prev = out[e - 1]!;
    if ((e - 1 - tMax) % (2 * tMax) === 0) out.push(prev + ((base - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    else out.push(((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (prev - etaMin) + etaMin);
  }
  return out;
}

describe('cosine-epoch schedule (CosineAnnealingLR stepped per epoch)', () => {
  const s: ScheduleConfig = { name: 'cosine-epoch', warmupSteps: 0, minLr: 1e-6 };

  it('equals the closed form and torch\'s recursive form, constant within an epoch', () => {
    const base = 2e-5, epochs = 5, stepsPerEpoch = 7;
    const recursive = torchCosineRecursive(base, 1e-6, epochs, epochs);
    for (let e = 0; e < epochs; e++) {
      const closed = 1e-6 + ((base - 1e-6) * (1 + Math.cos((Math.PI * e) / epochs))) / 2;
      for (let k = 0; k < stepsPerEpoch; k++) {
        const lr = scheduledLr(s, base, { step: e * stepsPerEpoch + k, totalSteps: epochs * stepsPerEpoch, epoch: e, epochs });
        expect(lr).toBe(closed);
        expect(Math.abs(lr - recursive[e]!)).toBeLessThan(1e-12 * base);
      }
    }
    // Hand values: epoch 0 is the base rate; epoch 1 of 5 is 1e-6 + 1.9e-5 * (1 + cos(pi/5)) / 2.
    expect(scheduledLr(s, base, { step: 0, totalSteps: 35, epoch: 0, epochs })).toBe(2e-5);
    expect(scheduledLr(s, base, { step: 7, totalSteps: 35, epoch: 1, epochs })).toBeCloseTo(1e-6 + 1.9e-5 * 0.9045084971874737, 18);
    expect(() => scheduledLr({ ...s, warmupSteps: 2 }, base, { step: 0, totalSteps: 35, epoch: 0, epochs })).toThrow(/no warmup/);
  });

  it('the training loop feeds each epoch\'s rate to every step of it, and no clipping (null) from maxGradNorm 0', async () => {
    const cfg = validateConfig({ train: { schedule: 'cosine-epoch', minLr: 1e-3, lr: 1e-2, maxGradNorm: 0, weightDecay: 0.01, decayExclude: 'none', dropout: 0.1 } });
    const h = resolveTrainOptions(cfg.train);
    expect(h).toMatchObject({ schedule: 'cosine-epoch', minLr: 1e-3, maxGradNorm: 0, weightDecay: 0.01, decayExclude: 'none', dropout: 0.1, attentionDropout: 0 });
    const o = { maxGradNorm: clipThreshold(h) };
    expect(o.maxGradNorm).toBeNull();
    const e = await engine({ name: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, noDecay: [] });
    const seen: [number, number | null][] = [];
    const apply = e.applyUpdate.bind(e);
    e.applyUpdate = (lr, maxNorm) => (seen.push([lr, maxNorm]), apply(lr, maxNorm));
    await trainLoop(e, corpus, null, {
      epochs: 3, batchSize: B, lr: 1e-2, schedule: { name: 'cosine-epoch', warmupSteps: 0, minLr: 1e-3 }, maxGradNorm: o.maxGradNorm,
      seed: 0, padId: null, checkpointDir: null, checkpointEvery: 0,
    });
    const perEpoch = [0, 1, 2].map((ep) => 1e-3 + ((1e-2 - 1e-3) * (1 + Math.cos((Math.PI * ep) / 3))) / 2);
    expect(seen).toEqual([0, 1, 2].flatMap((ep) => Array.from({ length: 4 }, () => [perEpoch[ep], null])));
  });

  it('the config refuses a warmup with cosine-epoch and a floor above the rate', () => {
    expect(() => validateConfig({ train: { schedule: 'cosine-epoch', warmupSteps: 10 } })).toThrow(/train\.warmupSteps: schedule cosine-epoch has no warmup/);
    expect(() => validateConfig({ train: { minLr: 1, lr: 1e-3 } })).toThrow(/train\.minLr/);
    expect(() => validateConfig({ train: { dropout: 1 } })).toThrow(/train\.dropout/);
  });
});

describe('no gradient clipping when maxNorm is null (train.maxGradNorm 0)', () => {
  it('a gradient of norm >> 1 is applied unscaled, as naive AdamW without clip_grad_norm_; clipping at 1 would differ', async () => {
    const cfg: OptimizerConfig = { name: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, noDecay: [] };
    const e = await engine(cfg), clipped = await engine(cfg);
    const ref = naiveState(e.weights), refClipped = naiveState(e.weights);
    for (let t = 1; t <= 3; t++) {
      // loss_scale 100 makes the gradient norm far above 1, so clipping at 1 would be active.
      await e.accumulate(batch(2), 100);
      await clipped.accumulate(batch(2), 100);
      const g = copy(e.accumulated()!);
      const norm = await e.applyUpdate(0.05, null);
      await clipped.applyUpdate(0.05, 1);
      expect(norm).toBeGreaterThan(10);
      naiveAdamW(ref, g, t, 0.05, () => 0, null);
      naiveAdamW(refClipped, copy(g), t, 0.05, () => 0, 1);
      expect(maxDiff(e.weights, ref.p)).toBeLessThan(1e-6);
    }
    // AdamW is nearly scale-invariant, but not after the first step when the moments mix clipped scales:
    expect(maxDiff(clipped.weights, ref.p)).toBeGreaterThan(1e-5);
    expect(maxDiff(clipped.weights, refClipped.p)).toBeLessThan(1e-5);
  });
});
