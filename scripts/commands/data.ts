// `collapse data ...`: the synthetic source and corpus inspection.
import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readCorpus, type Provenance } from '../../datasets/corpus-store.js';
import { checkWritable } from '../../pipeline/preflight.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { PREPARE_OPTIONS } from '../../datasets/prepare.js';
import { pickOptions } from '../../util/options.js';
import { optionFlags } from '../flags.js';
import { writeFileAtomic } from '../../util/atomic.js';

/** --source-seed: the synthetic source's own seed, as `collapse prepare` and `collapse eval --synthetic` take it. */
const sourceSeedFlag = () => optionFlags(pickOptions(PREPARE_OPTIONS, ['sourceSeed']));

interface SynthArgs {
  rows: number;
  seed: number;
  sourceSeed: number;
  out?: string;
}

const synth: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Sample text rows from the seeded synthetic source (one row per line, like wiki.*.tokens)',
  builder: (y) =>
    y
      .option('rows', { type: 'number', default: 10, describe: 'Number of rows' })
      .option('seed', { type: 'number', default: 0, describe: 'Sampling seed' })
      .options(sourceSeedFlag())
      .option('out', { type: 'string', describe: 'Write to this file (atomically) instead of stdout' }) as never,
  handler: (a) => {
    if (!Number.isInteger(a.rows) || a.rows < 1) throw new Error(`--rows must be a positive integer, got ${a.rows}`);
    if (a.out) checkWritable(a.out, '--out', { file: true });
    const rows = new SyntheticSource({ seed: a.sourceSeed }).sample(a.rows, a.seed);
    if (a.out) writeFileAtomic(a.out, rows.join(''));
    else writeFileSync(1, rows.join(''));
  },
};

interface LogProbArgs {
  text: string[];
  sourceSeed: number;
}

const logprob: CommandModule<object, LogProbArgs> = {
  command: 'logprob <text..>',
  describe: 'Exact log-probability (nats) of a text under the synthetic source',
  builder: (y) =>
    y
      .positional('text', { type: 'string', array: true, describe: 'Words of the text, sentences ending with "."' })
      .options(sourceSeedFlag()) as never,
  handler: (a) => {
    const text = a.text.join(' ');
    const src = new SyntheticSource({ seed: a.sourceSeed });
    process.stdout.write(`${src.logProb(text)}\n`);
  },
};

/**
 * A generated corpus (its provenance names the prompts corpus and the decoding config) has one row per prompt:
 * compare the counts. Returns a summary line; throws when they differ.
 */
function promptsCheck(prov: Provenance, rows: number, dir: string): string {
  const cfg = prov.config as { chunkSize?: unknown } | undefined;
  if (typeof prov.source !== 'string' || typeof cfg?.chunkSize !== 'number') return '';
  const src = prov.source; // as given to `generate` (relative to where it ran)
  if (!existsSync(join(src, 'manifest.json'))) return `prompts ${prov.source}: not found here, row count not compared\n`;
  const want = readCorpus(src).rows;
  if (rows !== want)
    throw new Error(`${dir}: ${rows} rows for ${want} prompts in ${prov.source}; the corpus is missing rows (rerun \`collapse generate\` with the same options to complete it)`);
  return `prompts ${prov.source}: one row per prompt (${want})\n`;
}

interface VerifyArgs {
  corpus: string;
}

const verify: CommandModule<object, VerifyArgs> = {
  command: 'verify <corpus>',
  describe: 'Check every shard of a corpus (size, sha256, schema, block length) and print its summary',
  builder: (y) => y.positional('corpus', { type: 'string', demandOption: true, describe: 'Corpus directory' }) as never,
  handler: (a) => {
    const c = readCorpus(a.corpus);
    const origins = new Map<string, number>();
    const generations = new Map<number, number>();
    let rows = 0;
    for (const r of c.rowsIter()) {
      rows++;
      origins.set(r.origin, (origins.get(r.origin) ?? 0) + 1);
      generations.set(r.generation, (generations.get(r.generation) ?? 0) + 1);
    }
    const fmt = <K>(m: Map<K, number>) => [...m].map(([k, v]) => `${k}: ${v}`).join(', ');
    const prompts = promptsCheck(c.manifest.provenance, rows, a.corpus);
    process.stdout.write(
      `${a.corpus}: OK\n${prompts}${rows} rows of ${c.blockSize} tokens in ${c.shards.length} shards\n` +
        `origin ${fmt(origins)}\ngeneration ${fmt(generations)}\nprovenance ${JSON.stringify(c.manifest.provenance)}\n`,
    );
  },
};

const data: CommandModule = {
  command: 'data <command>',
  describe: 'Synthetic source and corpus tools (synth, logprob, verify)',
  builder: (y) => y.command(synth).command(logprob).command(verify).demandCommand(1, 'Name a data subcommand: synth, logprob or verify') as never,
  handler: () => {},
};

export default data;
