// WikiText-2 rows exactly as Hugging Face `datasets` gives them. The HF loading script yields one row per
// line of the original file (Python text mode: "\n", "\r\n" and "\r" end a line), the line WITH its newline,
// and '' for a line that is only whitespace (`if row.strip()`); the parquet conversion on the hub holds the
// same rows in a `text` column. Sources, in the order `resolveWikitext` tries them:
//   1. a directory of the original files `wiki.{train,valid,test}.{raw,tokens}`;
//   2. a directory of HF parquet files (`<variant>/<split>-00000-of-00001.parquet` or `<split>-*.parquet`),
//      or one parquet file;
//   3. a variant name: $COLLAPSE_WIKITEXT_DIR (a directory as in 1 or 2), then the download cache
//      ($COLLAPSE_CACHE_DIR or ~/.cache/model-collapse), then the hub (downloaded once, sha256 recorded
//      beside the file and checked on every later use).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { cacheDir } from '../util/cache.js';
import { sha256 } from '../util/sha256.js';

export const WIKITEXT_VARIANTS = ['wikitext-2-raw-v1', 'wikitext-2-v1'] as const;
export type WikitextVariant = (typeof WIKITEXT_VARIANTS)[number];
export type Split = 'train' | 'validation' | 'test';

export function isWikitextVariant(s: string): s is WikitextVariant {
  return (WIKITEXT_VARIANTS as readonly string[]).includes(s);
}

/** 'valid' and 'validation' are the same split (file names say valid, HF says validation). */
export function normalizeSplit(s: string): Split {
  if (s === 'train' || s === 'test') return s;
  if (s === 'valid' || s === 'validation') return 'validation';
  throw new Error(`unknown split ${JSON.stringify(s)}: use train, validation (or valid) or test`);
}

const FILE_SPLIT: Record<Split, string> = { train: 'train', validation: 'valid', test: 'test' };
const FILE_EXT: Record<WikitextVariant, string> = { 'wikitext-2-raw-v1': 'raw', 'wikitext-2-v1': 'tokens' };

// Python's str.strip() whitespace (str.isspace), so that "only whitespace" means what it means in HF.
const PY_SPACE_ONLY = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** Rows of a text file as the HF wikitext script yields them. */
export function wikitextRows(content: string): string[] {
  const rows: string[] = [];
  const re = /\r\n|\r|\n/g;
  let start = 0;
  for (let m = re.exec(content); m !== null; m = re.exec(content)) {
    rows.push(content.slice(start, m.index) + '\n');
    start = m.index + m[0].length;
  }
  if (start < content.length) rows.push(content.slice(start));
  return rows.map((r) => (PY_SPACE_ONLY.test(r) ? '' : r));
}

/** Known sha256 of the original files (../shared/data/README.md), to report a file that is not the original. */
export const KNOWN_SHA256: Record<string, string> = {
  'wiki.train.tokens': '9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f',
  'wiki.valid.tokens': 'f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8',
  'wiki.test.tokens': 'd790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0',
  'wiki.valid.raw': '4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7',
  'wiki.test.raw': '173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08',
};

export { sha256 };

export interface WikitextSource {
  kind: 'original' | 'parquet';
  path: string;
  variant: WikitextVariant | null;
  split: Split;
}

function parquetFilesIn(dir: string, split: Split, variant: WikitextVariant | null): string[] {
  const dirs = [variant ? join(dir, variant) : null, dir].filter((d): d is string => d !== null && existsSync(d));
  for (const d of dirs) {
    const files = readdirSync(d)
      .filter((f) => f.startsWith(`${split}-`) && f.endsWith('.parquet'))
      .sort()
      .map((f) => join(d, f));
    if (files.length > 0) return files;
  }
  return [];
}

/**
 * Finds the files of one split in a local directory or parquet file. With `variant` null, a directory with
 * both `.raw` and `.tokens` files is ambiguous and reported as such.
 */
export function findLocalWikitext(path: string, split: Split, variant: WikitextVariant | null): WikitextSource[] {
  if (!existsSync(path)) throw new Error(`--data ${path} does not exist`);
  if (statSync(path).isFile()) {
    if (path.endsWith('.parquet')) return [{ kind: 'parquet', path, variant, split }];
    return [{ kind: 'original', path, variant, split }];
  }
  const exts = variant ? [FILE_EXT[variant]] : ['raw', 'tokens'];
  const originals = exts.map((e) => join(path, `wiki.${FILE_SPLIT[split]}.${e}`)).filter((p) => existsSync(p));
  if (originals.length > 1) {
    throw new Error(`${path} has both wiki.${FILE_SPLIT[split]}.raw and .tokens: name the variant (--variant wikitext-2-raw-v1 or wikitext-2-v1)`);
  }
  if (originals.length === 1) {
    const p = originals[0]!;
    return [{ kind: 'original', path: p, variant: p.endsWith('.raw') ? 'wikitext-2-raw-v1' : 'wikitext-2-v1', split }];
  }
  const parquet = parquetFilesIn(path, split, variant);
  if (parquet.length > 0) return parquet.map((p) => ({ kind: 'parquet', path: p, variant, split }));
  const wanted = exts.map((e) => `wiki.${FILE_SPLIT[split]}.${e}`).join(' or ');
  throw new Error(`${path} has no ${wanted} and no ${variant ? `${variant}/` : ''}${split}-*.parquet: point --data at WikiText-2 files`);
}

export async function readParquetText(path: string): Promise<string[]> {
  const { asyncBufferFromFile, parquetReadObjects } = await import('hyparquet');
  const { compressors } = await import('hyparquet-compressors');
  let rows: Record<string, unknown>[];
  try {
    const file = await asyncBufferFromFile(path);
    rows = await parquetReadObjects({ file, columns: ['text'], compressors });
  } catch (e) {
    throw new Error(`cannot read parquet file ${path}: ${(e as Error).message}`);
  }
  return rows.map((r, i) => {
    if (typeof r.text !== 'string') throw new Error(`${path}: row ${i} has no string column "text"`);
    return r.text;
  });
}

export async function readSource(src: WikitextSource): Promise<string[]> {
  if (src.kind === 'parquet') return readParquetText(src.path);
  return wikitextRows(readFileSync(src.path, 'utf8'));
}

export { cacheDir };

export function hubUrl(variant: WikitextVariant, split: Split): string {
  const endpoint = (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  return `${endpoint}/datasets/Salesforce/wikitext/resolve/main/${variant}/${split}-00000-of-00001.parquet`;
}

/** Downloads one split's parquet file into the cache once; later calls check its recorded sha256. */
export async function cachedHubParquet(variant: WikitextVariant, split: Split, opts: { timeoutMs?: number } = {}): Promise<string> {
  const path = join(cacheDir(), 'wikitext', variant, `${split}-00000-of-00001.parquet`);
  const sumPath = `${path}.sha256`;
  if (existsSync(path) && existsSync(sumPath)) {
    const want = readFileSync(sumPath, 'utf8').trim();
    const got = sha256(readFileSync(path));
    if (got !== want) throw new Error(`cached ${path} has sha256 ${got}, recorded ${want}: delete it to download again`);
    return path;
  }
  const url = hubUrl(variant, split);
  let bytes: Uint8Array;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(
      `cannot download ${variant}/${split} from ${url} (${(e as Error).message}). Offline: pass --data DIR ` +
        `(a directory of wiki.${FILE_SPLIT[split]}.${FILE_EXT[variant]} files or HF parquet files) or set ` +
        `COLLAPSE_WIKITEXT_DIR to one`,
    );
  }
  if (bytes.length < 8 || Buffer.from(bytes.subarray(0, 4)).toString() !== 'PAR1') {
    throw new Error(`${url} did not return a parquet file (${bytes.length} bytes)`);
  }
  writeFileAtomic(path, bytes);
  writeFileAtomic(sumPath, `${sha256(bytes)}\n`);
  return path;
}

export interface WikitextRows {
  rows: string[];
  /** Where they came from, for provenance. */
  files: string[];
  variant: WikitextVariant | null;
  split: Split;
}

/**
 * Rows of WikiText-2. `data` is a local directory, a parquet file, or a variant name (then
 * $COLLAPSE_WIKITEXT_DIR, the cache, or the hub).
 */
export async function loadWikitext(data: string, splitName: string, variantName?: string): Promise<WikitextRows> {
  const split = normalizeSplit(splitName);
  if (variantName !== undefined && !isWikitextVariant(variantName)) {
    throw new Error(`unknown WikiText variant ${JSON.stringify(variantName)}: use ${WIKITEXT_VARIANTS.join(' or ')}`);
  }
  let variant: WikitextVariant | null = variantName ?? null;
  let sources: WikitextSource[];
  if (isWikitextVariant(data)) {
    variant = data;
    const local = process.env.COLLAPSE_WIKITEXT_DIR;
    if (local) sources = findLocalWikitext(local, split, variant);
    else sources = [{ kind: 'parquet', path: await cachedHubParquet(variant, split), variant, split }];
  } else {
    sources = findLocalWikitext(data, split, variant);
  }
  const rows: string[] = [];
  for (const s of sources) rows.push(...(await readSource(s)));
  return { rows, files: sources.map((s) => s.path), variant: sources[0]?.variant ?? variant, split };
}

/** Whether a local original file is byte-identical to the published one (null: no known checksum). */
export function isKnownOriginal(path: string): boolean | null {
  const want = KNOWN_SHA256[basename(path)];
  return want === undefined ? null : sha256(readFileSync(path)) === want;
}
