// The decoding and corpus-writing options of generateCorpus: one zod schema holds every default. generateCorpus
// resolves its options through it (errors name the option), the run config's `generate` section takes its fields
// from it, and `collapse generate` reads its flag defaults from GENERATE_DEFAULTS.
import { z } from 'zod';
import { parseOptions } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);

/** A bound on beams (20,000 beams ran on for hours; the paper uses 5, Hugging Face examples at most a few dozen). */
export const MAX_NUM_BEAMS = 64;

export const generateFields = {
  strategy: z.enum(['beam', 'greedy', 'sample']).default('beam'),
  numBeams: int(1).max(MAX_NUM_BEAMS, `must be at most ${MAX_NUM_BEAMS} (every beam of every prompt holds its own KV cache; the paper uses 5)`).default(5),
  /** max_new_tokens: the length of each continuation. */
  newTokens: int(1).default(64),
  /** min_new_tokens: EOS is blocked before this many tokens. Defaults to newTokens: the paper forces exactly 64. */
  minNewTokens: int().optional(),
  /** HF repetition_penalty (1 = off). */
  repetitionPenalty: z.number().positive().default(1),
  noRepeatNgramSize: int().default(0),
  lengthPenalty: z.number().default(1),
  /** Length in the hypothesis score: prompt + generated (transformers 4.27-4.33) or generated only (>= 4.35). */
  scoreLength: z.enum(['sequence', 'generated']).default('sequence'),
  /**
   * HF num_return_sequences: candidates per prompt, rank 0 first (beam search: the best finished hypotheses,
   * at most numBeams; sampling: independent draws). 1 writes the corpus exactly as before candidates existed.
   */
  numReturnSequences: int(1).max(MAX_NUM_BEAMS).default(1),
  temperature: z.number().positive().default(1),
  topK: int().default(0),
  topP: z.number().gt(0).max(1).default(1),
  /** Sampling seed (each prompt draws from (seed, block id)). */
  seed: int().default(0),
  /** Prompts decoded together. */
  batchSize: int(1).default(16),
  /** Prompts per committed corpus shard: the unit that an interrupted run does not redo. */
  chunkSize: int(1).default(64),
  /** This process does chunks c with c % numShards == shardIndex. */
  shardIndex: int().default(0),
  numShards: int(1).default(1),
  /** Generation number stored in every row. */
  generation: int().default(0),
};

const Schema = z
  .object(generateFields)
  .refine((o) => o.minNewTokens === undefined || o.minNewTokens <= o.newTokens, {
    message: 'must be between 0 and {newTokens}',
    path: ['minNewTokens'],
  })
  .refine((o) => o.strategy !== 'beam' || o.numReturnSequences <= o.numBeams, {
    message: 'must be at most {numBeams} with beam search (the best of the beams are returned)',
    path: ['numReturnSequences'],
  })
  .refine((o) => o.strategy !== 'greedy' || o.numReturnSequences === 1, {
    message: 'must be 1 with greedy decoding (it returns one sequence per prompt); use the sample or beam strategy',
    path: ['numReturnSequences'],
  })
  .refine((o) => o.shardIndex < o.numShards, { message: 'must be below {numShards}', path: ['shardIndex'] })
  .transform((o) => ({ ...o, minNewTokens: o.minNewTokens ?? o.newTokens }));

export type GenerateOptions = z.output<typeof Schema>;
export type GenerateOptionsInput = z.input<typeof Schema>;

/** Every option at its default. */
export const GENERATE_DEFAULTS: GenerateOptions = Schema.parse({});

/** The generation options of `input` (other keys ignored) with their defaults; an invalid one is an OptionError. */
export const resolveGenerateOptions = (input: GenerateOptionsInput): GenerateOptions => parseOptions(Schema, generateFields, input);
