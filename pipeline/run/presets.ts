// Named experiment presets. `tiny` is the embedded default (`npx collapse run`): a tiny OPT on the
// synthetic source, small enough to finish on 2 cores in minutes. The paper presets follow the paper's text
// (Shumailov et al. 2024: OPT-125m on WikiText-2, 64-token blocks, 5-way beam search with 64 new tokens, lr 2e-5,
// batch 128, 5 or 10 epochs, generations 0..9) and, where the text is silent, its released code
// (Zakahler/curse_recurse main.py and dataset.py, iliaishacked/curse_recurse plt_model.py): PAPER_SOURCES says
// which, key by key, and `collapse run --print-config` prints it beside each value.
import { Document, isMap, isScalar, visit, type Pair } from 'yaml';
import type { OptionDecl, PaperNote } from '../../util/options.js';
import { RUN_CONFIG_OPTIONS, validateConfig, type RunConfig, type RunConfigInput } from './config.js';

// The paper's text uses a repetition penalty of 2.0; its released code passes 3.0. We follow the code.
const PAPER_REPETITION_PENALTY = 3.0;

const paper: RunConfigInput = {
  seeds: [0, 1, 2, 3, 4],
  generations: 10,
  model: { base: 'facebook/opt-125m', initFrom: 'base' },
  data: { source: 'wikitext-2-raw-v1', blockSize: 64, grouping: 'batched-4' },
  train: {
    epochs: 5, batchSize: 128, microBatchSize: 8, lr: 2e-5, optimizer: 'adamw', weightDecay: 0.01, decayExclude: 'none',
    schedule: 'cosine-epoch', minLr: 1e-6, warmupSteps: 0, maxGradNorm: 0, dropout: 0.1, attentionDropout: 0,
  },
  generate: { strategy: 'beam', numBeams: 5, newTokens: 64, minNewTokens: 64, repetitionPenalty: 1, batchSize: 16 },
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
      train: { epochs: 8, batchSize: 16, microBatchSize: 16, lr: 3e-4, optimizer: 'adamw', schedule: 'linear', maxGradNorm: 1 },
      // Decoding as the paper's code: 5 beams and repetition_penalty 3.0; the no-repeat 4-gram rule is ours
      // (without it the tiny models loop on a 507-word language). The README says what each does here.
      generate: { strategy: 'beam', numBeams: 5, newTokens: 32, minNewTokens: 32, repetitionPenalty: 3, noRepeatNgramSize: 4, batchSize: 64 },
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

/**
 * The tiny miniature with a task whose gain over the base is mostly a "house style" (issue 23's search): the
 * task's function words are fixed where pretraining draws them uniformly (what beam search reproduces intact
 * and collapse does not undo), a near-deterministic grammar, entities that nearly always recur, and 4 epochs
 * (8 with the original 10%). It reaches more of the paper's ratios than the default (C1, C2, C4, C5, C7), but
 * its rise is too steep (C3), its language loops and its continuations are shaped by the no-repeat rule, and its
 * later generations' data are not more probable under generation 0 (the paper's histogram shift, C6). The README says what it
 * measured; it is the starting point for the next try, not the default.
 */
/** tiny-format's source: the house style on a near-deterministic grammar with recurring entities. */
const FORMAT_SOURCE = {
  classSizes: [100, 80, 120, 90, 70, 47], seed: 21, grammarPeak: 4.5, sentencesPerRow: 12,
  functionZipf: 12, pretrainFunctionZipf: 0, domainShift: 0, pretrainTopicWeights: [0.4, 0.22, 0.14, 0.1, 0.08, 0.06],
  topicStrength: 3.5, recurClass: 2, recurRate: 0.99, recurMemory: 12,
};
PRESETS['tiny-format'] = {
  description:
    "the tiny miniature on a task whose gain is mostly a fixed house style (fixed function words, near-deterministic grammar, recurring entities); 4 epochs (8 with 10% original data), lr 5e-4, repetition penalty 1.2; closer to the paper's ratios, but its text loops (README, issue 23)",
  config: {
    ...PRESETS.tiny!.config,
    name: 'tiny-format',
    data: {
      ...PRESETS.tiny!.config.data,
      synthetic: {
        ...PRESETS.tiny!.config.data!.synthetic,
        trainRows: 80,
        source: FORMAT_SOURCE,
      },
    },
    train: { ...PRESETS.tiny!.config.train, epochs: 4, lr: 5e-4 },
    generate: { ...PRESETS.tiny!.config.generate, repetitionPenalty: 1.2 },
    settings: [
      { name: 'replace', mix: { mode: 'replace' } },
      { name: 'keep-original', mix: { mode: 'keep-original', originalFraction: 0.1 }, epochs: 8 },
    ],
  },
};

type SourceInput = NonNullable<NonNullable<NonNullable<RunConfigInput['data']>['synthetic']>['source']>;
/** A preset's data section with another synthetic source (its rows and seed kept). */
const dataWithSource = (cfg: RunConfigInput, source: SourceInput): RunConfigInput['data'] => ({ ...cfg.data, synthetic: { ...cfg.data!.synthetic, source } });

/**
 * `tiny-format`'s task and training on a language that recites: content words mostly follow a seeded cycle
 * (`successorRate`), every sentence has four of them (`sentenceWords`) and a fixed word order (`grammarPeak: 8`).
 * Its likeliest continuations run on through the cycle instead of looping, and beam search reproduces its
 * structure. It meets every criterion of issue 23 but the histogram shift (C6) on three seeds (README).
 */
const format = PRESETS['tiny-format']!.config;
PRESETS['tiny-recite'] = {
  description:
    "tiny-format's house style, training and decoding on a language whose content words recite a seeded cycle, four to a sentence, in a fixed word order; closest to the paper's ratios, without its histogram shift (README, issue 23)",
  config: {
    ...format,
    name: 'tiny-recite',
    data: dataWithSource(format, { ...FORMAT_SOURCE, grammarPeak: 8, recurClass: -1, successorRate: 0.95, sentenceWords: 4 }),
  },
};

/**
 * `tiny-recite`'s task with free sentence lengths (a "." after any content word with probability 0.15),
 * `successorRate: 0.8`, and jumps that land on their class's most frequent word (`zipf: 3`, no topic words),
 * on a 128-wide model decoded without a repetition penalty or the no-repeat rule. Generation 0's beam
 * sometimes takes a jump; the later models recite straight on, so their data are more probable under
 * generation 0: the paper's histogram shift (C6), on three seeds. But the beam never writes a ".", so the
 * next model never sees a sentence end (C2 fails), and the data freeze after generation 1 (README, issue 23).
 */
const recite = PRESETS['tiny-recite']!.config;
PRESETS['tiny-sharpen'] = {
  description:
    "tiny-recite's house style on free sentence lengths with jumps to each class's most frequent word, 128 wide, no repetition penalty or no-repeat rule: the paper's histogram shift, but a one-step loss (the beam never ends a sentence) and data that freeze after generation 1 (README, issue 23)",
  config: {
    ...recite,
    name: 'tiny-sharpen',
    model: { ...recite.model, tinyWidth: 128 },
    data: dataWithSource(recite, { ...recite.data!.synthetic!.source, sentenceWords: 0, successorRate: 0.8, topicStrength: 0, zipf: 3 }),
    generate: { ...recite.generate, repetitionPenalty: 1, noRepeatNgramSize: 0 },
  },
};

export function presetConfig(name: string): RunConfigInput {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}"; choose one of: ${Object.keys(PRESETS).join(', ')}`);
  return p.config;
}

/** Each paper-relevant key of the run config (dotted) with where the paper presets' value comes from (from its declaration). */
export const PAPER_SOURCES: Record<string, NonNullable<OptionDecl['paper']>> = Object.fromEntries(
  Object.entries(RUN_CONFIG_OPTIONS).flatMap(([sec, settings]) =>
    Object.entries(settings).flatMap(([k, d]) => (d.paper ? [[sec ? `${sec}.${k}` : k, d.paper] as const] : [])),
  ),
);

/** The source of a key's value (a value the code uses where the text differs has its own source). */
const sourceOf = (key: string, value: unknown): PaperNote => {
  const p = PAPER_SOURCES[key]!;
  return p.byValue?.[String(value)] ?? p;
};

const valueAt = (o: unknown, key: string): unknown =>
  key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

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
    for (const key of Object.keys(PAPER_SOURCES)) {
      const path = key.split('.');
      const { source, note } = sourceOf(key, at(cfg, path));
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

/** A value as the README's table writes it. */
function shownValue(v: unknown): string {
  if (typeof v === 'string') return `\`${v}\``;
  if (typeof v === 'number') return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential().replace('e-', 'e-') : String(v);
  if (Array.isArray(v)) return v.map(shownValue).join(', ');
  return `\`${JSON.stringify(v)}\``;
}

/**
 * The README's table of paper settings (between its `paper-settings` markers; test/run/paper-table.test.ts
 * checks it): each paper-relevant key, its value in paper-5ep (and where another paper preset differs), its
 * source and note, all read from the settings' declarations and the presets.
 */
export function paperSettingsTable(): string {
  const names = Object.keys(PRESETS).filter(isPaperPreset);
  const resolved = new Map(names.map((n) => [n, validateConfig(PRESETS[n]!.config, `preset ${n}`)]));
  const main = resolved.get('paper-5ep')!;
  const rows = Object.entries(PAPER_SOURCES).map(([key]) => {
    const v = valueAt(main, key);
    const others = new Map<string, string[]>();
    for (const [n, c] of resolved) {
      const w = valueAt(c, key);
      if (JSON.stringify(w) !== JSON.stringify(v)) others.set(shownValue(w), [...(others.get(shownValue(w)) ?? []), `\`${n}\``]);
    }
    const alt = [...others].map(([w, ns]) => `${w} in ${ns.join(', ')}`).join('; ');
    const { source, note } = sourceOf(key, v);
    return `| \`${key}\` | ${shownValue(v)}${alt ? ` (${alt})` : ''} | ${source} | ${note.replace(/\|/g, '\\|')} |`;
  });
  return ['| key | `paper-5ep` | source | note |', '|---|---|---|---|', ...rows].join('\n');
}
