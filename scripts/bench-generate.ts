// Beam-search throughput on an OPT-125m-shaped model with random weights: 16 prompts of 64 tokens,
// 5 beams, 64 new tokens (min = max, repetition penalty 3.0 as the paper's code), 2 threads.
// Reports continuation tokens/s (one token per prompt per step, prefill included) and peak RSS.
// Reference (issue #5): PyTorch 1.13 CPU KV-cache beam search, same semantics, 2 threads, 16 new tokens:
// 13.4 continuation tokens/s.
//   npx tsx scripts/bench-generate.ts [--new-tokens 16] [--prompts 16] [--beams 5] [--threads 2] [--no-cache] [--provider cpu|cuda]
//     [--whole-logits] [--per-row-prompt]   (the paths before the third round, for side-by-side figures)
// Measured 2026-11-30 side by side (issue #16; shared 2 cores at load 8-10, so CPU per token is the figure to
// compare): before 38.9-40.7 ms CPU per token (12.3-16.3 tokens/s wall), after 24.2-25.2 ms (22.5-24.1 tokens/s
// wall), i.e. ~80 tokens/s on 2 idle cores; same tokens checksum. Again at load 7-8: before 36.0-39.8 ms
// (19.9-24.3 tokens/s), after 25.3-26.7 ms (30.0-33.5 tokens/s). --new-tokens 16 at load 5-6: 26.5-30.2 tokens/s
// wall (29.7-33.6 ms CPU per token), before 19.8 (43.9 ms). --prompts 32: 28.1 ms per token, peak RSS 4.05 GB.
// At low load (0.3-1.3), one sitting: before 71.9 tokens/s, after 80.3-82.4 (20.3-20.8 ms CPU per token, 2.8 GB);
// --new-tokens 16: 61.0 tokens/s (PyTorch 1.13 reference above: 13.4).
// Same day, the choices behind that (OPT-125m, 80 beam rows x 128 slots): attention over Concat(past, new) spent a
// third of a decode step copying the cache (now two products); sessions without spinning ~20% less CPU per token,
// the same or better wall time under load.
// Second round (issue #16): the LM head as products over vocabulary slices of 2048 columns, the log-sum-exp
// spelled out (models/graph-surgery.ts), continuing beams left in their parent's row (placeBeams), and
// this script forwarding reserve() as `collapse generate` does (before, the cache grew at the first step: a
// relayout that cost the 16-new-token figures above a third of their CPU time). Side by side with b9d02ed (same
// script), one sitting, load 2.7-5.5: before 20.1-23.8 ms CPU per token (37.5-85.0 tokens/s), after 16.7-18.3 ms
// (92.6-102.8 tokens/s, 109-120 on 2 idle cores), 2.7-2.9 GB, same checksum; cache reorder 1.30-2.40 -> 0.53-0.61 s.
// --new-tokens 16: before 81.7 tokens/s (21.7 ms), after 87.0 (19.9 ms; PyTorch 1.13 reference above: 13.4).
// Where a step's forward goes now (profile, 1 thread, 80 rows x 128 slots): the layers' and LM head's products
// ~2/3, attention over the cache ~1/4 (memory-bound: 755 MB of keys and values read per step), the rest small.
// --prompts 32, same sitting (load 3.5-5.5): 16.7 ms CPU per token (95.5 tokens/s), peak 3.4 GB; --prompts 16:
// 16.2 ms (100.0 tokens/s), 2.75 GB. The earlier 4.05 GB was the growth relayout holding two caches at once.
// Third round (issue #16): a beam shortlist from the graph instead of whole logits (graph-surgery withBeamShortlist)
// and the shared-prompt cache (each prompt's keys once for its beams, SharedPromptDecoder). Side by side with
// 0827427, one sitting, load 1.2-1.6: before 101.8 and 105.6 tokens/s (16.8 and 16.2 ms CPU per token), after 120.1
// and 120.8 (14.1 and 14.2 ms), same checksum; search 0.78 -> 0.26 s, forward 7.6-7.9 -> 7.2 s. --new-tokens 16:
// before 95.5 and 93.3, after 101.5 and 95.6. Each part alone, same sitting, 3 pairs: --per-row-prompt 15.9-16.8 ms
// against 14.3-15.2; --whole-logits search 0.77-0.84 s against 0.19-0.31 s. Tried and dropped: q, k and v as one
// 2304-wide product (115.4-119.2 against 117-121 tokens/s); two batches on two sessions at once (115.8 against
// 120.7 tokens/s, 4.1 GB); --prompts 32: 121.5 against 117.4 tokens/s for 16, 3.25 GB.
// Any model directory (its generation plan: KV cache where its graph has one, else recomputation):
//   npx tsx scripts/bench-generate.ts --model DIR [--no-cache]
// Measured 2026-11-30 (2 shared cores): the tiny Llamas of ../shared/models, --prompts 4 --prompt-len 64
// --new-tokens 64, 5 beams. Load 13-15: Optimum KV cache 62.9 tokens/s (forward 2.12 s); the cache-less export of
// the same weights 34.8 tokens/s (forward 5.63 s); the KV graph with --no-cache 43.0 tokens/s. Load 9-10: KV cache
// 90.0 tokens/s (forward 1.86 s), cache-less export 73.5 tokens/s (forward 2.80 s). Same tokens in every run.
import './bench-malloc.js'; // first: the allocator setting of the collapse bin
import { loadavg } from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { generationPlan, openModelDir } from '../models/model-dir/index.js';
import type { ModelProto } from '../models/onnx/proto.js';
import { OPT_125M } from '../models/opt/config.js';
import { TINY_CONFIG } from '../datasets/tokenizer.js';
import { buildOptForward } from '../models/opt/graph.js';
import { optParamSpecs, type Weights } from '../models/opt/weights.js';
import { Rng } from '../util/rng.js';
import { beamSearch } from '../pipeline/generate/beam-search.js';
import { openDecoder, type Decoder } from '../pipeline/generate/decoder/index.js';

const args = await yargs(hideBin(process.argv))
  .option('new-tokens', { type: 'number', default: 64, describe: 'new tokens per prompt (the reference figure uses 16)' })
  .option('prompts', { type: 'number', default: 16, describe: 'prompts in the batch' })
  .option('prompt-len', { type: 'number', default: 64, describe: 'tokens per prompt' })
  .option('beams', { type: 'number', default: 5, describe: 'num_beams' })
  .option('threads', { type: 'number', default: 2, describe: 'onnxruntime intra-op threads' })
  .option('repetition-penalty', { type: 'number', default: 3.0, describe: 'HF repetition_penalty' })
  .option('model', { type: 'string', default: 'opt-125m', describe: 'opt-125m or tiny (random OPT weights), or a model directory of any family' })
  .option('provider', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const, describe: 'onnxruntime execution provider' })
  .option('no-cache', { type: 'boolean', default: false, describe: 'recompute every step without the KV cache' })
  .option('per-row-prompt', { type: 'boolean', default: false, describe: "hold the prompt's keys/values in every beam's row (the cache before shared prompts)" })
  .option('whole-logits', { type: 'boolean', default: false, describe: 'return every logit to JavaScript and search there (the path before the beam shortlist)' })
  .parserConfiguration({ 'boolean-negation': false }) // --no-cache is a flag of its own
  .strict()
  .help()
  .parseAsync();

/**
 * Random weights of the right shapes, quickly: uniform with the std of N(0, init_std) for matrices,
 * LayerNorm weights 1, biases 0 (initOptWeights' Box-Muller over 125M values takes tens of seconds).
 */
function fastRandomWeights(cfg: typeof OPT_125M, seed: number): Weights {
  let x = seed >>> 0 || 1;
  const scale = cfg.init_std * Math.sqrt(3) / 2 ** 31;
  const weights: Weights = new Map();
  for (const [name, spec] of optParamSpecs(cfg)) {
    const w = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    if (spec.kind === 'linear' || spec.kind === 'embedding') {
      for (let i = 0; i < w.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        w[i] = (x | 0) * scale;
      }
    } else if (spec.kind === 'ln_weight') w.fill(1);
    weights.set(name, w);
  }
  return weights;
}

const preset = args.model === 'tiny' ? TINY_CONFIG : args.model === 'opt-125m' ? OPT_125M : null;
let t = performance.now();
let graph: string | ModelProto;
let ids: { vocab: number; bos: number | null; eos: number; pad: number };
let kvHints;
if (preset) {
  const weights = fastRandomWeights(preset, 1);
  const withPast = !args['no-cache'];
  graph = buildOptForward(preset, weights, { withPast, present: withPast, sharedPrompt: withPast && !args['per-row-prompt'] });
  weights.clear();
  ids = { vocab: preset.vocab_size, bos: preset.bos_token_id, eos: preset.eos_token_id, pad: preset.pad_token_id };
} else {
  const md = openModelDir(args.model);
  const plan = generationPlan(md);
  graph = plan.graph;
  kvHints = plan.kvHints;
  ids = { vocab: md.config.vocabSize ?? md.graphs[0]!.lm.vocab ?? 1000, bos: md.generation.bosId, eos: plan.eosId, pad: plan.padId };
  console.log(`model ${args.model}: ${md.config.family} family; ${args['no-cache'] ? 'recomputation (--no-cache)' : plan.how}`);
}
const inner = await openDecoder(graph, { threads: args.threads, provider: args.provider, noCache: args['no-cache'], kvHints, shortlist: !args['whole-logits'] });
// Time spent in each decoder call, to split the total into prefill, per-step forward, cache reorder and search.
const timing = { prefill: 0, step: 0, select: 0, steps: 0 };
const timed = async <T>(key: 'prefill' | 'step', f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const r = await f();
  timing[key] += performance.now() - t0;
  return r;
};
const decoder: Decoder = {
  get rows() {
    return inner.rows;
  },
  shortlist: inner.shortlist,
  reserve: (rows, length) => inner.reserve?.(rows, length), // as beam search sizes the cache in `collapse generate`
  prefill: (p, pad, copies, excluded) => timed('prefill', () => inner.prefill(p, pad, copies, excluded)),
  step: (tok, excluded) => (timing.steps++, timed('step', () => inner.step(tok, excluded))),
  select: (from) => {
    const t0 = performance.now();
    inner.select(from);
    timing.select += performance.now() - t0;
  },
  release: () => inner.release(),
};
console.log(`model ${args.model}: built and opened in ${((performance.now() - t) / 1000).toFixed(1)} s`);

const rng = new Rng(1);
const prompts = Array.from({ length: args.prompts }, () => {
  const p = Int32Array.from({ length: args['prompt-len'] }, () => 3 + rng.int(ids.vocab - 4));
  if (preset) p[0] = ids.bos!; // OPT prompts start with </s>
  return p;
});

t = performance.now();
const cpu0 = process.cpuUsage();
const res = await beamSearch(decoder, prompts, {
  numBeams: args.beams,
  maxNewTokens: args['new-tokens'],
  minNewTokens: args['new-tokens'],
  repetitionPenalty: args['repetition-penalty'],
  eosId: ids.eos,
  padId: ids.pad,
});
const s = (performance.now() - t) / 1000;
const cpu = process.cpuUsage(cpu0);
const tokens = res.tokens.length * args['new-tokens'];
const rssMiB = process.resourceUsage().maxRSS / 1024;
console.log(
  `${args.prompts} prompts x ${args['prompt-len']} tokens, ${args.beams} beams, ${args['new-tokens']} new tokens, ` +
    `${args.threads} threads${args['no-cache'] ? ', no cache' : ''}${inner.shortlist ? ', shortlist' : ', whole logits'}${args['per-row-prompt'] ? ', per-row prompt' : ''}: ${s.toFixed(2)} s, ` +
    `${(tokens / s).toFixed(1)} continuation tokens/s (reference PyTorch 1.13: 13.4 at 16 new tokens), ` +
    `peak RSS ${rssMiB.toFixed(0)} MiB`,
);
// CPU time per token is what a shared machine's load does not change much; wall figures depend on the load.
console.log(
  `  CPU (user + sys, all threads) ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s = ${((cpu.user + cpu.system) / 1000 / tokens).toFixed(1)} ms per ` +
    `continuation token (${(tokens / ((cpu.user + cpu.system) / 1e6) * args.threads).toFixed(1)} tokens/s on ${args.threads} idle cores); ` +
    `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
);
// Same tokens with and without the cache: compare this line between runs.
console.log(`  tokens checksum ${res.tokens.reduce((h, t) => t.reduce((a, v) => (a * 31 + v) >>> 0, h), 7)}`);
const search = s * 1000 - timing.prefill - timing.step - timing.select;
console.log(
  `  prefill ${(timing.prefill / 1000).toFixed(2)} s, ${timing.steps} steps: forward ${(timing.step / 1000).toFixed(2)} s, ` +
    `cache reorder ${(timing.select / 1000).toFixed(2)} s, search (log-softmax, processors, top-k) ${(search / 1000).toFixed(2)} s`,
);
await decoder.release();
