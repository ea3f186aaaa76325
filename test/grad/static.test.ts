// Static shapes and folding: the cheap affine probe (batch 1 and 2) predicts exactly what a full probe at the real
// batch measures, shape subgraphs are folded away, and past_key_values inputs disappear.
import { describe, expect, it } from 'vitest';
import { weightNames } from '../../models/onnx/weights.js';
import { staticForward } from '../../models/grad/static.js';
import { tensorNumbers } from '../../models/onnx/proto.js';
import { buildOptForward, initOptWeights } from '../../models/opt/index.js';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { DataType } from '../../models/onnx/proto.js';
import { buildToyTransformer } from './toy-transformer.js';

describe('staticForward', () => {
  it('affine shape prediction equals a full probe at the real batch (tiny OPT with past inputs, batch 5)', async () => {
    const fwd = buildOptForward(TINY_CONFIG, initOptWeights(TINY_CONFIG, 1), { withPast: true });
    const variables = new Set(weightNames(fwd));
    const fast = await staticForward(fwd, { batch: 5, seq: 7, variables });
    const full = await staticForward(fwd, { batch: 5, seq: 7, variables, affineProbe: false });
    expect(fast.info.size).toBe(full.info.size);
    for (const [name, i] of full.info) expect(fast.info.get(name), name).toEqual(i);
    expect([...fast.initializers.keys()].sort()).toEqual([...full.initializers.keys()].sort());
    for (const [name, t] of full.initializers) expect(tensorNumbers(fast.initializers.get(name)!), name).toEqual(tensorNumbers(t));
    expect(fast.info.get('logits')!.shape).toEqual([5, 7, TINY_CONFIG.vocab_size]);
    expect(fast.inputs.map((v) => v.name)).toEqual(['input_ids', 'attention_mask']);
    // The attention mask is data: its CumSum/positions path is kept, not folded.
    expect(fast.nodes.some((n) => n.opType === 'CumSum')).toBe(true);
  });

  it('folds Shape/Range/Trilu/ConstantOfShape subgraphs of a torch-style graph into constants', async () => {
    const fwd = buildToyTransformer({ vocab: 7, hidden: 4, ffn: 8, positions: 12, layers: 1 }, DataType.FLOAT);
    const sf = await staticForward(fwd, { batch: 3, seq: 5, variables: new Set(weightNames(fwd)) });
    const ops = new Set(sf.nodes.map((n) => n.opType));
    for (const op of ['Shape', 'Range', 'Trilu', 'ConstantOfShape', 'Concat']) expect(ops.has(op), op).toBe(false);
    // The folded causal mask: -1e4 strictly above the diagonal, 0 elsewhere.
    const mask = [...sf.initializers.values()].find((t) => (t.dims ?? []).length === 2 && Number(t.dims![0]) === 5 && Number(t.dims![1]) === 5);
    expect(mask).toBeDefined();
    const v = tensorNumbers(mask!);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) expect(v[i * 5 + j]).toBe(j > i ? -1e4 : 0);
  });
});
