// What `collapse slurm submit` asks of Slurm, checked before anything is submitted: names and values in the
// forms sbatch accepts, so that a bad one is refused with the flag that gave it rather than half-way through
// a submission.
import { STEP_KINDS, type StepKind } from '../run/steps.js';

export type PerKind<T> = Partial<Record<StepKind, T>>;

export interface SlurmOptions {
  partition?: string;
  account?: string;
  cpus: PerKind<number>;
  time: PerKind<string>;
  mem: PerKind<string>;
  /** Extra `#SBATCH` lines, e.g. `--qos=long`. */
  extra: string[];
  numShards: number;
}

/** Names Slurm takes as they are (partition, account) and that we use in job names and file names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED. */
const TIME = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|unlimited|INFINITE|infinite)$/;
/** sbatch --mem: a number with an optional K, M, G or T. */
const MEM = /^\d+[KMGT]?$/;

export function checkName(value: string, what: string, hint: string): void {
  if (!NAME.test(value) || value.length > 100)
    throw new Error(`${what} "${value}" cannot be used with Slurm: use letters, digits and . _ + - (starting with a letter or digit), at most 100 characters; ${hint}`);
}

/**
 * A per-kind flag: `16` (every kind) or `train=16` (one kind), repeatable; later values win.
 * Kinds: light (base model, data, mixing, report), train, generate, evaluate.
 */
export function parsePerKind<T>(flag: string, values: readonly string[], parse: (v: string) => T | undefined, form: string): PerKind<T> {
  const out: PerKind<T> = {};
  for (const raw of values) {
    const m = /^(?:([a-z]+)=)?(.+)$/.exec(String(raw).trim());
    const kind = m?.[1];
    const v = m?.[2] !== undefined ? parse(m[2]) : undefined;
    if (!m || v === undefined) throw new Error(`--${flag} ${raw}: expected ${form} or KIND=${form} (KIND one of ${STEP_KINDS.join(', ')})`);
    if (kind !== undefined && !(STEP_KINDS as readonly string[]).includes(kind))
      throw new Error(`--${flag} ${raw}: unknown step kind "${kind}"; the kinds are ${STEP_KINDS.join(', ')}`);
    for (const k of kind ? [kind as StepKind] : STEP_KINDS) out[k] = v;
  }
  return out;
}

export const parseCpus = (v: string): number | undefined => (/^\d+$/.test(v) && Number(v) >= 1 ? Number(v) : undefined);
export const parseTime = (v: string): string | undefined => (TIME.test(v) ? v : undefined);
export const parseMem = (v: string): string | undefined => (MEM.test(v) ? v : undefined);

export function checkOptions(o: SlurmOptions): void {
  if (o.partition !== undefined) checkName(o.partition, '--partition', 'name a partition that `sinfo` lists');
  if (o.account !== undefined) checkName(o.account, '--account', 'name an account that `sacctmgr show assoc` lists');
  if (!Number.isInteger(o.numShards) || o.numShards < 1) throw new Error(`--num-shards ${o.numShards}: must be a whole number of at least 1`);
  for (const e of o.extra) {
    if (/[\r\n]/.test(e) || !/^--?[A-Za-z]/.test(e.trim()))
      throw new Error(`--sbatch ${JSON.stringify(e)}: expected one sbatch option such as --qos=long (one line, starting with -), repeat the flag for more`);
  }
}
