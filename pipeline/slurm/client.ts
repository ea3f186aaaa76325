// Slurm's client commands (sbatch, scancel, squeue, sacct) behind one small interface, so that submission
// and status are tested against a real cluster and, in unit tests, against a fake.
import { spawnSync } from 'node:child_process';

/** One job, or one task of an array job (`task`; undefined while Slurm lists the array's pending tasks as one). */
export interface TaskState { task?: number; state: string }

export interface SlurmClient {
  /** Submits a batch script; returns the job id. */
  submit(script: string, args: string[]): string;
  cancel(ids: string[]): void;
  /** The states Slurm knows of these jobs: job id -> the state of each of its tasks (one for a plain job). */
  states(ids: string[]): Map<string, TaskState[]>;
}

/** States of a job that may still run (it is queued, running, or about to be requeued). */
const ALIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'RESV_DEL_HOLD']);
export const isAlive = (state: string): boolean => ALIVE.has(state.split(' ')[0]!);

function exec(cmd: string, args: string[]): { ok: boolean; stdout: string; why: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, stdout: '', why: missing ? `${cmd} not found: Slurm's client commands are not installed or not on PATH` : r.error.message };
  }
  return { ok: r.status === 0, stdout: r.stdout, why: (r.stderr || r.stdout).trim() || `${cmd} exited with status ${r.status}` };
}

/** "123", "123_4", "123_[0-3]" -> the job id "123". */
const jobOf = (id: string): string => id.split('_')[0]!;

export function slurmCommands(): SlurmClient {
  return {
    submit(script, args) {
      const r = exec('sbatch', ['--parsable', ...args, script]);
      const id = r.stdout.trim().split(';')[0] ?? '';
      if (!r.ok || !/^\d+$/.test(id)) throw new Error(`sbatch refused ${script}: ${r.why}`);
      return id;
    },
    cancel(ids) {
      if (ids.length === 0) return;
      const r = exec('scancel', ids);
      if (!r.ok) throw new Error(`scancel ${ids.join(' ')}: ${r.why}`);
    },
    states(ids) {
      const out = new Map<string, TaskState[]>();
      const want = new Set(ids);
      const add = (line: string) => {
        const [id, state] = line.split('|');
        if (!id || !state || !want.has(jobOf(id))) return;
        const list = out.get(jobOf(id)) ?? [];
        const task = /^\d+_(\d+)$/.exec(id)?.[1];
        list.push({ task: task === undefined ? undefined : Number(task), state: state.trim() });
        out.set(jobOf(id), list);
      };
      // squeue knows queued, running and recently finished jobs; sacct (where accounting is on) the older ones.
      const q = exec('squeue', ['--me', '--states=all', '--array', '--noheader', '--format=%i|%T']);
      if (q.ok) q.stdout.split('\n').forEach(add);
      const rest = ids.filter((id) => !out.has(id));
      if (rest.length) {
        const a = exec('sacct', ['--allocations', '--noheader', '--parsable2', '--format=JobID,State', `--jobs=${rest.join(',')}`]);
        if (a.ok) a.stdout.split('\n').forEach(add);
      }
      if (!q.ok && out.size === 0 && ids.length) throw new Error(`cannot ask Slurm about jobs ${ids.join(', ')}: ${q.why}`);
      return out;
    },
  };
}
