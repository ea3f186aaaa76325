// Preflight of `collapse run`: everything that can be checked before any compute or any write, so that a
// bad configuration fails in a second (not after pretraining) and leaves no run.json behind to block its fix.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, TINY_CONFIG, TINY_VOCAB_SIZE } from '../../datasets/tokenizer.js';
import { isHubId } from '../../models/hub.js';
import { checkThreads } from '../../util/cores.js';
import { checkModelFits, checkTokenizerFits, checkWritable, modelLimits, type ModelLimits } from '../preflight.js';
import type { RunConfig } from './config.js';
import { RunLayout } from './layout.js';

/** The base model's limits, or undefined when only the hub knows them (checked again by the steps). */
function baseLimits(cfg: RunConfig): { limits: ModelLimits; tokenizer?: { dir: string; vocabSize: number } } | undefined {
  const spec = cfg.model.base;
  if (spec === 'tiny') {
    return {
      limits: { model: 'tiny', positions: TINY_CONFIG.max_position_embeddings, vocabSize: TINY_CONFIG.vocab_size },
      tokenizer: { dir: 'the tiny tokenizer', vocabSize: TINY_VOCAB_SIZE },
    };
  }
  if (!existsSync(spec)) {
    if (isHubId(spec)) return undefined;
    throw new Error(`model.base ${spec}: no such directory; use tiny, a model directory, or a hub id such as facebook/opt-125m`);
  }
  const limits = modelLimits(spec);
  const hasTokenizer = ['tokenizer.json', 'vocab.json'].some((f) => existsSync(join(spec, f)));
  return { limits, tokenizer: hasTokenizer ? { dir: spec, vocabSize: loadTokenizer(spec).vocabSize } : undefined };
}

/** `--seed S` must be one of the config's seeds (checked before the run directory is created or locked). */
export function checkSeeds(cfg: RunConfig, seeds: readonly number[] | undefined): void {
  for (const s of seeds ?? []) if (!cfg.seeds.includes(s)) throw new Error(`--seed ${s} is not among the config's seeds [${cfg.seeds}]; pass one of them, or add it with --set seeds=[${[...cfg.seeds, s]}]`);
}

/** A `select.model` that names a model directory must exist before the first generation is trained. */
function checkVerifierModels(cfg: RunConfig): void {
  const sections = cfg.settings ? cfg.settings.map((s, i) => ({ sel: s.select, key: `settings.${i}.select.model` })) : [{ sel: cfg.select, key: 'select.model' }];
  for (const { sel, key } of sections) {
    if (sel?.verifier !== 'model' || sel.model === 'generation-0' || sel.model === 'base') continue;
    if (!existsSync(sel.model!)) throw new Error(`${key} ${sel.model}: no such model directory; use generation-0, base, or a model directory`);
  }
}

export function preflightRun(cfg: RunConfig, seeds?: readonly number[]): void {
  checkSeeds(cfg, seeds);
  checkVerifierModels(cfg);
  checkThreads('threads', cfg.threads);
  checkWritable(RunLayout.rootOf(cfg.runsDir, cfg.name), 'runsDir');
  const base = baseLimits(cfg);
  if (!base) return;
  const g = cfg.generate;
  checkModelFits(base.limits, [{ flag: 'data.blockSize', path: `(run ${cfg.name})`, blockSize: cfg.data.blockSize }], g.newTokens);
  if (base.tokenizer) checkTokenizerFits(base.tokenizer, base.limits);
}
