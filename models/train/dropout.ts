// Dropout masks for the training graphs (see models/grad `dropout: 'masks'`): each mask is drawn from a
// counter-based stream seeded by (run seed, optimizer step, micro-batch, site), so the masks of a step do not
// depend on anything that happened before it and a resumed run replays them exactly.
import { seedOf } from '../../util/rng.js';
import type { DropoutMask } from '../grad/index.js';

/** Where a micro-batch sits in a run: what its dropout masks are a function of. */
export interface DropoutKey {
  seed: number;
  step: number;
  micro: number;
}

/**
 * Fills `out` with 0 (probability `ratio`) or float32(1 / (1 - ratio)), as torch's dropout scales kept values.
 * The uniform draws are mulberry32 (a Weyl sequence through a mixing function): one multiply-xorshift chain per
 * element, fast enough that drawing OPT-125m's masks is a small part of a step (scripts/bench-train.ts --dropout).
 */
export function fillDropoutMask(out: Float32Array, ratio: number, seed: number): void {
  if (!(ratio >= 0 && ratio < 1)) throw new Error(`dropout ratio must be in [0, 1), got ${ratio}`);
  const threshold = Math.round(ratio * 2 ** 32); // drop when the uint32 draw is below it
  const scale = Math.fround(1 / (1 - ratio));
  let a = seed | 0;
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (t ^ (t >>> 14)) >>> 0 < threshold ? 0 : scale;
  }
}

/** The masks of one micro-batch, written into `buffers` (one per mask, allocated on first use). */
export function dropoutMasks(masks: readonly DropoutMask[], key: DropoutKey, buffers: Map<string, Float32Array>): Map<string, Float32Array> {
  masks.forEach((m, site) => {
    let buf = buffers.get(m.name);
    if (!buf) buffers.set(m.name, (buf = new Float32Array(m.shape.reduce((a, b) => a * b, 1))));
    fillDropoutMask(buf, m.ratio, seedOf(key.seed, key.step, key.micro, site));
  });
  return buffers;
}
