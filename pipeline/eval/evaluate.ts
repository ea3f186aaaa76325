// Evaluation of one corpus under one model (`collapse eval`), and of one generation of the loop
// (evaluateGeneration: the generation's data scored by the generation-0 model as in the paper's histograms,
// plus the generation's own model on the real test blocks).
import { EVAL_DEFAULTS } from './options.js';
import type { Provider } from '../../models/session.js';
import { storedPpl, type CorpusEval, type GenerationMetrics, type SelectionMetrics, type Truth } from './metrics-schema.js';
import type { Blocks } from '../../datasets/block-set.js';
import { perplexityOf, type BlockScores } from './perplexity.js';
import { pairedShift, quantiles, tailMass, tailReference, trueLoglik, type ScoredContinuations, type TailReference } from './tail.js';
import { textMetrics } from './text-metrics.js';

/** A corpus in memory: its token blocks, and (optionally) decoded texts and prompt ids, row-aligned. */
export interface EvalCorpus {
  blocks: Blocks;
  /** Where it came from (for the record). */
  path?: string;
  texts?: string[];
  /** The original block each row continues (generated corpora). */
  promptBlockIds?: ArrayLike<number>;
  /** Text of an original block, for the examples. */
  promptText?: (blockId: number) => string | null;
}

export interface ScoringOptions {
  provider?: Provider;
  threads?: number;
  batchSize?: number;
  cacheDir?: string;
}

export interface CorpusEvalOptions extends ScoringOptions {
  /** Thresholds for tail mass (from realReference), or null to skip it. */
  reference?: TailReference | null;
  /** Exact log-probability of a text under the true (synthetic) source. */
  trueLogProb?: (text: string) => number;
  selfBleuSamples?: number;
  /** Seed of the self-BLEU subsample. */
  seed?: number;
  label?: string;
}

/** Rows of a Blocks as separate sequences without their trailing padding (views, no copy). */
export function blockRows(b: Blocks): Int32Array[] {
  return Array.from({ length: b.rows }, (_, r) => b.ids.subarray(r * b.blockSize, r * b.blockSize + Math.min(b.blockSize, b.lengths?.[r] ?? b.blockSize)));
}

export function summarise(modelPath: string, corpus: EvalCorpus, scores: BlockScores, opts: CorpusEvalOptions): CorpusEval {
  const selfBleuSamples = Math.min(opts.selfBleuSamples ?? EVAL_DEFAULTS.selfBleuSamples, corpus.blocks.rows);
  const text = textMetrics(blockRows(corpus.blocks), { selfBleuSamples, seed: opts.seed ?? EVAL_DEFAULTS.seed });
  const ref = opts.reference ?? null;
  return {
    model: modelPath,
    corpus: corpus.path ?? null,
    samples: corpus.blocks.rows,
    unscored_samples: scores.unscored,
    block_size: corpus.blocks.blockSize,
    perplexity: scores.perplexity,
    mean_nll: scores.meanNll,
    per_sample_ppl_mean: scores.samplePpl.reduce((a, b) => a + b, 0) / Math.max(1, scores.samplePpl.length),
    per_sample_ppl_quantiles: quantiles(scores.samplePpl),
    ...text,
    self_bleu_samples: text.self_bleu === null ? 0 : selfBleuSamples,
    tail_reference: ref,
    tail_mass: ref ? tailMass(scores.samplePpl, ref) : null,
    true_loglik: opts.trueLogProb && corpus.texts ? trueLoglik(corpus.texts, opts.trueLogProb) : null,
  };
}

/** `collapse eval`: per-sample perplexity and every corpus measure of one corpus under one model. */
export async function evaluateCorpus(
  modelPath: string,
  corpus: EvalCorpus,
  opts: CorpusEvalOptions = {},
): Promise<{ result: CorpusEval; samplePpl: Float64Array; scoredRows: Int32Array }> {
  const scores = await perplexityOf(modelPath, corpus.blocks, { ...opts, label: opts.label ?? 'eval' });
  return { result: summarise(modelPath, corpus, scores, opts), samplePpl: scores.samplePpl, scoredRows: scores.scoredRows };
}

/** A corpus's continuations with their per-sample perplexities (of `scoredRows`), as `pairedShift` pairs them. */
export function scoredContinuations(corpus: EvalCorpus, ppl: ArrayLike<number>, scoredRows: ArrayLike<number>): ScoredContinuations {
  return { promptIds: corpus.promptBlockIds ?? [], ids: corpus.blocks.ids, blockSize: corpus.blocks.blockSize, ppl, scoredRows };
}

/** Tail-mass thresholds: the real data's per-sample perplexity percentiles under the generation-0 model. */
export async function realReference(scorer: string, real: Blocks, opts: ScoringOptions = {}): Promise<TailReference> {
  const s = await perplexityOf(scorer, real, { ...opts, label: 'reference' });
  return tailReference(s.samplePpl);
}

/** Share of `values` strictly above `threshold`. */
export function shareAbove(values: ArrayLike<number>, threshold: number): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i]! > threshold) n++;
  return values.length ? n / values.length : 0;
}

/** Up to `count` examples: the rows with the smallest prompt ids, so every generation shows the same prompts. */
export function pickExamples(corpus: EvalCorpus, count: number): GenerationMetrics['examples'] {
  const { texts, promptBlockIds } = corpus;
  if (!texts || !promptBlockIds || count <= 0) return [];
  const rows = Array.from({ length: Math.min(texts.length, promptBlockIds.length) }, (_, r) => r);
  rows.sort((a, b) => promptBlockIds[a]! - promptBlockIds[b]! || a - b);
  return rows.slice(0, count).map((r) => ({
    prompt_block_id: promptBlockIds[r]!,
    prompt: corpus.promptText?.(promptBlockIds[r]!) ?? null,
    continuation: texts[r]!,
  }));
}

export interface EvaluateGenerationInput extends CorpusEvalOptions {
  generation: number;
  seed: number;
  /** The generation's own model (perplexity on the real test blocks). */
  model: string;
  /** The generation-0 model: scores this generation's data (the paper's histograms). */
  scorer: string;
  /** The data this generation's model produced. */
  corpus: EvalCorpus;
  /** Real test blocks. */
  test: Blocks;
  validLoss?: number | null;
  /** Examples kept in metrics.json for the report (default 3). */
  examples?: number;
  /** The loop's setting name (default `replace`). */
  setting?: string;
  /** Generation 0: the base model's real test perplexity before fine-tuning. */
  baseTestPerplexity?: number | null;
  /** Generation 0's data p99 (same setting and seed); null or absent on generation 0 itself uses its own. */
  gen0P99?: number | null;
  /** Later generations: generation 0's data (same setting and seed) with their scores, for the paired shift. */
  gen0Data?: ScoredContinuations | null;
  truth?: Truth | null;
  /** A curated setting's verifier record. */
  selection?: SelectionMetrics | null;
}

/**
 * Everything the report needs about one generation. The loop writes the result with
 * writeGenerationEval(genDir, metrics, samplePpl) (metrics-schema.ts).
 */
export async function evaluateGeneration(input: EvaluateGenerationInput): Promise<{ metrics: GenerationMetrics; samplePpl: Float64Array }> {
  const t0 = Date.now();
  const tag = `seed ${input.seed} gen ${input.generation}`;
  const data = await evaluateCorpus(input.scorer, input.corpus, { ...input, label: `score data (${tag})` });
  const test = await perplexityOf(input.model, input.test, { ...input, label: `test perplexity (${tag})` });
  const p99 = input.gen0P99 ?? (input.generation === 0 ? (data.result.per_sample_ppl_quantiles.p99 ?? null) : null);
  // Perplexities rounded as generation 0's were stored, so that equal values compare equal.
  const paired = input.gen0Data ? pairedShift(input.gen0Data, scoredContinuations(input.corpus, data.samplePpl.map(storedPpl), data.scoredRows)) : null;
  const metrics: GenerationMetrics = {
    schema_version: 2,
    setting: input.setting ?? 'replace',
    generation: input.generation,
    seed: input.seed,
    base_test_perplexity: input.baseTestPerplexity ?? null,
    tail_mass_vs_gen0: p99 === null ? null : { above_p99: shareAbove(data.samplePpl, p99) },
    paired_vs_gen0: paired,
    truth: input.truth ?? null,
    ...(input.selection ? { selection: input.selection } : {}),
    ...data.result,
    test_model: input.model,
    test_perplexity: test.perplexity,
    test_nll: test.meanNll,
    test_blocks: input.test.rows,
    valid_loss: input.validLoss ?? null,
    examples: pickExamples(input.corpus, input.examples ?? 3),
    seconds: (Date.now() - t0) / 1000,
    evaluated_at: new Date().toISOString(),
  };
  return { metrics, samplePpl: data.samplePpl };
}
