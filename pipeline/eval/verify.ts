// Verifiers of generated candidates (curation: pipeline/run/select.ts) and their quality against the truth.
// Each verifier gives every candidate a score, higher is better:
//   truth   log P(continuation | prompt) under the synthetic source (truth.ts continuationLoglik)
//   model   the mean log-likelihood per continuation token given the prompt under a model (perplexity.ts's scorer)
//   random  a seeded uniform draw
// The quality of a verifier (Feng et al. 2024): Spearman's rho between its scores and the truth's over all
// candidates, and p*, the share of prompts where it keeps the candidate the truth would keep.
import { Rng, seedOf } from '../../util/rng.js';
import { spearman } from '../../util/stats.js';
import { openScorer, type ScorerOptions } from './perplexity.js';

/** One candidate: its prompt's ids, its continuation's ids and how many of them are real (not padding). */
export interface CandidateIds {
  prompt: Int32Array;
  continuation: ArrayLike<number>;
  length: number;
}

/**
 * The mean log-likelihood of each continuation's real tokens given its prompt (the prompt and the continuation
 * scored as one sequence by the model's NLL graph); -Infinity for a continuation without a real token.
 */
export async function modelScores(model: string, candidates: readonly CandidateIds[], opts: ScorerOptions & { batchSize?: number } = {}): Promise<Float64Array> {
  const out = new Float64Array(candidates.length);
  if (candidates.length === 0) return out;
  const P = candidates[0]!.prompt.length;
  const T = P + candidates[0]!.continuation.length;
  for (const c of candidates) if (c.prompt.length + c.continuation.length !== T) throw new Error(`modelScores: every prompt + continuation must have ${T} ids`);
  const scorer = await openScorer(model, opts);
  const batch = Math.max(1, opts.batchSize ?? 8);
  try {
    for (let r0 = 0; r0 < candidates.length; r0 += batch) {
      const n = Math.min(batch, candidates.length - r0);
      const ids = new Int32Array(n * T);
      for (let b = 0; b < n; b++) {
        ids.set(candidates[r0 + b]!.prompt, b * T);
        ids.set(candidates[r0 + b]!.continuation, b * T + P);
      }
      const nll = await scorer.nll(ids, n, T);
      for (let b = 0; b < n; b++) {
        // Continuation token j (position P + j) is predicted at position P + j - 1.
        const len = candidates[r0 + b]!.length;
        let s = 0;
        for (let j = 0; j < len; j++) s += nll[b * (T - 1) + P + j - 1]!;
        out[r0 + b] = len > 0 ? -s / len : -Infinity;
      }
    }
  } finally {
    await scorer.close();
  }
  return out;
}

/** `n` seeded uniform scores in [0, 1). */
export function randomScores(n: number, seed: number): Float64Array {
  const rng = new Rng(seedOf(seed, 0x5e1ec7));
  return Float64Array.from({ length: n }, () => rng.next());
}

/**
 * Per prompt, the index of its best-scored candidate: `groups[p]` lists prompt p's candidates in rank order,
 * and a tie keeps the earlier (better-ranked) one.
 */
export function bestOf(scores: ArrayLike<number>, groups: readonly (readonly number[])[]): number[] {
  return groups.map((g) => {
    let best = g[0]!;
    for (const i of g) if (scores[i]! > scores[best]!) best = i;
    return best;
  });
}

export interface VerifierQuality {
  /** Spearman's rho between the verifier's and the truth's scores over all candidates (null when one is constant). */
  rho: number | null;
  /** Share of prompts where the verifier keeps the truth's best candidate. */
  p_star: number;
}

export function verifierQuality(scores: ArrayLike<number>, truth: ArrayLike<number>, groups: readonly (readonly number[])[]): VerifierQuality {
  const picked = bestOf(scores, groups);
  const oracle = bestOf(truth, groups);
  const same = picked.filter((c, p) => c === oracle[p]).length;
  return { rho: spearman(Array.from(scores), Array.from(truth)), p_star: groups.length ? same / groups.length : 0 };
}
