// The KV-cache decoder against the recompute decoder under the same sequence of operations: prefill with
// left padding, expansion to beams, random reorders and drops, steps past the initial slot capacity
// (no reserve, so the slot buffers must grow), and reuse for a second batch.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.js';
import { KvCacheDecoder, openDecoder, SharedPromptDecoder, type Decoder, type Logits } from '../../pipeline/generate/decoder/index.js';
import { PAD, PROMPTS, tinyModels } from './fixtures.js';

function expectClose(a: Logits, b: Logits): void {
  expect([a.rows, a.vocab]).toEqual([b.rows, b.vocab]);
  let maxDiff = 0;
  for (let i = 0; i < a.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.data[i]! - b.data[i]!));
  expect(maxDiff).toBeLessThan(1e-4);
  for (let r = 0; r < a.rows; r++) expect(a.logSumExp![r]).toBeCloseTo(b.logSumExp![r]!, 4);
}

describe('KV-cache decoders', () => {
  it('KvCacheDecoder equals recomputation through expand / reorder / drop / growth / reuse', async () => {
    const models = tinyModels();
    const kv = await openDecoder(models.withPast, { threads: 1 });
    expect(kv).toBeInstanceOf(KvCacheDecoder);
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

  it('SharedPromptDecoder equals recomputation through reorders within prompts, dropped and reordered prompts, growth, reuse', async () => {
    const models = tinyModels();
    const shared = await openDecoder(models.sharedPrompt, { threads: 1 });
    expect(shared).toBeInstanceOf(SharedPromptDecoder);
    const re = await openDecoder(models.noPast, { threads: 1 });
    const rng = new Rng(6);
    const both = async (f: (d: Decoder) => Promise<Logits>) => expectClose(await f(shared), await f(re));
    // 4 prompts x 3 beams (the prompt keys held once per prompt), then 2 prompts x 1 row expanded by select
    // (each copy holds its own prompt keys).
    for (const [prompts, copies] of [[PROMPTS, 3], [PROMPTS.slice(1, 3), 1]] as const) {
      await both((d) => d.prefill(prompts, PAD, copies));
      let groups = prompts.length;
      let size = copies; // rows per group
      // 20 steps: the generated slots grow past their first SLOT_CHUNK (16) with rows in place.
      for (let step = 0; step < 20; step++) {
        // Reorders within groups, then a dropped group (a prompt that finished), then groups reordered.
        let order = Array.from({ length: groups }, (_, g) => g);
        if (step === 0 && copies === 1) order = order.flatMap((g) => [g, g, g]);
        if (step === 4) order.splice(1, 1);
        if (step >= 6) order = order.map((_, i) => order[(i + step) % order.length]!);
        const from = Int32Array.from(order.flatMap((g) => Array.from({ length: size }, () => g * size + rng.int(size))));
        if (step === 0 && copies === 1) size = 1;
        shared.select(from);
        re.select(from);
        groups = order.length;
        const tokens = Int32Array.from({ length: from.length }, () => 4 + rng.int(500));
        await both((d) => d.step(tokens));
      }
      // Rows that mix prompts cannot share one prompt's keys: refused, not mixed up.
      if (copies === 3) expect(() => shared.select(Int32Array.from({ length: shared.rows }, (_, i) => (i + 1) % shared.rows))).toThrow(/grouped by prompt/);
    }
    await shared.release();
    await re.release();
  });
});
