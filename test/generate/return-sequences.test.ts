// Several candidates per prompt (numReturnSequences, HF's num_return_sequences):
//   - beam search's k best hypotheses equal Hugging Face's `num_return_sequences=5` output on the GPT-2 and Llama
//     references in ../shared (all 5 hypotheses per prompt, best first, with their sequences_scores);
//   - k samples equal a recompute-everything sampling loop written here, one Rng per (prompt, rank);
//   - generateCorpus writes k rows per prompt with ranks 0..k-1, and a k = 1 corpus has no rank column.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { readCorpus, readManifest, writeCorpus } from '../../datasets/corpus-store.js';
import { generationPlan, openModelDir } from '../../models/model-dir/index.js';
import { i64 } from '../../models/session.js';
import { beamSearch } from '../../pipeline/generate/beam-search.js';
import { openDecoder } from '../../pipeline/generate/decoder/index.js';
import { warpedProbabilities } from '../../pipeline/generate/logits.js';
import { generateCorpus } from '../../pipeline/generate/generate-corpus.js';
import { sampleSearch, sampleSeed } from '../../pipeline/generate/sampling.js';
import { describeError, runCli } from '../../scripts/cli.js';
import { Rng } from '../../util/rng.js';
import { sharedPath } from '../helpers/shared.js';
import { childOptions } from './generate-child.js';
import { EOS, PAD, PROMPTS, sessionForTests, tinyModels } from './fixtures.js';

interface ReturnSequences {
  num_beams: number;
  new_tokens: number;
  min_new_tokens: number;
  repetition_penalty: number;
  eos_token_id: number;
  num_return_sequences: number;
  sequences: number[][][];
  sequence_scores: number[][];
}

for (const name of ['gpt2-tiny-torch-export-opset17', 'llama-tiny-torch-export-opset17']) {
  const dir = sharedPath(`models/${name}`);
  describe.skipIf(!dir)(`${name}: beam search's k best equal HF num_return_sequences`, () => {
    it('all 5 hypotheses per prompt, best first, with HF sequences_scores; fewer return its first k', async () => {
      const ref = JSON.parse(readFileSync(join(dir!, 'reference-return-sequences.json'), 'utf8')) as ReturnSequences;
      const inputIds = (JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
      const prompts = inputIds.map((r) => Int32Array.from(r));
      const k = ref.num_return_sequences;
      const opts = {
        numBeams: ref.num_beams,
        maxNewTokens: ref.new_tokens,
        minNewTokens: ref.min_new_tokens,
        repetitionPenalty: ref.repetition_penalty,
        eosId: ref.eos_token_id,
        padId: ref.eos_token_id,
      };
      const graph = generationPlan(openModelDir(dir!)).graph;
      // The reference's scores are the hypotheses' sums of log-probs (HF's sequences_scores at length_penalty 0):
      // every hypothesis has 8 new tokens (min_new_tokens = new_tokens), so the length penalty changes no order,
      // and at the default penalty 1 each score is that sum over the row's length, 24 prompt + 8 new ids.
      const rowLength = prompts[0]!.length + ref.new_tokens;
      // Whole logits, and a beam shortlist as `collapse generate` decodes.
      for (const shortlist of [false, true]) {
        const dec = await openDecoder(graph, { threads: 1, shortlist });
        const all = await beamSearch(dec, prompts, { ...opts, numReturnSequences: k, lengthPenalty: 0 });
        const normalised = await beamSearch(dec, prompts, { ...opts, numReturnSequences: k });
        const three = await beamSearch(dec, prompts, { ...opts, numReturnSequences: 3, lengthPenalty: 0 });
        const one = await beamSearch(dec, prompts, { ...opts, lengthPenalty: 0 });
        await dec.release();
        expect(all.tokens.map((t) => [...t])).toEqual(ref.sequences.flat());
        all.scores.forEach((s, i) => expect(s).toBeCloseTo(ref.sequence_scores.flat()[i]!, 3));
        expect(normalised.tokens).toEqual(all.tokens);
        normalised.scores.forEach((s, i) => expect(s * rowLength).toBeCloseTo(ref.sequence_scores.flat()[i]!, 3));
        const firstOf = (n: number) => <T>(rows: T[]): T[] => rows.flatMap((_, i) => (i % k < n ? [rows[i]!] : []));
        expect(three.tokens).toEqual(firstOf(3)(all.tokens));
        expect(three.scores).toEqual(firstOf(3)(all.scores));
        expect(one.tokens).toEqual(firstOf(1)(all.tokens));
      }
    });
  });
}

describe('k samples per prompt on the tiny OPT', () => {
  const models = tinyModels();
  const session = sessionForTests(models.noPast);

  const base = { doSample: true, maxNewTokens: 7, minNewTokens: 2, repetitionPenalty: 1.5, temperature: 1.2, eosId: EOS, padId: PAD, seed: 11, keys: [40, 41, 42, 43] };

  /** Sample `rank` of prompt `p`: the whole sequence recomputed each step, processors and the draw written out. */
  async function referenceSample(p: number, rank: number): Promise<number[]> {
    const L = Math.max(...PROMPTS.map((x) => x.length));
    const prompt = PROMPTS[p]!;
    const ids = [...new Array<number>(L - prompt.length).fill(PAD), ...prompt];
    const mask = [...new Array<number>(L - prompt.length).fill(0), ...new Array<number>(prompt.length).fill(1)];
    const rng = new Rng(sampleSeed(base.seed, base.keys[p]!, rank));
    const gen: number[] = [];
    for (let t = 0; t < base.maxNewTokens; t++) {
      const out = await session().run({ input_ids: i64(ids, [1, ids.length]), attention_mask: i64(mask, [1, mask.length]) });
      const V = out.logits!.dims[2]!;
      const row = Float64Array.from((out.logits!.data as Float32Array).slice((ids.length - 1) * V));
      for (const id of new Set(ids)) row[id] = row[id]! < 0 ? row[id]! * base.repetitionPenalty : row[id]! / base.repetitionPenalty;
      if (t < base.minNewTokens) row[EOS] = -Infinity;
      const probs = warpedProbabilities(row, base);
      let u = rng.next();
      let tok = -1;
      for (let v = 0; v < V && tok < 0; v++) if ((u -= probs[v]!) < 0 && probs[v]! > 0) tok = v;
      if (tok < 0) for (let v = V - 1; v >= 0 && tok < 0; v--) if (probs[v]! > 0) tok = v;
      gen.push(tok);
      ids.push(tok);
      mask.push(1);
      if (tok === EOS) break;
    }
    while (gen.length < base.maxNewTokens) gen.push(PAD);
    return gen;
  }

  it('k rows per prompt, each the reference draw of its (seed, key, rank); sample 0 is the k = 1 sample; reproducible', async () => {
    const k = 4;
    const dec = await openDecoder(models.withPast, { threads: 1 });
    const got = await sampleSearch(dec, PROMPTS, { ...base, numReturnSequences: k });
    const again = await sampleSearch(dec, PROMPTS, { ...base, numReturnSequences: k });
    const single = await sampleSearch(dec, PROMPTS, base);
    const otherSeed = await sampleSearch(dec, PROMPTS, { ...base, seed: 12, numReturnSequences: k });
    await dec.release();
    expect(got.tokens.length).toBe(PROMPTS.length * k);
    const rows = got.tokens.map((t) => [...t]);
    for (let p = 0; p < PROMPTS.length; p++) for (let r = 0; r < k; r++) expect(rows[p * k + r], `prompt ${p} rank ${r}`).toEqual(await referenceSample(p, r));
    expect(again.tokens).toEqual(got.tokens);
    expect(again.scores).toEqual(got.scores);
    expect(single.tokens.map((t) => [...t])).toEqual(rows.filter((_, i) => i % k === 0));
    // Independent draws: every prompt's k samples differ (8 tokens at temperature 1.2 over 512 ids).
    for (let p = 0; p < PROMPTS.length; p++) expect(new Set(rows.slice(p * k, (p + 1) * k).map((r) => r.join(' '))).size).toBe(k);
    expect(otherSeed.tokens).not.toEqual(got.tokens);
  });

  it('greedy decoding refuses several sequences', async () => {
    const dec = await openDecoder(models.withPast, { threads: 1 });
    await expect(sampleSearch(dec, PROMPTS, { ...base, doSample: false, numReturnSequences: 2 })).rejects.toThrow(/numReturnSequences 2: greedy decoding returns one sequence/);
    await dec.release();
  });
});

describe('generateCorpus with numReturnSequences', () => {
  let tmp: string;
  let prompts: string;
  const N = 5;
  const rowsOf = (dir: string) => [...readCorpus(dir).rowsIter()].map((r) => ({ ...r, input_ids: Array.from(r.input_ids) }));
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'gen-candidates-'));
    prompts = join(tmp, 'prompts');
    const rows: CorpusRow[] = Array.from({ length: N }, (_, i) => ({
      block_id: 200 + i,
      input_ids: Int32Array.from({ length: 8 }, (_, t) => (t === 0 ? 2 : 4 + ((i * 31 + t * 13) % 500))),
      text: '',
      origin: 'original',
      generation: 0,
      prompt_block_id: null,
      score: null,
    }));
    writeCorpus(prompts, rows, { blockSize: 8 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('beam: k rows per prompt, ranks 0..k-1 best first, rank 0 the k = 1 corpus; k = 1 has no rank column', async () => {
    const k = 3;
    await generateCorpus({ ...childOptions(prompts, join(tmp, 'one')) });
    await generateCorpus({ ...childOptions(prompts, join(tmp, 'beam3')), numReturnSequences: k });
    const one = rowsOf(join(tmp, 'one'));
    const many = rowsOf(join(tmp, 'beam3'));
    expect(one.every((r) => !('candidate_rank' in r))).toBe(true);
    expect(readManifest(join(tmp, 'one')).provenance.config).not.toHaveProperty('numReturnSequences');
    expect(readManifest(join(tmp, 'beam3')).provenance.config).toMatchObject({ numReturnSequences: k });
    expect(many.length).toBe(N * k);
    expect(many.map((r) => r.candidate_rank)).toEqual(Array.from({ length: N * k }, (_, i) => i % k));
    expect(many.map((r) => r.prompt_block_id)).toEqual(Array.from({ length: N * k }, (_, i) => 200 + Math.floor(i / k)));
    for (let p = 0; p < N; p++) {
      const s = many.slice(p * k, (p + 1) * k).map((r) => r.score!);
      expect(s).toEqual([...s].sort((a, b) => b - a));
    }
    const { candidate_rank: _, ...best } = many[0]!;
    expect(many.filter((r) => r.candidate_rank === 0).map(({ candidate_rank: _r, ...rest }) => rest)).toEqual(one);
    expect(best).toEqual(one[0]);
  });

  it('sample: k rows per prompt with ranks 0..k-1, the same on a rerun', async () => {
    const k = 3;
    const opts = { strategy: 'sample' as const, seed: 5, numReturnSequences: k };
    await generateCorpus({ ...childOptions(prompts, join(tmp, 's1')), ...opts });
    await generateCorpus({ ...childOptions(prompts, join(tmp, 's2')), ...opts });
    const a = rowsOf(join(tmp, 's1'));
    expect(a.length).toBe(N * k);
    expect(a.map((r) => r.candidate_rank)).toEqual(Array.from({ length: N * k }, (_, i) => i % k));
    expect(rowsOf(join(tmp, 's2'))).toEqual(a);
  });

  it('a bad numReturnSequences is refused by name before anything is written', async () => {
    const cases: [Record<string, unknown>, RegExp, RegExp][] = [
      [{ numReturnSequences: 0 }, /^numReturnSequences 0: /, /^collapse: --num-return-sequences 0: /],
      [{ numReturnSequences: 4 }, /^numReturnSequences 4: must be at most numBeams with beam search/, /^collapse: --num-return-sequences 4: must be at most --num-beams with beam search/],
      [{ numReturnSequences: 1.5 }, /^numReturnSequences 1.5: /, /^collapse: --num-return-sequences 1.5: /],
      [{ numReturnSequences: 2, strategy: 'greedy' }, /^numReturnSequences 2: must be 1 with greedy decoding/, /--num-return-sequences 2: must be 1 with greedy/],
    ];
    for (const [opts, lib, cli] of cases) {
      const out = join(tmp, 'bad');
      const e = await generateCorpus({ ...childOptions(prompts, out), ...opts }).catch((x: Error) => x);
      expect((e as Error).message).toMatch(lib);
      expect(describeError(e)).toMatch(cli);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('collapse generate --num-return-sequences', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'gen-candidates-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const cli = async (...args: string[]): Promise<{ code: number; stderr: string }> => {
    let stderr = '';
    const code = await runCli(args, { stderr: (s) => (stderr += s), stdout: () => {} });
    return { code, stderr };
  };

  it('refuses 0, a non-integer and more than --num-beams, naming the flag', async () => {
    const model = join(tmp, 'model');
    expect((await cli('model', 'init', '--config', 'tiny', '--seed', '0', '--out', model)).code).toBe(0);
    const prompts = join(tmp, 'prompts');
    writeCorpus(prompts, [{ block_id: 0, input_ids: Int32Array.from([2, 5, 6, 7]), text: '', origin: 'original', generation: 0, prompt_block_id: null, score: null }], { blockSize: 4 });
    const out = join(tmp, 'out');
    const generate = (...extra: string[]) => cli('generate', '--model', model, '--prompts', prompts, '--out', out, '--new-tokens', '2', '--threads', '1', ...extra);
    const cases: [string[], RegExp][] = [
      [['--num-return-sequences', '0'], /^collapse: --num-return-sequences 0: expected an integer >= 1/m],
      [['--num-return-sequences', '2.5'], /^collapse: --num-return-sequences 2.5: expected an integer/m],
      [['--num-beams', '3', '--num-return-sequences', '4'], /^collapse: --num-return-sequences 4: must be at most --num-beams with beam search/m],
      [['--strategy', 'greedy', '--num-return-sequences', '2'], /^collapse: --num-return-sequences 2: must be 1 with greedy decoding/m],
    ];
    for (const [flags, message] of cases) {
      const r = await generate(...flags);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/    at /); // no stack
      expect(existsSync(out)).toBe(false);
    }
    const ok = await generate('--num-beams', '3', '--num-return-sequences', '3');
    expect(ok.code, ok.stderr).toBe(0);
    expect([...readCorpus(out).rowsIter()].map((r) => r.candidate_rank)).toEqual([0, 1, 2]);
  });
});
