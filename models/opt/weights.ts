// OPT parameters under their Hugging Face names (`model.decoder.layers.0.self_attn.q_proj.weight`, ...),
// their shapes (linear weights [out, in] as PyTorch stores them) and HF's `_init_weights` initialisation.
import { Rng } from '../../util/rng.js';
import { hasFinalLayerNorm, hasProjections, type OptConfig } from './config.js';

export type Weights = Map<string, Float32Array>;

export const DECODER = 'model.decoder';
export const EMBED_TOKENS = `${DECODER}.embed_tokens.weight`;
export const EMBED_POSITIONS = `${DECODER}.embed_positions.weight`;
export const LM_HEAD = 'lm_head.weight';

export const layerPrefix = (i: number): string => `${DECODER}.layers.${i}`;

type Kind = 'linear' | 'bias' | 'embedding' | 'ln_weight' | 'ln_bias';
interface ParamSpec {
  shape: number[];
  kind: Kind;
}

/** Every parameter of the model, in HF state-dict order, with its shape and how it is initialised. */
export function optParamSpecs(cfg: OptConfig): Map<string, ParamSpec> {
  const H = cfg.hidden_size;
  const F = cfg.ffn_dim;
  const out = new Map<string, ParamSpec>();
  const linear = (name: string, o: number, i: number, bias = cfg.enable_bias): void => {
    out.set(`${name}.weight`, { shape: [o, i], kind: 'linear' });
    if (bias) out.set(`${name}.bias`, { shape: [o], kind: 'bias' });
  };
  const layerNorm = (name: string): void => {
    if (!cfg.layer_norm_elementwise_affine) return;
    out.set(`${name}.weight`, { shape: [H], kind: 'ln_weight' });
    out.set(`${name}.bias`, { shape: [H], kind: 'ln_bias' });
  };
  out.set(EMBED_TOKENS, { shape: [cfg.vocab_size, cfg.word_embed_proj_dim], kind: 'embedding' });
  out.set(EMBED_POSITIONS, { shape: [cfg.max_position_embeddings + 2, H], kind: 'embedding' });
  if (hasFinalLayerNorm(cfg)) layerNorm(`${DECODER}.final_layer_norm`);
  if (hasProjections(cfg)) {
    linear(`${DECODER}.project_out`, cfg.word_embed_proj_dim, H, false);
    linear(`${DECODER}.project_in`, H, cfg.word_embed_proj_dim, false);
  }
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = layerPrefix(l);
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) linear(`${p}.self_attn.${proj}`, H, H);
    layerNorm(`${p}.self_attn_layer_norm`);
    linear(`${p}.fc1`, F, H);
    linear(`${p}.fc2`, H, F);
    layerNorm(`${p}.final_layer_norm`);
  }
  if (!cfg.tie_word_embeddings) out.set(LM_HEAD, { shape: [cfg.vocab_size, cfg.word_embed_proj_dim], kind: 'linear' });
  return out;
}

export function optParamShapes(cfg: OptConfig): Map<string, number[]> {
  return new Map([...optParamSpecs(cfg)].map(([k, v]) => [k, v.shape]));
}

export function optParamCount(cfg: OptConfig): number {
  let n = 0;
  for (const s of optParamSpecs(cfg).values()) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Fresh weights as HF `OPTPreTrainedModel._init_weights`: normal(0, init_std) for linear and embedding
 * weights, zero biases, LayerNorm weight 1 / bias 0, and the padding row of embed_tokens zero.
 */
export function initOptWeights(cfg: OptConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const weights: Weights = new Map();
  for (const [name, spec] of optParamSpecs(cfg)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n);
    if (spec.kind === 'linear' || spec.kind === 'embedding') for (let k = 0; k < n; k++) w[k] = rng.normal() * cfg.init_std;
    else if (spec.kind === 'ln_weight') w.fill(1);
    weights.set(name, w);
  }
  const emb = weights.get(EMBED_TOKENS)!;
  const D = cfg.word_embed_proj_dim;
  emb.fill(0, cfg.pad_token_id * D, (cfg.pad_token_id + 1) * D);
  return weights;
}

/** Checks that `weights` has every parameter of `cfg` with the right size; `source` names where they came from. */
export function checkWeights(cfg: OptConfig, weights: Weights, source: string): void {
  for (const [name, spec] of optParamSpecs(cfg)) {
    const w = weights.get(name);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (!w) throw new Error(`${source}: missing tensor ${name} (shape [${spec.shape}])`);
    if (w.length !== n)
      throw new Error(`${source}: tensor ${name} has ${w.length} values, expected shape [${spec.shape}] (${n} values)`);
  }
}
