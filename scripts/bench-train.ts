// Training throughput and memory: an OPT-125m-shaped model (random weights), micro-batch 8 x 64 tokens, AdamW,
// 2 threads; side by side with an equivalent PyTorch step (plain torch, since transformers may be absent) when
// `import torch` works.
//   npx tsx scripts/bench-train.ts [--steps 4] [--threads 2] [--micro 8] [--block 64] [--accum 1] [--torch auto|off]
//     [--malloc heap|default] [--torch-malloc default|heap] [--provider cpu|cuda] [--dropout 0.1 [--rounds 2]]
// --dropout P measures training with OPT dropout P (masks drawn in JavaScript and fed, see models/train/dropout.ts)
// against the same model without dropout: two artifacts, then --rounds alternating runs of each, side by side.
//   2026-11-30, --dropout 0.1 --torch off, load average 2.5-12 (wall times swing +-18% either way between runs):
//   CPU s/step on vs off: 7.75 vs 8.00 (2 rounds, 3 steps), 5.81 vs 5.77 (4 rounds, 2 steps), 6.04 vs 6.25 (4 rounds,
//   3 steps), i.e. -3% to +1%. The 24 masks of a micro-batch (9.4 M values) take 54 ms of CPU to draw.
// The artifact is built in a child process first, so that the measured process holds only what training needs.
//
// Measured 2026-11-24 on the shared 2-core dev machine (load average 2-16, so wall times are noisy; CPU s/step
// is steadier), onnxruntime-node 1.30, Debian python3-torch 1.13.1, micro-batch 8 x 64, AdamW, 2 threads:
//   fused step, whole-model update graph outputs:      12.1 tok/s vs torch 9.5 (load ~13), peak RSS 5.86 GB vs 3.04
//   split, per-chunk update graphs, arena off:        29.9 tok/s vs torch 23.8; update 6.1 s/step (page faults), 3.91 GB
//   split, flat update over slices (arena on):        85.1 tok/s vs torch 46.9 (1.81x wall, 1.45x CPU), 3.49 GB vs 3.04
//   + pre-allocated output buffers, lazy sessions:    99.1 tok/s vs torch 83.3 (1.19x wall, 1.39x CPU), 3.28 GB vs 3.06
//     (grad 4.0 s per micro-batch, update 1.15 s per step; forcing GC between steps gave 3.22 GB)
// 2026-11-24 06:30, --steps 3 --torch off (load ~2): 74.9 tok/s (grad 5.54 s, update 1.30 s) ->
//   + CPU arena for the gradient session:              125.9 tok/s (grad 2.61 s, update 1.45 s), 3.45 GB
//   (an optimizer update in JavaScript / a wasm SIMD kernel reached 147-202 tok/s but was reverted: the update
//    stays an ONNX graph, like the rest of the step)
// 2026-11-24 06:40, final design, side by side (load ~1.3): 101.9 tok/s (grad 3.07 s, update 1.95 s), 3449 MB
//   vs torch 73.8 tok/s, 3057 MB: 1.38x throughput (wall), 1.67x (CPU), 1.13x peak memory.
//   The paper's batch (--accum 16, 128 x 64 per step, --torch off): 195.5 tok/s, 4091 MB.
// 2026-11-24 (second session), side by side, --steps 3 (load ~1.5):
//   update in place over 1 MB slices (outputs alias the state) + no spinning between sessions: 126.4 tok/s,
//     update 1.95 -> 1.38 s/step (0.8-0.9 s once spinning is off), 3333 MB
//   + glibc heap tunables of the collapse bin (--malloc heap), arena off: 186-214 tok/s (grad 1.57-1.71 s,
//     update 0.83-1.03 s), 2933-2950 MB vs torch 70.9-76.9 tok/s, 2983-3083 MB: 2.4-2.9x throughput, 0.95-0.99x memory
//   torch given the same tunables (--torch-malloc heap): 105.7 tok/s, 3274 MB (ours 188.4, 2929 MB: 1.78x, 0.89x)
//   --malloc default (arena on): 130.8 tok/s, 3333 MB. Paper batch (--accum 16 --torch off): 322.4 tok/s, 3141 MB.
// 2026-11-24, the figures behind the engine's choices (once in models/train/engine.ts, optimizers.ts, util/malloc.ts
// and the --fused-step help), OPT-125m, 8 x 64, AdamW, 2 threads:
//   --mode fused: 161 tok/s at 5.45 GB peak, against the split step's 186-214 tok/s at 2.93 GB;
//   a whole-model update graph: peak RSS 5.9 GB; 16 MB slices copied back by hand 2.7 s/step; 1 MB in place 0.45-0.9 s;
//   update slice size (UPDATE_CHUNK_ELEMENTS): 4M elements 2.1 s/step, 1M 1.5 s, 256K 0.45 s, 32K 1.5 s;
//   outputs written into pre-allocated buffers: update 2.0 -> 0.45 s/step; no spinning: update 1.9 -> 0.9 s/step;
//   memory-pattern planning: +140 MB, same speed; a full GC before each micro-batch (--accum 4): 3.55 -> 3.05 GB;
//   --malloc default, arena on: grad 2.0-2.9 s per micro-batch, 3.34 GB; arena off: 3.9-4.4 s, 2.92 GB;
//   --malloc heap, arena off: 1.5-1.7 s, 2.95 GB.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { ForwardSource } from '../models/model-dir/index.js';
import { buildArtifact, loadArtifact } from '../models/train/artifact.js';
import { TrainEngine } from '../models/train/engine.js';
import { buildOptForward, initOptWeights, OPT_125M } from '../models/opt/index.js';
import { withHeapTunables, withoutHeapTunables } from '../util/malloc.js';
import { Rng } from '../util/rng.js';
import { countTargets, microBatches } from '../pipeline/train/training-loop.js';

const a = yargs(hideBin(process.argv))
  .option('steps', { type: 'number', default: 4, describe: 'Timed optimizer steps (after one warm-up step)' })
  .option('threads', { type: 'number', default: 2 })
  .option('micro', { type: 'number', default: 8, describe: 'Micro-batch size (blocks)' })
  .option('block', { type: 'number', default: 64, describe: 'Block length (tokens)' })
  .option('accum', { type: 'number', default: 1, describe: 'Micro-batches per optimizer step' })
  .option('mode', { choices: ['split', 'fused'] as const, default: 'split' as const, describe: 'split: grad graph + chunked update graphs; fused: one graph (accum 1 only)' })
  .option('provider', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const, describe: 'onnxruntime execution provider' })
  .option('torch', { choices: ['auto', 'off'] as const, default: 'auto' as const })
  .option('malloc', { choices: ['heap', 'default'] as const, default: 'heap' as const, describe: "heap: glibc tunables of the `collapse` bin (util/malloc.ts); default: glibc's defaults" })
  .option('torch-malloc', { choices: ['default', 'heap'] as const, default: 'default' as const, describe: 'the allocator setting of the PyTorch reference' })
  .option('artifact', { type: 'string', describe: 'Artifact directory (default: a temp dir, built first)' })
  .option('dropout', { type: 'number', default: 0, describe: 'Also measure training with this OPT dropout (after out_proj and fc2), side by side with none' })
  .option('rounds', { type: 'number', default: 2, describe: 'With --dropout: alternating runs of each configuration' })
  .option('phase', { choices: ['all', 'build', 'node'] as const, default: 'all' as const, describe: 'internal' })
  .strict()
  .parseSync();

const self = fileURLToPath(import.meta.url);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const cpuSeconds = () => { const u = process.resourceUsage(); return (u.userCPUTime + u.systemCPUTime) / 1e6; };
// On a shared machine wall time depends on the load; CPU seconds per step (user + system, all threads) do much
// less, so both are printed: 'cpu-equivalent tok/s' = tokens / (CPU seconds / threads).

if (a.phase === 'build') {
  const weights = initOptWeights(OPT_125M, 0);
  const src: ForwardSource = { dir: '(bench)', kind: 'opt', optConfig: OPT_125M, forward: buildOptForward(OPT_125M, weights, { withPast: false, present: false }), weights, onnxPath: null, padId: 1 };
  const dropout = a.dropout > 0 ? { hidden: a.dropout, attention: 0 } : undefined;
  await buildArtifact(src, { microBatch: a.micro, blockSize: a.block, optimizer: { name: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, dropout }, a.artifact!, (s) => console.error(s));
  process.exit(0);
}

if (a.mode === 'fused' && a.accum !== 1) throw new Error('--mode fused needs --accum 1');

if (a.phase === 'node') {
  const art = loadArtifact(a.artifact!);
  const e = await TrainEngine.open(art.graphs, art.spec, art.initialWeights(), null, { threads: a.threads, provider: a.provider });
  const rng = new Rng(1);
  const rows = a.micro * a.accum;
  const corpus = { ids: Int32Array.from({ length: rows * a.block }, () => 4 + rng.int(50000)), rows, blockSize: a.block };
  const batches = microBatches(corpus, Int32Array.from({ length: rows }, (_, i) => i), a.micro, null);
  const n = batches.reduce((s, b) => s + countTargets(b, a.block), 0);
  const times: number[] = [];
  let gradMs = 0, updateMs = 0, cpu0 = 0;
  for (let s = 0; s <= a.steps; s++) {
    if (s === 1) cpu0 = cpuSeconds();
    const t0 = performance.now();
    // The dropout key is ignored by an artifact without dropout.
    if (a.mode === 'fused') await e.fusedStep(batches[0]!, 1 / n, 2e-5, null, { seed: 0, step: s, micro: 0 });
    else {
      for (const [j, b] of batches.entries()) await e.accumulate(b, 1 / n, { seed: 0, step: s, micro: j });
      const t1 = performance.now();
      await e.applyUpdate(2e-5, null);
      if (s > 0) { gradMs += t1 - t0; updateMs += performance.now() - t1; }
    }
    if (s > 0) times.push(performance.now() - t0);
    (globalThis as { gc?: () => void }).gc?.(); // only with BENCH_EXPOSE_GC=1 (node --expose-gc)
  }
  const secs = times.reduce((x, y) => x + y, 0) / 1000;
  const out = {
    tokensPerSec: (a.steps * rows * a.block) / secs,
    cpuSecPerStep: (cpuSeconds() - cpu0) / a.steps,
    stepSec: secs / a.steps,
    gradSecPerMicro: a.mode === 'split' ? gradMs / 1000 / a.steps / a.accum : null,
    updateSec: a.mode === 'split' ? updateMs / 1000 / a.steps : null,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  console.log(JSON.stringify(out));
  process.exit(0);
}

// ---- phase all: build (child), node (child), torch (child)
type NodeResult = { tokensPerSec: number; stepSec: number; cpuSecPerStep: number; maxRssBytes: number; gradSecPerMicro: number | null; updateSec: number | null };
const base = a.artifact ?? join(mkdtempSync(join(tmpdir(), 'bench-train-')), 'art');
const artifactOf = (p: number) => (p > 0 ? `${base}-dropout${p}` : base);
const commonOf = (p: number) => ['--micro', String(a.micro), '--block', String(a.block), '--artifact', artifactOf(p), '--dropout', String(p)];
const configs = a.dropout > 0 ? [0, a.dropout] : [0];
for (const p of configs) {
  if (existsSync(join(artifactOf(p), 'manifest.json'))) continue;
  console.error(`building the OPT-125m training artifact (micro-batch ${a.micro} x ${a.block}${p > 0 ? `, dropout ${p}` : ''}) in ${artifactOf(p)} ...`);
  const t = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--phase', 'build', ...commonOf(p)], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('artifact build failed');
  console.error(`artifact built in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}
console.log(`load average before: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${process.env.BENCH_NOTE ?? 'shared machine'})`);
const gcFlag = process.env.BENCH_EXPOSE_GC === '1' ? ['--expose-gc'] : [];
// The allocator setting is fixed at process start, so each measured process gets its environment here.
const withMalloc = (m: 'heap' | 'default'): NodeJS.ProcessEnv => (m === 'heap' ? withHeapTunables(withoutHeapTunables(process.env)) : withoutHeapTunables(process.env));
const cpuTok = (cpu: number) => ((a.micro * a.accum * a.block) / (cpu / a.threads)).toFixed(1);
const runNode = (p: number): NodeResult => {
  const node = spawnSync(process.execPath, [...gcFlag, '--import', 'tsx', self, '--phase', 'node', ...commonOf(p), '--steps', String(a.steps), '--threads', String(a.threads), '--accum', String(a.accum), '--mode', a.mode, '--provider', a.provider], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: withMalloc(a.malloc) });
  if (node.status !== 0) throw new Error(`node phase failed: ${node.stdout}`);
  const nr = JSON.parse(node.stdout.trim().split('\n').at(-1)!) as NodeResult;
  console.log(`onnxruntime (${a.provider}, ${a.mode}, ${a.malloc} malloc${a.dropout > 0 ? `, dropout ${p}` : ''}): ${nr.tokensPerSec.toFixed(1)} tokens/s (${nr.stepSec.toFixed(2)} s/step of ${a.micro * a.accum} x ${a.block}; ` +
    `${nr.cpuSecPerStep.toFixed(1)} CPU s/step = ${cpuTok(nr.cpuSecPerStep)} cpu-equivalent tok/s), peak RSS ${mb(nr.maxRssBytes)}` +
    (nr.gradSecPerMicro !== null ? `; grad ${nr.gradSecPerMicro.toFixed(2)} s/micro-batch, update ${nr.updateSec!.toFixed(2)} s/step` : ''));
  return nr;
};
let nr: NodeResult;
if (a.dropout > 0) {
  // Alternate the two configurations so that both see the same load on a shared machine.
  const runs = new Map<number, NodeResult[]>(configs.map((p) => [p, []]));
  for (let r = 0; r < a.rounds; r++) for (const p of r % 2 ? [...configs].reverse() : configs) runs.get(p)!.push(runNode(p));
  const mean = (p: number, k: 'tokensPerSec' | 'cpuSecPerStep') => runs.get(p)!.reduce((x, y) => x + y[k], 0) / a.rounds;
  const [off, on] = configs as [number, number];
  console.log(`dropout ${on} vs off, mean of ${a.rounds} alternating runs: ${mean(on, 'tokensPerSec').toFixed(1)} vs ${mean(off, 'tokensPerSec').toFixed(1)} tokens/s ` +
    `(${((mean(on, 'tokensPerSec') / mean(off, 'tokensPerSec') - 1) * 100).toFixed(1)}% wall); ${mean(on, 'cpuSecPerStep').toFixed(2)} vs ${mean(off, 'cpuSecPerStep').toFixed(2)} CPU s/step ` +
    `(${((mean(on, 'cpuSecPerStep') / mean(off, 'cpuSecPerStep') - 1) * 100).toFixed(1)}% CPU)`);
  nr = runs.get(on)!.at(-1)!;
} else nr = runNode(0);

const TORCH_SCRIPT = String.raw`
import json, resource, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
threads, micro, block, accum, steps = map(int, sys.argv[1:6])
p_drop = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
torch.manual_seed(0); torch.set_num_threads(threads)
V, H, L, NH, FF, P = 50272, 768, 12, 12, 3072, 2048
class Layer(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        s.q, s.k, s.v, s.o = (nn.Linear(H, H) for _ in range(4))
        s.fc1, s.fc2 = nn.Linear(H, FF), nn.Linear(FF, H)
    def forward(s, x, mask):
        B, T, _ = x.shape
        h = s.ln1(x)
        sp = lambda t: t.view(B, T, NH, H // NH).transpose(1, 2)
        q, k, v = sp(s.q(h) * (H // NH) ** -0.5), sp(s.k(h)), sp(s.v(h))
        a = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1) @ v
        x = x + F.dropout(s.o(a.transpose(1, 2).reshape(B, T, H)), p_drop, s.training)
        return x + F.dropout(s.fc2(F.relu(s.fc1(s.ln2(x)))), p_drop, s.training)
class OPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb, s.pos = nn.Embedding(V, H), nn.Embedding(P + 2, H)
        s.layers = nn.ModuleList(Layer() for _ in range(L))
        s.ln = nn.LayerNorm(H)
    def forward(s, ids):
        T = ids.shape[1]
        mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)
        x = s.emb(ids) + s.pos(torch.arange(T) + 2)
        for l in s.layers: x = l(x, mask)
        return s.ln(x) @ s.emb.weight.T  # tied LM head
m = OPT()
opt = torch.optim.AdamW(m.parameters(), lr=2e-5, weight_decay=0.0)
ids = torch.randint(4, 50004, (accum, micro, block))
times = []
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
for i in range(steps + 1):
    if i == 1: c0 = cpu()
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    for j in range(accum):
        lg = m(ids[j])
        loss = F.cross_entropy(lg[:, :-1].reshape(-1, V), ids[j][:, 1:].reshape(-1)) / accum
        loss.backward()
    opt.step()
    if i > 0: times.append(time.perf_counter() - t)
print(json.dumps({"tokensPerSec": steps * accum * micro * block / sum(times), "stepSec": sum(times) / steps, "cpuSecPerStep": (cpu() - c0) / steps,
                  "maxRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "torch": torch.__version__}))
`;

if (a.torch === 'off') process.exit(0);
const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (!python) {
  console.log('PyTorch reference unavailable: `import torch` fails. Install it with `apt-get install python3-torch libopenblas0-openmp` (Debian) and rerun.');
  process.exit(0);
}
const script = join(mkdtempSync(join(tmpdir(), 'bench-torch-')), 'step.py');
writeFileSync(script, TORCH_SCRIPT);
const tr = spawnSync(python, [script, String(a.threads), String(a.micro), String(a.block), String(a.accum), String(a.steps), String(a.dropout)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...withMalloc(a['torch-malloc']), OMP_NUM_THREADS: String(a.threads) } });
if (tr.status !== 0) {
  console.log(`PyTorch reference failed (exit ${tr.status})`);
  process.exit(0);
}
const r = JSON.parse(tr.stdout.trim().split('\n').at(-1)!) as { tokensPerSec: number; stepSec: number; cpuSecPerStep: number; maxRssBytes: number; torch: string };
console.log(`pytorch ${r.torch} (${a['torch-malloc']} malloc): ${r.tokensPerSec.toFixed(1)} tokens/s (${r.stepSec.toFixed(2)} s/step; ${r.cpuSecPerStep.toFixed(1)} CPU s/step = ${cpuTok(r.cpuSecPerStep)} cpu-equivalent tok/s), peak RSS ${mb(r.maxRssBytes)}`);
console.log(`ratio: ${(nr.tokensPerSec / r.tokensPerSec).toFixed(2)}x throughput (wall), ${(r.cpuSecPerStep / nr.cpuSecPerStep).toFixed(2)}x (CPU time), ${(nr.maxRssBytes / r.maxRssBytes).toFixed(2)}x peak memory`);
console.log(`load average after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
