// Library options, each declared once, and their errors.
// A library declares its options next to its code with `option` (below): the zod schema (type, default,
// range), one line of help and, where the paper presets fix it, where their value comes from. From these
// declarations come the library's option schema, the run config's sections (pipeline/run/config.ts), the CLI's
// flags with their range checks (scripts/flags.ts), `--print-config`'s notes and the README's table of paper
// settings, so an option has one name and one owner. Its flag is always the kebab-case of its key
// (`noRepeatNgramSize` -> `--no-repeat-ngram-size`) and yargs hands it back under the key itself: no table maps
// one name to another.
// An invalid value is an OptionError named by the option's own name (`batchSize`), so that a call from a config
// file or from code reads in that call's terms. The CLI prints the same error with its flag names: the problem
// text is a function of a namer, so names inside it are translated too.
import type { z } from 'zod';

export type Namer = (option: string) => string;

export class OptionError extends Error {
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly problem: (name: Namer) => string,
  ) {
    super('');
    this.message = this.describe((o) => o);
  }

  /** The message with every option named by `name`. */
  describe(name: Namer): string {
    const v = typeof this.value === 'string' ? JSON.stringify(this.value) : String(this.value);
    return `${name(this.option)} ${v}: ${this.problem(name)}`;
  }
}

/** Throws an OptionError unless `v` is a finite number (an integer with `int`) within the bounds. */
export function checkOption(option: string, v: number, o: Range = {}): void {
  const bad =
    !Number.isFinite(v) ||
    (o.int && !Number.isInteger(v)) ||
    (o.min !== undefined && v < o.min) ||
    (o.gt !== undefined && v <= o.gt) ||
    (o.max !== undefined && v > o.max) ||
    (o.lt !== undefined && v >= o.lt);
  if (!bad) return;
  const bounds = [o.min !== undefined ? `>= ${o.min}` : '', o.gt !== undefined ? `> ${o.gt}` : '', o.max !== undefined ? `<= ${o.max}` : '', o.lt !== undefined ? `< ${o.lt}` : ''].filter(Boolean);
  const want = `${o.int ? 'an integer' : 'a number'}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  throw new OptionError(option, v, () => `expected ${want}`);
}

/**
 * The keys of `fields` in `input` (other keys ignored, undefined ones defaulted) parsed by `schema`. An invalid
 * option is an OptionError; `{name}` markers in the schema's messages become option names (or flags).
 */
export function parseOptions<S extends z.ZodType>(schema: S, fields: Record<string, unknown>, input: object): z.output<S> {
  const given = input as Record<string, unknown>;
  const picked = Object.fromEntries(Object.keys(fields).filter((k) => given[k] !== undefined).map((k) => [k, given[k]]));
  const r = schema.safeParse(picked);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const key = String(i.path[0] ?? '');
  throw new OptionError(key, picked[key], (name) => i.message.replace(/\{(\w+)\}/g, (_, k: string) => name(k)));
}

// ------------------------------------------------------------------------------------- declarations

export type PaperSource = 'paper text' | 'paper code' | 'our choice';
export interface PaperNote {
  source: PaperSource;
  note: string;
}

export interface OptionDecl<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** One line, shown by `--help` and in the docs. */
  help: string;
  /** Where the paper presets' value comes from (only options the paper presets fix). */
  paper?: PaperNote & {
    /** A value whose source differs (the -rp presets follow the code's repetition penalty 3.0). */
    byValue?: Record<string, PaperNote>;
  };
  /**
   * false: a library option and a flag, but not a run-config key (the run sets it itself for each step, as the
   * seed derived from seed and generation or the shard, or leaves it at its default).
   */
  inRunConfig?: false;
  /**
   * Declared after outputs that record their options (a corpus manifest, a training resume key) were first
   * written: a record holds it only when it differs from its default, so that those outputs still match.
   */
  addedLater?: true;
  /**
   * The value that runs written before this option existed used, where it is not today's default: a stored
   * run.json without the key is read with it, so that resuming such a run continues it as it was.
   */
  storedAbsent?: z.output<S>;
}

export type OptionDecls = Record<string, OptionDecl>;

/** Declares one option. */
export function option<S extends z.ZodType, M extends Omit<OptionDecl<S>, 'schema' | 'help'> = object>(schema: S, help: string, more?: M): OptionDecl<S> & M {
  return { schema, help, ...(more as M) };
}

/** The zod shape of some options (for z.object). */
export const fieldsOf = <T extends OptionDecls>(s: T): { [K in keyof T]: T[K]['schema'] } =>
  Object.fromEntries(Object.entries(s).map(([k, d]) => [k, d.schema])) as { [K in keyof T]: T[K]['schema'] };

/** Some of the options, in the order given. */
export const pickOptions = <T extends OptionDecls, K extends keyof T>(s: T, keys: readonly K[]): Pick<T, K> =>
  Object.fromEntries(keys.map((k) => [k, s[k]])) as Pick<T, K>;

type RunKeys<T extends OptionDecls> = { [K in keyof T]: T[K] extends { inRunConfig: false } ? never : K }[keyof T];

/** The options a run config holds: all but those marked `inRunConfig: false`. */
export const runOptionsOf = <T extends OptionDecls>(s: T): Pick<T, RunKeys<T>> =>
  Object.fromEntries(Object.entries(s).filter(([, d]) => d.inRunConfig !== false)) as Pick<T, RunKeys<T>>;

/** `noRepeatNgramSize` -> `no-repeat-ngram-size`. */
export const flagOfKey = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

type Def = { type: string; innerType?: z.ZodType; defaultValue?: unknown; checks?: { _zod: { def: Record<string, unknown> } }[]; entries?: Record<string, string> };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema under default / optional / nullable wrappers. */
function unwrapped(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let d = defOf(cur); ['default', 'optional', 'nullable', 'prefault'].includes(d.type) && d.innerType; d = defOf(cur)) cur = d.innerType;
  return cur;
}

/** What kind of value an option takes, as a command-line flag sees it. */
export function kindOf(s: z.ZodType): 'number' | 'boolean' | 'string' | 'enum' | 'other' {
  const t = defOf(unwrapped(s)).type;
  return t === 'number' || t === 'boolean' || t === 'string' || t === 'enum' ? t : 'other';
}

/** An enum's values. */
export const choicesOf = (s: z.ZodType): string[] | undefined => {
  const d = defOf(unwrapped(s));
  return d.type === 'enum' && d.entries ? Object.values(d.entries) : undefined;
};

/** The default, or undefined when the option has none. */
export function defaultOf(s: z.ZodType): unknown {
  const r = s.safeParse(undefined);
  return r.success ? r.data : undefined;
}

export interface Range {
  int?: boolean;
  min?: number;
  gt?: number;
  max?: number;
  lt?: number;
}

/** A number option's bounds, read from its schema's checks (so a flag is checked against the same range). */
export function rangeOf(s: z.ZodType): Range {
  const r: Range = {};
  for (const c of defOf(unwrapped(s)).checks ?? []) {
    const d = c._zod.def as { check: string; value?: number; inclusive?: boolean; format?: string };
    if (d.check === 'number_format' && /int/.test(d.format ?? '')) r.int = true;
    else if (d.check === 'greater_than') d.inclusive ? (r.min = Math.max(r.min ?? -Infinity, d.value!)) : (r.gt = d.value);
    else if (d.check === 'less_than') d.inclusive ? (r.max = Math.min(r.max ?? Infinity, d.value!)) : (r.lt = d.value);
  }
  return r;
}

/**
 * What made an output, as it records it (a corpus manifest, a resume key): the values of the options in their
 * declared order, but those in `skip` (they do not change the output) and `addedLater` ones at their default.
 */
export function recordOf(decls: OptionDecls, values: Record<string, unknown>, skip: readonly string[] = []): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(decls)
      .filter(([k, d]) => !skip.includes(k) && !(d.addedLater && values[k] === defaultOf(d.schema)))
      .map(([k]) => [k, values[k]]),
  );
}
