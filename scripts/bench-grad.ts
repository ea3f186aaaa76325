// Throughput of the gradient graph alone (forward + backward, gradients returned to JavaScript) on an
// OPT-125m-shaped model with random weights. The full training step (optimizer included) is scripts/bench-train.ts.
//   npx tsx scripts/bench-grad.ts [--batch 8] [--seq 64] [--threads 2] [--steps 3] [--layers 12]
import './bench-malloc.js'; // first: the allocator setting of the collapse bin
import { parseArgs } from 'node:util';
import { buildOptForward, configJson, initOptWeights, OPT_125M, parseOptConfig } from '../models/opt/index.js';
import { openSession, type ort } from '../models/session.js';
import * as ortRuntime from 'onnxruntime-node';
import { buildGradientGraph } from '../models/grad/index.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '3' },
    layers: { type: 'string', default: '12' },
  },
});
const num = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${values[name]}`);
  return v;
};
const [B, T, threads, steps, layers] = [num('batch'), num('seq'), num('threads'), num('steps'), num('layers')];
const gb = (): string => `${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GB`;

const cfg = parseOptConfig({ ...configJson(OPT_125M), num_hidden_layers: layers }, 'bench');
const weights = initOptWeights(cfg, 1);
const forward = buildOptForward(cfg, weights, { withPast: false, present: false });
let t0 = performance.now();
const gg = await buildGradientGraph(forward, { batch: B, seq: T });
console.log(`gradient graph: ${gg.model.graph?.node?.length} nodes, built in ${((performance.now() - t0) / 1000).toFixed(1)} s, rss ${gb()}`);

const session = await openSession(gg.model, { threads });
const ids = Array.from({ length: B * T }, (_, k) => (k * 7919 + 11) % cfg.vocab_size);
const i64 = (v: number[]): ort.Tensor => new ortRuntime.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [B, T]);
const feeds: Record<string, ort.Tensor> = {
  input_ids: i64(ids),
  attention_mask: i64(ids.map(() => 1)),
  labels: i64(ids),
  loss_scale: new ortRuntime.Tensor('float32', Float32Array.of(1 / (B * (T - 1))), []),
};
for (const p of gg.params) feeds[p] = new ortRuntime.Tensor('float32', weights.get(p)!, gg.shapes[p]!);
let best = Infinity;
for (let k = 0; k < steps; k++) {
  t0 = performance.now();
  const r = await session.run(feeds);
  const dt = (performance.now() - t0) / 1000;
  best = Math.min(best, dt);
  const loss = Number(r.loss_sum!.data[0]) / Number(r.token_count!.data[0]);
  console.log(`step ${k}: ${dt.toFixed(2)} s (${((B * T) / dt).toFixed(0)} tokens/s), loss ${loss.toFixed(3)}, rss ${gb()}`);
}
console.log(`best: ${((B * T) / best).toFixed(0)} tokens/s (micro-batch ${B}x${T}, ${threads} threads, ${layers} layers)`);
