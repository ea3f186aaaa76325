// runs/NAME/slurm/jobs.json: which Slurm job runs which step (the latest submission of each), so that
// `collapse status` shows a step's job next to its marker and `collapse slurm cancel` finds what to cancel.
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import type { GenerationId, RunLayout } from '../run/layout.js';
import { isAlive, type SlurmClient, type TaskState } from './client.js';

const JobRecordSchema = z
  .object({
    key: z.string(),
    step: z.string(),
    at: z.object({ setting: z.string(), seed: z.number(), gen: z.number() }).optional(),
    jobId: z.string(),
    tasks: z.number(),
    /** The job ids it waits for (afterok). */
    after: z.array(z.string()),
    submittedAt: z.string(),
  })
  .strict();
export type JobRecord = z.infer<typeof JobRecordSchema>;
const JobsFileSchema = z.object({ jobs: z.record(z.string(), JobRecordSchema) }).strict();

export function readJobs(layout: RunLayout): Record<string, JobRecord> {
  if (!existsSync(layout.slurmJobs)) return {};
  const r = JobsFileSchema.safeParse(readJsonFile(layout.slurmJobs));
  if (!r.success) throw new Error(`${layout.slurmJobs} is not what \`collapse slurm submit\` writes (${r.error.issues[0]?.message}); delete it`);
  return r.data.jobs;
}

/** Records a submission: its jobs replace the earlier records of the same steps. */
export function writeJobs(layout: RunLayout, jobs: JobRecord[]): void {
  const all = readJobs(layout);
  for (const j of jobs) all[j.key] = j;
  writeJsonAtomic(layout.slurmJobs, { jobs: all });
}

/** The recorded jobs that Slurm still has queued or running. */
export function aliveJobs(layout: RunLayout, client: SlurmClient): JobRecord[] {
  const jobs = Object.values(readJobs(layout));
  if (jobs.length === 0) return [];
  const states = client.states(jobs.map((j) => j.jobId));
  return jobs.filter((j) => (states.get(j.jobId) ?? []).some((t) => isAlive(t.state)));
}

export interface JobState {
  jobId: string;
  /** One state, or the array tasks' states counted (`RUNNING x1, COMPLETED x1`); GONE: Slurm no longer knows it. */
  state: string;
  /** For a failed job or task: the error its log ends with, and that log. */
  error?: string;
  log?: string;
}

const FAILED = /^(FAILED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|DEADLINE|PREEMPTED)/;

/** The last `collapse: ...` line of a log (the CLI's one error path), or its last line. */
function lastError(log: string): string | undefined {
  if (!existsSync(log)) return undefined;
  const lines = readFileSync(log, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  return [...lines].reverse().find((l) => l.startsWith('collapse: ') && !l.includes('COLLAPSE_DEBUG')) ?? lines.at(-1);
}

export function jobState(layout: RunLayout, rec: JobRecord, states: Map<string, TaskState[]> | null): JobState {
  if (!states) return { jobId: rec.jobId, state: 'UNKNOWN' };
  const list = states.get(rec.jobId) ?? [];
  if (list.length === 0) return { jobId: rec.jobId, state: 'GONE' };
  const counts = new Map<string, number>();
  for (const t of list) {
    const s = t.state.split(' ')[0]!;
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const state = rec.tasks > 1 ? [...counts].map(([s, n]) => `${s} x${n}`).join(', ') : [...counts.keys()].join(', ');
  const failed = list.find((t) => FAILED.test(t.state));
  if (!failed) return { jobId: rec.jobId, state };
  const log = layout.slurmLog(rec.key, { id: rec.jobId, task: rec.tasks > 1 ? failed.task : undefined });
  return { jobId: rec.jobId, state, error: lastError(log), log };
}
