// Named experiment presets. `tiny` is the embedded default (`npx collapse run`): a tiny OPT on the
// synthetic source, small enough to finish on 2 cores in minutes. The paper presets follow the paper's
// code (Shumailov et al. 2024): OPT-125m on wikitext-2-raw-v1, 64-token blocks, 5-way beam search with 64
// new tokens, lr 2e-5, batch 128, generations 0..9, seeds 0..4.
import type { RunConfigInput } from './config.js';

// The paper's text uses a repetition penalty of 2.0; its released code passes 3.0. We follow the code.
const PAPER_REPETITION_PENALTY = 3.0;

const paper: RunConfigInput = {
  seeds: [0, 1, 2, 3, 4],
  generations: 10,
  model: { base: 'facebook/opt-125m', initFrom: 'base' },
  data: { source: 'wikitext-2-raw-v1', blockSize: 64, grouping: 'batched' },
  train: { epochs: 5, batchSize: 128, microBatchSize: 8, lr: 2e-5, optimizer: 'adamw', schedule: 'linear', clipNorm: 1 },
  generate: { method: 'beam', numBeams: 5, newTokens: 64, minNewTokens: 64, repetitionPenalty: 1, batchSize: 16 },
  mix: { mode: 'replace' },
};

export const PRESETS: Record<string, { description: string; config: RunConfigInput }> = {
  tiny: {
    description:
      'a miniature of the paper\'s figure 1: a tiny OPT pretrained on the synthetic source, fine-tuned on its task; settings replace and keep-original (10% of the original blocks kept, 3 epochs against 2), seeds 0 and 1, generations 0..9',
    config: {
      name: 'tiny',
      seeds: [0, 1],
      generations: 10,
      model: { base: 'tiny', initSeed: 0, initFrom: 'base', pretrainEpochs: 5, pretrainLr: 3e-3 },
      data: { source: 'synthetic', blockSize: 32, synthetic: { trainRows: 160, validRows: 60, testRows: 100, pretrainRows: 3000, seed: 1234 } },
      train: { epochs: 2, batchSize: 16, microBatchSize: 16, lr: 4e-4, optimizer: 'adamw', schedule: 'linear', clipNorm: 1 },
      // The paper's code decodes with 5 beams and repetition_penalty 3.0; see the README for this preset's choice.
      generate: { method: 'beam', numBeams: 5, newTokens: 32, minNewTokens: 32, repetitionPenalty: 1.5, noRepeatNgramSize: 3, batchSize: 64 },
      mix: { mode: 'replace' },
      settings: [
        { name: 'replace', mix: { mode: 'replace', originalFraction: 0.1 } },
        // The paper's second setting: 10% of the original blocks kept each generation, trained longer (paper: 10 epochs against 5).
        { name: 'keep-original', mix: { mode: 'keep-original', originalFraction: 0.1 }, epochs: 3 },
      ],
      eval: { histogramGenerations: [0, 1, 2, 3, 5, 9], selfBleuSamples: 50 },
    },
  },
  'paper-5ep': { description: 'the paper: OPT-125m, 5 epochs, no original data kept', config: { ...paper, name: 'paper-5ep' } },
  'paper-10ep-10pct': {
    description: 'the paper: OPT-125m, 10 epochs, 10% of original blocks kept each generation',
    config: { ...paper, name: 'paper-10ep-10pct', train: { ...paper.train, epochs: 10 }, mix: { mode: 'keep-original', originalFraction: 0.1 } },
  },
  'paper-5ep-rp': {
    description: 'paper-5ep with repetition penalty 3.0 (the paper code)',
    config: { ...paper, name: 'paper-5ep-rp', generate: { ...paper.generate, repetitionPenalty: PAPER_REPETITION_PENALTY } },
  },
  'paper-10ep-10pct-rp': {
    description: 'paper-10ep-10pct with repetition penalty 3.0 (the paper code)',
    config: {
      ...paper,
      name: 'paper-10ep-10pct-rp',
      train: { ...paper.train, epochs: 10 },
      mix: { mode: 'keep-original', originalFraction: 0.1 },
      generate: { ...paper.generate, repetitionPenalty: PAPER_REPETITION_PENALTY },
    },
  },
};

export function presetConfig(name: string): RunConfigInput {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}"; choose one of: ${Object.keys(PRESETS).join(', ')}`);
  return p.config;
}
