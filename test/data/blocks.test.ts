import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBlocks, contiguousShards, groupingOptions, groupTexts, tokenizeRows } from '../../datasets/blocks.js';
import { loadTokenizer, type Tokenizer } from '../../datasets/tokenizer.js';
import { sharedPath } from '../helpers/shared.js';

const optDir = sharedPath('tokenizers/opt-125m');
const tokensDir = sharedPath('data/wikitext-2');

/** A character tokenizer with a BOS, so every count below is known by hand. */
const charTok: Tokenizer = {
  encode: (text, opts = {}) => [...((opts.addSpecialTokens ?? true) ? [1] : []), ...[...text].map((c) => c.charCodeAt(0))],
  decode: (ids) => String.fromCharCode(...Array.from(ids).filter((i) => i !== 1)),
  vocabSize: 256,
  bosId: 1,
  eosId: 1,
  padId: 0,
};

describe('run_clm group_texts', () => {
  it('drops the remainder of each map batch (hand-counted)', () => {
    // Row lengths with BOS: 4, 1, 6 | 3, 8 (batch size 3, block 4): batch 1 has 11 tokens -> 2 blocks,
    // 3 dropped; batch 2 has 11 tokens -> 2 blocks, 3 dropped.
    const rows = ['abc', '', 'defgh', 'ij', 'klmnopq'];
    const b = buildBlocks(charTok, rows, { blockSize: 4, batchSize: 3 });
    expect(b.counts).toEqual({ rows: 5, tokens: 22, blocks: 4, droppedTokens: 6, batches: 2 });
    const s = (t: string) => [...t].map((c) => c.charCodeAt(0));
    expect(Array.from(b.ids)).toEqual([1, ...s('abc'), 1, 1, ...s('de'), /* batch 2 */ 1, ...s('ij'), 1, ...s('klmn')]);
    expect(Array.from(b.firstRow)).toEqual([0, 1, 3, 4]);
    const g = buildBlocks(charTok, rows, { blockSize: 4, concat: 'global' });
    expect(g.counts).toEqual({ rows: 5, tokens: 22, blocks: 5, droppedTokens: 2, batches: 1 });
    expect(() => buildBlocks(charTok, rows, { blockSize: 0 })).toThrow(/^blockSize 0: /);
  });

  it.skipIf(!optDir || !tokensDir)('WikiText-2 train (tokens variant, OPT tokenizer): block count equals an independent count', async () => {
    const tok = loadTokenizer(optDir!);
    // Independent path: split the file by hand, tokenize line by line without the row cache.
    const lines = readFileSync(join(tokensDir!, 'wiki.train.tokens'), 'utf8').split('\n').slice(0, -1);
    const rows = lines.map((l) => (l.trim() === '' ? '' : `${l}\n`));
    const lengths = rows.map((r) => tok.encode(r).length);
    let expectedBlocks = 0;
    let tokens = 0;
    for (let b = 0; b < lengths.length; b += 1000) {
      const total = lengths.slice(b, b + 1000).reduce((s, x) => s + x, 0);
      expectedBlocks += Math.floor(total / 64);
      tokens += total;
    }
    expect(lengths.filter((n) => n === 1).length).toBeGreaterThan(10_000); // empty rows still get </s>

    const { loadWikitext } = await import('../../datasets/wikitext.js');
    const wt = await loadWikitext(tokensDir!, 'train');
    const tokenized = tokenizeRows(tok, wt.rows);
    const blocks = groupTexts(tokenized, { blockSize: 64 });
    expect(blocks.counts.rows).toBe(36718);
    expect(blocks.counts.tokens).toBe(tokens);
    expect(blocks.counts.blocks).toBe(expectedBlocks);
    expect(blocks.counts.droppedTokens).toBe(tokens - 64 * expectedBlocks);
    console.log(`WikiText-2 train, OPT tokenizer: ${tokens} tokens, ${expectedBlocks} blocks of 64`);
    // The first block of the second batch starts with row 1000's tokens.
    const firstBatchBlocks = Math.floor(lengths.slice(0, 1000).reduce((s, x) => s + x, 0) / 64);
    const row1000 = tok.encode(rows[1000]!);
    expect(Array.from(blocks.ids.subarray(firstBatchBlocks * 64, firstBatchBlocks * 64 + row1000.length)).slice(0, 64)).toEqual(row1000.slice(0, 64));
    expect(blocks.firstRow[firstBatchBlocks]).toBe(1000);

    // num_proc=4 (the paper's code): 36718 rows = 4 x 9179 + 2, so shards of 9180, 9180, 9179, 9179 rows, each
    // batched by 1000 from its own start. Counted here from the line lengths, shard by shard.
    const sizes = [9180, 9180, 9179, 9179];
    let from = 0, expected4 = 0;
    for (const size of sizes) {
      for (let b = 0; b < size; b += 1000) expected4 += Math.floor(lengths.slice(from + b, from + Math.min(b + 1000, size)).reduce((s, x) => s + x, 0) / 64);
      from += size;
    }
    const four = groupTexts(tokenized, { blockSize: 64, numProc: 4 });
    expect(four.counts.blocks).toBe(expected4);
    expect(four.counts.batches).toBe(4 * 10);
    console.log(`WikiText-2 train, OPT tokenizer, num_proc=4: ${expected4} blocks of 64 (one process: ${expectedBlocks})`);
  });

  it('num_proc=4: contiguous shards (the first n % 4 one row longer), each batched on its own (hand-counted)', () => {
    expect(contiguousShards(10, 4)).toEqual([[0, 3], [3, 6], [6, 8], [8, 10]]);
    expect(contiguousShards(3, 4)).toEqual([[0, 1], [1, 2], [2, 3], [3, 3]]);
    // Lengths with BOS: 2 3 4 | 5 2 3 | 4 2 | 3 4 (32 tokens). Block 4: shard totals 9, 10, 6, 7 -> 2 + 2 + 1 + 1 = 6
    // blocks, 1 + 2 + 2 + 3 = 8 tokens dropped. One process: 32 tokens -> 8 blocks.
    const rows = ['a', 'bb', 'ccc', 'dddd', 'e', 'ff', 'ggg', 'h', 'ii', 'jjj'];
    const b = buildBlocks(charTok, rows, { blockSize: 4, numProc: 4 });
    expect(b.counts).toEqual({ rows: 10, tokens: 32, blocks: 6, droppedTokens: 8, batches: 4 });
    const s = (t: string) => [...t].map((c) => c.charCodeAt(0));
    expect(Array.from(b.ids)).toEqual([
      1, ...s('a'), 1, ...s('b'), ...s('b'), 1, ...s('cc'), // shard 0: 1 a 1 b b 1 c c | c
      1, ...s('ddd'), ...s('d'), 1, ...s('e'), 1, // shard 1: 1 d d d d 1 e 1 | f f
      1, ...s('ggg'), // shard 2: 1 g g g | 1 h
      1, ...s('ii'), 1, // shard 3: 1 i i 1 | j j j
    ]);
    expect(Array.from(b.firstRow)).toEqual([0, 1, 3, 3, 6, 8]);
    expect(buildBlocks(charTok, rows, { blockSize: 4 }).counts.blocks).toBe(8);
    // Map batches of 2 rows inside each shard: {0,1}=5 {2}=4 | {3,4}=7 {5}=3 | {6,7}=6 | {8,9}=7 -> 1+1+1+0+1+1 = 5.
    expect(buildBlocks(charTok, rows, { blockSize: 4, numProc: 4, batchSize: 2 }).counts).toMatchObject({ blocks: 5, batches: 6 });
    expect(groupingOptions(64, 'batched-4')).toEqual({ blockSize: 64, concat: 'batched', numProc: 4 });
    expect(() => buildBlocks(charTok, rows, { blockSize: 4, numProc: 4, concat: 'global' })).toThrow(/^numProc 4: .*does not combine with concat global/);
    expect(() => buildBlocks(charTok, rows, { blockSize: 4, numProc: 0 })).toThrow(/^numProc 0: /);
  });

  it('prepareCorpus with numProc 4 (collapse prepare --num-proc 4) groups the same way', async () => {
    const { prepareCorpus, loadSourceRows, resolveTokenizer } = await import('../../datasets/prepare.js');
    const r = await prepareCorpus({ data: 'synthetic', tokenizer: 'tiny', blockSize: 16, numProc: 4, synthetic: { rows: 2003, seed: 3 } });
    const { rows } = await loadSourceRows('synthetic', { synthetic: { rows: 2003, seed: 3 } });
    const tok = resolveTokenizer('tiny').tokenizer;
    const ref = groupTexts(tokenizeRows(tok, rows), { blockSize: 16, numProc: 4 });
    expect(r.counts).toEqual(ref.counts);
    expect(r.counts.batches).toBe(4); // shards of 501, 501, 501, 500 rows: one map batch each
  });
});
