// SlotCacheDecoder: what the two slot-cache decoders (KvCacheDecoder, SharedPromptDecoder) share.
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { kvNames, type CausalLm, type KvLayout } from '../../../models/causal-lm.js';
import { newKvName } from '../../../models/graph-surgery.js';
import { DecoderIo } from './io.js';

/** What the two slot-cache decoders share: the session, the graph's interface, the cache's heads and tensor names. */
export abstract class SlotCacheDecoder {
  rows = 0;
  protected readonly heads: number; // KV heads (fewer than the attention heads under grouped-query attention)
  protected readonly headDim: number;
  /** Per (layer, key|value): the past and prompt inputs, and the output of the new positions' keys or values. */
  protected readonly names: { past: string; prompt: string; fresh: string }[];

  constructor(
    protected readonly session: InferenceSession,
    protected readonly lm: CausalLm,
    kv: KvLayout,
    protected readonly io = new DecoderIo(null),
  ) {
    if (!lm.attentionMask) throw new Error('the KV-cache decoder needs a graph with an attention_mask input');
    this.heads = kv.kvHeads;
    this.headDim = kv.headDim;
    this.names = kvNames(kv).map((n) => ({ past: n.past, prompt: n.prompt, fresh: newKvName(n.layer, n.kind) }));
  }

  get shortlist(): boolean {
    return this.io.shortlist;
  }

  /** The graph's output of the new positions' keys or values for cache tensor i. */
  protected fresh(out: Record<string, Tensor>, i: number): Float32Array {
    const t = out[this.names[i]!.fresh];
    if (!t) throw new Error(`the model did not return ${this.names[i]!.fresh}`);
    return t.data as Float32Array;
  }
}
