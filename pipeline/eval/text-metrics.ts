// Diversity measures over token-id sequences (beyond the paper; from follow-up studies of model collapse).
//   rep-n      (Welleck et al. 2020, seq-rep-n): per sequence 100 x (1 - unique n-grams / n-grams), averaged
//              over the sequences that have at least one n-gram.
//   distinct-n (Li et al. 2016): distinct n-grams / total n-grams, pooled over the whole corpus.
//   self-BLEU  (Zhu et al. 2018, Texygen): mean sentence BLEU-4 of each sampled sequence against all other
//              sampled sequences as references. BLEU: clipped (modified) n-gram precision for n = 1..4, uniform
//              weights, brevity penalty with the closest reference length (ties: the shorter), and smoothing
//              method 1 of Chen & Cherry (2014) as in NLTK/Texygen: a zero match count is replaced by eps = 0.1.
import { Rng } from '../../util/rng.js';

export type Sequence = ArrayLike<number>;

/** n-gram key: ids joined with commas (exact; sequences here are short). */
function ngramKey(seq: Sequence, start: number, n: number): string {
  let k = String(seq[start]);
  for (let i = 1; i < n; i++) k += `,${seq[start + i]}`;
  return k;
}

export function ngramCounts(seq: Sequence, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= seq.length; i++) {
    const k = ngramKey(seq, i, n);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** 100 x (1 - unique/total) for one sequence; null when it has no n-gram. */
export function repNOfSequence(seq: Sequence, n: number): number | null {
  const total = seq.length - n + 1;
  if (total <= 0) return null;
  return 100 * (1 - ngramCounts(seq, n).size / total);
}

/** Mean seq-rep-n over sequences (those shorter than n are skipped); 0 for an empty corpus. */
export function repN(seqs: readonly Sequence[], n: number): number {
  let sum = 0;
  let count = 0;
  for (const s of seqs) {
    const r = repNOfSequence(s, n);
    if (r === null) continue;
    sum += r;
    count++;
  }
  return count ? sum / count : 0;
}

/** Distinct n-grams / total n-grams over the whole corpus; 0 when there is no n-gram. */
export function distinctN(seqs: readonly Sequence[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const s of seqs) {
    for (let i = 0; i + n <= s.length; i++) {
      seen.add(ngramKey(s, i, n));
      total++;
    }
  }
  return total ? seen.size / total : 0;
}

export const BLEU_SMOOTHING_EPS = 0.1;

/** Per-order n-gram counts of a sequence, orders 1..maxN. */
function allCounts(seq: Sequence, maxN: number): Map<string, number>[] {
  return Array.from({ length: maxN }, (_, k) => ngramCounts(seq, k + 1));
}

/**
 * Sentence BLEU of `hyp` against `refs` (precomputed counts allowed for speed).
 * Returns 0 for an empty hypothesis.
 */
export function sentenceBleu(hyp: Sequence, refs: readonly Sequence[], maxN = 4, refCounts?: readonly Map<string, number>[][]): number {
  if (hyp.length === 0 || refs.length === 0) return 0;
  const rc = refCounts ?? refs.map((r) => allCounts(r, maxN));
  let logP = 0;
  for (let n = 1; n <= maxN; n++) {
    const hc = ngramCounts(hyp, n);
    const total = Math.max(1, hyp.length - n + 1); // NLTK: denominator at least 1
    let matched = 0;
    for (const [k, c] of hc) {
      let maxRef = 0;
      for (const r of rc) maxRef = Math.max(maxRef, r[n - 1]!.get(k) ?? 0);
      matched += Math.min(c, maxRef);
    }
    if (n === 1 && matched === 0) return 0; // NLTK: no unigram match gives BLEU 0 whatever the smoothing
    const p = (matched === 0 ? BLEU_SMOOTHING_EPS : matched) / total;
    logP += Math.log(p) / maxN;
  }
  // Brevity penalty against the reference length closest to the hypothesis length (ties: shorter).
  let best = refs[0]!.length;
  for (const r of refs) {
    const d = Math.abs(r.length - hyp.length);
    const bd = Math.abs(best - hyp.length);
    if (d < bd || (d === bd && r.length < best)) best = r.length;
  }
  const bp = hyp.length > best ? 1 : Math.exp(1 - best / hyp.length);
  return bp * Math.exp(logP);
}

/**
 * Self-BLEU: a seeded sample of `samples` sequences; each is scored against all the others. In [0, 1];
 * higher means less diverse. Returns null when fewer than two sequences exist.
 */
export function selfBleu(seqs: readonly Sequence[], opts: { samples?: number; seed?: number; maxN?: number } = {}): number | null {
  const maxN = opts.maxN ?? 4;
  const k = Math.min(opts.samples ?? 100, seqs.length);
  if (k < 2) return null;
  const pick = Array.from(new Rng(opts.seed ?? 0).permutation(seqs.length).subarray(0, k), (i) => seqs[i]!);
  const counts = pick.map((s) => allCounts(s, maxN));
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const refs = pick.filter((_, j) => j !== i);
    const rc = counts.filter((_, j) => j !== i);
    sum += sentenceBleu(pick[i]!, refs, maxN, rc);
  }
  return sum / k;
}

export interface TextMetrics {
  rep2: number;
  rep3: number;
  rep4: number;
  distinct1: number;
  distinct2: number;
  distinct3: number;
  self_bleu: number | null;
}

export function textMetrics(seqs: readonly Sequence[], opts: { selfBleuSamples?: number; seed?: number } = {}): TextMetrics {
  return {
    rep2: repN(seqs, 2),
    rep3: repN(seqs, 3),
    rep4: repN(seqs, 4),
    distinct1: distinctN(seqs, 1),
    distinct2: distinctN(seqs, 2),
    distinct3: distinctN(seqs, 3),
    self_bleu: selfBleu(seqs, { samples: opts.selfBleuSamples ?? 100, seed: opts.seed ?? 0 }),
  };
}
