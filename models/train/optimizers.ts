// Optimizers as ONNX update graphs: one graph maps (params, summed gradients, moments, a few scalars) to the
// new params and moments, so the arithmetic runs inside onnxruntime instead of JavaScript loops.
// Semantics follow PyTorch (torch.optim.AdamW / Adam / SGD, clip_grad_norm_) and the Hugging Face Trainer's
// schedules, so a run here can be compared with a PyTorch run step by step.
import { GraphBuilder } from '../onnx/graph.js';
import { DataType, type ModelProto } from '../onnx/proto.js';

export type OptimizerName = 'adamw' | 'adam' | 'sgd';
/** Per-step schedules as transformers' get_*_schedule_with_warmup; `cosine-epoch` as torch's CosineAnnealingLR
 *  stepped once per epoch (PyTorch Lightning's default interval), which the paper's code uses. */
export type ScheduleName = 'constant' | 'linear' | 'cosine' | 'cosine-epoch';
/** Which parameters weight decay skips: none (torch.optim.AdamW on model.parameters(), the paper's code) or
 *  biases and LayerNorm weights (the HF Trainer). */
export type DecayExclude = 'none' | 'bias-and-norm';

export interface OptimizerConfig {
  name: OptimizerName;
  /** Decoupled (AdamW) or L2 (Adam and SGD: added to the gradient as PyTorch does) weight decay. HF default 0. */
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
  /** cosine-epoch: the floor eta_min (the paper's code: 1e-6). Ignored by the per-step schedules. */
  minLr?: number;
}

export const DEFAULT_ADAMW: Omit<OptimizerConfig, 'noDecay'> = { name: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** HF Trainer's rule: no decay for biases and LayerNorm weights; rank-1 tensors of foreign exports are treated the same. */
export function defaultNoDecay(params: readonly { name: string; shape: readonly number[] }[]): string[] {
  return params.filter((p) => /bias|norm|ln_?\d*\b|\.ln/i.test(p.name) || p.shape.length <= 1).map((p) => p.name);
}

/** The parameters weight decay skips under `exclude`. */
export function noDecayOf(exclude: DecayExclude, params: readonly { name: string; shape: readonly number[] }[]): string[] {
  return exclude === 'none' ? [] : defaultNoDecay(params);
}

/** Where the loop stands when it asks for the learning rate: optimizer step (0-based) and epoch (0-based). */
export interface SchedulePosition {
  step: number;
  totalSteps: number;
  epoch: number;
  epochs: number;
}

/**
 * The learning rate of the step at `at`. cosine-epoch is CosineAnnealingLR(T_max = epochs, eta_min = minLr) in
 * its closed form, constant within an epoch: eta_min + (base - eta_min) (1 + cos(pi epoch / epochs)) / 2.
 * It has no warmup (the config refuses one).
 */
export function scheduledLr(s: ScheduleConfig, baseLr: number, at: SchedulePosition): number {
  if (s.name === 'cosine-epoch') {
    if (s.warmupSteps > 0) throw new Error('schedule cosine-epoch has no warmup (CosineAnnealingLR); set the warmup steps to 0');
    const minLr = s.minLr ?? 0;
    return minLr + ((baseLr - minLr) * (1 + Math.cos((Math.PI * at.epoch) / at.epochs))) / 2;
  }
  return baseLr * lrFactor(s, at.step, at.totalSteps);
}

/** The learning-rate multiplier at optimizer step `step` (0-based), as transformers' get_*_schedule_with_warmup. */
export function lrFactor(s: ScheduleConfig, step: number, totalSteps: number): number {
  const w = s.warmupSteps;
  if (step < w) return step / Math.max(1, w);
  if (s.name === 'constant') return 1;
  const progress = (step - w) / Math.max(1, totalSteps - w);
  if (s.name === 'linear') return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - w));
  if (s.name === 'cosine-epoch') throw new Error('lrFactor: cosine-epoch depends on the epoch; use scheduledLr');
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export interface ParamSpec {
  name: string;
  shape: number[];
}

export const UPDATE_SCALARS = ['lr', 'step_size', 'inv_sqrt_bc2', 'decay', 'max_norm', 'clip_coef', 'l2'] as const;
export type UpdateScalar = (typeof UPDATE_SCALARS)[number];

/** Names used by the update graph for one parameter. */
export const gradName = (p: string): string => `grad.${p}`;
export const momentName = (k: 'm' | 'v', p: string): string => `${k}.${p}`;
export const newName = (p: string): string => `new.${p}`;

/** Moment tensors an optimizer keeps per parameter. */
export function momentKinds(name: OptimizerName): ('m' | 'v')[] {
  return name === 'sgd' ? [] : ['m', 'v'];
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
    l2: cfg.weightDecay,
  };
}

/** torch.nn.utils.clip_grad_norm_'s coefficient: min(1, max_norm / (norm + 1e-6)); exactly 1 without clipping. */
export function clipCoef(norm: number, maxNorm: number | null): number {
  return maxNorm === null ? 1 : Math.min(1, maxNorm / (norm + 1e-6));
}

/** A graph from all grad.* to their global L2 norm (`grad_norm`), computed before the flat updates. */
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
 * Builds the update graph. Inputs: each param `p`, `grad.p` (the gradient of the batch-mean loss), moments
 * `m.p`/`v.p` (AdamW), and the scalars of UPDATE_SCALARS. Outputs: `new.p`, `new.m.p`, `new.v.p` and
 * `grad_norm` (the global norm before clipping, as clip_grad_norm_ returns it). The fused step graph is built
 * from it; the split step uses buildNormGraph + buildFlatUpdateGraph instead.
 * With `gradsAreInternal`, the grad.* values are not declared as inputs (the fused step graph produces them).
 */
export function buildUpdateGraph(
  params: readonly ParamSpec[],
  cfg: OptimizerConfig,
  opts: { gradsAreInternal?: boolean; opset?: number } = {},
): ModelProto {
  const g = new GraphBuilder('opt/'); // prefixed: the fused step graph merges it with the gradient graph
  g.reserve(params.flatMap((p) => [p.name, gradName(p.name), momentName('m', p.name), momentName('v', p.name)]));
  const F = DataType.FLOAT;
  const scalars = UPDATE_SCALARS.filter((k) => k !== 'l2' && k !== 'clip_coef');
  const s = Object.fromEntries(scalars.map((k) => [k, g.input(k, F, [])])) as Record<UpdateScalar, string>;
  for (const p of params) {
    g.input(p.name, F, p.shape);
    if (!opts.gradsAreInternal) g.input(gradName(p.name), F, p.shape);
    for (const k of momentKinds(cfg.name)) g.input(momentName(k, p.name), F, p.shape);
  }
  // Global-norm clipping (torch.nn.utils.clip_grad_norm_): coef = min(1, max_norm / (norm + 1e-6)).
  const sq = params.map((p) => g.op('ReduceSumSquare', [gradName(p.name)], { keepdims: 0 }));
  const norm = g.op('Sqrt', [sq.length === 1 ? sq[0]! : g.op('Sum', sq)]);
  g.opN('Identity', [norm], {}, { outputs: ['grad_norm'] });
  g.output('grad_norm', F, []);
  const coef = g.op('Min', [g.op('Div', [s.max_norm, g.op('Add', [norm, g.scalar(1e-6)])]), g.scalar(1)]);
  const noDecay = new Set(cfg.noDecay);
  const b1 = g.scalar(cfg.beta1), b1c = g.scalar(1 - cfg.beta1), b2 = g.scalar(cfg.beta2), b2c = g.scalar(1 - cfg.beta2);
  const eps = g.scalar(cfg.eps);
  for (const p of params) {
    let grad = g.op('Mul', [gradName(p.name), coef]);
    const decays = cfg.weightDecay !== 0 && !noDecay.has(p.name);
    if (cfg.name === 'sgd') {
      // PyTorch SGD: L2 decay joins the gradient; then p - lr * g (exactly that, in float32).
      const d = decays ? g.op('Add', [grad, g.op('Mul', [p.name, g.scalar(cfg.weightDecay)])]) : grad;
      g.opN('Sub', [p.name, g.op('Mul', [s.lr, d])], {}, { outputs: [newName(p.name)] });
    } else {
      // torch.optim.AdamW (single-tensor path): decoupled decay first, then the bias-corrected Adam step.
      // torch.optim.Adam: the decay joins the gradient (coupled L2) and the weights are not shrunk.
      const pd = decays && cfg.name === 'adamw' ? g.op('Mul', [p.name, s.decay]) : p.name;
      if (decays && cfg.name === 'adam') grad = g.op('Add', [grad, g.op('Mul', [p.name, g.scalar(cfg.weightDecay)])]);
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


/** Elements per update call: the flat update graph runs on slices of this size. 1 MB slices keep the
 *  intermediates in cache (the fastest of the sizes tried; scripts/bench-train.ts's header has the figures). */
export const UPDATE_CHUNK_ELEMENTS = 1 << 18;

/**
 * The flat update graph, shared by every parameter: inputs `param`, `grad` (and `m`, `v` for AdamW) of any length
 * [n], plus scalars (`clip_coef`; AdamW: `step_size`, `inv_sqrt_bc2`, `decay`; Adam: `step_size`, `inv_sqrt_bc2`, `l2`;
 * SGD: `lr`, `l2`); outputs `new.param`
 * (`new.m`, `new.v`). The engine runs it over slices of each parameter and writes the results back in place, so one
 * small session serves the whole model and no parameter-sized temporaries exist. Per-parameter choices (no weight
 * decay for biases and LayerNorm weights) are made by the scalars fed: decay = 1, l2 = 0.
 */
export function buildFlatUpdateGraph(cfg: OptimizerConfig): ModelProto {
  const g = new GraphBuilder('opt/');
  const F = DataType.FLOAT;
  const n = ['n'];
  g.input('param', F, n);
  g.input('grad', F, n);
  const coef = g.input('clip_coef', F, []);
  let grad = g.op('Mul', ['grad', coef]);
  if (cfg.name === 'sgd') {
    const lr = g.input('lr', F, []), l2 = g.input('l2', F, []);
    const d = cfg.weightDecay !== 0 ? g.op('Add', [grad, g.op('Mul', ['param', l2])]) : grad;
    g.opN('Sub', ['param', g.op('Mul', [lr, d])], {}, { outputs: [newName('param')] });
  } else {
    const stepSize = g.input('step_size', F, []), invBc2 = g.input('inv_sqrt_bc2', F, []);
    const coupled = cfg.name === 'adam';
    const decay = g.input(coupled ? 'l2' : 'decay', F, []);
    g.input('m', F, n);
    g.input('v', F, n);
    if (coupled && cfg.weightDecay !== 0) grad = g.op('Add', [grad, g.op('Mul', ['param', decay])]);
    const pd = !coupled && cfg.weightDecay !== 0 ? g.op('Mul', ['param', decay]) : 'param';
    const m = g.op('Add', [g.op('Mul', ['m', g.scalar(cfg.beta1)]), g.op('Mul', [grad, g.scalar(1 - cfg.beta1)])], {}, { outputs: [newName('m')] });
    const v = g.op('Add', [g.op('Mul', ['v', g.scalar(cfg.beta2)]), g.op('Mul', [g.op('Mul', [grad, grad]), g.scalar(1 - cfg.beta2)])], {}, { outputs: [newName('v')] });
    const denom = g.op('Add', [g.op('Mul', [g.op('Sqrt', [v]), invBc2]), g.scalar(cfg.eps)]);
    g.opN('Sub', [pd, g.op('Mul', [stepSize, g.op('Div', [m, denom])])], {}, { outputs: [newName('param')] });
    g.output(newName('m'), F, n);
    g.output(newName('v'), F, n);
  }
  g.output(newName('param'), F, n);
  return g.model({ name: `update_${cfg.name}` });
}
