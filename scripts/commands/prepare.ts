// `collapse prepare`: a data source -> run_clm blocks -> an Arrow corpus, printing the counts. Its grouping and
// synthetic-row flags are the options of datasets/blocks.ts and datasets/prepare.ts, under the same names.
import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCK_OPTIONS } from '../../datasets/blocks.js';
import { prepareCorpus, PREPARE_OPTIONS } from '../../datasets/prepare.js';
import { loadTokenizer } from '../../datasets/tokenizer.js';
import { checkTokenizerFits, checkWritable, modelLimits } from '../../pipeline/preflight.js';
import { WIKITEXT_VARIANTS } from '../../datasets/wikitext.js';
import { optionFlags } from '../flags.js';

interface PrepareArgs {
  data: string;
  split: string;
  variant?: string;
  tokenizer: string;
  blockSize: number;
  batchSize: number;
  concat: 'batched' | 'global';
  numProc: number;
  out?: string;
  force: boolean;
  text: boolean;
  rows: number;
  seed: number;
  sourceSeed: number;
  json: boolean;
}

const prepare: CommandModule<object, PrepareArgs> = {
  command: 'prepare',
  describe: 'Tokenize a data source into fixed-length blocks (HF run_clm group_texts) and write an Arrow corpus',
  builder: (y) =>
    y
      .option('data', {
        type: 'string',
        demandOption: true,
        describe: `Source: a directory of wiki.{train,valid,test}.{raw,tokens} files, a directory of HF parquet files or one parquet file, ${WIKITEXT_VARIANTS.join(' / ')} (COLLAPSE_WIKITEXT_DIR, cache, then the hub), or "synthetic"`,
      })
      .option('split', { type: 'string', default: 'train', describe: 'train, validation (or valid) or test' })
      .option('variant', { type: 'string', choices: [...WIKITEXT_VARIANTS], describe: 'WikiText variant, when a directory holds both .raw and .tokens files' })
      .option('tokenizer', { type: 'string', default: 'tiny', describe: 'Tokenizer directory (tokenizer.json, or vocab.json + merges.txt), a model directory, or "tiny" (the project\'s word-level tokenizer)' })
      .options(optionFlags(BLOCK_OPTIONS))
      .option('out', { type: 'string', describe: 'Corpus directory to write; without it only the counts are printed' })
      .option('force', { type: 'boolean', default: false, describe: 'Replace an existing --out' })
      .option('text', { type: 'boolean', default: true, describe: 'Store each block\'s decoded text (--no-text leaves the column empty)' })
      .options(optionFlags(PREPARE_OPTIONS))
      .option('json', { type: 'boolean', default: false, describe: 'Print the counts as JSON' })
      .example('$0 prepare --data ../shared/data/wikitext-2 --tokenizer ../shared/tokenizers/opt-125m --out runs/wt2-train', 'WikiText-2 train in 64-token blocks')
      .example('$0 prepare --data synthetic --rows 5000 --out runs/synth-train', 'synthetic source, tiny tokenizer') as never,
  handler: async (a) => {
    if (a.out) checkWritable(a.out, '--out');
    // A model directory given as --tokenizer: its tokenizer must fit its vocab_size (ids beyond it crash later).
    if (existsSync(join(a.tokenizer, 'config.json'))) {
      const limits = modelLimits(a.tokenizer);
      checkTokenizerFits({ dir: a.tokenizer, vocabSize: loadTokenizer(a.tokenizer).vocabSize }, limits);
    }
    const r = await prepareCorpus({
      data: a.data,
      split: a.split,
      variant: a.variant,
      tokenizer: a.tokenizer,
      blockSize: a.blockSize,
      batchSize: a.batchSize,
      concat: a.concat,
      numProc: a.numProc,
      out: a.out,
      force: a.force,
      withText: a.text,
      synthetic: { rows: a.rows, seed: a.seed, config: { seed: a.sourceSeed } },
    });
    const c = r.counts;
    if (a.json) {
      process.stdout.write(`${JSON.stringify({ ...c, out: a.out ?? null, seconds: r.seconds })}\n`);
      return;
    }
    process.stdout.write(
      `rows ${c.rows}\ntokens ${c.tokens}\nblocks ${c.blocks} x ${a.blockSize}\ndropped tokens ${c.droppedTokens} (${c.batches} batches)\n` +
        `time: load ${r.seconds.load.toFixed(1)} s, tokenize+block ${r.seconds.tokenize.toFixed(1)} s (${Math.round(c.tokens / r.seconds.tokenize)} tokens/s)` +
        (a.out ? `, write ${r.seconds.write.toFixed(1)} s\ncorpus ${a.out}` : '') +
        '\n',
    );
  },
};

export default prepare;
