// rep-n, distinct-n and BLEU on hand-made texts, against values computed by hand (in the comments).
import { describe, expect, it } from 'vitest';
import { distinctN, repN, repNOfSequence, selfBleu, sentenceBleu, textMetrics } from '../../pipeline/eval/text-metrics.js';

/** Word-level ids for hand-made texts. */
function tokenize(texts: string[]): number[][] {
  const vocab = new Map<string, number>();
  return texts.map((t) => t.split(' ').map((w) => vocab.get(w) ?? (vocab.set(w, vocab.size), vocab.size - 1)));
}

describe('rep-n and distinct-n', () => {
  it('one sentence: "the cat sat on the mat the cat sat"', () => {
    const [s] = tokenize(['the cat sat on the mat the cat sat']);
    // bigrams: 8, unique 6 (the-cat, cat-sat repeat) -> 100 x (1 - 6/8) = 25
    expect(repNOfSequence(s!, 2)).toBeCloseTo(25, 10);
    // trigrams: 7, unique 6 (the-cat-sat repeats) -> 100/7
    expect(repNOfSequence(s!, 3)).toBeCloseTo(100 / 7, 10);
    // 4-grams: 6, all unique -> 0
    expect(repNOfSequence(s!, 4)).toBe(0);
    expect(repNOfSequence(s!.slice(0, 3), 4)).toBeNull();
  });

  it('a corpus of two sequences: rep-n is averaged over sequences, distinct-n is pooled', () => {
    const seqs = [[1, 2, 1, 2, 1], [3, 4, 5]];
    // A: bigrams 4 / unique 2 -> 50; B: 0 -> mean 25
    expect(repN(seqs, 2)).toBeCloseTo(25, 10);
    // A: trigrams 3 / unique 2 -> 33.33; B: 1 / 1 -> 0 -> mean 16.67
    expect(repN(seqs, 3)).toBeCloseTo(100 / 6, 10);
    // A: 4-grams 2 / unique 2 -> 0; B has none and is skipped
    expect(repN(seqs, 4)).toBe(0);
    // unigrams 8, distinct {1,2,3,4,5}; bigrams 6, distinct 4; trigrams 4, distinct 3
    expect(distinctN(seqs, 1)).toBeCloseTo(5 / 8, 12);
    expect(distinctN(seqs, 2)).toBeCloseTo(4 / 6, 12);
    expect(distinctN(seqs, 3)).toBeCloseTo(3 / 4, 12);
    expect(distinctN([], 2)).toBe(0);
  });

  it('a degenerate, fully repetitive text has rep-2 near 100 and distinct-2 near 0', () => {
    const loop = Array.from({ length: 64 }, () => 7);
    const m = textMetrics([loop, loop]);
    expect(m.rep2).toBeCloseTo(100 * (1 - 1 / 63), 10);
    expect(m.distinct2).toBeCloseTo(1 / 126, 12);
    expect(m.self_bleu).toBeCloseTo(1, 12);
  });
});

describe('BLEU', () => {
  it('"the cat sat on the mat" against "the cat is on the mat"', () => {
    const [hyp, ref] = tokenize(['the cat sat on the mat', 'the cat is on the mat']);
    // p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0 matches of 3 -> smoothed 0.1/3; equal lengths -> BP = 1
    const want = Math.pow((5 / 6) * (3 / 5) * (1 / 4) * (0.1 / 3), 1 / 4);
    expect(sentenceBleu(hyp!, [ref!])).toBeCloseTo(want, 12);
    expect(want).toBeCloseTo(0.25407, 4);
  });

  it('clips counts by the most generous reference (Papineni et al. 2002, "the the the ...")', () => {
    const [hyp, r1, r2] = tokenize(['the the the the the the the', 'the cat is on the mat', 'there is a cat on the mat']);
    // "the" occurs at most twice in one reference -> p1 = 2/7; closest reference length 7 -> BP = 1
    expect(sentenceBleu(hyp!, [r1!, r2!], 1)).toBeCloseTo(2 / 7, 12);
  });

  it('applies the brevity penalty to a short hypothesis', () => {
    const [hyp, ref] = tokenize(['the cat', 'the cat sat on the mat']);
    // p1 = 1, p2 = 1, p3 and p4 have no n-gram -> 0.1/1 each; BP = exp(1 - 6/2)
    expect(sentenceBleu(hyp!, [ref!])).toBeCloseTo(Math.exp(-2) * Math.pow(0.01, 1 / 4), 12);
  });

  it('is 0 with no unigram match', () => {
    expect(sentenceBleu([1, 2, 3, 4], [[5, 6, 7, 8]])).toBe(0);
  });

  it('self-BLEU of two sequences is the mean of each scored against the other; seeded subsample is deterministic', () => {
    const [a, b] = tokenize(['the cat sat on the mat', 'the cat is on the mat']);
    expect(selfBleu([a!, b!])).toBeCloseTo((sentenceBleu(a!, [b!]) + sentenceBleu(b!, [a!])) / 2, 12);
    const many = Array.from({ length: 30 }, (_, i) => [i % 5, (i * 3) % 7, i % 2, (i * 5) % 11, 1, 2]);
    const s1 = selfBleu(many, { samples: 10, seed: 4 });
    expect(selfBleu(many, { samples: 10, seed: 4 })).toBe(s1);
    expect(s1).toBeGreaterThan(0);
    expect(s1).toBeLessThan(1);
    expect(selfBleu([a!])).toBeNull();
  });
});
