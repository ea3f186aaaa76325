// The training hyperparameters: one zod schema holds every default. `finetune` resolves its options through
// it (errors name the option), the run config's `train` section takes its defaults from it, and `collapse train`
// / `collapse artifact build` read their flag defaults from TRAIN_DEFAULTS.
import { z } from 'zod';
import { DEFAULT_ADAMW } from '../../models/train/optimizers.js';
import { parseOptions } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);
const probability = z.number().min(0).lt(1, 'expected a probability in [0, 1)');

/** Each hyperparameter with its default (shared with the run config's `train` section). */
export const trainFields = {
  epochs: int(1).default(5),
  batchSize: int(1).default(128),
  microBatchSize: int(1).default(8),
  lr: z.number().positive().default(2e-5),
  optimizer: z.enum(['adamw', 'sgd']).default('adamw'),
  weightDecay: z.number().min(0).default(DEFAULT_ADAMW.weightDecay),
  /** Parameters weight decay skips: `bias-and-norm` (HF Trainer) or `none` (torch.optim.AdamW, the paper's code). */
  decayExclude: z.enum(['bias-and-norm', 'none']).default('bias-and-norm'),
  beta1: z.number().min(0).max(1).default(DEFAULT_ADAMW.beta1),
  beta2: z.number().min(0).max(1).default(DEFAULT_ADAMW.beta2),
  eps: z.number().positive().default(DEFAULT_ADAMW.eps),
  /** Per-step linear/cosine/constant (HF Trainer), or `cosine-epoch`: CosineAnnealingLR(T_max=epochs, eta_min=minLr) stepped per epoch. */
  schedule: z.enum(['linear', 'constant', 'cosine', 'cosine-epoch']).default('linear'),
  warmupSteps: int().default(0),
  /** The floor of `cosine-epoch` (eta_min). */
  minLr: z.number().min(0).default(0),
  /** Global gradient-norm clipping threshold, null for none (the HF Trainer's max_grad_norm, 1.0 by default). */
  maxGradNorm: z.number().positive().nullable().default(1),
  /** OPT `dropout` during training (after the attention output projection and fc2); 0 = off. */
  dropout: probability.default(0),
  /** OPT `attention_dropout` during training (on the attention probabilities); 0 = off. */
  attentionDropout: probability.default(0),
  /** Seed of the data order and the dropout masks. */
  seed: int().default(0),
  /** Checkpoint every N optimizer steps (0: only at epoch ends). */
  checkpointEvery: int().default(50),
  /** When one micro-batch makes a batch, one graph computes gradients and update (a cross-check: slower, more peak memory). */
  fusedStep: z.boolean().default(false),
};

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
