// The shard of a plain `collapse run` process: flags, or an array job's environment, never silently both
// the seed and the shard; errors name the variable a value came from.
import { describe, expect, it } from 'vitest';
import { resolveShard } from '../../scripts/shards.js';

describe('resolveShard', () => {
  it('names the environment variable, not flags the user never gave', () => {
    expect(() => resolveShard({}, { SLURM_ARRAY_TASK_ID: '3' })).toThrow(/shard index 3 \(from SLURM_ARRAY_TASK_ID=3\) is not below the number of shards 1 \(from the default of 1 shard/);
    expect(() => resolveShard({}, { SLURM_ARRAY_TASK_ID: '3' })).not.toThrow(/--shard-index/);
  });

  it('refuses --seed with an array index in the environment until --num-shards says what the array is over', () => {
    const env = { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '5' };
    expect(() => resolveShard({ seeds: [0] }, env)).toThrow(/--seed 0 with SLURM_ARRAY_TASK_ID=3 in the environment: is this array over seeds or over shards\?/);
    expect(() => resolveShard({ seeds: [3] }, { JOB_COMPLETION_INDEX: '3' })).toThrow(/JOB_COMPLETION_INDEX=3/);
    // Over seeds: one process per seed, unsharded.
    expect(resolveShard({ seeds: [3], numShards: 1 }, env)).toEqual({ index: 0, count: 1 });
    // Over shards of one seed.
    expect(resolveShard({ seeds: [0], numShards: 5 }, env)).toEqual({ index: 3, count: 5 });
    // Without --seed the array is over shards, as before.
    expect(resolveShard({}, env)).toEqual({ index: 3, count: 5 });
  });

  it('checks --num-shards itself', () => {
    expect(() => resolveShard({ numShards: 0 }, {})).toThrow(/--num-shards 0: must be a whole number of at least 1/);
  });
});
