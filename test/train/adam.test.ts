// torch.optim.Adam with weight_decay (coupled L2: the decay joins the gradient) in both update graphs,
// against the update written out in float64.
import { describe, expect, it } from 'vitest';
import { f32, openSession } from '../../models/session.js';
import { buildFlatUpdateGraph, buildUpdateGraph, momentKinds, updateScalars, type OptimizerConfig } from '../../models/train/optimizers.js';
import { Rng } from '../../util/rng.js';

const cfg: OptimizerConfig = { name: 'adam', weightDecay: 0.3, beta1: 0.8, beta2: 0.95, eps: 0.05, noDecay: ['b'] };
const n = 6;

describe('Adam with coupled L2', () => {
  it('keeps m and v like AdamW', () => {
    expect(momentKinds('adam')).toEqual(['m', 'v']);
  });

  it('flat and whole-model update graphs follow torch.optim.Adam for three steps', async () => {
    const rng = new Rng(11);
    const flat = await openSession(buildFlatUpdateGraph(cfg), { threads: 1 });
    const whole = await openSession(buildUpdateGraph([{ name: 'w', shape: [n] }, { name: 'b', shape: [n] }], cfg), { threads: 1 });
    const p = { w: Float32Array.from({ length: n }, () => rng.normal()), b: Float32Array.from({ length: n }, () => rng.normal()) };
    const st = { w: { m: new Float32Array(n), v: new Float32Array(n) }, b: { m: new Float32Array(n), v: new Float32Array(n) } };
    const ref = { w: Float64Array.from(p.w), b: Float64Array.from(p.b) };
    const refM = { w: new Float64Array(n), b: new Float64Array(n) };
    const refV = { w: new Float64Array(n), b: new Float64Array(n) };
    const lr = 0.1;
    for (let t = 1; t <= 3; t++) {
      const s = updateScalars(cfg, t, lr, null);
      const grads = { w: Float32Array.from({ length: n }, () => rng.normal()), b: Float32Array.from({ length: n }, () => rng.normal()) };
      // Whole-model graph on the same state, before the flat graph changes it.
      const wholeFeeds = {
        lr: f32(Float32Array.of(lr), []), step_size: f32(Float32Array.of(s.step_size), []), inv_sqrt_bc2: f32(Float32Array.of(s.inv_sqrt_bc2), []),
        decay: f32(Float32Array.of(s.decay), []), max_norm: f32(Float32Array.of(Infinity), []),
        ...Object.fromEntries((['w', 'b'] as const).flatMap((k) => [[k, f32(p[k], [n])], [`grad.${k}`, f32(grads[k], [n])], [`m.${k}`, f32(st[k].m, [n])], [`v.${k}`, f32(st[k].v, [n])]])),
      };
      const fromWhole = await whole.run(wholeFeeds);
      for (const k of ['w', 'b'] as const) {
        const l2 = cfg.noDecay.includes(k) ? 0 : cfg.weightDecay;
        const feeds = {
          param: f32(p[k], [n]), grad: f32(grads[k], [n]), m: f32(st[k].m, [n]), v: f32(st[k].v, [n]),
          clip_coef: f32(Float32Array.of(1), []), step_size: f32(Float32Array.of(s.step_size), []), inv_sqrt_bc2: f32(Float32Array.of(s.inv_sqrt_bc2), []), l2: f32(Float32Array.of(l2), []),
        };
        const r = await flat.run(feeds);
        for (let i = 0; i < n; i++) {
          const g = grads[k][i]! + l2 * ref[k][i]!;
          refM[k][i] = 0.8 * refM[k][i]! + 0.2 * g;
          refV[k][i] = 0.95 * refV[k][i]! + 0.05 * g * g;
          ref[k][i] = ref[k][i]! - ((lr / (1 - 0.8 ** t)) * refM[k][i]!) / (Math.sqrt(refV[k][i]!) / Math.sqrt(1 - 0.95 ** t) + 0.05);
        }
        const got = r['new.param']!.data as Float32Array;
        for (let i = 0; i < n; i++) expect(Math.abs(got[i]! - ref[k][i]!), `${k}[${i}] step ${t}`).toBeLessThan(2e-6);
        // The whole-model graph: decay on w only (noDecay: b), the same numbers.
        const w = fromWhole[`new.${k}`]!.data as Float32Array;
        for (let i = 0; i < n; i++) expect(Math.abs(w[i]! - got[i]!)).toBeLessThan(1e-6);
        p[k] = Float32Array.from(got);
        st[k] = { m: Float32Array.from(r['new.m']!.data as Float32Array), v: Float32Array.from(r['new.v']!.data as Float32Array) };
      }
    }
    await flat.release();
    await whole.release();
  });
});
