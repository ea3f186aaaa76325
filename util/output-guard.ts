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
  /** Recognises a directory this kind of command wrote (its marker files are there). */
  isOwn: (dir: string) => boolean;
  /** How to recognise it, for the message (e.g. "config.json and onnx/model.onnx"). */
  ownMarker: string;
  /** Entries of an own directory that this kind of command does not write (replacing would delete them). */
  foreign?: (dir: string) => string[];
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
  if (entries.length === 0 || g.force) return;
  const list = (xs: string[]): string => xs.slice(0, 3).join(', ') + (xs.length > 3 ? `, ... (${xs.length} entries)` : '');
  const advice = 'Nothing was written. Choose a new or empty directory, or pass --force to replace it and everything in it';
  if (!g.isOwn(out)) throw new Error(`${g.flag} ${out} is not empty and is not ${g.what} (no ${g.ownMarker}); it holds ${list(entries)}. ${advice}`);
  const extra = g.foreign?.(out) ?? [];
  if (extra.length > 0) throw new Error(`${g.flag} ${out} is ${g.what} that also holds files it did not write (${list(extra)}); replacing it would delete them. ${advice}`);
}

/** A model directory as `model init`, `model import` and training write it. */
export const looksLikeModelDir = (dir: string): boolean => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'onnx', 'model.onnx'));

/** What model directories hold (models/model-dir/, training's summary, the scoring graph cached beside the model). */
const MODEL_DIR_FILES = new Set([
  'config.json', 'generation_config.json', 'model.safetensors', 'onnx', 'train-summary.json', 'tokenizer.json', 'tokenizer_config.json',
  'special_tokens_map.json', 'vocab.json', 'merges.txt', 'added_tokens.json',
]);
const modelDirForeign = (dir: string): string[] => [
  ...readdirSync(dir).filter((f) => !MODEL_DIR_FILES.has(f)),
  ...(existsSync(join(dir, 'onnx')) ? readdirSync(join(dir, 'onnx')).filter((f) => !/^model(\.nll-.+)?\.onnx(_data)?$/.test(f)).map((f) => `onnx/${f}`) : []),
];

export const MODEL_DIR_GUARD = { what: 'a model directory', isOwn: looksLikeModelDir, ownMarker: 'config.json and onnx/model.onnx', foreign: modelDirForeign } as const;
