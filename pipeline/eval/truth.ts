// The generated data against the TRUE source (beyond the paper; possible because the synthetic source's
// probabilities are known): the exact log-likelihood of each continuation given its prompt, and how much
// of the true tail (rare bigrams) the data still contains. Real continuations of the same prompts (the next
// original block) give the reference values.
import type { SyntheticSource } from '../../datasets/synthetic.js';
import type { LoadedTokenizer } from '../../datasets/tokenizer.js';
import type { Truth } from './metrics-schema.js';

/** A prompt and its continuation, as token strings (words, ".", "</s>" at a row start). */
export interface TokenPair {
  prompt: readonly string[];
  continuation: readonly string[];
}

export interface TailTable {
  /** Token index (word id, "." at V) -> true probability, for the rare tokens only. */
  rare: Map<number, number>;
  rareMass: number;
  q: number;
}

/**
 * The rare words of the source: those whose true probability at a random position of a task row is below
 * q, where q is chosen so that they hold `tailShare` of the probability mass (the least likely first).
 */
export function tailTable(source: SyntheticSource, tailShare = 0.2): TailTable {
  const mass = source.tokenMass('task');
  const idx = Array.from(mass.keys()).filter((i) => mass[i]! > 0).sort((a, b) => mass[a]! - mass[b]!);
  const rare = new Map<number, number>();
  let acc = 0;
  let q = 0;
  for (const i of idx) {
    const p = mass[i]!;
    if (acc + p > tailShare) {
      q = p;
      break;
    }
    acc += p;
    rare.set(i, p);
  }
  return { rare, rareMass: acc, q };
}

function tokenIndex(source: SyntheticSource, t: string): number | undefined {
  const id = source.tokenId(t);
  if (id === undefined || id === -2) return undefined;
  return id === -1 ? source.cfg.vocabSize : id;
}

/** Share of the rare words' true mass whose word occurs in the continuations. */
export function tailSeen(source: SyntheticSource, table: TailTable, continuations: Iterable<readonly string[]>): number {
  const seen = new Set<number>();
  let mass = 0;
  for (const c of continuations) {
    for (const t of c) {
      const k = tokenIndex(source, t);
      if (k === undefined) continue;
      const p = table.rare.get(k);
      if (p !== undefined && !seen.has(k)) {
        seen.add(k);
        mass += p;
      }
    }
  }
  return table.rareMass > 0 ? mass / table.rareMass : 0;
}

/** A token row as the source's token strings: padding dropped, ids the tokenizer lacks as "<unk>" (impossible). */
export function sourceTokens(tok: Pick<LoadedTokenizer, 'idToToken'>, ids: ArrayLike<number>, padId: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] !== padId) out.push(tok.idToToken(ids[i]!) ?? '<unk>');
  return out;
}

/**
 * The exact log-probability of each continuation token given the prompt and the tokens before it (NaN at a
 * row boundary, which is not scored), or null when the pair is impossible under the source.
 */
function continuationLogProbs(source: SyntheticSource, { prompt, continuation }: TokenPair): Float64Array | null {
  const lp = source.tokenLogProbs([...prompt, ...continuation], { midRow: prompt.length > 0 && prompt[0] !== '</s>' });
  return lp ? lp.subarray(prompt.length) : null;
}

/** log P(continuation | prompt) under the source: the sum of its tokens' log-probabilities; -Infinity when impossible. */
export function continuationLoglik(source: SyntheticSource, pair: TokenPair): number {
  const lp = continuationLogProbs(source, pair);
  if (!lp) return -Infinity;
  let sum = 0;
  for (const v of lp) if (!Number.isNaN(v)) sum += v;
  return sum;
}

/** Mean log-probability per continuation token given its prompt; impossible pairs counted apart. */
export function conditionalLoglik(source: SyntheticSource, pairs: Iterable<TokenPair>): { perToken: number | null; tokens: number; impossibleShare: number } {
  let sum = 0;
  let tokens = 0;
  let pairsSeen = 0;
  let impossible = 0;
  for (const pair of pairs) {
    pairsSeen++;
    const lp = continuationLogProbs(source, pair);
    if (!lp) {
      impossible++;
      continue;
    }
    for (const v of lp) {
      if (Number.isNaN(v)) continue;
      sum += v;
      tokens++;
    }
  }
  return { perToken: tokens ? sum / tokens : null, tokens, impossibleShare: pairsSeen ? impossible / pairsSeen : 0 };
}

export function truthMetrics(source: SyntheticSource, table: TailTable, generated: readonly TokenPair[], real: readonly TokenPair[]): Truth {
  const g = conditionalLoglik(source, generated);
  const r = conditionalLoglik(source, real);
  return {
    per_token: g.perToken,
    real_per_token: r.perToken,
    tokens: g.tokens,
    impossible_share: g.impossibleShare,
    tail_q: table.q,
    tail_seen: tailSeen(source, table, generated.map((p) => p.continuation)),
    real_tail_seen: tailSeen(source, table, real.map((p) => p.continuation)),
  };
}
