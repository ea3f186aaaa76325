// A tokenizer's identity: a fingerprint of what maps text to ids, its vocabulary (token -> id, added tokens
// included) and its BPE merges, hashed in one canonical form whichever files describe it (`tokenizer.json`, or
// GPT-2/OPT `vocab.json` + `merges.txt`), so the same tokenizer in either form has the same fingerprint. Corpus
// manifests record the fingerprint of the tokenizer that made their ids; a model directory's is that of its
// own tokenizer files. Comparing the two is how a corpus of another tokenizer's ids is refused (its ids would
// fit the embedding table and train on nonsense). The one owner of the fingerprint: every caller goes here.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../util/sha256.js';

type Json = Record<string, unknown>;

/** Which description a loader uses when a directory holds both (the same order as datasets/tokenizer.ts). */
export type TokenizerSource = 'tokenizer.json' | 'vocab.json+merges.txt';

export interface TokenizerIdentity {
  /** sha256 of the canonical vocabulary + merges. */
  fingerprint: string;
  /** The description the fingerprint (and every loader) uses. */
  source: TokenizerSource;
  /** When the directory also holds the other description and it describes another tokenizer: that, in words. */
  conflict: string | null;
}

/** File name -> contents, as model-dir/open.ts's tokenizer files (only the names read here matter). */
export type TokenizerFiles = Record<string, string | Uint8Array>;

const text = (c: string | Uint8Array): string => (typeof c === 'string' ? c : Buffer.from(c).toString('utf8'));

function parse(c: string | Uint8Array, name: string, where: string): Json {
  try {
    return JSON.parse(text(c)) as Json;
  } catch (e) {
    throw new Error(`${join(where, name)} is not valid JSON (${(e as Error).message}); restore the tokenizer file`);
  }
}

/** The canonical hash: ids in ascending order with their token, then the merges as "a b" lines. */
function canonical(vocab: Map<number, string>, merges: readonly string[]): string {
  const ids = [...vocab.keys()].sort((a, b) => a - b);
  return sha256(JSON.stringify({ vocab: ids.map((id) => [id, vocab.get(id)]), merges }));
}

function fromTokenizerJson(c: string | Uint8Array, where: string): string {
  const tj = parse(c, 'tokenizer.json', where);
  const model = (tj.model ?? {}) as Json;
  const vocab = new Map<number, string>();
  const v = model.vocab;
  // BPE / WordLevel: token -> id; Unigram: [[piece, score], ...] whose ids are the positions.
  if (Array.isArray(v)) v.forEach((entry, id) => vocab.set(id, String((entry as unknown[])[0])));
  else if (v && typeof v === 'object') for (const [t, id] of Object.entries(v as Record<string, number>)) vocab.set(id, t);
  for (const a of (tj.added_tokens ?? []) as Json[]) if (typeof a.id === 'number' && typeof a.content === 'string') vocab.set(a.id, a.content);
  const merges = ((model.merges ?? []) as unknown[]).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  return canonical(vocab, merges);
}

function fromVocabMerges(vocabFile: string | Uint8Array, mergesFile: string | Uint8Array, where: string): string {
  const vocab = new Map<number, string>();
  for (const [t, id] of Object.entries(parse(vocabFile, 'vocab.json', where) as Record<string, number>)) vocab.set(id, t);
  const merges = text(mergesFile)
    .split('\n')
    .filter((l, i) => !(i === 0 && l.startsWith('#version')) && l.trim().length > 0);
  return canonical(vocab, merges);
}

/** The identity of a tokenizer given as files (`where`: their directory, for messages); null without a tokenizer. */
export function identityOfFiles(files: TokenizerFiles, where: string): TokenizerIdentity | null {
  const tj = files['tokenizer.json'];
  const vocab = files['vocab.json'];
  const merges = files['merges.txt'];
  const pair = vocab !== undefined && merges !== undefined ? () => fromVocabMerges(vocab, merges, where) : null;
  if (tj === undefined) return pair ? { fingerprint: pair(), source: 'vocab.json+merges.txt', conflict: null } : null;
  const fingerprint = fromTokenizerJson(tj, where);
  const other = pair?.();
  const conflict =
    other !== undefined && other !== fingerprint
      ? `${where} holds two tokenizers that disagree: tokenizer.json (${short(fingerprint)}) and vocab.json + merges.txt (${short(other)}); using tokenizer.json`
      : null;
  return { fingerprint, source: 'tokenizer.json', conflict };
}

const FILES = ['tokenizer.json', 'vocab.json', 'merges.txt'] as const;
/** Parsing a 50k vocabulary costs tens of milliseconds and model directories are opened often: memoized by size and mtime. */
const memo = new Map<string, TokenizerIdentity | null>();

/** The identity of the tokenizer files in `dir`; null when it holds none. */
export function tokenizerIdentity(dir: string): TokenizerIdentity | null {
  const present = FILES.filter((f) => existsSync(join(dir, f)));
  const key = `${dir}\0${present.map((f) => { const s = statSync(join(dir, f)); return `${f}:${s.size}:${s.mtimeMs}`; }).join(',')}`;
  if (memo.has(key)) return memo.get(key)!;
  const files: TokenizerFiles = {};
  for (const f of present) files[f] = readFileSync(join(dir, f));
  const id = identityOfFiles(files, dir);
  memo.set(key, id);
  return id;
}

/** A fingerprint as messages show it. */
export const short = (fingerprint: string): string => fingerprint.slice(0, 12);

/**
 * The refusal when a corpus's ids were made by another tokenizer than the model's (unknown on either side,
 * e.g. a corpus written before fingerprints were recorded: accepted).
 */
export function tokenizerMismatch(
  corpus: { flag: string; path: string; fingerprint?: string; tokenizer?: string },
  model: { name: string; fingerprint?: string; source?: string },
): string | null {
  if (!corpus.fingerprint || !model.fingerprint || corpus.fingerprint === model.fingerprint) return null;
  const made = corpus.tokenizer ? `the tokenizer ${corpus.tokenizer} (fingerprint ${short(corpus.fingerprint)})` : `a tokenizer with fingerprint ${short(corpus.fingerprint)}`;
  return (
    `${corpus.flag} ${corpus.path} was tokenized by ${made}, but the model ${model.name} uses its own tokenizer ` +
    `(${model.source ?? 'its tokenizer files'}, fingerprint ${short(model.fingerprint)}): its ids mean other tokens there. ` +
    `Prepare the corpus with the model's tokenizer (collapse prepare --tokenizer ${model.name}), or use the model it was made for`
  );
}
