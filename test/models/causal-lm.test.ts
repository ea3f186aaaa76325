// The causal-LM interface: what describeCausalLm reads from a graph's inputs/outputs, what it refuses
// (naming what is missing), and what lmFeeds / trainingConstants feed, checked against values by hand.
import { describe, expect, it } from 'vitest';
import { describeCausalLm, lmFeeds, positionsFromMask, trainingConstants } from '../../models/causal-lm.js';
import { DataType, onnx, tensorValues, valueInfo, type ModelProto } from '../../models/onnx/proto.js';

function graphWith(inputs: [string, DataType, (number | string)[]][], outputs: [string, DataType, (number | string)[]][]): ModelProto {
  return onnx.ModelProto.create({
    graph: onnx.GraphProto.create({
      name: 'io',
      input: inputs.map(([n, t, s]) => valueInfo(n, t, s)),
      output: outputs.map(([n, t, s]) => valueInfo(n, t, s)),
    }),
  });
}

const I64 = DataType.INT64;
const F = DataType.FLOAT;
const kvIo = (layers: number, heads: number | string): { ins: [string, DataType, (number | string)[]][]; outs: [string, DataType, (number | string)[]][] } => {
  const ins: [string, DataType, (number | string)[]][] = [];
  const outs: [string, DataType, (number | string)[]][] = [];
  for (let l = 0; l < layers; l++)
    for (const k of ['key', 'value']) {
      ins.push([`past_key_values.${l}.${k}`, F, ['b', heads, 'p', 8]]);
      outs.push([`present.${l}.${k}`, F, ['b', heads, 't', 8]]);
    }
  return { ins, outs };
};

describe('causal-LM interface', () => {
  it('positions follow transformers: cumsum(mask) - 1, padding positions 1', () => {
    const mask = Uint8Array.from([0, 0, 1, 1, 1, /* row 2 */ 1, 1, 1, 1, 1]);
    expect(Array.from(positionsFromMask(mask, 2, 5), Number)).toEqual([1, 1, 0, 1, 2, 0, 1, 2, 3, 4]);
    expect(Array.from(positionsFromMask(mask, 2, 5, 2), Number)).toEqual([1, 2, 3, 4]); // the last 2 columns
  });

  it('reads an Optimum KV graph (GQA: 2 KV heads) and feeds every input it declares', () => {
    const { ins, outs } = kvIo(2, 2);
    const m = graphWith(
      [['input_ids', I64, ['b', 's']], ['attention_mask', I64, ['b', 't']], ['position_ids', I64, ['b', 's']], ...ins, ['token_type_ids', I64, ['b', 's']], ['num_logits_to_keep', I64, []]],
      [['logits', F, ['b', 's', 11]], ...outs],
    );
    const lm = describeCausalLm(m, 'g');
    expect(lm.kv).toEqual({ layers: 2, kvHeads: 2, headDim: 8, dtype: F });
    expect(lm.vocab).toBe(11);
    // One new token per row after a past of 3 slots, row 0 left-padded by one.
    const mask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 1]);
    const feeds = lmFeeds(lm, { ids: [5, 6], rows: 2, seq: 1, mask, pastLength: 3 });
    expect(Object.keys(feeds).sort()).toEqual(
      ['attention_mask', 'input_ids', 'num_logits_to_keep', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value', 'position_ids', 'token_type_ids'].sort(),
    );
    expect(Array.from(feeds.position_ids!.data as BigInt64Array, Number)).toEqual([2, 3]);
    expect(feeds.attention_mask!.dims).toEqual([2, 4]);
    expect(feeds['past_key_values.1.value']!.dims).toEqual([2, 2, 0, 8]); // no past given: empty
    expect(Array.from(feeds.token_type_ids!.data as BigInt64Array, Number)).toEqual([0, 0]);
    // Training folds the same inputs to constants at fixed shapes.
    const consts = new Map(trainingConstants(lm, 2, 3).map((t) => [t.name, t]));
    expect(Array.from(tensorValues(consts.get('position_ids')!) as BigInt64Array, Number)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(consts.get('past_key_values.0.key')!.dims.map(Number)).toEqual([2, 2, 0, 8]);
    expect([...consts.keys()]).not.toContain('attention_mask');
  });

  it('refuses what cannot run and names what is missing', () => {
    const { ins, outs } = kvIo(1, 4);
    expect(() => describeCausalLm(graphWith([['ids', I64, ['b', 's']]], [['out', F, ['b', 's', 3]]]), 'x.onnx')).toThrow(
      /x\.onnx is not a causal-LM graph.*input `input_ids`.*output `logits`.*inputs \[ids\]/,
    );
    expect(() => describeCausalLm(graphWith([['input_ids', I64, ['b', 's']], ...ins], [['logits', F, ['b', 's', 3]], outs[0]!]), 'y')).toThrow(
      /missing output `present\.0\.value`/,
    );
    expect(() => describeCausalLm(graphWith([['input_ids', I64, ['b', 's']], ['pixel_values', F, ['b', 3]]], [['logits', F, ['b', 's', 3]]]), 'z')).toThrow(
      /graph input\(s\) \[pixel_values\] cannot be fed/,
    );
    const symbolic = kvIo(1, 'kv_heads');
    const m = graphWith([['input_ids', I64, ['b', 's']], ...symbolic.ins], [['logits', F, ['b', 's', 3]], ...symbolic.outs]);
    expect(() => describeCausalLm(m, 'w')).toThrow(/symbolic heads .*num_key_value_heads/);
    expect(describeCausalLm(m, 'w', { kvHeads: 2, headDim: 8 }).kv?.kvHeads).toBe(2); // config.json fills them in
  });
});
