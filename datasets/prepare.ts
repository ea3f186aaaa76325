// Source rows -> tokenized run_clm blocks -> an Arrow corpus (generation 0, origin 'original').
// Shared by `collapse prepare` and the generational loop.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeDirAtomic } from '../util/atomic.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { progress } from '../util/progress.js';
import { groupTexts, resolveBlockOptions, tokenizeRows, type BlockCounts, type GroupedBlocks } from './blocks.js';
import type { CorpusRow } from './corpus-codec.js';
import { writeCorpus, type CorpusManifest } from './corpus-store.js';
import { DEFAULT_SYNTHETIC, SyntheticSource, type SyntheticConfig } from './synthetic.js';
import { tinyTokenizerFiles } from './tiny-tokenizer.js';
import { loadTokenizer, type LoadedTokenizer } from './tokenizer.js';
import { sha256 } from '../util/sha256.js';
import { fieldsOf, option } from '../util/options.js';
import { z } from 'zod';
import { loadWikitext } from './wikitext.js';

export interface SourceRows {
  rows: string[];
  /** Provenance description of where they came from. */
  source: Record<string, unknown>;
}

export interface SyntheticRowsOptions {
  rows: number;
  seed: number;
  config?: Partial<SyntheticConfig>;
  /**
   * The `pretrain` split only: this share of its rows comes from the task's own domain (as a broad pretraining
   * corpus holds some text of every kind), spread evenly through it; 0 or absent: none.
   */
  pretrainTaskShare?: number;
}

/** The synthetic rows of a `prepare` that names none (`collapse prepare --rows --seed --source-seed`). */
export const PREPARE_OPTIONS = {
  rows: option(z.number().int().min(1).default(20_000), 'synthetic: number of text rows to sample'),
  seed: option(z.number().int().min(0).default(0), 'synthetic: sampling seed (each split uses its own stream)'),
  sourceSeed: option(z.number().int().min(0).default(DEFAULT_SYNTHETIC.seed), "synthetic: seed of the source's transition probabilities (the source's own seed, not the sampling seed)"),
};
const PREPARE_DEFAULTS = z.object(fieldsOf(PREPARE_OPTIONS)).parse({});
const SYNTHETIC_ROWS_DEFAULTS: SyntheticRowsOptions = { rows: PREPARE_DEFAULTS.rows, seed: PREPARE_DEFAULTS.seed, config: { seed: PREPARE_DEFAULTS.sourceSeed } };

/**
 * Rows of a data source: 'synthetic', a WikiText variant name, a directory of original or parquet
 * WikiText files, or one parquet file.
 */
export async function loadSourceRows(
  data: string,
  opts: { split?: string; variant?: string; synthetic?: SyntheticRowsOptions } = {},
): Promise<SourceRows> {
  const split = opts.split ?? 'train';
  if (data === 'synthetic') {
    const s = opts.synthetic ?? SYNTHETIC_ROWS_DEFAULTS;
    // Splits draw disjoint seeds from the same source, so validation is not a copy of train.
    // The `pretrain` split is drawn from the source's broader pretraining mixture of topics.
    const splitOffset = { train: 0, validation: 1, valid: 1, test: 2, pretrain: 3 }[split];
    if (splitOffset === undefined) throw new Error(`unknown split ${JSON.stringify(split)}: use train, validation, test or pretrain`);
    const src = new SyntheticSource(s.config);
    const seed = s.seed * 3 + splitOffset + (split === 'pretrain' ? 1_000_003 : 0);
    const domain = split === 'pretrain' ? 'pretrain' : 'task';
    const share = split === 'pretrain' ? (s.pretrainTaskShare ?? 0) : 0;
    if (!(share >= 0 && share <= 1)) throw new Error(`pretrainTaskShare ${share}: must be in [0, 1]`);
    const source = { kind: 'synthetic', config: src.cfg, rows: s.rows, sampleSeed: seed, split, domain };
    if (share === 0) return { rows: src.sample(s.rows, seed, domain), source };
    // Task rows from their own seed (disjoint from every split's), each in place of the pretraining row at an
    // evenly spaced position.
    const taskRows = Math.round(share * s.rows);
    const taskSeed = seed + 7_000_003;
    const task = src.sample(taskRows, taskSeed, 'task');
    const rows = src.sample(s.rows - taskRows, seed, domain);
    for (let i = taskRows - 1; i >= 0; i--) rows.splice(Math.floor(((i + 0.5) * s.rows) / taskRows) - i, 0, task[i]!);
    return { rows, source: { ...source, pretrainTaskShare: share, taskRows, taskSeed } };
  }
  const wt = await loadWikitext(data, split, opts.variant);
  return {
    rows: wt.rows,
    source: {
      kind: 'wikitext',
      variant: wt.variant,
      split: wt.split,
      files: wt.files.map((f) => ({ path: resolve(f), sha256: sha256(readFileSync(f)) })),
    },
  };
}

/** `tiny` is the project's own word-level tokenizer; anything else is a tokenizer directory. */
export function resolveTokenizer(spec: string): { tokenizer: LoadedTokenizer; name: string } {
  if (spec !== 'tiny') return { tokenizer: loadTokenizer(spec), name: resolve(spec) };
  const dir = mkdtempSync(join(tmpdir(), 'tiny-tokenizer-'));
  try {
    for (const [f, c] of Object.entries(tinyTokenizerFiles())) writeFileSync(join(dir, f), c);
    return { tokenizer: loadTokenizer(dir), name: 'tiny' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PrepareOptions {
  data: string;
  split?: string;
  variant?: string;
  tokenizer: string;
  blockSize: number;
  batchSize?: number;
  concat?: 'batched' | 'global';
  /** datasets.map's num_proc (the paper's code: 4); see datasets/blocks.ts. */
  numProc?: number;
  /** Keep only the first maxBlocks blocks (0 or absent: all of them). */
  maxBlocks?: number;
  /** Output corpus directory (written whole under a temporary name, then renamed); without it only counts. */
  out?: string;
  /** Replace an existing --out. */
  force?: boolean;
  /** Store each block's decoded text in the `text` column (default true). */
  withText?: boolean;
  synthetic?: SyntheticRowsOptions;
  log?: (line: string) => void;
}

export interface PrepareResult {
  counts: BlockCounts;
  /** Blocks written (counts.blocks, or maxBlocks when that is fewer). */
  kept: number;
  blocks: GroupedBlocks;
  manifest: CorpusManifest | null;
  seconds: { load: number; tokenize: number; write: number };
}

export async function prepareCorpus(o: PrepareOptions): Promise<PrepareResult> {
  if (o.out && existsSync(o.out) && !o.force) throw new Error(`--out ${o.out} already exists: choose another directory or pass --force to replace it`);
  const t0 = performance.now();
  const { tokenizer, name } = resolveTokenizer(o.tokenizer);
  if (tokenizer.identity.conflict) (o.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(`WARNING: ${tokenizer.identity.conflict}`);
  const src = await loadSourceRows(o.data, { split: o.split, variant: o.variant, synthetic: o.synthetic });
  const t1 = performance.now();
  const bar = progress('tokenize', src.rows.length, { unit: 'rows', logEvery: 10_000 });
  const tokenized = tokenizeRows(tokenizer, src.rows, (done, tokens) => bar.update(done, { tokens }));
  bar.stop();
  const grouping = resolveBlockOptions(o);
  const blocks = groupTexts(tokenized, grouping);
  const t2 = performance.now();
  const kept = o.maxBlocks ? Math.min(o.maxBlocks, blocks.rows) : blocks.rows;
  let manifest: CorpusManifest | null = null;
  if (o.out) {
    if (kept === 0)
      throw new Error(`${o.data} (${o.split ?? 'train'}): ${src.rows.length} rows give no ${o.blockSize}-token block; use more rows or a smaller block size`);
    const bs = o.blockSize;
    const withText = o.withText ?? true;
    function* rows(): Generator<CorpusRow> {
      for (let k = 0; k < kept; k++) {
        const ids = blocks.ids.subarray(k * bs, (k + 1) * bs);
        yield {
          block_id: k,
          input_ids: ids,
          text: withText ? tokenizer.decode(ids) : '',
          origin: 'original',
          generation: 0,
          prompt_block_id: null,
          score: null,
        };
      }
    }
    await writeDirAtomic(o.out, (tmp) => {
      manifest = writeCorpus(tmp, rows(), {
        blockSize: bs,
        tokenizerFingerprint: tokenizer.identity.fingerprint,
        provenance: {
          source: o.data,
          ...src.source,
          tokenizer: name,
          generation: 0,
          ...(o.data === 'synthetic' ? { seed: o.synthetic?.seed ?? 0 } : {}),
          // Beside the source's own `config` (the synthetic source's parameters), not over it.
          grouping: { blockSize: bs, batchSize: grouping.batchSize, concat: grouping.concat, numProc: grouping.numProc },
          counts: blocks.counts,
          ...(kept < blocks.rows ? { kept } : {}),
        },
      });
    });
  }
  const t3 = performance.now();
  return { counts: blocks.counts, kept, blocks, manifest, seconds: { load: (t1 - t0) / 1000, tokenize: (t2 - t1) / 1000, write: (t3 - t2) / 1000 } };
}
