// `collapse status RUN_DIR`: each setting's, seed's and generation's steps and their state, read from disk
// alone (markers, checkpoints, committed corpus shards), so it works while other processes are running.
// The steps and their order come from the loop's own declared list (steps.ts). A run submitted to Slurm
// (`collapse slurm submit`) also shows each step's job and the state Slurm reports, and a failed job's error.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../util/json.js';
import { readStoredConfig } from './config.js';
import { RunLayout, type GenerationId } from './layout.js';
import { readMarker } from './markers.js';
import { finalSteps, generationSteps, setupSteps, stepAppliesAt, type Step } from './steps.js';
import { jobKey } from '../slurm/plan.js';
import { jobState, readJobs, type JobState } from '../slurm/jobs.js';
import { slurmCommands, type SlurmClient, type TaskState } from '../slurm/client.js';

export interface StepState { stage: string; state: 'done' | 'partial' | 'pending' | 'n/a'; detail: string; slurm?: JobState }
export interface GenStatus { setting: string; seed: number; gen: number; stages: StepState[] }

export interface RunStatus { config: unknown; data: StepState[]; gens: GenStatus[]; final: StepState[]; slurmError?: string }

export function runStatus(root: string, client: SlurmClient = slurmCommands()): RunStatus {
  const layout = RunLayout.open(root);
  if (!existsSync(layout.manifest)) throw new Error(`${root} is not a run directory (no run.json); pass runs/NAME`);
  const manifest = readJsonFile(layout.manifest) as { config: unknown };
  const cfg = readStoredConfig(manifest.config, layout.manifest);
  // The Slurm jobs, when the run was submitted; a cluster that cannot be asked is said once, not per step.
  const jobs = readJobs(layout);
  let states: Map<string, TaskState[]> | null = null;
  let slurmError: string | undefined;
  if (Object.keys(jobs).length) {
    try {
      states = client.states(Object.values(jobs).map((j) => j.jobId));
    } catch (e) {
      slurmError = (e as Error).message;
    }
  }
  const slurmOf = (step: Step, at?: GenerationId): { slurm?: JobState } => {
    const rec = jobs[jobKey(step.name, at)];
    return rec ? { slurm: jobState(layout, rec, states) } : {};
  };
  const one = (step: Step, at?: GenerationId): StepState => {
    const m = readMarker(layout.marker(step.name, at));
    if (m.marker) return { stage: step.name, state: 'done', detail: typeof m.marker.seconds === 'number' ? `${m.marker.seconds.toFixed(1)} s` : '', ...slurmOf(step, at) };
    if (m.unreadable) return { stage: step.name, state: 'pending', detail: m.unreadable, ...slurmOf(step, at) };
    const p = at && step.phase === 'generation' ? (step.partial?.(layout, at, cfg) ?? null) : step.phase !== 'generation' ? (step.partial?.(layout) ?? null) : null;
    return { stage: step.name, ...(p ? { state: 'partial', detail: p } : { state: 'pending', detail: '' }), ...slurmOf(step, at) };
  };
  const data = setupSteps(cfg).map((s) => one(s));
  const gens: GenStatus[] = [];
  for (const setting of layout.settings)
    for (const seed of cfg.seeds)
      for (let gen = 0; gen < cfg.generations; gen++) {
        const at = { setting, seed, gen };
        // A step that does not run here (select in an uncurated setting) keeps its column, marked n/a.
        gens.push({ setting, seed, gen, stages: generationSteps(cfg).map((s) => (stepAppliesAt(s, cfg, at) ? one(s, at) : { stage: s.name, state: 'n/a' as const, detail: '' })) });
      }
  // Final steps leave no marker (the report is rebuilt every time); under Slurm they have a job.
  const final = finalSteps(cfg).flatMap((s) => (jobs[jobKey(s.name)] ? [{ stage: s.name, state: 'pending' as const, detail: '', ...slurmOf(s) }] : []));
  return { config: manifest.config, data, gens, final, ...(slurmError ? { slurmError } : {}) };
}

/** `[job 12 RUNNING]` after a step's state. */
const jobCell = (s: StepState): string => (s.slurm ? ` [job ${s.slurm.jobId} ${s.slurm.state}]` : '');

export function formatStatus(st: RunStatus): string {
  const mark = { done: 'done', partial: 'PARTIAL', pending: '-', 'n/a': 'n/a' } as const;
  const lines = [`run: ${st.data.map((d) => `${`${d.stage} ${mark[d.state]} ${d.detail}`.trim()}${jobCell(d)}`).join(', ')}`];
  const head = ['setting', 'seed', 'gen', ...st.gens[0]?.stages.map((s) => s.stage) ?? []];
  const rows = st.gens.map((g) => [g.setting, String(g.seed), String(g.gen), ...g.stages.map((s) => `${mark[s.state]}${s.detail ? ` (${s.detail})` : ''}${jobCell(s)}`)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  const done = st.gens.filter((g) => g.stages.every((s) => s.state === 'done' || s.state === 'n/a')).length;
  lines.push(`${done}/${st.gens.length} generations complete`);
  for (const f of st.final) lines.push(`${f.stage}:${jobCell(f)}`);
  if (st.slurmError) lines.push(`Slurm: ${st.slurmError}`);
  // A failed job's error, from the end of its log: why its dependants were cancelled.
  const all = [...st.data, ...st.gens.flatMap((g) => g.stages.map((s) => ({ ...s, stage: `${s.stage} (${g.setting} seed ${g.seed} gen ${g.gen})` }))), ...st.final];
  for (const s of all) if (s.slurm?.error || s.slurm?.log) lines.push(`FAILED ${s.stage}, job ${s.slurm.jobId}: ${s.slurm.error ?? '(no error in the log)'}\n  log: ${s.slurm.log}`);
  return lines.join('\n');
}
