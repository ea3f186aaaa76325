// Token blocks in memory: the one form every stage passes around (training and validation data, prompts,
// scored corpora). The run_clm grouping (blocks.ts) produces it; a stored corpus is read into it by readBlocks.
// Also the block operations on stored corpora (concatCorpora: rows of corpora into a new one).
import { batchIds, type CorpusRow } from './corpus-codec.js';
import { readCorpus, writeCorpus, type Corpus, type CorpusManifest, type Provenance } from './corpus-store.js';
import { short } from '../models/tokenizer-identity.js';

/** `rows` fixed-length token blocks of `blockSize` ids, row-major. */
export interface Blocks {
  ids: Int32Array;
  rows: number;
  blockSize: number;
  /** Each row's block_id in the corpus it was read from (absent for blocks made in memory). */
  blockIds?: Int32Array;
  /**
   * Real tokens per row (default: blockSize). A generated row that ended early is padded to the block size;
   * only the predictions of its real tokens count (see trailingPadLengths).
   */
  lengths?: ArrayLike<number>;
}

/** Row r's ids (a view, no copy). */
export function blockRow(b: Blocks, r: number): Int32Array {
  return b.ids.subarray(r * b.blockSize, (r + 1) * b.blockSize);
}

/** The number of ids before the trailing `padId` tokens of one row. */
export function realLength(ids: ArrayLike<number>, padId: number): number {
  let n = ids.length;
  while (n > 0 && ids[n - 1] === padId) n--;
  return n;
}

/** Row lengths without trailing `padId` tokens. */
export function trailingPadLengths(b: Blocks, padId: number): Int32Array {
  return Int32Array.from({ length: b.rows }, (_, r) => realLength(blockRow(b, r), padId));
}

/** Block id -> its row, for blocks read with their ids (prompts are named by block id). */
export const rowOfBlock = (b: { blockIds: Int32Array }): Map<number, number> => new Map(Array.from(b.blockIds, (id, r) => [id, r]));

/** A corpus's blocks in memory, with their block ids. */
export function readBlocks(dir: string): Blocks & { blockIds: Int32Array } {
  const c = readCorpus(dir);
  const ids = new Int32Array(c.rows * c.blockSize);
  const blockIds = new Int32Array(c.rows);
  let r = 0;
  for (const b of c.batches()) {
    const { values, offsets } = batchIds(b);
    ids.set(values.subarray(offsets[0]!, offsets[b.numRows]!), r * c.blockSize);
    const bid = b.getChild('block_id')!.toArray() as Int32Array;
    blockIds.set(bid, r);
    r += b.numRows;
  }
  return { ids, rows: c.rows, blockSize: c.blockSize, blockIds };
}

/** The tokenizer fingerprint the sources share (unknown when one is unknown); sources of two tokenizers are refused. */
function sharedTokenizer(corpora: readonly Corpus[]): string | undefined {
  const known = corpora.filter((c) => c.manifest.tokenizerFingerprint);
  const other = known.find((c) => c.manifest.tokenizerFingerprint !== known[0]!.manifest.tokenizerFingerprint);
  if (other)
    throw new Error(
      `${known[0]!.dir} and ${other.dir} were tokenized by different tokenizers (fingerprints ${short(known[0]!.manifest.tokenizerFingerprint!)} and ` +
        `${short(other.manifest.tokenizerFingerprint!)}); their ids cannot be mixed: prepare both with one tokenizer`,
    );
  return known.length === corpora.length ? known[0]?.manifest.tokenizerFingerprint : undefined;
}

/**
 * Writes a new corpus from rows of existing corpora: all rows of each source in order, or the rows
 * `select(corpusIndex, rowsOfThatCorpus)` picks (indices into that corpus).
 */
export function concatCorpora(
  sources: readonly string[],
  out: string,
  opts: { provenance?: Provenance; select?: (source: number, rows: number, blockIds: Int32Array) => ArrayLike<number> } = {},
): CorpusManifest {
  const corpora = sources.map((s) => readCorpus(s));
  const blockSize = corpora[0]?.blockSize;
  if (blockSize === undefined) throw new Error('concatCorpora needs at least one source corpus');
  for (const c of corpora) if (c.blockSize !== blockSize) throw new Error(`${c.dir} has block size ${c.blockSize}, ${corpora[0]!.dir} has ${blockSize}`);
  function* rows(): Generator<CorpusRow> {
    for (const [ci, c] of corpora.entries()) {
      if (!opts.select) {
        yield* c.rowsIter();
        continue;
      }
      const all = [...c.rowsIter()];
      const picked = opts.select(ci, all.length, Int32Array.from(all, (r) => r.block_id));
      for (let i = 0; i < picked.length; i++) yield all[picked[i]!]!;
    }
  }
  return writeCorpus(out, rows(), { blockSize, provenance: { sources: [...sources], ...opts.provenance }, tokenizerFingerprint: sharedTokenizer(corpora) });
}
