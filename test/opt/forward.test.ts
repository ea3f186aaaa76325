// The ONNX OPT forward against an independent plain-loop forward (test/opt/naive.ts), for the tiny preset
// and for the variants (post-LN, projections, gelu, untied head, no biases, no LayerNorm affine).
import { describe, expect, it } from 'vitest';
import { parseOptConfig, type OptConfig } from '../../models/opt/config.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { buildOptForward } from '../../models/opt/graph.js';
import { initOptWeights, optParamShapes, EMBED_TOKENS } from '../../models/opt/weights.js';
import { floatData, i64, openSession } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { naiveOptLogits, noisyWeights, sameFloats } from './naive.js';

async function onnxLogits(cfg: OptConfig, w: Map<string, Float32Array>, ids: number[][], mask: number[][]): Promise<Float32Array> {
  const s = await openSession(buildOptForward(cfg, w, { withPast: false }), { threads: 1 });
  const B = ids.length;
  const T = ids[0]!.length;
  const out = await s.run({ input_ids: i64(ids.flat(), [B, T]), attention_mask: i64(mask.flat(), [B, T]) });
  expect(out.logits!.dims).toEqual([B, T, cfg.vocab_size]);
  return floatData(out.logits, 'logits');
}

function expectClose(got: Float32Array, want: Float64Array, tol: number): void {
  let worst = 0;
  let scale = 0;
  for (let k = 0; k < want.length; k++) {
    expect(Number.isFinite(got[k]!)).toBe(true);
    worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
    scale = Math.max(scale, Math.abs(want[k]!));
  }
  expect(scale).toBeGreaterThan(0.1); // the comparison is not vacuous
  expect(worst).toBeLessThan(tol);
}

async function check(cfg: OptConfig, seed: number): Promise<void> {
  const w = noisyWeights(cfg, seed);
  const rng = new Rng(seed + 7);
  const T = 9;
  const ids = [0, 1, 2].map(() => Array.from({ length: T }, () => 3 + rng.int(cfg.vocab_size - 3)));
  const mask = [Array<number>(T).fill(1), [0, 0, 0, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1, 1]];
  ids[1]!.fill(cfg.pad_token_id, 0, 3);
  const got = await onnxLogits(cfg, w, ids, mask);
  const V = cfg.vocab_size;
  for (let b = 0; b < ids.length; b++) {
    const want = naiveOptLogits(cfg, w, ids[b]!, mask[b]!);
    expectClose(got.subarray(b * T * V, (b + 1) * T * V), want, 1e-4);
  }
}

describe('buildOptForward', () => {
  it('tiny preset: logits equal the naive forward, with and without left padding', async () => {
    await check({ ...TINY_CONFIG, init_std: 0.1 }, 1);
  });

  const small = {
    vocab_size: 50, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, ffn_dim: 24,
    max_position_embeddings: 32, init_std: 0.2,
  };
  it('post-LN with project_in/out and gelu (OPT-350m style)', async () => {
    await check(parseOptConfig({ ...small, do_layer_norm_before: false, word_embed_proj_dim: 8, activation_function: 'gelu' }), 2);
  });
  it('untied head, no biases, gelu_new, LayerNorm without affine', async () => {
    await check(
      parseOptConfig({ ...small, tie_word_embeddings: false, enable_bias: false, activation_function: 'gelu_new', layer_norm_elementwise_affine: false }),
      3,
    );
  });

  it('keeps one embed_tokens initializer for the tied head and HF shapes', () => {
    const cfg = TINY_CONFIG;
    const m = buildOptForward(cfg, initOptWeights(cfg, 0), { withPast: false });
    const graph = m.graph!;
    const inits = (graph.initializer ?? []).map((t) => t.name ?? '');
    expect(inits.filter((n) => n === EMBED_TOKENS)).toHaveLength(1);
    const users = (graph.node ?? []).filter((n) => (n.input ?? []).includes(EMBED_TOKENS)).map((n) => n.opType).sort();
    expect(users).toEqual(['Gather', 'Transpose']);
    expect(new Set(inits)).toEqual(new Set([...optParamShapes(cfg).keys(), ...inits.filter((n) => !n.startsWith('model.'))]));
    expect(optParamShapes(cfg).get('model.decoder.layers.1.fc1.weight')).toEqual([256, 64]);
    expect(optParamShapes(cfg).get('model.decoder.embed_positions.weight')).toEqual([258, 64]);
  });

  it('initialises as HF: zero pad row and biases, unit LayerNorm, std init_std', () => {
    const cfg = TINY_CONFIG;
    const w = initOptWeights(cfg, 5);
    const emb = w.get(EMBED_TOKENS)!;
    const H = cfg.hidden_size;
    expect(Array.from(emb.subarray(H * cfg.pad_token_id, H * (cfg.pad_token_id + 1)))).toEqual(new Array(H).fill(0));
    expect(w.get('model.decoder.layers.0.fc1.bias')!.every((x) => x === 0)).toBe(true);
    expect(w.get('model.decoder.layers.0.final_layer_norm.weight')!.every((x) => x === 1)).toBe(true);
    const fc = w.get('model.decoder.layers.0.fc1.weight')!;
    const std = Math.sqrt(fc.reduce((a, x) => a + x * x, 0) / fc.length);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    expect(sameFloats(initOptWeights(cfg, 5).get(EMBED_TOKENS), emb)).toBe(true); // seeded
    expect(sameFloats(initOptWeights(cfg, 6).get(EMBED_TOKENS), emb)).toBe(false);
  });
});
