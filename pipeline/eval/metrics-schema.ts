// The files evaluation writes, as zod schemas: every key the report reads is declared and checked here.
//   a generation's metrics.json     GenerationMetrics (one generation of one seed)
//   a generation's sample_ppl.json  SamplePpl (per-sample perplexities, for the histograms)
//   `collapse eval --out FILE`      CorpusEval (one model on one corpus)
// Where the first two live is the run layout's to say (pipeline/run/layout.ts): these functions take their paths.
// Perplexities use natural-log NLL; all shares are in [0, 1]; rep-n is in percent (0..100).
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeJsonAtomic } from '../../util/atomic.js';

const int = z.number().int().min(0);
const share = z.number().min(0).max(1);

export const TailReferenceSchema = z.object({ p10: z.number(), p90: z.number(), p99: z.number() }).strict();
export const TailMassSchema = z.object({ above_p90: share, above_p99: share, below_p10: share }).strict();
export const TrueLoglikSchema = z
  .object({ per_word: z.number().nullable(), per_sentence: z.number().nullable(), sentences: int, impossible_share: share })
  .strict();
export const ExampleSchema = z
  .object({
    /** The original block whose text prompted the continuation (the same across generations). */
    prompt_block_id: z.number().int(),
    prompt: z.string().nullable(),
    continuation: z.string(),
  })
  .strict();

/** One model on one corpus. */
export const CorpusEvalSchema = z
  .object({
    model: z.string(),
    corpus: z.string().nullable(),
    samples: int,
    /** Rows with fewer than 2 real tokens (padding stripped): not in the perplexity distribution. */
    unscored_samples: int,
    block_size: int,
    /** exp(mean NLL over all predictions of all samples). */
    perplexity: z.number(),
    mean_nll: z.number(),
    per_sample_ppl_mean: z.number(),
    /** Keys p01, p05, p10, p25, p50, p75, p90, p95, p99. */
    per_sample_ppl_quantiles: z.record(z.string(), z.number()),
    rep2: z.number(),
    rep3: z.number(),
    rep4: z.number(),
    distinct1: z.number(),
    distinct2: z.number(),
    distinct3: z.number(),
    /** Mean sentence BLEU-4 of a seeded sample against the rest of it; null with fewer than two samples. */
    self_bleu: z.number().nullable(),
    self_bleu_samples: int,
    tail_reference: TailReferenceSchema.nullable(),
    tail_mass: TailMassSchema.nullable(),
    true_loglik: TrueLoglikSchema.nullable(),
  })
  .strict();
export type CorpusEval = z.infer<typeof CorpusEvalSchema>;

/**
 * Beyond the paper, when the source's probabilities are known (the synthetic source): the generated data
 * against the TRUE distribution. `per_token` is the exact mean log-probability (nats) of each continuation
 * token given its prompt and the tokens before it, the topic marginalised (datasets/synthetic.ts);
 * `real_per_token` the same for the real continuations of the same prompts. `tail_seen` is the share of
 * the true probability mass of the rare words (true probability below `tail_q`; together 20% of the mass)
 * that occur in the data; `real_tail_seen` the same for the real continuations (an equal sample of the truth).
 */
export const TruthSchema = z
  .object({
    per_token: z.number().nullable(),
    real_per_token: z.number().nullable(),
    tokens: int,
    impossible_share: share,
    tail_q: z.number(),
    tail_seen: share,
    real_tail_seen: share,
  })
  .strict();
export type Truth = z.infer<typeof TruthSchema>;

/**
 * A curated setting's selection (pipeline/run/select.ts): the verifier, k candidates per prompt, the share of
 * worst prompts dropped and refilled; against the truth (synthetic source, else null) Spearman's `rho` between
 * the verifier's and the true scores over all candidates and `p_star`, the share of prompts where the verifier
 * keeps the truth's best candidate; the mean true log-likelihood (nats per continuation) of the kept rows and
 * of all candidates.
 */
export const SelectionMetricsSchema = z
  .object({
    verifier: z.enum(['truth', 'model', 'random']),
    candidates: int,
    drop_worst: share,
    rho: z.number().nullable(),
    p_star: share.nullable(),
    truth_kept: z.number().nullable(),
    truth_all: z.number().nullable(),
  })
  .strict();
export type SelectionMetrics = z.infer<typeof SelectionMetricsSchema>;

/** One generation of one seed: its data scored by the generation-0 model, and its model on real test data. */
export const GenerationMetricsSchema = CorpusEvalSchema.extend({
  schema_version: z.literal(2),
  /** The experiment setting (the paper's figure 1 panels: `replace`, `keep-original`). */
  setting: z.string(),
  generation: int,
  seed: int,
  /** Generation 0 only: the base model's real test perplexity before any fine-tuning (the paper's zero-shot 115). */
  base_test_perplexity: z.number().nullable(),
  /** Share of this generation's samples above the 99th percentile of generation 0's data (same setting and seed). */
  tail_mass_vs_gen0: z.object({ above_p99: share }).strict().nullable(),
  /** Later generations: this generation's data against generation 0's, prompt by prompt (tail.ts pairedShift; absent in older records). */
  paired_vs_gen0: z
    .object({ prompts: int, unchanged: share, more_probable: share, less_probable: share, median_log_ratio: z.number() })
    .strict()
    .nullable()
    .optional(),
  truth: TruthSchema.nullable(),
  /** Curated settings only (absent in older records). */
  selection: SelectionMetricsSchema.nullable().optional(),
  /** The generation's own model and its perplexity on the real test blocks (the paper's figure 1a). */
  test_model: z.string(),
  test_perplexity: z.number(),
  test_nll: z.number(),
  test_blocks: int,
  /** Best real validation loss of the generation's fine-tuning, when the loop knows it. */
  valid_loss: z.number().nullable(),
  examples: z.array(ExampleSchema),
  seconds: z.number(),
  evaluated_at: z.string(),
}).strict();
export type GenerationMetrics = z.infer<typeof GenerationMetricsSchema>;

export const SamplePplSchema = z
  .object({ generation: int, seed: int, scorer: z.string(), ppl: z.array(z.number()) })
  .strict();
export type SamplePpl = z.infer<typeof SamplePplSchema>;

function parseFile<T>(schema: z.ZodType<T>, path: string): T {
  if (!existsSync(path)) throw new Error(`${path} is missing`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); rerun the evaluate step`);
  }
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new Error(`${path} does not match the metrics schema:\n${lines.join('\n')}\nrerun the evaluate step (collapse run) to rewrite it`);
}

export const readGenerationMetrics = (path: string): GenerationMetrics => parseFile(GenerationMetricsSchema, path);
export const readSamplePpl = (path: string): SamplePpl => parseFile(SamplePplSchema, path);

/** Where a generation's evaluation goes (RunLayout's metrics(at) and samplePpl(at) in a run). */
export interface GenerationEvalFiles {
  metrics: string;
  samplePpl: string;
}

/** A per-sample perplexity as sample_ppl.json keeps it (7 significant digits). */
export const storedPpl = (v: number): number => Number(v.toPrecision(7));

/** Writes metrics.json and sample_ppl.json of a generation (each atomically; metrics last, as the marker of both). */
export function writeGenerationEval(files: GenerationEvalFiles, metrics: GenerationMetrics, samplePpl: ArrayLike<number>): void {
  const m = GenerationMetricsSchema.parse(metrics);
  writeJsonAtomic(files.samplePpl, {
    generation: m.generation,
    seed: m.seed,
    scorer: m.model,
    ppl: Array.from(samplePpl, storedPpl),
  } satisfies SamplePpl);
  writeJsonAtomic(files.metrics, m);
}
