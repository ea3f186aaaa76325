// Reads what the evaluate step left in a run directory (paths from RunLayout): run.json and, per setting,
// seed and generation, metrics.json and sample_ppl.json. Generations whose evaluation has not finished yet
// are listed as pending, not an error, so that a report can be drawn while a run is still going.
import { existsSync, statSync } from 'node:fs';
import { readJsonFile } from '../../util/json.js';
import { basename } from 'node:path';
import { readGenerationMetrics, readSamplePpl, type GenerationMetrics } from '../eval/metrics-schema.js';
import { RunLayout } from '../run/layout.js';

export interface RunData {
  root: string;
  name: string;
  /** run.json as written by the loop (config and provenance), or null. */
  manifest: Record<string, unknown> | null;
  /** The run's settings with at least one evaluated generation, in the run's order. */
  settings: string[];
  seeds: number[];
  /** Generations with metrics for at least one seed, ascending. */
  generations: number[];
  metrics: GenerationMetrics[];
  /** Per-sample perplexities keyed by pplKey(setting, seed, generation). */
  samplePpl: Map<string, number[]>;
  /** Generation directories that exist but have no metrics yet. */
  pending: string[];
}

export const pplKey = (setting: string, seed: number, generation: number): string => `${setting}/${seed}/${generation}`;

export function readRunData(root: string): RunData {
  if (!existsSync(root)) throw new Error(`run directory not found: ${root}`);
  if (!statSync(root).isDirectory()) throw new Error(`${root} is a file, not a run directory: give runs/NAME`);
  const layout = RunLayout.open(root);
  let manifest: Record<string, unknown> | null = null;
  if (existsSync(layout.manifest)) manifest = readJsonFile<Record<string, unknown>>(layout.manifest);
  const dirs = layout.generationsOnDisk();
  if (dirs.length === 0) throw new Error(`${root} has no seed-S/gen-K directories: is it a run directory (runs/NAME)? Run \`collapse run\` first`);
  const metrics: GenerationMetrics[] = [];
  const samplePpl = new Map<string, number[]>();
  const pending: string[] = [];
  for (const at of dirs) {
    if (!existsSync(layout.metrics(at))) {
      pending.push(at.dir);
      continue;
    }
    const m = readGenerationMetrics(layout.metrics(at));
    // The folder, not the record, says which setting it belongs to (records of one-setting runs agree).
    metrics.push({ ...m, setting: at.setting });
    if (existsSync(layout.samplePpl(at))) samplePpl.set(pplKey(at.setting, at.seed, at.gen), readSamplePpl(layout.samplePpl(at)).ppl);
  }
  if (metrics.length === 0) throw new Error(`${root} has no evaluated generation yet (none of its ${dirs.length} generation folders holds ${basename(layout.metrics(dirs[0]!))})`);
  const name = typeof manifest?.name === 'string' ? manifest.name : (root.split(/[\\/]/).filter(Boolean).pop() ?? root);
  const present = new Set(metrics.map((m) => m.setting));
  return {
    root,
    name,
    manifest,
    settings: layout.settings.filter((s) => present.has(s)),
    seeds: [...new Set(metrics.map((m) => m.seed))].sort((a, b) => a - b),
    generations: [...new Set(metrics.map((m) => m.generation))].sort((a, b) => a - b),
    metrics,
    samplePpl,
    pending,
  };
}

/** The histogram generations configured in run.json (config.eval.histogramGenerations), if any. */
export function configuredHistogramGenerations(run: RunData): number[] | null {
  const cfg = (run.manifest?.config ?? run.manifest) as { eval?: { histogramGenerations?: unknown } } | undefined;
  const g = cfg?.eval?.histogramGenerations;
  return Array.isArray(g) && g.every((x) => Number.isInteger(x)) ? (g as number[]) : null;
}
