// OPT configuration parsing: presets match the published models, invalid configs name the key.
import { describe, expect, it } from 'vitest';
import { OPT_125M, parseOptConfig, readOptConfig } from '../../models/opt/config.js';
import { optParamCount } from '../../models/opt/weights.js';
import { sharedPath } from '../helpers/shared.js';

describe('OptConfig', () => {
  it('OPT_125M has facebook/opt-125m\'s 125,239,296 parameters', () => {
    expect(optParamCount(OPT_125M)).toBe(125_239_296);
  });

  const hf = sharedPath('tokenizers/opt-125m/config.json');
  it.skipIf(!hf)('OPT_125M matches facebook/opt-125m config.json', () => {
    const c = readOptConfig(hf!);
    for (const k of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'ffn_dim', 'max_position_embeddings',
      'word_embed_proj_dim', 'do_layer_norm_before', 'activation_function', 'pad_token_id', 'bos_token_id', 'eos_token_id',
      'tie_word_embeddings', 'enable_bias', 'layer_norm_elementwise_affine'] as const)
      expect(OPT_125M[k], k).toEqual(c[k]);
  });

  it('fills HF defaults and keeps unknown keys', () => {
    const c = parseOptConfig({ vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, ffn_dim: 16, max_position_embeddings: 4, prefix: '</s>' });
    expect(c.word_embed_proj_dim).toBe(8);
    expect(c.do_layer_norm_before).toBe(true);
    expect(c.activation_function).toBe('relu');
    expect((c as Record<string, unknown>).prefix).toBe('</s>');
  });

  it('names the offending key', () => {
    const base = { vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, ffn_dim: 16, max_position_embeddings: 4 };
    expect(() => parseOptConfig({ ...base, model_type: 'gpt2' }, 'x/config.json')).toThrow(/x\/config\.json: model_type is "gpt2", expected "opt"/);
    expect(() => parseOptConfig({ ...base, num_attention_heads: 3 }, 'c')).toThrow(/hidden_size 8 is not divisible by num_attention_heads 3/);
    expect(() => parseOptConfig({ ...base, activation_function: 'swish' }, 'c')).toThrow(/c: invalid OPT config \(activation_function/);
    expect(() => parseOptConfig({ ...base, hidden_size: undefined }, 'c')).toThrow(/hidden_size/);
    expect(() => parseOptConfig({ ...base, pad_token_id: 10 }, 'c')).toThrow(/pad_token_id 10 is outside vocab_size 10/);
  });
});
