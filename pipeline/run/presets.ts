// Named experiment presets. `tiny` is the embedded default (`npx collapse run`): a tiny OPT on the
// synthetic source, small enough to finish on 2 cores in minutes. The paper presets follow the paper's text
// (Shumailov et al. 2024: OPT-125m on WikiText-2, 64-token blocks, 5-way beam search with 64 new tokens, lr 2e-5,
// batch 128, 5 or 10 epochs, generations 0..9) and, where the text is silent, its released code
// (Zakahler/curse_recurse main.py and dataset.py, iliaishacked/curse_recurse plt_model.py): PAPER_SOURCES says
// which, key by key, and `collapse run --print-config` prints it beside each value.
import { Document, isMap, isScalar, visit, type Pair } from 'yaml';
import type { RunConfig, RunConfigInput } from './config.js';

// The paper's text uses a repetition penalty of 2.0; its released code passes 3.0. We follow the code.
const PAPER_REPETITION_PENALTY = 3.0;

const paper: RunConfigInput = {
  seeds: [0, 1, 2, 3, 4],
  generations: 10,
  model: { base: 'facebook/opt-125m', initFrom: 'base' },
  data: { source: 'wikitext-2-raw-v1', blockSize: 64, grouping: 'batched-4' },
  train: {
    epochs: 5, batchSize: 128, microBatchSize: 8, lr: 2e-5, optimizer: 'adamw', weightDecay: 0.01, decayExclude: 'none',
    schedule: 'cosine-epoch', minLr: 1e-6, warmupSteps: 0, clipNorm: 0, dropout: 0.1, attentionDropout: 0,
  },
  generate: { method: 'beam', numBeams: 5, newTokens: 64, minNewTokens: 64, repetitionPenalty: 1, batchSize: 16 },
  mix: { mode: 'replace' },
};

export const PRESETS: Record<string, { description: string; config: RunConfigInput }> = {
  tiny: {
    description:
      'a miniature of the paper\'s figure 1: a tiny OPT pretrained on the synthetic source, fine-tuned on its task; settings replace and keep-original (a fresh 10% of the original blocks each generation, 16 epochs against 8), seeds 0, 1 and 2, generations 0..9',
    config: {
      name: 'tiny',
      seeds: [0, 1, 2],
      generations: 10,
      model: { base: 'tiny', initSeed: 0, initFrom: 'base', pretrainEpochs: 5, pretrainLr: 3e-3 },
      data: { source: 'synthetic', blockSize: 32, synthetic: { trainRows: 160, validRows: 60, testRows: 100, pretrainRows: 3000, seed: 1234 } },
      train: { epochs: 8, batchSize: 16, microBatchSize: 16, lr: 3e-4, optimizer: 'adamw', schedule: 'linear', clipNorm: 1 },
      // Decoding as the paper's code: 5 beams and repetition_penalty 3.0; the no-repeat 4-gram rule is ours
      // (without it the tiny models loop on a 507-word language). The README says what each does here.
      generate: { method: 'beam', numBeams: 5, newTokens: 32, minNewTokens: 32, repetitionPenalty: 3, noRepeatNgramSize: 4, batchSize: 64 },
      mix: { mode: 'replace' },
      settings: [
        { name: 'replace', mix: { mode: 'replace', originalFraction: 0.1 } },
        // The paper's second setting: a fresh random 10% of the original blocks each generation, trained longer (paper: 10 epochs against 5).
        { name: 'keep-original', mix: { mode: 'keep-original', originalFraction: 0.1 }, epochs: 16 },
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

/**
 * The follow-up papers' workflows side by side on the tiny preset's source, base, training and decoding (taken
 * from PRESETS.tiny, so a retuned miniature carries over): replace (Shumailov), accumulate (Gerstgrasser),
 * accumulate-subsample (Kazdan), and curation of k = numBeams beam candidates per prompt by the truth, by the
 * generation-0 model and at random (Feng). Six generations, not ten, to stay within 20 minutes on 2 cores.
 */
function workflowsPreset(tiny: RunConfigInput): { description: string; config: RunConfigInput } {
  const k = tiny.generate?.numBeams ?? 5;
  const curated = (name: string, select: Record<string, unknown>) => ({ name, mix: { mode: 'replace' as const }, select: { candidates: k, ...select } });
  return {
    description:
      `the tiny miniature's source, base, training and decoding under six workflows: replace, accumulate, accumulate-subsample, and the ${k} beam candidates of each prompt curated by the truth, by the generation-0 model and at random; the tiny preset's seeds, generations 0..5`,
    config: {
      ...tiny,
      name: 'tiny-workflows',
      generations: 6,
      mix: { mode: 'replace' },
      settings: [
        { name: 'replace', mix: { mode: 'replace' } },
        { name: 'accumulate', mix: { mode: 'accumulate' } },
        { name: 'accumulate-subsample', mix: { mode: 'accumulate-subsample' } },
        curated('curated-truth', { verifier: 'truth' }),
        curated('curated-model', { verifier: 'model', model: 'generation-0' }),
        curated('curated-random', { verifier: 'random' }),
      ] as RunConfigInput['settings'],
      eval: { ...tiny.eval, histogramGenerations: [0, 1, 3, 5] },
    },
  };
}
PRESETS['tiny-workflows'] = workflowsPreset(PRESETS.tiny!.config);

export function presetConfig(name: string): RunConfigInput {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}"; choose one of: ${Object.keys(PRESETS).join(', ')}`);
  return p.config;
}

export type PaperSource = 'paper text' | 'paper code' | 'our choice';

/** Where each paper-relevant setting of the paper presets comes from (the README has the same table). */
export const PAPER_SOURCES: Record<string, { source: PaperSource; note: string }> = {
  generations: { source: 'paper text', note: 'generations 0..9' },
  seeds: { source: 'our choice', note: 'five seeds; the code takes one --seed per run (default 0)' },
  'model.base': { source: 'paper text', note: 'OPT-125m' },
  'model.initFrom': { source: 'paper code', note: 'every generation fine-tunes the pretrained model (main.py --pretrained; no --load)' },
  'data.source': { source: 'paper code', note: 'the text says WikiText-2; dataset.py loads wikitext-2-raw-v1' },
  'data.blockSize': { source: 'paper text', note: '64-token blocks' },
  'data.grouping': { source: 'paper code', note: 'group_texts with num_proc=4: 4 contiguous row shards, each batched by 1000 rows' },
  'train.epochs': { source: 'paper text', note: '5 epochs (10 in the 10%-original runs)' },
  'train.batchSize': { source: 'paper text', note: '128 blocks' },
  'train.microBatchSize': { source: 'our choice', note: 'memory only: gradients are accumulated to the full batch of 128' },
  'train.lr': { source: 'paper text', note: '2e-5' },
  'train.optimizer': { source: 'paper code', note: 'torch.optim.AdamW (plt_model.py)' },
  'train.weightDecay': { source: 'paper code', note: "torch.optim.AdamW's default 0.01" },
  'train.decayExclude': { source: 'paper code', note: 'AdamW(self.parameters()): biases and LayerNorm weights decay too' },
  'train.schedule': { source: 'paper code', note: 'CosineAnnealingLR(T_max=epochs) stepped once per epoch (Lightning default)' },
  'train.minLr': { source: 'paper code', note: 'eta_min=1e-6' },
  'train.warmupSteps': { source: 'paper code', note: 'no warmup' },
  'train.clipNorm': { source: 'paper code', note: "no clipping (Lightning's gradient_clip_val unset)" },
  'train.dropout': { source: 'paper code', note: "OPT-125m's dropout 0.1, active in Lightning's train mode" },
  'train.attentionDropout': { source: 'paper code', note: "OPT-125m's attention_dropout 0" },
  'generate.method': { source: 'paper text', note: 'beam search' },
  'generate.numBeams': { source: 'paper text', note: '5 beams' },
  'generate.newTokens': { source: 'paper text', note: '64 new tokens' },
  'generate.minNewTokens': { source: 'paper code', note: 'min_new_tokens=64: exactly 64' },
  'generate.repetitionPenalty': { source: 'paper text', note: 'none in the main runs; 2.0 in the text\'s ablation; 3.0 in the code (the -rp presets)' },
  'generate.batchSize': { source: 'our choice', note: 'throughput only' },
  'mix.mode': { source: 'paper text', note: 'replace: no original data; keep-original: 10% of the original data kept' },
  'mix.originalFraction': { source: 'paper text', note: '10% in the keep-original runs' },
  'mix.originalSample': { source: 'paper text', note: '"with every new generation of training, a random 10% of the original data points is sampled"' },
};

/** Sources that depend on the value (the -rp presets follow the code's repetition penalty). */
const SOURCE_BY_VALUE: Record<string, Record<string, { source: PaperSource; note: string }>> = {
  'generate.repetitionPenalty': { '3': { source: 'paper code', note: "repetition_penalty=3.0 in main.py's generate (the text: 2.0 in its ablation, none in the main runs)" } },
};

/** True when the configuration derives from a paper preset (so its keys are marked with their sources). */
export const isPaperPreset = (name: string | undefined): boolean => !!name && name.startsWith('paper');

/**
 * The resolved configuration as YAML (usable as a config file). With `sources`, each paper-relevant key carries a
 * comment with its source, and a key whose value differs from the paper preset's says so.
 */
export function formatConfig(cfg: RunConfig, sources?: { preset: RunConfig }): string {
  const doc = new Document(cfg);
  if (sources) {
    const at = (o: unknown, path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
    visit(doc, { Seq: (_k, n) => void (n.flow = true) }); // one line per list, so its comment sits beside it
    for (const [key, entry] of Object.entries(PAPER_SOURCES)) {
      const path = key.split('.');
      const { source, note } = SOURCE_BY_VALUE[key]?.[String(at(cfg, path))] ?? entry;
      const parent = path.length > 1 ? doc.getIn(path.slice(0, -1)) : doc.contents;
      if (!isMap(parent)) continue;
      const pair = parent.items.find((p: Pair) => isScalar(p.key) && p.key.value === path.at(-1));
      if (!pair) continue;
      const same = JSON.stringify(at(cfg, path)) === JSON.stringify(at(sources.preset, path));
      const node = pair.value as { comment?: string | null } | null;
      if (node) node.comment = same ? ` ${source}: ${note}` : ` differs from the paper preset (${JSON.stringify(at(sources.preset, path))}, ${source})`;
    }
  }
  return doc.toString({ lineWidth: 0 });
}
