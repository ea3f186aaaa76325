// A seeded synthetic language whose probabilities are known exactly, so that generated data can be
// scored against the truth (how much of the tail survives) rather than against a generation-0 model.
//
// The process, a class-based bigram language with a latent topic per row:
// - Every word belongs to one word class (a few small "function" classes of frequent words, larger
//   "content" classes). A sentence is a walk over the classes: a start row picks the first class, each
//   class row picks the next class or the end of the sentence ("."). These class rows are the GRAMMAR.
// - Every text row has a latent TOPIC t, drawn once per row. Inside its class, a word is drawn with weight
//   (rank in class)^-zipf * log-normal noise, times exp(topicStrength) for the topic's own words. Because
//   the topic persists across the row, a continuation depends on the whole prompt (which topic it is
//   about), not only on its last word.
// - Content words may follow a fixed order (`successorRate`): with that probability the next content word is
//   the successor of the row's previous one in a seeded cycle through each content class's words, as a text
//   runs through a known sequence; otherwise it is drawn afresh. A likely continuation then runs on through
//   the cycle rather than looping.
// - Entities recur: a word of the `recurClass` class repeats, with probability `recurRate`, one of the
//   `recurMemory` words of that class used most recently in the row (as names recur in real text), so that
//   a likely continuation reuses the prompt's own words and differs from prompt to prompt.
// - Two domains share the words, classes and topics: the fine-tuning TASK, and a broader PRETRAINING corpus
//   whose grammar is a perturbed copy of the task's (`domainShift`) and whose topic mixture is shifted
//   (`pretrainTopicWeights`). A base pretrained on the second has a task to learn from the first.
// A row renders as `sentencesPerRow` sentences "w1 w2 ... wn ." joined by spaces, ending with "\n".
//
// Exact probabilities: a window of tokens is scored by the forward algorithm over the K topics (the
// topic's posterior given the window so far), so log p(continuation | prompt) is exact for a prompt that
// starts a row, and conditional on the prompt's first token otherwise.
import { Rng } from '../util/rng.js';

export const END_OF_SENTENCE = '.';
/** The token that separates rows (the tiny tokenizer prepends it to each row): the topic is drawn anew. */
export const ROW_BOUNDARY = '</s>';

export type SyntheticDomain = 'task' | 'pretrain';

/** What a row carries from word to word: its recurring words (most recent first) and its last content word. */
export interface RowState {
  recent: number[];
  last: number;
}

export interface SyntheticConfig {
  /** Number of words (the tiny tokenizer uses the default). */
  vocabSize: number;
  /** Sizes of the word classes; the first `functionClasses` take the most frequent words; the last absorbs the rest. */
  classSizes: number[];
  functionClasses: number;
  /** Standard deviation of the log-normal weights of the grammar's rows (larger: more peaked). */
  grammarPeak: number;
  /** Probability of ending the sentence after a word of a content class. */
  pEnd: number;
  /** Zipf exponent of the words inside a class: weight of the word of rank r is r^-zipf. */
  zipf: number;
  /** Standard deviation of the log-normal noise on each word's weight. */
  noise: number;
  sentencesPerRow: number;
  /** Number of latent topics. */
  topics: number;
  /** Words of each topic in each content class (a seeded choice). */
  topicWordsPerClass: number;
  /** Log-weight added to a topic's own words. */
  topicStrength: number;
  /** The class whose words recur within a row (entities): 0-based class index, -1 for none. */
  recurClass: number;
  /**
   * Probability that a word of `recurClass` repeats one of the row's `recurMemory` most recently used words
   * of that class (each equally likely) instead of a fresh draw; nothing to repeat at the first one.
   */
  recurRate: number;
  recurMemory: number;
  /**
   * Probability that a content word is the successor of the row's previous content word (in the seeded cycle of
   * its class: the word after the previous one's position in its own class's cycle); 0 for none.
   */
  successorRate: number;
  /** A sentence ends right after its `sentenceWords`-th content word, never before (0: after any content word with probability pEnd). */
  sentenceWords: number;
  /** Standard deviation of the log-normal perturbation that turns the task's grammar into the pretraining one. */
  domainShift: number;
  /**
   * The task's own "format", in its function words (the most frequent tokens): their Zipf exponent in the
   * task (`functionZipf`) and in the pretraining domain (`pretrainFunctionZipf`). A task whose function words
   * are nearly fixed, after pretraining where any of a class's words is as likely, costs a base much on the
   * task (the paper's zero-shot 115), is learnt from few examples, and survives beam search intact.
   */
  functionZipf: number;
  pretrainFunctionZipf: number;
  /** Mixture over topics of the fine-tuning task's rows (normalised; missing topics have weight 0). */
  taskTopicWeights: number[];
  /** Mixture over topics of the pretraining rows (normalised): broader, shifted away from the task. */
  pretrainTopicWeights: number[];
  /** Seed of the classes, grammar, word weights and topics (the words themselves depend only on vocabSize). */
  seed: number;
}

export const DEFAULT_SYNTHETIC: SyntheticConfig = {
  vocabSize: 507,
  classSizes: [12, 10, 170, 130, 110, 75],
  functionClasses: 2,
  grammarPeak: 2.0,
  pEnd: 0.15,
  zipf: 1.6,
  noise: 0.5,
  sentencesPerRow: 6,
  topics: 12,
  topicWordsPerClass: 8,
  topicStrength: 2.5,
  domainShift: 1.5,
  functionZipf: 1.6,
  pretrainFunctionZipf: 1.6,
  recurClass: 4,
  recurRate: 0.8,
  recurMemory: 1,
  successorRate: 0,
  sentenceWords: 0,
  // The task: 6 topics with Zipf-like weights (the last ones are its rare tail).
  taskTopicWeights: [0.4, 0.22, 0.14, 0.1, 0.08, 0.06],
  // Pretraining: all 12 topics, the task's first ones under-represented.
  pretrainTopicWeights: [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.15, 0.15, 0.15, 0.15, 0.15, 0.13],
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

function normalised(weights: readonly number[], K: number, what: string): Float64Array {
  if (weights.length > K) throw new Error(`synthetic ${what}: ${weights.length} weights for ${K} topics`);
  const out = new Float64Array(K);
  let sum = 0;
  weights.forEach((w, i) => {
    if (!(w >= 0)) throw new Error(`synthetic ${what}: weight ${w} of topic ${i} must be >= 0`);
    out[i] = w;
    sum += w;
  });
  if (!(sum > 0)) throw new Error(`synthetic ${what}: the weights must not all be 0`);
  for (let i = 0; i < K; i++) out[i]! /= sum;
  return out;
}

export class SyntheticSource {
  readonly cfg: SyntheticConfig;
  readonly words: string[];
  /** Word class of each word. */
  readonly wordClass: Int32Array;
  /** Topic mixtures of the two domains. */
  readonly topicWeights: Record<SyntheticDomain, Float64Array>;
  private readonly index: Map<string, number>;
  /**
   * Grammar per domain: [(C + 1) x (C + 1)], row/column C is the sentence boundary (row C: the first class
   * of a sentence; column C: the end of the sentence).
   */
  private readonly grammar: Record<SyntheticDomain, Float64Array>;
  /** Per topic: P(word | its class, topic), [K x V]. */
  private readonly emission: Float64Array;
  /** Per topic and class: the class's words and their cumulative emission probabilities. */
  private readonly classWords: Int32Array[];
  private readonly cumEmission: Float64Array[][];
  /** The pretraining domain's function-word emissions (rotated ranks, no topic): [V] and per class cumulative. */
  private readonly pretrainFunctionEmission: Float64Array;
  private readonly pretrainFunctionCum: Float64Array[];
  /** Each word's position in its class's seeded cycle (`successorRate`). */
  private readonly cyclePos: Int32Array;
  /** Per class: its words in cycle order. */
  private readonly cycle: Int32Array[];

  constructor(cfg: Partial<SyntheticConfig> = {}) {
    this.cfg = { ...DEFAULT_SYNTHETIC, ...cfg };
    const { vocabSize: V, classSizes, functionClasses, grammarPeak, pEnd, zipf, noise, sentencesPerRow, topics: K } = this.cfg;
    if (!Number.isInteger(V) || V < 1) throw new Error(`synthetic vocabSize must be a positive integer, got ${V}`);
    if (!(pEnd > 0 && pEnd <= 1)) throw new Error(`synthetic pEnd must be in (0, 1], got ${pEnd}`);
    if (!Number.isInteger(sentencesPerRow) || sentencesPerRow < 1) throw new Error(`synthetic sentencesPerRow must be >= 1, got ${sentencesPerRow}`);
    if (!Number.isInteger(K) || K < 1) throw new Error(`synthetic topics must be a positive integer, got ${K}`);
    if (classSizes.length < 1 || classSizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`synthetic classSizes must be positive integers, got ${classSizes}`);
    if (!(functionClasses >= 0 && functionClasses < classSizes.length)) throw new Error(`synthetic functionClasses must leave at least one content class`);
    if (!(this.cfg.successorRate >= 0 && this.cfg.successorRate <= 1)) throw new Error(`synthetic successorRate must be in [0, 1], got ${this.cfg.successorRate}`);
    if (!(Number.isInteger(this.cfg.sentenceWords) && this.cfg.sentenceWords >= 0)) throw new Error(`synthetic sentenceWords must be an integer >= 0, got ${this.cfg.sentenceWords}`);
    this.topicWeights = {
      task: normalised(this.cfg.taskTopicWeights, K, 'taskTopicWeights'),
      pretrain: normalised(this.cfg.pretrainTopicWeights, K, 'pretrainTopicWeights'),
    };
    this.words = syntheticWords(V);
    this.index = new Map(this.words.map((w, i) => [w, i]));
    const rng = new Rng(this.cfg.seed);
    const C = classSizes.length;

    // Classes: function classes take the most frequent words in order, the others a seeded share of the rest.
    this.wordClass = new Int32Array(V).fill(C - 1);
    let next = 0;
    for (let c = 0; c < functionClasses; c++) for (let i = 0; i < classSizes[c]! && next < V; i++) this.wordClass[next++] = c;
    const rest = rng.permutation(V - next);
    let k = 0;
    for (let c = functionClasses; c < C - 1; c++) for (let i = 0; i < classSizes[c]! && k < rest.length; i++) this.wordClass[next + rest[k++]!] = c;
    this.classWords = Array.from({ length: C }, (_, c) => Int32Array.from(Array.from({ length: V }, (_, v) => v).filter((v) => this.wordClass[v] === c)));
    if (this.classWords.some((w) => w.length === 0)) throw new Error(`synthetic classSizes ${classSizes} leave a class without words for vocabSize ${V}`);

    // Grammar of the task; the pretraining grammar is a log-normal perturbation of it.
    const task = new Float64Array((C + 1) * (C + 1));
    for (let r = 0; r <= C; r++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum += task[r * (C + 1) + c] = Math.exp(grammarPeak * rng.normal());
      const end = r === C || r < functionClasses ? 0 : pEnd; // no empty sentence; no end after a function word
      for (let c = 0; c < C; c++) task[r * (C + 1) + c]! *= (1 - end) / sum;
      task[r * (C + 1) + C] = end;
    }
    const pretrain = new Float64Array(task.length);
    for (let r = 0; r <= C; r++) {
      const end = task[r * (C + 1) + C]!;
      let sum = 0;
      for (let c = 0; c < C; c++) sum += pretrain[r * (C + 1) + c] = task[r * (C + 1) + c]! * Math.exp(this.cfg.domainShift * rng.normal());
      for (let c = 0; c < C; c++) pretrain[r * (C + 1) + c]! *= (1 - end) / sum;
      pretrain[r * (C + 1) + C] = end;
    }
    this.grammar = { task, pretrain };

    // Emissions: Zipf by rank in class, noise, and each topic's own words boosted.
    const baseWeight = new Float64Array(V);
    const wordNoise = new Float64Array(V);
    const zipfOf = (c: number) => (c < functionClasses ? this.cfg.functionZipf : zipf);
    for (let c = 0; c < C; c++)
      this.classWords[c]!.forEach((v, r) => (baseWeight[v] = Math.pow(r + 1, -zipfOf(c)) * (wordNoise[v] = Math.exp(noise * rng.normal()))));
    this.emission = new Float64Array(K * V);
    this.cumEmission = [];
    const boost = Math.exp(this.cfg.topicStrength);
    for (let t = 0; t < K; t++) {
      const cums: Float64Array[] = [];
      for (let c = 0; c < C; c++) {
        const ws = this.classWords[c]!;
        const mine = new Set<number>();
        if (c >= functionClasses) {
          const order = rng.permutation(ws.length);
          for (let i = 0; i < Math.min(this.cfg.topicWordsPerClass, ws.length); i++) mine.add(ws[order[i]!]!);
        }
        let sum = 0;
        for (const v of ws) sum += this.emission[t * V + v] = baseWeight[v]! * (mine.has(v) ? boost : 1);
        const cum = new Float64Array(ws.length);
        let acc = 0;
        ws.forEach((v, i) => {
          this.emission[t * V + v]! /= sum;
          acc += this.emission[t * V + v]!;
          cum[i] = acc;
        });
        cum[ws.length - 1] = 1; // guard against rounding
        cums.push(cum);
      }
      this.cumEmission.push(cums);
    }

    // Pretraining's function words: the same words and noise with the pretraining Zipf exponent (no draw
    // from rng, so the task's source is the same whatever the exponent). Function words have no topic.
    this.pretrainFunctionEmission = new Float64Array(V);
    this.pretrainFunctionCum = [];
    for (let c = 0; c < functionClasses; c++) {
      const ws = this.classWords[c]!;
      let sum = 0;
      ws.forEach((v, r) => (sum += this.pretrainFunctionEmission[v] = Math.pow(r + 1, -this.cfg.pretrainFunctionZipf) * wordNoise[v]!));
      const cum = new Float64Array(ws.length);
      let acc = 0;
      ws.forEach((v, i) => (cum[i] = acc += this.pretrainFunctionEmission[v]! /= sum));
      cum[ws.length - 1] = 1;
      this.pretrainFunctionCum.push(cum);
    }

    // The successor cycles, from their own stream so that a source without them is unchanged.
    const crng = new Rng(this.cfg.seed * 7919 + 0xc1);
    this.cycle = this.classWords.map((ws) => Int32Array.from(crng.permutation(ws.length), (i) => ws[i]!));
    this.cyclePos = new Int32Array(V);
    this.cycle.forEach((ws) => ws.forEach((v, i) => (this.cyclePos[v] = i)));
  }

  /** Whether a word id is a content word (what `successorRate` links). */
  isContentId(word: number): boolean {
    return word >= 0 && this.wordClass[word]! >= this.cfg.functionClasses;
  }

  /** The successor in class `c` of content word `last` (-1 without one). */
  successor(last: number, c: number): number {
    if (last < 0) return -1;
    const ws = this.cycle[c]!;
    return ws[(this.cyclePos[last]! + 1) % ws.length]!;
  }

  /** P(word | its class, topic) in a domain (the domains differ in their function words' ranking). */
  private emissionOf(word: number, topic: number, domain: SyntheticDomain): number {
    if (domain === 'pretrain' && this.wordClass[word]! < this.cfg.functionClasses) return this.pretrainFunctionEmission[word]!;
    return this.emission[topic * this.cfg.vocabSize + word]!;
  }

  get topics(): number {
    return this.cfg.topics;
  }

  /** Whether a token is a word of a function class (the classes whose emission differs between the domains). */
  isFunctionWord(token: string): boolean {
    const id = this.index.get(token);
    return id !== undefined && this.wordClass[id]! < this.cfg.functionClasses;
  }

  /**
   * The source's own bounds on `rows` fresh task rows (sampling seed `seed`): the mean NLL per token under the
   * task (its true perplexity's log) and under the pretraining distribution (the best a base pretrained on the
   * broad domain can do zero-shot).
   */
  domainGap(rows: number, seed: number): { task: number; pretrain: number; tokens: number } {
    let task = 0;
    let pretrain = 0;
    let tokens = 0;
    for (const row of this.sample(rows, seed, 'task')) {
      const words = row.trim().split(/\s+/);
      const a = this.tokenLogProbs(words, { domain: 'task' })!;
      const b = this.tokenLogProbs(words, { domain: 'pretrain' })!;
      a.forEach((v, i) => {
        if (Number.isNaN(v)) return;
        task -= v;
        pretrain -= b[i]!;
        tokens++;
      });
    }
    return { task: task / tokens, pretrain: pretrain / tokens, tokens };
  }

  /**
   * P(next token | previous token, topic, the row's recurring words so far) over tokens: word ids 0..V-1
   * and -1 for ".". The previous token is a word id, or -1 for "." and for the start of a row. `recent`
   * lists the distinct words of `recurClass` used earlier in the row, the most recent first; `last` is the
   * row's previous content word (-1 for none), which matters with `successorRate`.
   */
  tokenProbability(prev: number, next: number, topic: number, domain: SyntheticDomain = 'task', recent: readonly number[] = [], last = -1, count = 0): number {
    const C = this.cfg.classSizes.length;
    const g = this.grammar[domain];
    const from = prev < 0 ? C : this.wordClass[prev]!;
    const n = this.cfg.sentenceWords;
    const full = n > 0 && this.isContentId(prev) && count >= n;
    if (next < 0) return n > 0 ? (full ? 1 : 0) : g[from * (C + 1) + C]!;
    if (full) return 0;
    const keep = n > 0 ? 1 / (1 - g[from * (C + 1) + C]!) : 1; // no end before the n-th content word
    const c = this.wordClass[next]!;
    let e = this.emissionOf(next, topic, domain);
    if (c === this.cfg.recurClass && recent.length > 0) {
      const m = Math.min(recent.length, this.cfg.recurMemory);
      let hit = false;
      for (let i = 0; i < m; i++) if (recent[i] === next) hit = true;
      e = (1 - this.cfg.recurRate) * e + (hit ? this.cfg.recurRate / m : 0);
    }
    const rho = this.cfg.successorRate;
    if (rho > 0 && c >= this.cfg.functionClasses && last >= 0) e = (1 - rho) * e + (this.successor(last, c) === next ? rho : 0);
    return g[from * (C + 1) + c]! * keep * e;
  }

  /** What a row carries past `word`: a word of `recurClass` moves to the front of its recent list, a content word becomes its last. */
  remember(row: RowState, word: number): void {
    if (this.isContentId(word)) row.last = word;
    if (word < 0 || this.wordClass[word] !== this.cfg.recurClass) return;
    const i = row.recent.indexOf(word);
    if (i >= 0) row.recent.splice(i, 1);
    row.recent.unshift(word);
  }

  private drawIndex(cum: ArrayLike<number>, n: number, x: number): number {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  drawTopic(rng: Rng, domain: SyntheticDomain = 'task'): number {
    const w = this.topicWeights[domain];
    let x = rng.next();
    for (let t = 0; t < w.length; t++) {
      x -= w[t]!;
      if (x < 0) return t;
    }
    return w.length - 1;
  }

  /**
   * One sentence of a row of topic `topic`, as word indices. `row` (the row's recurring words, most recent
   * first, and its last content word) is updated.
   */
  sampleSentence(rng: Rng, topic = 0, domain: SyntheticDomain = 'task', row: RowState = { recent: [], last: -1 }): number[] {
    const recent = row.recent;
    const C = this.cfg.classSizes.length;
    const g = this.grammar[domain];
    const out: number[] = [];
    let state = C;
    const n = this.cfg.sentenceWords;
    let count = 0;
    for (;;) {
      if (n > 0 && count >= n && state >= this.cfg.functionClasses && state < C) return out;
      let x = rng.next();
      if (n > 0) x *= 1 - g[state * (C + 1) + C]!; // no end before the n-th content word
      let c = 0;
      for (; c < C; c++) {
        x -= g[state * (C + 1) + c]!;
        if (x < 0) break;
      }
      if (c === C && n === 0 && out.length > 0) return out;
      if (c === C) c = C - 1; // rounding (the start row has no end, nor a row before the n-th content word)
      let v: number;
      const rho = this.cfg.successorRate;
      // Drawn first, so that a source without successors consumes the same numbers as before.
      if (rho > 0 && c >= this.cfg.functionClasses && row.last >= 0 && rng.next() < rho) v = this.successor(row.last, c);
      else if (c === this.cfg.recurClass && recent.length > 0 && rng.next() < this.cfg.recurRate) v = recent[rng.int(Math.min(recent.length, this.cfg.recurMemory))]!;
      else {
        const ws = this.classWords[c]!;
        const cum = domain === 'pretrain' && c < this.cfg.functionClasses ? this.pretrainFunctionCum[c]! : this.cumEmission[topic]![c]!;
        v = ws[this.drawIndex(cum, ws.length, rng.next())]!;
      }
      this.remember(row, v);
      if (this.isContentId(v)) count++;
      out.push(v);
      state = c;
    }
  }

  renderSentence(words: number[]): string {
    return `${words.map((w) => this.words[w]!).join(' ')} ${END_OF_SENTENCE}`;
  }

  /** One row: its topic, then `sentencesPerRow` sentences. */
  sampleRow(rng: Rng, domain: SyntheticDomain = 'task'): { topic: number; text: string } {
    const topic = this.drawTopic(rng, domain);
    const s: string[] = [];
    const row: RowState = { recent: [], last: -1 };
    for (let k = 0; k < this.cfg.sentencesPerRow; k++) s.push(this.renderSentence(this.sampleSentence(rng, topic, domain, row)));
    return { topic, text: `${s.join(' ')}\n` };
  }

  /** `n` text rows of a domain, each ending with "\n"; the same rows for the same seed. */
  sample(n: number, seed: number, domain: SyntheticDomain = 'task'): string[] {
    const rng = new Rng(seed);
    return Array.from({ length: n }, () => this.sampleRow(rng, domain).text);
  }

  /** Token ids of words: word index, -1 for ".", -2 for a row boundary, undefined for anything else. */
  tokenId(token: string): number | undefined {
    if (token === END_OF_SENTENCE) return -1;
    if (token === ROW_BOUNDARY) return -2;
    return this.index.get(token);
  }

  /** Word index of a word, or undefined. */
  wordId(w: string): number | undefined {
    return this.index.get(w);
  }

  /**
   * Exact log-probabilities of a token stream under the source (forward algorithm over the topics).
   * `tokens` are strings: words, ".", and "</s>" where a new row starts (its topic drawn afresh). The stream
   * is taken to start at the beginning of a row unless `midRow`: then its first token is a given context
   * (not scored) and the topic prior is the domain's mixture. Returns the log-probability of each token
   * given all before it (NaN for tokens not scored: the given first token and row boundaries), or null
   * when a token is impossible (an unknown word, an empty sentence). Mid-row, the recurring words before
   * the window are unknown: the window's own are used (what a model sees, too).
   */
  tokenLogProbs(tokens: readonly string[], opts: { midRow?: boolean; domain?: SyntheticDomain } = {}): Float64Array | null {
    const K = this.cfg.topics;
    const domain = opts.domain ?? 'task';
    const prior = this.topicWeights[domain];
    const out = new Float64Array(tokens.length).fill(Number.NaN);
    const post = Float64Array.from(prior);
    const row: RowState = { recent: [], last: -1 };
    let count = 0; // content words so far in the sentence
    const remember = (id: number) => {
      this.remember(row, id);
      if (this.isContentId(id)) count++;
      if (id === -1) count = 0;
    };
    let prev = -1;
    let start = 0;
    if (opts.midRow && tokens.length > 0) {
      const first = this.tokenId(tokens[0]!);
      if (first === undefined) return null;
      if (first !== -2) prev = first;
      remember(first);
      start = 1;
    }
    for (let i = start; i < tokens.length; i++) {
      const id = this.tokenId(tokens[i]!);
      if (id === undefined) return null;
      if (id === -2) {
        post.set(prior);
        Object.assign(row, { recent: [], last: -1 });
        count = 0;
        prev = -1;
        continue;
      }
      let total = 0;
      for (let t = 0; t < K; t++) {
        const p = post[t]! * this.tokenProbability(prev, id, t, domain, row.recent, row.last, count);
        post[t] = p;
        total += p;
      }
      if (!(total > 0)) return null;
      for (let t = 0; t < K; t++) post[t]! /= total;
      out[i] = Math.log(total);
      remember(id);
      prev = id;
    }
    return out;
  }

  /**
   * Exact natural-log probability of whole rows given as text (rows separated by "\n", each a sequence of
   * sentences ending with "."): -Infinity for an unknown word, an empty sentence or a row not ending with ".".
   */
  logProb(text: string, domain: SyntheticDomain = 'task'): number {
    let total = 0;
    for (const row of text.split('\n')) {
      const tokens = row.split(/\s+/).filter((t) => t.length > 0);
      if (tokens.length === 0) continue;
      if (tokens[tokens.length - 1] !== END_OF_SENTENCE) return -Infinity;
      const lp = this.tokenLogProbs(tokens, { domain });
      if (!lp) return -Infinity;
      for (const v of lp) if (!Number.isNaN(v)) total += v;
    }
    return total;
  }

  /** Number of sentences in a text (for per-sentence averages). */
  static countSentences(text: string): number {
    return text.split(/\s+/).filter((t) => t === END_OF_SENTENCE).length;
  }

  /**
   * The true probability of each token (word ids, "." at index V) at a random position of a row of the
   * domain, topics mixed. Without successors and fixed sentence lengths it is the class chain's stationary
   * distribution times the topic's emissions; with them, `rowTokenMass`. Recurrence only repeats words already
   * drawn, which leaves these marginals unchanged with `recurMemory` 1; with a longer memory, or recurrence and
   * successors together, the recurring class's words are counted as fresh draws (an approximation).
   */
  tokenMass(domain: SyntheticDomain = 'task'): Float64Array {
    if (this.cfg.successorRate > 0 || this.cfg.sentenceWords > 0) return this.rowTokenMass(domain);
    const C = this.cfg.classSizes.length;
    const V = this.cfg.vocabSize;
    const g = this.grammar[domain];
    // Stationary distribution of the class chain with the boundary state C ("." then the start row).
    let pi = new Float64Array(C + 1).fill(1 / (C + 1));
    for (let it = 0; it < 10_000; it++) {
      const nx = new Float64Array(C + 1);
      for (let r = 0; r <= C; r++) for (let c = 0; c <= C; c++) nx[c]! += pi[r]! * g[r * (C + 1) + c]!;
      let diff = 0;
      for (let i = 0; i <= C; i++) diff += Math.abs(nx[i]! - pi[i]!);
      pi = nx;
      if (diff < 1e-15) break;
    }
    const out = new Float64Array(V + 1);
    const w = this.topicWeights[domain];
    for (let v = 0; v < V; v++) {
      let e = 0;
      for (let t = 0; t < this.cfg.topics; t++) e += w[t]! * this.emissionOf(v, t, domain);
      out[v] = pi[this.wordClass[v]!]! * e;
    }
    out[V] = pi[C]!;
    return out;
  }

  /**
   * `tokenMass` by walking a row: the expected count of each token in a row of each topic, by forward
   * propagation over (class state, content words so far in the sentence, cycle position of the row's last
   * content word), divided by the expected row length. Exact for successors and fixed sentence lengths; the
   * class moves come from `tokenProbability` itself.
   */
  rowTokenMass(domain: SyntheticDomain = 'task'): Float64Array {
    const { classSizes, functionClasses: F, sentencesPerRow: S, successorRate: rho, vocabSize: V } = this.cfg;
    const C = classSizes.length;
    const n = this.cfg.sentenceWords;
    const K = n + 1; // content words so far in the sentence: 0..n (only 0 when sentence lengths are free)
    const P = rho > 0 ? Math.max(...this.cycle.map((ws) => ws.length)) + 1 : 1; // last's cycle position + 1 (0: none)
    // move[(s * K + k) * (C + 1) + c]: P(next class c, or the end at c = C | class state s (C: sentence start), k).
    const move = new Float64Array((C + 1) * K * (C + 1));
    for (let s = 0; s <= C; s++) {
      const prev = s === C ? -1 : this.classWords[s]![0]!;
      for (let k = 0; k < K; k++) {
        const row = (s * K + k) * (C + 1);
        for (let c = 0; c < C; c++) for (const w of this.classWords[c]!) move[row + c]! += this.tokenProbability(prev, w, 0, domain, [], -1, k);
        if (s < C) move[row + C] = this.tokenProbability(prev, -1, 0, domain, [], -1, k);
      }
    }
    const counts = new Float64Array(V + 1);
    const w = this.topicWeights[domain];
    for (let t = 0; t < this.cfg.topics; t++) {
      if (!(w[t]! > 0)) continue;
      const fresh = new Float64Array(C); // expected fresh draws per class in a row of this topic
      const recited = this.cycle.map((ws) => new Float64Array(ws.length)); // expected successor draws per cycle position
      let carry = new Float64Array(P); // at a sentence start: the distribution of last's position
      carry[0] = 1;
      for (let sentence = 0; sentence < S; sentence++) {
        let cur = new Float64Array((C + 1) * K * P);
        cur.set(carry, (C * K + 0) * P);
        carry = new Float64Array(P);
        for (let live = 1; live > 1e-14; ) {
          const next = new Float64Array(cur.length);
          const freshIn = new Float64Array(C * K); // fresh content draws into (class, k), placed by emission below
          // sk = s * K + k: class state s with k content words so far.
          for (let sk = 0; sk < (C + 1) * K; sk++) {
            const k = sk % K;
            const row = sk * (C + 1);
            for (let p = 0; p < P; p++) {
              const m = cur[sk * P + p]!;
              if (m === 0) continue;
              if (move[row + C]! > 0) carry[p]! += m * move[row + C]!;
              for (let c = 0; c < C; c++) {
                const mc = m * move[row + c]!;
                if (mc === 0) continue;
                if (c < F) {
                  fresh[c]! += mc;
                  next[(c * K + k) * P + p]! += mc;
                  continue;
                }
                const k2 = n > 0 ? k + 1 : 0;
                let f = mc;
                if (rho > 0 && p > 0) {
                  const q = p % this.cycle[c]!.length; // the successor of position p - 1 (the class's real size)
                  recited[c]![q]! += mc * rho;
                  next[(c * K + k2) * P + q + 1]! += mc * rho;
                  f = mc * (1 - rho);
                }
                fresh[c]! += f;
                freshIn[c * K + k2]! += f;
              }
            }
          }
          for (let ck = F * K; ck < C * K; ck++) {
            const f = freshIn[ck]!;
            if (f === 0) continue;
            const ws = this.cycle[Math.floor(ck / K)]!;
            for (let q = 0; q < ws.length; q++) next[ck * P + (rho > 0 ? q + 1 : 0)]! += f * this.emissionOf(ws[q]!, t, domain);
          }
          cur = next;
          live = cur.reduce((a, b) => a + b, 0);
        }
      }
      for (let v = 0; v < V; v++) {
        const c = this.wordClass[v]!;
        counts[v]! += w[t]! * (fresh[c]! * this.emissionOf(v, t, domain) + (c >= F ? recited[c]![this.cyclePos[v]!]! : 0));
      }
      counts[V]! += w[t]! * S;
    }
    const total = counts.reduce((a, b) => a + b, 0);
    return counts.map((x) => x / total);
  }
}
