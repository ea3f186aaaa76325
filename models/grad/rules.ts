// Every op's gradient, one short rule each (the style of tinygrad's gradient.py).
// A rule receives the forward node, the gradients of its outputs (null where nothing flows back) and the context;
// it returns one gradient (or null) per node input. Rules may emit gradients nobody needs: dead nodes are pruned.
import { attrFloat, attrInt, attrInts, attrString, float } from '../onnx/graph.js';
import { DataType, FLOAT_TYPES, type NodeProto } from '../onnx/proto.js';
import { axisOf, type GradContext } from './context.js';

export type Grad = string | null;
export type GradRule = (node: NodeProto, dy: Grad[], c: GradContext) => Grad[];

const inp = (n: NodeProto, k: number): string => n.input[k] ?? '';
const out = (n: NodeProto, k = 0): string => n.output[k] ?? '';
const first = (dy: Grad[]): string => {
  if (!dy[0]) throw new Error('internal: rule called without an output gradient');
  return dy[0];
};

/** Elementwise binary op y = f(a, b): local gradients for a and b from d = dL/dy (broadcasting undone here). */
function binary(local: (d: string, a: string, b: string, y: string, c: GradContext, n: NodeProto) => [string, string]): GradRule {
  return (n, dy, c) => {
    const [da, db] = local(first(dy), inp(n, 0), inp(n, 1), out(n), c, n);
    const y = c.shape(out(n));
    return [c.unbroadcast(da, y, c.shape(inp(n, 0))), c.unbroadcast(db, y, c.shape(inp(n, 1)))];
  };
}

/** Elementwise unary op y = f(x): dx = d * f'(x), from d = dL/dy. */
function unary(local: (d: string, x: string, y: string, c: GradContext, n: NodeProto) => string): GradRule {
  return (n, dy, c) => [local(first(dy), inp(n, 0), out(n), c, n)];
}

const same: GradRule = (_n, dy) => [first(dy)];
const reshapeBack: GradRule = (n, dy, { reshape, shape }) => [reshape(first(dy), shape(inp(n, 0)))];

function swapLast({ transpose }: GradContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, k) => k);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return transpose(x, perm);
}

/** Axes of ReduceSum/ReduceMean (attribute before the opset moved them to an input), normalised; [] = all. */
function reduceAxes(n: NodeProto, c: GradContext): number[] {
  const rank = c.shape(inp(n, 0)).length;
  const axes = attrInts(n, 'axes', undefined) ?? c.ints(inp(n, 1));
  if (inp(n, 1) && !axes) throw new Error(`node ${n.name} (${n.opType}): axes must be constant to differentiate`);
  if (!axes || axes.length === 0) {
    if (attrInt(n, 'noop_with_empty_axes', 0)) return [];
    return Array.from({ length: rank }, (_, k) => k);
  }
  return axes.map((a) => axisOf(a, rank));
}

function reduceGrad(mean: boolean): GradRule {
  return (n, dy, c) => {
    const { expand, mul, reshape, scalar } = c;
    const x = c.shape(inp(n, 0));
    const axes = reduceAxes(n, c);
    const kept = x.map((d, k) => (axes.includes(k) ? 1 : d));
    const d = expand(reshape(first(dy), kept), x);
    return [mean ? mul(d, scalar(1 / axes.reduce((p, a) => p * x[a]!, 1), inp(n, 0))) : d, null];
  };
}

/** The axis Softmax/LogSoftmax normalise over (opsets before 13 flatten from `axis` on). */
function softmaxAxis(n: NodeProto, c: GradContext): number {
  const rank = c.shape(inp(n, 0)).length;
  const axis = axisOf(attrInt(n, 'axis', c.opset >= 13 ? -1 : 1), rank);
  if (c.opset < 13 && axis !== rank - 1) throw new Error(`node ${n.name} (${n.opType}): opset < 13 softmax over a non-last axis is not supported`);
  return axis;
}

function selectGrad(n: NodeProto, d: string, c: GradContext, cmp: 'GreaterOrEqual' | 'LessOrEqual'): [string, string] {
  if (n.input.length !== 2) throw new Error(`node ${n.name} (${n.opType}): only the two-input form can be differentiated`);
  const { expand, scalar, shape, where } = c;
  const first = c.g.op(cmp, [inp(n, 0), inp(n, 1)]);
  const zero = scalar(0, out(n));
  // Expand each side to the output shape before selecting, so that broadcast inputs are undone by the caller.
  const full = expand(d, shape(out(n)));
  return [where(first, full, zero), where(first, zero, full)];
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function geluGrad(d: string, x: string, _y: string, c: GradContext, n: NodeProto): string {
  const { add, erf, exp, mul, sub, tanh } = c;
  const k = (v: number): string => c.scalar(v, x);
  if (attrString(n, 'approximate', 'none') === 'tanh') {
    // y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
    const x2 = mul(x, x);
    const t = tanh(mul(k(SQRT_2_OVER_PI), add(x, mul(k(0.044715), mul(x2, x)))));
    const du = mul(k(SQRT_2_OVER_PI), add(k(1), mul(k(3 * 0.044715), x2)));
    const left = mul(k(0.5), add(k(1), t));
    const right = mul(mul(k(0.5), x), mul(sub(k(1), mul(t, t)), du));
    return mul(d, add(left, right));
  }
  // y = x Phi(x): dy/dx = Phi(x) + x phi(x)
  const phiCdf = mul(k(0.5), add(k(1), erf(mul(x, k(Math.SQRT1_2)))));
  const pdf = mul(k(INV_SQRT_2PI), exp(mul(k(-0.5), mul(x, x))));
  return mul(d, add(phiCdf, mul(x, pdf)));
}

/** Gather gradient: scatter-add dy rows into zeros (repeated ids accumulate). Axis moved to the front if needed. */
const gatherGrad: GradRule = (n, dy, c) => {
  const { add, cast, less, reshape, transpose, where } = c;
  const data = inp(n, 0);
  const xs = c.shape(data);
  const axis = axisOf(attrInt(n, 'axis', 0), xs.length);
  const ishape = c.shape(inp(n, 1));
  let idx = inp(n, 1);
  if (c.dtype(idx) !== DataType.INT64) idx = cast(idx, DataType.INT64);
  // Negative ids count from the end, as Gather reads them.
  const size = c.g.i64([xs[axis]!], []);
  idx = reshape(where(less(idx, c.g.i64([0], [])), add(idx, size), idx), [-1, 1]);
  let d = first(dy);
  const ri = ishape.length;
  const rest = [...xs.slice(0, axis), ...xs.slice(axis + 1)];
  if (axis !== 0) {
    // dy: data[:axis] + I + data[axis+1:]  ->  I + data[:axis] + data[axis+1:]
    d = transpose(d, [
      ...Array.from({ length: ri }, (_, k) => axis + k),
      ...Array.from({ length: axis }, (_, k) => k),
      ...Array.from({ length: xs.length - axis - 1 }, (_, k) => axis + ri + k),
    ]);
  }
  d = reshape(d, [-1, ...rest]);
  const dx = c.g.op('ScatterND', [c.zeros([xs[axis]!, ...rest], c.dtype(data)), idx, d], { reduction: 'add' });
  if (axis === 0) return [dx, null];
  return [transpose(dx, [...Array.from({ length: axis }, (_, k) => k + 1), 0, ...Array.from({ length: xs.length - axis - 1 }, (_, k) => axis + 1 + k)]), null];
};

/** Slice with unit steps: the gradient pads dy back with zeros. Bounds are clamped exactly as ONNX does. */
const sliceGrad: GradRule = (n, dy, c) => {
  const xs = c.shape(inp(n, 0));
  const starts = c.ints(inp(n, 1));
  const ends = c.ints(inp(n, 2));
  if (!starts || !ends) throw new Error(`node ${n.name} (Slice): starts/ends must be constant to differentiate`);
  const axes = (c.ints(inp(n, 3)) ?? starts.map((_, k) => k)).map((a) => axisOf(a, xs.length));
  const steps = c.ints(inp(n, 4)) ?? starts.map(() => 1);
  const pads = new Array<number>(2 * xs.length).fill(0);
  axes.forEach((a, k) => {
    if (steps[k] !== 1) throw new Error(`node ${n.name} (Slice): only unit steps can be differentiated, got step ${steps[k]}`);
    const dim = xs[a]!;
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const s = clamp(starts[k]!);
    const e = Math.max(clamp(ends[k]!), s);
    pads[a] = s;
    pads[xs.length + a] = dim - e;
  });
  return [c.pad(first(dy), pads), null, null, null, null];
};

const layerNormGrad: GradRule = (n, dy, c) => {
  if (dy[1] || dy[2]) throw new Error(`node ${n.name} (LayerNormalization): gradients through Mean/InvStdDev outputs are not supported`);
  const { cast, mean, mul, sub, sum, unbroadcast } = c;
  const [x, scale, bias] = [inp(n, 0), inp(n, 1), inp(n, 2)];
  const xs = c.shape(x);
  const axis = axisOf(attrInt(n, 'axis', -1), xs.length);
  const normAxes = Array.from({ length: xs.length - axis }, (_, k) => axis + k);
  const leadAxes = Array.from({ length: axis }, (_, k) => k);
  const d = first(dy);
  // Mean/InvStdDev are kept in stash_type (float32 by default), whatever the input type.
  const stashed = (t: string): string => (c.dtype(t) === c.dtype(x) ? t : cast(t, c.dtype(x)));
  const invStd = stashed(out(n, 2));
  const xhat = mul(sub(x, stashed(out(n, 1))), invStd);
  const normShape = xs.slice(axis);
  const sumLead = (t: string): string => (leadAxes.length ? sum(t, leadAxes) : t);
  const dScale = unbroadcast(sumLead(mul(d, xhat)), normShape, c.shape(scale));
  const dBias = bias ? unbroadcast(sumLead(d), normShape, c.shape(bias)) : null;
  const dxhat = mul(d, scale);
  const m1 = mean(dxhat, normAxes, true);
  const m2 = mean(mul(dxhat, xhat), normAxes, true);
  return [mul(invStd, sub(sub(dxhat, m1), mul(xhat, m2))), dScale, dBias];
};

/** MatMul: a [.., M, K] x b [.., K, N]. A 2-D weight gets its gradient from one 2-D Gemm over all rows. */
const matmulGrad: GradRule = (n, dy, c) => {
  const { gemm, matmul, reshape, unbroadcast } = c;
  const [a, b] = [inp(n, 0), inp(n, 1)];
  const sa = c.shape(a);
  const sb = c.shape(b);
  const sy = c.shape(out(n));
  const d = first(dy);
  if (sa.length < 2 || sb.length < 2) throw new Error(`node ${n.name} (MatMul): 1-D operands are not supported by the gradient rule`);
  if (sb.length === 2) {
    const [K, N] = sb as [number, number];
    const d2 = reshape(d, [-1, N]);
    return [reshape(gemm(d2, b, { transB: 1 }), sa), gemm(reshape(a, [-1, K]), d2, { transA: 1 })];
  }
  const da = matmul(d, swapLast(c, b, sb.length));
  const db = matmul(swapLast(c, a, sa.length), d);
  const daShape = [...sy.slice(0, -2), sa[sa.length - 2]!, sa[sa.length - 1]!];
  const dbShape = [...sy.slice(0, -2), sb[sb.length - 2]!, sb[sb.length - 1]!];
  return [unbroadcast(da, daShape, sa), unbroadcast(db, dbShape, sb)];
};

/** Gemm: y = alpha A' B' + beta C, with A' = transA ? A^T : A (same for B). */
const gemmGrad: GradRule = (n, dy, c) => {
  const { gemm, mul, scalar, unbroadcast } = c;
  const [a, b, cc] = [inp(n, 0), inp(n, 1), inp(n, 2)];
  const alpha = float(attrFloat(n, 'alpha', 1));
  const beta = attrFloat(n, 'beta', 1);
  const tA = attrInt(n, 'transA', 0);
  const tB = attrInt(n, 'transB', 0);
  const d = first(dy);
  const da = tA ? gemm(b, d, { alpha, transA: tB, transB: 1 }) : gemm(d, b, { alpha, transB: tB ? 0 : 1 });
  const db = tB ? gemm(d, a, { alpha, transA: 1, transB: tA }) : gemm(a, d, { alpha, transA: tA ? 0 : 1 });
  const dc = cc ? unbroadcast(mul(d, scalar(beta, cc)), c.shape(out(n)), c.shape(cc)) : null;
  return [da, db, dc];
};

/**
 * Dropout in inference mode (no training_mode input, or a constant false) is the identity. In training mode
 * dy flows through the node's own mask: dx = dy * mask / (1 - ratio). (Our training graphs never get here:
 * their dropout sites are products with fed masks, see models/grad `dropout: 'masks'`.)
 */
const dropoutGrad: GradRule = (n, dy, c) => {
  const mode = inp(n, 2);
  const training = mode ? c.ints(mode) : [0];
  if (!training) throw new Error(`node ${n.name} (Dropout): training_mode is not a constant; cannot tell whether it drops`);
  if (!training[0]) return [first(dy), null, null];
  const mask = out(n, 1);
  if (!mask) throw new Error(`node ${n.name} (Dropout): in training mode its mask output is needed to differentiate it`);
  const ratio = inp(n, 1) ? c.ints(inp(n, 1))?.[0] : attrFloat(n, 'ratio', 0.5);
  if (ratio === undefined) throw new Error(`node ${n.name} (Dropout): the ratio must be constant to differentiate`);
  const { cast, mul, scalar } = c;
  const x = inp(n, 0);
  return [mul(first(dy), mul(cast(mask, c.dtype(x)), scalar(ratio < 1 ? 1 / (1 - ratio) : 0, x))), null, null];
};

// ---------------------------------------------------------------------------------------- convolutions
// Conv and ConvTranspose (any number of spatial axes, group 1, explicit pads). Both gradients are convolutions
// again: the data gradient runs the op's transpose with the same weight, and the weight gradient correlates
// input and output gradient over the batch, with batch and channels swapped so that Conv sums over the batch.

interface ConvGeometry {
  spatial: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

function convGeometry(n: NodeProto, c: GradContext): ConvGeometry {
  const w = c.shape(inp(n, 1));
  const spatial = w.length - 2;
  const ones = new Array<number>(spatial).fill(1);
  const where = `node ${n.name} (${n.opType})`;
  if (attrInt(n, 'group', 1) !== 1) throw new Error(`${where}: only group=1 can be differentiated`);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new Error(`${where}: auto_pad ${autoPad} cannot be differentiated; give explicit pads`);
  if (attrInts(n, 'output_shape', undefined)) throw new Error(`${where}: output_shape cannot be differentiated; give pads and output_padding`);
  const kernel = attrInts(n, 'kernel_shape', undefined) ?? w.slice(2);
  if (kernel.some((k, i) => k !== w[2 + i])) throw new Error(`${where}: kernel_shape ${kernel} differs from the weight's ${w.slice(2)}`);
  return {
    spatial,
    kernel,
    strides: attrInts(n, 'strides', undefined) ?? ones,
    dilations: attrInts(n, 'dilations', undefined) ?? ones,
    pads: attrInts(n, 'pads', undefined) ?? new Array<number>(2 * spatial).fill(0),
  };
}

/** [a, b, ...spatial] -> [b, a, ...spatial]. */
const swapFirstTwo = ({ transpose }: GradContext, x: string, rank: number): string =>
  transpose(x, [1, 0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)]);

/** Keeps the first `kernel` positions of each spatial axis (a correlation may yield a few more). */
function cropKernel({ slice }: GradContext, x: string, have: number[], kernel: number[]): string {
  if (have.every((h, k) => h === kernel[k])) return x;
  return slice(x, kernel.map(() => 0), kernel, kernel.map((_, k) => k + 2));
}

/** Output length of a convolution along one axis. */
const convLength = (len: number, k: number, stride: number, dilation: number, padBegin: number, padEnd: number): number =>
  Math.floor((len + padBegin + padEnd - ((k - 1) * dilation + 1)) / stride) + 1;

/** What both convolution rules read: inputs, output gradient, geometry and shapes. */
function convParts(n: NodeProto, dy: Grad[], c: GradContext) {
  const [x, w, b] = [inp(n, 0), inp(n, 1), inp(n, 2)];
  return { x, w, b, d: first(dy), geo: convGeometry(n, c), xs: c.shape(x), ys: c.shape(out(n)) };
}

/**
 * The weight gradient of either op: Conv of `data`^T (batch <-> channels) with `kern`^T as the kernel, dilated
 * by the stride and strided by the dilation, cropped to the kernel. For Conv data = x and kern = dy
 * (dW[co, ci, k] = sum_{n, o} dy[n, co, o] x[n, ci, o*s + k*dil - pad]); for ConvTranspose data = dy, kern = x.
 */
function correlationGrad(c: GradContext, geo: ConvGeometry, data: string, dataShape: number[], kern: string, kernShape: number[]): string {
  const { spatial, kernel, strides, dilations, pads } = geo;
  const corr = c.g.op('Conv', [swapFirstTwo(c, data, dataShape.length), swapFirstTwo(c, kern, kernShape.length)], { strides: dilations, dilations: strides, pads });
  const have = kernel.map((_, i) => convLength(dataShape[2 + i]!, kernShape[2 + i]!, dilations[i]!, strides[i]!, pads[i]!, pads[spatial + i]!));
  return cropKernel(c, swapFirstTwo(c, corr, dataShape.length), have, kernel);
}

/** The bias gradient of either op: dy summed over the batch and every spatial axis. */
const convBiasGrad = (c: GradContext, geo: ConvGeometry, b: string, d: string): string | null =>
  b ? c.sum(d, [0, ...geo.kernel.map((_, i) => i + 2)]) : null;

/** y = Conv(x, W [Cout, Cin, k...], b). */
const convGrad: GradRule = (n, dy, c) => {
  const { x, w, b, d, geo, xs, ys } = convParts(n, dy, c);
  const { spatial, kernel, strides, dilations, pads } = geo;
  // dx: the transposed convolution of dy with the same weight; output_padding restores rows the stride skipped.
  const outputPadding = kernel.map((k, i) => xs[2 + i]! - ((ys[2 + i]! - 1) * strides[i]! - pads[i]! - pads[spatial + i]! + (k - 1) * dilations[i]! + 1));
  const dx = c.g.op('ConvTranspose', [d, w], { strides, pads, dilations, output_padding: outputPadding });
  return [dx, correlationGrad(c, geo, x, xs, d, ys), convBiasGrad(c, geo, b, d)];
};

/** y = ConvTranspose(x, W [Cin, Cout, k...], b). */
const convTransposeGrad: GradRule = (n, dy, c) => {
  const { x, w, b, d, geo, xs, ys } = convParts(n, dy, c);
  const { strides, pads, dilations } = geo;
  // dx: the forward convolution of dy with the same weight (rows added by output_padding fall outside every window).
  const dx = c.g.op('Conv', [d, w], { strides, pads, dilations });
  return [dx, correlationGrad(c, geo, d, ys, x, xs), convBiasGrad(c, geo, b, d)];
};

export const RULES: Record<string, GradRule> = {
  Identity: same,
  Dropout: dropoutGrad,
  Cast: (n, dy, c) => [FLOAT_TYPES.has(c.dtype(inp(n, 0))) ? c.cast(first(dy), c.dtype(inp(n, 0))) : null],
  Reshape: (n, dy, c) => [...reshapeBack(n, dy, c), null],
  Flatten: reshapeBack,
  Squeeze: (n, dy, c) => [...reshapeBack(n, dy, c), null],
  Unsqueeze: (n, dy, c) => [...reshapeBack(n, dy, c), null],
  Transpose: (n, dy, c) => {
    const rank = c.shape(inp(n, 0)).length;
    const perm = attrInts(n, 'perm', undefined) ?? Array.from({ length: rank }, (_, k) => rank - 1 - k);
    const inv = new Array<number>(rank);
    perm.forEach((p, k) => (inv[p] = k));
    return [c.transpose(first(dy), inv)];
  },
  Expand: (n, dy, c) => [c.unbroadcast(first(dy), c.shape(out(n)), c.shape(inp(n, 0))), null],

  Add: binary((d) => [d, d]),
  Sub: binary((d, _a, _b, _y, { neg }) => [d, neg(d)]),
  Mul: binary((d, a, b, _y, { mul }) => [mul(d, b), mul(d, a)]),
  Div: binary((d, _a, b, y, { div, mul, neg }) => {
    const da = div(d, b);
    return [da, neg(mul(da, y))]; // -dy * a / b^2 = -(dy / b) * y
  }),
  Pow: binary((d, a, b, y, c) => {
    const { cast, log, mul, pow, scalar, sub } = c;
    const bf = FLOAT_TYPES.has(c.dtype(b)) ? b : cast(b, c.dtype(a));
    return [mul(d, mul(bf, pow(a, sub(bf, scalar(1, a))))), mul(d, mul(y, log(a)))];
  }),
  Where: (n, dy, { scalar, shape, unbroadcast, where }) => {
    const [cond, a, b, d] = [inp(n, 0), inp(n, 1), inp(n, 2), first(dy)];
    const zero = scalar(0, out(n));
    const y = shape(out(n));
    return [null, unbroadcast(where(cond, d, zero), y, shape(a)), unbroadcast(where(cond, zero, d), y, shape(b))];
  },
  Sum: (n, dy, c) => n.input.map((x) => c.unbroadcast(first(dy), c.shape(out(n)), c.shape(x))),

  Neg: unary((d, _x, _y, { neg }) => neg(d)),
  Sqrt: unary((d, _x, y, { div, mul, scalar }) => div(mul(d, scalar(0.5, y)), y)),
  Reciprocal: unary((d, _x, y, { mul, neg }) => neg(mul(d, mul(y, y)))),
  Exp: unary((d, _x, y, { mul }) => mul(d, y)),
  Log: unary((d, x, _y, { div }) => div(d, x)),
  Tanh: unary((d, _x, y, { mul, scalar, sub }) => mul(d, sub(scalar(1, y), mul(y, y)))),
  Sigmoid: unary((d, _x, y, { mul, scalar, sub }) => mul(d, mul(y, sub(scalar(1, y), y)))),
  Erf: unary((d, x, _y, { exp, mul, neg, scalar }) => mul(d, mul(exp(neg(mul(x, x))), scalar(2 / Math.sqrt(Math.PI), x)))),
  Sin: unary((d, x, _y, { cos, mul }) => mul(d, cos(x))),
  Cos: unary((d, x, _y, { mul, neg, sin }) => neg(mul(d, sin(x)))),
  Abs: unary((d, x, _y, { mul, sign }) => mul(d, sign(x))),
  // Max/Min of two inputs: the gradient goes to the selected one (to the first on ties).
  Max: binary((d, _a, _b, _y, c, n) => selectGrad(n, d, c, 'GreaterOrEqual')),
  Min: binary((d, _a, _b, _y, c, n) => selectGrad(n, d, c, 'LessOrEqual')),
  Relu: unary((d, x, _y, { greater, scalar, where }) => where(greater(x, scalar(0, x)), d, scalar(0, x))),
  Gelu: unary(geluGrad),
  // d softmax = y * (d - sum(d * y)); d log-softmax = d - exp(y) * sum(d), along the axis.
  Softmax: (n, dy, c) => {
    const { mul, sub, sum } = c;
    const [d, y] = [first(dy), out(n)];
    return [mul(y, sub(d, sum(mul(d, y), [softmaxAxis(n, c)], true)))];
  },
  LogSoftmax: (n, dy, c) => {
    const { exp, mul, sub, sum } = c;
    const d = first(dy);
    const s = sum(d, [softmaxAxis(n, c)], true);
    return [sub(d, mul(exp(out(n)), s))];
  },
  LayerNormalization: layerNormGrad,
  ReduceSum: reduceGrad(false),
  ReduceMean: reduceGrad(true),

  MatMul: matmulGrad,
  Gemm: gemmGrad,
  Gather: gatherGrad,
  GatherElements: (n, dy, c) => {
    const dx = c.g.op('ScatterElements', [c.zerosLike(inp(n, 0)), inp(n, 1), first(dy)], { axis: attrInt(n, 'axis', 0), reduction: 'add' });
    return [dx, null];
  },
  Concat: (n, dy, c) => {
    const axis = axisOf(attrInt(n, 'axis', 0), c.shape(out(n)).length);
    let offset = 0;
    return n.input.map((x) => {
      const [start, len] = [offset, c.shape(x)[axis]!];
      offset += len;
      return len === 0 || !FLOAT_TYPES.has(c.dtype(x)) ? null : c.slice(first(dy), [start], [start + len], [axis]);
    });
  },
  Split: (n, dy, c) => {
    const axis = axisOf(attrInt(n, 'axis', 0), c.shape(inp(n, 0)).length);
    return [c.concat(n.output.map((o, k) => dy[k] ?? c.zerosLike(o)), axis), null];
  },
  Slice: sliceGrad,

  // Convolutional VAE (theory/vae.ts).
  Conv: convGrad,
  ConvTranspose: convTransposeGrad,
  Softplus: unary((d, x, _y, { mul, sigmoid }) => mul(d, sigmoid(x))),
};
