import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.js';
import { SyntheticSource, type SyntheticDomain } from '../../datasets/synthetic.js';

// A source small enough to enumerate: 5 words in 2 classes, 3 topics.
const SMALL = {
  vocabSize: 5,
  classSizes: [2, 3],
  functionClasses: 1,
  topics: 3,
  topicWordsPerClass: 1,
  recurClass: 1,
  recurRate: 0.5,
  recurMemory: 2,
  pEnd: 0.4,
  sentencesPerRow: 1,
  taskTopicWeights: [0.5, 0.3, 0.2],
  pretrainTopicWeights: [0.2, 0.2, 0.6],
  seed: 3,
};

// The same with a task "format": nearly fixed function words in the task, any of them in pretraining.
const FORMAT = { ...SMALL, functionZipf: 4, pretrainFunctionZipf: 0 };
// Content words that mostly follow a seeded cycle (successorRate), with recurring entities too.
const SUCCESSOR = { ...SMALL, successorRate: 0.6 };
// Sentences of exactly 2 content words, with successors.
const SENTENCES = { ...SUCCESSOR, sentenceWords: 2 };
const SOURCES = [['plain', SMALL], ['format', FORMAT], ['successor', SUCCESSOR], ['sentence length', SENTENCES]] as const;

const tokensOf = (src: SyntheticSource, ids: number[]) => ids.map((i) => (i < 0 ? '.' : src.words[i]!));

/**
 * The probability of a row prefix by brute force: sum over topics of the prior times the product of the
 * token probabilities, the recurring words tracked by hand (an independent path to the forward algorithm).
 */
function naiveProb(src: SyntheticSource, ids: number[], domain: SyntheticDomain): number {
  let total = 0;
  for (let t = 0; t < src.topics; t++) {
    let p = src.topicWeights[domain][t]!;
    let prev = -1;
    let last = -1;
    let count = 0; // content words in the current sentence
    let recent: number[] = [];
    for (const id of ids) {
      p *= src.tokenProbability(prev, id, t, domain, recent, last, count);
      if (id >= 0 && src.wordClass[id] === src.cfg.recurClass) recent = [id, ...recent.filter((x) => x !== id)];
      if (id >= 0 && src.wordClass[id]! >= src.cfg.functionClasses) {
        last = id;
        count++;
      }
      if (id < 0) count = 0;
      prev = id;
    }
    total += p;
  }
  return total;
}

describe('synthetic source', () => {
  it.each(SOURCES)('every next-token distribution sums to 1, with and without recurring words (%s)', (_, cfg) => {
    const src = new SyntheticSource(cfg);
    for (const domain of ['task', 'pretrain'] as const)
      for (let t = 0; t < src.topics; t++)
        for (const seen of [[], [2], [2, 4], [4, 3, 2]])
          for (let prev = -1; prev < 5; prev++)
            for (const last of [-1, 2, 3, 4])
              for (const count of [0, 1, 2]) {
                let sum = 0;
                for (let next = -1; next < 5; next++) sum += src.tokenProbability(prev, next, t, domain, seen, last, count);
                expect(sum).toBeCloseTo(1, 12);
              }
  });

  it.each(SOURCES)('the forward algorithm gives the brute-force probability of every 4-token prefix, and they sum to 1 (%s)', (_, cfg) => {
    const src = new SyntheticSource(cfg);
    for (const domain of ['task', 'pretrain'] as const) {
      let total = 0;
      const all: number[][] = [[]];
      for (let len = 0; len < 4; len++) {
        const next: number[][] = [];
        for (const s of all.splice(0)) for (let v = -1; v < 5; v++) next.push([...s, v]);
        all.push(...next);
      }
      for (const ids of all) {
        const p = naiveProb(src, ids, domain);
        total += p;
        const lp = src.tokenLogProbs(tokensOf(src, ids), { domain });
        if (p === 0) expect(lp).toBeNull();
        else expect(Array.from(lp!).reduce((a, b) => a + b, 0)).toBeCloseTo(Math.log(p), 10);
      }
      expect(total).toBeCloseTo(1, 12);
    }
  });

  it.each([...SOURCES.map(([n, c]) => [n, 'task', c] as const), ['format', 'pretrain', FORMAT] as const])('samples with the frequencies its probabilities give (%s, %s)', (_, domain, cfg) => {
    const src = new SyntheticSource({ ...cfg, sentencesPerRow: 2 });
    const rng = new Rng(123);
    const N = 40_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const k = src.sampleRow(rng, domain).text.split(' ').slice(0, 3).join(' ');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const [k, c] of counts) {
      const ids = k.split(' ').map((w) => src.tokenId(w)!);
      const p = naiveProb(src, ids, domain);
      const f = c / N;
      expect(Math.abs(f - p), k).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N) + 1e-4);
    }
  });

  it('is seeded; a row keeps its topic and reuses its entities; the pretraining domain scores the task worse', () => {
    const src = new SyntheticSource();
    expect(src.sample(5, 3)).toEqual(new SyntheticSource().sample(5, 3));
    expect(src.sample(5, 3)).not.toEqual(src.sample(5, 4));
    const rows = src.sample(300, 1);
    let repeats = 0;
    for (const r of rows) {
      expect(r.endsWith(' .\n')).toBe(true);
      expect(SyntheticSource.countSentences(r)).toBe(src.cfg.sentencesPerRow);
      expect(Number.isFinite(src.logProb(r))).toBe(true);
      const ents = r.split(/\s+/).filter((w) => src.wordId(w) !== undefined && src.wordClass[src.wordId(w)!] === src.cfg.recurClass);
      repeats += ents.length - new Set(ents).size;
    }
    expect(repeats / rows.length).toBeGreaterThan(2); // entities recur within a row
    // Per-token perplexity of the task under the truth is in the tens; under the pretraining domain higher.
    const tokens = rows.reduce((a, r) => a + r.trim().split(' ').length, 0);
    const ppl = (d: SyntheticDomain) => Math.exp(-rows.reduce((a, r) => a + src.logProb(r, d), 0) / tokens);
    expect(ppl('task')).toBeGreaterThan(10);
    expect(ppl('task')).toBeLessThan(100);
    expect(ppl('pretrain')).toBeGreaterThan(1.2 * ppl('task'));
    expect(src.logProb('notaword .')).toBe(-Infinity);
    expect(src.logProb(`${src.words[30]}`)).toBe(-Infinity); // no end of sentence
    expect(src.logProb(' . ')).toBe(-Infinity); // empty sentence
  });

  it('successors: a content word follows the previous one\'s place in its class\'s cycle; rate 0 is the source without them', () => {
    const src = new SyntheticSource({ ...SMALL, recurClass: -1, successorRate: 1 });
    const content = src.words.map((_, v) => v).filter((v) => src.isContentId(v));
    // With rate 1 every content word after the first is its predecessor's successor: the cycle through all 3.
    const order = [content[0]!];
    for (let k = 0; k < 3; k++) order.push(src.successor(order.at(-1)!, 1));
    expect(new Set(order.slice(0, 3)).size).toBe(3);
    expect(order[3]).toBe(order[0]);
    for (const row of src.sample(200, 4)) {
      const ids = row.trim().split(' ').map((w) => src.tokenId(w)!).filter((id) => src.isContentId(id));
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(src.successor(ids[i - 1]!, 1));
    }
    // The probability of a content word after content word u: rate x [successor] + (1 - rate) x the fresh draw.
    const half = new SyntheticSource({ ...SMALL, recurClass: -1, successorRate: 0.5 });
    const plain = new SyntheticSource({ ...SMALL, recurClass: -1 });
    const u = content[0]!;
    const toClass = content.reduce((a, w) => a + plain.tokenProbability(u, w, 1, 'task'), 0); // P(next is content | u)
    for (const v of content) {
      const fresh = plain.tokenProbability(u, v, 1, 'task');
      const expected = 0.5 * fresh + (v === half.successor(u, 1) ? 0.5 * toClass : 0);
      expect(half.tokenProbability(u, v, 1, 'task', [], u)).toBeCloseTo(expected, 12);
    }
    expect(new SyntheticSource({ successorRate: 0 }).sample(3, 7)).toEqual(new SyntheticSource().sample(3, 7));
  });

  it('sentenceWords: every sentence ends right after its n-th content word', () => {
    const src = new SyntheticSource({ ...SMALL, sentenceWords: 3, sentencesPerRow: 4 });
    for (const row of src.sample(300, 6)) {
      expect(Number.isFinite(src.logProb(row))).toBe(true);
      for (const sentence of row.trim().split(' . ')) {
        const words = sentence.replace(/ \.$/, '').split(' ');
        expect(words.filter((w) => src.isContentId(src.wordId(w)!)).length).toBe(3);
        expect(src.isContentId(src.wordId(words.at(-1)!)!)).toBe(true);
      }
    }
    // Ending early or running on is impossible.
    const [c] = src.words.map((_, v) => v).filter((v) => src.isContentId(v)) as [number];
    expect(src.tokenProbability(c, -1, 0, 'task', [], c, 2)).toBe(0);
    expect(src.tokenProbability(c, -1, 0, 'task', [], c, 3)).toBe(1);
    expect(new SyntheticSource({ sentenceWords: 0 }).sample(3, 7)).toEqual(new SyntheticSource().sample(3, 7));
  });

  it('tokenMass: each token\'s frequency at a random position, exact with successors and fixed sentence lengths', () => {
    // A recited language like tiny-recite's: four content words to a sentence, 95% of them successors.
    const recite = { classSizes: [100, 80, 120, 90, 70, 47], seed: 21, grammarPeak: 8, sentencesPerRow: 12, functionZipf: 12, recurClass: -1, successorRate: 0.95, sentenceWords: 4 };
    const frequencies = (src: SyntheticSource, domain: SyntheticDomain = 'task'): Float64Array => {
      const V = src.cfg.vocabSize;
      const f = new Float64Array(V + 1);
      let n = 0;
      for (const row of src.sample(3000, 99, domain)) for (const t of row.trim().split(' ')) {
        const id = src.tokenId(t)!;
        f[id === -1 ? V : id]!++;
        n++;
      }
      return f.map((x) => x / n);
    };
    const tv = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((d, x, i) => d + Math.abs(x - b[i]!), 0) / 2;
    // The last class absorbs the words the sizes leave (here 127 words, not 20): its cycle is as long as the class.
    const uneven = { ...recite, classSizes: [100, 80, 120, 50, 30, 20] };
    for (const cfg of [recite, { ...recite, sentenceWords: 0 }, { ...recite, successorRate: 0 }, uneven]) {
      const src = new SyntheticSource(cfg);
      const mass = src.tokenMass('task');
      expect(mass.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      // 3000 sampled rows (~300k tokens) agree up to sampling noise; the class chain's stationary distribution
      // times the emissions (the formula without these options) does not.
      const seen = frequencies(src);
      const formula = new SyntheticSource({ ...cfg, successorRate: 0, sentenceWords: 0 }).tokenMass('task');
      expect(tv(mass, seen)).toBeLessThan(0.012);
      expect(tv(formula, seen)).toBeGreaterThan(0.05);
      if (cfg.sentenceWords > 0) {
        // Every sentence has exactly four content words and one ".".
        const content = Array.from(mass).reduce((a, x, v) => a + (v < src.cfg.vocabSize && src.isContentId(v) ? x : 0), 0);
        expect(content / mass[src.cfg.vocabSize]!).toBeCloseTo(4, 9);
      }
    }
    // The pretraining domain (its own grammar and function words) likewise.
    const shifted = new SyntheticSource({ ...recite, domainShift: 1, pretrainFunctionZipf: 0 });
    expect(tv(shifted.tokenMass('pretrain'), frequencies(shifted, 'pretrain'))).toBeLessThan(0.012);
    // Without either option the walk over a row and the stationary formula are two computations of one value.
    const plain = new SyntheticSource();
    const walked = plain.rowTokenMass('task');
    plain.tokenMass('task').forEach((x, i) => expect(Math.abs(x - walked[i]!)).toBeLessThan(1e-12));
  });

  it('a task format: the function words\' exponents shape their emissions in each domain, and nothing else changes', () => {
    const plain = new SyntheticSource(SMALL);
    const fmt = new SyntheticSource(FORMAT);
    const fn = plain.words.map((_, v) => v).filter((v) => plain.wordClass[v]! < SMALL.functionClasses);
    const content = plain.words.map((_, v) => v).filter((v) => plain.wordClass[v]! >= SMALL.functionClasses);
    // Pretraining with exponent 0: the class's words are equally likely up to their noise, so the ratio of two
    // words' probabilities is the ratio of their noise, while the task with exponent 4 favours rank 1 by 2^4.
    const [a, b] = [fn[0]!, fn[1]!];
    // Two words of one class after the same token: their probabilities' ratio is their emissions' ratio.
    const ratio = (src: SyntheticSource, d: SyntheticDomain) => src.tokenProbability(-1, a, 0, d) / src.tokenProbability(-1, b, 0, d);
    expect(ratio(fmt, 'task') / ratio(fmt, 'pretrain')).toBeCloseTo(2 ** 4, 8);
    expect(ratio(plain, 'task') / ratio(plain, 'pretrain')).toBeCloseTo(1, 12);
    // Content words are the same in both sources and domains (the rng stream is not touched).
    for (const v of content) for (const d of ['task', 'pretrain'] as const) expect(fmt.tokenProbability(-1, v, 1, d)).toBe(plain.tokenProbability(-1, v, 1, d));
  });
});
