// `collapse slurm submit` and `collapse slurm cancel`. Submission is all or nothing: every name and value is
// checked first, and if sbatch refuses a job half-way, the jobs already submitted are cancelled and the error
// says so. A resubmission submits only the steps without a marker (each resumes from its checkpoint or its
// committed shards); it is refused while jobs of the last submission are still queued or running.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { lockHolder } from '../../util/lock.js';
import { removeStaleTmp } from '../../util/stale-tmp.js';
import { locksOnDisk, type RunLayout, type RunLockFile } from '../run/layout.js';
import { markerWritten } from '../run/markers.js';
import type { RunConfig } from '../run/config.js';
import { aliveJobs, writeJobs, type JobRecord } from './jobs.js';
import { checkName, checkOptions, type SlurmOptions } from './options.js';
import { planJobs, type PlannedJob } from './plan.js';
import { jobScript, type ScriptContext } from './script.js';
import type { SlurmClient } from './client.js';

export interface SubmitResult {
  /** The jobs submitted (or, with dryRun, that would be), with their scripts. */
  jobs: (PlannedJob & { script: string; jobId?: string; afterIds: string[] })[];
  /** Steps already done (a marker), not submitted. */
  done: string[];
}

/** The run's names become job and file names: refuse the ones Slurm or a file name cannot hold, by key. */
export function checkRunNames(cfg: RunConfig, layout: RunLayout): void {
  checkName(cfg.name, 'name', 'choose another with --set name=NAME');
  layout.settings.forEach((s, i) => checkName(s, `settings[${i}].name`, 'rename the setting in the config'));
  if (/[%\n]/.test(layout.root)) throw new Error(`the run directory ${layout.root} contains % or a line break, which Slurm's --output cannot hold; choose another runsDir`);
}

/** Refuses while another `collapse run` or the last submission's jobs may still write the run directory. */
function checkIdle(layout: RunLayout, client: SlurmClient): void {
  const alive = aliveJobs(layout, client);
  if (alive.length)
    throw new Error(
      `${alive.length} job(s) of the last submission of ${layout.root} are still queued or running (${alive.slice(0, 5).map((j) => `${j.key} = ${j.jobId}`).join(', ')}${alive.length > 5 ? ', ...' : ''}); ` +
        `wait for them, or cancel them with \`collapse slurm cancel ${layout.root}\`, then submit again`,
    );
  let locks: RunLockFile[] = [];
  try {
    locks = locksOnDisk(layout.root);
  } catch {
    return; // no run directory yet
  }
  for (const l of locks) {
    const h = lockHolder(l.path);
    if (h) throw new Error(`a \`collapse run\` (process ${h.pid} on ${h.host}) is running in ${layout.root}; let it finish or stop it before submitting the run to Slurm`);
  }
}

export function submitRun(
  cfg: RunConfig,
  layout: RunLayout,
  opts: SlurmOptions,
  env: { client: SlurmClient; cli: string[]; cwd: string; dryRun: boolean; writeManifest: () => void; log: (s: string) => void },
): SubmitResult {
  checkOptions(opts);
  checkRunNames(cfg, layout);
  const plan = planJobs(cfg, layout, opts.numShards);
  const isJobDone = (j: PlannedJob) => j.step.phase !== 'final' && markerWritten(layout.marker(j.step.name, j.at));
  const done = plan.filter(isJobDone).map((j) => j.key);
  const todo = plan.filter((j) => !isJobDone(j));
  const sctx: ScriptContext = { layout, runName: cfg.name, opts, cli: env.cli, cwd: env.cwd };
  const jobs: SubmitResult['jobs'] = todo.map((j) => ({ ...j, after: j.after.filter((k) => !done.includes(k)), script: jobScript(j, sctx), afterIds: [] }));
  if (env.dryRun) return { jobs, done };

  checkIdle(layout, env.client);
  env.writeManifest();
  // No job of this run is alive (checked above): temporaries in the run directory are leftovers of killed jobs.
  const removed = removeStaleTmp(layout.root, 5);
  if (removed.length) env.log(`removed ${removed.length} temporary file(s) left by killed jobs`);
  mkdirSync(layout.slurmLogDir, { recursive: true });
  const ids = new Map<string, string>();
  const records: JobRecord[] = [];
  for (const j of jobs) {
    const path = layout.slurmScript(j.key);
    writeFileSync(path, j.script, { mode: 0o755 });
    j.afterIds = j.after.map((k) => ids.get(k)!);
    const args = j.afterIds.length ? [`--dependency=afterok:${j.afterIds.join(':')}`] : [];
    try {
      j.jobId = env.client.submit(path, args);
    } catch (e) {
      const submitted = [...ids.values()];
      let cancelled = `cancelled the ${submitted.length} job(s) submitted before it (${submitted.join(', ')})`;
      try {
        env.client.cancel(submitted);
      } catch (c) {
        cancelled = `could NOT cancel the ${submitted.length} job(s) submitted before it (${submitted.join(', ')}: ${(c as Error).message}); cancel them with scancel`;
      }
      if (submitted.length === 0) cancelled = 'nothing was submitted';
      throw new Error(`submitting ${j.key} failed, so the run was not submitted: ${(e as Error).message}. ${cancelled}`);
    }
    ids.set(j.key, j.jobId);
    const { setting, seed, gen } = j.at ?? {};
    records.push({
      key: j.key,
      step: j.step.name,
      ...(j.at ? { at: { setting: setting!, seed: seed!, gen: gen! } } : {}),
      jobId: j.jobId,
      tasks: j.tasks,
      after: j.afterIds,
      submittedAt: new Date().toISOString(),
    });
  }
  writeJobs(layout, records);
  return { jobs, done };
}

/** For `collapse run`: refuses to run beside jobs of the same run directory that Slurm still runs. */
export function refuseBesideSlurmJobs(layout: RunLayout, client: SlurmClient): void {
  if (!existsSync(layout.slurmJobs)) return;
  let alive: JobRecord[];
  try {
    alive = aliveJobs(layout, client);
  } catch {
    return; // no Slurm here (a copied run directory): nothing of it can be running
  }
  if (alive.length)
    throw new Error(`${alive.length} Slurm job(s) of ${layout.root} are queued or running (submitted by \`collapse slurm submit\`); wait for them or \`collapse slurm cancel ${layout.root}\` before \`collapse run\``);
}

/** Cancels the recorded jobs Slurm still has queued or running; returns them. */
export function cancelRun(layout: RunLayout, client: SlurmClient): JobRecord[] {
  if (!existsSync(layout.slurmJobs)) throw new Error(`${layout.root} has no ${layout.slurmJobs}: it was not submitted with \`collapse slurm submit\` (pass the run directory, e.g. runs/NAME)`);
  const alive = aliveJobs(layout, client);
  client.cancel(alive.map((j) => j.jobId));
  return alive;
}
