// Curation (issue 26): the truth verifier against a naive sum over the source's transition probabilities, the
// choice of one candidate per prompt (and the drop-and-refill) on hand-made scores, rho and p* on hand-made
// scores, the seeded random verifier, and the messages of a bad `select` section.
import { describe, expect, it } from 'vitest';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { continuationLoglik } from '../../pipeline/eval/truth.js';
import { bestOf, randomScores, verifierQuality } from '../../pipeline/eval/verify.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../pipeline/run/config.js';
import { preflightRun } from '../../pipeline/run/preflight-run.js';
import { PRESETS } from '../../pipeline/run/presets.js';
import { chooseCandidates } from '../../pipeline/run/select.js';

// 5 words in 2 classes, 3 topics, recurring words: small enough to follow by hand.
const SMALL = {
  vocabSize: 5, classSizes: [2, 3], functionClasses: 1, topics: 3, topicWordsPerClass: 1, recurClass: 1, recurRate: 0.5, recurMemory: 2,
  pEnd: 0.4, sentencesPerRow: 1, taskTopicWeights: [0.5, 0.3, 0.2], pretrainTopicWeights: [0.2, 0.2, 0.6], seed: 3,
};

/**
 * P(tokens[from..] | tokens[..from]) by brute force. The stream is cut into rows at its boundaries ("</s>");
 * rows are independent, each with its own topic. A row's probability is the sum over topics of the prior times
 * the product of its transition probabilities, the recurring words tracked by hand; its first token is given
 * (not scored) when the stream starts mid-row. The row in which the continuation starts counts with the ratio
 * of its probability with and without the continuation; the rows after it count whole.
 */
function naiveConditional(src: SyntheticSource, tokens: string[], from: number): number {
  const ids = tokens.map((t) => (t === '.' ? -1 : t === '</s>' ? -2 : src.words.indexOf(t)));
  const rowProb = (row: number[], givenFirst: boolean, end = row.length) => {
    let total = 0;
    for (let t = 0; t < src.topics; t++) {
      let p = src.topicWeights.task[t]!;
      let prev = -1;
      let recent: number[] = [];
      row.slice(0, end).forEach((id, i) => {
        if (!(givenFirst && i === 0)) p *= src.tokenProbability(prev, id, t, 'task', recent);
        if (id >= 0 && src.wordClass[id] === src.cfg.recurClass) recent = [id, ...recent.filter((x) => x !== id)];
        prev = id;
      });
      total += p;
    }
    return total;
  };
  let logp = 0;
  let start = 0;
  for (let b = 0; b <= ids.length; b++) {
    if (b < ids.length && ids[b] !== -2) continue;
    const row = ids.slice(start, b);
    const givenFirst = start === 0 && ids[0] !== -2; // the stream's first row, begun before the stream
    if (b > from && row.length > 0) logp += Math.log(rowProb(row, givenFirst)) - (start < from ? Math.log(rowProb(row, givenFirst, from - start)) : 0);
    start = b + 1;
  }
  return logp;
}

describe('the truth verifier', () => {
  const src = new SyntheticSource(SMALL);
  it('scores log P(continuation | prompt) as the naive sum over the transition probabilities', () => {
    // Cut from rows the source samples (seed 5): "ki thour failgik thour failgik thour thour failgik .", ...
    const t = (s: string) => s.split(' ');
    const cases: [string[], string[]][] = [
      [t('ki thour failgik'), t('thour failgik thour thour failgik .')], // mid-row: the prompt's first token is given
      [t('pul ki ki ki'), t('ki pul ki toumkal .')],
      [t('failgik . </s> thour'), t('failgik thour ki failgik .')], // a new row inside the prompt: its topic drawn afresh
      [t('</s> thour'), t('failgik .')], // a prompt that starts a row
      [t('ki pul ki'), t('pul ki pul . </s> thour failgik .')], // a new row inside the continuation
    ];
    for (const [prompt, continuation] of cases) {
      const got = continuationLoglik(src, { prompt, continuation });
      expect(Number.isFinite(got)).toBe(true);
      expect(got).toBeCloseTo(naiveConditional(src, [...prompt, ...continuation], prompt.length), 10);
    }
  });
  it('gives -Infinity to an impossible continuation (an empty sentence, an unknown word)', () => {
    expect(continuationLoglik(src, { prompt: ['ki', '.'], continuation: ['.', 'ki'] })).toBe(-Infinity);
    expect(continuationLoglik(src, { prompt: ['ki'], continuation: ['<unk>'] })).toBe(-Infinity);
  });
});

describe('choosing one candidate per prompt', () => {
  // Four prompts of three candidates each, in rank order.
  const groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]];
  const scores = [1, 5, 3, 2, 2, 0, -1, -3, -2, 4, 4.5, 0];
  it('keeps each prompt\'s best-scored candidate, the better rank on a tie', () => {
    expect(bestOf(scores, groups)).toEqual([1, 3, 6, 10]);
    expect(chooseCandidates(scores, groups)).toEqual({ rows: [[0, 1], [1, 3], [2, 6], [3, 10]], dropped: [] });
  });
  it('drops the worst prompts and refills from the best second choices, keeping the size', () => {
    // f = 0.25: prompt 2 (best -1) is dropped; second choices 3 (p0), 2 (p1), 4 (p3): p3's is taken.
    expect(chooseCandidates(scores, groups, 0.25)).toEqual({ rows: [[0, 1], [1, 3], [3, 10], [3, 9]], dropped: [2] });
    // f = 0.5: prompts 2 and 1 are dropped; the second choices of p0 and p3 refill.
    expect(chooseCandidates(scores, groups, 0.5)).toEqual({ rows: [[0, 1], [0, 2], [3, 10], [3, 9]], dropped: [1, 2] });
  });
  it('the random verifier is seeded: the same scores on a rerun, others with another seed', () => {
    expect(Array.from(randomScores(12, 7))).toEqual(Array.from(randomScores(12, 7)));
    expect(Array.from(randomScores(12, 7))).not.toEqual(Array.from(randomScores(12, 8)));
    const pick = chooseCandidates(randomScores(12, 7), groups).rows;
    expect(pick.map(([p]) => p)).toEqual([0, 1, 2, 3]);
    expect(chooseCandidates(randomScores(12, 7), groups).rows).toEqual(pick);
  });
});

describe("the verifier's quality against the truth", () => {
  it('rho and p* on hand-made scores', () => {
    const groups = [[0, 1], [2, 3]];
    // ranks of the scores 0 3 2 1, of the truth 0 1 3 2: sum d^2 = 6, rho = 1 - 6*6 / (4*15) = 0.4; both pick 1 and 2.
    expect(verifierQuality([0.1, 0.4, 0.3, 0.2], [1, 2, 4, 3], groups)).toEqual({ rho: expect.closeTo(0.4, 12), p_star: 1 });
    // truth ranks 1 0 3 2: sum d^2 = 12, rho = 1 - 72/60 = -0.2; the truth keeps 0 in prompt 0: p* = 1/2.
    expect(verifierQuality([0.1, 0.4, 0.3, 0.2], [2, 1, 4, 3], groups)).toEqual({ rho: expect.closeTo(-0.2, 12), p_star: 0.5 });
    // ties get their mean rank: x ranks 0.5 0.5 2, y 0 1 2: cov 1.5, var 1.5 and 2, rho = 1.5 / sqrt(3).
    expect(verifierQuality([1, 1, 2], [1, 2, 3], [[0, 1, 2]]).rho).toBeCloseTo(1.5 / Math.sqrt(3), 12);
    // an impossible candidate (-Infinity) ranks lowest; a constant verifier has no rho.
    expect(verifierQuality([3, 2, 1], [0, -1, -Infinity], [[0, 1, 2]])).toEqual({ rho: 1, p_star: 1 });
    // A constant verifier keeps rank 0 everywhere: the truth's pick in prompt 1 only.
    expect(verifierQuality([1, 1, 1, 1], [1, 2, 4, 3], groups)).toEqual({ rho: null, p_star: 0.5 });
  });
});

describe('a bad select section', () => {
  const withSelect = (select: unknown, extra: Record<string, unknown> = {}) => () =>
    validateConfig({ ...extra, settings: [{ name: 'a', mix: { mode: 'replace' } }, { name: 'b', mix: { mode: 'replace' }, select }] });
  it('names the key and says what to do', () => {
    expect(withSelect({ verifier: 'oracle', candidates: 2 })).toThrow(/settings\.1\.select\.verifier: Invalid (option|enum value)/);
    expect(withSelect({ verifier: 'truth', candidates: 1 })).toThrow(/settings\.1\.select\.candidates: .*(>=|at least|greater than or equal to) ?2/i);
    expect(withSelect({ verifier: 'truth', candidates: 6 })).toThrow(/settings\.1\.select\.candidates: must be at most generate\.numBeams \(5\)/);
    expect(withSelect({ verifier: 'truth', candidates: 2 }, { generate: { strategy: 'greedy' } })).toThrow(/settings\.1\.select\.candidates: greedy decoding returns one sequence/);
    expect(withSelect({ verifier: 'random', candidates: 2, model: 'base' })).toThrow(/settings\.1\.select\.model: is only read by verifier "model"/);
    expect(withSelect({ verifier: 'truth', candidates: 2, dropWorst: 0.7 })).toThrow(/settings\.1\.select\.dropWorst: must be in \[0, 0\.5\]/);
    expect(withSelect({ verifier: 'truth', candidates: 2, k: 3 })).toThrow(/settings\.1\.select\.k: unknown key/);
    expect(withSelect({ verifier: 'truth', candidates: 2 }, { data: { source: 'wikitext-2-raw-v1' } })).toThrow(
      /settings\.1\.select\.verifier: "truth" needs the synthetic source, whose exact likelihood is known \(data\.source is wikitext-2-raw-v1\); use verifier model or random/,
    );
    expect(() => validateConfig({ select: { verifier: 'model', candidates: 2, model: '' } })).toThrow(/select\.model:/);
  });
  it('a verifier model directory that does not exist is named before any compute', () => {
    const cfg = validateConfig({ runsDir: mkdtempSync(join(tmpdir(), 'select-')), settings: [{ name: 'a', mix: { mode: 'replace' }, select: { verifier: 'model', candidates: 2, model: '/no/such/verifier' } }] });
    expect(() => preflightRun(cfg)).toThrow(/settings\.0\.select\.model \/no\/such\/verifier: no such model directory; use generation-0, base, or a model directory/);
  });
  it('a good one: model defaults to the generation-0 model', () => {
    expect(validateConfig({ select: { verifier: 'model', candidates: 3 } }).select).toEqual({ verifier: 'model', candidates: 3, model: 'generation-0', dropWorst: 0 });
    // run.json is validated again on a resume and compared key by key: the keys keep one order.
    for (const select of [{ verifier: 'model', candidates: 3 }, { verifier: 'model', candidates: 3, dropWorst: 0.1, model: 'base' }, { verifier: 'truth', candidates: 2 }]) {
      const once = JSON.stringify(validateConfig({ select }));
      expect(JSON.stringify(validateConfig(JSON.parse(once)))).toBe(once);
    }
  });
});

describe('the tiny-workflows preset', () => {
  it("takes tiny's source, base, training, decoding and seeds, and has the six workflows", () => {
    const tiny = PRESETS.tiny!.config;
    const w = PRESETS['tiny-workflows']!.config;
    for (const k of ['data', 'model', 'train', 'generate', 'seeds'] as const) expect(w[k]).toBe(tiny[k]);
    const cfg = validateConfig(w);
    expect(cfg.settings!.map((s) => [s.name, s.mix.mode, s.select?.verifier ?? null, s.select?.candidates ?? null])).toEqual([
      ['replace', 'replace', null, null],
      ['accumulate', 'accumulate', null, null],
      ['accumulate-subsample', 'accumulate-subsample', null, null],
      ['curated-truth', 'replace', 'truth', cfg.generate.numBeams],
      ['curated-model', 'replace', 'model', cfg.generate.numBeams],
      ['curated-random', 'replace', 'random', cfg.generate.numBeams],
    ]);
    expect(cfg.settings![4]!.select!.model).toBe('generation-0');
  });
});
