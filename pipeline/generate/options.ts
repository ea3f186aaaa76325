// The decoding and corpus-writing options of generateCorpus, each declared once (util/options.ts):
// generateCorpus resolves its options through them (errors name the option), the run config's `generate`
// section is made of them, and `collapse generate` takes them as flags of the same names.
import { z } from 'zod';
import { parseOptions } from '../../util/options.js';
import { fieldsOf, recordOf, option } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);

/** A bound on beams (20,000 beams ran on for hours; the paper uses 5, Hugging Face examples at most a few dozen). */
export const MAX_NUM_BEAMS = 64;

export const GENERATE_OPTIONS = {
  strategy: option(z.enum(['beam', 'greedy', 'sample']).default('beam'), 'Decoding strategy', { paper: { source: 'paper text', note: 'beam search' } }),
  numBeams: option(
    int(1).max(MAX_NUM_BEAMS, `must be at most ${MAX_NUM_BEAMS} (every beam of every prompt holds its own KV cache; the paper uses 5)`).default(5),
    'Beams per prompt (beam strategy)',
    { paper: { source: 'paper text', note: '5 beams' } },
  ),
  newTokens: option(int(1).default(64), 'max_new_tokens: the length of each continuation', { paper: { source: 'paper text', note: '64 new tokens' } }),
  minNewTokens: option(int().optional(), 'min_new_tokens: EOS is blocked before this many tokens (default: newTokens; the paper forces exactly 64)', {
    paper: { source: 'paper code', note: 'min_new_tokens=64: exactly 64' },
  }),
  repetitionPenalty: option(z.number().positive().default(1), 'HF repetition_penalty (the paper: 2.0 in the text, 3.0 in its code; 1 = off)', {
    paper: {
      source: 'paper text',
      note: "none in the main runs; 2.0 in the text's ablation; 3.0 in the code (the -rp presets)",
      byValue: { '3': { source: 'paper code', note: "repetition_penalty=3.0 in main.py's generate (the text: 2.0 in its ablation, none in the main runs)" } },
    },
  }),
  noRepeatNgramSize: option(int().default(0), 'HF no_repeat_ngram_size: ban repeating n-grams of this size (0 = off)'),
  lengthPenalty: option(z.number().default(1), 'HF length_penalty: the exponent of the length that divides a beam hypothesis score'),
  scoreLength: option(
    z.enum(['sequence', 'generated']).default('sequence'),
    'Length in the hypothesis score: prompt + generated (transformers 4.27-4.33) or generated only (>= 4.35)',
  ),
  temperature: option(z.number().positive().default(1), 'Sampling temperature (sample strategy)'),
  topK: option(int().default(0), 'Top-k filtering (sample strategy; 0 = off)'),
  topP: option(z.number().gt(0).max(1).default(1), 'Nucleus filtering (sample strategy; 1 = off)'),
  seed: option(int().default(0), 'Sampling seed (each prompt draws from (seed, block id))', { inRunConfig: false }),
  batchSize: option(int(1).default(16), 'Prompts decoded together', { paper: { source: 'our choice', note: 'throughput only' } }),
  chunkSize: option(int(1).default(64), 'Prompts per committed corpus shard: the unit that an interrupted run does not redo'),
  numReturnSequences: option(
    int(1).max(MAX_NUM_BEAMS).default(1),
    'HF num_return_sequences: candidates per prompt, each a row with its candidate_rank (0 = best): the best beams (at most numBeams) or independent samples',
    { addedLater: true },
  ),
  shardIndex: option(int().default(0), 'This process does chunks c with c % numShards == shardIndex', { inRunConfig: false }),
  numShards: option(int(1).default(1), 'Number of processes sharing the output corpus', { inRunConfig: false }),
  generation: option(int().default(0), 'Generation number stored in every row', { inRunConfig: false }),
};

export const generateFields = fieldsOf(GENERATE_OPTIONS);

/** What a corpus records as the options that made it (its manifest): all but the shard and the generation (its provenance says it). */
export const corpusRecord = (g: GenerateOptions): Record<string, unknown> => recordOf(GENERATE_OPTIONS, g, ['shardIndex', 'numShards', 'generation']);

type Rules = { strategy: string; numBeams: number; numReturnSequences: number };

/** The cross-option rules on candidates, in the option names of `name` (the run config says `generate.numBeams`). */
export function withCandidateRules<S extends z.ZodType<Rules>>(schema: S, name: (k: keyof Rules) => string = (k) => k) {
  return schema
    .refine((o) => o.strategy !== 'beam' || o.numReturnSequences <= o.numBeams, {
      message: `must be at most ${name('numBeams')} with beam search (the best of the beams are returned)`,
      path: ['numReturnSequences'],
    })
    .refine((o) => o.strategy !== 'greedy' || o.numReturnSequences === 1, {
      message: 'must be 1 with greedy decoding (it returns one sequence per prompt); use the sample or beam strategy',
      path: ['numReturnSequences'],
    });
}

const Schema = withCandidateRules(
  z.object(generateFields).refine((o) => o.minNewTokens === undefined || o.minNewTokens <= o.newTokens, {
    message: 'must be between 0 and {newTokens}',
    path: ['minNewTokens'],
  }),
  (k) => `{${k}}`,
)
  .refine((o) => o.shardIndex < o.numShards, { message: 'must be below {numShards}', path: ['shardIndex'] })
  .transform((o) => ({ ...o, minNewTokens: o.minNewTokens ?? o.newTokens }));

export type GenerateOptions = z.output<typeof Schema>;
export type GenerateOptionsInput = z.input<typeof Schema>;

/** Every option at its default. */
export const GENERATE_DEFAULTS: GenerateOptions = Schema.parse({});

/** The generation options of `input` (other keys ignored) with their defaults; an invalid one is an OptionError. */
export const resolveGenerateOptions = (input: GenerateOptionsInput): GenerateOptions => parseOptions(Schema, generateFields, input);
