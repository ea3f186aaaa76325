// `collapse generate`: one continuation per prompt block (5-way beam search by default, HF semantics), or
// --num-return-sequences candidates per prompt, written as a sharded, resumable corpus. Its decoding flags are
// the generation options (pipeline/generate/options.ts), under the same names.
import type { Argv, CommandModule } from 'yargs';
import { resolveShard } from '../shards.js';
import { generateCorpus, openGenerationModel } from '../../pipeline/generate/generate-corpus.js';
import { providerFromEnv, type Provider } from '../../models/session.js';
import { GENERATE_OPTIONS } from '../../pipeline/generate/options.js';
import { optionArgs, optionFlags } from '../flags.js';

interface GenerateArgs {
  model: string;
  prompts: string;
  out: string;
  threads?: number;
  provider?: Provider;
  shardIndex?: number;
  numShards?: number;
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
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('provider', { choices: ['cpu', 'cuda'] as const, describe: 'Execution provider (default: COLLAPSE_PROVIDER or cpu)' })
      .options(optionFlags(GENERATE_OPTIONS, { noDefault: ['shardIndex', 'numShards'] })) as never,
  handler: async (args) => {
    const shard = resolveShard({ shardIndex: args.shardIndex, numShards: args.numShards });
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const res = await generateCorpus({
      ...optionArgs(args, GENERATE_OPTIONS),
      model: openGenerationModel(args.model, log),
      prompts: args.prompts,
      out: args.out,
      threads: args.threads,
      provider: args.provider ?? providerFromEnv(),
      shardIndex: shard.index,
      numShards: shard.count,
      log,
    });
    process.stdout.write(
      `generate: ${res.prompts} prompts in ${res.seconds.toFixed(1)} s (${res.tokensPerSecond.toFixed(1)} continuation tokens/s), ` +
        `${res.skipped} chunk(s) already committed; corpus ${res.complete ? 'complete and finalized' : 'waiting for other shards'}: ${args.out}\n`,
    );
  },
};

export default generate;
