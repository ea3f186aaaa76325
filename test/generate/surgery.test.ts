// The graph rewrites decoding relies on: last-position logits (LM head on the last hidden state only),
// the log-sum-exp output, and new-keys/values outputs, checked against the unmodified graphs.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../models/onnx/io.js';
import { f32, i64, openSession } from '../../models/session.js';
import { describeCausalLm } from '../../models/causal-lm.js';
import { openDecoder } from '../../pipeline/generate/decoder.js';
import { LOGSUMEXP, newKvName, sliceLogitsToLastPosition, splitLmHead, withLogSumExp, withNewKeyValueOutputs } from '../../pipeline/generate/graph-surgery.js';
import { logSumExp } from '../../pipeline/generate/logits.js';
import { EMBED_TOKENS } from '../../models/opt/weights.js';
import { sharedPath } from '../helpers/shared.js';
import { PAD, tinyModels } from './fixtures.js';

const ids = [2, 11, 12, 13, 14, 15, 1, 1, 2, 30, 31, 32];
const mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1];

describe('graph surgery', () => {
  it('sliced logits and log-sum-exp equal the last position of the full graph (tiny OPT, no past)', async () => {
    const { noPast } = tinyModels();
    const full = await openSession(noPast, { threads: 1 });
    const cut = await openSession(withLogSumExp(sliceLogitsToLastPosition(noPast)), { threads: 1 });
    const feeds = { input_ids: i64(ids, [2, 6]), attention_mask: i64(mask, [2, 6]) };
    const a = await full.run(feeds);
    const b = await cut.run(feeds);
    expect(b.logits!.dims).toEqual([2, 1, a.logits!.dims[2]]);
    const V = a.logits!.dims[2]!;
    const fa = a.logits!.data as Float32Array;
    const fb = b.logits!.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let v = 0; v < V; v++) expect(fb[r * V + v]).toBeCloseTo(fa[(r * 6 + 5) * V + v]!, 5);
      expect((b[LOGSUMEXP]!.data as Float32Array)[r]).toBeCloseTo(logSumExp(fa, (r * 6 + 5) * V, V), 4);
    }
    await full.release();
    await cut.release();
  });

  it('the LM head split into vocabulary slices gives the same logits (tiny OPT, tied head, uneven last slice)', async () => {
    const { noPast, vocab } = tinyModels();
    const split = splitLmHead(noPast, 'logits', 61);
    const nodes = split.graph!.node ?? [];
    expect(nodes.filter((n) => n.opType === 'MatMul' && n.name?.includes('lm_head_slice')).length).toBe(Math.ceil(vocab / 61));
    // The whole transposed embedding no longer feeds anything, so it is gone.
    const transposesOfEmbedding = (m: typeof noPast) => (m.graph!.node ?? []).filter((n) => n.opType === 'Transpose' && n.input?.[0] === EMBED_TOKENS).length;
    expect(transposesOfEmbedding(noPast)).toBe(1);
    expect(transposesOfEmbedding(split)).toBe(0); // each slice transposes its own part
    expect(splitLmHead(noPast, 'logits', vocab)).toBe(noPast); // too few columns to split: unchanged
    const full = await openSession(noPast, { threads: 1 });
    const cut = await openSession(withLogSumExp(split), { threads: 1 });
    const feeds = { input_ids: i64(ids, [2, 6]), attention_mask: i64(mask, [2, 6]) };
    const a = (await full.run(feeds)).logits!;
    const b = await cut.run(feeds);
    expect(b.logits!.dims).toEqual(a.dims);
    const fa = a.data as Float32Array;
    const fb = b.logits!.data as Float32Array;
    for (let i = 0; i < fa.length; i++) expect(fb[i]).toBeCloseTo(fa[i]!, 5);
    for (let r = 0; r < 12; r++) expect((b[LOGSUMEXP]!.data as Float32Array)[r]).toBeCloseTo(logSumExp(fa, r * vocab, vocab), 4);
    await full.release();
    await cut.release();
  });

  it('new key/value outputs are the last positions of present (tiny OPT with past)', async () => {
    const { withPast } = tinyModels();
    const split = withNewKeyValueOutputs(withPast, describeCausalLm(withPast, 'tiny').kv!)!;
    expect(split.layers).toBe(2);
    const full = await openSession(withPast, { threads: 1 });
    const cut = await openSession(split.model, { threads: 1 });
    const past = new Float32Array(2 * 4 * 3 * 16).map((_, i) => Math.sin(i));
    const feeds: Record<string, ReturnType<typeof f32>> = {
      input_ids: i64([5, 6, 7, 8], [2, 2]),
      attention_mask: i64([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [2, 5]),
    };
    for (let l = 0; l < 2; l++)
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = f32(past, [2, 4, 3, 16]);
    const a = await full.run(feeds);
    const b = await cut.run(feeds);
    expect(Object.keys(b).some((k) => k.startsWith('present.'))).toBe(false);
    // The OPT graph's attention reads past and new keys separately, so the present Concats fed only the
    // outputs; the rewrite drops them (onnxruntime would otherwise copy the whole cache each step).
    const pastInputs = (m: typeof withPast) => (m.graph!.node ?? []).filter((n) => n.opType === 'Concat' && n.input?.[0]?.startsWith('past_key_values.')).length;
    expect(pastInputs(withPast)).toBe(4);
    expect(pastInputs(split.model)).toBe(0);
    const pres = a['present.1.value']!.data as Float32Array; // [2, 4, 5, 16]
    const fresh = b[newKvName(1, 'value')]!.data as Float32Array; // [2, 4, 2, 16]
    for (let g = 0; g < 8; g++)
      for (let j = 0; j < 32; j++) expect(fresh[g * 32 + j]).toBeCloseTo(pres[g * 80 + 48 + j]!, 6);
    await full.release();
    await cut.release();
  });

  const torchExport = sharedPath('models/opt-tiny-torch-export-opset17/onnx/model.onnx');
  it.skipIf(!torchExport)('a torch export (input_ids only) decodes by recomputation; slicing keeps its logits', async () => {
    const model = loadModel(torchExport!);
    const prompts = [Int32Array.from([2, 100, 200, 300]), Int32Array.from([2, 400, 500, 600])];
    const sliced = await openDecoder(model, { threads: 1 });
    const full = await openDecoder(model, { threads: 1, fullLogits: true });
    const a = await sliced.prefill(prompts, PAD);
    const b = await full.prefill(prompts, PAD);
    expect(a.vocab).toBe(50272);
    for (let i = 0; i < a.data.length; i += 997) expect(a.data[i]).toBeCloseTo(b.data[i]!, 4);
    await expect(sliced.prefill([Int32Array.from([2, 5]), Int32Array.from([2])], PAD)).rejects.toThrow(/attention_mask/);
    await sliced.release();
    await full.release();
  });
});
