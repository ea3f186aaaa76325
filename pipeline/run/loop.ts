// The generational loop (the paper's Figure 1): for each seed, generation k fine-tunes a model on its
// training corpus, keeps the epoch with the best REAL validation loss, writes a continuation for every
// ORIGINAL training block, evaluates, and mixes the next generation's training corpus.
// Like a datatrove pipeline it is a list of steps; each step reads, writes atomically and leaves a marker,
// so that a rerun resumes, and steps shard by rank so that many processes can share one run directory.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../models/util/json.js';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../models/util/atomic.js';
import type { RunConfig } from './config.js';
import { isDone, markDone, RunLayout } from './layout.js';

/** What each step does; implemented in stages.ts on top of datasets/, pipeline/train, generate and eval. */
export interface Stages {
  /** Tokenize and block the original train/valid/test splits into layout.split(...). */
  prepareData(cfg: RunConfig, layout: RunLayout): Promise<Record<string, unknown>>;
  /** The starting model: imported, or a tiny OPT from a seeded init (its tokenizer prepares the data). */
  baseModel(cfg: RunConfig, layout: RunLayout): Promise<Record<string, unknown>>;
  /** When model.pretrainEpochs > 0: teach the base the real data first (OPT-125m arrives pretrained). */
  pretrain(cfg: RunConfig, layout: RunLayout): Promise<Record<string, unknown>>;
  /** The training corpus of generation `gen` (gen 0: the original blocks). */
  trainCorpus(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Record<string, unknown>>;
  finetune(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Record<string, unknown>>;
  /** Generates this rank's shards of the corpus (committed one by one, so an interrupted run resumes). */
  generate(cfg: RunConfig, layout: RunLayout, seed: number, gen: number, shard: Shard): Promise<void>;
  /** Whether every shard of the generated corpus is committed (by any rank). */
  generationComplete(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<boolean>;
  evaluate(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Record<string, unknown>>;
  report(cfg: RunConfig, layout: RunLayout): Promise<string>;
  /** A measured warm-up turned into a duration estimate (one line for the log). */
  estimate(cfg: RunConfig, layout: RunLayout, opts: { seeds: number; shards: number }): Promise<string>;
}

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

/** Writes run.json, or checks that an existing run directory holds the same configuration. */
export function writeRunManifest(cfg: RunConfig, layout: RunLayout, opts: RunOptions): void {
  const config = JSON.parse(JSON.stringify(cfg)) as RunConfig;
  if (existsSync(layout.manifest)) {
    const prev = readJsonFile(layout.manifest) as { config: RunConfig };
    const a = JSON.stringify({ ...prev.config, seeds: [] });
    const b = JSON.stringify({ ...config, seeds: [] });
    // Before the first step finished nothing depends on the old config (e.g. a bad model.base): replace it.
    const started = isDone(layout.marker(join(layout.root, 'base'), 'base-model'));
    if (a !== b && started) {
      throw new Error(
        `${layout.manifest} was written for a different configuration; resume with the same config, ` +
          `or start a new run with --set name=OTHER (or delete ${layout.root})`,
      );
    }
    if (a === b || started) return;
  }
  writeJsonAtomic(layout.manifest, {
    config,
    projectVersion: opts.projectVersion ?? 'unknown',
    inputChecksums: opts.inputChecksums ?? {},
    createdAt: new Date().toISOString(),
  });
}

export async function runExperiment(cfg: RunConfig, stages: Stages, opts: RunOptions = {}): Promise<{ root: string; report?: string }> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const shard = opts.shard ?? { index: 0, count: 1 };
  const leader = shard.index === 0;
  const layout = new RunLayout(join(cfg.runsDir, cfg.name));
  const poll = (opts.pollSeconds ?? 10) * 1000;

  /** Runs `fn` once (on the leader) and leaves a marker; other ranks wait for the marker. */
  async function step(dir: string, stage: string, fn: () => Promise<Record<string, unknown>>): Promise<void> {
    const marker = layout.marker(dir, stage);
    if (isDone(marker)) return;
    if (!leader) {
      log(`[rank ${shard.index}] waiting for ${stage} in ${dir}`);
      while (!isDone(marker)) {
        opts.onWait?.(`${stage} in ${dir}`);
        await sleep(poll);
      }
      return;
    }
    const t0 = Date.now();
    log(`${stage}: ${dir}`);
    const info = await fn();
    markDone(marker, stage, (Date.now() - t0) / 1000, info);
  }

  if (leader) writeRunManifest(cfg, layout, opts);
  await step(join(layout.root, 'base'), 'base-model', () => stages.baseModel(cfg, layout));
  await step(layout.dataDir, 'prepare', () => stages.prepareData(cfg, layout));
  if (cfg.model.pretrainEpochs > 0) await step(join(layout.root, 'base'), 'pretrain', () => stages.pretrain(cfg, layout));

  const seeds = opts.seeds ?? cfg.seeds;
  for (const s of seeds) if (!cfg.seeds.includes(s)) throw new Error(`--seed ${s} is not among the config's seeds [${cfg.seeds}]`);
  const started = seeds.some((s) => isDone(layout.marker(layout.genDir(s, 0), 'finetune')));
  if (leader && !started && cfg.estimate) log(await stages.estimate(cfg, layout, { seeds: seeds.length, shards: shard.count }));
  for (const seed of seeds) {
    for (let gen = 0; gen < cfg.generations; gen++) {
      const dir = layout.genDir(seed, gen);
      await step(dir, 'train-corpus', () => stages.trainCorpus(cfg, layout, seed, gen));
      await step(dir, 'finetune', () => stages.finetune(cfg, layout, seed, gen));
      const genMarker = layout.marker(dir, 'generate');
      if (!isDone(genMarker)) {
        const t0 = Date.now();
        log(`generate: ${dir} (shard ${shard.index + 1}/${shard.count})`);
        await stages.generate(cfg, layout, seed, gen, shard);
        // The leader waits until every rank's shards are committed, then seals the corpus.
        while (leader && !(await stages.generationComplete(cfg, layout, seed, gen))) {
          log(`generate: waiting for the other ranks' shards of ${dir}`);
          opts.onWait?.(`the other ranks' shards of ${dir}`);
          await sleep(poll);
        }
        if (leader) markDone(genMarker, 'generate', (Date.now() - t0) / 1000);
      }
      await step(dir, 'evaluate', () => stages.evaluate(cfg, layout, seed, gen));
    }
  }
  if (!leader) return { root: layout.root };
  const report = await stages.report(cfg, layout);
  return { root: layout.root, report };
}
