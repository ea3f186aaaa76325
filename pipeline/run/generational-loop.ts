// The generational loop (the paper's Figure 1): for each setting and seed, generation k fine-tunes a model
// on its training corpus, keeps the epoch with the best REAL validation loss, writes a continuation for
// every ORIGINAL training block, evaluates, and mixes the next generation's training corpus.
// It runs the declared list of steps (steps.ts): each step writes its outputs atomically and leaves a
// marker, so that a rerun resumes; sharded steps split their work by rank, so that many processes can share
// one run directory (the others wait for rank 0's unsharded steps). Final steps (the report) run every time.
import { existsSync, rmSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import { parseStoredConfig, runSettings, type RunConfig } from './config.js';
import { RunLayout, type GenerationId } from './layout.js';
import { markerWritten } from './markers.js';
import { checkSeeds } from './preflight-run.js';
import { configChanges, describeChanges } from './config-diff.js';
import type { StepContext } from './step-bodies.js';
import { runMarked, runShare, sealStep, where } from './step-run.js';
import { finalSteps, generationSteps, setupSteps, type GenerationStep, type RunStep } from './steps.js';

export interface Shard {
  index: number;
  count: number;
}

export interface RunOptions {
  /** Only these seeds (scale-out: one process or machine per seed). */
  seeds?: number[];
  shard?: Shard;
  log?: (line: string) => void;
  /** Seconds between polls while waiting for another rank's step. */
  pollSeconds?: number;
  projectVersion?: string;
  inputChecksums?: Record<string, string>;
  /** Called at each poll while waiting for another rank; throws to give up (e.g. no other rank is running). */
  onWait?: (what: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The layout of a configuration's run directory. */
export function layoutOf(cfg: RunConfig): RunLayout {
  return new RunLayout(RunLayout.rootOf(cfg.runsDir, cfg.name), runSettings(cfg).map((s) => s.name));
}

/** Writes run.json, or checks that an existing run directory holds the same configuration. */
export function writeRunManifest(cfg: RunConfig, layout: RunLayout, opts: RunOptions): void {
  const config = JSON.parse(JSON.stringify(cfg)) as RunConfig;
  if (existsSync(layout.manifest)) {
    const prev = readJsonFile(layout.manifest) as { config: RunConfig };
    // Written by an earlier version: its renamed keys under their new names, settings added since at their defaults.
    const changes = configChanges(parseStoredConfig(prev.config) ?? prev.config, config);
    // Before the first step finished nothing depends on the old config (e.g. a bad model.base): replace it.
    const started = markerWritten(layout.marker('base-model'));
    if (changes.length && started) throw new Error(describeChanges(layout.manifest, changes));
    // Only the location or the seeds differ (a moved run directory): run.json stays as it was written.
    if (started || changes.length === 0) return;
  }
  writeJsonAtomic(layout.manifest, {
    config,
    projectVersion: opts.projectVersion ?? 'unknown',
    inputChecksums: opts.inputChecksums ?? {},
    createdAt: new Date().toISOString(),
  });
}

export async function runExperiment(cfg: RunConfig, opts: RunOptions = {}): Promise<{ root: string; report?: string }> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const shard = opts.shard ?? { index: 0, count: 1 };
  const leader = shard.index === 0;
  const layout = layoutOf(cfg);
  const poll = (opts.pollSeconds ?? 10) * 1000;
  const seeds = opts.seeds ?? cfg.seeds;
  checkSeeds(cfg, seeds);
  const ctx: StepContext = { cfg, layout, seeds, shard, log };

  /** An unsharded step runs once (on rank 0) and leaves its marker; other ranks wait for the marker. */
  async function once(step: RunStep | GenerationStep, at?: GenerationId): Promise<void> {
    const marker = layout.marker(step.name, at);
    if (!leader) {
      if (markerWritten(marker)) return;
      log(`[rank ${shard.index}] waiting for ${step.name} (${where(at)})`);
      while (!markerWritten(marker)) {
        opts.onWait?.(`${step.name} (${where(at)})`);
        await sleep(poll);
      }
      return;
    }
    await runMarked(step, ctx, at);
  }

  /**
   * A sharded step: every rank its share; rank 0 waits for the others' shares, then seals it. Its outputs are
   * verified by a single process only: with several ranks, one rank cannot redo the others' finished shares.
   */
  async function sharded(step: GenerationStep, at: GenerationId): Promise<void> {
    const t0 = Date.now();
    // This rank's share, as a Slurm array task runs it; rank 0 seals it at once when every share is in.
    if ((await runShare(step, ctx, at, leader)) || !leader) return;
    while (step.complete && !(await step.complete(ctx, at))) {
      log(`${step.name}: waiting for the other ranks' shards (${where(at)})`);
      opts.onWait?.(`the other ranks' shards of ${step.name} (${where(at)})`);
      await sleep(poll);
    }
    sealStep(step, ctx, t0, undefined, at);
  }

  if (leader) writeRunManifest(cfg, layout, opts);
  for (const step of setupSteps(cfg)) await once(step);
  for (const setting of layout.settings) {
    for (const seed of seeds) {
      for (let gen = 0; gen < cfg.generations; gen++) {
        const at: GenerationId = { setting, seed, gen };
        for (const step of generationSteps(cfg)) await (step.sharded ? sharded(step, at) : once(step, at));
      }
    }
  }
  if (!leader) return { root: layout.root };
  let report: string | undefined;
  for (const step of finalSteps(cfg)) {
    const r = await step.run(ctx);
    if (step.name === 'report' && typeof r === 'string') report = r;
  }
  return { root: layout.root, report };
}
