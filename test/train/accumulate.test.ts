// Gradient accumulation in place (models/train/fuse.ts accumulatingGrad) on the tiny OPT, whose weight gradients
// come from Gemm nodes that onnxruntime may fuse with the accumulating Add: the running sum over micro-batches must
// equal the sum of each micro-batch's own gradient, computed by separate engines.
import { describe, expect, it } from 'vitest';
import type { ForwardSource } from '../../models/model-dir/index.js';
import { buildArtifact, loadArtifact } from '../../models/train/artifact.js';
import { TrainEngine, type MicroBatch } from '../../models/train/engine.js';
import { buildOptForward, initOptWeights } from '../../models/opt/index.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { Rng } from '../../util/rng.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const B = 2, T = 8;

function batch(rng: Rng, vocab: number): MicroBatch {
  const inputIds = BigInt64Array.from({ length: B * T }, () => BigInt(4 + rng.int(vocab - 4)));
  return { inputIds, attentionMask: new BigInt64Array(B * T).fill(1n), labels: inputIds.slice() };
}

describe('in-place gradient accumulation', () => {
  it('three micro-batches sum to the sum of their separate gradients (tiny OPT)', async () => {
    const weights = initOptWeights(TINY_CONFIG, 3);
    const src: ForwardSource = { dir: '(test)', kind: 'opt', optConfig: TINY_CONFIG, forward: buildOptForward(TINY_CONFIG, weights, { withPast: false, present: false }), weights, onnxPath: null, padId: 1 };
    const dir = join(mkdtempSync(join(tmpdir(), 'acc-')), 'art');
    await buildArtifact(src, { microBatch: B, blockSize: T, optimizer: { name: 'sgd', weightDecay: 0, beta1: 0, beta2: 0, eps: 0 } }, dir, () => {});
    const art = loadArtifact(dir);
    const rng = new Rng(7);
    const batches = [0, 1, 2].map(() => batch(rng, TINY_CONFIG.vocab_size));
    const open = () => TrainEngine.open(art.graphs, art.spec, art.initialWeights(), null, { threads: 1 });
    const summed = await open();
    for (const b of batches) await summed.accumulate(b, 0.25);
    const expected = new Map<string, Float64Array>();
    for (const b of batches) {
      const e = await open();
      await e.accumulate(b, 0.25);
      for (const [name, g] of e.accumulated()!) {
        const x = expected.get(name) ?? new Float64Array(g.length);
        g.forEach((v, i) => (x[i] = x[i]! + v));
        expected.set(name, x);
      }
      await e.release();
    }
    let nonzero = 0;
    for (const [name, want] of expected) {
      const got = summed.accumulated()!.get(name)!;
      const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
      for (let i = 0; i < want.length; i++) {
        expect(Math.abs(got[i]! - want[i]!) / scale).toBeLessThan(1e-5);
        if (want[i] !== 0) nonzero++;
      }
    }
    expect(nonzero).toBeGreaterThan(1000);
    await summed.release();
  });
});
