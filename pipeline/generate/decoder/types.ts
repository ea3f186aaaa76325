// What a decoder is: the Decoder interface, the logits or beam-search shortlist it returns, the tokens a
// shortlist call excludes, and the options it is opened with.
import type { KvHints } from '../../../models/causal-lm.js';
import type { Provider } from '../../../models/session.js';

export interface Decoder {
  /** Rows currently held. */
  readonly rows: number;
  /** Whether it returns a beam-search shortlist (DecoderOptions.shortlist): then every call takes `ShortlistRequest`. */
  readonly shortlist: boolean;
  /**
   * Runs the prompts (left-padded with `padId` to a common length) once and holds `copies` rows per prompt
   * (rows p * copies .. p * copies + copies - 1: the beams); returns the last logits [prompts, vocab].
   */
  prefill(prompts: readonly Int32Array[], padId: number, copies?: number, excluded?: ShortlistRequest): Promise<Logits>;
  /** New row i takes old row `from[i]`; `from` may be shorter or longer than the current row count. */
  select(from: Int32Array): void;
  /** Optional hint: at most `rows` rows of up to `length` positions will be held (buffers are sized once). */
  reserve?(rows: number, length: number): void;
  /** Feeds one token per row; returns logits [rows, vocab], valid until the next call. */
  step(tokens: Int32Array, excluded?: ShortlistRequest): Promise<Logits>;
  release(): Promise<void>;
}

export interface Logits {
  /** [rows, vocab]; empty when the decoder returns `shortlist` instead. */
  data: Float32Array;
  rows: number;
  vocab: number;
  /** Per row log(sum(exp(logits))), when the graph computes it. */
  logSumExp?: Float32Array;
  shortlist?: Shortlist;
}

/**
 * Per row, the tokens whose scores beam search's logits processors set, [rows, width] (a row with fewer is
 * padded with token 0, which beam search then scores from its logit like any other), and how many other tokens
 * to return per row.
 */
export interface ShortlistRequest {
  ids: Int32Array;
  width: number;
  k: number;
}

/** A shortlist decoder's answer: per row, the k best logits of the tokens not excluded, and the excluded tokens' logits. */
export interface Shortlist {
  k: number;
  /** [rows, k], best first (ties: lower token id first), and their token ids. */
  values: Float32Array;
  indices: Int32Array;
  /** The request: [rows, width] excluded ids, and their logits in the same places. */
  excluded: ShortlistRequest;
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
  /** Return a beam-search shortlist instead of whole logits (withBeamShortlist), where the graph allows. */
  shortlist?: boolean;
}
