// Issue 27, item 3: resume tells the user what changed. A run directory moved to another path resumes (its
// files record paths relative to the run); a changed key that affects results is named with its old and new
// values and the options that resume with the old ones, never with advice to delete the run.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configChanges } from '../../pipeline/run/config-diff.js';
import { validateConfig } from '../../pipeline/run/config.js';
import { RunLayout } from '../../pipeline/run/layout.js';
import { writeRunManifest } from '../../pipeline/run/generational-loop.js';
import { resolveRunConfig } from '../../scripts/commands/run.js';
import { collapse, expectFailure, snapshot } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'resume-'));
const p = (...xs: string[]): string => join(root, ...xs);
const savedEnv = { ...process.env };

beforeAll(() => {
  process.env.CI = '1';
  process.env.COLLAPSE_ARTIFACT_CACHE = p('artifacts');
  delete process.env.COLLAPSE_DEBUG;
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

describe('which keys count as a change', () => {
  it('the location, the seeds run and the estimate do not; threads and training keys do', () => {
    const was = validateConfig({ runsDir: '/a/runs', name: 'x', seeds: [0, 1], threads: 1, estimate: true });
    const now = validateConfig({ runsDir: '/b/elsewhere', name: 'y', seeds: [1], threads: 2, estimate: false, train: { lr: 1e-3 } });
    expect(configChanges(was, now)).toEqual([
      { key: 'threads', was: 1, now: 2 },
      { key: 'train.lr', was: was.train.lr, now: 1e-3 },
    ]);
  });
});

describe('a started run resumed with another value', () => {
  it('names each changed key with both values and the --set that resumes; run.json is unchanged; no advice to delete', async () => {
    const runs = p('runs-threads');
    const layout = new RunLayout(join(runs, 'tiny'));
    const ONE = ['settings=[{name: replace, mix: {mode: replace}}]'];
    writeRunManifest(resolveRunConfig({ set: [`runsDir=${runs}`, 'threads=1', ...ONE] }), layout, {});
    writeFileSync(layout.marker('base-model'), '{}');
    const before = snapshot(runs);
    const r = await collapse('run', '--set', `runsDir=${runs}`, '--set', 'threads=0', '--set', 'settings=[{name: replace, mix: {mode: replace}}]', '--set', 'train.lr=0.01');
    expectFailure(
      r,
      /run\.json: this run was started with other settings, and they change its results:\n {2}threads: 1 -> 0\n {2}train\.lr: 0\.0003 -> 0\.01\nTo resume it, rerun with the old values \(the same --preset\/--config as before, or add --set threads=1 --set train\.lr=0\.0003\); to try the new values, start another run beside it with --set name=NEW_NAME/,
      { dir: runs, before },
    );
    expect(r.err).not.toMatch(/delete/);
  });
});

describe('a run directory moved to another path', () => {
  const MICRO = [
    '--set', 'generations=1', '--set', 'threads=1', '--set', 'estimate=false', '--set', 'seeds=[0]',
    '--set', 'settings=[{name: replace, mix: {mode: replace}}]',
    '--set', 'data.synthetic={trainRows: 24, validRows: 8, testRows: 8, pretrainRows: 0, seed: 7}',
    '--set', 'model.pretrainEpochs=0',
    '--set', 'train={epochs: 1, batchSize: 8, microBatchSize: 8, lr: 0.001}',
    '--set', 'generate={strategy: greedy, newTokens: 32, batchSize: 8, chunkSize: 8}',
    '--set', 'eval.selfBleuSamples=4',
  ];

  it('resumes there: finished steps are skipped and the base model is found in the new place', async () => {
    const first = await collapse('run', '--set', `runsDir=${p('a')}`, ...MICRO);
    expect(first.err).toMatch(/evaluate: replace seed 0 gen 0/);
    expect(first.code).toBe(0);
    const info = JSON.parse(readFileSync(p('a', 'tiny', 'base', 'base.json'), 'utf8')) as { dir: string };
    expect(info.dir).toBe(join('base', 'model'));
    cpSync(p('a', 'tiny'), p('b', 'tiny'), { recursive: true });
    rmSync(p('a'), { recursive: true });
    // The last step is redone after the move: it reads the base model through base.json.
    const gen = p('b', 'tiny', 'seed-0', 'gen-0');
    unlinkSync(join(gen, 'evaluate.done.json'));
    unlinkSync(join(gen, 'metrics.json'));
    const moved = await collapse('run', '--set', `runsDir=${p('b')}`, ...MICRO);
    expect(moved.err).toMatch(/evaluate: replace seed 0 gen 0/);
    expect(moved.err).not.toMatch(/base-model: run|finetune: replace|generate: replace/);
    expect(moved.code).toBe(0);
    expect(existsSync(join(gen, 'metrics.json'))).toBe(true);
    expect(existsSync(p('a'))).toBe(false);
  }, 180_000);
});
