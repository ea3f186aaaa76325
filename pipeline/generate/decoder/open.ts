// openDecoder: rewrites the graph (models/graph-surgery.ts) and picks the decoder that fits its interface.
import { describeCausalLm } from '../../../models/causal-lm.js';
import { sliceLogitsToLastPosition, splitLmHead, withBeamShortlist, withLogSumExp, withNewKeyValueOutputs } from '../../../models/graph-surgery.js';
import { loadModel } from '../../../models/onnx/io.js';
import type { ModelProto } from '../../../models/onnx/proto.js';
import { openSession } from '../../../models/session.js';
import { DecoderIo } from './io.js';
import { KvCacheDecoder } from './kv-cache.js';
import { PresentCacheDecoder } from './present-cache.js';
import { RecomputeDecoder } from './recompute.js';
import { SharedPromptDecoder } from './shared-prompt.js';
import type { Decoder, DecoderOptions } from './types.js';

/** Opens the right decoder for a model file or in-memory graph. */
export async function openDecoder(model: string | ModelProto, opts: DecoderOptions = {}): Promise<Decoder> {
  let proto = typeof model === 'string' ? loadModel(model) : model;
  const lm = describeCausalLm(proto, typeof model === 'string' ? model : 'model', opts.kvHints);
  const whole = proto;
  if (!opts.fullLogits) proto = sliceLogitsToLastPosition(proto);
  const sliced = proto !== whole;
  proto = withLogSumExp(splitLmHead(proto, 'logits', opts.lmHeadColumns));
  // The shortlist needs the vocabulary size (beam search numbers a prompt's candidates beam * vocab + token).
  const withShortlist = opts.shortlist && !opts.fullLogits && lm.vocab ? withBeamShortlist(proto, { lastPosition: !sliced }) : null;
  if (withShortlist) proto = withShortlist;
  const io = new DecoderIo(withShortlist ? lm.vocab : null);
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
