// Model directories: `model init` output loads in transformers.js with the naive forward's logits; weights
// round-trip through model.safetensors; foreign graphs load; broken directories give clear errors.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { forwardGraph, loadTrainingSource, openModelDir, readWeights, writeFinetuned, writeModelDir } from '../../models/model-dir/index.js';
import { buildOptForward } from '../../models/opt/graph.js';
import { initOptWeights } from '../../models/opt/weights.js';
import { saveModel } from '../../models/onnx/io.js';
import { f32, floatData, i64, openSession } from '../../models/session.js';
import { sharedPath } from '../helpers/shared.js';
import { initModelDir } from '../../scripts/commands/model.js';
import { naiveOptLogits, noisyWeights, sameFloats } from './naive.js';

const root = mkdtempSync(join(tmpdir(), 'model-dir-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('model directories', () => {
  it('TINY_CONFIG has one embedding row per token of the tiny tokenizer', () => {
    const tok = JSON.parse(tinyTokenizerFiles()['tokenizer.json']!) as { model: { vocab: Record<string, number> } };
    expect(TINY_CONFIG.vocab_size).toBe(Object.keys(tok.model.vocab).length);
  });

  it('`model init` writes a directory that transformers.js loads and runs with the naive logits', async () => {
    const dir = join(root, 'tiny-init');
    initModelDir({ config: 'tiny', seed: 4, out: dir });
    const md = openModelDir(dir);
    expect(md.graphs[0]!.lm.kv?.layers).toBe(2);
    expect(md.onnxDataPath).toBe(join(dir, 'onnx/model.onnx_data'));
    const w = readWeights(dir);
    expect(sameFloats(w.get('model.decoder.layers.1.fc2.weight'), initOptWeights(TINY_CONFIG, 4).get('model.decoder.layers.1.fc2.weight'))).toBe(true);

    const { AutoModelForCausalLM, Tensor, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = dirname(dir);
    const model = await AutoModelForCausalLM.from_pretrained(basename(dir), { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    const ids = [2, 17, 40, 99, 5, 300];
    const mask = [1, 1, 1, 1, 1, 1];
    const big = (a: number[]): BigInt64Array => BigInt64Array.from(a, (x) => BigInt(x));
    const out = (await model({
      input_ids: new Tensor('int64', big(ids), [1, ids.length]),
      attention_mask: new Tensor('int64', big(mask), [1, ids.length]),
    })) as { logits: { data: Float32Array; dims: number[] } };
    expect(out.logits.dims).toEqual([1, ids.length, TINY_CONFIG.vocab_size]);
    const want = naiveOptLogits(TINY_CONFIG, w, ids, mask);
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(0.05); // not a vacuous comparison
    let worst = 0;
    for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(out.logits.data[k]! - want[k]!));
    expect(worst).toBeLessThan(1e-4);
    // Generation through its KV-cache path runs too (greedy, a few tokens).
    const gen = (await model.generate({
      input_ids: new Tensor('int64', big(ids), [1, ids.length]),
      attention_mask: new Tensor('int64', big(mask), [1, ids.length]),
      max_new_tokens: 3,
      do_sample: false,
    })) as { dims: number[] };
    expect(gen.dims).toEqual([1, ids.length + 3]);
    await model.dispose();
  });

  it('writeFinetuned writes a copy with replaced weights (ONNX and safetensors)', async () => {
    const src = join(root, 'src');
    const cfg = { ...TINY_CONFIG, init_std: 0.1 };
    writeModelDir(src, { config: cfg, weights: initOptWeights(cfg, 1), tokenizerFiles: tinyTokenizerFiles() });
    const fresh = noisyWeights(cfg, 9);
    const fc1 = 'model.decoder.layers.0.fc1.weight';
    const emb = 'model.decoder.embed_tokens.weight';
    const out = join(root, 'best');
    writeFinetuned(loadTrainingSource(src), new Map([[fc1, fresh.get(fc1)!], [emb, fresh.get(emb)!]]), out);
    const w = readWeights(out);
    expect(sameFloats(w.get(fc1), fresh.get(fc1))).toBe(true);
    expect(sameFloats(w.get(emb), fresh.get(emb))).toBe(true);
    expect(sameFloats(w.get('model.decoder.layers.1.fc1.weight'), initOptWeights(cfg, 1).get('model.decoder.layers.1.fc1.weight'))).toBe(true);
    // The ONNX carries the same weights: its logits equal the naive forward over them.
    const s = await openSession(openModelDir(out).onnxPath!, { threads: 1 });
    const ids = [2, 8, 9, 10];
    const feeds: Record<string, ReturnType<typeof i64>> = { input_ids: i64(ids, [1, 4]), attention_mask: i64([1, 1, 1, 1], [1, 4]) };
    for (const name of s.inputNames) if (name.startsWith('past_')) feeds[name] = f32(new Float32Array(0), [1, 4, 0, 16]);
    const got = floatData((await s.run(feeds)).logits, 'logits');
    const want = naiveOptLogits(cfg, w, ids, [1, 1, 1, 1]);
    let worst = 0;
    for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
    expect(worst).toBeLessThan(1e-4);
    // Without model.safetensors the weights come from the ONNX initializers (HF names).
    const noSt = join(root, 'no-st');
    cpSync(out, noSt, { recursive: true });
    rmSync(join(noSt, 'model.safetensors'));
    const fromOnnx = readWeights(noSt);
    for (const [n, t] of w) expect(sameFloats(fromOnnx.get(n), t), n).toBe(true);
    expect(() => writeFinetuned(loadTrainingSource(src), new Map([['nope', new Float32Array(1)]]), join(root, 'x'))).toThrow(/has no weight named nope/);
    expect(() => writeFinetuned(loadTrainingSource(src), new Map([[fc1, new Float32Array(3)]]), join(root, 'x'))).toThrow(/fc1\.weight has 3 values/);
  });

  const torchExport = sharedPath('models/opt-tiny-torch-export-opset17');
  it.skipIf(!torchExport)('loads a plain torch export (input_ids -> logits only)', () => {
    const md = openModelDir(torchExport!);
    const lm = md.graphs[0]!.lm;
    expect([lm.attentionMask, lm.positionIds, lm.kv]).toEqual([null, null, null]);
    expect(md.producer).toBe('pytorch');
    expect(md.rebuildable).toBe(false);
    expect(forwardGraph(md).rel).toBe('onnx/model.onnx');
    const src = loadTrainingSource(torchExport!);
    expect(src.kind).toBe('onnx');
    expect(src.forward.graph!.input!.map((x) => x.name)).toEqual(['input_ids']);
  });

  it('training rebuilds an HF-named model without the KV cache', () => {
    const src = loadTrainingSource(join(root, 'tiny-init'));
    expect(src.kind).toBe('opt');
    expect(src.forward.graph!.input!.map((x) => x.name)).toEqual(['input_ids', 'attention_mask']);
    expect(src.forward.graph!.output!.map((x) => x.name)).toEqual(['logits']);
  });

  it('names what is missing in a broken directory', () => {
    const dir = join(root, 'broken');
    writeModelDir(dir, { config: TINY_CONFIG, weights: initOptWeights(TINY_CONFIG, 0), tokenizerFiles: tinyTokenizerFiles() });
    // A graph without logits.
    const m = buildOptForward(TINY_CONFIG, initOptWeights(TINY_CONFIG, 0), { withPast: true });
    m.graph!.output = m.graph!.output!.filter((o) => o.name !== 'logits' && o.name !== 'present.1.value');
    saveModel(m, join(dir, 'onnx/model.onnx'));
    expect(() => openModelDir(dir)).toThrow(/missing output `logits`.*output `present\.1\.value`/);
    // No tokenizer.
    const dir2 = join(root, 'notok');
    cpSync(join(root, 'tiny-init'), dir2, { recursive: true });
    rmSync(join(dir2, 'tokenizer.json'));
    expect(() => openModelDir(dir2)).toThrow(/holds no tokenizer/);
    // A config that disagrees with the graph, and an invalid config.
    const cfg = JSON.parse(readFileSync(join(root, 'tiny-init/config.json'), 'utf8')) as Record<string, unknown>;
    cpSync(join(root, 'tiny-init'), dir2, { recursive: true });
    writeFileSync(join(dir2, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 1000 }));
    expect(() => openModelDir(dir2)).toThrow(/512 entries per token but config\.json says vocab_size 1000/);
    writeFileSync(join(dir2, 'config.json'), JSON.stringify({ ...cfg, num_attention_heads: 'four' }));
    expect(() => openModelDir(dir2)).toThrow(/config\.json: invalid OPT config \(num_attention_heads/);
    expect(() => openModelDir(join(root, 'nothing'))).toThrow(/does not exist/);
  });
});
