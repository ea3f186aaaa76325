// An independent OPT forward in plain loops (no ONNX), written from transformers' modeling_opt.py, used as
// the reference the ONNX graph is checked against.
import type { OptConfig } from '../../models/opt/config.js';
import { initOptWeights } from '../../models/opt/weights.js';
import { Rng } from '../../util/rng.js';

type W = Map<string, Float32Array>;

function get(w: W, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`naive: missing ${name}`);
  return t;
}

/** y[t, o] = sum_i x[t, i] * W[o, i] + b[o]; W stored [out, in]. */
function linear(x: Float64Array, rows: number, inDim: number, weight: Float32Array, bias: Float32Array | undefined): Float64Array {
  const outDim = weight.length / inDim;
  const y = new Float64Array(rows * outDim);
  for (let t = 0; t < rows; t++)
    for (let o = 0; o < outDim; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inDim; i++) s += x[t * inDim + i]! * weight[o * inDim + i]!;
      y[t * outDim + o] = s;
    }
  return y;
}

function layerNorm(x: Float64Array, rows: number, dim: number, w?: Float32Array, b?: Float32Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let t = 0; t < rows; t++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[t * dim + i]!;
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[t * dim + i]! - mean) ** 2;
    v /= dim;
    const r = 1 / Math.sqrt(v + 1e-5);
    for (let i = 0; i < dim; i++) y[t * dim + i] = (x[t * dim + i]! - mean) * r * (w ? w[i]! : 1) + (b ? b[i]! : 0);
  }
  return y;
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued fraction accurate to ~1e-12.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

function act(name: string, x: number): number {
  switch (name) {
    case 'relu': return Math.max(0, x);
    case 'gelu': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_new': return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    default: throw new Error(`naive: activation ${name}`);
  }
}

/**
 * Dropout multipliers of ONE sequence, per layer (0 or 1/(1-p)), at HF OPT's train-mode sites: `attention`
 * [heads, T, T] on the attention probabilities, `outProj` and `fc2` [T, H] before their residual adds.
 */
export interface NaiveDropout {
  attention?: (layer: number) => ArrayLike<number>;
  outProj?: (layer: number) => ArrayLike<number>;
  fc2?: (layer: number) => ArrayLike<number>;
}

/** Logits [T, V] of ONE sequence (ids, mask of the same length T; mask 0 = padding), as HF OPT computes them. */
export function naiveOptLogits(cfg: OptConfig, w: W, ids: number[], mask: number[], drop: NaiveDropout = {}): Float64Array {
  const T = ids.length;
  const H = cfg.hidden_size;
  const D = cfg.word_embed_proj_dim;
  const nh = cfg.num_attention_heads;
  const hd = H / nh;
  const pre = 'model.decoder';
  const opt = (n: string): Float32Array | undefined => w.get(n);
  const ln = (x: Float64Array, n: string): Float64Array => layerNorm(x, T, H, opt(`${n}.weight`), opt(`${n}.bias`));
  const lin = (x: Float64Array, inDim: number, n: string): Float64Array => linear(x, T, inDim, get(w, `${n}.weight`), opt(`${n}.bias`));

  // Embeddings and positions: cumsum(mask) * mask - 1 + 2.
  const emb = get(w, `${pre}.embed_tokens.weight`);
  let e: Float64Array = new Float64Array(T * D);
  for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) e[t * D + i] = emb[ids[t]! * D + i]!;
  if (D !== H) e = lin(e, D, `${pre}.project_in`);
  const posW = get(w, `${pre}.embed_positions.weight`);
  let h: Float64Array = new Float64Array(T * H);
  let cum = 0;
  for (let t = 0; t < T; t++) {
    cum += mask[t]!;
    const p = cum * mask[t]! - 1 + 2;
    for (let i = 0; i < H; i++) h[t * H + i] = e[t * H + i]! + posW[p * H + i]!;
  }

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `${pre}.layers.${l}`;
    let x: Float64Array = cfg.do_layer_norm_before ? ln(h, `${p}.self_attn_layer_norm`) : h;
    const q = lin(x, H, `${p}.self_attn.q_proj`);
    const k = lin(x, H, `${p}.self_attn.k_proj`);
    const v = lin(x, H, `${p}.self_attn.v_proj`);
    const ctx = new Float64Array(T * H);
    const scale = 1 / Math.sqrt(hd);
    for (let a = 0; a < nh; a++)
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          let d = 0;
          for (let c = 0; c < hd; c++) d += q[i * H + a * hd + c]! * scale * k[j * H + a * hd + c]!;
          // Masked entries get -FLT_MAX added (HF eager); d is negligible beside it in float32.
          s[j] = j <= i && mask[j] === 1 ? d : -3.4028234663852886e38;
        }
        const m = Math.max(...s);
        let z = 0;
        for (let j = 0; j < T; j++) z += (s[j] = Math.exp(s[j]! - m));
        const am = drop.attention?.(l);
        if (am) for (let j = 0; j < T; j++) s[j] = s[j]! * am[(a * T + i) * T + j]!;
        for (let j = 0; j < T; j++)
          for (let c = 0; c < hd; c++) ctx[i * H + a * hd + c] = ctx[i * H + a * hd + c]! + (s[j]! / z) * v[j * H + a * hd + c]!;
      }
    const o = lin(ctx, H, `${p}.self_attn.out_proj`);
    const om = drop.outProj?.(l);
    for (let k2 = 0; k2 < h.length; k2++) o[k2] = o[k2]! * (om ? om[k2]! : 1) + h[k2]!;
    h = cfg.do_layer_norm_before ? o : ln(o, `${p}.self_attn_layer_norm`);

    x = cfg.do_layer_norm_before ? ln(h, `${p}.final_layer_norm`) : h;
    const f1 = lin(x, H, `${p}.fc1`);
    for (let k2 = 0; k2 < f1.length; k2++) f1[k2] = act(cfg.activation_function, f1[k2]!);
    const f2 = linear(f1, T, cfg.ffn_dim, get(w, `${p}.fc2.weight`), opt(`${p}.fc2.bias`));
    const fm = drop.fc2?.(l);
    for (let k2 = 0; k2 < h.length; k2++) f2[k2] = f2[k2]! * (fm ? fm[k2]! : 1) + h[k2]!;
    h = cfg.do_layer_norm_before ? f2 : ln(f2, `${p}.final_layer_norm`);
  }
  if (cfg.do_layer_norm_before && !cfg._remove_final_layer_norm) h = ln(h, `${pre}.final_layer_norm`);
  if (D !== H) h = lin(h, H, `${pre}.project_out`);
  const head = cfg.tie_word_embeddings ? emb : get(w, 'lm_head.weight');
  return linear(h, T, D, head, undefined);
}

/** Weights where every tensor matters: HF init, then noise on everything (biases and LayerNorms too). */
export function noisyWeights(cfg: OptConfig, seed: number, scale = 0.1): Map<string, Float32Array> {
  const w = initOptWeights(cfg, seed);
  const rng = new Rng(seed + 1);
  for (const t of w.values()) for (let k = 0; k < t.length; k++) t[k] = t[k]! + rng.normal() * scale;
  return w;
}


/** Bitwise equality of two float arrays (vitest's toEqual is slow on large typed arrays). */
export function sameFloats(a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
