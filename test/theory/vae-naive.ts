// An independent float64 VAE for the tests: loops over every index, binary cross-entropy on sigmoid
// probabilities (not the logit form of the graph), gradients by central differences.
import { paramSpecs, type VaeArch, type VaeParams } from '../../theory/vae-graph.js';

type P = Map<string, Float64Array>;

function conv(x: Float64Array, [B, C, H, W]: readonly [number, number, number, number], w: Float64Array, b: Float64Array, O: number): { y: Float64Array; dims: [number, number, number, number] } {
  const Ho = Math.floor((H + 2 - 4) / 2) + 1;
  const Wo = Math.floor((W + 2 - 4) / 2) + 1;
  const y = new Float64Array(B * O * Ho * Wo);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          let s = b[o]!;
          for (let c = 0; c < C; c++)
            for (let ki = 0; ki < 4; ki++)
              for (let kj = 0; kj < 4; kj++) {
                const ih = i * 2 - 1 + ki;
                const iw = j * 2 - 1 + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += w[((o * C + c) * 4 + ki) * 4 + kj]! * x[((n * C + c) * H + ih) * W + iw]!;
              }
          y[((n * O + o) * Ho + i) * Wo + j] = s;
        }
  return { y, dims: [B, O, Ho, Wo] };
}

function convTranspose(x: Float64Array, [B, C, H, W]: readonly [number, number, number, number], w: Float64Array, b: Float64Array, O: number): { y: Float64Array; dims: [number, number, number, number] } {
  const Ho = (H - 1) * 2 - 2 + 4;
  const Wo = (W - 1) * 2 - 2 + 4;
  const y = new Float64Array(B * O * Ho * Wo);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) for (let k = 0; k < Ho * Wo; k++) y[(n * O + o) * Ho * Wo + k] = b[o]!;
  for (let n = 0; n < B; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (let o = 0; o < O; o++)
            for (let ki = 0; ki < 4; ki++)
              for (let kj = 0; kj < 4; kj++) {
                const oh = i * 2 - 1 + ki;
                const ow = j * 2 - 1 + kj;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[((n * O + o) * Ho + oh) * Wo + ow]! += x[((n * C + c) * H + i) * W + j]! * w[((c * O + o) * 4 + ki) * 4 + kj]!;
              }
  return { y, dims: [B, O, Ho, Wo] };
}

function linear(x: Float64Array, B: number, I: number, w: Float64Array, b: Float64Array, O: number): Float64Array {
  const y = new Float64Array(B * O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      let s = b[o]!;
      for (let i = 0; i < I; i++) s += w[o * I + i]! * x[n * I + i]!;
      y[n * O + o] = s;
    }
  return y;
}

const relu = (a: Float64Array): Float64Array => a.map((v) => Math.max(0, v));

/** Summed BCE(sigmoid(logits), x) + beta x KL over a batch x [B, H*W] with noise eps [B, L]. */
export function naiveLoss(a: VaeArch, p: P, x: Float64Array, eps: Float64Array, beta: number): number {
  const B = eps.length / a.latent;
  const c = a.capacity;
  const L = a.latent;
  const h1 = conv(x, [B, 1, a.height, a.width], p.get('enc.conv1.weight')!, p.get('enc.conv1.bias')!, c);
  const h2 = conv(relu(h1.y), h1.dims, p.get('enc.conv2.weight')!, p.get('enc.conv2.bias')!, 2 * c);
  const f = h2.dims[1]! * h2.dims[2]! * h2.dims[3]!;
  const flat = relu(h2.y);
  const mu = linear(flat, B, f, p.get('enc.fc_mu.weight')!, p.get('enc.fc_mu.bias')!, L);
  const lv = linear(flat, B, f, p.get('enc.fc_logvar.weight')!, p.get('enc.fc_logvar.bias')!, L);
  const z = mu.map((m, i) => m + eps[i]! * Math.exp(0.5 * lv[i]!));
  const d = linear(z, B, L, p.get('dec.fc.weight')!, p.get('dec.fc.bias')!, f);
  const u = convTranspose(d, [B, 2 * c, a.height / 4, a.width / 4], p.get('dec.conv2.weight')!, p.get('dec.conv2.bias')!, c);
  const logits = convTranspose(relu(u.y), u.dims, p.get('dec.conv1.weight')!, p.get('dec.conv1.bias')!, 1).y;
  let bce = 0;
  for (let i = 0; i < logits.length; i++) {
    const q = 1 / (1 + Math.exp(-logits[i]!));
    bce -= x[i]! * Math.log(q) + (1 - x[i]!) * Math.log(1 - q);
  }
  let kl = 0;
  for (let i = 0; i < mu.length; i++) kl += -0.5 * (1 + lv[i]! - mu[i]! ** 2 - Math.exp(lv[i]!));
  return bce + beta * kl;
}

export const toF64 = (p: VaeParams): P => new Map([...p].map(([k, v]) => [k, Float64Array.from(v)]));

/** Central-difference gradient of naiveLoss for every parameter. */
export function naiveGradient(a: VaeArch, p: P, x: Float64Array, eps: Float64Array, beta: number, h = 1e-6): P {
  const g: P = new Map();
  for (const s of paramSpecs(a)) {
    const v = p.get(s.name)!;
    const d = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const keep = v[i]!;
      v[i] = keep + h;
      const fp = naiveLoss(a, p, x, eps, beta);
      v[i] = keep - h;
      const fm = naiveLoss(a, p, x, eps, beta);
      v[i] = keep;
      d[i] = (fp - fm) / (2 * h);
    }
    g.set(s.name, d);
  }
  return g;
}
