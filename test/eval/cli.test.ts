// `collapse eval` and `collapse report` end to end through the CLI (a child process), on a tiny OPT model
// directory and an Arrow corpus: the JSON written equals the programmatic result; user errors name the flag.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCorpus } from '../../datasets/corpus-store.js';
import { TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { writeModelDir } from '../../models/model-dir/index.js';
import { initOptWeights } from '../../models/opt/index.js';
import { Rng } from '../../util/rng.js';
import { loadEvalCorpus } from '../../pipeline/eval/corpus-input.js';
import { evaluateCorpus } from '../../pipeline/eval/evaluate.js';
import { CorpusEvalSchema } from '../../pipeline/eval/metrics-schema.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { makeFakeRun } from '../report/fake-run.js';
import { parseGenerations } from '../../scripts/commands/report.js';

const run = promisify(execFile);
const cli = (args: string[]) =>
  run(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'scripts', 'cli.ts'), ...args], { cwd: REPO_ROOT, env: { ...process.env, CI: '1' } });

const tmp = mkdtempSync(join(tmpdir(), 'eval-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('collapse eval / report CLI', () => {
  const model = join(tmp, 'model');
  const data = join(tmp, 'data');
  beforeAll(() => {
    writeModelDir(model, { config: TINY_CONFIG, weights: initOptWeights(TINY_CONFIG, 5), tokenizerFiles: tinyTokenizerFiles() });
    const rng = new Rng(3);
    writeCorpus(
      data,
      Array.from({ length: 6 }, (_, r) => ({
        block_id: r,
        input_ids: Int32Array.from({ length: 12 }, () => 4 + rng.int(100)),
        text: `row ${r}`,
        origin: 'original' as const,
        generation: 0,
        prompt_block_id: null,
        score: null,
      })),
      { blockSize: 12 },
    );
  });

  it('writes the same measures as evaluateCorpus', async () => {
    const out = join(tmp, 'eval.json');
    const { stdout } = await cli(['eval', '--model', model, '--data', data, '--out', out, '--threads', '1', '--batch-size', '4']);
    expect(stdout).toMatch(/samples +6 x 12 tokens/);
    const written = CorpusEvalSchema.parse(JSON.parse(readFileSync(out, 'utf8')));
    const direct = await evaluateCorpus(model, loadEvalCorpus(data), { threads: 1 });
    expect(written.perplexity).toBeCloseTo(direct.result.perplexity, 3);
    expect(written.rep2).toBe(direct.result.rep2);
    expect(written.self_bleu).toBe(direct.result.self_bleu);
  });

  it('names the flag of a missing path or a bad value', async () => {
    await expect(cli(['eval', '--model', model, '--data', join(tmp, 'nope')])).rejects.toMatchObject({ stderr: expect.stringMatching(/--data .*nope does not exist/) });
    await expect(cli(['eval', '--model', model, '--data', data, '--batch-size', '0'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--batch-size 0: expected an integer >= 1/) });
    expect(() => parseGenerations('a,b')).toThrow(/--generations a,b: expected comma-separated generation numbers/);
    expect(parseGenerations('0, 1,9')).toEqual([0, 1, 9]);
  });

  it('collapse report writes report.html for a run', async () => {
    const r = makeFakeRun(join(tmp, 'run'), { seeds: [3], generations: 3, samples: 40 });
    const { stdout } = await cli(['report', r.root, '--generations', '0,2']);
    expect(stdout).toContain(join(r.root, 'report', 'report.html'));
    const rows = JSON.parse(readFileSync(join(r.root, 'report', 'figures', 'ppl-histogram.json'), 'utf8')) as { generation: number }[];
    expect([...new Set(rows.map((x) => x.generation))]).toEqual([0, 2]);
  });
});
