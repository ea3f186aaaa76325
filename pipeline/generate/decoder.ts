// Causal-LM steppers over an onnxruntime session. A stepper holds a batch of rows (one per beam or
// sample); `prefill` runs the prompts once, `select` reorders / duplicates / drops rows (beam reordering,
// expansion to the beams, dropping finished prompts), `step` feeds one new token per row and returns the
// next-token logits [rows, vocab].
//
// What a graph takes and how it is fed (attention mask, position ids, past/present, GQA) is models/causal-lm.ts.
// KvCacheDecoder uses a graph with past_key_values inputs and present outputs (Optimum naming), rewritten to
// return only the new keys/values; it keeps the cache itself in fixed slots. SharedPromptDecoder does the same
// for graphs that also take prompt_key_values (our OPT decoding graph): each prompt's keys/values are held once
// for all its beams. PresentCacheDecoder feeds each
// present back as the next past, for KV graphs that rewrite does not recognise (Optimum's merged decoder).
// RecomputeDecoder reruns the whole sequence each step (a KV graph gets empty pasts): slow, but it works on
// any causal-LM export (e.g. a torch.onnx export) and is the reference the caches are tested against.
// Both graphs are rewritten to compute the LM head on the last position only and to output the log-softmax
// normaliser (graph-surgery.ts). Opened for beam search (`candidates`), they return each row's best tokens and
// the processed tokens' logits instead of the whole [rows, vocab] logits (withBeamCandidates).
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import * as ort from 'onnxruntime-node';
import { describeCausalLm, kvNames, lmFeeds, type CausalLm, type KvHints, type KvLayout } from '../../models/causal-lm.js';
import { loadModel } from '../../models/onnx/io.js';
import type { ModelProto } from '../../models/onnx/proto.js';
import { openSession, type Provider } from '../../models/session.js';
import { CANDIDATES, LOGSUMEXP, newKvName, sliceLogitsToLastPosition, splitLmHead, withBeamCandidates, withLogSumExp, withNewKeyValueOutputs } from './graph-surgery.js';

export interface Decoder {
  /** Rows currently held. */
  readonly rows: number;
  /** Whether it returns beam-search candidates (DecoderOptions.candidates): then every call takes `Excluded`. */
  readonly candidates: boolean;
  /**
   * Runs the prompts (left-padded with `padId` to a common length) once and holds `copies` rows per prompt
   * (rows p * copies .. p * copies + copies - 1: the beams); returns the last logits [prompts, vocab].
   */
  prefill(prompts: readonly Int32Array[], padId: number, copies?: number, excluded?: Excluded): Promise<Logits>;
  /** New row i takes old row `from[i]`; `from` may be shorter or longer than the current row count. */
  select(from: Int32Array): void;
  /** Optional hint: at most `rows` rows of up to `length` positions will be held (buffers are sized once). */
  reserve?(rows: number, length: number): void;
  /** Feeds one token per row; returns logits [rows, vocab], valid until the next call. */
  step(tokens: Int32Array, excluded?: Excluded): Promise<Logits>;
  release(): Promise<void>;
}

export interface Logits {
  /** [rows, vocab]; empty when the decoder returns `candidates` instead. */
  data: Float32Array;
  rows: number;
  vocab: number;
  /** Per row log(sum(exp(logits))), when the graph computes it. */
  logSumExp?: Float32Array;
  candidates?: Candidates;
}

/**
 * Per row, the tokens whose scores beam search's logits processors set, [rows, width] (a row with fewer is
 * padded with token 0, which beam search then scores from its logit like any other), and how many other tokens
 * to return per row.
 */
export interface Excluded {
  ids: Int32Array;
  width: number;
  k: number;
}

/** A candidates decoder's answer: per row, the k best logits of the tokens not excluded, and the excluded tokens' logits. */
export interface Candidates {
  k: number;
  /** [rows, k], best first (ties: lower token id first), and their token ids. */
  values: Float32Array;
  indices: Int32Array;
  /** The request: [rows, width] excluded ids, and their logits in the same places. */
  excluded: Excluded;
  excludedLogits: Float32Array;
}

export interface DecoderOptions {
  threads?: number;
  provider?: Provider;
  /** Recompute every step even when the graph has past_key_values (fed empty; testing, benchmarks). */
  noCache?: boolean;
  /** Keep the graph's full [batch, seq, vocab] logits instead of slicing to the last position before the LM head. */
  fullLogits?: boolean;
  /** Cache heads and head size from config.json, for graphs that leave them symbolic. */
  kvHints?: KvHints;
  /** Vocabulary columns per LM-head product (graph-surgery splitLmHead); tests use small ones on tiny vocabularies. */
  lmHeadColumns?: number;
  /** Return beam-search candidates instead of whole logits (withBeamCandidates), where the graph allows. */
  candidates?: boolean;
}

/** Opens the right decoder for a model file or in-memory graph. */
export async function openDecoder(model: string | ModelProto, opts: DecoderOptions = {}): Promise<Decoder> {
  let proto = typeof model === 'string' ? loadModel(model) : model;
  const lm = describeCausalLm(proto, typeof model === 'string' ? model : 'model', opts.kvHints);
  const whole = proto;
  if (!opts.fullLogits) proto = sliceLogitsToLastPosition(proto);
  const sliced = proto !== whole;
  proto = withLogSumExp(splitLmHead(proto, 'logits', opts.lmHeadColumns));
  // Candidates need the vocabulary size (beam search numbers a prompt's candidates beam * vocab + token).
  const withCandidates = opts.candidates && !opts.fullLogits && lm.vocab ? withBeamCandidates(proto, { lastPosition: !sliced }) : null;
  if (withCandidates) proto = withCandidates;
  const io = new DecoderIo(withCandidates ? lm.vocab : null);
  // No spinning: between steps the cores do JavaScript work (search, cache reorder), and on a shared machine
  // spinning threads take cycles from every other process (less CPU per token, the same or better wall time
  // under load: scripts/bench-generate.ts's header).
  const sessionOpts = { threads: opts.threads, provider: opts.provider, spinning: false };
  if (lm.kv && !opts.noCache) {
    const split = lm.attentionMask ? withNewKeyValueOutputs(proto, lm.kv) : null;
    if (split && lm.sharedPrompt) return new SharedPromptDecoder(await openSession(split.model, sessionOpts), lm, lm.kv, io);
    if (split) return new KvCacheDecoder(await openSession(split.model, sessionOpts), lm, lm.kv, io);
    return new PresentCacheDecoder(await openSession(proto, sessionOpts), lm, lm.kv, io);
  }
  return new RecomputeDecoder(await openSession(proto, sessionOpts), lm, io);
}

/** What every decoder adds to its feeds and reads from its outputs besides the model's own inputs: the logits or candidates. */
export class DecoderIo {
  /** `vocab`: the vocabulary size when the graph returns candidates, else null. */
  constructor(private readonly vocab: number | null) {}

  get candidates(): boolean {
    return this.vocab !== null;
  }

  feeds(rows: number, excluded: Excluded | undefined): Record<string, Tensor> {
    if (!this.candidates) return {};
    if (!excluded) throw new Error('a candidates decoder needs the excluded tokens of every call');
    if (excluded.ids.length !== rows * excluded.width) throw new Error(`excluded ids: ${excluded.ids.length} values for ${rows} rows x ${excluded.width}`);
    return {
      [CANDIDATES.excludedIds]: new ort.Tensor('int64', BigInt64Array.from(excluded.ids, (v) => BigInt(v)), [rows, excluded.width]),
      [CANDIDATES.k]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(excluded.k, this.vocab!))), [1]),
    };
  }

  read(out: Record<string, Tensor>, excluded: Excluded | undefined): Logits {
    if (!this.candidates) return lastLogits(out.logits, out[LOGSUMEXP]);
    const values = out[CANDIDATES.values];
    const indices = out[CANDIDATES.indices];
    const excludedLogits = out[CANDIDATES.excludedLogits];
    const lse = out[LOGSUMEXP];
    if (!values || !indices || !excludedLogits || !lse) throw new Error('the candidates graph did not return its outputs');
    const [rows, k] = values.dims as [number, number];
    const l = lse.data as Float32Array;
    const seq = lse.dims[1] ?? 1;
    const logSumExp = seq === 1 ? l : Float32Array.from({ length: rows }, (_, r) => l[r * seq + seq - 1]!);
    const candidates: Candidates = {
      k,
      values: values.data as Float32Array,
      indices: Int32Array.from(indices.data as BigInt64Array, Number),
      excluded: excluded!,
      excludedLogits: excludedLogits.data as Float32Array,
    };
    return { data: new Float32Array(0), rows, vocab: this.vocab!, logSumExp, candidates };
  }
}

/** Last-position logits of a [rows, seq, vocab] output (and of the [rows, seq] log-sum-exp, if any). */
function lastLogits(t: Tensor | undefined, lse?: Tensor): Logits {
  if (!t) throw new Error('the model did not return logits');
  if (t.type !== 'float32') throw new Error(`logits: expected float32, got ${t.type}`);
  const [rows, seq, vocab] = t.dims as [number, number, number];
  const data = t.data as Float32Array;
  let logSumExp: Float32Array | undefined;
  if (lse) {
    const l = lse.data as Float32Array;
    logSumExp = seq === 1 ? l : Float32Array.from({ length: rows }, (_, r) => l[r * seq + seq - 1]!);
  }
  if (seq === 1) return { data, rows, vocab, logSumExp };
  const out = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) out.set(data.subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab), r * vocab);
  return { data: out, rows, vocab, logSumExp };
}

/** Left-pads prompts into [n, len] ids and mask. */
function leftPad(prompts: readonly Int32Array[], padId: number): { ids: Int32Array; mask: Uint8Array; len: number } {
  const len = Math.max(...prompts.map((p) => p.length));
  if (!(len > 0)) throw new Error('prefill: empty prompt');
  const ids = new Int32Array(prompts.length * len).fill(padId);
  const mask = new Uint8Array(prompts.length * len);
  prompts.forEach((p, i) => {
    ids.set(p, i * len + len - p.length);
    mask.fill(1, i * len + len - p.length, (i + 1) * len);
  });
  return { ids, mask, len };
}

/** Row-major [rows, width] table whose rows can be gathered. */
interface RowArray<T> {
  subarray(begin: number, end: number): T;
  set(src: ArrayLike<number>, offset: number): void;
}
function gatherRows<T extends RowArray<T> & ArrayLike<number>>(
  a: T,
  width: number,
  from: Int32Array,
  make: (n: number) => T,
): T {
  const out = make(from.length * width);
  for (let i = 0; i < from.length; i++) out.set(a.subarray(from[i]! * width, (from[i]! + 1) * width), i * width);
  return out;
}

function isIdentity(from: Int32Array, rows: number): boolean {
  if (from.length !== rows) return false;
  for (let i = 0; i < rows; i++) if (from[i] !== i) return false;
  return true;
}

/**
 * Reorders rows of a [rows, rowSize] table in place (new row i = old row from[i]; `from` may be longer or
 * shorter than the current rows if the table has room): only rows that change are written, and only the
 * sources that would be overwritten before being read are saved first, into `scratch` when it is given
 * and large enough (no allocation per call), else into fresh copies.
 */
export function permuteRowsInPlace<T extends Float32Array | Uint8Array>(data: T, rowSize: number, from: Int32Array, scratch?: T): void {
  const changed: number[] = [];
  for (let i = 0; i < from.length; i++) if (from[i] !== i) changed.push(i);
  if (changed.length === 0) return;
  const overwritten = new Set(changed);
  const saved = new Map<number, Float32Array | Uint8Array>();
  for (const i of changed) {
    const s = from[i]!;
    if (!overwritten.has(s) || saved.has(s)) continue;
    const k = saved.size;
    const row = data.subarray(s * rowSize, (s + 1) * rowSize);
    if (scratch && scratch.length >= (k + 1) * rowSize) {
      const slot = scratch.subarray(k * rowSize, (k + 1) * rowSize);
      slot.set(row);
      saved.set(s, slot);
    } else saved.set(s, row.slice());
  }
  for (const i of changed) {
    const s = from[i]!;
    data.set(saved.get(s) ?? data.subarray(s * rowSize, (s + 1) * rowSize), i * rowSize);
  }
}

/**
 * permuteRowsInPlace for rows made of `groups` strided segments: row r's part is, for each group g,
 * data[((r * groups + g) * groupSize + offset) ...+ length]. Used to move only the generated slots.
 */
export function permuteSlotRanges(
  data: Float32Array,
  groups: number,
  groupSize: number,
  offset: number,
  length: number,
  from: Int32Array,
  scratch: Float32Array,
): void {
  const segment = (r: number, g: number) => data.subarray((r * groups + g) * groupSize + offset, (r * groups + g) * groupSize + offset + length);
  const changed: number[] = [];
  for (let i = 0; i < from.length; i++) if (from[i] !== i) changed.push(i);
  if (changed.length === 0) return;
  const overwritten = new Set(changed);
  const saved = new Map<number, number>(); // source row -> scratch slot
  for (const i of changed) {
    const s = from[i]!;
    if (!overwritten.has(s) || saved.has(s)) continue;
    const k = saved.size;
    for (let g = 0; g < groups; g++) scratch.set(segment(s, g), (k * groups + g) * length);
    saved.set(s, k);
  }
  for (const i of changed) {
    const s = from[i]!;
    const k = saved.get(s);
    for (let g = 0; g < groups; g++) {
      const src = k === undefined ? segment(s, g) : scratch.subarray((k * groups + g) * length, (k * groups + g + 1) * length);
      data.set(src, (i * groups + g) * groupSize + offset);
    }
  }
}

/**
 * Copies the first `filled` slots of each of the first `blocks` blocks of a slot buffer with `oldSlots` slots per
 * block into `fresh`, which has `slots` per block; a slot is `inner` values. Returns `fresh`.
 */
function relayoutSlots<T extends Float32Array | Uint8Array>(old: T, fresh: T, blocks: number, oldSlots: number, slots: number, filled: number, inner: number): T {
  for (let b = 0; b < blocks; b++) fresh.set(old.subarray(b * oldSlots * inner, (b * oldSlots + filled) * inner), b * slots * inner);
  return fresh;
}

/**
 * Writes `pieces` consecutive pieces of `size` floats of `src` into `dst` at `offset`, `offset + stride`, ...
 * (one new position per (row, head) of a slot cache): a plain loop, as a subarray per piece costs more than the copy.
 */
function copyIntoSlots(src: Float32Array, dst: Float32Array, pieces: number, size: number, stride: number, offset: number): void {
  let from = 0;
  let to = offset;
  for (let p = 0; p < pieces; p++, to += stride) for (let j = 0; j < size; j++) dst[to + j] = src[from++]!;
}

/** What the two slot-cache decoders share: the session, the graph's interface, the cache's heads and tensor names. */
abstract class SlotCacheDecoder {
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

  get candidates(): boolean {
    return this.io.candidates;
  }

  /** The graph's output of the new positions' keys or values for cache tensor i. */
  protected fresh(out: Record<string, Tensor>, i: number): Float32Array {
    const t = out[this.names[i]!.fresh];
    if (!t) throw new Error(`the model did not return ${this.names[i]!.fresh}`);
    return t.data as Float32Array;
  }
}

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

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: Excluded): Promise<Logits> {
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

  async step(tokens: Int32Array, excluded?: Excluded): Promise<Logits> {
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

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: Excluded): Promise<Logits> {
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

  async step(tokens: Int32Array, excluded?: Excluded): Promise<Logits> {
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

  get candidates(): boolean {
    return this.io.candidates;
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: Excluded): Promise<Logits> {
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

  async step(tokens: Int32Array, excluded?: Excluded): Promise<Logits> {
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

  private async run(excluded: Excluded | undefined): Promise<Logits> {
    const feeds = lmFeeds(this.lm, { ids: this.ids, rows: this.rows, seq: this.len, mask: this.mask });
    return this.io.read(await this.session.run({ ...feeds, ...this.io.feeds(this.rows, excluded) }), excluded);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

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

  get candidates(): boolean {
    return this.io.candidates;
  }

  private keep(out: Record<string, Tensor>, from: Int32Array): void {
    const width = this.kv.kvHeads * this.len * this.kv.headDim;
    for (const n of this.names) {
      const t = out[n.present];
      if (!t) throw new Error(`the model did not return ${n.present}`);
      this.past[n.past] = gatherRows(t.data as Float32Array, width, from, (k) => new Float32Array(k));
    }
  }

  async prefill(prompts: readonly Int32Array[], padId: number, copies = 1, excluded?: Excluded): Promise<Logits> {
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

  async step(tokens: Int32Array, excluded?: Excluded): Promise<Logits> {
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
