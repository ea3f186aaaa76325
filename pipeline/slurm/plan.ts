// The run as Slurm jobs, read from the declared list of steps (steps.ts): one job per run-wide step and per
// (setting, seed, generation) step, an array job of `numShards` tasks for a sharded step. A job waits for
// (afterok) the jobs that write the paths it reads, so seeds and settings run side by side, generation k+1's
// fine-tune waits for generation k's corpus, and the report for every evaluation.
import type { RunConfig } from '../run/config.js';
import type { GenerationId, RunLayout } from '../run/layout.js';
import { allGenerations, finalSteps, generationSteps, setupSteps, type Step } from '../run/steps.js';

export interface PlannedJob {
  /** Unique within the run, and the job's file names: `prepare`, `finetune.replace.s0.g1`. */
  key: string;
  step: Step;
  at?: GenerationId;
  /** 1, or the tasks of an array job (a sharded step). */
  tasks: number;
  /** Keys of the jobs whose outputs it reads, earlier in the plan. */
  after: string[];
}

export const jobKey = (step: string, at?: GenerationId): string => (at ? `${step}.${at.setting}.s${at.seed}.g${at.gen}` : step);

/** Every job of the run in the loop's order (so a job's dependencies come before it). */
export function planJobs(cfg: RunConfig, layout: RunLayout, numShards: number): PlannedJob[] {
  const jobs: (PlannedJob & { inputs: string[]; outputs: string[] })[] = [];
  const add = (step: Step, inputs: string[], outputs: string[], at?: GenerationId) =>
    jobs.push({ key: jobKey(step.name, at), step, at, tasks: step.sharded ? numShards : 1, after: [], inputs, outputs });
  for (const s of setupSteps(cfg)) add(s, s.inputs(layout, cfg), s.outputs(layout, cfg));
  for (const at of allGenerations(layout, cfg))
    for (const s of generationSteps(cfg, at)) add(s, s.inputs(layout, at, cfg), s.outputs(layout, at, cfg), at);
  for (const s of finalSteps(cfg)) add(s, s.inputs(layout, cfg), s.outputs(layout, cfg));

  const producer = new Map<string, string>();
  for (const j of jobs) {
    for (const p of j.inputs) {
      const from = producer.get(p);
      if (from !== undefined && from !== j.key && !j.after.includes(from)) j.after.push(from);
    }
    for (const p of j.outputs) {
      const other = producer.get(p);
      // A declaration error in steps.ts, not a user error: two steps must not write one path.
      if (other !== undefined) throw new Error(`steps ${other} and ${j.key} both declare ${p} as an output`);
      producer.set(p, j.key);
    }
  }
  // An input written only by a LATER job would be read before it exists: the list's order is wrong.
  const later = jobs.flatMap((j, i) => j.inputs.filter((p) => jobs.findIndex((k) => k.outputs.includes(p)) > i).map((p) => `${j.key} reads ${p}`));
  if (later.length) throw new Error(`steps.ts: a step reads what a later step writes (${later.slice(0, 3).join('; ')})`);
  return jobs.map(({ inputs: _i, outputs: _o, ...j }) => j);
}
