// A tiny base is pretrained on blocks as long as a prompt and its continuation, so that every position the
// generations write at has been trained (a learned position embedding past the training blocks would stay at
// its random init). Checked through the real CLI on a micro run, for both pretraining corpora: the source's
// own pretraining rows, and (pretrainRows 0) the task's training rows.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBlocks } from '../../datasets/block-set.js';
import { spawnCollapse } from '../helpers/cli.js';
import { MICRO_RUN } from '../helpers/micro.js';

const micro = (pretrainRows: number) => [
  ...MICRO_RUN.map((f) => (f.startsWith('data.synthetic=') ? `data.synthetic={trainRows: 24, validRows: 8, testRows: 8, pretrainRows: ${pretrainRows}, seed: 7}` : f)),
  '--set', 'seeds=[0]', '--set', 'generations=1', '--set', 'estimate=false',
];

describe('the pretraining blocks of a tiny base', () => {
  const runs = mkdtempSync(join(tmpdir(), 'collapse-pretrain-blocks-'));

  it.each([
    ['the source\'s pretraining rows', 30],
    ['the task\'s training rows', 0],
  ])('are data.blockSize + generate.newTokens long (%s)', async (_, pretrainRows) => {
    const name = `p${pretrainRows}`;
    const r = await spawnCollapse(['run', ...micro(pretrainRows), '--set', `runsDir=${runs}`, '--set', `name=${name}`]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const train = readBlocks(join(runs, name, 'data', 'train'));
    const pre = readBlocks(join(runs, name, 'data', 'pretrain'));
    expect(train.blockSize).toBe(32);
    expect(pre.blockSize).toBe(64); // the tiny preset: 32-token prompts, 32 new tokens
    if (pretrainRows === 0) {
      // The same rows in the same order: the first long block is the first two training blocks.
      expect(Array.from(pre.ids.subarray(0, 64))).toEqual(Array.from(train.ids.subarray(0, 64)));
      expect(pre.rows).toBeGreaterThanOrEqual(Math.floor(train.rows / 2) - 4); // one short remainder per group at most
    }
  }, 240_000);
});
