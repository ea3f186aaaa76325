// A tiny random OPT whose EOS row of the (tied) embedding is scaled up, so that EOS often ranks among the
// top candidates and the early-finish paths of beam search are exercised.
import type * as ort from 'onnxruntime-node';
import { afterAll, beforeAll } from 'vitest';
import { TINY_CONFIG } from '../../datasets/tiny-tokenizer.js';
import { openSession } from '../../models/session.js';
import { buildOptForward } from '../../models/opt/graph.js';
import { EMBED_TOKENS, initOptWeights } from '../../models/opt/weights.js';
import type { ModelProto } from '../../models/onnx/proto.js';

export const EOS = TINY_CONFIG.eos_token_id;
export const PAD = TINY_CONFIG.pad_token_id;

export function tinyModels(seed = 1, eosScale = 5): { withPast: ModelProto; sharedPrompt: ModelProto; noPast: ModelProto; vocab: number } {
  const w = initOptWeights(TINY_CONFIG, seed);
  const D = TINY_CONFIG.word_embed_proj_dim;
  const emb = w.get(EMBED_TOKENS)!;
  for (let i = EOS * D; i < (EOS + 1) * D; i++) emb[i]! *= eosScale;
  return {
    withPast: buildOptForward(TINY_CONFIG, w, { withPast: true }),
    sharedPrompt: buildOptForward(TINY_CONFIG, w, { withPast: true, sharedPrompt: true }),
    noPast: buildOptForward(TINY_CONFIG, w, { withPast: false, present: false }),
    vocab: TINY_CONFIG.vocab_size,
  };
}

/** Prompts of different lengths (left padding in a batch); the third starts with </s> as OPT prompts do. */
export const PROMPTS = [
  Int32Array.from([5, 6, 7, 8, 9]),
  Int32Array.from([10, 11, 12]),
  Int32Array.from([2, 40, 41, 42, 43, 44]),
  Int32Array.from([100, 200, 300, 400]),
];

/**
 * A session on `graph` (the references' recompute-everything graph), opened before the enclosing describe's tests
 * and released after them; call inside a describe and read it in a test.
 */
export function sessionForTests(graph: ModelProto): () => ort.InferenceSession {
  let session: ort.InferenceSession | undefined;
  beforeAll(async () => {
    session = await openSession(graph, { threads: 1 });
  });
  afterAll(async () => {
    await session?.release();
  });
  return () => session!;
}
