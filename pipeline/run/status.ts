// `collapse status RUN_DIR`: each setting's, seed's and generation's steps and their state, read from disk
// alone (markers, checkpoints, committed corpus shards), so it works while other processes are running.
// The steps and their order come from the loop's own declared list (steps.ts).
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../util/json.js';
import { validateConfig } from './config.js';
import { RunLayout, type GenAt } from './layout.js';
import { readMarker } from './markers.js';
import { generationSteps, setupSteps, type Step } from './steps.js';

export interface StageState { stage: string; state: 'done' | 'partial' | 'pending'; detail: string }
export interface GenStatus { setting: string; seed: number; gen: number; stages: StageState[] }

export function runStatus(root: string): { config: unknown; data: StageState[]; gens: GenStatus[] } {
  if (!existsSync(`${root}/run.json`)) throw new Error(`${root} is not a run directory (no run.json); pass runs/NAME`);
  const layout = RunLayout.open(root);
  const manifest = readJsonFile(layout.manifest) as { config: unknown };
  const cfg = validateConfig(manifest.config, layout.manifest);
  const one = (step: Step, at?: GenAt): StageState => {
    const m = readMarker(layout.marker(step.name, at));
    if (m) return { stage: step.name, state: 'done', detail: `${m.seconds.toFixed(1)} s` };
    const p = at && step.phase === 'generation' ? (step.partial?.(layout, at) ?? null) : step.phase !== 'generation' ? (step.partial?.(layout) ?? null) : null;
    return p ? { stage: step.name, state: 'partial', detail: p } : { stage: step.name, state: 'pending', detail: '' };
  };
  const data = setupSteps(cfg).map((s) => one(s));
  const gens: GenStatus[] = [];
  for (const setting of layout.settings)
    for (const seed of cfg.seeds)
      for (let gen = 0; gen < cfg.generations; gen++) {
        const at = { setting, seed, gen };
        gens.push({ setting, seed, gen, stages: generationSteps(cfg).map((s) => one(s, at)) });
      }
  return { config: manifest.config, data, gens };
}

export function formatStatus(st: ReturnType<typeof runStatus>): string {
  const mark = { done: 'done', partial: 'PARTIAL', pending: '-' } as const;
  const lines = [`run: ${st.data.map((d) => `${d.stage} ${mark[d.state]} ${d.detail}`.trim()).join(', ')}`];
  const head = ['setting', 'seed', 'gen', ...st.gens[0]?.stages.map((s) => s.stage) ?? []];
  const rows = st.gens.map((g) => [g.setting, String(g.seed), String(g.gen), ...g.stages.map((s) => `${mark[s.state]}${s.detail ? ` (${s.detail})` : ''}`)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  const done = st.gens.filter((g) => g.stages.every((s) => s.state === 'done')).length;
  lines.push(`${done}/${st.gens.length} generations complete`);
  return lines.join('\n');
}
