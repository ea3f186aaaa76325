import { describe, expect, it } from 'vitest';
import { TrainEngine, type MicroBatch } from '../../models/train/engine.js';
import { fuseStep } from '../../models/train/fuse.js';
import { buildFlatUpdateGraph, buildNormGraph, lrFactor, type OptimizerConfig } from '../../models/train/optimizers.js';
import { toyCorpus, toyGradGraph, toyParams, toyWeights } from './toy-model.js';

const V = 7, B = 2, T = 6;
const chunk = 10; // the flat update runs W (49 values) in 5 slices
const sgd: OptimizerConfig = { name: 'sgd', weightDecay: 0, beta1: 0, beta2: 0, eps: 0, noDecay: [] };
const adamw: OptimizerConfig = { name: 'adamw', weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, noDecay: ['b'] };

function batch(ids: Int32Array, from: number, rows: number): MicroBatch {
  const sl = ids.subarray(from * T, (from + rows) * T);
  const inputIds = BigInt64Array.from(sl, (x) => BigInt(x));
  const labels = inputIds.slice();
  labels[1] = -100n; // one ignored position, so token counting is exercised
  return { inputIds, attentionMask: new BigInt64Array(sl.length).fill(1n), labels };
}

async function engine(cfg: OptimizerConfig, rows = B, fused = false) {
  const params = toyParams(V);
  const grad = toyGradGraph(V, rows, T);
  return TrainEngine.open(
    { grad, update: buildFlatUpdateGraph(cfg), norm: buildNormGraph(params), fused: fused ? fuseStep(grad, params, cfg) : undefined },
    { params, microBatch: rows, blockSize: T, optimizer: cfg },
    toyWeights(V, 1),
    null,
    { threads: 1, updateChunk: chunk },
  );
}

const clone = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()]));
const corpus = toyCorpus(V, 8, T, 3).ids;

describe('SGD update graph', () => {
  it('changes every weight by exactly -lr * grad', async () => {
    const e = await engine(sgd);
    const before = clone(e.weights);
    const { tokens } = await e.accumulate(batch(corpus, 0, B), 1 / 9);
    expect(tokens).toBe(B * (T - 1) - 1);
    const grads = clone(e.accumulated()!);
    const lr = 0.37;
    await e.applyUpdate(lr, null);
    let changed = 0;
    for (const [name, p0] of before) {
      const g = grads.get(name)!, p1 = e.weights.get(name)!;
      for (let i = 0; i < p0.length; i++) {
        expect(p1[i]).toBe(Math.fround(p0[i]! - Math.fround(Math.fround(lr) * g[i]!)));
        if (p1[i] !== p0[i]) changed++;
      }
    }
    expect(changed).toBeGreaterThan(V); // the update did something
  });
});

describe('update graph branches without and with weight decay (param read in place)', () => {
  it('SGD with L2 decay: p - lr * (g + wd * p), exactly in float32, over several slices', async () => {
    const cfg: OptimizerConfig = { ...sgd, weightDecay: 0.3 };
    const e = await engine(cfg);
    const before = clone(e.weights);
    await e.accumulate(batch(corpus, 0, B), 1 / 9);
    const grads = clone(e.accumulated()!);
    const lr = 0.37, f = Math.fround;
    await e.applyUpdate(lr, null);
    for (const [name, p0] of before) {
      const g = grads.get(name)!, p1 = e.weights.get(name)!;
      for (let i = 0; i < p0.length; i++) expect(p1[i]).toBe(f(p0[i]! - f(f(lr) * f(g[i]! + f(p0[i]! * f(0.3))))));
    }
  });

  it('AdamW without weight decay (param fed straight to the last Sub) matches a naive float64 step', async () => {
    const cfg: OptimizerConfig = { ...adamw, weightDecay: 0, noDecay: [] };
    const e = await engine(cfg);
    const before = clone(e.weights);
    await e.accumulate(batch(corpus, 0, B), 1 / 9);
    const grads = clone(e.accumulated()!);
    const lr = 0.01;
    await e.applyUpdate(lr, null);
    for (const [name, p0] of before) {
      const g = grads.get(name)!, p1 = e.weights.get(name)!;
      for (let i = 0; i < p0.length; i++) {
        const m = 0.1 * g[i]!, v = 0.001 * g[i]! * g[i]!;
        const want = p0[i]! - (lr / 0.1) * (m / (Math.sqrt(v) / Math.sqrt(0.001) + 1e-8));
        expect(Math.abs(p1[i]! - want)).toBeLessThan(1e-6);
      }
      expect(e.moments.get(`m.${name}`)![0]).toBeCloseTo(0.1 * g[0]!, 9);
    }
  });
});

describe('AdamW update graph', () => {
  it('matches a naive float64 AdamW (decoupled decay, bias correction, no-decay list, clipping) over 4 steps', async () => {
    const e = await engine(adamw);
    const ref = new Map([...e.weights].map(([k, v]) => [k, Float64Array.from(v)]));
    const m = new Map([...ref].map(([k, v]) => [k, new Float64Array(v.length)]));
    const v2 = new Map([...ref].map(([k, v]) => [k, new Float64Array(v.length)]));
    const maxNorm = 0.05; // small enough that clipping is active
    for (let t = 1; t <= 4; t++) {
      const lr = 0.01 * lrFactor({ name: 'linear', warmupSteps: 1 }, t - 1, 5) + 1e-3;
      await e.accumulate(batch(corpus, (t % 4) * B, B), 1 / 9);
      const g = clone(e.accumulated()!);
      let sq = 0;
      for (const x of g.values()) for (const y of x) sq += y * y;
      const norm = Math.sqrt(sq);
      const coef = Math.min(1, maxNorm / (norm + 1e-6));
      const gn = await e.applyUpdate(lr, maxNorm);
      expect(gn).toBeCloseTo(norm, 5);
      for (const [name, p] of ref) {
        const gg = g.get(name)!, mm = m.get(name)!, vv = v2.get(name)!;
        const wd = name === 'b' ? 0 : adamw.weightDecay;
        for (let i = 0; i < p.length; i++) {
          const gi = gg[i]! * coef;
          p[i]! *= 1 - lr * wd;
          mm[i] = 0.9 * mm[i]! + 0.1 * gi;
          vv[i] = 0.999 * vv[i]! + 0.001 * gi * gi;
          const denom = Math.sqrt(vv[i]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8;
          p[i]! -= (lr / (1 - 0.9 ** t)) * (mm[i]! / denom);
        }
      }
      for (const [name, p] of ref) {
        const got = e.weights.get(name)!;
        for (let i = 0; i < p.length; i++) expect(Math.abs(got[i]! - p[i]!)).toBeLessThan(1e-6);
      }
    }
    expect(e.step).toBe(4);
  });

  it('fused grad+update graph gives the same weights as the two-graph step', async () => {
    const a = await engine(adamw), b = await engine(adamw, B, true);
    for (let s = 0; s < 3; s++) {
      await a.accumulate(batch(corpus, s * B, B), 1 / 9);
      await a.applyUpdate(1e-2, 1);
      const r = await b.fusedStep(batch(corpus, s * B, B), 1 / 9, 1e-2, 1);
      expect(r.tokens).toBe(9);
    }
    for (const [name, w] of a.weights) {
      const f = b.weights.get(name)!;
      for (let i = 0; i < w.length; i++) expect(Math.abs(f[i]! - w[i]!)).toBeLessThan(1e-7);
    }
  });
});

describe('gradient accumulation', () => {
  it('two micro-batches sum to the gradient of the whole batch', async () => {
    const whole = await engine(sgd, 2 * B), parts = await engine(sgd, B);
    const wb = batch(corpus, 0, 2 * B);
    await whole.accumulate(wb, 0.1);
    const p1 = batch(corpus, 0, B), p2 = batch(corpus, B, B);
    p2.labels[1] = BigInt(corpus[B * T + 1]!); // batch() ignores position 1 of each micro-batch; match the whole batch
    await parts.accumulate(p1, 0.1);
    await parts.accumulate(p2, 0.1);
    for (const [name, g] of whole.accumulated()!) {
      const h = parts.accumulated()!.get(name)!;
      for (let i = 0; i < g.length; i++) expect(Math.abs(h[i]! - g[i]!)).toBeLessThan(1e-6);
    }
  });
});

describe('learning-rate schedules (transformers get_*_schedule_with_warmup)', () => {
  it('linear, cosine, constant with and without warmup', () => {
    expect(lrFactor({ name: 'linear', warmupSteps: 0 }, 0, 10)).toBe(1);
    expect(lrFactor({ name: 'linear', warmupSteps: 0 }, 5, 10)).toBe(0.5);
    expect(lrFactor({ name: 'linear', warmupSteps: 2 }, 1, 10)).toBe(0.5);
    expect(lrFactor({ name: 'linear', warmupSteps: 2 }, 6, 10)).toBe(0.5);
    expect(lrFactor({ name: 'cosine', warmupSteps: 0 }, 5, 10)).toBeCloseTo(0.5, 12);
    expect(lrFactor({ name: 'cosine', warmupSteps: 0 }, 0, 10)).toBe(1);
    expect(lrFactor({ name: 'constant', warmupSteps: 4 }, 2, 10)).toBe(0.5);
    expect(lrFactor({ name: 'constant', warmupSteps: 4 }, 9, 10)).toBe(1);
  });
});
