// Beam shortlist (DecoderOptions.shortlist) against whole logits on rows made to be hard: few distinct values
// (ties everywhere), -inf logits, vocabularies of 6-25 tokens, every processor. A fake decoder gives each
// history a deterministic row; its shortlist comes from a naive TopK written here (full sort, ties to the lower
// id, excluded ids at -inf), so beam search's candidate path is checked against its whole-row scan exactly.
import { describe, expect, it } from 'vitest';
import { beamSearch, type BeamSearchOptions, type GenerationResult } from '../../pipeline/generate/beam-search.js';
import type { Decoder, ShortlistRequest, Logits } from '../../pipeline/generate/decoder/index.js';
import { logSumExp } from '../../pipeline/generate/logits.js';

function rowOf(history: number[], V: number, seed: number, negInf: boolean): Float32Array {
  let x = seed;
  for (const t of history) x = (Math.imul(x ^ t, 0x9e3779b1) + 0x7f4a7c15) >>> 0;
  const out = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    let y = Math.imul(x ^ (v * 7919), 0x85ebca6b) >>> 0;
    y ^= y >>> 13;
    y = Math.imul(y, 0xc2b2ae35) >>> 0;
    y ^= y >>> 16;
    out[v] = negInf && y % 3 === 0 ? -Infinity : (y % 4) * 0.5;
  }
  return out;
}

function fakeDecoder(V: number, shortlist: boolean, seed: number, negInf: boolean): Decoder {
  let rows: number[][] = [];
  const answer = (histories: number[][], ex?: ShortlistRequest): Logits => {
    const data = new Float32Array(histories.length * V);
    histories.forEach((h, r) => data.set(rowOf(h, V, seed, negInf), r * V));
    const logSumExps = Float32Array.from(histories, (_, r) => logSumExp(data, r * V, V));
    if (!shortlist) return { data, rows: histories.length, vocab: V, logSumExp: logSumExps };
    const K = Math.min(ex!.k, V);
    const values = new Float32Array(histories.length * K);
    const indices = new Int32Array(histories.length * K);
    const excludedLogits = new Float32Array(histories.length * ex!.width);
    histories.forEach((_, r) => {
      const row = Array.from(data.subarray(r * V, (r + 1) * V));
      const ids = Array.from(ex!.ids.subarray(r * ex!.width, (r + 1) * ex!.width));
      ids.forEach((v, j) => (excludedLogits[r * ex!.width + j] = row[v]!));
      const ranked = row
        .map((x, v) => ({ x: ids.includes(v) ? -Infinity : x, v }))
        .sort((a, b) => (b.x > a.x ? 1 : b.x < a.x ? -1 : a.v - b.v))
        .slice(0, K);
      ranked.forEach((c, j) => ((values[r * K + j] = c.x), (indices[r * K + j] = c.v)));
    });
    return { data: new Float32Array(0), rows: histories.length, vocab: V, logSumExp: logSumExps, shortlist: { k: K, values, indices, excluded: ex!, excludedLogits } };
  };
  return {
    get rows() {
      return rows.length;
    },
    shortlist,
    async prefill(prompts, padId, copies = 1, ex) {
      const len = Math.max(...prompts.map((p) => p.length));
      const padded = prompts.map((p) => [...new Array<number>(len - p.length).fill(padId), ...p]);
      rows = padded.flatMap((b) => Array.from({ length: copies }, () => [...b]));
      return answer(padded, ex);
    },
    select(from) {
      rows = Array.from(from, (f) => [...rows[f]!]);
    },
    async step(tokens, ex) {
      rows.forEach((r, i) => r.push(tokens[i]!));
      return answer(rows, ex);
    },
    async release() {},
  };
}

const outcome = async (d: Decoder, prompts: Int32Array[], opts: BeamSearchOptions): Promise<GenerationResult | string> => {
  try {
    return await beamSearch(d, prompts, opts);
  } catch (e) {
    return (e as Error).message;
  }
};

describe('beam shortlist', () => {
  for (const negInf of [false, true]) {
    it(`equal the whole-row scan on tied${negInf ? ' and -inf' : ''} logits of tiny vocabularies, every processor`, async () => {
      let finished = 0;
      for (let seed = 1; seed < 300; seed++) {
        const V = 6 + (seed % 20);
        const opts: BeamSearchOptions = {
          numBeams: 1 + (seed % 5),
          maxNewTokens: 3 + (seed % 9),
          minNewTokens: seed % 4,
          eosId: 2,
          padId: 1,
          repetitionPenalty: seed % 2 ? 1.5 : 1,
          noRepeatNgramSize: seed % 5 === 0 ? 0 : 1 + (seed % 3),
        };
        const prompts = [Int32Array.from([3, 4, 5].map((x) => x % V)), Int32Array.from([0, 0]), Int32Array.from([5 % V, 0, 3 % V, 2])];
        const whole = await outcome(fakeDecoder(V, false, seed, negInf), prompts, opts);
        const shortlist = await outcome(fakeDecoder(V, true, seed, negInf), prompts, opts);
        expect(shortlist, `seed ${seed}`).toEqual(whole);
        if (typeof whole !== 'string') finished += whole.finishedByEos > 0 ? 1 : 0;
      }
      expect(finished).toBeGreaterThan(10); // EOS finishes hypotheses in many of the cases
    });
  }
});
