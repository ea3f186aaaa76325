// The training options, each declared once (util/options.ts): `finetune` resolves its options through them
// (errors name the option), the run config's `train` section is made of them, and `collapse train` / `collapse
// artifact build` take them as flags of the same names.
import { z } from 'zod';
import { DEFAULT_ADAMW } from '../../models/train/optimizers.js';
import { parseOptions } from '../../util/options.js';
import { fieldsOf, option } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);
const probability = z.number().min(0).lt(1, 'expected a probability in [0, 1)');

export const TRAIN_OPTIONS = {
  epochs: option(int(1).default(5), 'Passes over the training corpus (the paper: 5)', { paper: { source: 'paper text', note: '5 epochs (10 in the 10%-original runs)' } }),
  batchSize: option(int(1).default(128), 'Blocks per optimizer step (the paper: 128)', { paper: { source: 'paper text', note: '128 blocks' } }),
  microBatchSize: option(int(1).default(8), 'Blocks per forward/backward pass; divides --batch-size (memory vs speed)', {
    paper: { source: 'our choice', note: 'memory only: gradients are accumulated to the full batch of 128' },
  }),
  lr: option(z.number().positive().default(2e-5), 'Peak learning rate (the paper: 2e-5)', { paper: { source: 'paper text', note: '2e-5' } }),
  optimizer: option(z.enum(['adamw', 'sgd']).default('adamw'), 'adamw (torch.optim.AdamW) or sgd (param - lr * grad)', {
    paper: { source: 'paper code', note: 'torch.optim.AdamW (plt_model.py)' },
  }),
  weightDecay: option(z.number().min(0).default(DEFAULT_ADAMW.weightDecay), 'Weight decay (AdamW: decoupled; SGD: L2); see --decay-exclude', {
    paper: { source: 'paper code', note: "torch.optim.AdamW's default 0.01" },
  }),
  decayExclude: option(
    z.enum(['bias-and-norm', 'none']).default('bias-and-norm'),
    "Parameters without weight decay: biases and LayerNorm weights (HF Trainer) or none (torch.optim.AdamW, the paper's code)",
    { paper: { source: 'paper code', note: 'AdamW(self.parameters()): biases and LayerNorm weights decay too' }, addedLater: true },
  ),
  schedule: option(
    z.enum(['linear', 'constant', 'cosine', 'cosine-epoch']).default('linear'),
    "LR schedule: per step as the HF Trainer (linear decay by default), or cosine-epoch: CosineAnnealingLR(T_max=epochs, eta_min=--min-lr) stepped once per epoch (the paper's code)",
    { paper: { source: 'paper code', note: 'CosineAnnealingLR(T_max=epochs) stepped once per epoch (Lightning default)' } },
  ),
  warmupSteps: option(int().default(0), 'Linear warmup steps', { paper: { source: 'paper code', note: 'no warmup' } }),
  minLr: option(z.number().min(0).default(0), "cosine-epoch: the floor eta_min (the paper's code: 1e-6)", { paper: { source: 'paper code', note: 'eta_min=1e-6' }, addedLater: true }),
  maxGradNorm: option(
    z.number().min(0).nullable().default(1),
    "Clip gradients to this global norm (HF Trainer's max_grad_norm, 1 by default; 0 or null = off)",
    { paper: { source: 'paper code', note: "no clipping (Lightning's gradient_clip_val unset)" } },
  ),
  dropout: option(probability.default(0), "OPT dropout in training, after the attention output projection and fc2 (the paper's code: 0.1, from OPT-125m's config); masks from the seed", {
    paper: { source: 'paper code', note: "OPT-125m's dropout 0.1, active in Lightning's train mode" },
    addedLater: true,
  }),
  attentionDropout: option(probability.default(0), 'OPT attention dropout in training, on the attention probabilities (OPT-125m: 0)', {
    paper: { source: 'paper code', note: "OPT-125m's attention_dropout 0" },
    addedLater: true,
  }),
  beta1: option(z.number().min(0).max(1).default(DEFAULT_ADAMW.beta1), 'AdamW beta1 (torch.optim.AdamW betas[0])'),
  beta2: option(z.number().min(0).max(1).default(DEFAULT_ADAMW.beta2), 'AdamW beta2 (torch.optim.AdamW betas[1])'),
  eps: option(z.number().positive().default(DEFAULT_ADAMW.eps), 'AdamW epsilon'),
  seed: option(int().default(0), 'Seed of the data order and the dropout masks', { inRunConfig: false }),
  checkpointEvery: option(int().default(50), 'Checkpoint every N optimizer steps (0 = only at epoch ends)'),
  fusedStep: option(
    z.boolean().default(false),
    'When one micro-batch makes a batch, one graph computes gradients and update (a cross-check: slower, about 2x the peak memory; docs/performance.md)',
  ),
};

/** Each option's schema (the run config's `train` section picks the same ones). */
export const trainFields = fieldsOf(TRAIN_OPTIONS);

type Rules = { batchSize: number; microBatchSize: number; lr: number; minLr: number; schedule: string; warmupSteps: number };

/** The cross-option rules, in the option names of `names` (the run config says `train.batchSize`). */
export function withTrainRules<S extends z.ZodType<Rules>>(schema: S, name: (k: keyof Rules) => string = (k) => k) {
  return schema
    .refine((t) => t.batchSize % t.microBatchSize === 0, {
      message: `${name('batchSize')} must be a multiple of ${name('microBatchSize')}`,
      path: ['batchSize'],
    })
    .refine((t) => t.schedule !== 'cosine-epoch' || t.warmupSteps === 0, {
      message: `schedule cosine-epoch has no warmup (CosineAnnealingLR): set ${name('warmupSteps')} to 0`,
      path: ['warmupSteps'],
    })
    .refine((t) => t.minLr <= t.lr, { message: `${name('minLr')} must not exceed ${name('lr')}`, path: ['minLr'] });
}

export const TrainOptionsSchema = withTrainRules(z.object(trainFields));
export type TrainOptions = z.output<typeof TrainOptionsSchema>;
export type TrainOptionsInput = z.input<typeof TrainOptionsSchema>;

/** Every option at its default. */
export const TRAIN_DEFAULTS: TrainOptions = TrainOptionsSchema.parse({});

/** With option names as {name} markers, for OptionError to fill in. */
const MarkedSchema = withTrainRules(z.object(trainFields), (k) => `{${k}}`);

/** The training options of `input` (other keys ignored) with their defaults; an invalid one is an OptionError. */
export const resolveTrainOptions = (input: TrainOptionsInput): TrainOptions => parseOptions(MarkedSchema, trainFields, input);

/** The clipping threshold the optimizer step takes: null when clipping is off (maxGradNorm 0 or null). */
export const clipThreshold = (o: Pick<TrainOptions, 'maxGradNorm'>): number | null => (o.maxGradNorm !== null && o.maxGradNorm > 0 ? o.maxGradNorm : null);
