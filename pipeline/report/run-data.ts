// Reads what the evaluate step left in a run directory: runs/NAME/{run.json, seed-S/gen-K/{metrics.json,
// sample_ppl.json}}. Generations whose evaluation has not finished yet are listed as missing, not an error,
// so that a report can be drawn while a run is still going.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  METRICS_FILE,
  readGenerationMetrics,
  readSamplePpl,
  SAMPLE_PPL_FILE,
  type GenerationMetrics,
} from '../eval/metrics-schema.js';

export interface RunData {
  root: string;
  name: string;
  /** run.json as written by the loop (config and provenance), or null. */
  manifest: Record<string, unknown> | null;
  seeds: number[];
  /** Generations with metrics for at least one seed, ascending. */
  generations: number[];
  metrics: GenerationMetrics[];
  /** Per-sample perplexities keyed `${seed}/${generation}`. */
  samplePpl: Map<string, number[]>;
  /** seed/gen directories that exist but have no metrics yet. */
  pending: string[];
}

export const pplKey = (seed: number, generation: number): string => `${seed}/${generation}`;

function numberedDirs(dir: string, prefix: string): number[] {
  if (!existsSync(dir)) return [];
  const re = new RegExp(`^${prefix}-(\\d+)$`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && re.test(e.name))
    .map((e) => Number(re.exec(e.name)![1]))
    .sort((a, b) => a - b);
}

export function readRunData(root: string): RunData {
  if (!existsSync(root)) throw new Error(`run directory not found: ${root}`);
  const manifestPath = join(root, 'run.json');
  let manifest: Record<string, unknown> | null = null;
  if (existsSync(manifestPath)) {
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${manifestPath} is not valid JSON (${(e as Error).message})`);
    }
  }
  const seeds = numberedDirs(root, 'seed');
  if (seeds.length === 0) throw new Error(`${root} has no seed-S directories: is it a run directory (runs/NAME)? Run \`collapse run\` first`);
  const metrics: GenerationMetrics[] = [];
  const samplePpl = new Map<string, number[]>();
  const pending: string[] = [];
  const gens = new Set<number>();
  for (const seed of seeds) {
    for (const gen of numberedDirs(join(root, `seed-${seed}`), 'gen')) {
      const dir = join(root, `seed-${seed}`, `gen-${gen}`);
      if (!existsSync(join(dir, METRICS_FILE))) {
        pending.push(dir);
        continue;
      }
      metrics.push(readGenerationMetrics(dir));
      gens.add(gen);
      if (existsSync(join(dir, SAMPLE_PPL_FILE))) samplePpl.set(pplKey(seed, gen), readSamplePpl(dir).ppl);
    }
  }
  if (metrics.length === 0) throw new Error(`${root} has no evaluated generation yet (no seed-S/gen-K/metrics.json)`);
  const name = typeof manifest?.name === 'string' ? manifest.name : (root.split(/[\\/]/).filter(Boolean).pop() ?? root);
  return { root, name, manifest, seeds: [...new Set(metrics.map((m) => m.seed))].sort((a, b) => a - b), generations: [...gens].sort((a, b) => a - b), metrics, samplePpl, pending };
}

/** The histogram generations configured in run.json (config.eval.histogramGenerations), if any. */
export function configuredHistogramGenerations(run: RunData): number[] | null {
  const cfg = (run.manifest?.config ?? run.manifest) as { eval?: { histogramGenerations?: unknown } } | undefined;
  const g = cfg?.eval?.histogramGenerations;
  return Array.isArray(g) && g.every((x) => Number.isInteger(x)) ? (g as number[]) : null;
}
