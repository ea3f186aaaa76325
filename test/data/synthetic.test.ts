import { describe, expect, it } from 'vitest';
import { Rng } from '../../models/util/rng.js';
import { SyntheticSource } from '../../datasets/synthetic.js';

/** Every sentence of 1..maxLen words over V words, as word-index arrays. */
function allSentences(V: number, maxLen: number): number[][] {
  const out: number[][] = [];
  let layer: number[][] = [[]];
  for (let len = 1; len <= maxLen; len++) {
    layer = layer.flatMap((s) => Array.from({ length: V }, (_, w) => [...s, w]));
    out.push(...layer);
  }
  return out;
}

describe('synthetic source', () => {
  it('log-probabilities of all texts sum to 1 on an enumerable configuration', () => {
    for (const cfg of [
      { vocabSize: 3, maxLen: 4, pEnd: 0.3, seed: 1 },
      { vocabSize: 5, maxLen: 3, pEnd: 0.05, seed: 9, zipf: 2 },
    ]) {
      const src = new SyntheticSource({ ...cfg, sentencesPerRow: 1 });
      const sentences = allSentences(cfg.vocabSize, cfg.maxLen);
      // Through the text path, so rendering and parsing are covered too.
      const total = sentences.reduce((s, w) => s + Math.exp(src.logProb(src.renderSentence(w))), 0);
      expect(total).toBeCloseTo(1, 12);
      // Two-sentence rows: a product distribution, also summing to 1.
      const pairs = sentences.slice(0, 40).flatMap((a) => sentences.map((b) => [a, b] as const));
      const massOfFirst40 = sentences.slice(0, 40).reduce((s, w) => s + Math.exp(src.sentenceLogProb(w)), 0);
      const pairTotal = pairs.reduce((s, [a, b]) => s + Math.exp(src.logProb(`${src.renderSentence(a)} ${src.renderSentence(b)}`)), 0);
      expect(pairTotal).toBeCloseTo(massOfFirst40, 12);
    }
  });

  it('samples with the frequencies its log-probabilities give', () => {
    const src = new SyntheticSource({ vocabSize: 3, maxLen: 2, pEnd: 0.5, sentencesPerRow: 1, seed: 4 });
    const rng = new Rng(123);
    const counts = new Map<string, number>();
    const N = 60_000;
    for (let i = 0; i < N; i++) {
      const k = src.sampleSentence(rng).join(',');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const sentences = allSentences(3, 2);
    expect(counts.size).toBeLessThanOrEqual(sentences.length);
    for (const s of sentences) {
      const p = Math.exp(src.sentenceLogProb(s));
      const f = (counts.get(s.join(',')) ?? 0) / N;
      expect(Math.abs(f - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N) + 1e-4);
    }
  });

  it('is seeded, heavy-tailed, and scores impossible text as -Infinity', () => {
    const src = new SyntheticSource();
    expect(src.sample(5, 3)).toEqual(new SyntheticSource().sample(5, 3));
    expect(src.sample(5, 3)).not.toEqual(src.sample(5, 4));
    const rows = src.sample(200, 1);
    for (const r of rows) {
      expect(r.endsWith(' .\n')).toBe(true);
      expect(SyntheticSource.countSentences(r)).toBe(3);
      expect(Number.isFinite(src.logProb(r))).toBe(true);
    }
    // Heavy tail: the most frequent word is far more frequent than the median word.
    const freq = new Map<string, number>();
    for (const r of src.sample(2000, 2)) for (const w of r.split(/\s+/)) if (w && w !== '.') freq.set(w, (freq.get(w) ?? 0) + 1);
    const sorted = [...freq.values()].sort((a, b) => b - a);
    expect(sorted[0]! / sorted[Math.floor(sorted.length / 2)]!).toBeGreaterThan(50);
    expect(src.logProb('notaword .')).toBe(-Infinity);
    expect(src.logProb(`${src.words[0]}`)).toBe(-Infinity); // no end of sentence
    expect(src.logProb(' . ')).toBe(-Infinity); // empty sentence
  });
});
