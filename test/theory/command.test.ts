import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTheory } from './run-theory.js';

const dir = mkdtempSync(join(tmpdir(), 'theory-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runTheory;

describe('collapse theory', () => {
  it('discrete with explicit probabilities writes tables and prints a summary', async () => {
    const out = join(dir, 'd');
    const text = await run(['theory', 'discrete', '--probs', '0.7,0.2,0.1', '-M', '10', '--runs', '40', '--out', out, '--no-figures']);
    expect(text).toMatch(/3 states, M=10, 40 runs/);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { states: number; runs: number };
    expect(s).toMatchObject({ states: 3, runs: 40 });
  });

  it('gaussian with two sample sizes and both modes gives four series', async () => {
    const out = join(dir, 'g');
    const text = await run(['theory', 'gaussian', '--samples', '10,20', '--mode', 'both', '--runs', '5', '--generations', '3', '--out', out, '--no-figures']);
    expect(text.match(/^gaussian M=/gm)).toHaveLength(4);
  });

  it('names the flag in errors', async () => {
    await expect(run(['theory', 'gaussian', '--samples', '1', '--out', join(dir, 'x')])).rejects.toThrow(/--samples/);
    await expect(run(['theory', 'discrete', '--probs', '0.5,abc', '--out', join(dir, 'x')])).rejects.toThrow(/--probs/);
    await expect(run(['theory', 'gmm', '--weights', '1,1', '--out', join(dir, 'x')])).rejects.toThrow(/--weights, --means and --covs/);
  });
});
