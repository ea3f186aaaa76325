// PresentCacheDecoder: feeds each present back as the next past (Optimum's merged decoder and other KV graphs
// the slot rewrite does not recognise).
import * as ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { kvNames, lmFeeds, type CausalLm, type KvLayout } from '../../../models/causal-lm.js';
import { DecoderIo, leftPad } from './io.js';
import { gatherRows, isIdentity } from './slots.js';
import type { Decoder, ShortlistRequest, Logits } from './types.js';

/**
 * KV-cache decoding that feeds each present.N.* back as past_key_values.N.* (the Optimum contract, with
 * no assumption about how the graph builds its presents): the cache grows by one position per step, and
 * reordering beams gathers whole rows. Used when KvCacheDecoder's graph rewrite does not apply.
 */
export class PresentCacheDecoder implements Decoder {
  rows = 0;
  private past: Record<string, Float32Array> = {}; // past name -> [rows, heads, len, headDim]
  private mask: Uint8Array = new Uint8Array(0); // [rows, len]
  private len = 0;
  private readonly names: { past: string; present: string }[];

  constructor(
    private readonly session: InferenceSession,
    private readonly lm: CausalLm,
    private readonly kv: KvLayout,
    private readonly io = new DecoderIo(null),
  ) {
    this.names = kvNames(kv);
  }

  get shortlist(): boolean {
    return this.io.shortlist;
  }

  private keep(out: Record<string, Tensor>, from: Int32Array): void {
    const width = this.kv.kvHeads * this.len * this.kv.headDim;
    for (const n of this.names) {
      const t = out[n.present];
      if (!t) throw new Error(`the model did not return ${n.present}`);
      this.past[n.past] = gatherRows(t.data as Float32Array, width, from, (k) => new Float32Array(k));
    }
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: ShortlistRequest): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    if (!this.lm.attentionMask && mask.some((m) => m === 0)) throw new Error('prompts of different lengths need a graph with an attention_mask input');
    const out = await this.session.run({ ...lmFeeds(this.lm, { ids, rows: prompts.length, seq: len, mask }), ...this.io.feeds(prompts.length, excluded) });
    const from = Int32Array.from({ length: prompts.length * copies }, (_, i) => Math.floor(i / copies));
    this.len = len;
    this.keep(out, from);
    this.mask = gatherRows(mask, len, from, (k) => new Uint8Array(k));
    this.rows = from.length;
    return this.io.read(out, excluded);
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    const width = this.kv.kvHeads * this.len * this.kv.headDim;
    for (const n of this.names) this.past[n.past] = gatherRows(this.past[n.past]!, width, from, (k) => new Float32Array(k));
    this.mask = gatherRows(this.mask, this.len, from, (k) => new Uint8Array(k));
    this.rows = from.length;
  }

  async step(tokens: Int32Array, excluded?: ShortlistRequest): Promise<Logits> {
    if (tokens.length !== this.rows) throw new Error(`step: ${tokens.length} tokens for ${this.rows} rows`);
    const L = this.len;
    const mask = new Uint8Array(this.rows * (L + 1));
    for (let r = 0; r < this.rows; r++) {
      mask.set(this.mask.subarray(r * L, (r + 1) * L), r * (L + 1));
      mask[r * (L + 1) + L] = 1;
    }
    const past: Record<string, Tensor> = {};
    for (const n of this.names) past[n.past] = new ort.Tensor('float32', this.past[n.past]!, [this.rows, this.kv.kvHeads, L, this.kv.headDim]);
    const out = await this.session.run({ ...lmFeeds(this.lm, { ids: tokens, rows: this.rows, seq: 1, mask, pastLength: L, past }), ...this.io.feeds(this.rows, excluded) });
    this.len = L + 1;
    this.mask = mask;
    this.keep(out, Int32Array.from({ length: this.rows }, (_, i) => i));
    return this.io.read(out, excluded);
  }

  async release(): Promise<void> {
    this.past = {};
    await this.session.release();
  }
}
