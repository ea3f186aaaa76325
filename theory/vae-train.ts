// Training and running the VAE graphs of vae-graph.ts: the gradient graph comes from the project's gradient
// builder (models/grad), the update from the optimizer graphs (torch.optim.Adam with coupled L2 by default).
// Weights live in JavaScript and are fed to the sessions, so one set of sessions serves every generation.
import { buildGradientOf } from '../models/grad/index.js';
import { f32, openSession, type ort } from '../models/session.js';
import { buildFlatUpdateGraph, momentKinds, momentName, updateScalars, UPDATE_SCALARS, type OptimizerConfig } from '../models/train/optimizers.js';
import { decodeGraph, elboGraph, encodeGraph, lossGraph, paramSpecs, type VaeArch, type VaeParams } from './vae-graph.js';

export interface VaeTrainConfig {
  lr: number;
  /** beta of the KL term (1: the ELBO). */
  beta: number;
  optimizer: OptimizerConfig;
}

/** The notebook's optimizer: torch.optim.Adam(lr=1e-3, weight_decay=1e-5), decay on every parameter. */
export const PAPER_ADAM: OptimizerConfig = { name: 'adam', weightDecay: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, noDecay: [] };

/** Rows per run of the forward-only graphs (bounds memory on MNIST: 256 x 64 x 14 x 14 floats per feature map). */
const EVAL_CHUNK = 256;

/** Sessions for one architecture; the gradient graph is built per batch size (a last, smaller batch gets its own). */
export class VaeSessions {
  private grads = new Map<number, Promise<ort.InferenceSession>>();
  private constructor(
    readonly arch: VaeArch,
    readonly cfg: VaeTrainConfig,
    private readonly threads: number | undefined,
    readonly update: ort.InferenceSession,
    readonly encode: ort.InferenceSession,
    readonly decode: ort.InferenceSession,
    readonly elbo: ort.InferenceSession,
  ) {}

  static async open(arch: VaeArch, cfg: VaeTrainConfig, threads?: number): Promise<VaeSessions> {
    const o = { threads, spinning: false };
    const [update, encode, decode, elbo] = await Promise.all([
      openSession(buildFlatUpdateGraph(cfg.optimizer), o),
      openSession(encodeGraph(arch), o),
      openSession(decodeGraph(arch), o),
      openSession(elboGraph(arch), o),
    ]);
    return new VaeSessions(arch, cfg, threads, update, encode, decode, elbo);
  }

  /** The gradient session for batches of `rows` images: outputs loss and grad.<param>. */
  gradient(rows: number): Promise<ort.InferenceSession> {
    let s = this.grads.get(rows);
    if (!s) {
      s = (async () => {
        const a = this.arch;
        const model = lossGraph(a, rows, this.cfg.beta);
        // Example feeds only tell the builder the static shapes.
        const feeds: Record<string, ort.Tensor> = {
          x: f32(new Float32Array(rows * a.height * a.width), [rows, 1, a.height, a.width]),
          eps: f32(new Float32Array(rows * a.latent), [rows, a.latent]),
        };
        for (const p of paramSpecs(a)) feeds[p.name] = f32(new Float32Array(p.shape.reduce((x, y) => x * y, 1)), p.shape);
        const grad = await buildGradientOf(model, { loss: 'loss', wrt: paramSpecs(a).map((p) => p.name), feeds });
        return openSession(grad, { threads: this.threads, spinning: false });
      })();
      this.grads.set(rows, s);
    }
    return s;
  }

  async release(): Promise<void> {
    const all = [this.update, this.encode, this.decode, this.elbo, ...(await Promise.all(this.grads.values()))];
    await Promise.all(all.map((s) => s.release()));
  }

  private paramFeeds(params: VaeParams, prefix = ''): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of paramSpecs(this.arch)) if (p.name.startsWith(prefix)) feeds[p.name] = f32(params.get(p.name)!, p.shape);
    return feeds;
  }

  /** Runs a forward-only session over `rows` rows in chunks; `inputs` give each input's per-row width. */
  private async chunked(
    s: ort.InferenceSession,
    params: Record<string, ort.Tensor>,
    rows: number,
    inputs: Record<string, { data: Float32Array; dims: number[] }>,
    outputs: Record<string, number>,
  ): Promise<Record<string, Float32Array>> {
    const out = Object.fromEntries(Object.entries(outputs).map(([k, w]) => [k, new Float32Array(rows * w)]));
    for (let r0 = 0; r0 < rows; r0 += EVAL_CHUNK) {
      const n = Math.min(EVAL_CHUNK, rows - r0);
      const feeds = { ...params };
      for (const [k, v] of Object.entries(inputs)) {
        const w = v.dims.reduce((x, y) => x * y, 1);
        feeds[k] = f32(v.data.subarray(r0 * w, (r0 + n) * w), [n, ...v.dims]);
      }
      const r = await s.run(feeds);
      for (const [k, w] of Object.entries(outputs)) out[k]!.set((r[k]!.data as Float32Array).subarray(0, n * w), r0 * w);
    }
    return out;
  }

  /** Decoded images [n, H, W] for latents z [n, L]. */
  async decodeImages(params: VaeParams, z: Float32Array): Promise<Float32Array> {
    const a = this.arch;
    const n = z.length / a.latent;
    const hw = a.height * a.width;
    return (await this.chunked(this.decode, this.paramFeeds(params, 'dec.'), n, { z: { data: z, dims: [a.latent] } }, { images: hw })).images!;
  }

  /** Encoder means and log-variances [n, L] of images [n, H, W]. */
  async encodeImages(params: VaeParams, x: Float32Array): Promise<{ mu: Float32Array; logvar: Float32Array }> {
    const a = this.arch;
    const n = x.length / (a.height * a.width);
    const r = await this.chunked(this.encode, this.paramFeeds(params, 'enc.'), n, { x: { data: x, dims: [1, a.height, a.width] } }, { mu: a.latent, logvar: a.latent });
    return { mu: r.mu!, logvar: r.logvar! };
  }

  /** Per-image reconstruction BCE and KL (one reparameterised sample eps [n, L]); -(recon + kl) is the ELBO. */
  async elboTerms(params: VaeParams, x: Float32Array, eps: Float32Array): Promise<{ recon: Float32Array; kl: Float32Array }> {
    const a = this.arch;
    const n = x.length / (a.height * a.width);
    const r = await this.chunked(
      this.elbo,
      this.paramFeeds(params),
      n,
      { x: { data: x, dims: [1, a.height, a.width] }, eps: { data: eps, dims: [a.latent] } },
      { recon: 1, kl: 1 },
    );
    return { recon: r.recon!, kl: r.kl! };
  }
}

/** One VAE's weights and optimizer state. */
export class VaeTrainer {
  step = 0;
  readonly moments = new Map<string, Float32Array>();

  constructor(
    readonly sessions: VaeSessions,
    readonly params: VaeParams,
  ) {
    for (const p of paramSpecs(sessions.arch)) {
      for (const k of momentKinds(sessions.cfg.optimizer.name)) this.moments.set(momentName(k, p.name), new Float32Array(params.get(p.name)!.length));
    }
  }

  /** One optimizer step on images x [rows, H, W] with reparameterisation noise eps [rows, L]; returns the summed loss. */
  async trainStep(x: Float32Array, eps: Float32Array): Promise<number> {
    const { arch: a, cfg } = this.sessions;
    const rows = eps.length / a.latent;
    const session = await this.sessions.gradient(rows);
    const feeds: Record<string, ort.Tensor> = { x: f32(x, [rows, 1, a.height, a.width]), eps: f32(eps, [rows, a.latent]) };
    const specs = paramSpecs(a);
    for (const p of specs) feeds[p.name] = f32(this.params.get(p.name)!, p.shape);
    const r = await session.run(feeds);
    this.step++;
    const scalars = updateScalars(cfg.optimizer, this.step, cfg.lr, null);
    const noDecay = new Set(cfg.optimizer.noDecay);
    for (const p of specs) {
      const param = this.params.get(p.name)!;
      const all: Record<string, ort.Tensor> = { param: f32(param, [param.length]), grad: f32(r[`grad.${p.name}`]!.data as Float32Array, [param.length]) };
      for (const k of momentKinds(cfg.optimizer.name)) all[k] = f32(this.moments.get(momentName(k, p.name))!, [param.length]);
      for (const k of UPDATE_SCALARS) all[k] = f32(Float32Array.of(k === 'l2' && noDecay.has(p.name) ? 0 : k === 'decay' && noDecay.has(p.name) ? 1 : scalars[k]), []);
      const feedsU: Record<string, ort.Tensor> = {};
      for (const n of this.sessions.update.inputNames) feedsU[n] = all[n]!;
      const u = await this.sessions.update.run(feedsU);
      this.params.set(p.name, u['new.param']!.data as Float32Array);
      for (const k of momentKinds(cfg.optimizer.name)) this.moments.set(momentName(k, p.name), u[`new.${k}`]!.data as Float32Array);
    }
    return Number((r.loss!.data as Float32Array)[0]);
  }
}
