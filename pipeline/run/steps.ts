// The generational loop as ONE declared list of steps, as datatrove's pipelines are: each with its name,
// when it runs (once before the generations, per setting/seed/generation, or once at the end), whether it
// is sharded across ranks, what it runs and which paths (RunLayout's) it writes. The loop (loop.ts) runs
// this list; `collapse status` (status.ts) reports on it.
import type { RunConfig } from './config.js';
import type { GenAt, RunLayout } from './layout.js';
import * as stages from './stages.js';
import type { StepContext } from './stages.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface StepBase {
  name: string;
  /** Whether this configuration has the step (default: always). */
  enabled?(cfg: RunConfig): boolean;
}

/** Once per run: before the generations (`setup`) or after them (`final`, on rank 0 only). */
export interface RunStep extends StepBase {
  phase: 'setup' | 'final';
  sharded: false;
  outputs(layout: RunLayout, cfg: RunConfig): string[];
  run(ctx: StepContext): Promise<unknown>;
  /** For status: what an unfinished run of the step left, or null. */
  partial?(layout: RunLayout): string | null;
}

/** Per setting, seed and generation. */
export interface GenerationStep extends StepBase {
  phase: 'generation';
  /** Sharded: every rank runs its share; rank 0 waits until `complete`, then leaves the marker. */
  sharded: boolean;
  outputs(layout: RunLayout, at: GenAt): string[];
  run(ctx: StepContext, at: GenAt): Promise<unknown>;
  complete?(ctx: StepContext, at: GenAt): Promise<boolean>;
  /** For status: what an unfinished run of the step left (a checkpoint, committed shards), or null. */
  partial?(layout: RunLayout, at: GenAt): string | null;
}

export type Step = RunStep | GenerationStep;

/** What an interrupted training left in its output directory: the model (not yet recorded) or a checkpoint. */
function trainingLeft(modelDir: string): string | null {
  if (existsSync(join(modelDir, 'train-summary.json'))) return 'model written; the next run records it';
  if (existsSync(`${modelDir}.ckpt`)) return 'checkpoint present (resumes from it)';
  return null;
}

export const STEPS: readonly Step[] = [
  {
    name: 'base-model', phase: 'setup', sharded: false,
    outputs: (l, cfg) => [cfg.model.pretrainEpochs > 0 ? l.initModel : l.baseModel, l.baseInfo],
    run: stages.baseModel,
  },
  {
    name: 'prepare', phase: 'setup', sharded: false,
    outputs: (l, cfg) => stages.dataSplits(cfg).map((s) => l.split(s)),
    run: stages.prepareData,
  },
  {
    name: 'estimate', phase: 'setup', sharded: false,
    enabled: (cfg) => cfg.estimate,
    outputs: (l) => [l.estimate],
    run: stages.estimate,
  },
  {
    name: 'pretrain', phase: 'setup', sharded: false,
    enabled: (cfg) => cfg.model.pretrainEpochs > 0,
    outputs: (l) => [l.baseModel],
    run: stages.pretrain,
    partial: (l) => trainingLeft(l.baseModel),
  },
  {
    name: 'zero-shot', phase: 'setup', sharded: false,
    outputs: (l) => [l.zeroShot],
    run: stages.zeroShot,
  },
  {
    name: 'train-corpus', phase: 'generation', sharded: false,
    outputs: (l, at) => (at.gen === 0 ? [] : [l.trainCorpus(at)]),
    run: stages.trainCorpus,
  },
  {
    name: 'finetune', phase: 'generation', sharded: false,
    outputs: (l, at) => [l.model(at), l.trainLog(at)],
    run: stages.finetuneGeneration,
    partial: (l, at) => trainingLeft(l.model(at)),
  },
  {
    name: 'generate', phase: 'generation', sharded: true,
    outputs: (l, at) => [l.corpus(at)],
    run: stages.generate,
    complete: stages.generateComplete,
    partial: (l, at) => {
      const dir = l.corpus(at);
      const n = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.arrow')).length : 0;
      return n > 0 ? `${n} shard(s) committed` : null;
    },
  },
  {
    name: 'evaluate', phase: 'generation', sharded: false,
    outputs: (l, at) => [l.metrics(at), l.samplePpl(at)],
    run: stages.evaluate,
  },
  {
    name: 'report', phase: 'final', sharded: false,
    outputs: (l) => [l.reportDir],
    run: stages.report,
  },
];

export const stepEnabled = (s: Step, cfg: RunConfig): boolean => s.enabled?.(cfg) ?? true;
export const setupSteps = (cfg: RunConfig): RunStep[] => STEPS.filter((s): s is RunStep => s.phase === 'setup' && stepEnabled(s, cfg));
export const generationSteps = (cfg: RunConfig): GenerationStep[] => STEPS.filter((s): s is GenerationStep => s.phase === 'generation' && stepEnabled(s, cfg));
export const finalSteps = (cfg: RunConfig): RunStep[] => STEPS.filter((s): s is RunStep => s.phase === 'final' && stepEnabled(s, cfg));
