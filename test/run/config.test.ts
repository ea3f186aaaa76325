import { describe, expect, it } from 'vitest';
import { resolveRunConfig } from '../../scripts/commands/run.js';
import { parseOverrides, validateConfig } from '../../pipeline/run/config.js';
import { PRESETS } from '../../pipeline/run/presets.js';
import { resolveShard } from '../../scripts/shards.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('run configuration', () => {
  it('every preset validates', () => {
    for (const name of Object.keys(PRESETS)) expect(() => resolveRunConfig({ preset: name })).not.toThrow();
  });

  it('paper presets hold the paper settings', () => {
    const p5 = resolveRunConfig({ preset: 'paper-5ep' });
    expect(p5.train).toMatchObject({ epochs: 5, lr: 2e-5, batchSize: 128 });
    expect(p5.generate).toMatchObject({ numBeams: 5, newTokens: 64, minNewTokens: 64 });
    expect(p5.seeds).toEqual([0, 1, 2, 3, 4]);
    expect(p5.generations).toBe(10);
    expect(p5.mix.mode).toBe('replace');
    const p10 = resolveRunConfig({ preset: 'paper-10ep-10pct' });
    expect(p10.train.epochs).toBe(10);
    expect(p10.mix).toMatchObject({ mode: 'keep-original', originalFraction: 0.1 });
    expect(resolveRunConfig({ preset: 'paper-5ep-rp' }).generate.repetitionPenalty).toBe(3);
  });

  it('the synthetic source\'s structure is a config key, checked by building the source', () => {
    const cfg = validateConfig({ data: { synthetic: { source: { domainShift: 3, functionZipf: 3 }, pretrainTaskShare: 0.02 } } });
    expect(cfg.data.synthetic.source).toEqual({ domainShift: 3, functionZipf: 3 });
    expect(cfg.data.synthetic.pretrainTaskShare).toBe(0.02);
    // Absent by default, so that run.json of a run that sets neither is what it was.
    expect(validateConfig({}).data.synthetic).not.toHaveProperty('source');
    expect(() => validateConfig({ data: { synthetic: { source: { domainShit: 3 } } } })).toThrow(/data\.synthetic\.source\.domainShit: unknown key/);
    expect(() => validateConfig({ data: { synthetic: { source: { vocabSize: 100 } } } })).toThrow(/vocabSize: unknown key/);
    // 600 function words of a 507-word vocabulary leave the content class empty: said at the key, before any compute.
    expect(() => validateConfig({ data: { synthetic: { source: { classSizes: [600, 10], functionClasses: 1 } } } })).toThrow(/data\.synthetic\.source: .*classSizes/);
    expect(() => validateConfig({ data: { synthetic: { pretrainTaskShare: 2 } } })).toThrow(/data\.synthetic\.pretrainTaskShare: must be in \[0, 1\]/);
  });

  it('errors name the key: unknown keys, wrong types, impossible values', () => {
    expect(() => validateConfig({ train: { lrr: 1 } })).toThrow(/train\.lrr: unknown key/);
    expect(() => validateConfig({ train: { lr: 'fast' } })).toThrow(/train\.lr:/);
    expect(() => validateConfig({ mix: { originalFraction: 1.5 } })).toThrow(/mix\.originalFraction: must be in \[0, 1\]/);
    expect(() => validateConfig({ mix: { mode: 'proportions', proportions: { generated: 0.5, previous: 0.2, original: 0.2 } } })).toThrow(
      /mix\.proportions: generated \+ previous \+ original must sum to 1/,
    );
    expect(() => validateConfig({ train: { batchSize: 10, microBatchSize: 4 } })).toThrow(/train\.batchSize: .*must be a multiple of train\.microBatchSize/);
  });

  it('--set overrides parse dotted keys with YAML values', () => {
    expect(parseOverrides(['train.lr=1e-4', 'seeds=[0, 2]', 'mix.mode=accumulate'])).toEqual({
      train: { lr: 1e-4 },
      seeds: [0, 2],
      mix: { mode: 'accumulate' },
    });
    expect(() => parseOverrides(['train.lr'])).toThrow(/KEY=VALUE/);
  });

  it('a YAML config file may start from a preset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'exp.yaml');
    writeFileSync(f, 'preset: paper-5ep\nname: my-exp\ntrain:\n  epochs: 2\n');
    const c = resolveRunConfig({ config: f });
    expect(c.name).toBe('my-exp');
    expect(c.train.epochs).toBe(2);
    expect(c.train.lr).toBe(2e-5);
    writeFileSync(f, 'train: [1, 2\n');
    expect(() => resolveRunConfig({ config: f })).toThrow(/not valid YAML/);
  });
});

describe('shard resolution', () => {
  it('flags, Slurm and Kubernetes indexed jobs', () => {
    expect(resolveShard({}, {})).toEqual({ index: 0, count: 1 });
    expect(resolveShard({ shardIndex: 2, numShards: 4 }, {})).toEqual({ index: 2, count: 4 });
    expect(resolveShard({}, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 1, count: 3 });
    expect(resolveShard({ numShards: 8 }, { JOB_COMPLETION_INDEX: '7' })).toEqual({ index: 7, count: 8 });
    expect(() => resolveShard({ shardIndex: 3, numShards: 3 }, {})).toThrow(/shard index 3 \(from --shard-index\) is not below the number of shards 3 \(from --num-shards\)/);
  });
});
