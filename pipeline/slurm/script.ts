// One job's batch script: the #SBATCH header from the step's kind (cpus, time, memory), and the command
// that runs the step's existing code on the shared run directory (`collapse slurm step`).
import { shellQuote } from '../../util/shell.js';
import type { RunLayout } from '../run/layout.js';
import type { SlurmOptions } from './options.js';
import type { PlannedJob } from './plan.js';

export interface ScriptContext {
  layout: RunLayout;
  runName: string;
  opts: SlurmOptions;
  /** How to start the CLI on a compute node: [node, .../collapse.mjs]. */
  cli: string[];
  /** The directory the jobs start in (where --config and relative paths were resolved). */
  cwd: string;
}

/** The step's arguments to `collapse slurm step`. */
function stepArgs(job: PlannedJob, ctx: ScriptContext): string[] {
  const args = ['slurm', 'step', ctx.layout.root, '--step', job.step.name];
  if (job.at) args.push('--setting', job.at.setting, '--seed', String(job.at.seed), '--gen', String(job.at.gen));
  args.push('--num-shards', String(ctx.opts.numShards));
  return args;
}

export function jobScript(job: PlannedJob, ctx: ScriptContext): string {
  const { opts, layout } = ctx;
  const kind = job.step.kind;
  const header = [
    `--job-name=collapse.${ctx.runName}.${job.key}`,
    `--output=${layout.slurmLog(job.key, job.tasks > 1 ? 'pattern-array' : 'pattern')}`,
    `--chdir=${ctx.cwd}`,
    '--nodes=1',
    '--ntasks=1',
    `--cpus-per-task=${opts.cpus[kind] ?? 1}`,
    // A job whose dependency failed or was cancelled is removed, not left pending forever.
    '--kill-on-invalid-dep=yes',
  ];
  if (job.tasks > 1) header.push(`--array=0-${job.tasks - 1}`);
  if (opts.time[kind]) header.push(`--time=${opts.time[kind]}`);
  if (opts.mem[kind]) header.push(`--mem=${opts.mem[kind]}`);
  if (opts.partition) header.push(`--partition=${opts.partition}`);
  if (opts.account) header.push(`--account=${opts.account}`);
  header.push(...opts.extra.map((e) => e.trim()));
  const cmd = [...ctx.cli, ...stepArgs(job, ctx)].map(shellQuote);
  if (job.tasks > 1) cmd.push('--shard-index', '"$SLURM_ARRAY_TASK_ID"');
  return [
    '#!/bin/bash',
    ...header.map((h) => `#SBATCH ${h}`),
    `# ${job.key}: step ${job.step.name} of run ${ctx.runName}${job.tasks > 1 ? `, shard $SLURM_ARRAY_TASK_ID of ${job.tasks}` : ''}`,
    'set -eu',
    `exec ${cmd.join(' ')}`,
    '',
  ].join('\n');
}
