// Optimizer flags shared by `collapse train` and `collapse artifact build`; their defaults are the training
// options' (pipeline/train/options.ts).
import type { Argv } from 'yargs';
import { TRAIN_DEFAULTS } from '../pipeline/train/options.js';

export interface OptimizerArgs {
  optimizer: 'adamw' | 'sgd';
  'weight-decay': number;
  'adam-beta1': number;
  'adam-beta2': number;
  'adam-epsilon': number;
  'decay-exclude': 'bias-and-norm' | 'none';
  dropout: number;
  'attention-dropout': number;
}

const d = TRAIN_DEFAULTS;

export function optimizerOptions<T>(y: Argv<T>): Argv<T & OptimizerArgs> {
  return y
    .option('optimizer', { choices: ['adamw', 'sgd'] as const, default: d.optimizer, describe: 'adamw (torch.optim.AdamW) or sgd (param - lr * grad)' })
    .option('weight-decay', { type: 'number', default: d.weightDecay, describe: 'Weight decay (AdamW: decoupled; SGD: L2); see --decay-exclude' })
    .option('decay-exclude', { choices: ['bias-and-norm', 'none'] as const, default: d.decayExclude, describe: 'Parameters without weight decay: biases and LayerNorm weights (HF Trainer) or none (torch.optim.AdamW, the paper\'s code)' })
    .option('dropout', { type: 'number', default: d.dropout, describe: 'OPT dropout in training, after the attention output projection and fc2 (the paper\'s code: 0.1, from OPT-125m\'s config); masks from --seed' })
    .option('attention-dropout', { type: 'number', default: d.attentionDropout, describe: 'OPT attention dropout in training (OPT-125m: 0)' })
    .option('adam-beta1', { type: 'number', default: d.beta1, describe: 'AdamW beta1' })
    .option('adam-beta2', { type: 'number', default: d.beta2, describe: 'AdamW beta2' })
    .option('adam-epsilon', { type: 'number', default: d.eps, describe: 'AdamW epsilon' }) as unknown as Argv<T & OptimizerArgs>;
}
