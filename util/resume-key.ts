// Resume keys: the options a resumable output (checkpoint, generated corpus) was started with, compared on
// resume so that a rerun with a changed input is refused by name instead of mixing two runs' results.
import { flagOfKey } from './options.js';

/** `name: old -> new` for each key whose value differs (names in flag style: weightDecay -> weight-decay). */
export function keyChanges(old: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const show = (v: unknown): string =>
    v === undefined ? '(unset)' : typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? `sha256 ${v.slice(0, 12)}…` : JSON.stringify(v);
  return [...new Set([...Object.keys(old), ...Object.keys(now)])]
    .filter((k) => JSON.stringify(old[k]) !== JSON.stringify(now[k]))
    .map((k) => `${flagOfKey(k)} ${show(old[k])} -> ${show(now[k])}`);
}
