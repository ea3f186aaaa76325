// What each step of the generational loop does, on top of datasets/ (sources, blocks, corpus store),
// models/ (model directories), pipeline/train, pipeline/generate and pipeline/eval. Each reads its inputs
// from the run directory (through RunLayout) and writes its outputs atomically; it returns a typed result.
// Later steps read earlier steps' OUTPUTS (typed files), never their markers. The order is declared in steps.ts.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../../util/json.js';
import { resolve } from 'node:path';
import { z } from 'zod';
import { corpusComplete, readCorpus } from '../../datasets/corpus-store.js';
import { groupingOptions } from '../../datasets/blocks.js';
import { blockRow, readBlocks, rowOfBlock, type Blocks } from '../../datasets/block-set.js';
import type { SyntheticSource } from '../../datasets/synthetic.js';
import { loadTokenizer, TINY_VOCAB_SIZE, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { prepareCorpus } from '../../datasets/prepare.js';
import { hubSnapshot, isHubId } from '../../models/hub.js';
import { GRAPH_FILES, importHfCheckpoint, openModelDir, writeModelDir } from '../../models/model-dir/index.js';
import { initOptWeights, tinyOptConfig } from '../../models/opt/index.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { blockTexts, loadEvalCorpus } from '../eval/corpus-input.js';
import { evaluateGeneration, realReference, scoredContinuations, type EvalCorpus } from '../eval/evaluate.js';
import { degenerateDataWarnings } from '../eval/guard.js';
import { readGenerationMetrics, readSamplePpl, TailReferenceSchema, writeGenerationEval, type GenerationMetrics } from '../eval/metrics-schema.js';
import { perplexityOf, scoredRowsOf } from '../eval/perplexity.js';
import type { ScoredContinuations, TailReference } from '../eval/tail.js';
import { sourceTokens, tailTable, truthMetrics, type TailTable, type TokenPair } from '../eval/truth.js';
import { generateCorpus } from '../generate/generate-corpus.js';
import { buildReport } from '../report/report.js';
import { finetune } from '../train/finetune.js';
import { pretrainBlockSize, runSettings, type RunConfig, type Setting } from './config.js';
import { describeEstimate, estimateRun } from './estimate.js';
import { checkRunBatches } from './run-batches.js';
import type { GenerationId, RunLayout, Split } from './layout.js';
import { mixTrainCorpus, trainCorpusPath, type MixResult } from './mixing.js';
import { readSelection, runSource, selectCorpus, selectionMetrics } from './select.js';

export interface StepContext {
  cfg: RunConfig;
  layout: RunLayout;
  /** The seeds this process runs (all of the config's, or --seed). */
  seeds: number[];
  shard: { index: number; count: number };
  log: (line: string) => void;
}

// ------------------------------------------------------------------------------------- typed outputs

const BaseInfoSchema = z
  .object({ base: z.string(), dir: z.string(), imported: z.string().optional(), family: z.string().optional(), modelType: z.string().optional() })
  .strict();
export type BaseInfo = z.infer<typeof BaseInfoSchema>;
const ZeroShotSchema = z.object({ model: z.string(), test_perplexity: z.number(), test_blocks: z.number() }).strict();
export type ZeroShot = z.infer<typeof ZeroShotSchema>;
const TrainLogSchema = z.object({ bestEpoch: z.number(), validLosses: z.array(z.number()), trainLosses: z.array(z.number()), steps: z.number() }).passthrough();

function readTyped<T>(schema: z.ZodType<T>, path: string, step: string): T {
  if (!existsSync(path)) throw new Error(`${path} is missing: the ${step} step has not run (rerun \`collapse run\`)`);
  const r = schema.safeParse(readJsonFile(path));
  if (!r.success) throw new Error(`${path} is not what the ${step} step writes (${r.error.issues[0]?.message}); delete it and rerun`);
  return r.data;
}

/** The model every generation fine-tunes: the base itself, or (tiny) the base pretrained on real data. */
export function baseModelDir(cfg: RunConfig, layout: RunLayout): string {
  if (cfg.model.pretrainEpochs > 0) return layout.baseModel;
  return layout.resolvePath(readTyped(BaseInfoSchema, layout.baseInfo, 'base-model').dir);
}

export function settingOf(cfg: RunConfig, name: string): Setting {
  const s = runSettings(cfg).find((x) => x.name === name);
  if (!s) throw new Error(`setting "${name}" is not in the configuration`);
  return s;
}

// ------------------------------------------------------------------------------------- setup steps

/** The untrained starting point: a tiny OPT from a seeded init, an imported HF checkpoint, or a model dir. */
export async function baseModel({ cfg, layout }: StepContext): Promise<BaseInfo> {
  const target = cfg.model.pretrainEpochs > 0 ? layout.initModel : layout.baseModel;
  const spec = cfg.model.base;
  let info: BaseInfo;
  if (spec === 'tiny') {
    const config = tinyOptConfig(TINY_VOCAB_SIZE, { width: cfg.model.tinyWidth, layers: cfg.model.tinyLayers });
    writeModelDir(target, { config, weights: initOptWeights(config, cfg.model.initSeed), tokenizerFiles: tinyTokenizerFiles() });
    info = { base: 'tiny', dir: target };
  } else {
    let dir = spec;
    if (isHubId(spec)) dir = await hubSnapshot(spec);
    else if (!existsSync(spec)) {
      throw new Error(`model.base ${spec}: no such directory; use tiny, a model directory, or a hub id such as facebook/opt-125m`);
    }
    // A directory with an ONNX graph is used as it is (any family); a bare checkpoint is imported (OPT).
    const hasGraph = GRAPH_FILES.some((f) => existsSync(resolve(dir, f)));
    const md = hasGraph ? openModelDir(dir) : null; // validates config, graphs and tokenizer before the first stage
    if (md && cfg.model.pretrainEpochs === 0) info = { base: spec, dir: resolve(dir), family: md.config.family, modelType: md.config.modelType };
    else {
      importHfCheckpoint(dir, target);
      info = { base: spec, imported: dir, dir: target };
    }
  }
  const recorded = { ...info, dir: layout.recordPath(info.dir) };
  writeJsonAtomic(layout.baseInfo, recorded);
  return recorded;
}

/** The tokenizer's directory: the base's (before pretraining, the init's). */
function tokenizerModel(cfg: RunConfig, layout: RunLayout): string {
  return cfg.model.pretrainEpochs > 0 ? layout.initModel : baseModelDir(cfg, layout);
}

/**
 * What a tiny base is pretrained on: the source's own pretraining rows when it has them, else the task's
 * training rows; either way blocked at pretrainBlockSize, in the `pretrain` split.
 */
const pretrainSource = (cfg: RunConfig): 'pretrain' | 'train' => (cfg.data.source === 'synthetic' && cfg.data.synthetic.pretrainRows > 0 ? 'pretrain' : 'train');

export function dataSplits(cfg: RunConfig): Split[] {
  const splits: Split[] = ['train', 'valid', 'test'];
  if (cfg.model.pretrainEpochs > 0) splits.push('pretrain');
  return splits;
}

/** Tokenize and block the original splits into layout.split(...) (what `collapse prepare` does, per split). */
export async function prepareData({ cfg, layout }: StepContext): Promise<Record<string, { rows: number; kept: number }>> {
  const tokenizer = openModelDir(tokenizerModel(cfg, layout)).tokenizerDir;
  const d = cfg.data;
  const counts: Record<string, { rows: number; kept: number }> = {};
  for (const split of dataSplits(cfg)) {
    const out = layout.split(split);
    if (existsSync(resolve(out, 'manifest.json'))) {
      // Written before a crash: the counts an uninterrupted run reports, source rows from the corpus's provenance.
      const c = readCorpus(out);
      const source = (c.manifest.provenance.counts as { rows?: number } | undefined)?.rows;
      counts[split] = { rows: source ?? c.rows, kept: c.rows };
      continue;
    }
    // The pretraining split reads its source's rows: the pretraining domain's, or the task's training rows.
    const from = split === 'pretrain' ? pretrainSource(cfg) : split;
    const r = await prepareCorpus({
      data: d.source === 'synthetic' ? 'synthetic' : (d.path ?? d.source),
      split: from === 'valid' ? 'validation' : from,
      variant: d.source === 'synthetic' ? undefined : d.source,
      synthetic: {
        rows: { train: d.synthetic.trainRows, valid: d.synthetic.validRows, test: d.synthetic.testRows, pretrain: d.synthetic.pretrainRows }[from],
        seed: d.synthetic.seed,
        config: d.synthetic.source,
        pretrainTaskShare: d.synthetic.pretrainTaskShare,
      },
      tokenizer,
      ...groupingOptions(split === 'pretrain' ? pretrainBlockSize(cfg) : d.blockSize, d.grouping),
      maxBlocks: from === 'train' ? d.maxTrainBlocks : from === 'pretrain' ? 0 : d.maxEvalBlocks,
      out,
    });
    counts[split] = { rows: r.counts.rows, kept: r.kept };
  }
  return counts;
}

export async function estimate(ctx: StepContext): Promise<string> {
  const { cfg, layout } = ctx;
  checkRunBatches(cfg, layout.split('train'), tokenizerModel(cfg, layout));
  const line = describeEstimate(await estimateRun(cfg, layout, tokenizerModel(cfg, layout), { seeds: ctx.seeds.length, shards: ctx.shard.count }));
  ctx.log(line);
  return line;
}

/** Where the run's ONNX Runtime sessions run (threads 0: all cores). */
const sessionOf = (cfg: RunConfig) => ({ threads: cfg.threads || undefined, provider: cfg.provider });

/** When model.pretrainEpochs > 0: teach the base the language first (OPT-125m arrives pretrained). */
export async function pretrain({ cfg, layout }: StepContext): Promise<{ trainLosses: number[]; steps: number }> {
  checkRunBatches(cfg, layout.split('pretrain'), layout.initModel);
  const r = await finetune({
    ...cfg.train,
    ...sessionOf(cfg),
    model: layout.initModel,
    train: layout.split('pretrain'),
    // The base learns its own corpus: the last epoch is kept (no model selection on the task's data).
    valid: null,
    out: layout.baseModel,
    checkpointDir: layout.baseCheckpoint,
    epochs: cfg.model.pretrainEpochs,
    lr: cfg.model.pretrainLr,
    seed: cfg.model.initSeed,
  });
  return { trainLosses: r.trainLosses, steps: r.steps };
}


const testBlocks = (layout: RunLayout): Blocks => readBlocks(layout.split('test'));

/** The base model's real test perplexity before any fine-tuning (the paper's zero-shot 115). */
export async function zeroShot({ cfg, layout }: StepContext): Promise<ZeroShot> {
  const model = baseModelDir(cfg, layout);
  const test = testBlocks(layout);
  const r = await perplexityOf(model, test, { ...sessionOf(cfg), label: 'zero-shot test perplexity (base model)' });
  const out: ZeroShot = { model, test_perplexity: r.perplexity, test_blocks: test.rows };
  writeJsonAtomic(layout.zeroShot, out);
  return out;
}

// ------------------------------------------------------------------------------------- generation steps

export async function trainCorpus({ cfg, layout }: StepContext, at: GenerationId): Promise<MixResult> {
  return mixTrainCorpus(layout, settingOf(cfg, at.setting), at);
}

export async function finetuneGeneration({ cfg, layout }: StepContext, at: GenerationId): Promise<{ bestEpoch: number; validLoss: number | null; steps: number }> {
  const setting = settingOf(cfg, at.setting);
  const start = cfg.model.initFrom === 'previous' && at.gen > 0 ? layout.model({ ...at, gen: at.gen - 1 }) : baseModelDir(cfg, layout);
  checkRunBatches(cfg, trainCorpusPath(layout, at), start);
  const r = await finetune({
    ...cfg.train,
    ...sessionOf(cfg),
    model: start,
    train: trainCorpusPath(layout, at),
    valid: layout.split('valid'),
    out: layout.model(at),
    checkpointDir: layout.checkpoint(at),
    epochs: setting.epochs,
    lr: cfg.train.lr,
    seed: at.seed * 1000 + at.gen,
  });
  writeJsonAtomic(layout.trainLog(at), { ...r, outDir: undefined });
  return { bestEpoch: r.bestEpoch, validLoss: r.validLosses[r.bestEpoch] ?? null, steps: r.steps };
}

/** Where the generate step writes: the corpus, or a curated setting's candidates (its select step writes the corpus). */
export function generatedPath(cfg: RunConfig, layout: RunLayout, at: GenerationId): string {
  return settingOf(cfg, at.setting).select ? layout.candidates(at) : layout.corpus(at);
}

/** Generates this rank's shards of the corpus (committed one by one, so an interrupted run resumes). */
export async function generate({ cfg, layout, shard }: StepContext, at: GenerationId): Promise<void> {
  const select = settingOf(cfg, at.setting).select;
  await generateCorpus({
    ...cfg.generate,
    ...sessionOf(cfg),
    model: layout.model(at),
    prompts: layout.split('train'),
    out: generatedPath(cfg, layout, at),
    ...(select ? { numReturnSequences: select.candidates } : {}),
    seed: at.seed * 1000 + at.gen,
    shardIndex: shard.index,
    numShards: shard.count,
    generation: at.gen,
  });
}

export const generateComplete = async ({ cfg, layout }: StepContext, at: GenerationId): Promise<boolean> => corpusComplete(generatedPath(cfg, layout, at));

/** A curated setting: the verifier keeps one candidate per prompt (select.ts). */
export async function select({ cfg, layout }: StepContext, at: GenerationId) {
  const sel = settingOf(cfg, at.setting).select;
  if (!sel) throw new Error(`setting "${at.setting}" has no select section: it has no select step`);
  return selectCorpus({ cfg, layout, at, select: sel, base: () => baseModelDir(cfg, layout) });
}

let truthCache: { source: SyntheticSource; table: TailTable } | null = null;

/** The generation's continuations and the real next blocks of the same prompts, against the true source. */
function truthOf(cfg: RunConfig, layout: RunLayout, at: GenerationId, padId: number) {
  const source = runSource(cfg);
  if (truthCache?.source !== source) truthCache = { source, table: tailTable(source) };
  const tok = loadTokenizer(openModelDir(layout.model(at)).tokenizerDir);
  const toTokens = (ids: ArrayLike<number>) => sourceTokens(tok, ids, padId);
  const original = readBlocks(layout.split('train'));
  const byId = rowOfBlock(original);
  const generated: TokenPair[] = [];
  const real: TokenPair[] = [];
  for (const row of readCorpus(layout.corpus(at)).rowsIter()) {
    const r = byId.get(row.prompt_block_id ?? -1);
    if (r === undefined) continue;
    const prompt = toTokens(blockRow(original, r));
    generated.push({ prompt, continuation: toTokens(row.input_ids) });
    if (r + 1 < original.rows) real.push({ prompt, continuation: toTokens(blockRow(original, r + 1)) });
  }
  return truthMetrics(truthCache.source, truthCache.table, generated, real);
}

/** Generation 0's data and their per-sample perplexities (what a later generation is paired with). */
function gen0Data(layout: RunLayout, gen0: GenerationId, padId: number): ScoredContinuations {
  const c = loadEvalCorpus(layout.corpus(gen0), { padId });
  const ppl = readSamplePpl(layout.samplePpl(gen0)).ppl;
  const scoredRows = scoredRowsOf(c.blocks);
  if (ppl.length !== scoredRows.length)
    throw new Error(`${layout.samplePpl(gen0)}: ${ppl.length} perplexities for the ${scoredRows.length} scorable rows of ${layout.corpus(gen0)}; delete gen-0's evaluate.done.json and rerun`);
  return scoredContinuations(c, ppl, scoredRows);
}

export async function evaluate(ctx: StepContext, at: GenerationId): Promise<{ test_perplexity: number; warnings: string[] }> {
  const { cfg, layout } = ctx;
  const gen0 = { ...at, gen: 0 };
  const scorer = layout.model(gen0);
  const padId = openModelDir(scorer).generation.padId;
  // Rows that ended early (min_new_tokens < new_tokens) are scored on their real tokens only.
  const corpus: EvalCorpus = { ...loadEvalCorpus(layout.corpus(at), { padId }), promptText: blockTexts(layout.split('train')) };
  const test = testBlocks(layout);
  const scoring = sessionOf(cfg);
  // The real data's percentiles under the generation-0 model are the same for every generation of a seed.
  const refPath = layout.tailReference(at.setting, at.seed);
  let reference: TailReference;
  if (existsSync(refPath)) reference = readTyped(TailReferenceSchema, refPath, 'evaluate');
  else {
    reference = await realReference(scorer, test, scoring);
    writeJsonAtomic(refPath, reference);
  }
  const trainLog = readTyped(TrainLogSchema, layout.trainLog(at), 'finetune');
  const { metrics, samplePpl } = await evaluateGeneration({
    ...scoring,
    setting: at.setting,
    generation: at.gen,
    seed: at.seed,
    model: layout.model(at),
    scorer,
    corpus,
    test,
    validLoss: trainLog.validLosses[trainLog.bestEpoch] ?? null,
    reference,
    baseTestPerplexity: at.gen === 0 ? readTyped(ZeroShotSchema, layout.zeroShot, 'zero-shot').test_perplexity : null,
    gen0P99: at.gen === 0 ? null : (readGenerationMetrics(layout.metrics(gen0)).per_sample_ppl_quantiles.p99 ?? null),
    gen0Data: at.gen === 0 ? null : gen0Data(layout, gen0, padId),
    truth: cfg.data.source === 'synthetic' ? truthOf(cfg, layout, at, padId) : null,
    selection: settingOf(cfg, at.setting).select ? selectionMetrics(readSelection(layout.selection(at))) : null,
    selfBleuSamples: cfg.eval.selfBleuSamples,
  });
  writeGenerationEval({ metrics: layout.metrics(at), samplePpl: layout.samplePpl(at) }, metrics, samplePpl);
  // The guard: degenerate data said loudly, once, when its evidence (generations 0 and 1) is in.
  let warnings: string[] = [];
  if (at.gen <= 1) {
    const records: GenerationMetrics[] = [metrics];
    if (at.gen === 1) records.unshift(readGenerationMetrics(layout.metrics(gen0)));
    warnings = degenerateDataWarnings(records).filter((w) => w.generation === at.gen).map((w) => w.message);
    for (const w of warnings) ctx.log(`WARNING: ${w}`);
  }
  return { test_perplexity: metrics.test_perplexity, warnings };
}

// ------------------------------------------------------------------------------------- final step

export async function report({ cfg, layout, log }: StepContext): Promise<string> {
  const r = await buildReport(layout.root, { histogramGenerations: cfg.eval.histogramGenerations, log });
  for (const w of r.warnings) log(`WARNING: ${w}`);
  return r.html;
}
