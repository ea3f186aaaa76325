// Child process of generate-corpus.test.ts: generates a corpus from the tiny fixture model with the settings below and,
// when KILL_AT_STEP is set, SIGKILLs itself in the middle of a batch after that many decoding steps.
// Usage: npx tsx test/generate/generate-child.ts PROMPTS OUT [SHARD_INDEX NUM_SHARDS]
import { generateCorpus, type GenerateCorpusOptions } from '../../pipeline/generate/generate-corpus.js';
import { EOS, PAD, tinyModels } from './fixtures.js';

export const CHILD_SETTINGS = {
  numBeams: 3,
  newTokens: 6,
  minNewTokens: 2,
  repetitionPenalty: 2,
  batchSize: 2,
  chunkSize: 3,
  threads: 1,
} satisfies Partial<GenerateCorpusOptions>;

export function childOptions(prompts: string, out: string): GenerateCorpusOptions {
  return { model: { graph: tinyModels().withPast, eosId: EOS, padId: PAD, name: 'tiny-fixture' }, prompts, out, ...CHILD_SETTINGS };
}

if (process.argv[1]?.endsWith('generate-child.ts')) {
  const [prompts, out, index, count] = process.argv.slice(2);
  const killAt = Number(process.env.KILL_AT_STEP ?? 0);
  let steps = 0;
  await generateCorpus({
    ...childOptions(prompts!, out!),
    shardIndex: index ? Number(index) : 0,
    numShards: count ? Number(count) : 1,
    onStep: () => {
      if (killAt > 0 && ++steps === killAt) process.kill(process.pid, 'SIGKILL');
    },
  });
}
