// Library options: an invalid value is an OptionError named by the option's own name (`batchSize`), so that a
// call from a config file or from code reads in that call's terms. The CLI prints the same error with its flag
// names (scripts/flags.ts): the problem text is a function of a namer, so names inside it are translated too.
import type { z } from 'zod';
import type { Range } from './settings.js';

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
