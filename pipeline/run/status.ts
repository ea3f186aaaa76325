// `collapse status RUN_DIR`: each seed's and generation's stages and their state, read from disk alone
// (markers, checkpoints, committed corpus shards), so it works while other processes are running.
import { existsSync, readdirSync } from 'node:fs';
import { readJsonFile } from '../../models/util/json.js';
import { join } from 'node:path';
import { readMarker, RunLayout, STAGES } from './layout.js';

export interface StageState { stage: string; state: 'done' | 'partial' | 'pending'; detail: string }
export interface GenStatus { seed: number; gen: number; stages: StageState[] }

function partialDetail(layout: RunLayout, seed: number, gen: number, stage: string): string | null {
  if (stage === 'finetune' && existsSync(join(layout.model(seed, gen), 'train-summary.json'))) return 'model written; the next run records it';
  if (stage === 'finetune' && existsSync(layout.checkpoint(seed, gen))) return 'checkpoint present (resumes from it)';
  if (stage === 'generate') {
    const dir = layout.corpus(seed, gen);
    if (!existsSync(dir)) return null;
    const shards = readdirSync(dir).filter((f) => f.endsWith('.arrow')).length;
    return shards > 0 ? `${shards} shard(s) committed` : null;
  }
  return null;
}

/** Pretraining (tiny preset): done, or partial with the model or the checkpoint it resumes from. */
function pretrainState(layout: RunLayout, s: StageState): StageState {
  if (s.state === 'done') return s;
  if (existsSync(join(layout.baseModel, 'train-summary.json'))) return { stage: s.stage, state: 'partial', detail: 'model written; the next run records it' };
  if (existsSync(`${layout.baseModel}.ckpt`)) return { stage: s.stage, state: 'partial', detail: 'checkpoint present (resumes from it)' };
  return s;
}

export function runStatus(root: string): { config: unknown; data: StageState[]; gens: GenStatus[] } {
  const layout = new RunLayout(root);
  if (!existsSync(layout.manifest)) throw new Error(`${root} is not a run directory (no run.json); pass runs/NAME`);
  const manifest = readJsonFile(layout.manifest) as { config: { seeds: number[]; generations: number; model?: { pretrainEpochs?: number } } };
  const { seeds, generations } = manifest.config;
  const one = (dir: string, stage: string): StageState => {
    const m = readMarker(layout.marker(dir, stage));
    return m ? { stage, state: 'done', detail: `${m.seconds.toFixed(1)} s` } : { stage, state: 'pending', detail: '' };
  };
  const data = [one(layout.dataDir, 'prepare'), one(join(root, 'base'), 'base-model')];
  if ((manifest.config.model?.pretrainEpochs ?? 0) > 0) data.push(pretrainState(layout, one(join(root, 'base'), 'pretrain')));
  const gens: GenStatus[] = [];
  for (const seed of seeds) {
    for (let gen = 0; gen < generations; gen++) {
      const dir = layout.genDir(seed, gen);
      const stages = STAGES.map((stage) => {
        const s = one(dir, stage);
        if (s.state === 'pending') {
          const p = partialDetail(layout, seed, gen, stage);
          if (p) return { stage, state: 'partial' as const, detail: p };
        }
        return s;
      });
      gens.push({ seed, gen, stages });
    }
  }
  return { config: manifest.config, data, gens };
}

export function formatStatus(st: ReturnType<typeof runStatus>): string {
  const mark = { done: 'done', partial: 'PARTIAL', pending: '-' } as const;
  const lines = [`data: ${st.data.map((d) => `${d.stage} ${mark[d.state]} ${d.detail}`.trim()).join(', ')}`];
  const head = ['seed', 'gen', ...st.gens[0]?.stages.map((s) => s.stage) ?? []];
  const rows = st.gens.map((g) => [String(g.seed), String(g.gen), ...g.stages.map((s) => `${mark[s.state]}${s.detail ? ` (${s.detail})` : ''}`)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  const done = st.gens.filter((g) => g.stages.every((s) => s.state === 'done')).length;
  lines.push(`${done}/${st.gens.length} generations complete`);
  return lines.join('\n');
}
