// Small statistics over the runs of a simulation. Matrices are generation-major
// (`m[g * runs + r]`), so that one generation's runs are a contiguous slice.
import { Rng } from '../util/rng.js';
import { zigguratNormal } from './normal.js';

/** Quantile of sorted values with linear interpolation (numpy's default, type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (n - 1) * q;
  const i = Math.floor(pos);
  const f = pos - i;
  const a = sorted[i]!;
  return f === 0 || i + 1 >= n ? a : a + f * (sorted[i + 1]! - a);
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

export interface Summary {
  mean: number;
  std: number;
  median: number;
  q05: number;
  q25: number;
  q75: number;
  q95: number;
}

export function summarize(xs: Float64Array): Summary {
  const sorted = Float64Array.from(xs).sort();
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < xs.length; i++) ss += (xs[i]! - m) ** 2;
  return {
    mean: m,
    std: xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0,
    median: quantileSorted(sorted, 0.5),
    q05: quantileSorted(sorted, 0.05),
    q25: quantileSorted(sorted, 0.25),
    q75: quantileSorted(sorted, 0.75),
    q95: quantileSorted(sorted, 0.95),
  };
}

/** One generation's runs out of a generation-major matrix. */
export function generationSlice(m: Float64Array, runs: number, g: number): Float64Array {
  return m.subarray(g * runs, (g + 1) * runs);
}

/** An independent generator per run, so results do not depend on run order (or on parallel workers). */
export function runRng(seed: number, run: number): Rng {
  const mixed = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(run + 1, 0x85ebca6b);
  return new Rng(mixed >>> 0);
}

/** Parses '100,500,1000' into positive integers, naming the flag in errors. */
export function parseIntList(flag: string, v: string | number | (string | number)[]): number[] {
  const parts = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((s) => s.trim()).filter(Boolean);
  const out = parts.map((s) => Number(s));
  for (let i = 0; i < out.length; i++) {
    if (!Number.isInteger(out[i]) || out[i]! <= 0) throw new Error(`${flag}: '${parts[i]}' is not a positive integer (e.g. ${flag} 100,1000)`);
  }
  if (!out.length) throw new Error(`${flag}: give at least one value`);
  return out;
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000), with the U^(1/a) boost for shape < 1. Exact. */
export function gamma(rng: Rng, shape: number): number {
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng.next();
    return gamma(rng, shape + 1) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = zigguratNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Chi-square with k degrees of freedom (= 2 Gamma(k/2)). */
export function chiSquare(rng: Rng, k: number): number {
  return 2 * gamma(rng, k / 2);
}
