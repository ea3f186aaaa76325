// The next generation's training corpus under each mixing mode, on hand-made corpora whose rows can be
// told apart: original block b holds ids [b, b, ...]; the continuation of block b generated in generation g
// holds [1000 * (g + 1) + b, ...].
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { readCorpus, writeCorpus } from '../../datasets/corpus-store.js';
import { fixedFraction } from '../../datasets/sampling.js';
import { runSettings, validateConfig } from '../../pipeline/run/config.js';
import { RunLayout } from '../../pipeline/run/layout.js';
import { mixTrainCorpus, trainCorpusPath } from '../../pipeline/run/mixing.js';

const N = 40;
const SIZE = 4;
const SEED = 3;

function setup(): RunLayout {
  const layout = new RunLayout(join(mkdtempSync(join(tmpdir(), 'mix-')), 'run'));
  const row = (id: number, fill: number, gen: number | null): CorpusRow => ({
    block_id: id,
    input_ids: new Array(SIZE).fill(fill),
    text: String(fill),
    origin: gen === null ? 'original' : 'generated',
    generation: gen ?? 0,
    prompt_block_id: gen === null ? null : id,
    score: gen === null ? null : -1,
  });
  writeCorpus(layout.split('train'), Array.from({ length: N }, (_, b) => row(b, b, null)), { blockSize: SIZE });
  for (let g = 0; g < 3; g++) {
    writeCorpus(layout.corpus({ setting: 'replace', seed: SEED, gen: g }), Array.from({ length: N }, (_, b) => row(b, 1000 * (g + 1) + b, g)), { blockSize: SIZE });
  }
  return layout;
}

const fills = (dir: string): number[] => [...readCorpus(dir).rowsIter()].map((r) => r.input_ids[0]!);

async function mix(layout: RunLayout, mixCfg: unknown, gen: number): Promise<number[]> {
  const cfg = validateConfig({ mix: mixCfg, data: { blockSize: SIZE }, generate: { newTokens: SIZE } });
  const at = { setting: 'replace', seed: SEED, gen };
  mixTrainCorpus(layout, runSettings(cfg)[0]!, at);
  return fills(trainCorpusPath(layout, at));
}

describe('mixing the next training corpus', () => {
  it('replace: the last generation\'s continuations only', async () => {
    const layout = setup();
    expect(await mix(layout, { mode: 'replace' }, 2)).toEqual(Array.from({ length: N }, (_, b) => 2000 + b));
  });

  it('keep-original, originalSample fixed: the same seeded subset of original blocks every generation, continuations of the rest', async () => {
    const layout = setup();
    const keep = new Set(Array.from(fixedFraction(Int32Array.from({ length: N }, (_, b) => b), 0.25, SEED)));
    expect(keep.size).toBe(10);
    for (const gen of [1, 2, 3]) {
      const got = await mix(layout, { mode: 'keep-original', originalFraction: 0.25, originalSample: 'fixed' }, gen);
      expect(got).toHaveLength(N);
      const originals = got.filter((v) => v < 1000);
      expect(new Set(originals)).toEqual(keep);
      const generated = got.filter((v) => v >= 1000);
      expect(generated.every((v) => Math.floor(v / 1000) === gen && !keep.has(v % 1000))).toBe(true);
      expect(new Set(generated.map((v) => v % 1000)).size).toBe(N - keep.size);
    }
  });

  it('keep-original, per generation (the default, the paper\'s text): a fresh seeded subset each generation, the same on a rerun', async () => {
    const layout = setup();
    const kept: Set<number>[] = [];
    for (const gen of [1, 2, 3]) {
      const got = await mix(layout, { mode: 'keep-original', originalFraction: 0.25 }, gen);
      expect(got).toHaveLength(N);
      const keep = new Set(got.filter((v) => v < 1000));
      expect(keep.size).toBe(10);
      // Every other prompt contributes its continuation of the previous generation, once.
      const generated = got.filter((v) => v >= 1000);
      expect(generated.every((v) => Math.floor(v / 1000) === gen && !keep.has(v % 1000))).toBe(true);
      expect(new Set(generated.map((v) => v % 1000)).size).toBe(N - 10);
      // A rerun draws the same subset.
      expect(await mix(layout, { mode: 'keep-original', originalFraction: 0.25 }, gen)).toEqual(got);
      kept.push(keep);
    }
    // Three generations, three different subsets (two equal 10-of-40 draws have odds of about 1 in 8.5e8).
    const key = (k: Set<number>) => [...k].sort((a, b) => a - b).join(',');
    expect(new Set(kept.map(key)).size).toBe(3);
    // Over the generations more of the original data is seen than one fixed subset holds.
    expect(new Set(kept.flatMap((k) => [...k])).size).toBeGreaterThan(10);
  });

  it('accumulate: all real data plus every generation so far', async () => {
    const layout = setup();
    const got = await mix(layout, { mode: 'accumulate' }, 3);
    expect(got).toHaveLength(4 * N);
    expect(got.sort((a, b) => a - b)).toEqual([0, 1000, 2000, 3000].flatMap((o) => Array.from({ length: N }, (_, b) => o + b)));
  });

  it('accumulate-subsample: back to the original size, distinct rows, reproducible', async () => {
    const layout = setup();
    const a = await mix(layout, { mode: 'accumulate-subsample' }, 3);
    expect(a).toHaveLength(N);
    expect(new Set(a).size).toBe(N);
    expect(await mix(layout, { mode: 'accumulate-subsample' }, 3)).toEqual(a);
    expect(new Set(a.map((v) => Math.floor(v / 1000))).size).toBeGreaterThan(1); // draws from several sources
  });

  it('proportions: a p_theta + b p_i + g p_0 with the original size', async () => {
    const layout = setup();
    await mix(layout, { mode: 'replace' }, 1); // p_1, the previous training corpus of generation 2
    const got = await mix(layout, { mode: 'proportions', proportions: { generated: 0.5, previous: 0.25, original: 0.25 } }, 2);
    expect(got).toHaveLength(N);
    const by = (lo: number, hi: number) => got.filter((v) => v >= lo && v < hi).length;
    expect(by(2000, 3000)).toBe(20); // generated by generation 1
    expect(by(1000, 2000)).toBe(10); // p_1 = generation 0's continuations
    expect(by(0, 1000)).toBe(10); // original
  });
});
