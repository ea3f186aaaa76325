import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ImageSet } from '../../datasets/digit-images.js';
import { f32 } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { initParams, paramSpecs, type VaeArch } from '../../theory/vae-graph.js';
import { covariance, logDet, meanPairwiseDistance, principalAxes, trace } from '../../theory/vae-metrics.js';
import { writeVae } from '../../theory/vae-outputs.js';
import { VaeSessions, VaeTrainer } from '../../theory/vae-train.js';
import { simulateVae, splitImages, type VaeOptions } from '../../theory/vae.js';
import { naiveGradient, naiveLoss, toF64 } from './vae-naive.js';

const dir = mkdtempSync(join(tmpdir(), 'vae-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one optimizer step of a tiny VAE against a naive float64 computation', () => {
  // 4x4 images: the two convolutions take 4 -> 2 -> 1, the transposed ones 1 -> 2 -> 4.
  const arch: VaeArch = { height: 4, width: 4, capacity: 2, latent: 3 };
  const B = 3;
  const beta = 0.7;
  // A large Adam eps makes the step depend on the gradient's size (at eps 1e-8 the first step is lr * sign(g)),
  // and a large weight decay makes coupled L2 visibly different from AdamW's decoupled decay.
  const optimizer = { name: 'adam' as const, weightDecay: 0.5, beta1: 0.9, beta2: 0.999, eps: 0.1, noDecay: [] };
  const lr = 0.01;

  it('gradients, loss and two Adam (coupled L2) updates match', async () => {
    const rng = new Rng(7);
    const params = initParams(arch, rng);
    const sessions = await VaeSessions.open(arch, { lr, beta, optimizer }, 1);
    try {
      const trainer = new VaeTrainer(sessions, new Map([...params].map(([k, v]) => [k, v.slice()])));
      const naive = toF64(params);
      const m = new Map([...naive].map(([k, v]) => [k, new Float64Array(v.length)]));
      const v2 = new Map([...naive].map(([k, v]) => [k, new Float64Array(v.length)]));
      for (let t = 1; t <= 2; t++) {
        const x = Float32Array.from({ length: B * 16 }, () => rng.next());
        const eps = Float32Array.from({ length: B * arch.latent }, () => rng.normal());
        const x64 = Float64Array.from(x);
        const e64 = Float64Array.from(eps);
        // Our gradient graph, run directly, against central differences of the naive loss.
        const session = await sessions.gradient(B);
        const feeds = { x: f32(x, [B, 1, 4, 4]), eps: f32(eps, [B, 3]), ...Object.fromEntries(paramSpecs(arch).map((p) => [p.name, f32(trainer.params.get(p.name)!, p.shape)])) };
        const r = await session.run(feeds);
        const expectedLoss = naiveLoss(arch, naive, x64, e64, beta);
        expect(Number(r.loss!.data[0])).toBeCloseTo(expectedLoss, 3);
        const grads = naiveGradient(arch, naive, x64, e64, beta);
        let checked = 0;
        for (const p of paramSpecs(arch)) {
          const got = r[`grad.${p.name}`]!.data as Float32Array;
          const want = grads.get(p.name)!;
          for (let i = 0; i < want.length; i++) {
            expect(Math.abs(got[i]! - want[i]!), `${p.name}[${i}] step ${t}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(want[i]!));
            checked++;
          }
        }
        expect(checked).toBe(paramSpecs(arch).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0));

        // torch.optim.Adam: g' = g + wd p; m, v; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
        const loss = await trainer.trainStep(x, eps);
        expect(loss).toBeCloseTo(expectedLoss, 3);
        for (const p of paramSpecs(arch)) {
          const w = naive.get(p.name)!;
          const g = grads.get(p.name)!;
          const mm = m.get(p.name)!;
          const vv = v2.get(p.name)!;
          const got = trainer.params.get(p.name)!;
          for (let i = 0; i < w.length; i++) {
            const gi = g[i]! + optimizer.weightDecay * w[i]!;
            mm[i] = 0.9 * mm[i]! + 0.1 * gi;
            vv[i] = 0.999 * vv[i]! + 0.001 * gi * gi;
            const step = ((lr / (1 - 0.9 ** t)) * mm[i]!) / (Math.sqrt(vv[i]!) / Math.sqrt(1 - 0.999 ** t) + optimizer.eps);
            w[i] = w[i]! - step;
            // 2e-6 is far below what decoupled decay would change (lr * wd * |w| = 5e-3 |w|).
            expect(Math.abs(got[i]! - w[i]!), `${p.name}[${i}] after step ${t}`).toBeLessThanOrEqual(2e-6);
          }
          // Continue from our float32 weights, as the trainer does.
          for (let i = 0; i < w.length; i++) w[i] = got[i]!;
        }
      }
    } finally {
      await sessions.release();
    }
  }, 60_000);
});

describe('latent and diversity measures', () => {
  it('covariance, trace, log-determinant and pairwise distance on hand-computed cases', () => {
    // Points (0,0), (2,0), (0,4), (2,4): variances 4/3 and 16/3, no covariance.
    const rows = Float32Array.of(0, 0, 2, 0, 0, 4, 2, 4);
    const c = covariance(rows, 2);
    expect([...c].map((v) => +v.toFixed(12))).toEqual([4 / 3, 0, 0, 16 / 3].map((v) => +v.toFixed(12)));
    expect(trace(c, 2)).toBeCloseTo(20 / 3, 12);
    expect(logDet(c, 2)).toBeCloseTo(Math.log(64 / 9), 12);
    expect(logDet(Float64Array.of(1, 1, 1, 1), 2)).toBe(-Infinity);
    // Distances: 2, 4, sqrt(20), sqrt(20), 4, 2.
    expect(meanPairwiseDistance(rows, 2)).toBeCloseTo((2 + 4 + 2 * Math.sqrt(20) + 4 + 2) / 6, 12);
  });

  it('principal axes of a rotated diagonal matrix', () => {
    // R diag(5, 2, 0.5) R^T with R a rotation by 30 degrees in the first two coordinates.
    const [c, s] = [Math.cos(Math.PI / 6), Math.sin(Math.PI / 6)];
    const m = Float64Array.of(5 * c * c + 2 * s * s, (5 - 2) * c * s, 0, (5 - 2) * c * s, 5 * s * s + 2 * c * c, 0, 0, 0, 0.5);
    const { vectors, values } = principalAxes(m, 3, 2);
    expect(values[0]).toBeCloseTo(5, 9);
    expect(values[1]).toBeCloseTo(2, 9);
    [[c, s, 0], [-s, c, 0]].forEach((want, k) => {
      const sign = Math.sign(vectors[k]![0]! * want[0]! + vectors[k]![1]! * want[1]!);
      want.forEach((w, i) => expect(vectors[k]![i]! * sign).toBeCloseTo(w, 9));
    });
  });
});

/** 60 synthetic 8x8 "digits": a bar at a random row or column, blurred by noise. */
function toyImages(n: number): ImageSet {
  const rng = new Rng(3);
  const pixels = new Float32Array(n * 64);
  for (let i = 0; i < n; i++) {
    const k = rng.int(8);
    const vertical = rng.next() < 0.5;
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) pixels[i * 64 + y * 8 + x] = Math.min(1, ((vertical ? x : y) === k ? 0.9 : 0) + 0.1 * rng.next());
  }
  return { pixels, count: n, height: 8, width: 8, source: 'toy' };
}

describe('the recursion', () => {
  const data = toyImages(60);
  const base: VaeOptions = {
    capacity: 2, latent: 2, epochs: 2, batch: 16, lr: 3e-3, weightDecay: 1e-5, beta: 1, generations: 2, seed: 5, holdout: 10, evalSamples: 30, threads: 1, quiet: true,
  };

  it('splits by a fixed permutation into disjoint train and held-out images', () => {
    const { train, test, nTrain } = splitImages(data, 10);
    expect(nTrain).toBe(50);
    const key = (a: Float32Array, i: number) => a.subarray(i * 64, (i + 1) * 64).join(',');
    const all = new Set(Array.from({ length: 60 }, (_, i) => key(data.pixels, i)));
    const seen = [...Array.from({ length: 50 }, (_, i) => key(train, i)), ...Array.from({ length: 10 }, (_, i) => key(test, i))];
    expect(new Set(seen)).toEqual(all);
    expect(() => splitImages(data, 60)).toThrow(/--holdout: 60/);
  });

  it('the same seed gives bitwise-identical outputs; a resumed run equals an uninterrupted one', async () => {
    const outs = ['a', 'b', 'c'].map((k) => join(dir, k));
    const run = async (out: string, o: Partial<VaeOptions>) => {
      const res = await simulateVae(data, { ...base, checkpointDir: join(out, 'checkpoints'), ...o });
      await writeVae(res, out, { figures: true });
      return res;
    };
    const a = await run(outs[0]!, {});
    await run(outs[1]!, {});
    // c: one generation, then resumed to two.
    await run(outs[2]!, { generations: 1 });
    const c = await run(outs[2]!, { resume: true });
    expect(c.resumedGenerations).toBe(2);
    expect(a.generations).toHaveLength(3);
    const files = readdirSync(outs[0]!).filter((f) => /\.(csv|png|svg)$/.test(f));
    expect(files).toEqual(expect.arrayContaining(['per_generation.csv', 'latent_means.csv', 'samples_gen0.png', 'samples_gen2.svg', 'samples.png', 'latent_trace.png', 'diversity.svg', 'elbo_real.png']));
    for (const out of outs.slice(1)) {
      for (const f of [...files, ...readdirSync(join(outs[0]!, 'checkpoints')).filter((f) => f.endsWith('.f32')).map((f) => join('checkpoints', f))]) {
        expect(readFileSync(join(out, f)).equals(readFileSync(join(outs[0]!, f))), `${out}/${f}`).toBe(true);
      }
    }
    // A different seed trains different weights.
    const d = await simulateVae(data, { ...base, seed: 6, generations: 0 });
    expect(d.generations[0]!.trainLoss).not.toBe(a.generations[0]!.trainLoss);
    // Every measure is finite and the grid holds min(100, evalSamples) images.
    for (const g of a.generations) {
      expect(g.grid.length).toBe(30 * 64);
      for (const v of [g.elbo, g.latentTrace, g.diversity, g.trainLoss]) expect(Number.isFinite(v)).toBe(true);
    }
  }, 120_000);

  it('refuses a resume with other options, naming the flag', async () => {
    const out = join(dir, 'r');
    await simulateVae(data, { ...base, generations: 0, checkpointDir: out });
    await expect(simulateVae(data, { ...base, generations: 0, lr: 1e-2, checkpointDir: out, resume: true })).rejects.toThrow(/--resume: .*other options/);
  }, 60_000);
});
