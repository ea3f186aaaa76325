// A seeded synthetic language whose probabilities are known exactly, so that generated data can be
// scored against the truth (how much of the tail survives) rather than against a generation-0 model.
//
// The process: a sentence is a first-order Markov chain over a Zipf-weighted vocabulary. The first word
// is drawn from a start row; after the word at position i (1-based) the sentence ends with probability
// `pEnd` (always when i = maxLen), else the next word is drawn from the current word's transition row.
// Row u weights word v by (global rank of v)^-(zipf*(1-mix)) * (rank of v in u's own seeded order)^-(zipf*mix)
// times log-normal noise, renormalised: heavy-tailed overall (a few words are everywhere, most are rare) and
// each word has its own preferred successors. A sentence renders as "w1 w2 ... wn ." and a text row is `sentencesPerRow`
// sentences joined by spaces, ending with "\n" (like a WikiText row).
import { Rng } from '../models/util/rng.js';

export const END_OF_SENTENCE = '.';

export interface SyntheticConfig {
  /** Number of words (the tiny tokenizer uses the default). */
  vocabSize: number;
  /** Zipf exponent of the rows: weight of the word of rank r is r^-zipf. */
  zipf: number;
  /** Share of the exponent given to each row's own word order (0: every row has the global order). */
  mix: number;
  /** Standard deviation of the log-normal noise that makes each row different. */
  noise: number;
  /** Probability of ending the sentence after each word (before maxLen). */
  pEnd: number;
  /** Longest sentence, in words (the end is forced there). */
  maxLen: number;
  sentencesPerRow: number;
  /** Seed of the transition rows (the words themselves depend only on vocabSize). */
  seed: number;
}

export const DEFAULT_SYNTHETIC: SyntheticConfig = {
  vocabSize: 507,
  zipf: 1.2,
  mix: 0.3,
  noise: 0.5,
  pEnd: 1 / 12,
  maxLen: 40,
  sentencesPerRow: 3,
  seed: 0,
};

const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'st', 'tr', 'pl', 'gr', 'sh', 'th', 'ch'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou', 'ea'];
const CODAS = ['', '', '', 'n', 'r', 's', 'l', 'm', 'k', 't'];

/** `n` distinct pronounceable lowercase words, a fixed function of n (rank 0 = most frequent). */
export function syntheticWords(n: number): string[] {
  const rng = new Rng(0x5eed);
  const pick = (a: string[]): string => a[rng.int(a.length)]!;
  const words: string[] = [];
  const seen = new Set<string>();
  while (words.length < n) {
    // Frequent words are short, as in natural languages.
    const syllables = 1 + Math.min(3, Math.floor(Math.log10(words.length + 10) - 0.5 + rng.next()));
    let w = '';
    for (let s = 0; s < syllables; s++) w += pick(ONSETS) + pick(VOWELS) + pick(CODAS);
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

export class SyntheticSource {
  readonly cfg: SyntheticConfig;
  readonly words: string[];
  private readonly index: Map<string, number>;
  /** Row-major [(vocabSize + 1) x vocabSize]: row vocabSize is the start row. Probabilities, sum 1 per row. */
  private readonly rows: Float64Array;
  private readonly cumRows: Float64Array;

  constructor(cfg: Partial<SyntheticConfig> = {}) {
    this.cfg = { ...DEFAULT_SYNTHETIC, ...cfg };
    const { vocabSize: V, zipf, mix, noise, pEnd, maxLen, sentencesPerRow } = this.cfg;
    if (!(mix >= 0 && mix <= 1)) throw new Error(`synthetic mix must be in [0, 1], got ${mix}`);
    if (!Number.isInteger(V) || V < 1) throw new Error(`synthetic vocabSize must be a positive integer, got ${V}`);
    if (!(pEnd > 0 && pEnd <= 1)) throw new Error(`synthetic pEnd must be in (0, 1], got ${pEnd}`);
    if (!Number.isInteger(maxLen) || maxLen < 1) throw new Error(`synthetic maxLen must be a positive integer, got ${maxLen}`);
    if (!Number.isInteger(sentencesPerRow) || sentencesPerRow < 1) throw new Error(`synthetic sentencesPerRow must be >= 1, got ${sentencesPerRow}`);
    this.words = syntheticWords(V);
    this.index = new Map(this.words.map((w, i) => [w, i]));
    const rng = new Rng(this.cfg.seed);
    this.rows = new Float64Array((V + 1) * V);
    this.cumRows = new Float64Array((V + 1) * V);
    for (let r = 0; r <= V; r++) {
      const own = rng.permutation(V);
      let sum = 0;
      for (let v = 0; v < V; v++) {
        const w = Math.pow(v + 1, -zipf * (1 - mix)) * Math.pow(own[v]! + 1, -zipf * mix) * Math.exp(noise * rng.normal());
        this.rows[r * V + v] = w;
        sum += w;
      }
      let cum = 0;
      for (let v = 0; v < V; v++) {
        const p = this.rows[r * V + v]! / sum;
        this.rows[r * V + v] = p;
        cum += p;
        this.cumRows[r * V + v] = cum;
      }
      this.cumRows[r * V + V - 1] = 1; // guard against rounding
    }
  }

  /** P(next word = v | previous word u), u = -1 for the sentence start. */
  transition(u: number, v: number): number {
    const V = this.cfg.vocabSize;
    return this.rows[(u < 0 ? V : u) * V + v]!;
  }

  /** Probability of ending after the word at 1-based position i. */
  endProbability(i: number): number {
    return i >= this.cfg.maxLen ? 1 : this.cfg.pEnd;
  }

  private draw(u: number, rng: Rng): number {
    const V = this.cfg.vocabSize;
    const base = (u < 0 ? V : u) * V;
    const x = rng.next();
    let lo = 0;
    let hi = V - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumRows[base + mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** One sentence as word indices. */
  sampleSentence(rng: Rng): number[] {
    const out: number[] = [];
    let u = -1;
    for (;;) {
      u = this.draw(u, rng);
      out.push(u);
      if (out.length >= this.cfg.maxLen || rng.next() < this.cfg.pEnd) return out;
    }
  }

  renderSentence(words: number[]): string {
    return `${words.map((w) => this.words[w]!).join(' ')} ${END_OF_SENTENCE}`;
  }

  /** `n` text rows, each `sentencesPerRow` sentences ending with "\n"; the same rows for the same seed. */
  sample(n: number, seed: number): string[] {
    const rng = new Rng(seed);
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      const s: string[] = [];
      for (let k = 0; k < this.cfg.sentencesPerRow; k++) s.push(this.renderSentence(this.sampleSentence(rng)));
      rows.push(`${s.join(' ')}\n`);
    }
    return rows;
  }

  /** Exact natural-log probability of one sentence given as word indices (-Infinity if impossible). */
  sentenceLogProb(words: readonly number[]): number {
    if (words.length === 0 || words.length > this.cfg.maxLen) return -Infinity;
    let lp = 0;
    let u = -1;
    for (let i = 0; i < words.length; i++) {
      const v = words[i]!;
      if (i > 0) lp += Math.log(1 - this.endProbability(i));
      lp += Math.log(this.transition(u, v));
      u = v;
    }
    return lp + Math.log(this.endProbability(words.length));
  }

  /**
   * Exact log-probability of a text: its whitespace-separated words split into sentences at ".", the
   * sum of the sentences' log-probabilities (the probability of that sequence of sentences). A word outside
   * the vocabulary, text not ending with ".", an empty sentence or one over maxLen gives -Infinity.
   */
  logProb(text: string): number {
    const tokens = text.split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0 || tokens[tokens.length - 1] !== END_OF_SENTENCE) return -Infinity;
    let total = 0;
    let cur: number[] = [];
    for (const t of tokens) {
      if (t === END_OF_SENTENCE) {
        total += this.sentenceLogProb(cur);
        cur = [];
        continue;
      }
      const id = this.index.get(t);
      if (id === undefined) return -Infinity;
      cur.push(id);
    }
    return total;
  }

  /** Number of sentences in a text (for per-sentence averages). */
  static countSentences(text: string): number {
    return text.split(/\s+/).filter((t) => t === END_OF_SENTENCE).length;
  }

  /** Word index of a word, or undefined. */
  wordId(w: string): number | undefined {
    return this.index.get(w);
  }

  /** The start row: the distribution of a sentence's first word. */
  startRow(): Float64Array {
    const V = this.cfg.vocabSize;
    return this.rows.slice(V * V, V * V + V);
  }
}
