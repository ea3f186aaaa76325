// Corpora from the Arrow corpus store (datasets/corpus-store.ts) in the form evaluation uses: token blocks plus
// the decoded texts and the prompt each generated row continues.
import { readCorpus } from '../../datasets/corpus-store.js';
import type { EvalCorpus } from './evaluate.js';
import { trailingPadLengths, type Blocks } from '../../datasets/block-set.js';

/**
 * A corpus with its texts and prompt ids. With `padId`, trailing padding (a generated row that ended early)
 * is excluded from perplexity and the text measures.
 */
export function loadEvalCorpus(dir: string, opts: { padId?: number } = {}): EvalCorpus {
  const c = readCorpus(dir);
  const { rows, blockSize } = c;
  const ids = new Int32Array(rows * blockSize);
  const texts: string[] = [];
  const promptBlockIds = new Int32Array(rows);
  let r = 0;
  for (const row of c.rowsIter()) {
    if (row.input_ids.length !== blockSize)
      throw new Error(`corpus ${dir}: row ${r} (block ${row.block_id}) has ${row.input_ids.length} ids, the manifest says ${blockSize}`);
    ids.set(row.input_ids, r * blockSize);
    texts.push(row.text);
    promptBlockIds[r] = row.prompt_block_id ?? row.block_id;
    r++;
  }
  const blocks: Blocks = { ids, rows, blockSize };
  if (opts.padId !== undefined) blocks.lengths = trailingPadLengths(blocks, opts.padId);
  return { blocks, path: dir, texts, promptBlockIds };
}

/** block_id -> text of a corpus (the original blocks that prompted generation), for example continuations. */
export function blockTexts(dir: string): (blockId: number) => string | null {
  const m = new Map<number, string>();
  for (const row of readCorpus(dir).rowsIter()) m.set(row.block_id, row.text);
  return (id) => m.get(id) ?? null;
}
