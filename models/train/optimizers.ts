// Optimizers as ONNX update graphs: one graph maps (params, summed gradients, moments, a few scalars) to the
// new params and moments, so the arithmetic runs inside onnxruntime instead of JavaScript loops.
// Semantics follow PyTorch (torch.optim.AdamW / SGD, clip_grad_norm_) and the Hugging Face Trainer's
// schedules, so a run here can be compared with a PyTorch run step by step.
import { GraphBuilder } from '../onnx/graph.js';
import { DataType, type ModelProto } from '../onnx/proto.js';

export type OptimizerName = 'adamw' | 'sgd';
export type ScheduleName = 'constant' | 'linear' | 'cosine';

export interface OptimizerConfig {
  name: OptimizerName;
  /** Decoupled (AdamW) or L2 (SGD, added to the gradient as PyTorch does) weight decay. HF default 0. */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Parameters that get no weight decay (HF Trainer: biases and LayerNorm weights). */
  noDecay: string[];
}

export interface ScheduleConfig {
  name: ScheduleName;
  warmupSteps: number;
}

export const DEFAULT_ADAMW: Omit<OptimizerConfig, 'noDecay'> = { name: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** HF Trainer's rule: no decay for biases and LayerNorm weights; rank-1 tensors of foreign exports are treated the same. */
export function defaultNoDecay(params: readonly { name: string; shape: readonly number[] }[]): string[] {
  return params.filter((p) => /bias|norm|ln_?\d*\b|\.ln/i.test(p.name) || p.shape.length <= 1).map((p) => p.name);
}

/** The learning-rate multiplier at optimizer step `step` (0-based), as transformers' get_*_schedule_with_warmup. */
export function lrFactor(s: ScheduleConfig, step: number, totalSteps: number): number {
  const w = s.warmupSteps;
  if (step < w) return step / Math.max(1, w);
  if (s.name === 'constant') return 1;
  const progress = (step - w) / Math.max(1, totalSteps - w);
  if (s.name === 'linear') return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - w));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export interface ParamSpec {
  name: string;
  shape: number[];
}

export const UPDATE_SCALARS = ['lr', 'step_size', 'inv_sqrt_bc2', 'decay', 'max_norm', 'clip_coef'] as const;
export type UpdateScalar = (typeof UPDATE_SCALARS)[number];

/** Names used by the update graph for one parameter. */
export const gradName = (p: string): string => `grad.${p}`;
export const momentName = (k: 'm' | 'v', p: string): string => `${k}.${p}`;
export const newName = (p: string): string => `new.${p}`;

/** Moment tensors an optimizer keeps per parameter. */
export function momentKinds(name: OptimizerName): ('m' | 'v')[] {
  return name === 'adamw' ? ['m', 'v'] : [];
}

/**
 * The per-step scalars fed to the update graph for 1-based optimizer step `t` at learning rate `lr`
 * (float64 here, rounded to float32 by the feed; PyTorch computes them in double as well).
 * maxNorm: global-norm clipping threshold, or null for no clipping (fed as +Infinity: coefficient exactly 1).
 */
export function updateScalars(cfg: OptimizerConfig, t: number, lr: number, maxNorm: number | null, gradNorm = 0): Record<UpdateScalar, number> {
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  return {
    lr,
    step_size: lr / bc1,
    inv_sqrt_bc2: 1 / Math.sqrt(bc2),
    decay: 1 - lr * cfg.weightDecay,
    max_norm: maxNorm ?? Infinity,
    clip_coef: clipCoef(gradNorm, maxNorm),
  };
}

/** torch.nn.utils.clip_grad_norm_'s coefficient: min(1, max_norm / (norm + 1e-6)); exactly 1 without clipping. */
export function clipCoef(norm: number, maxNorm: number | null): number {
  return maxNorm === null ? 1 : Math.min(1, maxNorm / (norm + 1e-6));
}

/** A graph from all grad.* to their global L2 norm (`grad_norm`), for the chunked update. */
export function buildNormGraph(params: readonly ParamSpec[]): ModelProto {
  const g = new GraphBuilder('norm/');
  const F = DataType.FLOAT;
  for (const p of params) g.input(gradName(p.name), F, p.shape);
  const sq = params.map((p) => g.op('ReduceSumSquare', [gradName(p.name)], { keepdims: 0 }));
  g.opN('Sqrt', [sq.length === 1 ? sq[0]! : g.op('Sum', sq)], {}, { outputs: ['grad_norm'] });
  g.output('grad_norm', F, []);
  return g.model({ name: 'grad_norm' });
}

/**
 * Splits the parameters into update chunks of at most `maxElements` values (a larger tensor gets its own chunk).
 * Each chunk's update returns only its own new tensors, so the transient output copies stay small.
 */
export function chunkParams(params: readonly ParamSpec[], maxElements: number): ParamSpec[][] {
  const chunks: ParamSpec[][] = [];
  let cur: ParamSpec[] = [], n = 0;
  for (const p of params) {
    const k = p.shape.reduce((a, b) => a * b, 1);
    if (cur.length > 0 && n + k > maxElements) { chunks.push(cur); cur = []; n = 0; }
    cur.push(p);
    n += k;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/**
 * Builds the update graph. Inputs: each param `p`, `grad.p` (the gradient of the batch-mean loss), moments
 * `m.p`/`v.p` (AdamW), and the scalars of UPDATE_SCALARS. Outputs: `new.p`, `new.m.p`, `new.v.p` and
 * `grad_norm` (the global norm before clipping, as clip_grad_norm_ returns it). With `coefInput`, the clipping
 * coefficient is the scalar input `clip_coef` (instead of `max_norm`) and there is no grad_norm output.
 * With `gradsAreInternal`, the grad.* values are not declared as inputs (the fused step graph produces them).
 */
export function buildUpdateGraph(
  params: readonly ParamSpec[],
  cfg: OptimizerConfig,
  opts: { gradsAreInternal?: boolean; opset?: number; coefInput?: boolean } = {},
): ModelProto {
  const g = new GraphBuilder('opt/'); // prefixed: the fused step graph merges it with the gradient graph
  g.reserve(params.flatMap((p) => [p.name, gradName(p.name), momentName('m', p.name), momentName('v', p.name)]));
  const F = DataType.FLOAT;
  const scalars = UPDATE_SCALARS.filter((k) => k !== (opts.coefInput ? 'max_norm' : 'clip_coef'));
  const s = Object.fromEntries(scalars.map((k) => [k, g.input(k, F, [])])) as Record<UpdateScalar, string>;
  for (const p of params) {
    g.input(p.name, F, p.shape);
    if (!opts.gradsAreInternal) g.input(gradName(p.name), F, p.shape);
    for (const k of momentKinds(cfg.name)) g.input(momentName(k, p.name), F, p.shape);
  }
  // Global-norm clipping (torch.nn.utils.clip_grad_norm_): coef = min(1, max_norm / (norm + 1e-6)); a chunk of a
  // chunked update gets the coefficient from outside (the norm spans all chunks).
  let coef = s.clip_coef;
  if (!opts.coefInput) {
    const sq = params.map((p) => g.op('ReduceSumSquare', [gradName(p.name)], { keepdims: 0 }));
    const norm = g.op('Sqrt', [sq.length === 1 ? sq[0]! : g.op('Sum', sq)]);
    g.opN('Identity', [norm], {}, { outputs: ['grad_norm'] });
    g.output('grad_norm', F, []);
    coef = g.op('Min', [g.op('Div', [s.max_norm, g.op('Add', [norm, g.scalar(1e-6)])]), g.scalar(1)]);
  }
  const noDecay = new Set(cfg.noDecay);
  const b1 = g.scalar(cfg.beta1), b1c = g.scalar(1 - cfg.beta1), b2 = g.scalar(cfg.beta2), b2c = g.scalar(1 - cfg.beta2);
  const eps = g.scalar(cfg.eps);
  for (const p of params) {
    const grad = g.op('Mul', [gradName(p.name), coef]);
    const decays = cfg.weightDecay !== 0 && !noDecay.has(p.name);
    if (cfg.name === 'sgd') {
      // PyTorch SGD: L2 decay joins the gradient; then p - lr * g (exactly that, in float32).
      const d = decays ? g.op('Add', [grad, g.op('Mul', [p.name, g.scalar(cfg.weightDecay)])]) : grad;
      g.opN('Sub', [p.name, g.op('Mul', [s.lr, d])], {}, { outputs: [newName(p.name)] });
    } else {
      // torch.optim.AdamW (single-tensor path): decoupled decay first, then the bias-corrected Adam step.
      const pd = decays ? g.op('Mul', [p.name, s.decay]) : p.name;
      const m = g.op('Add', [g.op('Mul', [momentName('m', p.name), b1]), g.op('Mul', [grad, b1c])], {}, { outputs: [newName(momentName('m', p.name))] });
      const v = g.op('Add', [g.op('Mul', [momentName('v', p.name), b2]), g.op('Mul', [g.op('Mul', [grad, grad]), b2c])], {}, { outputs: [newName(momentName('v', p.name))] });
      const denom = g.op('Add', [g.op('Mul', [g.op('Sqrt', [v]), s.inv_sqrt_bc2]), eps]);
      g.opN('Sub', [pd, g.op('Mul', [s.step_size, g.op('Div', [m, denom])])], {}, { outputs: [newName(p.name)] });
      for (const k of ['m', 'v'] as const) g.output(newName(momentName(k, p.name)), F, p.shape);
    }
    g.output(newName(p.name), F, p.shape);
  }
  return g.model({ name: `update_${cfg.name}`, opset: opts.opset });
}


/** Default update chunk: 16 M values (64 MB per tensor kind), so OPT-125m updates in ~9 chunks. */
export const UPDATE_CHUNK_ELEMENTS = 1 << 24;

/** The norm graph and the chunked update graphs (what the engine runs after accumulating gradients). */
export function buildChunkedUpdate(params: readonly ParamSpec[], cfg: OptimizerConfig, maxElements = UPDATE_CHUNK_ELEMENTS): { norm: ModelProto; update: ModelProto[] } {
  return { norm: buildNormGraph(params), update: chunkParams(params, maxElements).map((c) => buildUpdateGraph(c, cfg, { coefInput: true })) };
}
