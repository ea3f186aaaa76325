// The embedded default in miniature (its two settings, one seed, two generations, tiny data) through the
// real CLI: one record per setting, seed and generation with every field the report and
// scripts/check-default.ts read; and the degenerate-data guard, which a deliberately degenerate
// configuration (greedy decoding of a barely trained model, no repetition penalty) must trigger.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GenerationMetricsSchema } from '../../pipeline/eval/metrics-schema.js';
import { runStatus } from '../../pipeline/run/status.js';
import { spawnCollapse } from '../helpers/cli.js';

const micro = (generations: number) => [
  '--set', 'seeds=[0]',
  '--set', `generations=${generations}`,
  '--set', 'threads=1',
  '--set', 'estimate=false',
  '--set', 'data.synthetic={trainRows: 24, validRows: 8, testRows: 8, pretrainRows: 24, seed: 7}',
  '--set', 'model.pretrainEpochs=1',
  '--set', 'eval.selfBleuSamples=10',
];

const collapse = spawnCollapse;

describe('the default (tiny preset) in miniature', () => {
  const runs = mkdtempSync(join(tmpdir(), 'collapse-default-'));

  it('runs both settings and writes one complete record per setting, seed and generation', async () => {
    const r = await collapse(['run', ...micro(2), '--set', `runsDir=${runs}`, '--set', 'name=micro']);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const root = join(runs, 'micro');
    const records = (JSON.parse(readFileSync(join(root, 'report', 'metrics.json'), 'utf8')) as unknown[]).map((x) => GenerationMetricsSchema.parse(x));
    expect(records.map((m) => `${m.setting}/${m.seed}/${m.generation}`).sort()).toEqual(['keep-original/0/0', 'keep-original/0/1', 'replace/0/0', 'replace/0/1']);
    const zeroShot = JSON.parse(readFileSync(join(root, 'base', 'zero-shot.json'), 'utf8')) as { test_perplexity: number };
    for (const m of records) {
      expect(m.test_perplexity).toBeGreaterThan(1);
      // The zero-shot baseline on generation 0's records (the base model, the same for both settings).
      expect(m.base_test_perplexity).toBe(m.generation === 0 ? zeroShot.test_perplexity : null);
      expect(Object.keys(m.per_sample_ppl_quantiles)).toContain('p99');
      expect(m.tail_reference).not.toBeNull();
      expect(m.tail_mass).not.toBeNull();
      expect(m.tail_mass_vs_gen0!.above_p99).toBeGreaterThanOrEqual(0);
      expect(m.rep2).toBeGreaterThanOrEqual(0);
      // The truth-based view: both the data's and the real continuations' exact log-likelihood.
      expect(m.truth!.per_token).toBeLessThan(0);
      expect(m.truth!.real_per_token).toBeLessThan(0);
      expect(m.truth!.tail_seen).toBeGreaterThanOrEqual(0);
    }
    // Generation 0's own data: the share above its own p99 is what interpolated quantiles give (about 1%).
    for (const m of records.filter((x) => x.generation === 0)) expect(m.tail_mass_vs_gen0!.above_p99).toBeLessThan(0.1);
    // keep-original trains longer than replace (16 epochs against 8; the paper's 10 against 5).
    const log = (s: string) => JSON.parse(readFileSync(join(root, s, 'seed-0', 'gen-0', 'train-log.json'), 'utf8')) as { validLosses: number[] };
    expect([log('replace').validLosses.length, log('keep-original').validLosses.length]).toEqual([8, 16]);
    const html = readFileSync(join(root, 'report', 'report.html'), 'utf8');
    for (const id of ['test-perplexity', 'ppl-histogram-replace', 'ppl-histogram-keep-original', 'true-loglik', 'true-tail']) expect(html).toContain(`data-figure="${id}"`);
    expect(html).toContain('Zero-shot baseline');
    const st = runStatus(root);
    expect(st.gens.map((g) => g.setting)).toEqual(['replace', 'replace', 'keep-original', 'keep-original']);
    expect(st.gens.every((g) => g.stages.every((s) => s.state === 'done'))).toBe(true);
    expect(st.data.map((d) => d.stage)).toEqual(['base-model', 'prepare', 'pretrain', 'zero-shot']);
  });

  it('warns in the log and in the report when the data are degenerate', async () => {
    const r = await collapse([
      'run', ...micro(1), '--set', `runsDir=${runs}`, '--set', 'name=degenerate',
      '--set', 'settings=[{name: replace, mix: {mode: replace}}]',
      '--set', 'generate={strategy: greedy, numBeams: 1, newTokens: 32, repetitionPenalty: 1, noRepeatNgramSize: 0, batchSize: 8}',
      '--set', 'model.pretrainLr=1e-5',
    ]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stderr).toMatch(/WARNING: setting replace, seed 0: degenerate generation-0 data: (rep-2|distinct-2)/);
    const html = readFileSync(join(runs, 'degenerate', 'report', 'report.html'), 'utf8'); // one setting: no setting folder
    expect(html).toContain('class="warning"');
    expect(html).toMatch(/degenerate generation-0 data/);
  });
});
