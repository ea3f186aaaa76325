// Optimizer options shared by `collapse train` and `collapse artifact build`.
import type { Argv } from 'yargs';

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

export function optimizerOptions<T>(y: Argv<T>): Argv<T & OptimizerArgs> {
  return y
    .option('optimizer', { choices: ['adamw', 'sgd'] as const, default: 'adamw' as const, describe: 'adamw (torch.optim.AdamW) or sgd (param - lr * grad)' })
    .option('weight-decay', { type: 'number', default: 0, describe: 'Weight decay (AdamW: decoupled; SGD: L2); see --decay-exclude' })
    .option('decay-exclude', { choices: ['bias-and-norm', 'none'] as const, default: 'bias-and-norm' as const, describe: 'Parameters without weight decay: biases and LayerNorm weights (HF Trainer) or none (torch.optim.AdamW, the paper\'s code)' })
    .option('dropout', { type: 'number', default: 0, describe: 'OPT dropout in training, after the attention output projection and fc2 (the paper\'s code: 0.1, from OPT-125m\'s config); masks from --seed' })
    .option('attention-dropout', { type: 'number', default: 0, describe: 'OPT attention dropout in training (OPT-125m: 0)' })
    .option('adam-beta1', { type: 'number', default: 0.9, describe: 'AdamW beta1' })
    .option('adam-beta2', { type: 'number', default: 0.999, describe: 'AdamW beta2' })
    .option('adam-epsilon', { type: 'number', default: 1e-8, describe: 'AdamW epsilon' }) as unknown as Argv<T & OptimizerArgs>;
}

export function checkNumber(flag: string, v: number, o: { int?: boolean; min?: number; gt?: number; max?: number } = {}): void {
  const bad =
    !Number.isFinite(v) || (o.int && !Number.isInteger(v)) || (o.min !== undefined && v < o.min) || (o.gt !== undefined && v <= o.gt) || (o.max !== undefined && v > o.max);
  if (!bad) return;
  const bounds = [o.min !== undefined ? `>= ${o.min}` : '', o.gt !== undefined ? `> ${o.gt}` : '', o.max !== undefined ? `<= ${o.max}` : ''].filter(Boolean);
  const want = `${o.int ? 'an integer' : 'a number'}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  throw new Error(`${flag} ${v}: expected ${want}`);
}
