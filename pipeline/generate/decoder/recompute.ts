// RecomputeDecoder: reruns the whole sequence each step; works on any causal-LM export, the reference the caches
// are tested against.
import type { InferenceSession } from 'onnxruntime-common';
import { lmFeeds, type CausalLm } from '../../../models/causal-lm.js';
import { DecoderIo, leftPad } from './io.js';
import { gatherRows, isIdentity } from './slots.js';
import type { Decoder, ShortlistRequest, Logits } from './types.js';

export class RecomputeDecoder implements Decoder {
  rows = 0;
  private ids: Int32Array = new Int32Array(0); // [rows, len]
  private mask: Uint8Array = new Uint8Array(0);
  private len = 0;

  constructor(
    private readonly session: InferenceSession,
    private readonly lm: CausalLm,
    private readonly io = new DecoderIo(null),
  ) {}

  get shortlist(): boolean {
    return this.io.shortlist;
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: ShortlistRequest): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    if (!this.lm.attentionMask && mask.some((m) => m === 0)) {
      throw new Error('prompts of different lengths need a graph with an attention_mask input');
    }
    Object.assign(this, { ids, mask, len, rows: prompts.length });
    const logits = await this.run(excluded);
    this.select(Int32Array.from({ length: prompts.length * copies }, (_, i) => Math.floor(i / copies)));
    return logits;
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    this.ids = gatherRows(this.ids, this.len, from, (n) => new Int32Array(n));
    this.mask = gatherRows(this.mask, this.len, from, (n) => new Uint8Array(n));
    this.rows = from.length;
  }

  async step(tokens: Int32Array, excluded?: ShortlistRequest): Promise<Logits> {
    const w = this.len + 1;
    const ids = new Int32Array(this.rows * w);
    const mask = new Uint8Array(this.rows * w);
    for (let r = 0; r < this.rows; r++) {
      ids.set(this.ids.subarray(r * this.len, (r + 1) * this.len), r * w);
      mask.set(this.mask.subarray(r * this.len, (r + 1) * this.len), r * w);
      ids[r * w + this.len] = tokens[r]!;
      mask[r * w + this.len] = 1;
    }
    Object.assign(this, { ids, mask, len: w });
    return this.run(excluded);
  }

  private async run(excluded: ShortlistRequest | undefined): Promise<Logits> {
    const feeds = lmFeeds(this.lm, { ids: this.ids, rows: this.rows, seq: this.len, mask: this.mask });
    return this.io.read(await this.session.run({ ...feeds, ...this.io.feeds(this.rows, excluded) }), excluded);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
