// SharedPromptDecoder: KV-cache decoding that holds each prompt's keys/values once for all its beams.
import * as ort from 'onnxruntime-node';
import type { Tensor } from 'onnxruntime-common';
import { lmFeeds } from '../../../models/causal-lm.js';
import { leftPad } from './io.js';
import { SlotCacheDecoder } from './slot-cache.js';
import { copyIntoSlots, gatherRows, isIdentity, permuteRowsInPlace, permuteSlotRanges, relayoutSlots } from './slots.js';
import type { Decoder, ShortlistRequest, Logits } from './types.js';

/**
 * SharedPromptDecoder's generated slots grow by this many: attention costs per slot fed, filled or not (about 2% of
 * a decode step per 16 slots at 80 rows), and a growth copies only the generated slots.
 */
const SLOT_CHUNK = 16;

/**
 * KV-cache decoding for graphs with prompt_key_values inputs: the prefill's keys/values are kept once per prompt
 * ([prompts, heads, prompt, head_dim], the prefill's own outputs, never copied per beam) and only the
 * generated positions sit in per-row fixed slots [rows, heads, slots, head_dim] as in KvCacheDecoder, the slots
 * growing SLOT_CHUNK at a time. Rows stay
 * grouped k = copies per prompt (the graph pairs rows p * k .. p * k + k - 1 with prompt p), so `select` may
 * reorder rows within a prompt's group and drop or reorder whole groups. Attention then reads a prompt's
 * keys once for its k beams: for 5 beams and 64-token prompts, 40% less of the cache per step.
 */
export class SharedPromptDecoder extends SlotCacheDecoder implements Decoder {
  private copies = 1; // rows per prompt
  private prompt: Float32Array[] = []; // per (layer, key|value): [prompts, heads, promptLen, headDim]
  private promptMask: Uint8Array = new Uint8Array(0); // [prompts, promptLen]
  private promptLen = 0;
  private prompts = 0; // prompts held (the first `prompts` of the buffers)
  private cache: Float32Array[] = []; // per (layer, key|value): [rowCapacity, heads, slots, headDim], generated positions
  private slotMask = new Uint8Array(0); // [rowCapacity, slots]
  private slots = 0;
  private rowCapacity = 0;
  private filled = 0; // generated positions held (the same for every row)
  private scratch = new Float32Array(0);
  private reservedRows = 0;

  /** Sizes the rows once; the generated slots grow SLOT_CHUNK at a time whatever the length. */
  reserve(rows: number): void {
    this.reservedRows = Math.max(rows, this.reservedRows);
  }

  /** (Re)allocates the generated slots for `rows` rows of `slots`, keeping the first `keepRows` rows' contents. */
  private allocate(rows: number, slots: number, keepRows: number): void {
    const { heads, headDim: hd, filled } = this;
    this.cache = this.names.map((_, i) =>
      relayoutSlots(this.cache[i] ?? new Float32Array(0), new Float32Array(rows * heads * slots * hd), keepRows * heads, this.slots, slots, filled, hd),
    );
    this.slotMask = relayoutSlots(this.slotMask, new Uint8Array(rows * slots), keepRows, this.slots, slots, filled, 1);
    this.rowCapacity = rows;
    this.slots = slots;
    this.scratch = new Float32Array(0);
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: ShortlistRequest): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    const P = prompts.length;
    const out = await this.session.run({ ...lmFeeds(this.lm, { ids, rows: P, seq: len, mask }), ...this.io.feeds(P, excluded) });
    // The prefill's new keys/values are the prompts' cache as they come: [P, heads, len, headDim].
    this.prompt = this.names.map((_, i) => this.fresh(out, i));
    this.promptMask = mask;
    this.promptLen = len;
    this.prompts = P;
    this.copies = copies;
    this.rows = P * copies;
    this.filled = 0;
    const rowCap = Math.max(this.reservedRows, this.rows);
    if (this.slots !== SLOT_CHUNK || rowCap > this.rowCapacity) this.allocate(rowCap, SLOT_CHUNK, 0);
    else this.slotMask.fill(0);
    return this.io.read(out, excluded);
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    const k = this.copies;
    if (from.length % k !== 0) throw new Error(`select: ${from.length} rows for prompts of ${k} rows each`);
    // Each new group of k rows comes from one old group: that group's prompt.
    const groups = Int32Array.from({ length: from.length / k }, (_, j) => Math.floor(from[j * k]! / k));
    for (let i = 0; i < from.length; i++) {
      if (Math.floor(from[i]! / k) !== groups[Math.floor(i / k)]) throw new Error('select: the shared-prompt decoder keeps rows grouped by prompt');
    }
    if (!isIdentity(groups, this.prompts)) {
      // Prompts finished or reordered (rare): gathered into new buffers, which may also hold more groups than before.
      const size = this.heads * this.promptLen * this.headDim;
      this.prompt = this.prompt.map((p) => gatherRows(p, size, groups, (n) => new Float32Array(n)));
      this.promptMask = gatherRows(this.promptMask, this.promptLen, groups, (n) => new Uint8Array(n));
      this.prompts = groups.length;
    }
    if (from.length > this.rowCapacity) this.allocate(from.length, this.slots, this.rows);
    const rowSize = this.heads * this.slots * this.headDim;
    if (this.scratch.length < this.rowCapacity * rowSize) this.scratch = new Float32Array(this.rowCapacity * rowSize);
    if (this.filled > 0) {
      for (const c of this.cache) permuteSlotRanges(c, this.heads, this.slots * this.headDim, 0, this.filled * this.headDim, from, this.scratch);
    }
    permuteRowsInPlace(this.slotMask, this.slots, from);
    this.rows = from.length;
  }

  async step(tokens: Int32Array, excluded?: ShortlistRequest): Promise<Logits> {
    if (tokens.length !== this.rows) throw new Error(`step: ${tokens.length} tokens for ${this.rows} rows`);
    if (this.filled === this.slots) this.allocate(this.rowCapacity, this.slots + SLOT_CHUNK, this.rows);
    const { slots, promptLen: Lp, heads, headDim: hd } = this;
    const k = this.copies;
    // Mask columns: the row's prompt, its generated slots (unfilled ones masked), the new token. The new token's
    // position is the number of real tokens before it.
    const width = Lp + slots + 1;
    const mask = new Uint8Array(this.rows * width);
    const positions = new BigInt64Array(this.rows);
    for (let r = 0; r < this.rows; r++) {
      const pm = this.promptMask.subarray(Math.floor(r / k) * Lp, (Math.floor(r / k) + 1) * Lp);
      mask.set(pm, r * width);
      let real = 0;
      for (let j = 0; j < Lp; j++) real += pm[j]!;
      for (let j = 0; j < this.filled; j++) if (this.slotMask[r * slots + j]) (mask[r * width + Lp + j] = 1), real++;
      mask[r * width + width - 1] = 1;
      positions[r] = BigInt(real);
    }
    const past: Record<string, Tensor> = {};
    const prompt: Record<string, Tensor> = {};
    this.names.forEach((n, i) => {
      past[n.past] = new ort.Tensor('float32', this.cache[i]!.subarray(0, this.rows * heads * slots * hd), [this.rows, heads, slots, hd]);
      prompt[n.prompt] = new ort.Tensor('float32', this.prompt[i]!.subarray(0, this.prompts * heads * Lp * hd), [this.prompts, heads, Lp, hd]);
    });
    const feeds = lmFeeds(this.lm, { ids: tokens, rows: this.rows, seq: 1, mask, pastLength: width - 1, past, prompt, positions });
    const out = await this.session.run({ ...feeds, ...this.io.feeds(this.rows, excluded) });
    this.cache.forEach((c, i) => copyIntoSlots(this.fresh(out, i), c, this.rows * heads, hd, slots * hd, this.filled * hd));
    for (let r = 0; r < this.rows; r++) this.slotMask[r * slots + this.filled] = 1;
    this.filled++;
    return this.io.read(out, excluded);
  }

  async release(): Promise<void> {
    this.cache = [];
    this.prompt = [];
    await this.session.release();
  }
}
