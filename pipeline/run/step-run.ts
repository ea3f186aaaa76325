// Running one step at one place, with its marker: the part of the loop that `collapse run` (generational-loop.ts, which
// also orders the steps and waits for other ranks) and a Slurm job (pipeline/slurm/step-job.ts, where Slurm
// orders them) share. A finished step's marker is verified before it is trusted (pipeline/run/markers.ts).
import { rmSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import type { GenerationId } from './layout.js';
import { markDone, markerState, markerWritten } from './markers.js';
import type { StepContext } from './step-bodies.js';
import type { GenerationStep, RunStep } from './steps.js';

export const where = (at?: GenerationId): string => (at ? `${at.setting} seed ${at.seed} gen ${at.gen}` : 'run');

const outputsOf = (step: RunStep | GenerationStep, ctx: StepContext, at?: GenerationId): string[] =>
  at ? (step as GenerationStep).outputs(ctx.layout, at, ctx.cfg) : (step as RunStep).outputs(ctx.layout, ctx.cfg);

/** Only what the run wrote under its own directory is ever removed (a model.base of the user is not). */
function insideRun(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/**
 * Whether the step is done (its marker verified). A damaged output is named, the step's outputs inside the
 * run directory are removed and the step runs again (it writes the same bytes: every step is seeded).
 */
export function stepDone(step: RunStep | GenerationStep, ctx: StepContext, at?: GenerationId): boolean {
  const { layout, log } = ctx;
  const marker = layout.marker(step.name, at);
  const state = markerState(marker, layout.root);
  if (state.done) return true;
  if (state.damaged) {
    log(`${step.name} (${where(at)}): ${state.damaged}; running the step again`);
    for (const out of outputsOf(step, ctx, at)) if (insideRun(layout.root, out)) rmSync(out, { recursive: true, force: true });
    rmSync(marker, { force: true });
  } else if (state.unreadable) log(`${step.name} (${where(at)}): ${state.unreadable}; running the step again`);
  return false;
}

/** Leaves the step's marker, recording what it wrote. */
export function sealStep(step: RunStep | GenerationStep, ctx: StepContext, t0: number, result: unknown, at?: GenerationId): void {
  markDone(ctx.layout.marker(step.name, at), step.name, (Date.now() - t0) / 1000, result, { root: ctx.layout.root, outputs: outputsOf(step, ctx, at) });
}

/** Runs an unsharded step unless its marker says it is done, then leaves the marker. */
export async function runMarked(step: RunStep | GenerationStep, ctx: StepContext, at?: GenerationId): Promise<void> {
  if (stepDone(step, ctx, at)) return;
  const t0 = Date.now();
  ctx.log(`${step.name}: ${where(at)}`);
  const result = at ? await (step as GenerationStep).run(ctx, at) : await (step as RunStep).run(ctx);
  sealStep(step, ctx, t0, result, at);
}

/**
 * This rank's share of a sharded step. Returns whether the step is complete (every rank's share committed);
 * with `seal`, the rank that finds it complete leaves the marker. Each rank commits its share before it looks,
 * so of the ranks finishing last at least one sees the others' shares. Its outputs are verified by a single
 * process only: with several ranks, one rank cannot redo the others' finished shares.
 */
export async function runShare(step: GenerationStep, ctx: StepContext, at: GenerationId, seal: boolean): Promise<boolean> {
  if (ctx.shard.count === 1 ? stepDone(step, ctx, at) : markerWritten(ctx.layout.marker(step.name, at))) return true;
  const t0 = Date.now();
  ctx.log(`${step.name}: ${where(at)} (shard ${ctx.shard.index + 1}/${ctx.shard.count})`);
  await step.run(ctx, at);
  const complete = step.complete ? await step.complete(ctx, at) : true;
  if (complete && seal) sealStep(step, ctx, t0, undefined, at);
  return complete;
}
