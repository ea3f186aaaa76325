// generateCorpus: one continuation per prompt block of a corpus (or numReturnSequences candidates, each row with
// its candidate_rank, rank 0 the best), written through the corpus store.
// The prompts are cut into fixed chunks (chunkSize prompts, in corpus order); chunk c is written by the
// corpus writer `c<c>` as one shard plus a done marker. So:
//   - a rerun skips chunks whose marker exists, and at most the chunk in flight is redone after a kill;
//   - `shardIndex / numShards` only decides which process does which chunk (c % numShards == shardIndex):
//     the files, their names and their contents do not depend on it, so many processes (Slurm array,
//     Kubernetes indexed job) fill one corpus and the shard set is the corpus;
//   - batches never straddle chunks, so every prompt is decoded in the same batch whoever runs it.
// The process that commits the last chunk finalizes the corpus manifest.
import { readBlocks } from '../../datasets/block-set.js';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { checkWriters, corpusComplete, CorpusWriter, createCorpus, finalizeCorpus, shardManifests, writerDone } from '../../datasets/corpus-store.js';
import { loadTokenizer, type Tokenizer } from '../../datasets/tokenizer.js';
import { generationPlan, modelSha256, openModelDir, type GenerationPlan } from '../../models/model-dir/index.js';
import type { Provider } from '../../models/session.js';
import type { TokenizerIdentity } from '../../models/tokenizer-identity.js';
import { keyChanges } from '../../util/resume-key.js';
import { sha256 } from '../../util/sha256.js';
import { checkModelFits, checkWritable } from '../preflight.js';
import { checkDecodeBatch } from '../batch-fits.js';
import { progress } from '../../util/progress.js';
import { beamSearch, type GenerationResult } from './beam-search.js';
import { openDecoder, type Decoder } from './decoder/index.js';
import { sampleSearch } from './sampling.js';
import { corpusRecord, resolveGenerateOptions, type GenerateOptions, type GenerateOptionsInput } from './options.js';

/** What decoding needs from a model (models/model-dir/plan.ts generationPlan), and a tokenizer for the texts. */
export interface GenerationModel extends GenerationPlan {
  tokenizer?: Tokenizer;
  /** The model's tokenizer fingerprint: prompts of another tokenizer are refused, and the corpus records it. */
  tokenizerIdentity?: TokenizerIdentity;
  /** sha256 of the model's files: a resumed corpus must come from the same model (else `name` is compared). */
  sha256?: string;
}

/** A model directory's generation plan and tokenizer. */
export function openGenerationModel(dir: string, log: (line: string) => void = () => {}): GenerationModel {
  const md = openModelDir(dir);
  const plan = generationPlan(md);
  log(`generate: ${plan.how}`);
  return { ...plan, tokenizer: loadTokenizer(md.tokenizerDir), tokenizerIdentity: md.tokenizer, sha256: modelSha256(dir) };
}

export type Strategy = GenerateOptions['strategy'];

/** What to continue, with which model, and where to write it, with the generation options (defaults: options.ts). */
export interface GenerateCorpusOptions extends GenerateOptionsInput {
  /** A model directory, or a generation model already opened. */
  model: string | GenerationModel;
  /** Corpus whose blocks are the prompts (each whole block is one prompt). */
  prompts: string;
  /** Output corpus directory (created, or resumed when it exists with the same layout). */
  out: string;
  threads?: number;
  provider?: Provider;
  noCache?: boolean;
  /** Called after each decoding step of each batch (tests use it to interrupt a run). */
  onStep?: (info: { chunk: number; batch: number; step: number }) => void;
  log?: (line: string) => void;
}

export interface GenerateCorpusResult {
  chunks: number;
  /** Chunks of this process's share that were already committed. */
  skipped: number;
  /** Prompts decoded by this call. */
  prompts: number;
  seconds: number;
  tokensPerSecond: number;
  /** Whether every chunk of the corpus is committed (and the manifest finalized). */
  complete: boolean;
}

export const chunkWriter = (c: number): string => `c${String(c).padStart(6, '0')}`;

/** Decodes one batch of prompts with the resolved options (keys: each prompt's sampling key, its block id). */
export async function decodeBatch(
  decoder: Decoder,
  prompts: Int32Array[],
  keys: number[],
  o: GenerateOptions,
  model: Pick<GenerationModel, 'eosId' | 'padId'>,
  onStep?: (s: number) => void,
): Promise<GenerationResult> {
  const common = {
    maxNewTokens: o.newTokens,
    minNewTokens: o.minNewTokens,
    repetitionPenalty: o.repetitionPenalty,
    noRepeatNgramSize: o.noRepeatNgramSize,
    eosId: model.eosId,
    padId: model.padId,
    onStep,
  };
  if (o.strategy === 'beam') {
    return beamSearch(decoder, prompts, { ...common, numBeams: o.numBeams, lengthPenalty: o.lengthPenalty, scoreLength: o.scoreLength, numReturnSequences: o.numReturnSequences });
  }
  return sampleSearch(decoder, prompts, {
    ...common,
    doSample: o.strategy === 'sample',
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    seed: o.seed,
    keys,
    numReturnSequences: o.numReturnSequences,
  });
}

export async function generateCorpus(options: GenerateCorpusOptions): Promise<GenerateCorpusResult> {
  const g = resolveGenerateOptions(options);
  const { newTokens, chunkSize, batchSize, shardIndex, numShards } = g;
  const log = options.log ?? (() => {});
  const o = { ...options, model: typeof options.model === 'string' ? openGenerationModel(options.model, log) : options.model };
  checkWritable(o.out, '--out');
  const blocks = readBlocks(o.prompts);
  if (blocks.rows === 0) throw new Error(`--prompts ${o.prompts}: the corpus has no rows`);
  checkModelFits({ model: o.model.name ?? 'the model', positions: o.model.positions, vocabSize: o.model.vocabSize, tokenizer: o.model.tokenizerIdentity }, [
    { flag: '--prompts', path: o.prompts, stored: true, blockSize: blocks.blockSize, ids: blocks.ids },
  ], newTokens);
  checkDecodeBatch({ batchSize: Math.min(batchSize, blocks.rows), numBeams: g.strategy === 'beam' ? g.numBeams : g.numReturnSequences }, o.model.vocabSize);
  const chunks = Math.ceil(blocks.rows / chunkSize);
  const writers = Array.from({ length: chunks }, (_, c) => chunkWriter(c));

  const settings = {
    ...corpusRecord(g),
    // What the rows are made from: a resumed corpus must not mix two models or two prompt sets.
    model: o.model.sha256 ?? o.model.name ?? null,
    prompts: sha256(new Uint8Array(blocks.ids.buffer, blocks.ids.byteOffset, blocks.ids.byteLength)),
  };
  const manifest = createCorpus(o.out, {
    blockSize: newTokens,
    expectedWriters: writers,
    tokenizerFingerprint: o.model.tokenizerIdentity?.fingerprint,
    provenance: { source: o.prompts, model: o.model.name, generation: g.generation, seed: g.seed, config: settings },
  });
  // A resumed corpus must have been started with the same model, prompts and decoding settings. (Corpora
  // started before model/prompts were recorded are checked on the settings they have.)
  const old = (manifest.provenance.config ?? {}) as Record<string, unknown>;
  const now: Record<string, unknown> = { ...settings };
  for (const k of ['model', 'prompts']) if (!(k in old)) delete now[k];
  const changes = keyChanges(old, now);
  if (manifest.expectedWriters.join(',') !== writers.join(',')) changes.unshift(`prompts: ${manifest.expectedWriters.length} chunk(s) -> ${writers.length}`);
  if (changes.length > 0) {
    throw new Error(
      `cannot resume ${o.out}: it holds a generation started with other inputs (${changes.join('; ')}). ` +
        `Rerun with the options it was started with, choose another --out, or delete ${o.out} to start fresh`,
    );
  }

  const mine = writers.map((_, c) => c).filter((c) => c % numShards === shardIndex);
  const onDisk = shardManifests(o.out);
  // A chunk marked done whose shard was deleted or replaced must not count as done (nor be finalized).
  checkWriters(o.out, writers, onDisk);
  const committed = new Set(onDisk.map((s) => s.writer));
  const todo: number[] = [];
  let skipped = 0;
  for (const c of mine) {
    const w = writers[c]!;
    if (writerDone(o.out, w)) skipped++;
    else if (committed.has(w)) {
      // Killed between the shard and its done marker: the shard holds the whole chunk.
      new CorpusWriter(o.out, { writer: w }).close();
      skipped++;
    } else todo.push(c);
  }
  const promptsTodo = todo.reduce((s, c) => s + Math.min(chunkSize, blocks.rows - c * chunkSize), 0);
  log(`generate: ${chunks} chunk(s) of ${chunkSize} prompts; shard ${shardIndex + 1}/${numShards} has ${mine.length}, ${skipped} already committed`);

  const start = performance.now();
  let done = 0;
  let tokens = 0;
  if (todo.length > 0) {
    const decoder = await openDecoder(o.model.graph, { threads: o.threads, provider: o.provider, noCache: o.noCache, kvHints: o.model.kvHints, shortlist: g.strategy === 'beam' });
    const bar = progress('generate', promptsTodo, { unit: 'prompts', logEvery: chunkSize });
    try {
      for (const c of todo) {
        const lo = c * chunkSize;
        const hi = Math.min(blocks.rows, lo + chunkSize);
        const rows: CorpusRow[] = [];
        for (let b = lo, batch = 0; b < hi; b += batchSize, batch++) {
          const n = Math.min(batchSize, hi - b);
          const prompts = Array.from({ length: n }, (_, i) => blocks.ids.subarray((b + i) * blocks.blockSize, (b + i + 1) * blocks.blockSize));
          const keys = Array.from({ length: n }, (_, i) => blocks.blockIds[b + i]!);
          const res = await decodeBatch(decoder, prompts, keys, g, o.model, (step) => {
            tokens += n;
            const s = (performance.now() - start) / 1000;
            bar.update(done, { rate: `${(tokens / s).toFixed(1)} tok/s` });
            o.onStep?.({ chunk: c, batch, step });
          });
          const k = g.numReturnSequences;
          res.tokens.forEach((ids, i) => {
            const blockId = keys[Math.floor(i / k)]!;
            rows.push({
              block_id: blockId,
              input_ids: ids,
              text: o.model.tokenizer?.decode(ids.subarray(0, res.lengths[i]), { skipSpecialTokens: true }) ?? '',
              origin: 'generated',
              generation: g.generation,
              prompt_block_id: blockId,
              score: res.scores[i]!,
              // Only with several candidates: one-candidate shards keep the schema (and bytes) they always had.
              ...(k > 1 ? { candidate_rank: i % k } : {}),
            });
          });
          done += n;
        }
        const w = new CorpusWriter(o.out, { writer: writers[c]!, rowsPerShard: Number.MAX_SAFE_INTEGER });
        for (const r of rows) w.append(r);
        w.close();
      }
    } finally {
      bar.stop();
      await decoder.release();
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const complete = corpusComplete(o.out); // every chunk committed, by any process
  if (complete) finalizeCorpus(o.out);
  return { chunks, skipped, prompts: done, seconds, tokensPerSecond: seconds > 0 ? tokens / seconds : 0, complete };
}
