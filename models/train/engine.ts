// The training engine: holds the weights and optimizer moments in JavaScript and runs the step graphs.
//
// Where the state lives, and why: onnxruntime-node passes inputs without copying, but copies every output
// into a fresh array (scripts/bench-train.ts measures it). So the weights and moments stay in JS typed arrays,
// fed as zero-copy inputs, and only what must change comes back:
//   - split step (default): the gradient graph writes grad.* into buffers we pre-allocate (onnxruntime writes a
//     pre-allocated output in place; the binding still copies it into a fresh array we drop), summed here over
//     micro-batches; a norm graph returns one scalar; then one small flat update graph runs over 1 MB slices of
//     every parameter with each output's buffer aliasing its input slice, so weights and moments are updated in
//     place with no parameter-sized temporaries (a whole-model update graph held old state + outputs + JS copies,
//     and larger slices copied back by hand were slower).
//   - fused step (one micro-batch per batch, opt-in): gradients + update in one graph, 3x weights out and
//     installed as new arrays; peaks at ~2x the state and is slower than the split step, kept as a cross-check
//     of the split step.
// The figures behind these choices are in scripts/bench-train.ts's header (`--mode fused` measures the fused step).
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { loadModel } from '../onnx/io.js';
import { numel, type ModelProto } from '../onnx/proto.js';
import { openSession, type Provider } from '../session.js';
import { collectGarbage } from '../../util/gc.js';
import { heapKeepsLargeBlocks } from '../../util/malloc.js';
import { accName, accumulatingGrad } from './fuse.js';
import { gradName, momentKinds, momentName, newName, updateScalars, UPDATE_CHUNK_ELEMENTS, UPDATE_SCALARS, type OptimizerConfig, type ParamSpec } from './optimizers.js';
import type { TensorMap } from './tensor-file.js';
import { dropoutMasks, type DropoutKey } from './dropout.js';
import type { DropoutMask } from '../grad/index.js';

export interface EngineSpec {
  params: ParamSpec[];
  microBatch: number;
  blockSize: number;
  optimizer: OptimizerConfig;
  /** Dropout mask inputs of the gradient graphs (none: no dropout). */
  dropout?: DropoutMask[];
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
 * Opens a training session. onnxruntime's CPU arena is on only when glibc would map every large block fresh from
 * the kernel (see util/malloc.ts: with the CLI's heap tunables the arena only adds slack). Memory-pattern
 * planning stays off (a preplanned block per run costs memory and gained no speed), and so does spinning: the
 * gradient, norm and update sessions run in turn on the same cores, and one session's spinning threads slowed the
 * next (scripts/bench-train.ts's header has the figures).
 */
export async function openTrainSession(model: string | ModelProto, o: SessionOpts & { arena?: boolean } = {}): Promise<ort.InferenceSession> {
  if (typeof model === 'string' && !existsSync(model)) throw new Error(`training graph not found: ${model} (rebuild the artifact with \`collapse artifact build\`)`);
  return openSession(model, { provider: o.provider, threads: o.threads, memArena: o.arena ?? !heapKeepsLargeBlocks(), memPattern: false, spinning: false });
}

const f32 = (d: Float32Array, dims: readonly number[]): ort.Tensor => new ort.Tensor('float32', d, dims);
const scalar = (x: number): ort.Tensor => new ort.Tensor('float32', Float32Array.of(x), []);

/** The split step updates weights and moments IN PLACE (the fused step installs new arrays): copy what you
 *  want to keep as a snapshot. */
export class TrainEngine {
  /** Optimizer steps applied so far (AdamW's t before the next step). */
  step = 0;
  private gradAcc: TensorMap | null = null;
  // The one gradient buffer, kept across steps: onnxruntime writes grad.* straight into it (the binding's copy of
  // each output into a fresh array is dropped at once), and later micro-batches of a step add into it in place.
  private gradBuf: TensorMap | null = null;

  private constructor(
    readonly spec: EngineSpec,
    readonly weights: TensorMap,
    readonly moments: TensorMap,
    private readonly grad: ort.InferenceSession,
    private readonly update: ort.InferenceSession,
    private readonly norm: ort.InferenceSession,
    private readonly updateChunk: number,
    private readonly lazy: { grad: string | ModelProto; fused?: string | ModelProto; eval?: string | ModelProto; opts: SessionOpts },
  ) {}

  // The fused and eval sessions open on first use: a session costs memory even when it never runs.
  private fused: ort.InferenceSession | null = null;
  private evalSession: ort.InferenceSession | null = null;
  private accSession: ort.InferenceSession | null = null;

  static async open(graphs: EngineGraphs, spec: EngineSpec, weights: TensorMap, moments: TensorMap | null, o: SessionOpts = {}): Promise<TrainEngine> {
    for (const p of spec.params) {
      const w = weights.get(p.name);
      const n = numel(p.shape);
      if (!w) throw new Error(`initial weights lack the trainable tensor ${p.name}`);
      if (w.length !== n) throw new Error(`weight ${p.name} has ${w.length} values, the graph expects [${p.shape}]`);
    }
    const m: TensorMap = moments ?? new Map();
    for (const k of momentKinds(spec.optimizer.name))
      for (const p of spec.params) if (!m.has(momentName(k, p.name))) m.set(momentName(k, p.name), new Float32Array(weights.get(p.name)!.length));
    const [grad, norm, update] = await Promise.all([
      openTrainSession(graphs.grad, o),
      openTrainSession(graphs.norm, o),
      openTrainSession(graphs.update, o),
    ]);
    return new TrainEngine(spec, weights, m, grad, update, norm, o.updateChunk ?? UPDATE_CHUNK_ELEMENTS, { grad: graphs.grad, fused: graphs.fused, eval: graphs.eval, opts: o });
  }

  get canFuse(): boolean {
    return this.lazy.fused !== undefined;
  }

  // One buffer per dropout mask, refilled for every micro-batch (onnxruntime reads inputs without copying).
  private readonly maskBufs = new Map<string, Float32Array>();

  private dataFeeds(session: ort.InferenceSession, b: MicroBatch, lossScale: number, dropout?: DropoutKey): Record<string, ort.Tensor> {
    const dims = [this.spec.microBatch, this.spec.blockSize];
    const all: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', b.inputIds, dims),
      attention_mask: new ort.Tensor('int64', b.attentionMask, dims),
      labels: new ort.Tensor('int64', b.labels, dims),
      loss_scale: scalar(lossScale),
    };
    const masks = this.spec.dropout ?? [];
    if (masks.length > 0 && session.inputNames.includes(masks[0]!.name)) {
      if (!dropout) throw new Error('this training graph has dropout: pass the micro-batch\'s dropout key (seed, step, micro-batch)');
      const bufs = dropoutMasks(masks, dropout, this.maskBufs);
      for (const m of masks) all[m.name] = f32(bufs.get(m.name)!, m.shape);
    }
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

  /** Runs the gradient graph on one micro-batch and adds its gradients to the accumulator: the first micro-batch
   *  of a step writes them into the persistent buffer, later ones run the accumulating graph on it in place. */
  async accumulate(b: MicroBatch, lossScale: number, dropout?: DropoutKey): Promise<{ lossSum: number; tokens: number }> {
    const first = !this.gradAcc;
    const session = first ? this.grad : (this.accSession ??= await openTrainSession(this.accGraph(), this.lazy.opts));
    // The binding's copies of the last run's gradients are garbage by now: collect them before this run makes more
    // (it lowers the peak RSS with several micro-batches per step; bench-train --accum 4). Small models skip the
    // cost of a full GC.
    if (this.gradBytes >= 64 << 20) collectGarbage();
    const feeds = this.dataFeeds(session, b, lossScale, dropout);
    this.paramFeeds(feeds);
    const acc = (this.gradBuf ??= new Map(this.spec.params.map((p) => [p.name, new Float32Array(this.weights.get(p.name)!.length)])));
    const fetches: Record<string, ort.Tensor | null> = { loss_sum: null, token_count: null };
    for (const p of this.spec.params) {
      const g = f32(acc.get(p.name)!, p.shape);
      fetches[gradName(p.name)] = g;
      if (!first) feeds[accName(p.name)] = g; // the running sum in, the new sum out: one buffer
    }
    const out = await session.run(feeds, fetches);
    this.gradAcc = acc;
    return { lossSum: (out.loss_sum!.data as Float32Array)[0]!, tokens: Number((out.token_count!.data as Float32Array)[0]!) };
  }

  private get gradBytes(): number {
    return 4 * this.spec.params.reduce((n, p) => n + numel(p.shape), 0);
  }

  private accGraph(): ModelProto {
    const g = this.lazy.grad;
    return accumulatingGrad(typeof g === 'string' ? loadModel(g) : g, this.spec.params);
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
      // Slice by slice, IN PLACE: each output's fetch buffer is the very slice its input was read from.
      // onnxruntime writes a pre-allocated output directly into its buffer (measured, onnxruntime-node 1.30),
      // and in the flat update graph every read of param/m/v is an ancestor of the node that writes its new
      // value, which is element-wise (Add/Sub), so no element is read after it was overwritten. (The binding
      // still copies each output into a fresh array we drop; with 1 MB slices that copy stays in cache.)
      for (let off = 0; off < w.length; off += this.updateChunk) {
        const end = Math.min(w.length, off + this.updateChunk);
        const view = (a: Float32Array) => f32(a.subarray(off, end), [end - off]);
        const param = view(w);
        const feeds: Record<string, ort.Tensor> = { ...scalars, param, grad: view(g) };
        const fetches: Record<string, ort.Tensor> = { [newName('param')]: param };
        kinds.forEach((k, i) => (fetches[newName(k)] = feeds[k] = view(mom[i]!)));
        await this.update.run(feeds, fetches);
      }
    }
    this.step++;
    return gn;
  }

  /** Gradient and update in one call (one micro-batch per batch). */
  async fusedStep(b: MicroBatch, lossScale: number, lr: number, maxNorm: number | null, dropout?: DropoutKey): Promise<{ lossSum: number; tokens: number; gradNorm: number }> {
    if (!this.lazy.fused) throw new Error('this artifact has no fused step graph');
    this.fused ??= await openTrainSession(this.lazy.fused, this.lazy.opts);
    const feeds = this.dataFeeds(this.fused, b, lossScale, dropout);
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
    await Promise.all([this.grad, this.norm, this.update, this.fused, this.evalSession, this.accSession].map((s) => s?.release()));
  }
}
