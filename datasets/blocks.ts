// Fixed-length training blocks with Hugging Face run_clm semantics:
//   tokenize_function: tokenizer(row) for every row, special tokens included (OPT prepends `</s>`, so an
//     empty row is the single token 2);
//   group_texts (datasets.map, batched=True, batch_size=1000): concatenate the rows of each map batch,
//     total = (total // block_size) * block_size (the remainder of EACH batch is dropped), cut blocks;
//     labels = input_ids (so no labels are stored).
// `concat: 'global'` concatenates all rows first and drops only the final remainder.
// `numProc: N` is datasets.map(num_proc=N), as run_clm's --preprocessing_num_workers and the paper's code
// (`preprocess_datasets`, num_proc=4) run it: the rows are first split into N contiguous shards
// (Dataset.shard(N, i, contiguous=True): n // N rows each, the first n % N shards one row more), each shard is
// then grouped in its own batches of 1000 rows, and the shards' blocks are concatenated in order.
import { z } from 'zod';
import { fieldsOf, option, parseOptions } from '../util/options.js';
import type { Blocks } from './block-set.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizedRows {
  /** All rows' ids back to back. */
  ids: Int32Array;
  /** Row r is ids[offsets[r] .. offsets[r + 1]). */
  offsets: Int32Array;
}

export interface BlockCounts {
  rows: number;
  tokens: number;
  blocks: number;
  droppedTokens: number;
  batches: number;
}

/** The blocks of a grouping, with its counts. */
export interface GroupedBlocks extends Blocks {
  counts: BlockCounts;
  /** Index of the first row whose tokens are in each block (provenance / debugging). */
  firstRow: Int32Array;
}

const int = (min: number) => z.number().int().min(min);

/** The grouping options (util/options.ts): `collapse prepare` takes them as flags, the run config's data.blockSize is the first. */
export const BLOCK_OPTIONS = {
  blockSize: option(int(2).default(64), 'Tokens per block (the paper: 64)', { paper: { source: 'paper text', note: '64-token blocks' } }),
  batchSize: option(int(1).default(1000), "Rows per map batch; each batch drops its own remainder (HF datasets.map's default 1000; `global` ignores it)", { inRunConfig: false }),
  concat: option(z.enum(['batched', 'global']).default('batched'), 'batched: run_clm semantics; global: concatenate all rows, drop only the final remainder', { inRunConfig: false }),
  numProc: option(int(1).default(1), "datasets.map num_proc: split the rows into N contiguous shards, each batched on its own (the paper's code: 4)", { inRunConfig: false }),
};
const blockFields = fieldsOf(BLOCK_OPTIONS);
const BlockOptionsSchema = z
  .object(blockFields)
  .refine((o) => o.numProc === 1 || o.concat !== 'global', {
    message: "shards run_clm's batched grouping; it does not combine with {concat} global",
    path: ['numProc'],
  });

/** The block size is always given (its default is the CLI's and the run config's). */
export type BlockOptions = z.input<typeof BlockOptionsSchema> & { blockSize: number };

/** Grouping options with their defaults; an invalid one is an OptionError. */
export const resolveBlockOptions = (o: BlockOptions): z.output<typeof BlockOptionsSchema> => parseOptions(BlockOptionsSchema, blockFields, o);

/** Row ranges [start, end) of datasets' contiguous sharding of `rows` rows into `n` shards. */
export function contiguousShards(rows: number, n: number): [number, number][] {
  const div = Math.floor(rows / n), mod = rows % n;
  return Array.from({ length: n }, (_, i) => {
    const start = div * i + Math.min(i, mod);
    return [start, start + div + (i < mod ? 1 : 0)] as [number, number];
  });
}

/** Tokenizes every row with special tokens; identical rows (empty lines, repeated headings) are encoded once. */
export function tokenizeRows(
  tok: Tokenizer,
  rows: readonly string[],
  onProgress?: (doneRows: number, tokens: number) => void,
): TokenizedRows {
  const offsets = new Int32Array(rows.length + 1);
  let ids = new Int32Array(Math.max(1024, rows.length * 16));
  let n = 0;
  const cache = new Map<string, number[]>();
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let enc = cache.get(row);
    if (enc === undefined) {
      enc = tok.encode(row, { addSpecialTokens: true });
      if (row.length < 64) cache.set(row, enc); // short rows are the ones that repeat
    }
    if (n + enc.length > ids.length) {
      const grown = new Int32Array(Math.max(ids.length * 2, n + enc.length));
      grown.set(ids.subarray(0, n));
      ids = grown;
    }
    for (let i = 0; i < enc.length; i++) ids[n + i] = enc[i]!;
    n += enc.length;
    offsets[r + 1] = n;
    if (onProgress && (r + 1) % 1000 === 0) onProgress(r + 1, n);
  }
  onProgress?.(rows.length, n);
  return { ids: ids.slice(0, n), offsets };
}

/** Block arithmetic alone: the ranges of the token stream that become blocks. */
export function blockRanges(offsets: Int32Array, opts: BlockOptions): { start: number; blocks: number; firstRow: number }[] {
  const { blockSize, concat, numProc, ...o } = resolveBlockOptions(opts);
  const rows = offsets.length - 1;
  const batchSize = concat === 'global' ? Math.max(rows, 1) : o.batchSize;
  const out: { start: number; blocks: number; firstRow: number }[] = [];
  for (const [lo, hi] of contiguousShards(rows, numProc))
    for (let b = lo; b < hi; b += batchSize) {
      const start = offsets[b]!;
      const end = offsets[Math.min(b + batchSize, hi)]!;
      out.push({ start, blocks: Math.floor((end - start) / blockSize), firstRow: b });
    }
  return out;
}

/** Cuts tokenized rows into blocks (see the file comment for the exact semantics). */
export function groupTexts(tokenized: TokenizedRows, opts: BlockOptions): GroupedBlocks {
  const { blockSize } = opts;
  const ranges = blockRanges(tokenized.offsets, opts);
  const nBlocks = ranges.reduce((s, r) => s + r.blocks, 0);
  const ids = new Int32Array(nBlocks * blockSize);
  const firstRow = new Int32Array(nBlocks);
  let k = 0;
  let rowCursor = 0;
  const offsets = tokenized.offsets;
  for (const r of ranges) {
    ids.set(tokenized.ids.subarray(r.start, r.start + r.blocks * blockSize), k * blockSize);
    for (let j = 0; j < r.blocks; j++) {
      const pos = r.start + j * blockSize;
      if (rowCursor < r.firstRow) rowCursor = r.firstRow;
      while (offsets[rowCursor + 1]! <= pos) rowCursor++;
      firstRow[k + j] = rowCursor;
    }
    k += r.blocks;
  }
  const tokens = tokenized.ids.length;
  return {
    blockSize,
    ids,
    rows: nBlocks,
    firstRow,
    counts: {
      rows: offsets.length - 1,
      tokens,
      blocks: nBlocks,
      droppedTokens: tokens - nBlocks * blockSize,
      batches: ranges.length,
    },
  };
}

/** Tokenize + group in one call. */
export function buildBlocks(
  tok: Tokenizer,
  rows: readonly string[],
  opts: BlockOptions & { onProgress?: (doneRows: number, tokens: number) => void },
): GroupedBlocks {
  return groupTexts(tokenizeRows(tok, rows, opts.onProgress), opts);
}

/** The named groupings of the run config: `batched` (one process), `batched-4` (num_proc=4, the paper's code), `global`. */
export type Grouping = 'batched' | 'batched-4' | 'global';
export function groupingOptions(blockSize: number, grouping: Grouping): BlockOptions {
  if (grouping === 'global') return { blockSize, concat: 'global' };
  return { blockSize, concat: 'batched', numProc: grouping === 'batched-4' ? 4 : 1 };
}
