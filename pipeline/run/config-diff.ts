// What changed between the configuration a run was started with (run.json) and the one given now, key by key,
// so that a refused resume names each key with its old and new value and says how to go on with the old ones.
// The run's location (runsDir, name) and the choice of seeds to run (seeds, --seed) do not change any result:
// a run directory moved elsewhere, or resumed one seed at a time, continues.
import { shellQuote } from '../../util/shell.js';
import type { RunConfig } from './config.js';

/** Keys that do not change any result: where the run lives, which seeds this process runs, the printed estimate. */
const NEUTRAL = new Set(['runsDir', 'name', 'seeds', 'estimate']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Dotted key -> value (arrays are values). */
function flatten(v: unknown, prefix = '', out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (isObj(v)) for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  else out.set(prefix, v);
  return out;
}

export interface ConfigChange {
  key: string;
  was: unknown;
  now: unknown;
}

/** The keys that differ and affect results, in the order of the old configuration (then new keys). */
export function configChanges(was: RunConfig, now: RunConfig): ConfigChange[] {
  const a = flatten(JSON.parse(JSON.stringify(was)));
  const b = flatten(JSON.parse(JSON.stringify(now)));
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !NEUTRAL.has(k.split('.')[0]!));
  return keys.filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k))).map((key) => ({ key, was: a.get(key), now: b.get(key) }));
}

/** A value as `--set key=VALUE` takes it (YAML: numbers and words bare, lists and maps in flow style). */
const setValue = (v: unknown): string => (v === undefined ? 'null' : typeof v === 'string' ? v : JSON.stringify(v));
const shown = (v: unknown): string => (v === undefined ? '(not set)' : JSON.stringify(v));

/** The refusal: every changed key with its old and new value, and the command line options that resume. */
export function describeChanges(manifest: string, changes: readonly ConfigChange[]): string {
  const list = changes.map((c) => `  ${c.key}: ${shown(c.was)} -> ${shown(c.now)}`).join('\n');
  const back = changes.map((c) => `--set ${shellQuote(`${c.key}=${setValue(c.was)}`)}`).join(' ');
  return (
    `${manifest}: this run was started with other settings, and they change its results:\n${list}\n` +
    `To resume it, rerun with the old values (the same --preset/--config as before, or add ${back}); ` +
    'to try the new values, start another run beside it with --set name=NEW_NAME'
  );
}
