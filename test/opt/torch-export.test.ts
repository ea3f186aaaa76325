// Cross-check against PyTorch: ../shared holds a tiny OPT exported by torch.onnx.export (input_ids -> logits).
// Its weights, renamed to HF names (transposed MatMul weights found through the node names), fed to our
// graph, must give the exported graph's logits.
import { describe, expect, it } from 'vitest';
import { readOptConfig } from '../../models/opt/config.js';
import { buildOptForward } from '../../models/opt/graph.js';
import { loadModel } from '../../models/onnx/io.js';
import { dimsOf, type ITensorProto } from '../../models/onnx/proto.js';
import { floatData, i64, openSession } from '../../models/session.js';
import { sharedPath } from '../helpers/shared.js';

const dir = sharedPath('models/opt-tiny-torch-export-opset17');

// A copy: protobufjs hands out Node Buffers whose slice() is a view of the whole file.
const floats = (t: ITensorProto): Float32Array => new Float32Array(new Uint8Array(t.rawData!).buffer);

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

describe.skipIf(!dir)('torch export cross-check', () => {
  it('our graph with the exported weights gives the PyTorch-exported logits', async () => {
    const cfg = readOptConfig(`${dir}/config.json`);
    const path = `${dir}/onnx/model.onnx`;
    const model = loadModel(path);
    const graph = model.graph!;
    const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
    const weights = new Map<string, Float32Array>();
    const hf = (name: string): string =>
      `model.decoder.${name.replace(/^layers\.(\d+)\.(q_proj|k_proj|v_proj|out_proj)/, 'layers.$1.self_attn.$2')}`;
    for (const [name, t] of inits) if (/^(embed_|layers\.|final_layer_norm)/.test(name)) weights.set(hf(name), floats(t));
    let head: Float32Array | null = null;
    for (const n of graph.node ?? []) {
      if (n.opType !== 'MatMul') continue;
      const w = inits.get(n.input![1]!);
      if (!w) continue;
      const [rows, cols] = dimsOf(w) as [number, number];
      const data = transpose(floats(w), rows, cols); // torch stores W^T for MatMul
      const m = /\/(layers\.\d+)\/(q_proj|k_proj|v_proj|out_proj|fc1|fc2)\/MatMul/.exec(n.output![0]!);
      if (m) weights.set(`${hf(`${m[1]}.${m[2]}`)}.weight`, data);
      else head = data;
    }
    expect(weights.size).toBe(2 + 2 + cfg.num_hidden_layers * 16);
    // The head is tied: the exporter's transposed copy equals embed_tokens.
    const emb = weights.get('model.decoder.embed_tokens.weight')!;
    expect(head!.length).toBe(emb.length);
    expect(head!.every((x, k) => x === emb[k])).toBe(true); // (toEqual is slow on 1.6M elements)

    const B = 2;
    const T = 11;
    const ids = Array.from({ length: B * T }, (_, k) => (k * 7919 + 13) % cfg.vocab_size);
    const ref = await openSession(path, { threads: 1 });
    const want = floatData((await ref.run({ input_ids: i64(ids, [B, T]) })).logits, 'logits');
    const ours = await openSession(buildOptForward(cfg, weights, { withPast: false, present: false }), { threads: 1 });
    const got = floatData((await ours.run({ input_ids: i64(ids, [B, T]), attention_mask: i64(new Array<number>(B * T).fill(1), [B, T]) })).logits, 'logits');
    expect(got.length).toBe(want.length);
    let worst = 0;
    let scale = 0;
    for (let k = 0; k < want.length; k++) {
      worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
      scale = Math.max(scale, Math.abs(want[k]!));
    }
    expect(scale).toBeGreaterThan(0.05);
    expect(worst).toBeLessThan(1e-4);
  });
});
