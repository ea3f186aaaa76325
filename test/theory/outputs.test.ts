import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulateDiscrete } from '../../theory/discrete.js';
import { simulateGaussian } from '../../theory/gaussian.js';
import { simulateGmm } from '../../theory/gmm.js';
import { binomialInterval, writeDiscrete, writeGaussian, writeGmm } from '../../theory/outputs.js';

const dir = mkdtempSync(join(tmpdir(), 'theory-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const csvRows = (p: string) => readFileSync(p, 'utf8').trim().split('\n').length - 1;

describe('theory outputs', () => {
  it('discrete: tables, summary and figures', async () => {
    const res = simulateDiscrete({ probs: [0.5, 0.3, 0.2], samples: 10, runs: 50, generations: 2000, seed: 1, quiet: true });
    const out = join(dir, 'discrete');
    const lines = await writeDiscrete(res, out);
    expect(lines.join('\n')).toMatch(/absorbed: 50\/50 runs/);
    expect(csvRows(join(out, 'runs.csv'))).toBe(50);
    expect(csvRows(join(out, 'absorption.csv'))).toBe(3);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { tableGenerations: number; absorbedRuns: number };
    expect(summary.absorbedRuns).toBe(50);
    expect(csvRows(join(out, 'per_generation.csv'))).toBe(summary.tableGenerations + 1);
    for (const f of ['support', 'tail_mass', 'absorbed', 'absorption']) expect(existsSync(join(out, `${f}.png`))).toBe(true);
    const abs = JSON.parse(readFileSync(join(out, 'absorption.json'), 'utf8')) as { frequency: number }[];
    expect(abs.reduce((s, r) => s + r.frequency, 0)).toBeCloseTo(1, 12);
  });

  it('gaussian: one series per sample size and mode', async () => {
    const results = [10, 30].map((samples) => simulateGaussian({ samples, runs: 20, generations: 15, seed: 1, quiet: true }));
    const out = join(dir, 'gaussian');
    const lines = await writeGaussian(results, out, { figures: false });
    expect(lines).toHaveLength(2);
    expect(csvRows(join(out, 'per_generation.csv'))).toBe(2 * 16);
    const rows = JSON.parse(readFileSync(join(out, 'per_generation.json'), 'utf8')) as { series: string; generation: number; varMean: number }[];
    expect(rows[16]).toMatchObject({ series: 'M=30 replace', generation: 0, varMean: 1 });
  });

  it('gmm: fits table per run and generation, samples and figures', async () => {
    const res = simulateGmm({ samples: 200, generations: 4, runs: 2, seed: 1, keepSamplesAt: [0, 4], quiet: true });
    const out = join(dir, 'gmm');
    await writeGmm(res, out);
    expect(csvRows(join(out, 'fits.csv'))).toBe(10);
    expect(csvRows(join(out, 'per_generation.csv'))).toBe(5);
    expect(csvRows(join(out, 'samples.csv'))).toBe(2 * 2 * 200);
    expect(readFileSync(join(out, 'fits.csv'), 'utf8').split('\n')[0]).toContain('cov1_xy');
    expect(existsSync(join(out, 'l2.png')) && existsSync(join(out, 'samples.png'))).toBe(true);
  });

  it('binomial interval', () => {
    const [lo, hi] = binomialInterval(0.5, 100, 4);
    expect(lo).toBeCloseTo(0.3, 12);
    expect(hi).toBeCloseTo(0.7, 12);
  });
});
