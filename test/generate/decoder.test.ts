// The KV-cache decoder against the recompute decoder under the same sequence of operations: prefill with
// left padding, expansion to beams, random reorders and drops, steps past the initial slot capacity
// (no reserve, so the slot buffers must grow), and reuse for a second batch.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.js';
import { openDecoder, type Decoder, type Logits } from '../../pipeline/generate/decoder.js';
import { PAD, PROMPTS, tinyModels } from './fixtures.js';

function expectClose(a: Logits, b: Logits): void {
  expect([a.rows, a.vocab]).toEqual([b.rows, b.vocab]);
  let maxDiff = 0;
  for (let i = 0; i < a.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.data[i]! - b.data[i]!));
  expect(maxDiff).toBeLessThan(1e-4);
  for (let r = 0; r < a.rows; r++) expect(a.logSumExp![r]).toBeCloseTo(b.logSumExp![r]!, 4);
}

describe('KvCacheDecoder', () => {
  it('equals recomputation through expand / reorder / drop / growth / reuse', async () => {
    const models = tinyModels();
    const kv = await openDecoder(models.withPast, { threads: 1 });
    const re = await openDecoder(models.noPast, { threads: 1 });
    const rng = new Rng(5);
    const both = async (f: (d: Decoder) => Promise<Logits>) => expectClose(await f(kv), await f(re));
    // First batch: one row per prompt, expanded by select; second: 3 copies made by prefill itself.
    for (const [prompts, copies] of [[PROMPTS, 1], [PROMPTS.slice(1, 3), 3]] as const) {
      await both((d) => d.prefill(prompts, PAD, copies));
      let rows = prompts.length * copies;
      for (let step = copies === 3 ? 1 : 0; step < 9; step++) {
        // An expansion to 3 rows per prompt, reorders within each prompt's rows (the generated-slots-only
        // path), a drop of a row, then reorders across prompts (whole rows).
        const n = step === 0 ? rows * 3 : step === 5 ? rows - 1 : rows;
        const pick = (i: number): number =>
          step === 0 ? Math.floor(i / 3) : step <= 4 ? Math.floor(i / 3) * 3 + rng.int(3) : rng.int(rows);
        const from = Int32Array.from({ length: n }, (_, i) => pick(i));
        kv.select(from);
        re.select(from);
        rows = n;
        const tokens = Int32Array.from({ length: rows }, () => 4 + rng.int(500));
        await both((d) => d.step(tokens));
      }
    }
    await kv.release();
    await re.release();
  });
});
