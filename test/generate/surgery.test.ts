// The graph rewrites decoding relies on: last-position logits (LM head on the last hidden state only),
// the log-sum-exp output, and new-keys/values outputs, checked against the unmodified graphs.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../models/onnx/io.js';
import { f32, i64, openSession } from '../../models/session.js';
import { describeCausalLm } from '../../models/causal-lm.js';
import { openDecoder } from '../../pipeline/generate/decoder/index.js';
import { SHORTLIST, LOGSUMEXP, newKvName, sliceLogitsToLastPosition, splitLmHead, withBeamShortlist, withLogSumExp, withNewKeyValueOutputs } from '../../models/graph-surgery.js';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { DataType } from '../../models/onnx/proto.js';
import * as ort from 'onnxruntime-node';
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

  /** Naive beam shortlist of one row: the k best (value desc, lower id first) outside `excluded`. */
  const naiveCandidates = (row: ArrayLike<number>, excluded: number[], k: number) =>
    Array.from(row, (x, v) => ({ x, v }))
      .filter((c) => !excluded.includes(c.v))
      .sort((a, b) => b.x - a.x || a.v - b.v)
      .slice(0, k);
  const candidateFeeds = (rows: number, excluded: number[][], k: number) => ({
    [SHORTLIST.excludedIds]: i64(excluded.flat(), [rows, excluded[0]!.length]),
    [SHORTLIST.k]: i64([k], [1]),
  });

  it('beam shortlist: the best logits outside the excluded ids, ties to the lower id, and the excluded ids\' logits', async () => {
    const g = new GraphBuilder();
    g.input('x', DataType.FLOAT, ['batch_size', 1, 8]);
    g.op('Identity', ['x'], {}, { outputs: ['logits'] });
    g.output('logits', DataType.FLOAT, ['batch_size', 1, 8]);
    const model = withBeamShortlist(g.model(), { lastPosition: false })!;
    expect((model.graph!.output ?? []).map((o) => o.name)).not.toContain('logits');
    const s = await openSession(model, { threads: 1 });
    const rows = [
      [1, 5, 5, 2, 5, -Infinity, 0, 5], // ties at 5 across the cut; the excluded id 2 is one of them
      [3, 3, 3, 3, 3, 3, 3, 3], // all equal
    ];
    const excluded = [[2, 6, 2], [0, 7, 0]]; // rows pad by repeating their own ids
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from(rows.flat()), [2, 1, 8]), ...candidateFeeds(2, excluded, 3) });
    const values = out[SHORTLIST.values]!.data as Float32Array;
    const indices = out[SHORTLIST.indices]!.data as BigInt64Array;
    const got = rows.map((_, r) => [0, 1, 2].map((j) => ({ x: values[r * 3 + j]!, v: Number(indices[r * 3 + j]!) })));
    expect(got).toEqual(rows.map((row, r) => naiveCandidates(row, excluded[r]!, 3)));
    expect(got[0]!.map((c) => c.v)).toEqual([1, 4, 7]);
    expect([...(out[SHORTLIST.excludedLogits]!.data as Float32Array)]).toEqual(excluded.flatMap((e, r) => e.map((v) => rows[r]![v]!)));
    await s.release();
  });

  it('beam shortlist of the tiny OPT equals that of its whole last-position logits, with and without the slice', async () => {
    const { noPast, vocab } = tinyModels();
    const full = await openSession(noPast, { threads: 1 });
    const feeds = { input_ids: i64(ids, [2, 6]), attention_mask: i64(mask, [2, 6]) };
    const logits = (await full.run(feeds)).logits!.data as Float32Array;
    await full.release();
    const excluded = [[2, 11, 12, 13, 14, 15], [1, 2, 30, 31, 32, 1]];
    for (const sliced of [false, true]) {
      const graph = sliced ? sliceLogitsToLastPosition(noPast) : noPast;
      const s = await openSession(withBeamShortlist(withLogSumExp(graph), { lastPosition: !sliced })!, { threads: 1 });
      const out = await s.run({ ...feeds, ...candidateFeeds(2, excluded, 10) });
      for (let r = 0; r < 2; r++) {
        const last = logits.subarray((r * 6 + 5) * vocab, (r * 6 + 6) * vocab);
        const want = naiveCandidates(last, excluded[r]!, 10);
        const values = (out[SHORTLIST.values]!.data as Float32Array).subarray(r * 10, r * 10 + 10);
        const indices = (out[SHORTLIST.indices]!.data as BigInt64Array).subarray(r * 10, r * 10 + 10);
        expect([...indices].map(Number)).toEqual(want.map((c) => c.v));
        want.forEach((c, j) => expect(values[j]).toBeCloseTo(c.x, 5));
        const ex = (out[SHORTLIST.excludedLogits]!.data as Float32Array).subarray(r * 6, r * 6 + 6);
        excluded[r]!.forEach((v, j) => expect(ex[j]).toBeCloseTo(last[v]!, 5));
      }
      await s.release();
    }
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
