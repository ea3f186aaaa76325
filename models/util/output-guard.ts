// Output guards: a command that replaces a directory first makes sure it is one of its own outputs (recognised
// by its manifest or marker files), empty, or that the user said --force; and that it is not one of the
// command's own inputs. So a typo in --out never deletes a user's files.
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';

export interface OutputGuard {
  /** The flag naming the output, for messages (e.g. --out). */
  flag: string;
  /** What the command writes there, for messages (e.g. "a model directory"). */
  what: string;
  /** Recognises a directory this kind of command wrote (so replacing it loses nothing foreign). */
  isOwn: (dir: string) => boolean;
  /** How to recognise it, for the message (e.g. "config.json and onnx/model.onnx"). */
  ownMarker: string;
  force?: boolean;
  /** Inputs the output must not be, contain or lie inside. */
  inputs?: { flag: string; path: string }[];
}

const real = (p: string): string => {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
};

/** Whether `inner` is `outer` or lies inside it. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(real(outer), real(inner));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Throws a message saying what to do when writing `out` could destroy something that is not ours. */
export function guardOutputDir(out: string, g: OutputGuard): void {
  for (const input of g.inputs ?? []) {
    if (isWithin(out, input.path) || isWithin(input.path, out)) {
      const how = real(out) === real(input.path) ? 'is' : isWithin(out, input.path) ? 'lies inside' : 'contains';
      throw new Error(`${g.flag} ${out} ${how} the input ${input.flag} ${input.path}; writing there would destroy the input. Choose another ${g.flag}`);
    }
  }
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new Error(`${g.flag} ${out} exists and is not a directory; choose another ${g.flag}`);
  const entries = readdirSync(out);
  if (entries.length === 0 || g.isOwn(out) || g.force) return;
  const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, ... (${entries.length} entries)` : '');
  throw new Error(
    `${g.flag} ${out} is not empty and is not ${g.what} (no ${g.ownMarker}); it holds ${shown}. ` +
      `Nothing was written. Choose a new or empty directory, or pass --force to replace it and everything in it`,
  );
}

/** A model directory as `model init`, `model import` and training write it. */
export const looksLikeModelDir = (dir: string): boolean => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'onnx', 'model.onnx'));

export const MODEL_DIR_GUARD = { what: 'a model directory', isOwn: looksLikeModelDir, ownMarker: 'config.json and onnx/model.onnx' } as const;
