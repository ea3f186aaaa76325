// Causal-LM decoders over an onnxruntime session. A decoder holds a batch of rows (one per beam or
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
// normaliser (models/graph-surgery.ts). Opened for beam search (`shortlist`), they return each row's best tokens and
// the processed tokens' logits instead of the whole [rows, vocab] logits (withBeamShortlist).
//
// The folder: types.ts (the interface), open.ts (openDecoder), io.ts (DecoderIo), slots.ts (the slot kernels),
// slot-cache.ts (the slot decoders' base), one file per decoder.
export type { Shortlist, Decoder, DecoderOptions, ShortlistRequest, Logits } from './types.js';
export { openDecoder } from './open.js';
export { DecoderIo } from './io.js';
export { permuteRowsInPlace, permuteSlotRanges } from './slots.js';
export { KvCacheDecoder } from './kv-cache.js';
export { SharedPromptDecoder } from './shared-prompt.js';
export { RecomputeDecoder } from './recompute.js';
export { PresentCacheDecoder } from './present-cache.js';
