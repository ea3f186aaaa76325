// The OPT forward pass as an ONNX graph (opset 17), in the Optimum / transformers.js convention:
//   inputs  input_ids int64 [batch, seq], attention_mask int64 [batch, past+seq],
//           past_key_values.{i}.key|value float [batch, heads, past, head_dim] (withPast; past may be 0)
//           prompt_key_values.{i}.key|value float [prompts, heads, prompt, head_dim] (sharedPrompt; may be empty)
//   outputs logits [batch, seq, vocab], present.{i}.key|value [batch, heads, past+seq, head_dim]
// It follows transformers' modeling_opt.py line by line (positions from the cumulative attention mask,
// q scaled by head_dim**-0.5, eager attention with a min-float additive mask). Only plain ops are used
// (MatMul, Add, LayerNormalization, Softmax, Gather, ...), because models/grad differentiates this graph.
import { promptKvName } from '../causal-lm.js';
import { GraphBuilder, float } from '../onnx/graph.js';
import { DataType, type ModelProto } from '../onnx/proto.js';
import { hasFinalLayerNorm, hasProjections, headDim, POSITION_OFFSET, type OptConfig } from './config.js';
import { checkWeights, DECODER, EMBED_POSITIONS, EMBED_TOKENS, LM_HEAD, layerPrefix, optParamSpecs, type Weights } from './weights.js';

export interface OptForwardOptions {
  /** Add past_key_values.* inputs (a KV cache; its length may be 0). */
  withPast: boolean;
  /** Output present.* (default true). A plain scoring forward can drop them to save memory. */
  present?: boolean;
  /**
   * Also take prompt_key_values.* (with withPast): keys/values of a prefix held once per prompt for its
   * batch / prompts consecutive rows (the beams), attended before the past; the attention mask covers
   * prefix + past + new. Beam search then reads each prompt's keys once for its 5 beams instead of 5 times.
   */
  sharedPrompt?: boolean;
  /**
   * Compute logits for the last position only (logits [batch, 1, vocab]): the prefill of generation
   * needs no more, and the LM head is the largest matrix product of a small OPT.
   */
  lastLogitsOnly?: boolean;
  /**
   * Dropout sites for training, where Hugging Face's OPT applies dropout in train mode: `hidden` (config
   * `dropout`) after the attention output projection and after fc2, `attention` (`attention_dropout`) on the
   * attention probabilities. Each site is an ONNX Dropout node in inference mode (an identity here, so the graph
   * still scores exactly as without); the gradient builder turns each one into a product with a fed mask
   * (models/grad, `dropout: 'masks'`). HF's OPT has no dropout after the embeddings and never reads
   * `activation_dropout`, so neither do we. Evaluation and generation graphs are built without this option.
   */
  dropout?: DropoutRates;
}

export interface DropoutRates {
  hidden: number;
  attention: number;
}

const FLT_MAX = 3.4028234663852886e38; // torch.finfo(float32).max: HF's mask value is -FLT_MAX
const LN_EPS = 1e-5;

export const pastName = (layer: number, kv: 'key' | 'value'): string => `past_key_values.${layer}.${kv}`;
export const presentName = (layer: number, kv: 'key' | 'value'): string => `present.${layer}.${kv}`;

export function buildOptForward(cfg: OptConfig, weights: Weights, opts: OptForwardOptions): ModelProto {
  checkWeights(cfg, weights, 'buildOptForward');
  const withPresent = opts.present ?? true;
  const H = cfg.hidden_size;
  const nh = cfg.num_attention_heads;
  const hd = headDim(cfg);
  const g = new GraphBuilder();

  // Every parameter is one initializer under its HF name (tied head: embed_tokens is used twice).
  for (const [name, spec] of optParamSpecs(cfg)) g.initializer(name, spec.shape, weights.get(name)!);

  const ids = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const past: { key: string; value: string }[] = [];
  if (opts.withPast)
    for (let l = 0; l < cfg.num_hidden_layers; l++)
      past.push({
        key: g.input(pastName(l, 'key'), DataType.FLOAT, ['batch_size', nh, 'past_sequence_length', hd]),
        value: g.input(pastName(l, 'value'), DataType.FLOAT, ['batch_size', nh, 'past_sequence_length', hd]),
      });

  if (opts.sharedPrompt && !opts.withPast) throw new Error('buildOptForward: sharedPrompt needs withPast');
  const prompt: { key: string; value: string }[] = [];
  if (opts.sharedPrompt)
    for (let l = 0; l < cfg.num_hidden_layers; l++)
      prompt.push({
        key: g.input(promptKvName(l, 'key'), DataType.FLOAT, ['prompt_count', nh, 'prompt_sequence_length', hd]),
        value: g.input(promptKvName(l, 'value'), DataType.FLOAT, ['prompt_count', nh, 'prompt_sequence_length', hd]),
      });

  // Lengths: T new tokens, S = past + T keys.
  const one = g.scalar(1, DataType.INT64);
  const T = g.op('Gather', [g.op('Shape', [ids]), one], { axis: 0 });
  const S = g.op('Gather', [g.op('Shape', [mask]), one], { axis: 0 });
  const pastLen = g.op('Sub', [S, T]);

  // Positions as OPTLearnedPositionalEmbedding: cumsum(mask) * mask - 1, last T entries, + offset 2.
  const cum = g.op('CumSum', [mask, one]);
  const pos = g.op('Sub', [g.op('Mul', [cum, mask]), one]);
  const unsq0 = (x: string): string => g.op('Unsqueeze', [x, g.i64([0])]);
  const posNew = g.op('Slice', [pos, unsq0(pastLen), unsq0(S), g.i64([1])]);
  const posIdx = g.op('Add', [posNew, g.scalar(POSITION_OFFSET, DataType.INT64)]);
  const posEmb = g.op('Gather', [EMBED_POSITIONS, posIdx]);

  // Additive attention bias [B, 1, T, S]: 0 where key k <= query position and not padding, else -FLT_MAX.
  // A fully padded row gets -FLT_MAX everywhere, which softmax turns into a uniform row (no NaN).
  const qPos = g.op('Range', [pastLen, S, one]);
  const zero = g.scalar(0, DataType.INT64);
  const kPos = g.op('Range', [zero, S, one]);
  const causal = g.op('Less', [
    g.op('Unsqueeze', [kPos, g.i64([0])]),
    g.op('Unsqueeze', [g.op('Add', [qPos, one]), g.i64([1])]),
  ]);
  const keyMask = g.op('Unsqueeze', [g.op('Cast', [mask], { to: DataType.FLOAT }), g.i64([1, 2])]);
  const keep = g.op('Mul', [g.op('Cast', [causal], { to: DataType.FLOAT }), keyMask]);
  const bias = g.op('Mul', [g.op('Sub', [keep, g.scalar(1)]), g.scalar(FLT_MAX)]);

  const linear = (x: string, name: string): string => {
    const y = g.op('MatMul', [x, g.op('Transpose', [`${name}.weight`], { perm: [1, 0] })]);
    return weights.has(`${name}.bias`) ? g.op('Add', [y, `${name}.bias`]) : y;
  };
  let lnOnes: [string, string] | null = null;
  const layerNorm = (x: string, name: string): string => {
    let wb: [string, string];
    if (cfg.layer_norm_elementwise_affine) wb = [`${name}.weight`, `${name}.bias`];
    else wb = lnOnes ??= [g.f32(new Array<number>(H).fill(1)), g.f32(new Array<number>(H).fill(0))];
    return g.op('LayerNormalization', [x, ...wb], { axis: -1, epsilon: float(LN_EPS) });
  };
  const activation = (x: string): string => {
    switch (cfg.activation_function) {
      case 'relu': return g.op('Relu', [x]);
      case 'tanh': return g.op('Tanh', [x]);
      case 'sigmoid': return g.op('Sigmoid', [x]);
      case 'gelu': {
        const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]);
        return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [erf, g.scalar(1)])]);
      }
      case 'gelu_new':
      case 'gelu_pytorch_tanh': {
        const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
        const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
        return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
      }
    }
  };
  const dropout = (x: string, rate: number, site: string): string => {
    if (!(rate > 0)) return x;
    if (rate >= 1) throw new Error(`dropout rate for ${site} must be in [0, 1), got ${rate}`);
    return g.op('Dropout', [x, g.scalar(rate)], {}, { name: `dropout/${site}` });
  };
  const splitHeads = (x: string, outName?: string): string =>
    g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, nh, hd])])], { perm: [0, 2, 1, 3] }, outName ? { outputs: [outName] } : {});

  // Embeddings.
  let h = g.op('Gather', [EMBED_TOKENS, ids]);
  if (hasProjections(cfg)) h = linear(h, `${DECODER}.project_in`);
  h = g.op('Add', [h, posEmb]);

  // Shared prompt: rows come k = batch / prompts at a time per prompt. A [batch, heads, T, d] tensor is viewed as
  // [prompts, heads, k * T, d] to multiply with the prompt's keys or values once, and back.
  let toPromptRows = (x: string, _d: 'hd' | 'Lp'): string => x;
  let fromPromptRows = toPromptRows;
  let promptLen = '';
  if (opts.sharedPrompt) {
    const shape = g.op('Shape', [prompt[0]!.key]);
    const P = g.op('Slice', [shape, g.i64([0]), g.i64([1])]);
    promptLen = g.op('Gather', [shape, g.scalar(2, DataType.INT64)], { axis: 0 });
    const Tv = unsq0(T);
    const Bv = g.op('Slice', [g.op('Shape', [ids]), g.i64([0]), g.i64([1])]);
    const k = g.op('Div', [Bv, P]);
    const kT = g.op('Mul', [k, Tv]);
    const nhv = g.i64([nh]);
    const last = (d: 'hd' | 'Lp'): string => (d === 'hd' ? g.i64([hd]) : unsq0(promptLen));
    // Explicit dimensions with allowzero: the prefill's prompt input is empty (Lp = 0).
    const reshape = (x: string, ...parts: string[]): string => g.op('Reshape', [x, g.op('Concat', parts, { axis: 0 })], { allowzero: 1 });
    const swap = [0, 2, 1, 3, 4];
    toPromptRows = (x, d) => reshape(g.op('Transpose', [reshape(x, P, k, nhv, Tv, last(d))], { perm: swap }), P, nhv, kT, last(d));
    fromPromptRows = (y, d) => reshape(g.op('Transpose', [reshape(y, P, nhv, k, Tv, last(d))], { perm: swap }), Bv, nhv, Tv, last(d));
  }

  const scaling = g.scalar(hd ** -0.5);
  /** Self-attention of layer l over x (normalised or not, as the config says), through out_proj. */
  const attention = (l: number, x: string): string => {
    const p = layerPrefix(l);
    const q = splitHeads(g.op('Mul', [linear(x, `${p}.self_attn.q_proj`), scaling]));
    const presentK = withPresent ? presentName(l, 'key') : undefined;
    const presentV = withPresent ? presentName(l, 'value') : undefined;
    const keysT = (k: string): string => g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    const attentionDropout = (probs: string): string => dropout(probs, opts.dropout?.attention ?? 0, `${l}.attention`);
    let heads: string; // attention output [B, heads, T, hd]
    if (opts.withPast) {
      // Attention over the past and the new keys as two products, never over Concat(past, new): that concat
      // copies the whole cache every decode step (scripts/bench-generate.ts's header has its cost). The
      // presents are still Concat(past, new), as outputs only (generation replaces them by the new part).
      const kNew = splitHeads(linear(x, `${p}.self_attn.k_proj`));
      const vNew = splitHeads(linear(x, `${p}.self_attn.v_proj`));
      if (presentK) g.op('Concat', [past[l]!.key, kNew], { axis: 2 }, { outputs: [presentK] });
      if (presentV) g.op('Concat', [past[l]!.value, vNew], { axis: 2 }, { outputs: [presentV] });
      const parts = [g.op('MatMul', [q, keysT(past[l]!.key)]), g.op('MatMul', [q, keysT(kNew)])];
      if (opts.sharedPrompt) parts.unshift(fromPromptRows(g.op('MatMul', [toPromptRows(q, 'hd'), keysT(prompt[l]!.key)]), 'Lp'));
      const probs = attentionDropout(g.op('Softmax', [g.op('Add', [g.op('Concat', parts, { axis: -1 }), bias])], { axis: -1 }));
      const split = (from: string, to: string): string => g.op('Slice', [probs, unsq0(from), unsq0(to), g.i64([3])]);
      if (opts.sharedPrompt) {
        const fromPrompt = fromPromptRows(g.op('MatMul', [toPromptRows(split(zero, promptLen), 'Lp'), prompt[l]!.value]), 'hd');
        const fromPast = g.op('MatMul', [split(promptLen, pastLen), past[l]!.value]);
        heads = g.op('Add', [g.op('Add', [fromPrompt, fromPast]), g.op('MatMul', [split(pastLen, S), vNew])]);
      } else heads = g.op('Add', [g.op('MatMul', [split(zero, pastLen), past[l]!.value]), g.op('MatMul', [split(pastLen, S), vNew])]);
    } else {
      const k = splitHeads(linear(x, `${p}.self_attn.k_proj`), presentK);
      const v = splitHeads(linear(x, `${p}.self_attn.v_proj`), presentV);
      const probs = attentionDropout(g.op('Softmax', [g.op('Add', [g.op('MatMul', [q, keysT(k)]), bias])], { axis: -1 }));
      heads = g.op('MatMul', [probs, v]);
    }
    const ctx = g.op('Reshape', [g.op('Transpose', [heads], { perm: [0, 2, 1, 3] }), g.i64([0, 0, H])]);
    return dropout(linear(ctx, `${p}.self_attn.out_proj`), opts.dropout?.hidden ?? 0, `${l}.out_proj`);
  };
  /** The feed-forward block of layer l: fc2(activation(fc1(x))). */
  const mlp = (l: number, x: string): string => {
    const p = layerPrefix(l);
    return dropout(linear(activation(linear(x, `${p}.fc1`)), `${p}.fc2`), opts.dropout?.hidden ?? 0, `${l}.fc2`);
  };
  /** A residual block around f: pre-LayerNorm h + f(LN(h)) (OPT-125m), or post-LayerNorm LN(h + f(h)) (OPT-350m). */
  const residual = (h: string, norm: string, f: (x: string) => string): string =>
    cfg.do_layer_norm_before ? g.op('Add', [h, f(layerNorm(h, norm))]) : layerNorm(g.op('Add', [h, f(h)]), norm);

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = layerPrefix(l);
    h = residual(h, `${p}.self_attn_layer_norm`, (x) => attention(l, x));
    h = residual(h, `${p}.final_layer_norm`, (x) => mlp(l, x));
  }
  if (hasFinalLayerNorm(cfg)) h = layerNorm(h, `${DECODER}.final_layer_norm`);
  if (hasProjections(cfg)) h = linear(h, `${DECODER}.project_out`);

  if (opts.lastLogitsOnly) h = g.op('Slice', [h, g.i64([-1]), g.i64([2 ** 53 - 1]), g.i64([1])]);
  const head = cfg.tie_word_embeddings ? EMBED_TOKENS : LM_HEAD;
  g.op('MatMul', [h, g.op('Transpose', [head], { perm: [1, 0] })], {}, { outputs: ['logits'] });

  g.output('logits', DataType.FLOAT, ['batch_size', opts.lastLogitsOnly ? 1 : 'sequence_length', cfg.vocab_size]);
  if (withPresent)
    for (let l = 0; l < cfg.num_hidden_layers; l++)
      for (const kv of ['key', 'value'] as const)
        g.output(presentName(l, kv), DataType.FLOAT, ['batch_size', nh, 'total_sequence_length', hd]);
  return g.model({ name: 'opt', opset: 17 });
}
