// The paper's discrete model (Section 3.1, "discrete distributions with exact approximation"): a categorical
// distribution is refitted each generation from M samples of the previous fit. There is no functional
// approximation error, only sampling error, yet the chain is a Markov chain whose only absorbing states are
// delta distributions: the tail vanishes first, then all but one state. The state a run ends in is state i
// with probability p_i (the fitted probabilities are a martingale).
//
// Refitting from M samples and resampling M from the fit is the same as drawing M items with replacement
// from the previous M samples, so one generation is M random indices into an Int32Array: O(M), exact.
import { progress } from '../util/progress.js';
import { runRng } from './stats.js';

export type DiscreteMode = 'replace' | 'accumulate';

export interface DiscreteOptions {
  /** Original probabilities p_i (normalised here). */
  probs: ArrayLike<number>;
  /** M: samples drawn per generation. */
  samples: number;
  runs: number;
  /** Most generations simulated; a run that has not absorbed by then is reported as not absorbed. */
  generations: number;
  seed: number;
  /** replace: fit on this generation's M samples; accumulate: fit on all samples drawn so far. */
  mode?: DiscreteMode;
  quiet?: boolean;
}

export interface DiscreteResult {
  probs: Float64Array;
  samples: number;
  runs: number;
  generations: number;
  mode: DiscreteMode;
  /** States whose original probability is <= 1/M (the tail that is lost first). */
  tailStates: number[];
  /** Per generation g = 0..generations, over runs: mean/std/min/max support size of the fit. */
  supportMean: Float64Array;
  supportStd: Float64Array;
  supportMin: Int32Array;
  supportMax: Int32Array;
  /** Per generation: mean over runs of the fitted mass on the original tail states. */
  tailMassMean: Float64Array;
  /** Per generation: share of runs whose fit is a delta. */
  absorbedShare: Float64Array;
  /** Per run: generation at which the fit became a delta (-1: not within `generations`). */
  absorptionGeneration: Int32Array;
  /** Per run: the state it was absorbed in (-1: not absorbed). */
  finalState: Int32Array;
  /** Per state: share of runs absorbed in it (over all runs, so the shares sum to the absorbed share). */
  absorptionFrequency: Float64Array;
}

export function normalizeProbs(p: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(p as ArrayLike<number>);
  let s = 0;
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`probabilities: entry ${i} is ${v}; give non-negative finite numbers`);
    s += v;
  }
  if (!(s > 0)) throw new Error('probabilities: they sum to 0; give at least one positive value');
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / s;
  return out;
}

/** Named original distributions: zipf (p_i ∝ 1/(i+1)^a), geometric (p_i ∝ r^i), uniform. */
export function namedDistribution(name: string, states: number, param?: number): Float64Array {
  if (!Number.isInteger(states) || states < 2) throw new Error(`--states: ${states} is not an integer >= 2`);
  const p = new Float64Array(states);
  for (let i = 0; i < states; i++) {
    if (name === 'zipf') p[i] = 1 / (i + 1) ** (param ?? 1);
    else if (name === 'geometric') p[i] = (param ?? 0.8) ** i;
    else if (name === 'uniform') p[i] = 1;
    else throw new Error(`--dist: unknown distribution '${name}'; use zipf, geometric or uniform (or --probs)`);
  }
  return normalizeProbs(p);
}

/** Index into a cumulative distribution by binary search (first i with u < cdf[i]). */
function searchCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (u < cdf[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function simulateDiscrete(o: DiscreteOptions): DiscreteResult {
  const p = normalizeProbs(o.probs);
  const K = p.length;
  const { samples: M, runs, generations: G, seed } = o;
  const mode = o.mode ?? 'replace';
  for (const [flag, v] of [['--samples', M], ['--runs', runs], ['--generations', G]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag}: ${v} is not a positive integer`);
  }
  const tail = new Uint8Array(K);
  const tailStates: number[] = [];
  for (let i = 0; i < K; i++) {
    if (p[i]! > 1 / M) continue;
    tail[i] = 1;
    tailStates.push(i);
  }
  let tailMass0 = 0;
  let support0 = 0;
  for (let i = 0; i < K; i++) {
    if (tail[i]) tailMass0 += p[i]!;
    if (p[i]! > 0) support0++;
  }
  const cdf = new Float64Array(K);
  let acc = 0;
  for (let i = 0; i < K; i++) cdf[i] = acc += p[i]!;
  // Rounding must not leave room for a zero-probability state at the end: the last positive one takes it.
  let lastPositive = K - 1;
  while (p[lastPositive] === 0) lastPositive--;
  for (let i = lastPositive; i < K; i++) cdf[i] = 1;

  const supportSum = new Float64Array(G + 1);
  const supportSq = new Float64Array(G + 1);
  const supportMin = new Int32Array(G + 1).fill(K + 1);
  const supportMax = new Int32Array(G + 1);
  const tailSum = new Float64Array(G + 1);
  const absorbedCount = new Float64Array(G + 1);
  const absorptionGeneration = new Int32Array(runs).fill(-1);
  const finalState = new Int32Array(runs).fill(-1);

  // replace: `cur` holds this generation's M samples. accumulate: `pool` holds every sample so far.
  const cur = new Int32Array(M);
  const next = new Int32Array(M);
  const counts = new Int32Array(K);
  const pool = mode === 'accumulate' ? new Int32Array(M * G) : new Int32Array(0);
  const bar = o.quiet ? null : progress('discrete', runs, { unit: 'runs', logEvery: Math.max(1, Math.floor(runs / 10)) });

  const record = (g: number, support: number, tailMass: number) => {
    supportSum[g]! += support;
    supportSq[g]! += support * support;
    if (support < supportMin[g]!) supportMin[g] = support;
    if (support > supportMax[g]!) supportMax[g] = support;
    tailSum[g]! += tailMass;
    if (support === 1) absorbedCount[g]! += 1;
  };

  for (let r = 0; r < runs; r++) {
    const rng = runRng(seed, r);
    record(0, support0, tailMass0);
    if (support0 === 1) {
      absorptionGeneration[r] = 0;
      finalState[r] = searchCdf(cdf, 0.5);
    }
    let poolSize = 0;
    let g = 1;
    for (; g <= G && absorptionGeneration[r] === -1; g++) {
      // Draw this generation's samples from the previous fit.
      if (g === 1) for (let j = 0; j < M; j++) next[j] = searchCdf(cdf, rng.next());
      else if (mode === 'replace') for (let j = 0; j < M; j++) next[j] = cur[rng.int(M)]!;
      else for (let j = 0; j < M; j++) next[j] = pool[rng.int(poolSize)]!;
      cur.set(next);
      // The new fit: counts over this generation's samples (replace) or over all so far (accumulate).
      if (mode === 'accumulate') {
        pool.set(cur, poolSize);
        poolSize += M;
      } else counts.fill(0);
      for (let j = 0; j < M; j++) counts[cur[j]!]! += 1;
      const n = mode === 'accumulate' ? poolSize : M;
      let support = 0;
      let tailCount = 0;
      let last = -1;
      for (let i = 0; i < K; i++) {
        const c = counts[i]!;
        if (c > 0) {
          support++;
          last = i;
        }
        if (tail[i]) tailCount += c;
      }
      record(g, support, tailCount / n);
      if (support === 1) {
        absorptionGeneration[r] = g;
        finalState[r] = last;
      }
    }
    // An absorbed run stays put: the remaining generations repeat its delta.
    const s = finalState[r]!;
    for (; g <= G; g++) record(g, 1, s >= 0 && tail[s] ? 1 : 0);
    if (mode === 'accumulate') counts.fill(0);
    bar?.update(r + 1);
  }
  bar?.stop();

  const absorptionFrequency = new Float64Array(K);
  for (let r = 0; r < runs; r++) if (finalState[r]! >= 0) absorptionFrequency[finalState[r]!]! += 1;
  for (let i = 0; i < K; i++) absorptionFrequency[i] = absorptionFrequency[i]! / runs;
  return {
    probs: p,
    samples: M,
    runs,
    generations: G,
    mode,
    tailStates,
    supportMean: supportSum.map((v) => v / runs),
    supportStd: supportSum.map((v, g) => Math.sqrt(Math.max(0, supportSq[g]! / runs - (v / runs) ** 2))),
    supportMin,
    supportMax,
    tailMassMean: tailSum.map((v) => v / runs),
    absorbedShare: absorbedCount.map((v) => v / runs),
    absorptionGeneration,
    finalState,
    absorptionFrequency,
  };
}
