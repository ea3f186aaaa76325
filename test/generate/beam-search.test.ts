// Beam search against a brute-force reference written here, independently of pipeline/generate: no cache,
// every beam's whole (left-padded) sequence recomputed each step on the no-past graph, one row at a time,
// plain loops and a full sort of every (beam, token) candidate. HF 4.27-4.33 semantics (see beam-search.ts).
import { describe, expect, it } from 'vitest';
import type * as ort from 'onnxruntime-node';
import { i64 } from '../../models/session.js';
import { beamSearch, placeBeams, type BeamSearchOptions } from '../../pipeline/generate/beam-search.js';
import { openDecoder } from '../../pipeline/generate/decoder/index.js';
import { EOS, PAD, PROMPTS, sessionForTests, tinyModels } from './fixtures.js';

interface RefOptions {
  k: number;
  maxNew: number;
  minNew: number;
  penalty: number;
}

async function lastLogits(s: ort.InferenceSession, ids: number[], mask: number[]): Promise<number[]> {
  const out = await s.run({ input_ids: i64(ids, [1, ids.length]), attention_mask: i64(mask, [1, mask.length]) });
  const t = out.logits!;
  const V = t.dims[2]!;
  return Array.from((t.data as Float32Array).slice((ids.length - 1) * V, ids.length * V));
}

async function referenceBeamSearch(s: ort.InferenceSession, prompts: Int32Array[], o: RefOptions) {
  const L = Math.max(...prompts.map((p) => p.length));
  const results: { tokens: number[]; score: number; eosHyps: number; ranked: { tokens: number[]; score: number }[] }[] = [];
  for (const p of prompts) {
    const mask0 = [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)];
    const ids0 = [...new Array<number>(L - p.length).fill(PAD), ...p];
    let beams = Array.from({ length: o.k }, (_, b) => ({ ids: [...ids0], score: b === 0 ? 0 : -1e9 }));
    const hyps: { score: number; gen: number[]; order: number }[] = [];
    let order = 0;
    const addHyp = (gen: number[], sum: number, length: number) => {
      const score = sum / length;
      const worst = hyps.length ? Math.min(...hyps.map((h) => h.score)) : Infinity;
      if (hyps.length < o.k || score > worst) {
        hyps.push({ score, gen, order: order++ });
        if (hyps.length > o.k) {
          let w = 0;
          for (let i = 1; i < hyps.length; i++) if (hyps[i]!.score < hyps[w]!.score) w = i;
          hyps.splice(w, 1);
        }
      }
    };
    let eosHyps = 0;
    let done = false;
    let steps = 0;
    for (let step = 0; step < o.maxNew; step++) {
      const cands: { score: number; b: number; v: number }[] = [];
      for (let b = 0; b < o.k; b++) {
        const beam = beams[b]!;
        const logits = await lastLogits(s, beam.ids, [...mask0, ...new Array<number>(step).fill(1)]);
        const m = Math.max(...logits);
        const lse = m + Math.log(logits.reduce((a, x) => a + Math.exp(x - m), 0));
        const lp = logits.map((x) => x - lse);
        if (o.penalty !== 1) for (const id of new Set(beam.ids)) lp[id] = lp[id]! < 0 ? lp[id]! * o.penalty : lp[id]! / o.penalty;
        if (step < o.minNew) lp[EOS] = -Infinity;
        lp.forEach((x, v) => cands.push({ score: x + beam.score, b, v }));
      }
      cands.sort((x, y) => y.score - x.score || x.b - y.b || x.v - y.v);
      const next: typeof beams = [];
      for (let rank = 0; rank < 2 * o.k && next.length < o.k; rank++) {
        const c = cands[rank]!;
        const src = beams[c.b]!;
        if (c.v === EOS) {
          if (rank >= o.k) continue;
          addHyp(src.ids.slice(L), c.score, src.ids.length);
          eosHyps++;
        } else next.push({ ids: [...src.ids, c.v], score: c.score });
      }
      beams = next;
      steps = step + 1;
      if (hyps.length >= o.k && Math.min(...hyps.map((h) => h.score)) >= cands[0]!.score / (L + step)) {
        done = true;
        break;
      }
    }
    if (!done) for (const b of beams) addHyp(b.ids.slice(L), b.score, L + steps);
    // Every kept hypothesis, best first: Python's sorted(key=score) popped from the end, later ones first on ties.
    const ranked = [...hyps]
      .sort((a, b) => (a.score === b.score ? b.order - a.order : b.score - a.score))
      .map((h) => {
        const tokens = [...h.gen];
        if (tokens.length < o.maxNew) tokens.push(EOS);
        while (tokens.length < o.maxNew) tokens.push(PAD);
        return { tokens, score: h.score };
      });
    results.push({ ...ranked[0]!, eosHyps, ranked });
  }
  return results;
}

describe('beam search matches a brute-force HF reference on the tiny OPT', () => {
  const models = tinyModels();
  const session = sessionForTests(models.noPast);

  const cases: (RefOptions & { name: string; expectEos: boolean })[] = [
    { name: 'min = max, no penalty', k: 3, maxNew: 10, minNew: 10, penalty: 1, expectEos: false },
    { name: 'min = max, penalty 3', k: 3, maxNew: 10, minNew: 10, penalty: 3, expectEos: false },
    { name: 'min < max, penalty 2 (EOS finishes hypotheses)', k: 3, maxNew: 12, minNew: 2, penalty: 2, expectEos: true },
    { name: 'min 0, no penalty, 4 beams', k: 4, maxNew: 8, minNew: 0, penalty: 1, expectEos: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const want = await referenceBeamSearch(session(), PROMPTS, c);
      const opts: BeamSearchOptions = {
        numBeams: c.k,
        maxNewTokens: c.maxNew,
        minNewTokens: c.minNew,
        repetitionPenalty: c.penalty,
        eosId: EOS,
        padId: PAD,
      };
      // KV cache, recomputation, the KV cache with the LM head split into vocabulary slices (splitLmHead) and the
      // shared-prompt cache, each returning whole logits or a beam shortlist (withBeamShortlist); shortlists give
      // the very same scores.
      const whole = new Map<string, number[]>();
      for (const graph of ['withPast', 'noPast', 'split', 'sharedPrompt'] as const) {
        for (const shortlist of [false, true]) {
          const model = graph === 'split' ? models.withPast : models[graph];
          const dec = await openDecoder(model, { threads: 1, lmHeadColumns: graph === 'split' ? 61 : undefined, shortlist });
          expect(dec.shortlist).toBe(shortlist);
          const got = await beamSearch(dec, PROMPTS, opts);
          await dec.release();
          if (!shortlist) whole.set(graph, got.scores);
          else expect(got.scores).toEqual(whole.get(graph));
          expect(got.tokens.map((t) => [...t])).toEqual(want.map((w) => w.tokens));
          got.scores.forEach((s, i) => expect(s).toBeCloseTo(want[i]!.score, 4));
          const eosHyps = want.reduce((a, w) => a + w.eosHyps, 0);
          expect(got.finishedByEos).toBe(eosHyps);
          if (c.expectEos) expect(eosHyps).toBeGreaterThan(0);
          else expect(got.tokens.every((t) => !t.includes(EOS))).toBe(true);
        }
      }
    });
  }

  it('numReturnSequences returns every kept hypothesis best first, EOS-finished and running alike', async () => {
    for (const c of cases.filter((x) => x.expectEos)) {
      const want = await referenceBeamSearch(session(), PROMPTS, c);
      const dec = await openDecoder(models.withPast, { threads: 1, shortlist: true });
      const got = await beamSearch(dec, PROMPTS, { numBeams: c.k, maxNewTokens: c.maxNew, minNewTokens: c.minNew, repetitionPenalty: c.penalty, eosId: EOS, padId: PAD, numReturnSequences: c.k });
      await dec.release();
      const flat = want.flatMap((w) => w.ranked);
      expect(got.tokens.map((t) => [...t])).toEqual(flat.map((h) => h.tokens));
      got.scores.forEach((s, i) => expect(s).toBeCloseTo(flat[i]!.score, 4));
      expect(flat.some((h) => h.tokens.includes(EOS)) && flat.some((h) => !h.tokens.includes(EOS))).toBe(true); // lengths differ
    }
  });

  it('placeBeams keeps a parent\'s row for its first child and gives forks the rows of ended beams', () => {
    // Parents at rows 2, 2, 0, 4, 1: row 3's beam ended, so the second child of row 2 goes there.
    expect([...placeBeams([2, 2, 0, 4, 1])]).toEqual([2, 3, 0, 4, 1]);
    expect([...placeBeams([0, 0, 0])]).toEqual([0, 1, 2]);
    expect([...placeBeams([1, 0])]).toEqual([1, 0]); // a swap moves nothing
  });

  it('a prompt gives the same result alone as in a batch of equal-length prompts', async () => {
    const opts: BeamSearchOptions = { numBeams: 3, maxNewTokens: 6, minNewTokens: 6, eosId: EOS, padId: PAD, repetitionPenalty: 2 };
    const a = Int32Array.from([5, 6, 7, 8, 9]);
    const b = Int32Array.from([50, 60, 70, 80, 90]);
    const dec = await openDecoder(models.withPast, { threads: 1 });
    const batch = await beamSearch(dec, [a, b], opts);
    const alone = await beamSearch(dec, [b], opts);
    await dec.release();
    expect([...alone.tokens[0]!]).toEqual([...batch.tokens[1]!]);
    expect(alone.scores[0]!).toBeCloseTo(batch.scores[1]!, 5);
  });
});
