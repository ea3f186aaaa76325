// Running one step at one place, with its marker: the part of the loop that `collapse run` (loop.ts, which
// also orders the steps and waits for other ranks) and a Slurm job (pipeline/slurm/step-job.ts, where Slurm
// orders them) share.
import { isDone, markDone, type GenAt } from './layout.js';
import type { StepContext } from './stages.js';
import type { GenerationStep, RunStep } from './steps.js';

export const where = (at?: GenAt): string => (at ? `${at.setting} seed ${at.seed} gen ${at.gen}` : 'run');

/** Runs an unsharded step unless its marker says it is done, then leaves the marker. */
export async function runMarked(step: RunStep | GenerationStep, ctx: StepContext, at?: GenAt): Promise<void> {
  const marker = ctx.layout.marker(step.name, at);
  if (isDone(marker)) return;
  const t0 = Date.now();
  ctx.log(`${step.name}: ${where(at)}`);
  const result = at ? await (step as GenerationStep).run(ctx, at) : await (step as RunStep).run(ctx);
  markDone(marker, step.name, (Date.now() - t0) / 1000, result);
}

/**
 * This rank's share of a sharded step. Returns whether the step is complete (every rank's share committed);
 * with `seal`, the rank that finds it complete leaves the marker. Each rank commits its share before it looks,
 * so of the ranks finishing last at least one sees the others' shares.
 */
export async function runShare(step: GenerationStep, ctx: StepContext, at: GenAt, seal: boolean): Promise<boolean> {
  const marker = ctx.layout.marker(step.name, at);
  if (isDone(marker)) return true;
  const t0 = Date.now();
  ctx.log(`${step.name}: ${where(at)} (shard ${ctx.shard.index + 1}/${ctx.shard.count})`);
  await step.run(ctx, at);
  const complete = step.complete ? await step.complete(ctx, at) : true;
  if (complete && seal) markDone(marker, step.name, (Date.now() - t0) / 1000);
  return complete;
}
