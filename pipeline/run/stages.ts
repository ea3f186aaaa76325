// The steps of the generational loop, on top of datasets/ (sources, blocks, corpus store), models/ (model
// directories), pipeline/train, pipeline/generate and pipeline/eval. Each reads its inputs from the run
// directory and writes its outputs atomically; the loop (loop.ts) leaves the markers.
import { existsSync, rmSync } from 'node:fs';
import { readJsonFile } from '../../models/util/json.js';
import { join, resolve } from 'node:path';
import { concatCorpora, fixedFraction, readBlocks, readCorpus, subsampleIndices, writeCorpus, type CorpusRow } from '../../datasets/corpus.js';
import { buildBlocks, groupingOptions } from '../../datasets/blocks.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { loadTokenizer, tinyTokenizerFiles, type Tokenizer } from '../../datasets/tokenizer.js';
import { loadSourceRows } from '../../datasets/prepare.js';
import { hubSnapshot, isHubId } from '../../models/hub.js';
import { GRAPH_FILES, importHfCheckpoint, openModelDir, writeModelDir } from '../../models/model-dir.js';
import { initOptWeights, TINY_CONFIG } from '../../models/opt/index.js';
import { writeFileAtomic } from '../../models/util/atomic.js';
import { blockTexts, loadEvalCorpus } from '../eval/corpus-input.js';
import { evaluateGeneration, realReference, type EvalCorpus } from '../eval/evaluate.js';
import type { TailReference } from '../eval/tail.js';
import { writeGenerationEval } from '../eval/metrics-schema.js';
import { generateCorpus, generationComplete } from '../generate/run.js';
import { buildReport } from '../report/report.js';
import { finetune } from '../train.js';
import type { RunConfig } from './config.js';
import { describeEstimate, estimateRun } from './estimate.js';
import type { Stages } from './loop.js';
import { readMarker, RunLayout } from './layout.js';

type Info = Record<string, unknown>;
const SPLITS = ['train', 'valid', 'test'] as const;

/** Where generation `gen`'s training corpus lives (generation 0 trains on the original blocks). */
export function trainCorpusPath(layout: RunLayout, seed: number, gen: number): string {
  return gen === 0 ? layout.split('train') : layout.trainCorpus(seed, gen);
}

/** The model generation `gen` starts from. */
function startModel(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): string {
  return cfg.model.initFrom === 'previous' && gen > 0 ? layout.model(seed, gen - 1) : baseModelDir(cfg, layout);
}

const initDir = (layout: RunLayout): string => join(layout.root, 'base', 'init');

/** The untrained starting point: a tiny OPT from a seeded init, an imported HF checkpoint, or a model dir. */
async function baseModel(cfg: RunConfig, layout: RunLayout): Promise<Info> {
  const target = cfg.model.pretrainEpochs > 0 ? initDir(layout) : layout.baseModel;
  const spec = cfg.model.base;
  if (spec === 'tiny') {
    writeModelDir(target, { config: TINY_CONFIG, weights: initOptWeights(TINY_CONFIG, cfg.model.initSeed), tokenizerFiles: tinyTokenizerFiles() });
    return { base: 'tiny', initSeed: cfg.model.initSeed, dir: target };
  }
  let dir = spec;
  if (isHubId(spec)) dir = await hubSnapshot(spec);
  else if (!existsSync(spec)) {
    throw new Error(`model.base ${spec}: no such directory; use tiny, a model directory, or a hub id such as facebook/opt-125m`);
  }
  // A directory with an ONNX graph is used as it is (any family); a bare checkpoint is imported (OPT).
  if (GRAPH_FILES.some((f) => existsSync(join(dir, f)))) {
    const md = openModelDir(dir); // validates config, graphs and tokenizer before the first stage
    if (cfg.model.pretrainEpochs === 0) return { base: spec, dir: resolve(dir), family: md.config.family, modelType: md.config.modelType };
  }
  importHfCheckpoint(dir, target);
  return { base: spec, imported: dir, dir: target };
}

/** The model every generation fine-tunes: the base itself, or (tiny) the base pretrained on real data. */
export function baseModelDir(cfg: RunConfig, layout: RunLayout): string {
  const m = readMarker(layout.marker(join(layout.root, 'base'), 'base-model'));
  if (cfg.model.pretrainEpochs === 0 && m && typeof m.dir === 'string') return m.dir;
  return layout.baseModel;
}

async function sourceRows(cfg: RunConfig, split: (typeof SPLITS)[number]): Promise<{ rows: string[]; provenance: Info }> {
  const d = cfg.data;
  const n = { train: d.synthetic.trainRows, valid: d.synthetic.validRows, test: d.synthetic.testRows }[split];
  const src = await loadSourceRows(d.source === 'synthetic' ? 'synthetic' : (d.path ?? d.source), {
    split: split === 'valid' ? 'validation' : split,
    variant: d.source === 'synthetic' ? undefined : d.source,
    synthetic: { rows: n, seed: d.synthetic.seed },
  });
  return { rows: src.rows, provenance: src.source };
}

async function prepareData(cfg: RunConfig, layout: RunLayout): Promise<Info> {
  const md = openModelDir(cfg.model.pretrainEpochs > 0 ? initDir(layout) : baseModelDir(cfg, layout));
  const tok = loadTokenizer(md.tokenizerDir);
  const counts: Info = {};
  for (const split of SPLITS) {
    const out = layout.split(split);
    if (existsSync(join(out, 'manifest.json'))) {
      counts[split] = { rows: readCorpus(out).rows, reused: true };
      continue;
    }
    const { rows, provenance } = await sourceRows(cfg, split);
    const blocks = buildBlocks(tok, rows, groupingOptions(cfg.data.blockSize, cfg.data.grouping));
    const cap = split === 'train' ? cfg.data.maxTrainBlocks : cfg.data.maxEvalBlocks;
    const n = cap > 0 ? Math.min(cap, blocks.counts.blocks) : blocks.counts.blocks;
    if (n === 0) throw new Error(`data.${split}: ${rows.length} rows give no ${cfg.data.blockSize}-token block; use more rows or a smaller data.blockSize`);
    writeCorpus(out, blockRows(tok, blocks.ids, n, cfg.data.blockSize), {
      blockSize: cfg.data.blockSize,
      provenance: { ...provenance, tokenizer: md.tokenizerDir, counts: blocks.counts, kept: n },
    });
    counts[split] = { ...blocks.counts, kept: n };
  }
  return { counts };
}

function* blockRows(tok: Tokenizer, ids: Int32Array, n: number, size: number): Generator<CorpusRow> {
  for (let b = 0; b < n; b++) {
    const input_ids = ids.subarray(b * size, (b + 1) * size);
    yield { block_id: b, input_ids, text: tok.decode(input_ids), origin: 'original', generation: 0, prompt_block_id: null, score: null };
  }
}

export function trainOptions(cfg: RunConfig) {
  const t = cfg.train;
  return {
    batchSize: t.batchSize,
    microBatchSize: t.microBatchSize,
    optimizer: t.optimizer,
    weightDecay: t.weightDecay,
    decayExclude: t.decayExclude,
    schedule: t.schedule,
    warmupSteps: t.warmupSteps,
    minLr: t.minLr,
    maxGradNorm: t.clipNorm > 0 ? t.clipNorm : null,
    dropout: t.dropout,
    attentionDropout: t.attentionDropout,
    threads: cfg.threads || undefined,
    provider: cfg.provider,
  };
}

/** Tiny preset: teach the randomly initialised base the real source first (OPT-125m arrives pretrained). */
async function pretrain(cfg: RunConfig, layout: RunLayout): Promise<Info> {
  const r = await finetune({
    ...trainOptions(cfg),
    model: initDir(layout),
    train: layout.split('train'),
    valid: layout.split('valid'),
    out: layout.baseModel,
    epochs: cfg.model.pretrainEpochs,
    lr: cfg.model.pretrainLr,
    seed: cfg.model.initSeed,
  });
  return { bestEpoch: r.bestEpoch, validLosses: r.validLosses };
}

/** p_{i+1} from the last generation's data, the previous training corpus and the original blocks. */
async function trainCorpus(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Info> {
  if (gen === 0) return { path: layout.split('train'), mode: 'original' };
  const out = layout.trainCorpus(seed, gen);
  const original = layout.split('train');
  const generated = layout.corpus(seed, gen - 1);
  const n = readCorpus(original).rows;
  const key = seed * 100_003 + gen; // a different subsample each generation, the same on every rerun
  const m = cfg.mix;
  const prov = { generation: gen, seed, mix: m };
  rmSync(out, { recursive: true, force: true }); // what an interrupted earlier attempt left
  switch (m.mode) {
    case 'replace':
      concatCorpora([generated], out, { provenance: prov });
      break;
    case 'keep-original': {
      // The same seeded subset of original blocks every generation; every other block is replaced by the
      // continuation generated from it, so the size stays that of the original corpus.
      const origIds = readBlocks(original).blockIds;
      const keepRows = fixedFraction(origIds, m.originalFraction, seed);
      const kept = new Set(Array.from(keepRows, (r) => origIds[r]!));
      const prompts = Array.from(readCorpus(generated).rowsIter(), (r) => r.prompt_block_id);
      const replaced = Int32Array.from(prompts.keys()).filter((i) => !kept.has(prompts[i] ?? -1));
      concatCorpora([original, generated], out, { provenance: prov, select: (src) => (src === 0 ? keepRows : replaced) });
      break;
    }
    case 'accumulate':
    case 'accumulate-subsample': {
      const sources = [original, ...Array.from({ length: gen }, (_, g) => layout.corpus(seed, g))];
      const sizes = sources.map((s) => readCorpus(s).rows);
      const total = sizes.reduce((a, b) => a + b, 0);
      if (m.mode === 'accumulate') concatCorpora(sources, out, { provenance: prov });
      else {
        const pick = subsampleIndices(total, n, key);
        const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
        concatCorpora(sources, out, {
          provenance: prov,
          select: (src, rows) => pick.filter((p) => p >= offsets[src]! && p < offsets[src]! + rows).map((p) => p - offsets[src]!),
        });
      }
      break;
    }
    case 'proportions': {
      const p = m.proportions!;
      const previous = trainCorpusPath(layout, seed, gen - 1);
      const parts = [
        { path: generated, share: p.generated },
        { path: previous, share: p.previous },
        { path: original, share: p.original },
      ].filter((x) => x.share > 0);
      const want = parts.map((x) => Math.round(x.share * n));
      want[want.length - 1] = n - want.slice(0, -1).reduce((a, b) => a + b, 0);
      concatCorpora(parts.map((x) => x.path), out, {
        provenance: prov,
        select: (src, rows) => subsampleIndices(rows, Math.min(rows, want[src]!), key * 7 + src),
      });
      break;
    }
  }
  return { path: out, mode: m.mode, rows: readCorpus(out).rows };
}

async function finetuneStage(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Info> {
  const r = await finetune({
    ...trainOptions(cfg),
    model: startModel(cfg, layout, seed, gen),
    train: trainCorpusPath(layout, seed, gen),
    valid: layout.split('valid'),
    out: layout.model(seed, gen),
    epochs: cfg.train.epochs,
    lr: cfg.train.lr,
    seed: seed * 1000 + gen,
  });
  writeFileAtomic(join(layout.genDir(seed, gen), 'train-log.json'), JSON.stringify(r, null, 2));
  const best = r.validLosses[r.bestEpoch] ?? null;
  return { bestEpoch: r.bestEpoch, validLosses: r.validLosses, trainLosses: r.trainLosses, validLoss: best, steps: r.steps };
}

async function generateStage(cfg: RunConfig, layout: RunLayout, seed: number, gen: number, shard: { index: number; count: number }): Promise<void> {
  const g = cfg.generate;
  await generateCorpus({
    model: layout.model(seed, gen),
    prompts: layout.split('train'),
    out: layout.corpus(seed, gen),
    strategy: g.method,
    numBeams: g.numBeams,
    newTokens: g.newTokens,
    minNewTokens: g.minNewTokens ?? g.newTokens,
    repetitionPenalty: g.repetitionPenalty,
    noRepeatNgramSize: g.noRepeatNgramSize,
    temperature: g.temperature,
    topK: g.topK,
    topP: g.topP,
    seed: seed * 1000 + gen,
    batchSize: g.batchSize,
    chunkSize: g.chunkSize,
    threads: cfg.threads || undefined,
    provider: cfg.provider,
    shardIndex: shard.index,
    numShards: shard.count,
    generation: gen,
  });
}

async function evaluateStage(cfg: RunConfig, layout: RunLayout, seed: number, gen: number): Promise<Info> {
  const scorer = layout.model(seed, 0);
  const padId = openModelDir(scorer).generation.padId;
  // Rows that ended early (min_new_tokens < new_tokens) are scored on their real tokens only.
  const corpus: EvalCorpus = { ...loadEvalCorpus(layout.corpus(seed, gen), { padId }), promptText: blockTexts(layout.split('train')) };
  const test = readBlocks(layout.split('test'));
  const testBlocks = { ids: test.ids, rows: test.rows, blockSize: test.blockSize };
  const scoring = { threads: cfg.threads || undefined, provider: cfg.provider };
  // The real data's percentiles under the generation-0 model are the same for every generation of a seed.
  const refPath = join(layout.seedDir(seed), 'tail-reference.json');
  let reference: TailReference;
  if (existsSync(refPath)) reference = readJson<TailReference>(refPath);
  else {
    reference = await realReference(scorer, testBlocks, scoring);
    writeFileAtomic(refPath, JSON.stringify(reference, null, 2));
  }
  const source = cfg.data.source === 'synthetic' ? new SyntheticSource() : null;
  const ft = readMarker(layout.marker(layout.genDir(seed, gen), 'finetune'));
  const { metrics, samplePpl } = await evaluateGeneration({
    ...scoring,
    generation: gen,
    seed,
    model: layout.model(seed, gen),
    scorer,
    corpus,
    test: testBlocks,
    validLoss: typeof ft?.validLoss === 'number' ? ft.validLoss : null,
    reference,
    trueLogProb: source ? (t: string) => source.logProb(t) : undefined,
    selfBleuSamples: cfg.eval.selfBleuSamples,
  });
  writeGenerationEval(layout.genDir(seed, gen), metrics, samplePpl);
  return { test_perplexity: metrics.test_perplexity };
}

export function makeStages(): Stages {
  return {
    baseModel,
    prepareData,
    pretrain,
    trainCorpus,
    finetune: finetuneStage,
    generate: generateStage,
    generationComplete: async (_cfg, layout, seed, gen) => generationComplete(layout.corpus(seed, gen)),
    evaluate: evaluateStage,
    estimate: async (cfg, layout, o) => describeEstimate(await estimateRun(cfg, layout, baseModelDir(cfg, layout), o)),
    report: async (cfg, layout) => (await buildReport(layout.root, { histogramGenerations: cfg.eval.histogramGenerations })).html,
  };
}

export function readJson<T>(path: string): T {
  return readJsonFile<T>(path);
}
