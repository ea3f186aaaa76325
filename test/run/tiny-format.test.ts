// The tiny-format preset (issue 23's search): its task differs from pretraining by a fixed house style, which is
// what the preset's README text claims. Checked on the source itself, with its exact probabilities.
import { describe, expect, it } from 'vitest';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { PRESETS } from '../../pipeline/run/presets.js';
import { validateConfig } from '../../pipeline/run/config.js';

const cfg = validateConfig(PRESETS['tiny-format']!.config);
const src = new SyntheticSource(cfg.data.synthetic.source);
const isFunction = (w: string) => src.isFunctionWord(w);
const words = (rows: string[]) => rows.flatMap((r) => r.trim().split(/\s+/));

describe('the tiny-format preset', () => {
  it('keeps the tiny seeds, generations and decoding but its own source, training and second setting', () => {
    const tiny = validateConfig(PRESETS.tiny!.config);
    expect([cfg.seeds, cfg.generations, cfg.generate.numBeams, cfg.generate.noRepeatNgramSize]).toEqual([tiny.seeds, tiny.generations, 5, 4]);
    expect([cfg.train.epochs, cfg.train.lr, cfg.generate.repetitionPenalty, cfg.data.synthetic.trainRows]).toEqual([4, 5e-4, 1.2, 80]);
    expect(cfg.settings!.map((s) => [s.name, s.mix.mode, s.mix.originalFraction, s.epochs ?? cfg.train.epochs])).toEqual([
      ['replace', 'replace', 0.1, 4],
      ['keep-original', 'keep-original', 0.1, 8],
    ]);
  });

  it("nearly fixes one word per function class in the task, where pretraining draws any of the class's words", () => {
    const taskWords = words(src.sample(60, 7, 'task')).filter(isFunction);
    const counts = new Map<string, number>();
    for (const w of taskWords) counts.set(w, (counts.get(w) ?? 0) + 1);
    const top = [...counts.values()].sort((a, b) => b - a).slice(0, src.cfg.functionClasses);
    expect(taskWords.length).toBeGreaterThan(1000);
    expect(top.reduce((a, b) => a + b, 0) / taskWords.length).toBeGreaterThan(0.998);
    // 60 rows hold hundreds of function words: a uniform draw over 180 words shows most of them.
    expect(new Set(words(src.sample(60, 7, 'pretrain')).filter(isFunction)).size).toBeGreaterThan(100);
  });

  it('differs from pretraining only in the function words, by over 2.5x in perplexity (room for C1: <= 0.4x)', () => {
    for (const row of src.sample(80, 11, 'task')) {
      const tokens = row.trim().split(/\s+/);
      const a = src.tokenLogProbs(tokens, { domain: 'task' })!;
      const b = src.tokenLogProbs(tokens, { domain: 'pretrain' })!;
      // The same grammar, topics and recurrence in both domains: every other token scores alike.
      tokens.forEach((w, i) => isFunction(w) || expect(b[i]).toBeCloseTo(a[i]!, 9));
    }
    const gap = src.domainGap(80, 11);
    expect(gap.tokens).toBeGreaterThan(1000);
    expect(Math.exp(gap.pretrain - gap.task)).toBeGreaterThan(2.5);
  });
});

describe('the tiny-recite preset', () => {
  const recite = validateConfig(PRESETS['tiny-recite']!.config);
  const rs = new SyntheticSource(recite.data.synthetic.source);

  it("is tiny-format's run on a reciting source: the same training, decoding and settings", () => {
    expect({ ...recite, name: 'x', data: { ...recite.data, synthetic: { ...recite.data.synthetic, source: null } } }).toEqual({
      ...cfg, name: 'x', data: { ...cfg.data, synthetic: { ...cfg.data.synthetic, source: null } },
    });
    expect(recite.data.synthetic.source).toMatchObject({ successorRate: 0.95, sentenceWords: 4, recurClass: -1, functionZipf: 12, pretrainFunctionZipf: 0 });
  });

  it('recites: most content words follow their predecessor in the cycle, four to a sentence', () => {
    let follow = 0;
    let content = 0;
    for (const row of rs.sample(60, 7, 'task')) {
      const tokens = row.trim().split(/\s+/);
      const ids = tokens.map((w) => rs.tokenId(w)!);
      let last = -1;
      for (const id of ids) {
        if (!rs.isContentId(id)) continue;
        if (last >= 0) {
          content++;
          if (id === rs.successor(last, rs.wordClass[id]!)) follow++;
        }
        last = id;
      }
      for (const s of row.trim().split(' . ')) expect(s.split(' ').filter((w) => rs.isContentId(rs.wordId(w) ?? -1)).length).toBe(4);
    }
    expect(follow / content).toBeGreaterThan(0.9); // 0.95 by construction, plus chance hits of a fresh draw
  });
});

describe('the tiny-sharpen preset', () => {
  const recite = validateConfig(PRESETS['tiny-recite']!.config);
  const sharpen = validateConfig(PRESETS['tiny-sharpen']!.config);
  const ss = new SyntheticSource(sharpen.data.synthetic.source);

  it("is tiny-recite's run with free sentence lengths, jumps to frequent words, a wider model and plain beam search", () => {
    const { sentenceWords, successorRate, topicStrength, zipf, ...rest } = sharpen.data.synthetic.source as Record<string, unknown>;
    expect({ sentenceWords, successorRate, topicStrength, zipf }).toEqual({ sentenceWords: 0, successorRate: 0.8, topicStrength: 0, zipf: 3 });
    const r = recite.data.synthetic.source as Record<string, unknown>;
    expect(rest).toEqual(Object.fromEntries(Object.entries(r).filter(([k]) => !['sentenceWords', 'successorRate', 'topicStrength', 'zipf'].includes(k))));
    expect(sharpen.model).toEqual({ ...recite.model, tinyWidth: 128 });
    expect(sharpen.generate).toEqual({ ...recite.generate, repetitionPenalty: 1, noRepeatNgramSize: 0 });
    expect({ ...sharpen, name: '', model: null, generate: null, data: null }).toEqual({ ...recite, name: '', model: null, generate: null, data: null });
  });

  it('ends a sentence after a content word with probability pEnd, and 80% of content words follow their predecessor', () => {
    let follow = 0;
    let content = 0;
    let ends = 0;
    for (const row of ss.sample(80, 7, 'task')) {
      let last = -1;
      for (const w of row.trim().split(/\s+/)) {
        const id = ss.tokenId(w)!;
        if (id === -1) ends++;
        if (!ss.isContentId(id)) continue;
        content++;
        if (last >= 0 && id === ss.successor(last, ss.wordClass[id]!)) follow++;
        last = id;
      }
    }
    // A "." only follows a content word, with probability pEnd (0.15 by default): 4 standard deviations either side.
    expect(ends / content).toBeGreaterThan(0.13);
    expect(ends / content).toBeLessThan(0.17);
    // 0.8 by construction (the first content word of a row has no predecessor), plus chance hits of a fresh draw.
    expect(follow / content).toBeGreaterThan(0.75);
    expect(follow / content).toBeLessThan(0.86);
  });
});
