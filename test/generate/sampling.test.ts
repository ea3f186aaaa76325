// Greedy and sampling decoding, and the logits helpers, against plain references written here.
import { describe, expect, it } from 'vitest';
import { i64 } from '../../models/session.js';
import { Rng } from '../../util/rng.js';
import { openDecoder, permuteRowsInPlace } from '../../pipeline/generate/decoder/index.js';
import { bannedNgramTokens, TopK, warpedProbabilities } from '../../pipeline/generate/logits.js';
import { sampleSearch } from '../../pipeline/generate/sampling.js';
import { EOS, PAD, PROMPTS, sessionForTests, tinyModels } from './fixtures.js';

describe('greedy and sampling on the tiny OPT', () => {
  const models = tinyModels();
  const session = sessionForTests(models.noPast);

  it('greedy equals a recompute-everything argmax loop (repetition penalty on raw logits, min-new-tokens)', async () => {
    const maxNew = 10;
    const minNew = 3;
    const penalty = 1.5;
    const L = Math.max(...PROMPTS.map((p) => p.length));
    const want: number[][] = [];
    for (const p of PROMPTS) {
      const ids = [...new Array<number>(L - p.length).fill(PAD), ...p];
      const mask = [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)];
      const gen: number[] = [];
      for (let t = 0; t < maxNew; t++) {
        const out = await session().run({ input_ids: i64(ids, [1, ids.length]), attention_mask: i64(mask, [1, mask.length]) });
        const V = out.logits!.dims[2]!;
        const row = Array.from((out.logits!.data as Float32Array).slice((ids.length - 1) * V));
        for (const id of new Set(ids)) row[id] = row[id]! < 0 ? row[id]! * penalty : row[id]! / penalty;
        if (t < minNew) row[EOS] = -Infinity;
        const tok = row.indexOf(Math.max(...row));
        gen.push(tok);
        ids.push(tok);
        mask.push(1);
        if (tok === EOS) break;
      }
      while (gen.length < maxNew) gen.push(PAD);
      want.push(gen);
    }
    const dec = await openDecoder(models.withPast, { threads: 1 });
    const got = await sampleSearch(dec, PROMPTS, { doSample: false, maxNewTokens: maxNew, minNewTokens: minNew, repetitionPenalty: penalty, eosId: EOS, padId: PAD });
    await dec.release();
    expect(got.tokens.map((t) => [...t])).toEqual(want);
  });

  it('sampling is reproducible per (seed, key), independent of the batch, and top-k 1 is greedy', async () => {
    const dec = await openDecoder(models.withPast, { threads: 1 });
    const base = { doSample: true, maxNewTokens: 8, minNewTokens: 8, eosId: EOS, padId: PAD, seed: 7, temperature: 1.3 };
    const x = Int32Array.from([2, 60, 61, 62, 63]); // as long as PROMPTS[0]: no padding either way
    const a = await sampleSearch(dec, [PROMPTS[0]!, x], { ...base, keys: [10, 11] });
    const b = await sampleSearch(dec, [x], { ...base, keys: [11] });
    const c = await sampleSearch(dec, [PROMPTS[0]!, x], { ...base, keys: [10, 11], seed: 8 });
    const k1 = await sampleSearch(dec, PROMPTS, { ...base, topK: 1 });
    const greedy = await sampleSearch(dec, PROMPTS, { ...base, doSample: false });
    await dec.release();
    expect([...b.tokens[0]!]).toEqual([...a.tokens[1]!]);
    expect([...a.tokens[0]!]).not.toEqual([...c.tokens[0]!]);
    expect(k1.tokens.map((t) => [...t])).toEqual(greedy.tokens.map((t) => [...t]));
    const again = await (async () => {
      const d = await openDecoder(models.withPast, { threads: 1 });
      const r = await sampleSearch(d, [PROMPTS[0]!, x], { ...base, keys: [10, 11] });
      await d.release();
      return r;
    })();
    expect(again.tokens.map((t) => [...t])).toEqual(a.tokens.map((t) => [...t]));
  });

  it('sampled token frequencies follow the softmax (one step, 4000 draws)', async () => {
    // One prompt repeated: each copy gets its own stream (keys 0..n-1), one new token each.
    const n = 4000;
    const prompt = Int32Array.from([2, 50, 51]);
    const dec = await openDecoder(models.withPast, { threads: 1 });
    const res = await sampleSearch(dec, new Array<Int32Array>(n).fill(prompt), {
      doSample: true,
      maxNewTokens: 1,
      eosId: EOS,
      padId: PAD,
      topK: 3,
      seed: 1,
    });
    await dec.release();
    const out = await session().run({ input_ids: i64([...prompt], [1, 3]), attention_mask: i64([1, 1, 1], [1, 3]) });
    const V = out.logits!.dims[2]!;
    const row = Array.from((out.logits!.data as Float32Array).slice(2 * V));
    const top = row.map((x, v) => [x, v] as const).sort((x, y) => y[0] - x[0]).slice(0, 3);
    const z = top.reduce((s, [x]) => s + Math.exp(x), 0);
    for (const [x, v] of top) {
      const freq = res.tokens.filter((t) => t[0] === v).length / n;
      expect(Math.abs(freq - Math.exp(x) / z)).toBeLessThan(0.03);
    }
    expect(res.tokens.every((t) => top.some(([, v]) => v === t[0]))).toBe(true);
  });
});

describe('logits helpers', () => {
  it('TopK keeps the k largest in order, earlier index first on ties', () => {
    const rng = new Rng(3);
    const vals = Array.from({ length: 500 }, () => Math.round(rng.normal() * 20) / 4);
    const top = new TopK(10);
    vals.forEach((v, i) => top.push(v, i));
    const want = vals.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 10);
    expect([...top.indices]).toEqual(want.map((w) => w[1]));
  });

  it('bannedNgramTokens lists the tokens that would repeat an n-gram', () => {
    const ids = Int32Array.from([1, 2, 3, 1, 2, 4, 1, 2]);
    expect(bannedNgramTokens(ids, 3).sort()).toEqual([3, 4]);
    expect(bannedNgramTokens(Int32Array.from([5, 6, 5, 7, 5]), 2).sort()).toEqual([6, 7]);
    expect(bannedNgramTokens(Int32Array.from([5, 6]), 4)).toEqual([]);
  });

  it('top-p keeps the smallest head whose mass reaches p (HF rule), top-k keeps ties', () => {
    const logits = Float64Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const p = warpedProbabilities(logits, { topP: 0.75 });
    expect([...p].map((x) => +x.toFixed(6))).toEqual([0.625, 0.375, 0, 0]);
    const p2 = warpedProbabilities(logits, { topP: 0.9 }); // the tail 0.05 <= 1 - 0.9 goes, 0.05 + 0.15 does not
    expect(p2[3]).toBe(0);
    expect(p2[2]).toBeCloseTo(0.15 / 0.95, 12);
    const k = warpedProbabilities(Float64Array.from([1, 2, 2, 0]), { topK: 2 });
    expect(k[0]).toBe(0);
    expect(k[1]).toBeCloseTo(0.5, 12);
  });

  it('permuteRowsInPlace equals a gather through a copy (reorder, expand, shrink)', () => {
    const size = 5;
    const rng = new Rng(9);
    for (let trial = 0; trial < 30; trial++) {
      const rows = 2 + rng.int(6);
      const newRows = trial % 3 === 0 ? rows : trial % 3 === 1 ? rows * 3 : 1 + rng.int(rows);
      const data = new Float32Array(Math.max(rows, newRows) * size);
      for (let i = 0; i < rows * size; i++) data[i] = rng.normal();
      const from = Int32Array.from({ length: newRows }, () => rng.int(rows));
      const want = new Float32Array(newRows * size);
      for (let i = 0; i < newRows; i++) want.set(data.slice(from[i]! * size, (from[i]! + 1) * size), i * size);
      const scratch = trial % 3 === 0 ? undefined : new Float32Array(trial % 2 ? data.length : size); // none, ample, too small
      permuteRowsInPlace(data, size, from, scratch);
      expect([...data.subarray(0, newRows * size)]).toEqual([...want]);
    }
  });
});
