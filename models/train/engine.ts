// The training engine: holds the weights and optimizer moments in JavaScript and runs the step graphs.
//
// Where the state lives, and why: onnxruntime-node passes inputs without copying, but copies every output
// into a fresh array (scripts/bench-train.ts measures it). So the weights and moments stay in JS typed arrays,
// fed as zero-copy inputs, and only what must change comes back:
//   - split step (default): the gradient graph returns grad.* per micro-batch (1x weights copied out), summed
//     here; a norm graph returns one scalar; then one small flat update graph runs over slices of every
//     parameter (views in, slice-sized outputs back) and the results are written back in place. No
//     parameter-sized temporaries: measured on OPT-125m (8 x 64, 2 threads) a whole-model update graph held
//     old state + onnxruntime outputs + JS copies (peak RSS 5.9 GB, fused), per-chunk graphs without an
//     arena spent 6 s/step in page faults; slices through one arena-backed session avoid both.
//   - fused step (one micro-batch per batch, opt-in): gradients + update in one graph, 3x weights out and
//     installed as new arrays; saves the gradient copy but peaks at ~2x the state.
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import type { ModelProto } from '../onnx/proto.js';
import { openSession, type Provider } from '../session.js';
import { gradName, momentKinds, momentName, newName, updateScalars, UPDATE_CHUNK_ELEMENTS, UPDATE_SCALARS, type OptimizerConfig, type ParamSpec } from './optimizers.js';
import type { TensorMap } from './tensor-file.js';

export interface EngineSpec {
  params: ParamSpec[];
  microBatch: number;
  blockSize: number;
  optimizer: OptimizerConfig;
}

export interface EngineGraphs {
  grad: string | ModelProto;
  /** The flat update graph (buildFlatUpdateGraph), run over slices of every parameter. */
  update: string | ModelProto;
  /** grad.* -> grad_norm (for clipping across chunks). */
  norm: string | ModelProto;
  /** Gradient + update in one graph (optional; used when one micro-batch makes a batch). */
  fused?: string | ModelProto;
  /** Per-token NLL graph with the trainable weights as inputs (optional; needed for validation). */
  eval?: string | ModelProto;
}

/** One micro-batch: row-major [microBatch, blockSize]; labels use -100 for ignored positions. */
export interface MicroBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  labels: BigInt64Array;
}

export interface SessionOpts {
  threads?: number;
  provider?: Provider;
  /** Elements per flat-update call (default UPDATE_CHUNK_ELEMENTS). */
  updateChunk?: number;
}

/**
 * Opens a session with the CPU arena and memory-pattern planning off: step outputs are large and short-lived,
 * and an arena or a preplanned block would keep them (measured on OPT-125m, micro-batch 8 x 64: peak RSS
 * 3173 MB with the pattern, 3032 MB without, same throughput).
 */
export async function openTrainSession(model: string | ModelProto, o: SessionOpts & { arena?: boolean } = {}): Promise<ort.InferenceSession> {
  if (typeof model === 'string' && !existsSync(model)) throw new Error(`training graph not found: ${model} (rebuild the artifact with \`collapse artifact build\`)`);
  return openSession(model, { provider: o.provider, threads: o.threads, memArena: o.arena ?? false, memPattern: false });
}

const f32 = (d: Float32Array, dims: readonly number[]): ort.Tensor => new ort.Tensor('float32', d, dims);
const scalar = (x: number): ort.Tensor => new ort.Tensor('float32', Float32Array.of(x), []);

/** The split step updates weights and moments IN PLACE (the fused step installs new arrays): copy what you
 *  want to keep as a snapshot. */
export class TrainEngine {
  /** Optimizer steps applied so far (AdamW's t before the next step). */
  step = 0;
  private gradAcc: TensorMap | null = null;
  // Persistent output buffers: onnxruntime copies outputs into them instead of into fresh arrays, so no
  // weights-sized garbage waits for V8's collector between steps (measured: 3.8 GB -> see bench notes).
  private gradBuf: TensorMap | null = null;
  private gradTmp: TensorMap | null = null;
  private sliceOut: Float32Array[] | null = null;

  private constructor(
    readonly spec: EngineSpec,
    readonly weights: TensorMap,
    readonly moments: TensorMap,
    private readonly grad: ort.InferenceSession,
    private readonly update: ort.InferenceSession,
    private readonly norm: ort.InferenceSession,
    private readonly updateChunk: number,
    private readonly lazy: { fused?: string | ModelProto; eval?: string | ModelProto; opts: SessionOpts },
  ) {}

  // The fused and eval sessions open on first use: a session costs memory even when it never runs.
  private fused: ort.InferenceSession | null = null;
  private evalSession: ort.InferenceSession | null = null;

  static async open(graphs: EngineGraphs, spec: EngineSpec, weights: TensorMap, moments: TensorMap | null, o: SessionOpts = {}): Promise<TrainEngine> {
    for (const p of spec.params) {
      const w = weights.get(p.name);
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (!w) throw new Error(`initial weights lack the trainable tensor ${p.name}`);
      if (w.length !== n) throw new Error(`weight ${p.name} has ${w.length} values, the graph expects [${p.shape}]`);
    }
    const m: TensorMap = moments ?? new Map();
    for (const k of momentKinds(spec.optimizer.name))
      for (const p of spec.params) if (!m.has(momentName(k, p.name))) m.set(momentName(k, p.name), new Float32Array(weights.get(p.name)!.length));
    const [grad, norm, update] = await Promise.all([
      // The arena is on for the gradient graph too: without it every large intermediate is a fresh mmap and
      // the step spends seconds in page faults (OPT-125m, 8 x 64, 2 threads: grad 5.5 -> 2.6 s per micro-batch, peak RSS 3.05 -> 3.45 GB).
      openTrainSession(graphs.grad, { ...o, arena: true }),
      openTrainSession(graphs.norm, o),
      // The arena stays on here: the slices are small and of few sizes, so reused buffers save page faults.
      openTrainSession(graphs.update, { ...o, arena: true }),
    ]);
    return new TrainEngine(spec, weights, m, grad, update, norm, o.updateChunk ?? UPDATE_CHUNK_ELEMENTS, { fused: graphs.fused, eval: graphs.eval, opts: o });
  }

  get canFuse(): boolean {
    return this.lazy.fused !== undefined;
  }

  private dataFeeds(session: ort.InferenceSession, b: MicroBatch, lossScale: number): Record<string, ort.Tensor> {
    const dims = [this.spec.microBatch, this.spec.blockSize];
    const all: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', b.inputIds, dims),
      attention_mask: new ort.Tensor('int64', b.attentionMask, dims),
      labels: new ort.Tensor('int64', b.labels, dims),
      loss_scale: scalar(lossScale),
    };
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of session.inputNames) if (all[n]) feeds[n] = all[n];
    return feeds;
  }

  private paramFeeds(feeds: Record<string, ort.Tensor>, params = this.spec.params): void {
    for (const p of params) feeds[p.name] = f32(this.weights.get(p.name)!, p.shape);
  }

  private stateFeeds(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, params: ParamSpec[], lr: number, maxNorm: number | null, gradNorm = 0): void {
    const s = updateScalars(this.spec.optimizer, this.step + 1, lr, maxNorm, gradNorm);
    for (const k of UPDATE_SCALARS) if (session.inputNames.includes(k)) feeds[k] = scalar(s[k]);
    for (const k of momentKinds(this.spec.optimizer.name))
      for (const p of params) feeds[momentName(k, p.name)] = f32(this.moments.get(momentName(k, p.name))!, p.shape);
  }

  private takeUpdate(out: ort.InferenceSession.OnnxValueMapType, params: ParamSpec[]): void {
    for (const p of params) {
      this.weights.set(p.name, out[newName(p.name)]!.data as Float32Array);
      for (const k of momentKinds(this.spec.optimizer.name)) {
        const n = momentName(k, p.name);
        this.moments.set(n, out[newName(n)]!.data as Float32Array);
      }
    }
  }

  /** Runs the gradient graph on one micro-batch and adds its gradients to the accumulator. */
  async accumulate(b: MicroBatch, lossScale: number): Promise<{ lossSum: number; tokens: number }> {
    const feeds = this.dataFeeds(this.grad, b, lossScale);
    this.paramFeeds(feeds);
    const first = !this.gradAcc;
    const alloc = () => new Map(this.spec.params.map((p) => [p.name, new Float32Array(this.weights.get(p.name)!.length)]));
    const target = first ? (this.gradBuf ??= alloc()) : (this.gradTmp ??= alloc());
    const fetches: Record<string, ort.Tensor | null> = { loss_sum: null, token_count: null };
    for (const p of this.spec.params) fetches[gradName(p.name)] = f32(target.get(p.name)!, p.shape);
    const out = await this.grad.run(feeds, fetches);
    if (first) this.gradAcc = target;
    else {
      for (const p of this.spec.params) {
        const acc = this.gradAcc!.get(p.name)!;
        const g = target.get(p.name)!;
        for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
      }
    }
    return { lossSum: (out.loss_sum!.data as Float32Array)[0]!, tokens: Number((out.token_count!.data as Float32Array)[0]!) };
  }

  /** The accumulated gradients (for tests and diagnostics), or null before the first micro-batch. */
  accumulated(): TensorMap | null {
    return this.gradAcc;
  }

  /** Applies the optimizer to the accumulated gradients and clears them. Returns the pre-clip gradient norm;
   *  when it is not finite the weights are left unchanged. */
  async applyUpdate(lr: number, maxNorm: number | null): Promise<number> {
    const acc = this.gradAcc;
    if (!acc) throw new Error('applyUpdate called before any micro-batch was accumulated');
    this.gradAcc = null;
    const gradFeeds = (params: ParamSpec[], feeds: Record<string, ort.Tensor>) => {
      for (const p of params) feeds[gradName(p.name)] = f32(acc.get(p.name)!, p.shape);
      return feeds;
    };
    const gn = (((await this.norm.run(gradFeeds(this.spec.params, {}))).grad_norm!.data) as Float32Array)[0]!;
    // A non-finite gradient norm means a non-finite update: keep the old weights and let the caller stop.
    if (!Number.isFinite(gn)) return gn;
    const cfg = this.spec.optimizer;
    const s = updateScalars(cfg, this.step + 1, lr, maxNorm, gn);
    const noDecay = new Set(cfg.noDecay);
    const kinds = momentKinds(cfg.name);
    for (const p of this.spec.params) {
      const decays = !noDecay.has(p.name);
      const scalars: Record<string, ort.Tensor> = {};
      for (const k of UPDATE_SCALARS) if (this.update.inputNames.includes(k)) scalars[k] = scalar(s[k]);
      if (!decays) {
        if (scalars.decay) scalars.decay = scalar(1);
        if (scalars.l2) scalars.l2 = scalar(0);
      }
      const w = this.weights.get(p.name)!, g = acc.get(p.name)!;
      const mom = kinds.map((k) => this.moments.get(momentName(k, p.name))!);
      const bufs = (this.sliceOut ??= [0, ...kinds].map(() => new Float32Array(this.updateChunk)));
      // Slice by slice, written back in place: inputs are zero-copy views, only a slice's outputs are copied.
      for (let off = 0; off < w.length; off += this.updateChunk) {
        const end = Math.min(w.length, off + this.updateChunk);
        const view = (a: Float32Array) => f32(a.subarray(off, end), [end - off]);
        const feeds: Record<string, ort.Tensor> = { ...scalars, param: view(w), grad: view(g) };
        kinds.forEach((k, i) => (feeds[k] = view(mom[i]!)));
        const outs = bufs.map((b) => b.subarray(0, end - off));
        const fetches: Record<string, ort.Tensor> = { [newName('param')]: f32(outs[0]!, [end - off]) };
        kinds.forEach((k, i) => (fetches[newName(k)] = f32(outs[i + 1]!, [end - off])));
        await this.update.run(feeds, fetches);
        w.set(outs[0]!, off);
        kinds.forEach((_, i) => mom[i]!.set(outs[i + 1]!, off));
      }
    }
    this.step++;
    return gn;
  }

  /** Gradient and update in one call (one micro-batch per batch). */
  async fusedStep(b: MicroBatch, lossScale: number, lr: number, maxNorm: number | null): Promise<{ lossSum: number; tokens: number; gradNorm: number }> {
    if (!this.lazy.fused) throw new Error('this artifact has no fused step graph');
    this.fused ??= await openTrainSession(this.lazy.fused, this.lazy.opts);
    const feeds = this.dataFeeds(this.fused, b, lossScale);
    this.paramFeeds(feeds);
    this.stateFeeds(this.fused, feeds, this.spec.params, lr, maxNorm);
    const out = await this.fused.run(feeds);
    const lossSum = (out.loss_sum!.data as Float32Array)[0]!;
    const tokens = Number((out.token_count!.data as Float32Array)[0]!);
    // Refuse a non-finite step before it replaces the weights.
    const gn = (out.grad_norm!.data as Float32Array)[0]!;
    if (!Number.isFinite(lossSum) || !Number.isFinite(gn)) return { lossSum, tokens, gradNorm: gn };
    this.takeUpdate(out, this.spec.params);
    this.step++;
    return { lossSum, tokens, gradNorm: gn };
  }

  /** Drops accumulated gradients (after a refused step). */
  discardGradients(): void {
    this.gradAcc = null;
  }

  /** Per-token NLL [microBatch, blockSize-1] of a micro-batch under the current weights. */
  async nll(b: MicroBatch): Promise<Float32Array> {
    if (!this.lazy.eval) throw new Error('this artifact has no eval graph');
    this.evalSession ??= await openTrainSession(this.lazy.eval, this.lazy.opts);
    const feeds = this.dataFeeds(this.evalSession, b, 1);
    for (const p of this.spec.params) if (this.evalSession.inputNames.includes(p.name)) feeds[p.name] = f32(this.weights.get(p.name)!, p.shape);
    const out = await this.evalSession.run(feeds);
    return out.nll!.data as Float32Array;
  }

  async release(): Promise<void> {
    await Promise.all([this.grad, this.norm, this.update, this.fused, this.evalSession].map((s) => s?.release()));
  }
}
