// The paper's convolutional VAE (VAE_experiments.ipynb in Zakahler/curse_recurse) as ONNX graphs whose weights
// are graph inputs, so one session serves every generation:
//   encoder: Conv(1->c, k4 s2 p1) ReLU, Conv(c->2c) ReLU, flatten, linear mu and logvar;
//   decoder: linear, unflatten to [2c, H/4, W/4], ConvTranspose(2c->c) ReLU, ConvTranspose(c->1), sigmoid.
// Kernel 4, stride 2, padding 1 halves each side: 28 -> 14 -> 7 (MNIST), 8 -> 4 -> 2 (the UCI digits).
// The loss is the notebook's: summed binary cross-entropy + beta x KL(q(z|x) || N(0, I)), summed over the batch.
// The cross-entropy is taken from the logits (softplus(l) - x l, the same value as BCE(sigmoid(l), x) without
// torch's clamp of log p at -100, which only matters for saturated pixels).
import { GraphBuilder } from '../models/onnx/graph.js';
import { DataType, type ModelProto } from '../models/onnx/proto.js';
import type { ParamSpec } from '../models/train/optimizers.js';
import type { Rng } from '../util/rng.js';

export interface VaeArch {
  height: number;
  width: number;
  /** Channels of the first convolution (the notebook's `capacity`, 64); the second has twice as many. */
  capacity: number;
  /** Latent dimensions (20). */
  latent: number;
}

const F = DataType.FLOAT;
const CONV = { kernel_shape: [4, 4], strides: [2, 2], pads: [1, 1, 1, 1] };
export const OPSET = 17;

/** Checks that the two stride-2 convolutions and their transposes map the image size onto itself. */
export function checkArch(a: VaeArch): void {
  if (!(a.height % 4 === 0 && a.width % 4 === 0 && a.height >= 4 && a.width >= 4)) {
    throw new Error(`images of ${a.height}x${a.width}: the VAE halves each side twice, so height and width must be multiples of 4`);
  }
  for (const [k, v] of [['capacity', a.capacity], ['latent', a.latent]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: ${v} is not a positive integer`);
  }
}

/** Flattened size of the encoder's last feature map: 2c x H/4 x W/4. */
export const featureSize = (a: VaeArch): number => 2 * a.capacity * (a.height / 4) * (a.width / 4);

/** Parameters in a fixed order: weights as PyTorch stores them (Linear [out, in], ConvTranspose [in, out, k, k]). */
export function paramSpecs(a: VaeArch): ParamSpec[] {
  const c = a.capacity;
  const f = featureSize(a);
  return [
    { name: 'enc.conv1.weight', shape: [c, 1, 4, 4] },
    { name: 'enc.conv1.bias', shape: [c] },
    { name: 'enc.conv2.weight', shape: [2 * c, c, 4, 4] },
    { name: 'enc.conv2.bias', shape: [2 * c] },
    { name: 'enc.fc_mu.weight', shape: [a.latent, f] },
    { name: 'enc.fc_mu.bias', shape: [a.latent] },
    { name: 'enc.fc_logvar.weight', shape: [a.latent, f] },
    { name: 'enc.fc_logvar.bias', shape: [a.latent] },
    { name: 'dec.fc.weight', shape: [f, a.latent] },
    { name: 'dec.fc.bias', shape: [f] },
    { name: 'dec.conv2.weight', shape: [2 * c, c, 4, 4] },
    { name: 'dec.conv2.bias', shape: [c] },
    { name: 'dec.conv1.weight', shape: [c, 1, 4, 4] },
    { name: 'dec.conv1.bias', shape: [1] },
  ];
}

export type VaeParams = Map<string, Float32Array>;

/**
 * PyTorch's default initialisation of Conv2d, ConvTranspose2d and Linear: weights and biases uniform in
 * ±1/sqrt(fan_in), fan_in = weight.size(1) x kernel area (kaiming_uniform with a = sqrt(5)).
 */
export function initParams(a: VaeArch, rng: Rng): VaeParams {
  const specs = paramSpecs(a);
  const out: VaeParams = new Map();
  for (let k = 0; k < specs.length; k += 2) {
    const w = specs[k]!;
    const b = specs[k + 1]!;
    const fanIn = w.shape.slice(1).reduce((p, d) => p * d, 1);
    const bound = 1 / Math.sqrt(fanIn);
    for (const s of [w, b]) {
      const n = s.shape.reduce((p, d) => p * d, 1);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = (2 * rng.next() - 1) * bound;
      out.set(s.name, v);
    }
  }
  return out;
}

function declareParams(g: GraphBuilder, a: VaeArch, prefix: 'enc.' | 'dec.' | ''): void {
  for (const p of paramSpecs(a)) if (p.name.startsWith(prefix)) g.input(p.name, F, p.shape);
}

function encoder(g: GraphBuilder, a: VaeArch, x: string): { mu: string; logvar: string } {
  const h1 = g.op('Relu', [g.op('Conv', [x, 'enc.conv1.weight', 'enc.conv1.bias'], CONV)]);
  const h2 = g.op('Relu', [g.op('Conv', [h1, 'enc.conv2.weight', 'enc.conv2.bias'], CONV)]);
  const flat = g.op('Reshape', [h2, g.i64([-1, featureSize(a)])]);
  return {
    mu: g.op('Gemm', [flat, 'enc.fc_mu.weight', 'enc.fc_mu.bias'], { transB: 1 }),
    logvar: g.op('Gemm', [flat, 'enc.fc_logvar.weight', 'enc.fc_logvar.bias'], { transB: 1 }),
  };
}

/** Decoder up to the logits (the sigmoid is applied by the caller or folded into the loss). */
function decoderLogits(g: GraphBuilder, a: VaeArch, z: string): string {
  const h = g.op('Gemm', [z, 'dec.fc.weight', 'dec.fc.bias'], { transB: 1 });
  const maps = g.op('Reshape', [h, g.i64([-1, 2 * a.capacity, a.height / 4, a.width / 4])]);
  const up = g.op('Relu', [g.op('ConvTranspose', [maps, 'dec.conv2.weight', 'dec.conv2.bias'], CONV)]);
  return g.op('ConvTranspose', [up, 'dec.conv1.weight', 'dec.conv1.bias'], CONV);
}

/** Per-image BCE [B] (or its total) and KL [B] (or its total), given x, mu, logvar and decoder logits. */
function lossTerms(g: GraphBuilder, x: string, mu: string, logvar: string, logits: string, perImage: boolean): { bce: string; kl: string } {
  const bceMap = g.op('Sub', [g.op('Softplus', [logits]), g.op('Mul', [x, logits])]);
  const klTerms = g.op('Sub', [g.op('Sub', [g.op('Add', [logvar, g.scalar(1)]), g.op('Mul', [mu, mu])]), g.op('Exp', [logvar])]);
  const sum = (t: string, axes: number[]): string => (perImage ? g.op('ReduceSum', [t, g.i64(axes)], { keepdims: 0 }) : g.op('ReduceSum', [t], { keepdims: 0 }));
  return { bce: sum(bceMap, [1, 2, 3]), kl: g.op('Mul', [sum(klTerms, [1]), g.scalar(-0.5)]) };
}

/** z = mu + eps * exp(logvar / 2): the reparameterisation, with eps fed from the seeded generator. */
function reparameterise(g: GraphBuilder, mu: string, logvar: string, eps: string): string {
  return g.op('Add', [mu, g.op('Mul', [eps, g.op('Exp', [g.op('Mul', [logvar, g.scalar(0.5)])])])]);
}

/** Training loss: x [B,1,H,W], eps [B,L], all weights -> loss = sum BCE + beta sum KL (a scalar). */
export function lossGraph(a: VaeArch, batch: number, beta: number): ModelProto {
  const g = new GraphBuilder();
  g.input('x', F, [batch, 1, a.height, a.width]);
  g.input('eps', F, [batch, a.latent]);
  declareParams(g, a, '');
  const { mu, logvar } = encoder(g, a, 'x');
  const logits = decoderLogits(g, a, reparameterise(g, mu, logvar, 'eps'));
  const { bce, kl } = lossTerms(g, 'x', mu, logvar, logits, false);
  g.op('Add', [bce, g.op('Mul', [kl, g.scalar(beta)])], {}, { outputs: ['loss'] });
  g.output('loss', F, []);
  return g.model({ name: 'vae_loss', opset: OPSET });
}

/** Per-image terms of the negative ELBO (one reparameterised sample): recon [B], kl [B]; any batch size. */
export function elboGraph(a: VaeArch): ModelProto {
  const g = new GraphBuilder();
  g.input('x', F, ['batch', 1, a.height, a.width]);
  g.input('eps', F, ['batch', a.latent]);
  declareParams(g, a, '');
  const { mu, logvar } = encoder(g, a, 'x');
  const logits = decoderLogits(g, a, reparameterise(g, mu, logvar, 'eps'));
  const { bce, kl } = lossTerms(g, 'x', mu, logvar, logits, true);
  g.op('Identity', [bce], {}, { outputs: ['recon'] });
  g.op('Identity', [kl], {}, { outputs: ['kl'] });
  g.output('recon', F, ['batch']);
  g.output('kl', F, ['batch']);
  return g.model({ name: 'vae_elbo', opset: OPSET });
}

/** Encoder only: x [B,1,H,W] -> mu, logvar [B,L]. */
export function encodeGraph(a: VaeArch): ModelProto {
  const g = new GraphBuilder();
  g.input('x', F, ['batch', 1, a.height, a.width]);
  declareParams(g, a, 'enc.');
  const { mu, logvar } = encoder(g, a, 'x');
  g.op('Identity', [mu], {}, { outputs: ['mu'] });
  g.op('Identity', [logvar], {}, { outputs: ['logvar'] });
  g.output('mu', F, ['batch', a.latent]);
  g.output('logvar', F, ['batch', a.latent]);
  return g.model({ name: 'vae_encode', opset: OPSET });
}

/** Decoder only: z [B,L] -> images [B,1,H,W] in (0, 1). */
export function decodeGraph(a: VaeArch): ModelProto {
  const g = new GraphBuilder();
  g.input('z', F, ['batch', a.latent]);
  declareParams(g, a, 'dec.');
  g.op('Sigmoid', [decoderLogits(g, a, 'z')], {}, { outputs: ['images'] });
  g.output('images', F, ['batch', 1, a.height, a.width]);
  return g.model({ name: 'vae_decode', opset: OPSET });
}
