// The run's batch sizes against its corpora and the machine's memory (pipeline/batch-fits.ts), told in the
// config's keys (train.batchSize, not a flag the user never gave), before each training compute of a run:
// the estimate, pretraining and every fine-tuning.
import { readManifest } from '../../datasets/corpus-store.js';
import { TINY_CONFIG } from '../../datasets/tokenizer.js';
import { OptionError } from '../../util/options.js';
import { checkDecodeBatch, checkTrainBatch } from '../batch-fits.js';
import { modelLimits } from '../preflight.js';
import type { RunConfig } from './config.js';

/** Runs `check`, turning an option error into the config's keys of `section`. */
function inSection(section: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof OptionError) throw new Error(e.describe((k) => `${section}.${k}`));
    throw e;
  }
}

/** `corpus`: the blocks the step trains on; `model`: the model directory it starts from (for its vocabulary). */
export function checkRunBatches(cfg: RunConfig, corpus: string, model: string): void {
  const m = readManifest(corpus);
  const rows = m.rows ?? 0;
  const vocab = modelLimits(model).vocabSize ?? (cfg.model.base === 'tiny' ? TINY_CONFIG.vocab_size : undefined);
  inSection('train', () => checkTrainBatch(cfg.train, { rows, blockSize: m.blockSize, path: corpus }, vocab));
  const g = cfg.generate;
  inSection('generate', () => checkDecodeBatch({ batchSize: Math.min(g.batchSize, rows), numBeams: g.strategy === 'beam' ? g.numBeams : 1 }, vocab));
}
