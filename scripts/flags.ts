// Strict flags, in one place for every command: a numeric flag must be a number (yargs turns `--seed abc`
// into NaN), within the range its name implies (the table below), and given once (yargs would silently
// turn `--epochs 3 --epochs 4` into an array). The CLI applies `checkFlags` as a middleware after each
// command's builder, so a command cannot forget it; commands may still check more (e.g. cross-flag rules).
import type { Argv } from 'yargs';
import { MAX_NUM_BEAMS } from '../pipeline/generate/options.js';
import { checkThreads } from '../util/cores.js';
import { checkOption } from '../util/options.js';

type Range = { int?: boolean; min?: number; gt?: number; max?: number };

const INT0: Range = { int: true, min: 0 };
const INT1: Range = { int: true, min: 1 };
const POSITIVE: Range = { gt: 0 };

/** The range of each numeric flag, by name (the same name means the same kind of value in every command). */
export const FLAG_RANGES: Record<string, Range> = {
  seed: INT0,
  'source-seed': INT0,
  threads: INT0,
  rows: INT1,
  epochs: INT1,
  'batch-size': INT1,
  'micro-batch-size': INT1,
  'block-size': { int: true, min: 2 },
  'chunk-size': INT1,
  'num-beams': { int: true, min: 1, max: MAX_NUM_BEAMS },
  'num-return-sequences': { int: true, min: 1, max: MAX_NUM_BEAMS },
  'new-tokens': INT1,
  'min-new-tokens': INT0,
  'no-repeat-ngram-size': INT0,
  'repetition-penalty': POSITIVE,
  temperature: POSITIVE,
  'top-k': INT0,
  'top-p': { gt: 0, max: 1 },
  'length-penalty': {},
  lr: POSITIVE,
  'warmup-steps': INT0,
  'max-grad-norm': { min: 0 },
  'checkpoint-every': INT0,
  'weight-decay': { min: 0 },
  'adam-beta1': { min: 0, max: 1 },
  'adam-beta2': { min: 0, max: 1 },
  'adam-epsilon': POSITIVE,
  'min-lr': { min: 0 },
  dropout: { min: 0, max: 1 }, // 1 itself is refused by finetune: a probability in [0, 1)
  'attention-dropout': { min: 0, max: 1 },
  'num-proc': INT1,
  'shard-index': INT0,
  'num-shards': INT1,
  generation: INT0,
  gen: INT0,
  generations: INT0,
  runs: INT1,
  'poll-seconds': POSITIVE,
  'self-bleu-samples': INT0,
  'pad-id': INT0,
  bins: INT1,
  states: INT1,
  components: INT1,
  tol: POSITIVE,
  'max-iter': INT1,
  // theory vae
  batch: INT1,
  latent: INT1,
  capacity: INT1,
  beta: { min: 0 },
  holdout: INT1,
  'eval-samples': { int: true, min: 2 },
};

interface YargsOptions {
  array: string[];
  number: string[];
  boolean: string[];
  string: string[];
  key: Record<string, unknown>;
}

/** Throws a message naming the flag when a value is repeated, not a number, or out of its range. */
export function checkFlags(argv: Record<string, unknown>, opts: YargsOptions, given: readonly string[] = []): void {
  const isArray = new Set(opts.array);
  const isNumber = new Set(opts.number);
  for (const key of Object.keys(opts.key)) {
    if (key.length === 1 || /[A-Z]/.test(key) || key === '_' || key === '$0') continue; // aliases, camelCase copies
    const v = argv[key];
    if (v === undefined) continue;
    if (Array.isArray(v) && !isArray.has(key)) {
      throw new Error(`--${key} was given ${v.length} times (${v.map(String).join(', ')}); give it once`);
    }
    if (!isNumber.has(key)) continue;
    const range = FLAG_RANGES[key] ?? {};
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x !== 'number' || Number.isNaN(x)) {
        const raw = rawValue(given, key);
        throw new Error(`--${key} ${raw ?? String(x)}: not a number`);
      }
      checkOption(`--${key}`, x, range);
      if (key === 'threads') checkThreads('--threads', x);
    }
  }
}

/** The text the user typed after --key (for the message: yargs has already turned it into NaN). */
function rawValue(given: readonly string[], key: string): string | undefined {
  for (let i = 0; i < given.length; i++) {
    const a = given[i]!;
    if (a === `--${key}`) return given[i + 1];
    if (a.startsWith(`--${key}=`)) return a.slice(key.length + 3);
  }
  return undefined;
}

/** Registers the check as a middleware that runs after validation of each command's own options. */
export function strictFlags<T>(y: Argv<T>, given: readonly string[]): Argv<T> {
  const check = (argv: unknown, inst: unknown): void => {
    const opts = (inst as { getOptions(): YargsOptions }).getOptions();
    checkFlags(argv as Record<string, unknown>, opts, given);
  };
  return y.middleware(check as never, false);
}

/** Library option names whose flag is not their kebab-case form. */
const FLAG_OF_OPTION: Record<string, string> = { beta1: 'adam-beta1', beta2: 'adam-beta2', eps: 'adam-epsilon', microBatch: 'micro-batch-size' };

/** The flag of a library option (`microBatchSize` -> `--micro-batch-size`), for OptionError messages. */
export function flagOf(option: string): string {
  if (option.startsWith('-')) return option;
  return `--${FLAG_OF_OPTION[option] ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Flags whose own name starts with `no-` (Hugging Face's no_repeat_ngram_size). yargs reads `--no-x 4` as the
 * negation of a flag `x` followed by a stray 4, so `withOwnNoFlags` joins such a flag to its value
 * (`--no-repeat-ngram-size=4`, which yargs reads as the flag itself) before yargs sees the line. Such a flag
 * without a value is refused here, by name (yargs would name the flag `x`).
 */
export const OWN_NO_FLAGS = Object.keys(FLAG_RANGES).filter((f) => f.startsWith('no-'));

export function withOwnNoFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (!a.startsWith('--') || !OWN_NO_FLAGS.includes(a.slice(2))) out.push(a);
    else if (next !== undefined && !next.startsWith('--')) out.push(`${a}=${next}`), i++;
    else throw new Error(`${a} needs a value, e.g. \`${a} 3\` (0 = off)`);
  }
  return out;
}
