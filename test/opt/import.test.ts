// Importing a Hugging Face OPT checkpoint directory (config.json + model.safetensors with HF names).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { importHfCheckpoint, openModelDir, readWeights } from '../../models/model-dir/index.js';
import { configJson, parseOptConfig } from '../../models/opt/config.js';
import { optParamShapes } from '../../models/opt/weights.js';
import { writeSafetensors, type TensorToWrite } from '../../models/safetensors.js';
import { noisyWeights, sameFloats } from './naive.js';

const root = mkdtempSync(join(tmpdir(), 'import-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cfg = parseOptConfig({
  vocab_size: 512, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, ffn_dim: 48, max_position_embeddings: 64,
});
const weights = noisyWeights(cfg, 21);

/** An HF-style checkpoint directory; `rename` maps our names to the checkpoint's. */
function hfDir(name: string, rename: (n: string) => string | null, extra: Record<string, TensorToWrite> = {}): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson(cfg)));
  for (const [f, c] of Object.entries(tinyTokenizerFiles())) writeFileSync(join(dir, f), c);
  const tensors = new Map<string, TensorToWrite>();
  for (const [n, shape] of optParamShapes(cfg)) {
    const m = rename(n);
    if (m) tensors.set(m, { shape, data: weights.get(n)! });
  }
  for (const [n, t] of Object.entries(extra)) tensors.set(n, t);
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

describe('importHfCheckpoint', () => {
  it('imports model.decoder.* names (lm_head.weight of a tied model ignored) and reproduces the weights', () => {
    const emb = weights.get('model.decoder.embed_tokens.weight')!;
    const src = hfDir('hf-full', (n) => n, { 'lm_head.weight': { shape: [512, 32], data: emb } });
    const out = join(root, 'out-full');
    const r = importHfCheckpoint(src, out);
    expect(r.ignored).toEqual(['lm_head.weight']);
    const got = readWeights(out);
    for (const [n, w] of weights) expect(sameFloats(got.get(n), w), n).toBe(true);
    expect(openModelDir(out).config.hidden).toBe(32);
  });

  it('accepts the decoder.* prefix of OPTModel checkpoints', () => {
    const src = hfDir('hf-bare', (n) => n.replace(/^model\./, ''));
    const out = join(root, 'out-bare');
    importHfCheckpoint(src, out);
    const got = readWeights(out);
    expect(got.get('model.decoder.layers.1.self_attn.v_proj.bias')).toEqual(weights.get('model.decoder.layers.1.self_attn.v_proj.bias'));
  });

  it('names a missing or mis-shaped tensor', () => {
    const missing = hfDir('hf-missing', (n) => (n.endsWith('layers.1.fc2.bias') ? null : n));
    expect(() => importHfCheckpoint(missing, join(root, 'o1'))).toThrow(/has no tensor model\.decoder\.layers\.1\.fc2\.bias \(shape \[32\]\)/);
    const wrong = hfDir('hf-wrong', (n) => (n.endsWith('layers.0.fc1.weight') ? null : n), {
      'model.decoder.layers.0.fc1.weight': { shape: [32, 48], data: weights.get('model.decoder.layers.0.fc1.weight')! },
    });
    expect(() => importHfCheckpoint(wrong, join(root, 'o2'))).toThrow(/tensor model\.decoder\.layers\.0\.fc1\.weight has shape \[32,48\], expected \[48,32\]/);
  });

  it('explains how to convert a pytorch_model.bin-only checkpoint', () => {
    const dir = join(root, 'hf-bin');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson(cfg)));
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not really a pickle');
    expect(() => importHfCheckpoint(dir, join(root, 'o3'))).toThrow(/only pytorch_model\.bin.*safe_serialization=True/);
    expect(() => importHfCheckpoint(join(root, 'nowhere'), join(root, 'o4'))).toThrow(/config\.json is missing/);
  });
});
