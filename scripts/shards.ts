// Which shard of the work this process does. Flags win; otherwise the array-job variables of Slurm
// (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) or of a Kubernetes indexed Job (JOB_COMPLETION_INDEX,
// with the count from --num-shards or COLLAPSE_NUM_SHARDS) are used, so the same command runs everywhere.
// An array task's index is never silently both the seed and the shard: with --seed, an index from the
// environment is refused unless --shard-index or --num-shards says what the array is over. Errors name the
// variable a value came from, not a flag the user never gave.
export interface ShardSpec { index: number; count: number }

export function resolveShard(
  flags: { shardIndex?: number; numShards?: number; seeds?: number[] },
  env: NodeJS.ProcessEnv = process.env,
): ShardSpec {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`environment variable ${name}=${v} is not a non-negative integer`);
    return n;
  };
  const flagCount = flags.numShards;
  if (flagCount !== undefined && (!Number.isInteger(flagCount) || flagCount < 1)) throw new Error(`--num-shards ${flagCount}: must be a whole number of at least 1`);
  // --num-shards 1 without --shard-index: no sharding, whatever array this process is part of.
  if (flagCount === 1 && flags.shardIndex === undefined) return { index: 0, count: 1 };

  let index = flags.shardIndex;
  let indexFrom = '--shard-index';
  if (index === undefined) {
    const slurmId = num('SLURM_ARRAY_TASK_ID');
    const k8s = num('JOB_COMPLETION_INDEX');
    if (slurmId !== undefined) {
      const min = num('SLURM_ARRAY_TASK_MIN') ?? 0;
      index = slurmId - min;
      indexFrom = min ? `SLURM_ARRAY_TASK_ID=${slurmId} minus SLURM_ARRAY_TASK_MIN=${min}` : `SLURM_ARRAY_TASK_ID=${slurmId}`;
    } else if (k8s !== undefined) {
      index = k8s;
      indexFrom = `JOB_COMPLETION_INDEX=${k8s}`;
    }
    if (index !== undefined && flags.seeds?.length && flagCount === undefined) {
      throw new Error(
        `--seed ${flags.seeds.join(' ')} with ${indexFrom} in the environment: is this array over seeds or over shards? ` +
          `Over seeds: add --num-shards 1. Over shards: add --num-shards N (the shard index then comes from ${indexFrom.split('=')[0]}). ` +
          'On Slurm, `collapse slurm submit` runs seeds and shards as separate jobs',
      );
    }
  }
  let count = flagCount;
  let countFrom = '--num-shards';
  if (count === undefined) {
    const slurmCount = num('SLURM_ARRAY_TASK_COUNT');
    const k8sCount = num('COLLAPSE_NUM_SHARDS');
    count = slurmCount ?? k8sCount;
    countFrom = slurmCount !== undefined ? `SLURM_ARRAY_TASK_COUNT=${slurmCount}` : `COLLAPSE_NUM_SHARDS=${k8sCount}`;
  }
  if (index === undefined && count === undefined) return { index: 0, count: 1 };
  if (count === undefined) {
    count = 1;
    countFrom = 'the default of 1 shard (no --num-shards, SLURM_ARRAY_TASK_COUNT or COLLAPSE_NUM_SHARDS)';
  }
  index ??= 0;
  if (count < 1) throw new Error(`${countFrom}: the number of shards must be at least 1`);
  if (index >= count) {
    throw new Error(`shard index ${index} (from ${indexFrom}) is not below the number of shards ${count} (from ${countFrom}); shard indices run from 0 to ${count - 1}`);
  }
  return { index, count };
}
