// Benchmark: tokens/s of a full OPT forward (no KV cache) on ONNX Runtime.
//   npx tsx scripts/bench-forward.ts [--config opt-125m|tiny|FILE] [--batch 16] [--seq 128] [--threads 2]
//                                    [--warmup 2] [--runs 3] [--provider cpu|cuda]
// Random weights (HF init), graph built in memory and saved to a temporary directory with external data,
// as a real model directory would be.
import './bench-malloc.js'; // first: the allocator setting of the collapse bin
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TINY_VOCAB_SIZE } from '../datasets/tokenizer.js';
import { optPresets, readOptConfig } from '../models/opt/config.js';
import { buildOptForward } from '../models/opt/graph.js';
import { initOptWeights, optParamCount } from '../models/opt/weights.js';
import { saveModel } from '../models/onnx/io.js';
import { i64, openSession, type Provider } from '../models/session.js';
import { Rng } from '../util/rng.js';

const { values: a } = parseArgs({
  options: {
    config: { type: 'string', default: 'opt-125m' },
    batch: { type: 'string', default: '16' },
    seq: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    provider: { type: 'string', default: 'cpu' },
  },
});
const int = (name: keyof typeof a): number => {
  const v = Number(a[name]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} ${a[name]}: expected a non-negative integer`);
  return v;
};
const [B, T, threads, warmup, runs] = [int('batch'), int('seq'), int('threads'), int('warmup'), int('runs')];
const cfg = optPresets(TINY_VOCAB_SIZE)[a.config!] ?? readOptConfig(a.config!);
if (T > cfg.max_position_embeddings) throw new Error(`--seq ${T} exceeds max_position_embeddings ${cfg.max_position_embeddings}`);

const dir = mkdtempSync(join(tmpdir(), 'bench-forward-'));
try {
  const path = join(dir, 'model.onnx');
  saveModel(buildOptForward(cfg, initOptWeights(cfg, 0), { withPast: false, present: false }), path);
  const session = await openSession(path, { provider: a.provider as Provider, threads });
  const rng = new Rng(1);
  const ids = i64(Array.from({ length: B * T }, () => 3 + rng.int(cfg.vocab_size - 3)), [B, T]);
  const mask = i64(new Array<number>(B * T).fill(1), [B, T]);
  const times: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    const t0 = performance.now();
    const out = await session.run({ input_ids: ids, attention_mask: mask });
    const dt = (performance.now() - t0) / 1000;
    out.logits?.dispose();
    if (r >= warmup) times.push(dt);
  }
  await session.release();
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)]!;
  process.stdout.write(
    `bench-forward: ${a.config} (${(optParamCount(cfg) / 1e6).toFixed(1)}M params) batch ${B} x seq ${T}, ${a.provider} ${threads} threads: ` +
      `${((B * T) / median).toFixed(0)} tokens/s (median of ${runs} runs: ${median.toFixed(3)} s/forward, best ${times[0]!.toFixed(3)} s)\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
