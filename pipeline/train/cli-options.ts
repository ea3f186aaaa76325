// Optimizer options shared by `collapse train` and `collapse artifact build`.
import type { Argv } from 'yargs';

export interface OptimizerArgs {
  optimizer: 'adamw' | 'sgd';
  'weight-decay': number;
  'adam-beta1': number;
  'adam-beta2': number;
  'adam-epsilon': number;
}

export function optimizerOptions<T>(y: Argv<T>): Argv<T & OptimizerArgs> {
  return y
    .option('optimizer', { choices: ['adamw', 'sgd'] as const, default: 'adamw' as const, describe: 'adamw (torch.optim.AdamW) or sgd (param - lr * grad)' })
    .option('weight-decay', { type: 'number', default: 0, describe: 'Weight decay (AdamW: decoupled; SGD: L2). Biases and LayerNorm weights are exempt (HF Trainer)' })
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
