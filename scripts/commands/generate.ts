// `collapse generate`: one continuation per prompt block (5-way beam search by default, HF semantics), or
// --num-return-sequences candidates per prompt, written as a sharded, resumable corpus.
import type { Argv, CommandModule } from 'yargs';
import { resolveShard } from '../shards.js';
import { generateCorpus, openGenerationModel, type Strategy } from '../../pipeline/generate/generate-corpus.js';
import { providerFromEnv, type Provider } from '../../models/session.js';
import { GENERATE_DEFAULTS as d } from '../../pipeline/generate/options.js';

interface GenerateArgs {
  model: string;
  prompts: string;
  out: string;
  strategy: Strategy;
  'num-beams': number;
  'new-tokens': number;
  'min-new-tokens'?: number;
  'repetition-penalty': number;
  'no-repeat-ngram-size': number;
  'length-penalty': number;
  'score-length': 'sequence' | 'generated';
  'num-return-sequences': number;
  temperature: number;
  'top-k': number;
  'top-p': number;
  seed: number;
  'batch-size': number;
  'chunk-size': number;
  threads?: number;
  provider?: Provider;
  'shard-index'?: number;
  'num-shards'?: number;
  generation: number;
}

const generate: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Write one continuation per prompt block of a corpus (beam search with a KV cache), resumable and shardable',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 generate --model DIR --prompts CORPUS --out CORPUS [options]\n\n' +
          'Each block of --prompts is one prompt; its continuation (--new-tokens ids, text, score, prompt block id) is one ' +
          'row of --out. Prompts are committed in chunks of --chunk-size; a rerun skips committed chunks. Many processes ' +
          'can share one --out with --shard-index/--num-shards (defaults: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, ' +
          'or JOB_COMPLETION_INDEX with COLLAPSE_NUM_SHARDS).',
      )
      .option('model', { type: 'string', demandOption: true, describe: 'Model directory (collapse model init/import, or a fine-tuned one)' })
      .option('prompts', { type: 'string', demandOption: true, describe: 'Corpus whose blocks are the prompts' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output corpus directory (created or resumed)' })
      .option('strategy', { choices: ['beam', 'greedy', 'sample'] as const, default: d.strategy, describe: 'Decoding strategy' })
      .option('num-beams', { type: 'number', default: d.numBeams, describe: 'Beams per prompt (beam strategy)' })
      .option('new-tokens', { type: 'number', default: d.newTokens, describe: 'max_new_tokens: length of each continuation' })
      .option('min-new-tokens', { type: 'number', describe: 'min_new_tokens: EOS is blocked before this many tokens (default: --new-tokens)' })
      .option('repetition-penalty', { type: 'number', default: d.repetitionPenalty, describe: 'HF repetition_penalty (the paper: 2.0 in the text, 3.0 in its code; 1 = off)' })
      .option('no-repeat-ngram-size', { type: 'number', default: d.noRepeatNgramSize, describe: 'Ban repeating n-grams of this size (0 = off)' })
      .option('length-penalty', { type: 'number', default: d.lengthPenalty, describe: 'Exponent of the length that divides a hypothesis score' })
      .option('score-length', {
        choices: ['sequence', 'generated'] as const,
        default: d.scoreLength,
        describe: 'Length in the hypothesis score: prompt + generated (transformers 4.27-4.33) or generated only (>= 4.35)',
      })
      .option('num-return-sequences', {
        type: 'number',
        default: d.numReturnSequences,
        describe: 'Candidates per prompt, each a row with its candidate_rank (0 = best): the best beams (at most --num-beams) or independent samples',
      })
      .option('temperature', { type: 'number', default: d.temperature, describe: 'Sampling temperature (sample strategy)' })
      .option('top-k', { type: 'number', default: d.topK, describe: 'Top-k filtering (sample strategy; 0 = off)' })
      .option('top-p', { type: 'number', default: d.topP, describe: 'Nucleus filtering (sample strategy; 1 = off)' })
      .option('seed', { type: 'number', default: d.seed, describe: 'Sampling seed (each prompt draws from (seed, block id))' })
      .option('batch-size', { type: 'number', default: d.batchSize, describe: 'Prompts decoded together' })
      .option('chunk-size', { type: 'number', default: d.chunkSize, describe: 'Prompts per committed shard (the unit of resumption and sharding)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('provider', { choices: ['cpu', 'cuda'] as const, describe: 'Execution provider (default: COLLAPSE_PROVIDER or cpu)' })
      .option('shard-index', { type: 'number', describe: 'This process does chunks c with c % num-shards == shard-index' })
      .option('num-shards', { type: 'number', describe: 'Number of processes sharing --out' })
      .option('generation', { type: 'number', default: d.generation, describe: 'Generation number stored in every row' }) as never,
  handler: async (args) => {
    const shard = resolveShard({ shardIndex: args['shard-index'], numShards: args['num-shards'] });
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const res = await generateCorpus({
      model: openGenerationModel(args.model, log),
      prompts: args.prompts,
      out: args.out,
      strategy: args.strategy,
      numBeams: args['num-beams'],
      newTokens: args['new-tokens'],
      minNewTokens: args['min-new-tokens'],
      repetitionPenalty: args['repetition-penalty'],
      noRepeatNgramSize: args['no-repeat-ngram-size'],
      lengthPenalty: args['length-penalty'],
      scoreLength: args['score-length'],
      numReturnSequences: args['num-return-sequences'],
      temperature: args.temperature,
      topK: args['top-k'],
      topP: args['top-p'],
      seed: args.seed,
      batchSize: args['batch-size'],
      chunkSize: args['chunk-size'],
      threads: args.threads,
      provider: args.provider ?? providerFromEnv(),
      shardIndex: shard.index,
      numShards: shard.count,
      generation: args.generation,
      log,
    });
    process.stdout.write(
      `generate: ${res.prompts} prompts in ${res.seconds.toFixed(1)} s (${res.tokensPerSecond.toFixed(1)} continuation tokens/s), ` +
        `${res.skipped} chunk(s) already committed; corpus ${res.complete ? 'complete and finalized' : 'waiting for other shards'}: ${args.out}\n`,
    );
  },
};

export default generate;
