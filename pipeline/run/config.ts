// The experiment configuration: one zod schema made of declared options (util/options.ts), so that every key a
// user can write is declared, typed, defaulted and documented in one visible place (nanoGPT style). The `train`
// and `generate` sections are the training and decoding options themselves (pipeline/train/options.ts,
// pipeline/generate/options.ts) under the same names; the run's own sections are declared here. YAML or JSON
// files and CLI overrides are validated against it; errors name the key.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BLOCK_OPTIONS } from '../../datasets/blocks.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { TINY_HEADS, TINY_SHAPE } from '../../models/opt/config.js';
import { SESSION_OPTIONS } from '../../models/session-options.js';
import { EVAL_OPTIONS } from '../eval/options.js';
import { GENERATE_OPTIONS, MAX_NUM_BEAMS, withCandidateRules } from '../generate/options.js';
import { TRAIN_OPTIONS, withTrainRules } from '../train/options.js';
import { fieldsOf, option, pickOptions, runOptionsOf, type OptionDecls } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);
const fraction = z.number().min(0, 'must be in [0, 1]').max(1, 'must be in [0, 1]');
const section = <T extends OptionDecls>(s: T) => z.object(fieldsOf(s)).strict();

const weights = z.array(z.number().min(0)).min(1);
/**
 * The synthetic source's structure (the default source when absent). The vocabulary size is fixed: the tiny
 * tokenizer is built for it.
 */
const SyntheticStructureSchema = z
  .object({
    classSizes: z.array(int(1)).min(2),
    functionClasses: int(),
    grammarPeak: z.number().min(0),
    pEnd: z.number().gt(0).max(1),
    zipf: z.number().min(0),
    functionZipf: z.number().min(0),
    pretrainFunctionZipf: z.number().min(0),
    noise: z.number().min(0),
    sentencesPerRow: int(1),
    topics: int(1),
    topicWordsPerClass: int(),
    topicStrength: z.number(),
    recurClass: z.number().int().min(-1),
    recurRate: fraction,
    recurMemory: int(1),
    successorRate: fraction,
    sentenceWords: int(),
    domainShift: z.number().min(0),
    taskTopicWeights: weights,
    pretrainTopicWeights: weights,
    seed: int(),
  })
  .partial()
  .strict();

/** data.synthetic: the synthetic source's rows per split and its sampling seed (fixed across experiment seeds). */
const syntheticOptions = {
  trainRows: option(int(1).default(2000), 'Rows of the train split'),
  validRows: option(int(1).default(300), 'Rows of the validation split'),
  testRows: option(int(1).default(300), 'Rows of the test split'),
  pretrainRows: option(int().default(0), "Rows of the source's broader pretraining mixture that teach a tiny base the language first (0: pretrain on the task's train split)"),
  seed: option(int().default(1234), 'Sampling seed of the rows (fixed across experiment seeds)'),
  pretrainTaskShare: option(fraction.optional(), "This share of the pretraining rows is drawn from the task's own domain (a broad corpus holds some of it)"),
  source: option(SyntheticStructureSchema.optional(), "The source's own structure (datasets/synthetic.ts SyntheticConfig), where it differs from the default"),
};
const SyntheticSchema = section(syntheticOptions);

const dataOptions = {
  source: option(z.enum(['synthetic', 'wikitext-2-raw-v1', 'wikitext-2-v1']).default('synthetic'), '`synthetic` (the embedded default), or a WikiText-2 variant', {
    paper: { source: 'paper code', note: 'the text says WikiText-2; dataset.py loads wikitext-2-raw-v1' },
  }),
  path: option(z.string().optional(), 'Directory with wiki.{train,valid,test}.{raw,tokens} or the HF parquet files (WikiText only)'),
  ...pickOptions(BLOCK_OPTIONS, ['blockSize']),
  grouping: option(
    z.enum(['batched', 'batched-4', 'global']).default('batched'),
    "run_clm's group_texts in batches of 1000 rows (`batched`: one process), as the paper's code runs it (`batched-4`: datasets.map num_proc=4, the rows first split into 4 contiguous shards), or one global concatenation",
    { paper: { source: 'paper code', note: 'group_texts with num_proc=4: the rows split into 4 contiguous shards (the first n % 4 one row longer), each batched by 1000 rows, each batch dropping its own remainder' } },
  ),
  maxTrainBlocks: option(int().default(0), 'Cap on the number of original training blocks (0 = all)'),
  maxEvalBlocks: option(int().default(0), 'Cap on validation/test blocks used for model selection and test perplexity (0 = all)'),
  synthetic: option(SyntheticSchema.default(SyntheticSchema.parse({})), 'The synthetic source: rows per split, sampling seed, structure'),
};
export const DataSchema = section(dataOptions);

/** The data section at its defaults. */
export const DATA_DEFAULTS = DataSchema.parse({});

const modelOptions = {
  base: option(z.string().default('tiny'), '`tiny` (built from a seeded random init), a model directory, or a hub id (e.g. facebook/opt-125m)', {
    paper: { source: 'paper text', note: 'OPT-125m' },
  }),
  initSeed: option(int().default(0), 'Pretraining seed when base is `tiny`'),
  tinyWidth: option(
    int(TINY_HEADS).default(TINY_SHAPE.width).refine((w) => w % TINY_HEADS === 0, `must be a multiple of ${TINY_HEADS} (the tiny OPT's attention heads)`),
    'Width of the tiny OPT when base is `tiny` (its FFN is 4x as wide)',
  ),
  tinyLayers: option(int(1).default(TINY_SHAPE.layers), 'Decoder layers of the tiny OPT when base is `tiny`'),
  initFrom: option(z.enum(['base', 'previous']).default('base'), 'The paper fine-tunes the base model every generation; `previous` continues from generation k-1', {
    paper: { source: 'paper code', note: 'every generation fine-tunes the pretrained model (main.py --pretrained; no --load)' },
  }),
  pretrainEpochs: option(int().default(0), 'Generation 0 of the tiny preset must first learn the source: epochs of pretraining on real data, in blocks of data.blockSize + generate.newTokens tokens (every position generation uses)'),
  pretrainLr: option(z.number().positive().default(1e-3), 'The learning rate of that pretraining'),
};
export const ModelSchema = section(modelOptions);

/** Fine-tuning: the training settings (pipeline/train/options.ts) but the seed, which each step derives. */
const trainRunOptions = runOptionsOf(TRAIN_OPTIONS);
export const TrainSchema = withTrainRules(section(trainRunOptions), (k) => `train.${k}`);

/** Decoding: the generation settings (pipeline/generate/options.ts) but the seed and shard, which each step sets. */
const generateRunOptions = runOptionsOf(GENERATE_OPTIONS);
export const GenerateSchema = withCandidateRules(section(generateRunOptions), (k) => `generate.${k}`);

const mixOptions = {
  mode: option(
    z.enum(['replace', 'keep-original', 'accumulate', 'accumulate-subsample', 'proportions']).default('replace'),
    'replace: train on the last generation\'s data only; keep-original: a seeded fraction of original blocks (see originalSample) plus generated ones (total unchanged); accumulate: all real plus all generated so far; accumulate-subsample: accumulate, then a seeded subsample back to the original size; proportions: p_{i+1} = a p_theta + b p_i + g p_0 with `proportions` (sizes as in the original corpus)',
    { paper: { source: 'paper text', note: 'replace: no original data; keep-original: 10% of the original data kept' } },
  ),
  originalFraction: option(fraction.default(0.1), 'keep-original: the share of original blocks kept', { paper: { source: 'paper text', note: '10% in the keep-original runs' } }),
  originalSample: option(
    z.enum(['per-generation', 'fixed']).default('per-generation'),
    'keep-original: which original blocks are kept: a fresh seeded subset each generation (`per-generation`), or one subset for every generation of a seed (`fixed`)',
    {
      paper: { source: 'paper text', note: '"with every new generation of training, a random 10% of the original data points is sampled"' },
      // Runs started before this option kept one subset.
      storedAbsent: 'fixed' as const,
    },
  ),
  proportions: option(
    z
      .object({ generated: fraction, previous: fraction, original: fraction })
      .strict()
      .refine((p) => Math.abs(p.generated + p.previous + p.original - 1) < 1e-9, {
        message: 'generated + previous + original must sum to 1',
      })
      .optional(),
    'proportions: the shares {generated, previous, original} of the next training corpus',
  ),
};
export const MixSchema = section(mixOptions).refine((m) => m.mode !== 'proportions' || m.proportions !== undefined, {
  message: 'mode "proportions" needs mix.proportions {generated, previous, original}',
  path: ['proportions'],
});

/**
 * Curation (Feng et al. 2024): generation writes `candidates` continuations per prompt (generate.strategy beam:
 * the best finished beams, at most numBeams; sample: independent seeded draws), a verifier scores each, and
 * per prompt the best-scored candidate (ties: the lower candidate rank) becomes the prompt's continuation, so
 * the corpus keeps one continuation per prompt. Verifiers:
 *   truth   the exact log-likelihood of the continuation given its prompt under the synthetic source (the oracle);
 *   model   the mean token log-likelihood of the continuation given its prompt under `model`;
 *   random  a seeded uniform score (chance, the control).
 * `dropWorst` f: the floor(f n) prompts whose kept candidate scores lowest are dropped, and as many rows are
 * refilled with the highest-scored second choices (each remaining prompt's next-best candidate), so the corpus
 * keeps its n rows; those prompts then appear twice.
 */
const selectOptions = {
  verifier: option(z.enum(['truth', 'model', 'random']), 'What scores the candidates: truth (the synthetic source, exact), model (mean token log-likelihood under `model`) or random (chance)'),
  candidates: option(int(2).max(MAX_NUM_BEAMS), 'Candidates per prompt (k): the best k beams with beam search (at most numBeams), k seeded draws with sampling'),
  model: option(z.string().min(1).optional(), 'Verifier `model` only: generation-0 (the default: the seed\'s generation-0 model), base, or a model directory'),
  dropWorst: option(
    z.number().min(0, 'must be in [0, 0.5]').max(0.5, 'must be in [0, 0.5] (the refill takes one second choice per remaining prompt)').default(0),
    'The share of prompts whose kept candidate scores lowest, dropped and refilled by the best second choices of the others',
  ),
};
export const SelectSchema = section(selectOptions)
  .refine((s) => s.verifier === 'model' || s.model === undefined, {
    message: 'is only read by verifier "model"; remove it or set verifier: model',
    path: ['model'],
  })
  // The keys in one order whether `model` was given or defaulted (run.json is compared key by key on a resume).
  .transform(({ verifier, candidates, model, dropWorst }) => ({ verifier, candidates, ...(verifier === 'model' ? { model: model ?? 'generation-0' } : {}), dropWorst }));
export type Select = z.output<typeof SelectSchema>;

/**
 * One experiment setting of a run (a panel of the paper's figure 1): its mixing of the next generation's
 * data and, optionally, its own number of fine-tuning epochs (the paper trains 10 epochs when keeping 10%
 * of the original data, 5 otherwise). A run without `settings` has one, named after `mix.mode`.
 */
export const SettingSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-" only'),
    mix: MixSchema,
    epochs: int(1).optional(),
    /** Curation of the generated data by a verifier (absent: the one continuation decoded per prompt). */
    select: SelectSchema.optional(),
  })
  .strict();
export type Setting = { name: string; mix: z.infer<typeof MixSchema>; epochs: number; select?: Select };

const evalRunOptions = {
  histogramGenerations: option(z.array(int()).default([0, 1, 2, 3, 5, 9]), 'Generations drawn in the overlaid histograms (the paper: 0, 1, 2, 3, 5, 9)'),
  ...runOptionsOf(EVAL_OPTIONS),
};
export const EvalSchema = section(evalRunOptions);

const topOptions = {
  name: option(
    z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-" only').max(100, 'at most 100 characters (it names the run directory)').default('tiny'),
    'The run\'s name: it lives in runsDir/NAME',
  ),
  runsDir: option(z.string().default('runs'), 'Runs directory; the run lives in runsDir/NAME'),
  seeds: option(z.array(int()).min(1).default([0]), 'Experiment seeds, each its own chain of generations', {
    paper: { source: 'our choice', note: 'five seeds; the code takes one --seed per run (default 0)' },
  }),
  generations: option(int(1).default(4), 'Number of generations: 0 .. generations-1', { paper: { source: 'paper text', note: 'generations 0..9' } }),
  threads: SESSION_OPTIONS.threads,
  estimate: option(z.boolean().default(true), 'Measure a short warm-up before the first generation and print the run\'s expected duration'),
  provider: SESSION_OPTIONS.provider,
};

/**
 * Every setting of a run config by section ('' is the top level): the schema below is made of them, and
 * `--print-config`'s notes and the README's table of paper settings are read from them.
 */
export const RUN_CONFIG_OPTIONS: Record<string, OptionDecls> = {
  '': topOptions,
  data: dataOptions,
  'data.synthetic': syntheticOptions,
  model: modelOptions,
  train: trainRunOptions,
  generate: generateRunOptions,
  mix: mixOptions,
  select: selectOptions,
  eval: evalRunOptions,
};

export const RunConfigSchema = z
  .object({
    ...fieldsOf(topOptions),
    data: DataSchema.default(DataSchema.parse({})),
    model: ModelSchema.default(ModelSchema.parse({})),
    train: TrainSchema.default(TrainSchema.parse({})),
    generate: GenerateSchema.default(GenerateSchema.parse({})),
    mix: MixSchema.default(MixSchema.parse({})),
    /** Several settings side by side (each with its own generations); default: one, from `mix`. */
    settings: z.array(SettingSchema).min(1).optional(),
    /** The curation of a run without `settings` (see SelectSchema). */
    select: SelectSchema.optional(),
    eval: EvalSchema.default(EvalSchema.parse({})),
  })
  .strict()
  .refine((c) => !c.settings || new Set(c.settings.map((s) => s.name)).size === c.settings.length, {
    message: 'settings: every setting needs its own name',
    path: ['settings'],
  })
  .superRefine((c, ctx) => {
    // The source is built here once, so that an impossible structure is named by its key before any compute.
    if (c.data.source !== 'synthetic' || !c.data.synthetic.source) return;
    try {
      new SyntheticSource(c.data.synthetic.source);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['data', 'synthetic', 'source'], message: (e as Error).message });
    }
  })
  .superRefine((c, ctx) => {
    // Each `select` against the decoding and the source, named at its key.
    const sections = c.settings ? c.settings.map((s, i) => ({ sel: s.select, mode: s.mix.mode, path: ['settings', i, 'select'] })) : [{ sel: c.select, mode: c.mix.mode, path: ['select'] }];
    for (const { sel, mode, path } of sections) {
      if (!sel) continue;
      const issue = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: [...path, key], message });
      if (sel.verifier === 'truth' && c.data.source !== 'synthetic')
        issue('verifier', `"truth" needs the synthetic source, whose exact likelihood is known (data.source is ${c.data.source}); use verifier model or random`);
      if (c.generate.strategy === 'greedy') issue('candidates', 'greedy decoding returns one sequence per prompt; set generate.strategy to beam or sample');
      if (c.generate.strategy === 'beam' && sel.candidates > c.generate.numBeams)
        issue('candidates', `must be at most generate.numBeams (${c.generate.numBeams}) with beam search: the best finished beams are the candidates`);
      if (sel.dropWorst > 0 && mode === 'keep-original')
        issue('dropWorst', 'cannot be combined with mix.mode keep-original (it replaces each generated row by its prompt\'s original block); set it to 0');
    }
  })
  .refine((c) => c.generate.newTokens === c.data.blockSize, {
    message: 'generate.newTokens must equal data.blockSize: each continuation becomes one training block of the next generation',
    path: ['generate', 'newTokens'],
  })
  .refine((c) => (c.generate.minNewTokens ?? c.generate.newTokens) <= c.generate.newTokens, {
    message: 'generate.minNewTokens must not exceed generate.newTokens',
    path: ['generate', 'minNewTokens'],
  })
  .refine((c) => c.generate.numReturnSequences === 1, {
    message: 'must be 1 in a run: each prompt\'s one continuation becomes a training block of the next generation (a setting\'s `select.candidates` generates k candidates and keeps one per prompt; `collapse generate --num-return-sequences` writes candidates)',
    path: ['generate', 'numReturnSequences'],
  });

export type RunConfig = z.infer<typeof RunConfigSchema>;
type DeepPartial<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends (infer U)[] ? (U extends object ? DeepPartial<U>[] : T[K]) : T[K] extends object ? DeepPartial<T[K]> : T[K];
};
export type RunConfigInput = DeepPartial<RunConfig>;

/**
 * The block size a tiny base is pretrained on: a prompt and its continuation (data.blockSize +
 * generate.newTokens), so that every position generation writes at has been trained, as OPT-125m's 2048 are.
 * Pretrained on task-sized blocks only, a learned position embedding past them stays at its random init, and
 * the continuations are written by a model that cannot tell where it is (real-text NLL 1.3 inside the block,
 * 4.6 past it, measured on a tiny run).
 */
export const pretrainBlockSize = (cfg: RunConfig): number => cfg.data.blockSize + cfg.generate.newTokens;

/** The run's settings, each with its epochs resolved (`settings`, else one setting from `mix`). */
export function runSettings(cfg: RunConfig): Setting[] {
  if (!cfg.settings) return [{ name: cfg.mix.mode, mix: cfg.mix, epochs: cfg.train.epochs, ...(cfg.select ? { select: cfg.select } : {}) }];
  return cfg.settings.map((s) => ({ name: s.name, mix: s.mix, epochs: s.epochs ?? cfg.train.epochs, ...(s.select ? { select: s.select } : {}) }));
}

/**
 * Keys renamed so that a setting has one name from the command line to the code that uses it. A config that
 * still writes the old name is refused with the new one; a run directory's run.json written before is read
 * under the new names (readStoredConfig).
 */
export const RENAMED_KEYS: Record<string, string> = { 'train.clipNorm': 'train.maxGradNorm', 'generate.method': 'generate.strategy' };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A section of a stored configuration with the options it lacks at the value older runs used (storedAbsent). */
function withStoredAbsent(section: unknown, decls: OptionDecls): unknown {
  if (!isObj(section)) return section;
  const out: Obj = { ...section };
  for (const [k, d] of Object.entries(decls)) if (d.storedAbsent !== undefined && !(k in out)) out[k] = d.storedAbsent;
  return out;
}

/**
 * A stored configuration (run.json) as this version reads it: renamed keys under their new names, and options
 * added since at the value the run used (a keep-original run of an older version kept a fixed subset).
 */
function renameStoredKeys(raw: unknown): unknown {
  if (!isObj(raw)) return raw;
  const out: Obj = { ...raw };
  // Only keep-original reads its mix options beyond the mode: a stored replace run resumes whatever they are.
  const mix = (m: unknown) => (isObj(m) && m.mode === 'keep-original' ? withStoredAbsent(m, mixOptions) : m);
  if ('mix' in out) out.mix = mix(out.mix);
  if (Array.isArray(out.settings)) out.settings = out.settings.map((s: unknown) => (isObj(s) && 'mix' in s ? { ...s, mix: mix(s.mix) } : s));
  for (const [from, to] of Object.entries(RENAMED_KEYS)) {
    const [sec, oldKey] = from.split('.') as [string, string];
    const newKey = to.split('.')[1]!;
    const s = out[sec];
    if (!isObj(s) || !(oldKey in s) || newKey in s) continue;
    const { [oldKey]: v, ...rest } = s;
    out[sec] = { ...rest, [newKey]: v };
  }
  return out;
}

/** The configuration stored in a run directory's run.json (written by this or an earlier version). */
export const readStoredConfig = (raw: unknown, origin: string): RunConfig => validateConfig(renameStoredKeys(raw), origin);

/** The same, or null when it is not a valid configuration (a report still draws what it can). */
export function parseStoredConfig(raw: unknown): RunConfig | null {
  const r = RunConfigSchema.safeParse(renameStoredKeys(raw));
  return r.success ? r.data : null;
}

/** Validates a raw object; the error lists every problem with its key path. */
export function validateConfig(raw: unknown, origin = 'config'): RunConfig {
  const r = RunConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.flatMap((i) => {
    const at = i.path.map(String);
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => {
        const key = [...at, k].join('.');
        const now = RENAMED_KEYS[key];
        return now ? `  ${key}: renamed to ${now} (the same setting; write ${now})` : `  ${key}: unknown key (check its spelling; \`collapse run --print-config\` shows every key)`;
      });
    }
    return [`  ${at.length ? at.join('.') : '(top level)'}: ${i.message}`];
  });
  throw new Error(`invalid ${origin}:\n${lines.join('\n')}`);
}

/** What a path is, for a message (only regular files are read: a FIFO would block the read forever). */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

export function readConfigFile(path: string): unknown {
  // statSync throws ELOOP, ENAMETOOLONG, EACCES... with the path; the CLI's error path puts them in words.
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new Error(`--config ${path}: no such file; give a YAML or JSON file (or use --preset NAME)`);
  if (!st.isFile()) throw new Error(`--config ${path} is ${kindOf(st)}; give a YAML or JSON file`);
  const text = readFileSync(path, 'utf8');
  const json = /\.json$/i.test(path);
  // An empty file would silently run every default: that is never what a user who wrote a file meant.
  if (text.trim() === '') throw new Error(`--config ${path} is empty; write the keys to change (\`collapse run --print-config\` shows them all), or use --preset NAME`);
  let parsed: unknown;
  try {
    parsed = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`config file ${path} is not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error(`--config ${path} holds no keys (only comments or a single value); write the keys to change as a mapping (\`collapse run --print-config\` prints one), or use --preset NAME`);
  return parsed;
}

/** Deep merge: arrays and scalars in `over` replace those in `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/**
 * `--set train.lr=1e-4 --set seeds=[0,1]`: dotted keys with YAML-parsed values, so that every config key
 * can be overridden from the command line without a flag per key.
 */
export function parseOverrides(sets: readonly string[]): Obj {
  const out: Obj = {};
  const seen = new Map<string, string>();
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${s}: expected KEY=VALUE, e.g. --set train.lr=1e-4`);
    const key = s.slice(0, eq);
    if (seen.has(key)) throw new Error(`--set ${key} was given twice (${seen.get(key)} and ${s}); give it once`);
    seen.set(key, s);
    const keys = s.slice(0, eq).split('.');
    const value: unknown = parseYaml(s.slice(eq + 1));
    let node = out;
    keys.slice(0, -1).forEach((k) => {
      if (!isObj(node[k])) node[k] = {};
      node = node[k] as Obj;
    });
    node[keys[keys.length - 1]!] = value;
  }
  return out;
}
