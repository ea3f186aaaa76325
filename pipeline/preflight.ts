// Preflight: checks that cost milliseconds and save hours, run before any compute. A block size plus new
// tokens beyond the model's positions, or a token id beyond its vocabulary, would otherwise surface as
// onnxruntime's raw "Gather ... idx=258 must be within [-258,257]" after pretraining and fine-tuning.
import { accessSync, constants, existsSync, lstatSync, mkdtempSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { readManifest } from '../datasets/corpus-store.js';
import { readModelConfig } from '../models/model-dir/index.js';
import { tokenizerIdentity, tokenizerMismatch, type TokenizerIdentity } from '../models/tokenizer-identity.js';
import { errnoCause } from '../util/errno.js';

export interface ModelLimits {
  /** Model directory (for messages). */
  model: string;
  /** max_position_embeddings (undefined: unknown, e.g. a foreign ONNX graph). */
  positions?: number;
  vocabSize?: number;
  /** The model's tokenizer (undefined: unknown, e.g. a bare .onnx file). */
  tokenizer?: TokenizerIdentity;
}

export interface CorpusInput {
  flag: string;
  path: string;
  blockSize: number;
  /** The corpus's token ids (its largest is compared with vocab_size); omitted when not loaded. */
  ids?: ArrayLike<number>;
  /** Whether `path` is a stored corpus whose manifest's tokenizer is compared with the model's. */
  stored?: boolean;
}

/** Positions and vocabulary of a model directory from its config.json (unknown for a foreign graph). */
export function modelLimits(dir: string): ModelLimits {
  const cfg = join(dir, 'config.json');
  if (!existsSync(cfg)) return { model: dir };
  try {
    // Any family: the keys differ (n_positions, max_position_embeddings...), models/model-dir/open.ts reads them.
    const c = readModelConfig(JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>, cfg);
    return { model: dir, positions: c.maxPositions ?? undefined, vocabSize: c.vocabSize ?? undefined, tokenizer: tokenizerIdentity(dir) ?? undefined };
  } catch {
    return { model: dir }; // an unreadable config: the model directory's own checks report it
  }
}

/** Largest value and its index (one scan). */
function maxId(ids: ArrayLike<number>): { max: number; at: number } {
  let max = -Infinity, at = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i]! > max) { max = ids[i]!; at = i; }
  return { max, at };
}

/**
 * Every corpus fits the model: its tokenizer is the model's (when both are known), blockSize + newTokens <=
 * positions, and every token id < vocab_size.
 */
export function checkModelFits(m: ModelLimits, corpora: readonly CorpusInput[], newTokens = 0): void {
  for (const c of corpora) {
    if (c.stored) {
      const manifest = readManifest(c.path);
      const made = { flag: c.flag, path: c.path, fingerprint: manifest.tokenizerFingerprint, tokenizer: manifest.provenance.tokenizer };
      const refusal = tokenizerMismatch(made, { name: m.model, fingerprint: m.tokenizer?.fingerprint, source: m.tokenizer?.source });
      if (refusal) throw new Error(refusal);
    }
    if (m.positions !== undefined && c.blockSize + newTokens > m.positions) {
      const need = newTokens > 0 ? `${c.blockSize}-token blocks plus ${newTokens} new tokens = ${c.blockSize + newTokens} positions` : `${c.blockSize}-token blocks`;
      throw new Error(
        `${c.flag} ${c.path} has ${need}, but the model ${m.model} has max_position_embeddings ${m.positions}. ` +
          `Use a smaller block size${newTokens > 0 ? ' or fewer new tokens' : ''} (at most ${m.positions} in all)`,
      );
    }
    if (m.vocabSize !== undefined && c.ids && c.ids.length > 0) {
      const { max, at } = maxId(c.ids);
      if (max >= m.vocabSize)
        throw new Error(
          `${c.flag} ${c.path} holds token id ${max} (block ${Math.floor(at / c.blockSize)}), but the model ${m.model} has vocab_size ${m.vocabSize}: ` +
            'the corpus was tokenized with another tokenizer. Prepare it with the model\'s tokenizer (collapse prepare --tokenizer MODEL_DIR)',
        );
    }
  }
}

/** A tokenizer that can produce ids the model has no embedding for is refused. */
export function checkTokenizerFits(tokenizer: { dir: string; vocabSize: number }, m: ModelLimits): void {
  if (m.vocabSize !== undefined && tokenizer.vocabSize > m.vocabSize)
    throw new Error(
      `the tokenizer ${tokenizer.dir} has ${tokenizer.vocabSize} tokens, but the model ${m.model} has vocab_size ${m.vocabSize}; ` +
        'its ids would fall outside the embedding table. Use the model\'s own tokenizer or a model with a larger vocab_size',
    );
}

/** The longest file name (one path component) Linux and macOS file systems take, in bytes. */
const NAME_MAX = 255;

// ENOENT under an existing directory: mkdir refused by the file system itself (e.g. /proc).
const probeCause = (code: string): string | undefined =>
  code === 'ENOENT' ? 'this file system does not allow creating entries here' : errnoCause(code);

const isLink = (path: string): boolean => {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false; // absent, or below a file (ENOTDIR): look further up
  }
};

/**
 * The output location can be created and written: probes its nearest existing ancestor with a directory.
 * `file`: the output is a file (its directory is what must be writable).
 */
export function checkWritable(path: string, flag: string, opts: { file?: boolean; remedy?: string } = {}): void {
  const remedy = opts.remedy ?? `choose another ${flag}`;
  // Found now, not by the mkdir of a later step (which would leave the folders above it behind).
  const long = resolve(path).split(sep).find((c) => Buffer.byteLength(c) > NAME_MAX);
  if (long !== undefined)
    throw new Error(`${flag} ${path}: the name ${long.slice(0, 24)}... is ${Buffer.byteLength(long)} bytes long, but a file name has at most ${NAME_MAX}; ${remedy}`);
  let dir = opts.file ? dirname(resolve(path)) : resolve(path);
  // lstat: a symbolic link loop or a dangling link "does not exist" for existsSync; statSync below names it.
  while (!existsSync(dir) && !isLink(dir)) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (!statSync(dir).isDirectory()) throw new Error(`${flag} ${path}: ${dir} is a file, not a directory; ${remedy}`);
  try {
    accessSync(dir, constants.W_OK);
    rmdirSync(mkdtempSync(join(dir, '.collapse-probe-')));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new Error(`${flag} ${path} is not writable: ${probeCause(code) ?? (e as Error).message} (${code || 'error'} in ${dir}); ${remedy}`);
  }
}
