// KvCacheDecoder: KV-cache decoding with the cache in fixed per-row slots.
import * as ort from 'onnxruntime-node';
import type { Tensor } from 'onnxruntime-common';
import { lmFeeds } from '../../../models/causal-lm.js';
import { leftPad } from './io.js';
import { SlotCacheDecoder } from './slot-cache.js';
import { copyIntoSlots, isIdentity, permuteRowsInPlace, permuteSlotRanges, relayoutSlots } from './slots.js';
import type { Decoder, ShortlistRequest, Logits } from './types.js';

/**
 * KV-cache decoding with the cache kept in JavaScript, in fixed slots: each cache tensor is
 * [rows, heads, maxLen, head_dim] and slot j holds position j of every row, so the cache is fed to the
 * graph without copying (onnxruntime wraps the buffer) and the graph returns only the new tokens' keys and
 * values (withNewKeyValueOutputs), which are written into the next slot. Unfilled slots are masked out by
 * attention_mask, and the new token's position id counts only the row's real slots (OPT derives positions from
 * the cumulative mask itself; Llama-style graphs take position_ids), so empty slots change nothing but a few
 * masked attention scores. The cache holds the graph's KV heads (grouped-query attention: fewer than the
 * attention heads). Reordering beams moves only the rows that change, in place.
 */
export class KvCacheDecoder extends SlotCacheDecoder implements Decoder {
  private maxLen = 0; // slots per row
  private rowCapacity = 0;
  private filled = 0; // slots in use (the same for every row: left padding keeps rows aligned)
  private slotMask: Uint8Array = new Uint8Array(0); // [rowCapacity, maxLen]
  private cache: Float32Array[] = []; // per (layer, key|value): [rowCapacity, heads, maxLen, headDim]
  private scratch = new Float32Array(0); // saved rows while reordering, shared by all cache tensors
  private promptLen = 0;
  private origin = new Int32Array(0); // per row: the prompt it descends from (its prompt slots are that prompt's)
  private reserved = { rows: 0, length: 0 };

  reserve(rows: number, length: number): void {
    this.reserved = { rows: Math.max(rows, this.reserved.rows), length: Math.max(length, this.reserved.length) };
  }

  /** (Re)allocates the slot buffers for `rows` rows of `maxLen` slots, keeping the first `keepRows` rows' contents. */
  private allocate(rows: number, maxLen: number, keepRows: number): void {
    const { heads, headDim: hd, filled } = this;
    this.cache = this.names.map((_, i) =>
      relayoutSlots(this.cache[i] ?? new Float32Array(0), new Float32Array(rows * heads * maxLen * hd), keepRows * heads, this.maxLen, maxLen, filled, hd),
    );
    this.slotMask = relayoutSlots(this.slotMask, new Uint8Array(rows * maxLen), keepRows, this.maxLen, maxLen, filled, 1);
    this.rowCapacity = rows;
    this.maxLen = maxLen;
    this.scratch = new Float32Array(0);
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: ShortlistRequest): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    const P = prompts.length;
    this.rows = P * copies;
    this.filled = 0;
    const maxLen = Math.max(this.reserved.length, len + 1);
    const rowCap = Math.max(this.reserved.rows, P * copies);
    if (maxLen !== this.maxLen || rowCap > this.rowCapacity) this.allocate(rowCap, maxLen, 0);
    else this.slotMask.fill(0);
    const out = await this.session.run({ ...lmFeeds(this.lm, { ids, rows: P, seq: len, mask }), ...this.io.feeds(P, excluded) });
    this.store(out, len, copies);
    for (let r = 0; r < this.rows; r++) this.slotMask.set(mask.subarray(Math.floor(r / copies) * len, (Math.floor(r / copies) + 1) * len), r * this.maxLen);
    this.filled = len;
    this.promptLen = len;
    this.origin = Int32Array.from({ length: this.rows }, (_, i) => Math.floor(i / copies));
    return this.io.read(out, excluded);
  }

  /**
   * Writes the new keys/values [rows / copies, heads, seq, headDim] into slots filled .. filled+seq-1,
   * each source row into `copies` consecutive rows.
   */
  private store(out: Record<string, Tensor>, seq: number, copies = 1): void {
    const hd = this.headDim;
    const H = this.heads;
    this.names.forEach((_, i) => {
      const src = this.fresh(out, i);
      const dst = this.cache[i]!;
      // A decode step: rows x heads pieces of head_dim floats, one per row. The prefill's long pieces go by set.
      if (seq === 1 && copies === 1) return copyIntoSlots(src, dst, this.rows * H, hd, this.maxLen * hd, this.filled * hd);
      const piece = seq * hd; // floats per (row, head)
      for (let r = 0; r < this.rows; r++) {
        const s = Math.floor(r / copies);
        for (let h = 0; h < H; h++) dst.set(src.subarray((s * H + h) * piece, (s * H + h + 1) * piece), ((r * H + h) * this.maxLen + this.filled) * hd);
      }
    });
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    if (from.length > this.rowCapacity) this.allocate(from.length, this.maxLen, this.rows);
    const hd = this.headDim;
    const rowSize = this.heads * this.maxLen * hd;
    if (this.scratch.length < this.rowCapacity * rowSize) this.scratch = new Float32Array(this.rowCapacity * rowSize);
    // Beams of one prompt share its prompt slots, so a reorder within prompts moves generated slots only.
    const withinPrompts = from.length === this.rows && from.every((s, i) => this.origin[s] === this.origin[i]);
    if (withinPrompts) {
      const gen = (this.filled - this.promptLen) * hd;
      if (gen > 0) {
        for (const c of this.cache) {
          // View each (row, head) block's generated slots as one row of a [rows * heads, gen] table.
          permuteSlotRanges(c, this.heads, this.maxLen * hd, this.promptLen * hd, gen, from, this.scratch);
        }
      }
    } else {
      for (const c of this.cache) permuteRowsInPlace(c, rowSize, from, this.scratch);
      this.origin = from.map((s) => this.origin[s]!);
    }
    permuteRowsInPlace(this.slotMask, this.maxLen, from);
    this.rows = from.length;
  }

  async step(tokens: Int32Array, excluded?: ShortlistRequest): Promise<Logits> {
    if (tokens.length !== this.rows) throw new Error(`step: ${tokens.length} tokens for ${this.rows} rows`);
    if (this.filled === this.maxLen) this.allocate(this.rowCapacity, this.maxLen * 2, this.rows);
    const S = this.maxLen;
    // Slot j of row r is attended when it holds one of the row's real tokens; the new token's position is
    // the number of those (unfilled and padding slots are masked and count for nothing).
    const mask = new Uint8Array(this.rows * (S + 1));
    const positions = new BigInt64Array(this.rows);
    for (let r = 0; r < this.rows; r++) {
      let real = 0;
      for (let j = 0; j < this.filled; j++) if (this.slotMask[r * S + j]) (mask[r * (S + 1) + j] = 1), real++;
      mask[r * (S + 1) + S] = 1;
      positions[r] = BigInt(real);
    }
    const size = this.rows * this.heads * S * this.headDim;
    const past: Record<string, Tensor> = {};
    this.names.forEach((n, i) => {
      past[n.past] = new ort.Tensor('float32', this.cache[i]!.subarray(0, size), [this.rows, this.heads, S, this.headDim]);
    });
    const feeds = lmFeeds(this.lm, { ids: tokens, rows: this.rows, seq: 1, mask, pastLength: S, past, positions });
    const out = await this.session.run({ ...feeds, ...this.io.feeds(this.rows, excluded) });
    this.store(out, 1);
    for (let r = 0; r < this.rows; r++) this.slotMask[r * S + this.filled] = 1;
    this.filled++;
    return this.io.read(out, excluded);
  }

  async release(): Promise<void> {
    this.cache = [];
    await this.session.release();
  }
}
