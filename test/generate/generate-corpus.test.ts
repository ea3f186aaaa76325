// generateCorpus: one row per prompt through the corpus store; a run SIGKILLed mid-way and rerun gives
// the same corpus as an uninterrupted run (no duplicate or missing rows); 2 shards in 2 runs equal 1.
import { describeError } from '../../scripts/cli.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { corpusComplete, readCorpus, writeCorpus } from '../../datasets/corpus-store.js';
import { beamSearch } from '../../pipeline/generate/beam-search.js';
import { openDecoder } from '../../pipeline/generate/decoder/index.js';
import { generateCorpus } from '../../pipeline/generate/generate-corpus.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { CHILD_SETTINGS, childOptions } from './generate-child.js';
import { EOS, PAD, tinyModels } from './fixtures.js';

const BLOCK = 8;
const N_PROMPTS = 11; // 4 chunks of 3 (the last one short), batches of 2 inside a chunk

function promptRows(): CorpusRow[] {
  return Array.from({ length: N_PROMPTS }, (_, i) => ({
    block_id: 100 + i,
    input_ids: Int32Array.from({ length: BLOCK }, (_, t) => (t === 0 ? 2 : 4 + ((i * 37 + t * 11) % 500))),
    text: '',
    origin: 'original' as const,
    generation: 0,
    prompt_block_id: null,
    score: null,
  }));
}

const rowsOf = (dir: string) =>
  [...readCorpus(dir).rowsIter()].map((r) => ({ ...r, input_ids: Array.from(r.input_ids) }));
const shardFiles = (dir: string) => readdirSync(dir).filter((f) => /^part-.*\.arrow$/.test(f)).sort();

function child(prompts: string, out: string, env: Record<string, string> = {}, shard: string[] = []) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/generate/generate-child.ts'), prompts, out, ...shard], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

describe('generateCorpus', () => {
  let tmp: string;
  let prompts: string;
  let reference: ReturnType<typeof rowsOf>;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'gen-run-'));
    prompts = join(tmp, 'prompts');
    writeCorpus(prompts, promptRows(), { blockSize: BLOCK });
    const res = await generateCorpus(childOptions(prompts, join(tmp, 'straight')));
    expect(res).toMatchObject({ chunks: 4, skipped: 0, prompts: N_PROMPTS, complete: true });
    reference = rowsOf(join(tmp, 'straight'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes one row per prompt, in prompt order, equal to beam search on the same batches', async () => {
    expect(reference.map((r) => r.block_id)).toEqual(promptRows().map((r) => r.block_id));
    expect(reference.every((r) => r.origin === 'generated' && r.prompt_block_id === r.block_id)).toBe(true);
    expect(reference.every((r) => r.input_ids.length === CHILD_SETTINGS.newTokens)).toBe(true);
    // Chunk 1 = prompts 3..5, decoded as batches [3, 4] and [5].
    const dec = await openDecoder(tinyModels().withPast, { threads: 1 });
    const p = promptRows();
    const opts = { numBeams: 3, maxNewTokens: 6, minNewTokens: 2, repetitionPenalty: 2, eosId: EOS, padId: PAD };
    const a = await beamSearch(dec, [p[3]!.input_ids as Int32Array, p[4]!.input_ids as Int32Array], opts);
    const b = await beamSearch(dec, [p[5]!.input_ids as Int32Array], opts);
    await dec.release();
    expect([a.tokens[0], a.tokens[1], b.tokens[0]].map((t) => [...t!])).toEqual(reference.slice(3, 6).map((r) => r.input_ids));
    expect(reference[3]!.score).toBeCloseTo(a.scores[0]!, 6);
  });

  it('a rerun after SIGKILL mid-way yields the same corpus, no duplicate or missing rows', () => {
    const out = join(tmp, 'killed');
    // 6 steps per batch, 2 batches per chunk: step 16 is inside the second chunk's second batch.
    const killed = child(prompts, out, { KILL_AT_STEP: '16' });
    expect(killed.signal).toBe('SIGKILL');
    expect(corpusComplete(out)).toBe(false);
    const before = shardFiles(out);
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(4);
    const resumed = child(prompts, out);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(corpusComplete(out)).toBe(true);
    expect(shardFiles(out)).toEqual(shardFiles(join(tmp, 'straight')));
    const rows = rowsOf(out);
    expect(new Set(rows.map((r) => r.block_id)).size).toBe(N_PROMPTS);
    expect(rows).toEqual(reference);
  });

  it('2 shards in 2 separate runs equal the unsharded corpus', () => {
    const out = join(tmp, 'sharded');
    const first = child(prompts, out, {}, ['1', '2']);
    expect(first.status, first.stderr).toBe(0);
    expect(corpusComplete(out)).toBe(false);
    expect(() => readCorpus(out)).toThrow(/incomplete/);
    const second = child(prompts, out, {}, ['0', '2']);
    expect(second.status, second.stderr).toBe(0);
    expect(corpusComplete(out)).toBe(true);
    expect(shardFiles(out)).toEqual(shardFiles(join(tmp, 'straight')));
    expect(rowsOf(out)).toEqual(reference);
  });

  it('names an invalid option by its own name (the CLI prints its flag)', async () => {
    const bad = await generateCorpus({ ...childOptions(prompts, join(tmp, 'bad')), minNewTokens: 9 }).catch((e: Error) => e);
    expect((bad as Error).message).toBe('minNewTokens 9: must be between 0 and newTokens');
    expect(describeError(bad)).toBe('collapse: --min-new-tokens 9: must be between 0 and --new-tokens\n');
    expect(existsSync(join(tmp, 'bad'))).toBe(false);
  });

  it('refuses to resume a corpus started with other settings', async () => {
    await expect(generateCorpus({ ...childOptions(prompts, join(tmp, 'straight')), repetitionPenalty: 3 })).rejects.toThrow(
      /started with other inputs \(repetition-penalty 2 -> 3\)/,
    );
  });
});
