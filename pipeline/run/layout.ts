// Where everything of a run lives: runs/NAME/{run.json, data/, base/, seed-S/gen-K/{model, train-corpus,
// corpus, metrics.json, log}}. Every stage writes its outputs atomically and then a `<stage>.done.json`
// marker, so that a rerun skips finished stages and `collapse status` can read the state from disk alone.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../models/util/json.js';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../models/util/atomic.js';

export const STAGES = ['train-corpus', 'finetune', 'generate', 'evaluate'] as const;
export type Stage = (typeof STAGES)[number];

export class RunLayout {
  constructor(readonly root: string) {}
  get manifest(): string { return join(this.root, 'run.json'); }
  get dataDir(): string { return join(this.root, 'data'); }
  split(name: 'train' | 'valid' | 'test'): string { return join(this.dataDir, name); }
  get baseModel(): string { return join(this.root, 'base', 'model'); }
  seedDir(seed: number): string { return join(this.root, `seed-${seed}`); }
  genDir(seed: number, gen: number): string { return join(this.seedDir(seed), `gen-${gen}`); }
  model(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'model'); }
  trainCorpus(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'train-corpus'); }
  corpus(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'corpus'); }
  metrics(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'metrics.json'); }
  log(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'log'); }
  checkpoint(seed: number, gen: number): string { return join(this.genDir(seed, gen), 'model.ckpt'); }
  marker(dir: string, stage: string): string { return join(dir, `${stage}.done.json`); }
}

export interface Marker { stage: string; finishedAt: string; seconds: number; [k: string]: unknown }

export function isDone(markerPath: string): boolean {
  return existsSync(markerPath);
}
export function readMarker(markerPath: string): Marker | null {
  return existsSync(markerPath) ? readJsonFile<Marker>(markerPath) : null;
}
export function markDone(markerPath: string, stage: string, seconds: number, extra: Record<string, unknown> = {}): void {
  writeJsonAtomic(markerPath, { stage, finishedAt: new Date().toISOString(), seconds, ...extra });
}
