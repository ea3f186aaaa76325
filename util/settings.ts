// One declaration per setting: its zod schema (type, default, range), one line of help, and, where the paper
// presets set it, where their value comes from. A library declares its settings next to its code with `setting`;
// its option schema, the run config's section, the CLI's flags and range checks, `--print-config`'s notes and the
// README's table of paper settings are all derived from these declarations, so a setting has one name and one owner.
// The flag of a setting is always the kebab-case of its key (`noRepeatNgramSize` -> `--no-repeat-ngram-size`), and
// yargs hands it back under the key itself, so no table maps one name to another.
import type { z } from 'zod';

export type PaperSource = 'paper text' | 'paper code' | 'our choice';
export interface PaperNote {
  source: PaperSource;
  note: string;
}

export interface Setting<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** One line, shown by `--help` and in the docs. */
  help: string;
  /** Where the paper presets' value comes from (only settings the paper presets fix). */
  paper?: PaperNote & {
    /** A value whose source differs (the -rp presets follow the code's repetition penalty 3.0). */
    byValue?: Record<string, PaperNote>;
  };
  /**
   * false: a library option and a flag, but not a run-config key (the run sets it itself for each step, as the
   * seed derived from seed and generation or the shard, or leaves it at its default).
   */
  inRunConfig?: false;
  /** Not a command-line flag (nested structures, settings only a config file can hold). */
  noFlag?: boolean;
  /**
   * Declared after outputs that record their settings (a corpus manifest, a training resume key) were first
   * written: a record holds it only when it differs from its default, so that those outputs still match.
   */
  addedLater?: true;
}

export type Settings = Record<string, Setting>;

/** Declares one setting. */
export function setting<S extends z.ZodType, M extends Omit<Setting<S>, 'schema' | 'help'> = object>(schema: S, help: string, more?: M): Setting<S> & M {
  return { schema, help, ...(more as M) };
}

/** The zod shape of some settings (for z.object). */
export const fieldsOf = <T extends Settings>(s: T): { [K in keyof T]: T[K]['schema'] } =>
  Object.fromEntries(Object.entries(s).map(([k, d]) => [k, d.schema])) as { [K in keyof T]: T[K]['schema'] };

/** Some of the settings, in the order given. */
export const pickSettings = <T extends Settings, K extends keyof T>(s: T, keys: readonly K[]): Pick<T, K> =>
  Object.fromEntries(keys.map((k) => [k, s[k]])) as Pick<T, K>;

type RunKeys<T extends Settings> = { [K in keyof T]: T[K] extends { inRunConfig: false } ? never : K }[keyof T];

/** The settings a run config holds: all but those marked `inRunConfig: false`. */
export const runSettingsOf = <T extends Settings>(s: T): Pick<T, RunKeys<T>> =>
  Object.fromEntries(Object.entries(s).filter(([, d]) => d.inRunConfig !== false)) as Pick<T, RunKeys<T>>;

/** The same setting with another default (a caller whose own default differs, e.g. the CLI of a preset). */
export const withDefault = <S extends z.ZodType>(d: Setting<S>, value: z.input<S>): Setting => ({ ...d, schema: unwrapped(d.schema).default(value as never) });

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

/** What kind of value a setting takes, as a command-line flag sees it. */
export function kindOf(s: z.ZodType): 'number' | 'boolean' | 'string' | 'enum' | 'other' {
  const t = defOf(unwrapped(s)).type;
  return t === 'number' || t === 'boolean' || t === 'string' || t === 'enum' ? t : 'other';
}

/** An enum's values. */
export const choicesOf = (s: z.ZodType): string[] | undefined => {
  const d = defOf(unwrapped(s));
  return d.type === 'enum' && d.entries ? Object.values(d.entries) : undefined;
};

/** The default, or undefined when the setting has none. */
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

/** A number setting's bounds, read from its schema's checks (so a flag is checked against the same range). */
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
 * What made an output, as it records it (a corpus manifest, a resume key): the values of the settings in their
 * declared order, but those in `skip` (they do not change the output) and `addedLater` ones at their default.
 */
export function recordOf(settings: Settings, values: Record<string, unknown>, skip: readonly string[] = []): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(settings)
      .filter(([k, d]) => !skip.includes(k) && !(d.addedLater && values[k] === defaultOf(d.schema)))
      .map(([k]) => [k, values[k]]),
  );
}
