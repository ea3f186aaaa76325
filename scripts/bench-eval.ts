// Benchmark: per-sample perplexity of 64-token samples under an OPT-125m-shaped model (random weights),
// 2 intra-op threads. Compares the plain forward that hands full logits [B, 64, 50272] to JavaScript for a
// log-softmax there, with the scoring graph (models/grad/loss.ts withNllHead, cached by pipeline/eval/scoring-graph.ts) that returns only NLLs [B, 63].
//   npx tsx scripts/bench-eval.ts [--samples 48] [--batch 8] [--threads 2] [--seq 64] [--provider cpu|cuda]
import './bench-malloc.js'; // first: the allocator setting of the collapse bin
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { saveModel } from '../models/onnx/io.js';
import { buildOptForward, initOptWeights, OPT_125M } from '../models/opt/index.js';
import { floatData, i64, openSession, type Provider } from '../models/session.js';
import { Rng } from '../util/rng.js';
import { openScorer, scoreBlocks } from '../pipeline/eval/perplexity.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '48' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    seq: { type: 'string', default: '64' },
    provider: { type: 'string', default: 'cpu' },
  },
});
const N = Number(values.samples);
const batch = Number(values.batch);
const threads = Number(values.threads);
const T = Number(values.seq);
if (values.provider !== 'cpu' && values.provider !== 'cuda') throw new Error(`--provider ${values.provider}: expected cpu or cuda`);
const provider: Provider = values.provider;
const cfg = OPT_125M;
const V = cfg.vocab_size;

const cpuSeconds = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

const tmp = mkdtempSync(join(tmpdir(), 'bench-eval-'));
try {
  process.stderr.write(`building an OPT-125m-shaped forward (random weights) in ${tmp} ...\n`);
  const dir = join(tmp, 'model');
  mkdirSync(dir);
  const forward = join(dir, 'model.onnx');
  saveModel(buildOptForward(cfg, initOptWeights(cfg, 0), { withPast: false, present: false }), forward);

  const rng = new Rng(1);
  const ids = Int32Array.from({ length: N * T }, () => 4 + rng.int(V - 4));
  const blocks = { ids, rows: N, blockSize: T };

  // 1. Plain forward: full logits to JS, log-softmax and pick there.
  const session = await openSession(forward, { threads, provider });
  const plainBatch = async (r0: number, n: number): Promise<void> => {
    const sub = ids.subarray(r0 * T, (r0 + n) * T);
    const out = await session.run({ input_ids: i64(Array.from(sub), [n, T]), attention_mask: i64(new Array(n * T).fill(1), [n, T]) });
    const logits = floatData(out.logits, 'logits');
    for (let b = 0; b < n; b++) {
      for (let t = 0; t < T - 1; t++) {
        const o = (b * T + t) * V;
        let max = -Infinity;
        for (let v = 0; v < V; v++) if (logits[o + v]! > max) max = logits[o + v]!;
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[o + v]! - max);
        void (Math.log(z) + max - logits[o + sub[b * T + t + 1]!]!);
      }
    }
  };
  await plainBatch(0, batch); // warm-up
  let t0 = performance.now();
  let c0 = process.cpuUsage();
  for (let r0 = 0; r0 < N; r0 += batch) await plainBatch(r0, Math.min(batch, N - r0));
  const plain = N / ((performance.now() - t0) / 1000);
  const plainCpu = cpuSeconds(c0);
  await session.release();

  // 2. Scoring graph (what collapse eval and the loop use).
  const scorer = await openScorer(dir, { threads, provider });
  await scorer.nll(ids.subarray(0, batch * T), batch, T); // warm-up
  t0 = performance.now();
  c0 = process.cpuUsage();
  await scoreBlocks(scorer, blocks, { batchSize: batch, label: 'nll graph' });
  const nll = N / ((performance.now() - t0) / 1000);
  const nllCpu = cpuSeconds(c0);
  await scorer.close();

  // On a shared machine wall time includes waiting for the CPU; CPU time does not. N / (CPU s / threads)
  // is the rate with `threads` cores to ourselves (an estimate: it assumes the threads stay busy).
  const line = (name: string, v: number, cpu: number) =>
    `${name.padEnd(40)} ${v.toFixed(2)} samples/s wall, ${(N / (cpu / threads)).toFixed(2)} samples/s per ${threads} busy cores (${(cpu / N).toFixed(3)} CPU s/sample)`;
  process.stdout.write(
    `OPT-125m shape (vocab ${V}, hidden ${cfg.hidden_size}, ${cfg.num_hidden_layers} layers), ${N} samples x ${T} tokens, batch ${batch}, ${threads} threads\n` +
      `${line('plain forward + JS log-softmax', plain, plainCpu)}\n${line('scoring graph (NLL inside onnxruntime)', nll, nllCpu)}\n` +
      `speed-up ${(nll / plain).toFixed(2)}x\n`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
