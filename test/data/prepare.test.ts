import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readBlocks } from '../../datasets/block-set.js';
import { readCorpus } from '../../datasets/corpus-store.js';
import { loadSourceRows, prepareCorpus, resolveTokenizer } from '../../datasets/prepare.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import prepareCommand from '../../scripts/commands/prepare.js';

const root = mkdtempSync(join(tmpdir(), 'prepare-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('prepare', () => {
  it('writes a synthetic corpus whose blocks are the tokenized rows, cut per batch', async () => {
    const out = join(root, 'synth');
    const r = await prepareCorpus({ data: 'synthetic', tokenizer: 'tiny', blockSize: 16, batchSize: 100, out, synthetic: { rows: 300, seed: 5 } });
    // Independent count: tokenize the same rows one by one and apply the per-batch floor.
    const { rows } = await loadSourceRows('synthetic', { synthetic: { rows: 300, seed: 5 } });
    const { tokenizer } = resolveTokenizer('tiny');
    const lengths = rows.map((x) => tokenizer.encode(x).length);
    let blocks = 0;
    for (let b = 0; b < 300; b += 100) blocks += Math.floor(lengths.slice(b, b + 100).reduce((s, x) => s + x, 0) / 16);
    expect(r.counts.blocks).toBe(blocks);
    expect(r.counts.tokens).toBe(lengths.reduce((s, x) => s + x, 0));
    const c = readCorpus(out);
    expect(c.rows).toBe(blocks);
    expect(c.manifest.provenance).toMatchObject({ kind: 'synthetic', split: 'train', tokenizer: 'tiny', seed: 5 });
    const first = c.rowsIter().next().value!;
    expect(first.text.startsWith('</s> ')).toBe(true); // the row's </s> prefix, decoded
    expect(tokenizer.encode(first.text.slice(5), { addSpecialTokens: false }).slice(0, 10)).toEqual(Array.from(first.input_ids).slice(1, 11));
    expect(Array.from(readBlocks(out).ids)).toEqual(Array.from(r.blocks.ids));
    await expect(prepareCorpus({ data: 'synthetic', tokenizer: 'tiny', blockSize: 16, out })).rejects.toThrow(/--out .* already exists.*--force/);
    // Validation rows come from another stream than train.
    const valid = await loadSourceRows('synthetic', { split: 'validation', synthetic: { rows: 300, seed: 5 } });
    expect(valid.rows).not.toEqual(rows);
  });

  it('a pretraining split with a task share: the task rows at evenly spaced places, the rest pretraining rows in order', async () => {
    const config = { domainShift: 2 };
    const { rows, source } = await loadSourceRows('synthetic', { split: 'pretrain', synthetic: { rows: 50, seed: 5, config, pretrainTaskShare: 0.1 } });
    expect(rows).toHaveLength(50);
    const src = new SyntheticSource(config);
    const seed = 5 * 3 + 3 + 1_000_003; // the pretrain split's own seed (as without a share)
    const task = src.sample(5, seed + 7_000_003, 'task');
    const pretrain = src.sample(45, seed, 'pretrain');
    // 5 task rows among 50: rows 5, 15, 25, 35 and 45 (the middle of each tenth).
    const at = [5, 15, 25, 35, 45];
    expect(at.map((i) => rows[i])).toEqual(task);
    expect(rows.filter((_, i) => !at.includes(i))).toEqual(pretrain);
    expect(source).toMatchObject({ pretrainTaskShare: 0.1, taskRows: 5, split: 'pretrain', config: { domainShift: 2 } });
    // Without a share the split is the pretraining domain's alone, as before.
    const plain = await loadSourceRows('synthetic', { split: 'pretrain', synthetic: { rows: 45, seed: 5, config } });
    expect(plain.rows).toEqual(pretrain);
  });

  it('the command prints the counts', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await (prepareCommand.handler as (a: unknown) => Promise<void>)({
        data: 'synthetic', split: 'train', tokenizer: 'tiny', blockSize: 32, batchSize: 1000, concat: 'global',
        force: false, text: false, rows: 50, seed: 1, sourceSeed: 0, json: true,
      });
      const printed = JSON.parse(String(write.mock.calls.at(-1)![0]));
      expect(printed.rows).toBe(50);
      expect(printed.blocks).toBe(Math.floor(printed.tokens / 32));
      expect(printed.droppedTokens).toBe(printed.tokens % 32);
    } finally {
      write.mockRestore();
    }
  });
});
