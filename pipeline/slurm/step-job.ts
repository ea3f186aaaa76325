// What one Slurm job runs (`collapse slurm step`): one step of the run at one place, by the same code and
// with the same marker as `collapse run`. Slurm has already ordered the jobs (afterok), so nothing here waits:
// an array task does its share of a sharded step, and the task that finds every share committed seals it.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../util/json.js';
import { readStoredConfig } from '../run/config.js';
import { RunLayout, type GenerationId } from '../run/layout.js';
import type { StepContext } from '../run/step-bodies.js';
import { runMarked, runShare } from '../run/step-run.js';
import { STEPS, stepEnabled } from '../run/steps.js';

export interface StepJob {
  step: string;
  at?: GenerationId;
  shard: { index: number; count: number };
}

export async function runStepJob(root: string, job: StepJob, log: (s: string) => void): Promise<void> {
  const layout = RunLayout.open(root);
  if (!existsSync(layout.manifest)) throw new Error(`${root} has no run.json: \`collapse slurm submit\` writes it before it submits the jobs`);
  const cfg = readStoredConfig((readJsonFile(layout.manifest) as { config: unknown }).config, layout.manifest);
  const step = STEPS.find((s) => s.name === job.step && stepEnabled(s, cfg));
  if (!step) throw new Error(`--step ${job.step}: not a step of this run (${STEPS.filter((s) => stepEnabled(s, cfg)).map((s) => s.name).join(', ')})`);
  if ((step.phase === 'generation') !== (job.at !== undefined))
    throw new Error(`--step ${job.step} ${step.phase === 'generation' ? 'needs --setting, --seed and --gen' : 'takes no --setting, --seed or --gen'}`);
  if (job.at) {
    layout.settingDir(job.at.setting); // names the run's settings when it is not one of them
    if (!cfg.seeds.includes(job.at.seed)) throw new Error(`--seed ${job.at.seed} is not among the run's seeds [${cfg.seeds}]`);
    if (!(job.at.gen >= 0 && job.at.gen < cfg.generations)) throw new Error(`--gen ${job.at.gen}: the run has generations 0..${cfg.generations - 1}`);
  }
  const ctx: StepContext = { cfg, layout, seeds: cfg.seeds, shard: job.shard, log };
  if (step.phase === 'final') await step.run(ctx);
  else if (step.phase === 'generation' && step.sharded) {
    const complete = await runShare(step, ctx, job.at!, true);
    log(complete ? `${step.name}: every shard committed` : `${step.name}: shard ${job.shard.index} committed; other shards still running`);
  } else await runMarked(step, ctx, job.at);
}
