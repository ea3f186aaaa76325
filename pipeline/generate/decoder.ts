// Causal-LM steppers over an onnxruntime session. A stepper holds a batch of rows (one per beam or
// sample); `prefill` runs the prompts once, `select` reorders / duplicates / drops rows (beam reordering,
// expansion to the beams, dropping finished prompts), `step` feeds one new token per row and returns the
// next-token logits [rows, vocab].
//
// KvCacheDecoder uses a graph with past_key_values inputs and present outputs (HF naming). RecomputeDecoder
// reruns the whole sequence each step on a plain graph (input_ids [+ attention_mask] -> logits): slow, but it
// works on any causal-LM export and is the reference the cache is tested against.
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { loadModel } from '../../models/onnx/io.js';
import type { ModelProto } from '../../models/onnx/proto.js';
import { openSession, type Provider } from '../../models/session.js';
import { BEAM_IDX, LOGSUMEXP, sliceLogitsToLastPosition, withBeamGather, withLogSumExp } from './graph-surgery.js';
import * as ort from 'onnxruntime-node';

export interface Decoder {
  /** Rows currently held. */
  readonly rows: number;
  /** Runs the prompts (left-padded with `padId` to a common length); returns the last logits [prompts, vocab]. */
  prefill(prompts: readonly Int32Array[], padId: number): Promise<Logits>;
  /** New row i takes old row `from[i]`; `from` may be shorter or longer than the current row count. */
  select(from: Int32Array): void;
  /** Optional hint: at most `rows` rows of up to `length` positions will be held (buffers are sized once). */
  reserve?(rows: number, length: number): void;
  /** Feeds one token per row; returns logits [rows, vocab], valid until the next call. */
  step(tokens: Int32Array): Promise<Logits>;
  release(): Promise<void>;
}

export interface Logits {
  data: Float32Array;
  rows: number;
  vocab: number;
  /** Per row log(sum(exp(logits))), when the graph computes it. */
  logSumExp?: Float32Array;
}

export interface DecoderOptions {
  threads?: number;
  provider?: Provider;
  /** Force the no-cache decoder even when the graph has past_key_values (testing, debugging). */
  noCache?: boolean;
  /** Keep the graph's full [batch, seq, vocab] logits instead of slicing to the last position before the LM head. */
  fullLogits?: boolean;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
export { BEAM_IDX };

/** Opens the right decoder for a model file or in-memory graph. */
export async function openDecoder(model: string | ModelProto, opts: DecoderOptions = {}): Promise<Decoder> {
  let proto = typeof model === 'string' ? loadModel(model) : model;
  const inputs = (proto.graph?.input ?? []).map((i) => i.name ?? '');
  if (!inputs.includes('input_ids')) {
    throw new Error(`${typeof model === 'string' ? model : 'model'}: graph has no input_ids input (inputs: ${inputs.join(', ')})`);
  }
  if (!opts.fullLogits) proto = sliceLogitsToLastPosition(proto);
  proto = withLogSumExp(proto);
  const sessionOpts = { threads: opts.threads, provider: opts.provider };
  const hasPast = inputs.some((n) => PAST.test(n));
  if (hasPast && !opts.noCache) return new KvCacheDecoder(await openSession(withBeamGather(proto), sessionOpts));
  if (hasPast) throw new Error('noCache needs a graph without past_key_values inputs (build it with withPast: false)');
  return new RecomputeDecoder(await openSession(proto, sessionOpts));
}

function toInt64(src: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]!);
  return out;
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

/** The rows of `from` applied after the rows of `first` (select twice without a step in between). */
function compose(first: Int32Array | null, from: Int32Array): Int32Array {
  return first ? from.map((i) => first[i]!) : from;
}

/**
 * KV-cache decoding. The cache never passes through JavaScript copies: the graph gets a `beam_idx` input
 * and gathers the past rows itself (reorder, expansion to the beams and dropping finished prompts are one
 * Gather), and the present outputs are written by onnxruntime straight into preallocated buffers that
 * alternate with the past ones (ping-pong), so no output tensor is allocated per step.
 */
export class KvCacheDecoder implements Decoder {
  rows = 0;
  private cacheRows = 0; // rows of the past tensors, before the pending gather
  private pending: Int32Array | null = null; // past rows gathered into the next run's rows
  private mask: Uint8Array = new Uint8Array(0); // [rows, past]
  private past = 0;
  private readonly buffers = new Map<string, [Float32Array, Float32Array]>();
  private cur = 0; // which buffer of each pair holds the past
  private readonly pastNames: string[];
  private readonly heads: number;
  private readonly headDim: number;
  private readonly hasMask: boolean;
  private capacity = { rows: 0, length: 0 };
  private readonly vocab: number | null;
  private logitsBuffer = new Float32Array(0);

  constructor(private readonly session: InferenceSession) {
    const meta = session.inputMetadata;
    this.pastNames = session.inputNames.filter((n) => PAST.test(n));
    this.hasMask = session.inputNames.includes('attention_mask');
    if (!session.inputNames.includes(BEAM_IDX)) throw new Error(`KvCacheDecoder needs a graph with a ${BEAM_IDX} input (see withBeamGather)`);
    const first = meta.find((m) => m.name === this.pastNames[0]);
    const shape = first && first.isTensor ? first.shape : [];
    const [heads, headDim] = [shape[1], shape[3]];
    if (typeof heads !== 'number' || typeof headDim !== 'number') {
      throw new Error(`${this.pastNames[0]}: expected a static [batch, heads, past, head_dim] shape, got [${shape.join(', ')}]`);
    }
    this.heads = heads;
    this.headDim = headDim;
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const vocab = logits && logits.isTensor ? logits.shape[2] : undefined;
    this.vocab = typeof vocab === 'number' ? vocab : null;
    for (const n of this.pastNames) {
      const present = n.replace('past_key_values', 'present');
      if (!session.outputNames.includes(present)) throw new Error(`the model has input ${n} but no output ${present}`);
    }
  }

  /** Sizes the cache buffers once for `rows` rows of up to `length` positions (otherwise they grow as needed). */
  reserve(rows: number, length: number): void {
    this.capacity = { rows: Math.max(rows, this.capacity.rows), length: Math.max(length, this.capacity.length) };
  }

  async prefill(prompts: readonly Int32Array[], padId: number): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    if (!this.hasMask && mask.some((m) => m === 0)) {
      throw new Error('prompts of different lengths need a graph with an attention_mask input');
    }
    this.rows = prompts.length;
    this.cacheRows = prompts.length;
    this.pending = null;
    this.mask = mask;
    this.past = 0;
    return this.run(ids, len);
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    this.pending = compose(this.pending, from);
    this.mask = gatherRows(this.mask, this.past, from, (n) => new Uint8Array(n));
    this.rows = from.length;
  }

  async step(tokens: Int32Array): Promise<Logits> {
    if (tokens.length !== this.rows) throw new Error(`step: ${tokens.length} tokens for ${this.rows} rows`);
    const mask = new Uint8Array(this.rows * (this.past + 1));
    for (let r = 0; r < this.rows; r++) {
      mask.set(this.mask.subarray(r * this.past, (r + 1) * this.past), r * (this.past + 1));
      mask[r * (this.past + 1) + this.past] = 1;
    }
    this.mask = mask;
    return this.run(tokens, 1);
  }

  /** The buffer pair slot `which` of `name`, grown to hold `size` floats. */
  private buffer(name: string, which: number, size: number): Float32Array {
    let pair = this.buffers.get(name);
    if (!pair) this.buffers.set(name, (pair = [new Float32Array(0), new Float32Array(0)]));
    if (pair[which]!.length < size) {
      const reserved = this.capacity.rows * this.heads * this.capacity.length * this.headDim;
      pair[which] = new Float32Array(Math.max(size, reserved));
    }
    return pair[which]!;
  }

  private async run(ids: Int32Array, seq: number): Promise<Logits> {
    const total = this.past + seq;
    const beamIdx = new BigInt64Array(this.rows);
    for (let r = 0; r < this.rows; r++) beamIdx[r] = BigInt(this.pending ? this.pending[r]! : r);
    const feeds: Record<string, Tensor> = {
      input_ids: new ort.Tensor('int64', toInt64(ids), [this.rows, seq]),
      [BEAM_IDX]: new ort.Tensor('int64', beamIdx, [this.rows]),
    };
    if (this.hasMask) feeds.attention_mask = new ort.Tensor('int64', toInt64(this.mask), [this.rows, total]);
    const fetches: Record<string, Tensor | null> = { logits: null, [LOGSUMEXP]: null };
    if (seq === 1 && this.vocab) {
      // Step logits go to one reused buffer too (valid until the next call, as the Decoder contract says).
      const size = this.rows * this.vocab;
      if (this.logitsBuffer.length < size) this.logitsBuffer = new Float32Array(Math.max(size, this.capacity.rows * this.vocab));
      fetches.logits = new ort.Tensor('float32', this.logitsBuffer.subarray(0, size), [this.rows, 1, this.vocab]);
    }
    const pastSize = this.cacheRows * this.heads * this.past * this.headDim;
    const presentSize = this.rows * this.heads * total * this.headDim;
    for (const n of this.pastNames) {
      const past = this.buffer(n, this.cur, pastSize).subarray(0, pastSize);
      feeds[n] = new ort.Tensor('float32', past, [this.cacheRows, this.heads, this.past, this.headDim]);
      const present = this.buffer(n, 1 - this.cur, presentSize).subarray(0, presentSize);
      fetches[n.replace('past_key_values', 'present')] = new ort.Tensor('float32', present, [this.rows, this.heads, total, this.headDim]);
    }
    const out = await this.session.run(feeds, fetches);
    this.cur = 1 - this.cur;
    this.cacheRows = this.rows;
    this.pending = null;
    this.past = total;
    // With a preallocated logits buffer, read it directly (ORT wrote into it).
    return lastLogits(fetches.logits ?? out.logits, out[LOGSUMEXP]);
  }

  async release(): Promise<void> {
    this.buffers.clear();
    await this.session.release();
  }
}

export class RecomputeDecoder implements Decoder {
  rows = 0;
  private ids: Int32Array = new Int32Array(0); // [rows, len]
  private mask: Uint8Array = new Uint8Array(0);
  private len = 0;
  private readonly hasMask: boolean;

  constructor(private readonly session: InferenceSession) {
    this.hasMask = session.inputNames.includes('attention_mask');
  }

  async prefill(prompts: readonly Int32Array[], padId: number): Promise<Logits> {
    const { ids, mask, len } = leftPad(prompts, padId);
    if (!this.hasMask && mask.some((m) => m === 0)) {
      throw new Error('prompts of different lengths need a graph with an attention_mask input');
    }
    Object.assign(this, { ids, mask, len, rows: prompts.length });
    return this.run();
  }

  select(from: Int32Array): void {
    if (isIdentity(from, this.rows)) return;
    this.ids = gatherRows(this.ids, this.len, from, (n) => new Int32Array(n));
    this.mask = gatherRows(this.mask, this.len, from, (n) => new Uint8Array(n));
    this.rows = from.length;
  }

  async step(tokens: Int32Array): Promise<Logits> {
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
    return this.run();
  }

  private async run(): Promise<Logits> {
    const feeds: Record<string, Tensor> = { input_ids: new ort.Tensor('int64', toInt64(this.ids), [this.rows, this.len]) };
    if (this.hasMask) feeds.attention_mask = new ort.Tensor('int64', toInt64(this.mask), [this.rows, this.len]);
    const out = await this.session.run(feeds);
    return lastLogits(out.logits, out[LOGSUMEXP]);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
