// Which shard of the work this process does. Flags win; otherwise the array-job variables of Slurm
// (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) or of a Kubernetes indexed Job (JOB_COMPLETION_INDEX,
// with the count from --num-shards or COLLAPSE_NUM_SHARDS) are used, so the same command runs everywhere.
export interface ShardSpec { index: number; count: number }

export function resolveShard(flags: { shardIndex?: number; numShards?: number }, env: NodeJS.ProcessEnv = process.env): ShardSpec {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`environment variable ${name}=${v} is not a non-negative integer`);
    return n;
  };
  let count = flags.numShards ?? num('SLURM_ARRAY_TASK_COUNT') ?? num('COLLAPSE_NUM_SHARDS');
  let index = flags.shardIndex;
  if (index === undefined) {
    const slurmId = num('SLURM_ARRAY_TASK_ID');
    const slurmMin = num('SLURM_ARRAY_TASK_MIN') ?? 0;
    if (slurmId !== undefined) index = slurmId - slurmMin;
    else index = num('JOB_COMPLETION_INDEX');
  }
  if (index === undefined && count === undefined) return { index: 0, count: 1 };
  index ??= 0;
  count ??= 1;
  if (count < 1) throw new Error(`--num-shards ${count}: must be at least 1`);
  if (index >= count) {
    throw new Error(`--shard-index ${index} is not below --num-shards ${count} (shard indices run from 0 to ${count - 1})`);
  }
  return { index, count };
}
