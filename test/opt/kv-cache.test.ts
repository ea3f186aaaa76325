// Decoding one token at a time through the KV cache (past_key_values -> present) gives the logits of the
// full-sequence forward, with and without left padding.
import { describe, expect, it } from 'vitest';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { buildOptForward, pastName, presentName } from '../../models/opt/graph.js';
import { f32, floatData, i64, openSession, type ort } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { noisyWeights } from './naive.js';

describe('KV cache', () => {
  it('token-by-token decoding equals the full forward (left padding included)', async () => {
    const cfg = { ...TINY_CONFIG, init_std: 0.1 };
    const w = noisyWeights(cfg, 11);
    const model = buildOptForward(cfg, w, { withPast: true });
    const s = await openSession(model, { threads: 1 });
    const B = 2;
    const T = 8;
    const V = cfg.vocab_size;
    const nh = cfg.num_attention_heads;
    const hd = cfg.hidden_size / nh;
    const rng = new Rng(3);
    const ids = Array.from({ length: B * T }, () => 3 + rng.int(V - 3));
    const mask = [...new Array<number>(T).fill(1), 0, 0, 0, 1, 1, 1, 1, 1];
    for (let t = 0; t < 3; t++) ids[T + t] = cfg.pad_token_id;

    // Full sequence with an empty cache.
    const empty = (): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {};
      for (let l = 0; l < cfg.num_hidden_layers; l++)
        for (const kv of ['key', 'value'] as const) f[pastName(l, kv)] = f32(new Float32Array(0), [B, nh, 0, hd]);
      return f;
    };
    const full = await s.run({ input_ids: i64(ids, [B, T]), attention_mask: i64(mask, [B, T]), ...empty() });
    const fullLogits = floatData(full.logits, 'logits');
    expect(full[presentName(0, 'key')]!.dims).toEqual([B, nh, T, hd]);

    // One token at a time.
    let past = empty();
    let worst = 0;
    let checked = 0;
    for (let t = 0; t < T; t++) {
      const stepIds = [ids[t]!, ids[T + t]!];
      const stepMask = [...mask.slice(0, t + 1), ...mask.slice(T, T + t + 1)];
      const out = await s.run({ input_ids: i64(stepIds, [B, 1]), attention_mask: i64(stepMask, [B, t + 1]), ...past });
      const logits = floatData(out.logits, 'logits');
      for (let b = 0; b < B; b++) {
        if (mask[b * T + t] === 0) continue; // a padded query's output is not defined by HF either
        for (let v = 0; v < V; v++) {
          worst = Math.max(worst, Math.abs(logits[b * V + v]! - fullLogits[(b * T + t) * V + v]!));
          checked++;
        }
      }
      past = {};
      for (let l = 0; l < cfg.num_hidden_layers; l++)
        for (const kv of ['key', 'value'] as const) past[pastName(l, kv)] = out[presentName(l, kv)]!;
      expect(out[presentName(1, 'value')]!.dims).toEqual([B, nh, t + 1, hd]);
    }
    expect(checked).toBe((2 * T - 3) * V);
    expect(worst).toBeLessThan(1e-4);
    // lastLogitsOnly gives the last position's logits of the full forward.
    const last = await openSession(buildOptForward(cfg, w, { withPast: true, lastLogitsOnly: true }), { threads: 1 });
    const lastOut = await last.run({ input_ids: i64(ids, [B, T]), attention_mask: i64(mask, [B, T]), ...empty() });
    expect(lastOut.logits!.dims).toEqual([B, 1, V]);
    const lastLogits = floatData(lastOut.logits, 'logits');
    for (let b = 0; b < B; b++)
      for (let v = 0; v < V; v++) expect(Math.abs(lastLogits[b * V + v]! - fullLogits[(b * T + T - 1) * V + v]!)).toBeLessThan(1e-5);
    // And the cache is not a no-op: the last step without its past gives different logits.
    const noPast = await s.run({ input_ids: i64([ids[T - 1]!, ids[2 * T - 1]!], [B, 1]), attention_mask: i64([1, 1], [B, 1]), ...empty() });
    const a = floatData(noPast.logits, 'logits');
    expect(Math.abs(a[0]! - fullLogits[(T - 1) * V]!)).toBeGreaterThan(1e-3);
  });
});
