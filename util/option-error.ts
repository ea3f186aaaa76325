// An invalid option value of a library call, named by the option's own name (`batchSize`), so that a call from
// a config file or from code reads in that call's terms. The CLI prints the same error with its flag names
// (scripts/flags.ts): the problem text is a function of a namer, so names inside it are translated too.

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
export function checkOption(option: string, v: number, o: { int?: boolean; min?: number; gt?: number; max?: number } = {}): void {
  const bad =
    !Number.isFinite(v) || (o.int && !Number.isInteger(v)) || (o.min !== undefined && v < o.min) || (o.gt !== undefined && v <= o.gt) || (o.max !== undefined && v > o.max);
  if (!bad) return;
  const bounds = [o.min !== undefined ? `>= ${o.min}` : '', o.gt !== undefined ? `> ${o.gt}` : '', o.max !== undefined ? `<= ${o.max}` : ''].filter(Boolean);
  const want = `${o.int ? 'an integer' : 'a number'}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  throw new OptionError(option, v, () => `expected ${want}`);
}
