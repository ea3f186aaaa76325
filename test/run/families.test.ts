// End to end on other families: `collapse run --set model.base=DIR` with a micro configuration on each
// shared export (GPT-2, Llama, Llama with an Optimum KV cache): prepare with the model's tokenizer,
// fine-tune the exported graph, generate through its interface (cache or recomputation), score, report.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCorpus } from '../../datasets/corpus-store.js';
import { loadTokenizer } from '../../datasets/tokenizer.js';
import { openModelDir } from '../../models/model-dir/index.js';
import { sharedPath } from '../helpers/shared.js';
import { spawnCollapse } from '../helpers/cli.js';

const MICRO = [
  '--set', 'generations=2',
  '--set', 'threads=1',
  '--set', 'estimate=false',
  // One setting (the tiny preset has two): the seeds directly under runs/NAME.
  '--set', 'settings=[{name: replace, mix: {mode: replace}}]',
  '--set', 'data.blockSize=16',
  '--set', 'data.synthetic={trainRows: 24, validRows: 8, testRows: 8, seed: 7}',
  '--set', 'data.maxTrainBlocks=8',
  '--set', 'data.maxEvalBlocks=4',
  '--set', 'model.pretrainEpochs=0',
  '--set', 'train={epochs: 1, batchSize: 4, microBatchSize: 4, lr: 0.001}',
  '--set', 'generate={numBeams: 2, newTokens: 16, minNewTokens: 16, batchSize: 4, chunkSize: 8}',
  '--set', 'eval.selfBleuSamples=4',
];

const collapse = spawnCollapse;

const base = mkdtempSync(join(tmpdir(), 'collapse-families-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

for (const name of ['gpt2-tiny-torch-export-opset17', 'llama-tiny-torch-export-opset17', 'llama-tiny-kv-optimum-layout-opset17']) {
  const dir = sharedPath(`models/${name}`);
  describe.skipIf(!dir)(`collapse run --set model.base=${name}`, () => {
    it('completes two generations; the fine-tuned models keep the family and graph interface', async () => {
      const r = await collapse(['run', ...MICRO, '--set', `model.base=${dir}`, '--set', `runsDir=${base}`, '--set', `name=${name}`]);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const root = join(base, name);
      // Prepared with the model's own tokenizer (the GPT-2 files: no BOS prepended, unlike OPT's </s>).
      const train = readCorpus(join(root, 'data', 'train'));
      const tok = loadTokenizer(dir!);
      const first = [...train.rowsIter()][0]!;
      expect(tok.prependsBos).toBe(false);
      expect(first.input_ids[0]).not.toBe(tok.bosId);
      expect(tok.decode(first.input_ids)).toBe(first.text);
      const src = openModelDir(dir!);
      for (const gen of [0, 1]) {
        const g = join(root, 'seed-0', `gen-${gen}`);
        const md = openModelDir(join(g, 'model'));
        expect(md.config.family).toBe(src.config.family);
        expect(md.graphs.map((x) => [x.rel, x.lm.kv])).toEqual(src.graphs.map((x) => [x.rel, x.lm.kv]));
        const corpus = readCorpus(join(g, 'corpus'));
        expect(corpus.rows).toBe(train.rows);
        const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, number>;
        expect(m.test_perplexity).toBeGreaterThan(1);
        expect(Number.isFinite(m.test_perplexity)).toBe(true);
      }
      expect(existsSync(join(root, 'report', 'report.html'))).toBe(true);
    });
  });
}
