// What a gradient rule may use: the builder that receives backward nodes, the static shape/type of every forward
// tensor, constant values, and the ops a rule builds (mul, sum, unbroadcast, ...), all bound so that rules destructure them.
import { GraphBuilder, type Attrs } from '../onnx/graph.js';
import { DataType, makeTensor, tensorNumbers, type TensorProto } from '../onnx/proto.js';
import type { TensorInfo } from './static.js';

export class GradContext {
  constructor(
    readonly g: GraphBuilder,
    readonly opset: number,
    readonly infos: Map<string, TensorInfo>,
    private readonly constants: Map<string, TensorProto>,
  ) {}

  readonly shape = (name: string): number[] => {
    const i = this.infos.get(name);
    if (!i) throw new Error(`gradient builder: no static shape known for tensor ${name}`);
    return i.shape;
  };

  readonly dtype = (name: string): DataType => {
    const i = this.infos.get(name);
    if (!i) throw new Error(`gradient builder: no element type known for tensor ${name}`);
    return i.dtype;
  };

  /** Values of a constant input (axes, shapes, slice bounds), or undefined when absent/not constant. */
  readonly ints = (name: string | undefined): number[] | undefined => {
    if (!name) return undefined;
    const t = this.constants.get(name) ?? this.g.initializers.find((x) => x.name === name);
    return t ? tensorNumbers(t) : undefined;
  };

  // The ops the rules build, named after ONNX's and bound to this context, so that a rule destructures the ones it
  // uses and reads like the math: (d, x, y, { mul, sub, scalar }) => mul(d, sub(scalar(1, y), mul(y, y))).
  // Each call appends one node (constants first, in argument order), as `g.op` would.
  readonly add = (a: string, b: string): string => this.g.op('Add', [a, b]);
  readonly sub = (a: string, b: string): string => this.g.op('Sub', [a, b]);
  readonly mul = (a: string, b: string): string => this.g.op('Mul', [a, b]);
  readonly div = (a: string, b: string): string => this.g.op('Div', [a, b]);
  readonly pow = (a: string, b: string): string => this.g.op('Pow', [a, b]);
  readonly neg = (x: string): string => this.g.op('Neg', [x]);
  readonly exp = (x: string): string => this.g.op('Exp', [x]);
  readonly log = (x: string): string => this.g.op('Log', [x]);
  readonly tanh = (x: string): string => this.g.op('Tanh', [x]);
  readonly erf = (x: string): string => this.g.op('Erf', [x]);
  readonly sin = (x: string): string => this.g.op('Sin', [x]);
  readonly cos = (x: string): string => this.g.op('Cos', [x]);
  readonly sign = (x: string): string => this.g.op('Sign', [x]);
  readonly sigmoid = (x: string): string => this.g.op('Sigmoid', [x]);
  readonly less = (a: string, b: string): string => this.g.op('Less', [a, b]);
  readonly greater = (a: string, b: string): string => this.g.op('Greater', [a, b]);
  readonly where = (cond: string, a: string, b: string): string => this.g.op('Where', [cond, a, b]);
  readonly cast = (x: string, to: DataType): string => this.g.op('Cast', [x], { to });
  readonly matmul = (a: string, b: string): string => this.g.op('MatMul', [a, b]);
  readonly gemm = (a: string, b: string, attrs: Attrs): string => this.g.op('Gemm', [a, b], attrs);
  readonly transpose = (x: string, perm: readonly number[]): string => this.g.op('Transpose', [x], { perm: [...perm] });
  readonly reshape = (x: string, shape: readonly number[]): string => this.g.op('Reshape', [x, this.g.i64(shape)]);
  readonly expand = (x: string, shape: readonly number[]): string => this.g.op('Expand', [x, this.g.i64(shape)]);
  readonly concat = (xs: readonly string[], axis: number): string => this.g.op('Concat', xs, { axis });
  /** x[starts:ends] along `axes`, unit steps. */
  readonly slice = (x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[]): string =>
    this.g.op('Slice', [x, this.g.i64(starts), this.g.i64(ends), this.g.i64(axes)]);
  /** Zero padding: `pads` as ONNX orders them (all begins, then all ends). */
  readonly pad = (x: string, pads: readonly number[]): string => this.g.op('Pad', [x, this.g.i64(pads)], { mode: 'constant' });
  /** Sum over `axes` (keepdims as numpy's), with axes as input or attribute, as the opset requires. */
  readonly sum = (x: string, axes: readonly number[], keepdims = false): string => this.reduce('ReduceSum', x, axes, keepdims);
  readonly mean = (x: string, axes: readonly number[], keepdims = false): string => this.reduce('ReduceMean', x, axes, keepdims);

  /** A scalar constant with the element type of tensor `like`. */
  readonly scalar = (value: number, like: string): string => this.g.scalar(value, this.dtype(like));

  /** Zeros of a shape and element type (ConstantOfShape: nothing big stored in the model). */
  readonly zeros = (shape: readonly number[], dtype: DataType): string => {
    const value = makeTensor('value', [1], dtype === DataType.DOUBLE ? new Float64Array(1) : new Float32Array(1));
    return this.g.op('ConstantOfShape', [this.g.i64(shape)], { value });
  };

  /** Zeros with the shape and type of forward tensor `like`. */
  readonly zerosLike = (like: string): string => this.zeros(this.shape(like), this.dtype(like));

  private reduce(op: 'ReduceSum' | 'ReduceMean', x: string, axes: readonly number[], keepdims: boolean): string {
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    if (axesAsInput) return this.g.op(op, [x, this.g.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.g.op(op, [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  /** Undo numpy broadcasting: sum `grad` (shaped `from`) over the axes that were broadcast to reach it from `to`. */
  readonly unbroadcast = (grad: string, from: readonly number[], to: readonly number[]): string => {
    if (sameShape(from, to)) return grad;
    const lead = from.length - to.length;
    const axes: number[] = [];
    from.forEach((d, k) => {
      if (k < lead || (to[k - lead] === 1 && d !== 1)) axes.push(k);
    });
    const summed = axes.length > 0 ? this.sum(grad, axes, true) : grad;
    return this.reshape(summed, to);
  };
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

/** Normalises a possibly negative axis for a tensor of the given rank. */
export function axisOf(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
