// The tiny base's shape is a run setting (model.tinyWidth, model.tinyLayers): a micro run through the real CLI
// builds, pretrains and fine-tunes a 3-layer, 32-wide OPT, and a width the 4 heads cannot split is refused
// before anything is written.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnCollapse } from '../helpers/cli.js';
import { MICRO_RUN } from '../helpers/micro.js';

const micro = [...MICRO_RUN, '--set', 'seeds=[0]', '--set', 'generations=1', '--set', 'estimate=false'];

describe('model.tinyWidth and model.tinyLayers', () => {
  const runs = mkdtempSync(join(tmpdir(), 'collapse-tiny-shape-'));

  it('shape the tiny base that every step then uses', async () => {
    const r = await spawnCollapse(['run', ...micro, '--set', 'model.tinyWidth=32', '--set', 'model.tinyLayers=3', '--set', `runsDir=${runs}`, '--set', 'name=w32']);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    for (const dir of ['base/init', 'base/model', 'seed-0/gen-0/model']) {
      const c = JSON.parse(readFileSync(join(runs, 'w32', dir, 'config.json'), 'utf8'));
      expect([c.hidden_size, c.num_hidden_layers, c.ffn_dim, c.num_attention_heads], dir).toEqual([32, 3, 128, 4]);
    }
    const m = JSON.parse(readFileSync(join(runs, 'w32', 'seed-0', 'gen-0', 'metrics.json'), 'utf8'));
    expect(Number.isFinite(m.test_perplexity)).toBe(true);
  }, 240_000);

  it('refuses a width that is not a multiple of the 4 heads, naming the key, and writes nothing', async () => {
    const r = await spawnCollapse(['run', ...micro, '--set', 'model.tinyWidth=66', '--set', `runsDir=${runs}`, '--set', 'name=w66']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('model.tinyWidth: must be a multiple of 4');
    expect(existsSync(join(runs, 'w66'))).toBe(false);
  }, 60_000);
});
