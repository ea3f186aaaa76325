// The IO adapter every decoder shares: the shortlist feeds and the logits it reads back (DecoderIo), and the
// left-padding of prompts.
import * as ort from 'onnxruntime-node';
import type { Tensor } from 'onnxruntime-common';
import { SHORTLIST, LOGSUMEXP } from '../../../models/graph-surgery.js';
import type { Shortlist, ShortlistRequest, Logits } from './types.js';

/** What every decoder adds to its feeds and reads from its outputs besides the model's own inputs: the logits or the shortlist. */
export class DecoderIo {
  /** `vocab`: the vocabulary size when the graph returns a shortlist, else null. */
  constructor(private readonly vocab: number | null) {}

  get shortlist(): boolean {
    return this.vocab !== null;
  }

  feeds(rows: number, excluded: ShortlistRequest | undefined): Record<string, Tensor> {
    if (!this.shortlist) return {};
    if (!excluded) throw new Error('a shortlist decoder needs the excluded tokens of every call');
    if (excluded.ids.length !== rows * excluded.width) throw new Error(`excluded ids: ${excluded.ids.length} values for ${rows} rows x ${excluded.width}`);
    return {
      [SHORTLIST.excludedIds]: new ort.Tensor('int64', BigInt64Array.from(excluded.ids, (v) => BigInt(v)), [rows, excluded.width]),
      [SHORTLIST.k]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(excluded.k, this.vocab!))), [1]),
    };
  }

  read(out: Record<string, Tensor>, excluded: ShortlistRequest | undefined): Logits {
    if (!this.shortlist) return lastLogits(out.logits, out[LOGSUMEXP]);
    const values = out[SHORTLIST.values];
    const indices = out[SHORTLIST.indices];
    const excludedLogits = out[SHORTLIST.excludedLogits];
    const lse = out[LOGSUMEXP];
    if (!values || !indices || !excludedLogits || !lse) throw new Error('the shortlist graph did not return its outputs');
    const [rows, k] = values.dims as [number, number];
    const l = lse.data as Float32Array;
    const seq = lse.dims[1] ?? 1;
    const logSumExp = seq === 1 ? l : Float32Array.from({ length: rows }, (_, r) => l[r * seq + seq - 1]!);
    const shortlist: Shortlist = {
      k,
      values: values.data as Float32Array,
      indices: Int32Array.from(indices.data as BigInt64Array, Number),
      excluded: excluded!,
      excludedLogits: excludedLogits.data as Float32Array,
    };
    return { data: new Float32Array(0), rows, vocab: this.vocab!, logSumExp, shortlist };
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
export function leftPad(prompts: readonly Int32Array[], padId: number): { ids: Int32Array; mask: Uint8Array; len: number } {
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
