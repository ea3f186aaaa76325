// Token blocks in memory: the one form every stage passes around (training and validation data, prompts,
// scored corpora). The run_clm grouping (blocks.ts) produces it; a stored corpus is read into it by readBlocks.

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

/** Row lengths without trailing `padId` tokens. */
export function trailingPadLengths(b: Blocks, padId: number): Int32Array {
  const out = new Int32Array(b.rows);
  for (let r = 0; r < b.rows; r++) {
    let n = b.blockSize;
    while (n > 0 && b.ids[r * b.blockSize + n - 1] === padId) n--;
    out[r] = n;
  }
  return out;
}
