// The generational loop as ONE declared list of steps, as datatrove's pipelines are: each with its name,
// when it runs (once before the generations, per setting/seed/generation, or once at the end), whether it
// is sharded across ranks, what it runs, which paths (RunLayout's) it reads and writes, and what kind of
// resources it needs. The loop (generational-loop.ts) runs this list; `collapse status` (status.ts) reports on it;
// `collapse slurm submit` (pipeline/slurm) turns it into jobs whose dependencies follow inputs to outputs.
import { runSettings, type RunConfig } from './config.js';
import type { GenerationId, RunLayout } from './layout.js';
import * as bodies from './step-bodies.js';
import type { StepContext } from './step-bodies.js';
import { trainCorpusPath } from './mixing.js';
import { existsSync } from 'node:fs';
import { committedShards } from '../../datasets/corpus-store.js';
import { trainingFinished } from '../train/finetune.js';

/** What a step's job needs on a cluster: `--cpus`/`--time`/`--mem` of `collapse slurm submit` are given per kind. */
export const STEP_KINDS = ['light', 'train', 'generate', 'evaluate'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

interface StepBase {
  name: string;
  kind: StepKind;
  /** Whether this configuration has the step (default: always). */
  enabled?(cfg: RunConfig): boolean;
}

/** Once per run: before the generations (`setup`) or after them (`final`, on rank 0 only). */
export interface RunStep extends StepBase {
  phase: 'setup' | 'final';
  sharded: false;
  outputs(layout: RunLayout, cfg: RunConfig): string[];
  /** The paths it reads: a path another step writes makes this step wait for that one (Slurm dependencies). */
  inputs(layout: RunLayout, cfg: RunConfig): string[];
  run(ctx: StepContext): Promise<unknown>;
  /** For status: what an unfinished run of the step left, or null. */
  partial?(layout: RunLayout): string | null;
}

/** Per setting, seed and generation. */
export interface GenerationStep extends StepBase {
  phase: 'generation';
  /** Sharded: every rank runs its share; rank 0 waits until `complete`, then leaves the marker. */
  sharded: boolean;
  /** Whether the step runs at this place (default: everywhere); the select step runs in curated settings only. */
  appliesAt?(cfg: RunConfig, at: GenerationId): boolean;
  outputs(layout: RunLayout, at: GenerationId, cfg: RunConfig): string[];
  inputs(layout: RunLayout, at: GenerationId, cfg: RunConfig): string[];
  run(ctx: StepContext, at: GenerationId): Promise<unknown>;
  complete?(ctx: StepContext, at: GenerationId): Promise<boolean>;
  /** For status: what an unfinished run of the step left (a checkpoint, committed shards), or null. */
  partial?(layout: RunLayout, at: GenerationId, cfg: RunConfig): string | null;
}

export type Step = RunStep | GenerationStep;

/** What an interrupted training left: the model (not yet recorded) or a checkpoint. */
function trainingLeft(modelDir: string, checkpointDir: string): string | null {
  if (trainingFinished(modelDir)) return 'model written; the next run records it';
  if (existsSync(checkpointDir)) return 'checkpoint present (resumes from it)';
  return null;
}

/** The model every generation starts from, as an input: the pretrained base, or base.json naming it. */
const baseInput = (l: RunLayout, cfg: RunConfig): string => (cfg.model.pretrainEpochs > 0 ? l.baseModel : l.baseInfo);
/** The tokenizer's model before the base exists: the tiny init, or base.json naming the base. */
const tokenizerInput = (l: RunLayout, cfg: RunConfig): string => (cfg.model.pretrainEpochs > 0 ? l.initModel : l.baseInfo);
const splits = (l: RunLayout, cfg: RunConfig): string[] => bodies.dataSplits(cfg).map((s) => l.split(s));
const prev = (at: GenerationId): GenerationId => ({ ...at, gen: at.gen - 1 });

export const STEPS: readonly Step[] = [
  {
    name: 'base-model', phase: 'setup', sharded: false, kind: 'light',
    inputs: () => [],
    outputs: (l, cfg) => [cfg.model.pretrainEpochs > 0 ? l.initModel : l.baseModel, l.baseInfo],
    run: bodies.baseModel,
  },
  {
    name: 'prepare', phase: 'setup', sharded: false, kind: 'light',
    inputs: (l, cfg) => [tokenizerInput(l, cfg)],
    outputs: splits,
    run: bodies.prepareData,
  },
  {
    name: 'estimate', phase: 'setup', sharded: false, kind: 'light',
    enabled: (cfg) => cfg.estimate,
    inputs: (l, cfg) => [tokenizerInput(l, cfg), ...splits(l, cfg)],
    outputs: (l) => [l.estimate],
    run: bodies.estimate,
  },
  {
    name: 'pretrain', phase: 'setup', sharded: false, kind: 'train',
    enabled: (cfg) => cfg.model.pretrainEpochs > 0,
    inputs: (l, cfg) => [l.initModel, ...splits(l, cfg)],
    outputs: (l) => [l.baseModel],
    run: bodies.pretrain,
    partial: (l) => trainingLeft(l.baseModel, l.baseCheckpoint),
  },
  {
    name: 'zero-shot', phase: 'setup', sharded: false, kind: 'evaluate',
    inputs: (l, cfg) => [baseInput(l, cfg), l.split('test')],
    outputs: (l) => [l.zeroShot],
    run: bodies.zeroShot,
  },
  {
    name: 'train-corpus', phase: 'generation', sharded: false, kind: 'light',
    // Generation k mixes generation k-1's data, its training corpus and the original blocks.
    inputs: (l, at) => (at.gen === 0 ? [l.split('train')] : [l.corpus(prev(at)), trainCorpusPath(l, prev(at)), l.split('train')]),
    outputs: (l, at) => (at.gen === 0 ? [] : [l.trainCorpus(at)]),
    run: bodies.trainCorpus,
  },
  {
    name: 'finetune', phase: 'generation', sharded: false, kind: 'train',
    inputs: (l, at, cfg) => [
      trainCorpusPath(l, at),
      l.split('valid'),
      cfg.model.initFrom === 'previous' && at.gen > 0 ? l.model(prev(at)) : baseInput(l, cfg),
    ],
    outputs: (l, at) => [l.model(at), l.trainLog(at)],
    run: bodies.finetuneGeneration,
    partial: (l, at) => trainingLeft(l.model(at), l.checkpoint(at)),
  },
  {
    name: 'generate', phase: 'generation', sharded: true, kind: 'generate',
    inputs: (l, at) => [l.model(at), l.split('train')],
    // A curated setting's generation writes k candidates per prompt; its select step writes the corpus.
    outputs: (l, at, cfg) => [bodies.generatedPath(cfg, l, at)],
    run: bodies.generate,
    complete: bodies.generateComplete,
    partial: (l, at, cfg) => {
      const n = committedShards(bodies.generatedPath(cfg, l, at));
      return n > 0 ? `${n} shard(s) committed` : null;
    },
  },
  {
    name: 'select', phase: 'generation', sharded: false, kind: 'evaluate',
    enabled: (cfg) => runSettings(cfg).some((s) => s.select),
    appliesAt: (cfg, at) => bodies.settingOf(cfg, at.setting).select !== undefined,
    inputs: (l, at, cfg) => {
      const sel = bodies.settingOf(cfg, at.setting).select!;
      const verifier = sel.verifier !== 'model' ? [] : sel.model === 'generation-0' ? [l.model({ ...at, gen: 0 })] : sel.model === 'base' ? [baseInput(l, cfg)] : [];
      return [l.candidates(at), l.model(at), l.split('train'), ...verifier];
    },
    outputs: (l, at) => [l.corpus(at), l.selection(at)],
    run: bodies.select,
  },
  {
    name: 'evaluate', phase: 'generation', sharded: false, kind: 'evaluate',
    // Scored by the generation-0 model; generation 0 compares with the zero-shot base, later ones with generation
    // 0's evaluation and, prompt by prompt, its data.
    inputs: (l, at, cfg) => {
      const gen0 = { ...at, gen: 0 };
      const selection = bodies.settingOf(cfg, at.setting).select ? [l.selection(at)] : [];
      const against = at.gen === 0 ? [l.zeroShot] : [l.metrics(gen0), l.samplePpl(gen0), l.corpus(gen0)];
      return [l.model(at), l.corpus(at), ...selection, l.trainLog(at), l.model(gen0), l.split('train'), l.split('test'), ...against];
    },
    outputs: (l, at) => [l.metrics(at), l.samplePpl(at)],
    run: bodies.evaluate,
  },
  {
    name: 'report', phase: 'final', sharded: false, kind: 'light',
    // Every evaluation of the run.
    inputs: (l, cfg) => [l.zeroShot, ...allGenerations(l, cfg).map((at) => l.metrics(at))],
    outputs: (l) => [l.reportDir],
    run: bodies.report,
  },
];

export const stepEnabled = (s: Step, cfg: RunConfig): boolean => s.enabled?.(cfg) ?? true;
export const setupSteps = (cfg: RunConfig): RunStep[] => STEPS.filter((s): s is RunStep => s.phase === 'setup' && stepEnabled(s, cfg));
/** The generation steps of a configuration; with `at`, only those that run there. */
export const generationSteps = (cfg: RunConfig, at?: GenerationId): GenerationStep[] =>
  STEPS.filter((s): s is GenerationStep => s.phase === 'generation' && stepEnabled(s, cfg) && (!at || stepAppliesAt(s, cfg, at)));
export const stepAppliesAt = (s: GenerationStep, cfg: RunConfig, at: GenerationId): boolean => s.appliesAt?.(cfg, at) ?? true;
export const finalSteps = (cfg: RunConfig): RunStep[] => STEPS.filter((s): s is RunStep => s.phase === 'final' && stepEnabled(s, cfg));

/** Every (setting, seed, generation) of a configuration, in the loop's order. */
export function allGenerations(layout: RunLayout, cfg: RunConfig): GenerationId[] {
  const out: GenerationId[] = [];
  for (const setting of layout.settings) for (const seed of cfg.seeds) for (let gen = 0; gen < cfg.generations; gen++) out.push({ setting, seed, gen });
  return out;
}
