// Seeded choices of rows: a fraction that is the same whatever the row order (keyed by block id), and a
// uniform subsample. The seeds themselves are the caller's (pipeline/run/mixing.ts derives the run's).
import { Rng } from '../util/rng.js';

/** 32-bit mix of (seed, block id): the per-row key that makes a fraction stable across generations. */
export function rowKey(seed: number, blockId: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(blockId, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Indices of a seeded fixed fraction of rows: the round(fraction * n) rows with the smallest key
 * (seed, block_id). The same block ids give the same subset in every generation for a seed, whatever
 * the row order. Returned in ascending row order.
 */
export function fixedFraction(blockIds: ArrayLike<number>, fraction: number, seed: number): Int32Array {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`fraction must be in [0, 1], got ${fraction}`);
  const n = blockIds.length;
  const k = Math.round(fraction * n);
  const idx = Array.from({ length: n }, (_, i) => i);
  const keys = Float64Array.from({ length: n }, (_, i) => rowKey(seed, blockIds[i]!) * 4294967296 + i);
  idx.sort((a, b) => keys[a]! - keys[b]!);
  return Int32Array.from(idx.slice(0, k)).sort();
}

/** `size` rows chosen uniformly without replacement (seeded), kept in their original order. */
export function subsampleIndices(n: number, size: number, seed: number): Int32Array {
  if (!Number.isInteger(size) || size < 0 || size > n) throw new Error(`subsample size ${size} must be an integer in [0, ${n}]`);
  return new Rng(seed).permutation(n).subarray(0, size).slice().sort();
}
