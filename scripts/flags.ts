// Strict flags, in one place for every command: a numeric flag must be a number (yargs turns `--seed abc`
// into NaN), within its range (a declared option's from its schema, util/options.ts; other flags' from the table
// below), and given once (yargs would silently turn `--epochs 3 --epochs 4` into an array). The CLI applies
// `checkFlags` as a middleware after each command's builder, so a command cannot forget it; commands may still
// check more (e.g. cross-flag rules). Commands add a declared option's flag with `.options(optionFlags(...))` and
// read it back with `optionArgs`, under the option's own name.
import type { Argv, Options } from 'yargs';
import type { z } from 'zod';
import { BLOCK_OPTIONS } from '../datasets/blocks.js';
import { PREPARE_OPTIONS } from '../datasets/prepare.js';
import { providerFromEnv, SESSION_OPTIONS, type Provider } from '../models/session-options.js';
import { EVAL_OPTIONS } from '../pipeline/eval/options.js';
import { GENERATE_OPTIONS } from '../pipeline/generate/options.js';
import { TRAIN_OPTIONS } from '../pipeline/train/options.js';
import { checkThreads } from '../util/cores.js';
import { checkOption } from '../util/options.js';
import { choicesOf, defaultOf, flagOfKey, kindOf, rangeOf, type Range, type OptionDecls } from '../util/options.js';

/** Every library's declared options that commands take as flags (each flag is its option's key in kebab-case). */
const FLAG_OPTIONS: readonly OptionDecls[] = [TRAIN_OPTIONS, GENERATE_OPTIONS, EVAL_OPTIONS, BLOCK_OPTIONS, PREPARE_OPTIONS, SESSION_OPTIONS];

const INT0: Range = { int: true, min: 0 };
const INT1: Range = { int: true, min: 1 };
const POSITIVE: Range = { gt: 0 };

/** The range of each numeric flag that is not a declared option (run, data, model, theory and slurm flags). */
const COMMAND_FLAG_RANGES: Record<string, Range> = {
  rows: INT1,
  generations: INT0,
  gen: INT0,
  runs: INT1,
  'poll-seconds': POSITIVE,
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

/**
 * The range of each numeric flag, by name: a declared option's from its schema, the others from the table above.
 * The same name means the same kind of value in every command: two declarations of one flag must agree.
 */
export const FLAG_RANGES: Record<string, Range> = (() => {
  const out: Record<string, Range> = { ...COMMAND_FLAG_RANGES };
  const owner: Record<string, string> = {};
  for (const decls of FLAG_OPTIONS)
    for (const [key, d] of Object.entries(decls)) {
      if (kindOf(d.schema) !== 'number') continue;
      const flag = flagOfKey(key);
      const range = rangeOf(d.schema);
      if (flag in out && JSON.stringify(out[flag]) !== JSON.stringify(range))
        throw new Error(
          flag in owner
            ? `--${flag} is declared twice with different ranges (${JSON.stringify(out[flag])}, ${JSON.stringify(range)}): give one option one range`
            : `--${flag}: its option's range ${JSON.stringify(range)} differs from the command flag table's ${JSON.stringify(out[flag])}`,
        );
      out[flag] = range;
      owner[flag] = key;
    }
  return out;
})();

/**
 * The flags of some declared options, for yargs' `.options(...)`: type, choices, default and help from each
 * declaration. `noDefault` leaves a default to the handler (a shard from the environment).
 */
export function optionFlags<S extends OptionDecls>(decls: S, o: { noDefault?: readonly (keyof S & string)[] } = {}): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [key, d] of Object.entries(decls)) {
    const kind = kindOf(d.schema);
    const def = o.noDefault?.includes(key) ? undefined : defaultOf(d.schema);
    out[flagOfKey(key)] = {
      ...(kind === 'enum' ? { choices: choicesOf(d.schema) } : { type: kind === 'other' ? 'string' : kind }),
      ...(def !== undefined && def !== null ? { default: def } : {}),
      describe: d.help,
    };
  }
  return out;
}

/** The values of some declared options from a parsed command line (yargs gives each flag back under its key). */
export function optionArgs<S extends OptionDecls>(argv: object, decls: S): { [K in keyof S]?: z.input<S[K]['schema']> } {
  const a = argv as Record<string, unknown>;
  return Object.fromEntries(Object.keys(decls).filter((k) => a[k] !== undefined).map((k) => [k, a[k]])) as { [K in keyof S]?: z.input<S[K]['schema']> };
}

/** --threads and --provider, for a command that runs models; --provider's default is read when it runs (below). */
export const sessionFlags = (): Record<string, Options> => optionFlags(SESSION_OPTIONS, { noDefault: ['provider'] });

/** The session settings of a parsed command line: --provider defaults to COLLAPSE_PROVIDER (models/session-options.ts). */
export function sessionArgs(argv: object): { threads?: number; provider: Provider } {
  const a = optionArgs(argv, SESSION_OPTIONS);
  return { threads: a.threads, provider: a.provider ?? providerFromEnv() };
}

/** Flags renamed to their option's name: refused with the new name, so an old script fails with the fix in hand. */
export const RENAMED_FLAGS: Record<string, string> = { 'adam-beta1': 'beta1', 'adam-beta2': 'beta2', 'adam-epsilon': 'eps', 'synthetic-source-seed': 'source-seed' };

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

/** The flag of a library option (`microBatchSize` -> `--micro-batch-size`), for OptionError messages. */
export const flagOf = (option: string): string => (option.startsWith('-') ? option : `--${flagOfKey(option)}`);

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
    const renamed = RENAMED_FLAGS[/^--([^=]+)/.exec(a)?.[1] ?? ''];
    if (renamed) throw new Error(`${a.split('=')[0]} was renamed to --${renamed} (the option's name everywhere); use --${renamed}`);
    const next = argv[i + 1];
    if (!a.startsWith('--') || !OWN_NO_FLAGS.includes(a.slice(2))) out.push(a);
    else if (next !== undefined && !next.startsWith('--')) out.push(`${a}=${next}`), i++;
    else throw new Error(`${a} needs a value, e.g. \`${a} 3\` (0 = off)`);
  }
  return out;
}
