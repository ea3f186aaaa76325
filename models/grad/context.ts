// What a gradient rule may use: the builder that receives backward nodes, the static shape/type of every forward
// tensor, constant values, and a few helpers (broadcast undo, reductions that follow the opset's conventions).
import { GraphBuilder } from '../onnx/graph.js';
import { DataType, makeTensor, tensorNumbers, type TensorProto } from '../onnx/proto.js';
import type { TensorInfo } from './static.js';

export class GradContext {
  constructor(
    readonly g: GraphBuilder,
    readonly opset: number,
    readonly infos: Map<string, TensorInfo>,
    private readonly constants: Map<string, TensorProto>,
  ) {}

  shape(name: string): number[] {
    const i = this.infos.get(name);
    if (!i) throw new Error(`gradient builder: no static shape known for tensor ${name}`);
    return i.shape;
  }

  dtype(name: string): DataType {
    const i = this.infos.get(name);
    if (!i) throw new Error(`gradient builder: no element type known for tensor ${name}`);
    return i.dtype;
  }

  /** Values of a constant input (axes, shapes, slice bounds), or undefined when absent/not constant. */
  ints(name: string | undefined): number[] | undefined {
    if (!name) return undefined;
    const t = this.constants.get(name) ?? this.g.initializers.find((x) => x.name === name);
    return t ? tensorNumbers(t) : undefined;
  }

  /** A scalar constant with the element type of tensor `like`. */
  scalar(value: number, like: string): string {
    return this.g.scalar(value, this.dtype(like));
  }

  /** Zeros with the shape and type of forward tensor `like` (ConstantOfShape: nothing big stored in the model). */
  zerosLike(like: string): string {
    const dtype = this.dtype(like);
    const value = makeTensor('value', [1], dtype === DataType.DOUBLE ? new Float64Array(1) : new Float32Array(1));
    return this.g.op('ConstantOfShape', [this.g.i64(this.shape(like))], { value });
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.g.op('Reshape', [x, this.g.i64(shape)]);
  }

  /** ReduceSum/ReduceMean with axes as input or attribute, as the opset requires. */
  reduce(op: 'ReduceSum' | 'ReduceMean', x: string, axes: readonly number[], keepdims: boolean): string {
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    if (axesAsInput) return this.g.op(op, [x, this.g.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.g.op(op, [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  /** Undo numpy broadcasting: sum `grad` (shaped `from`) over the axes that were broadcast to reach it from `to`. */
  unbroadcast(grad: string, from: readonly number[], to: readonly number[]): string {
    if (sameShape(from, to)) return grad;
    const lead = from.length - to.length;
    const axes: number[] = [];
    from.forEach((d, k) => {
      if (k < lead || (to[k - lead] === 1 && d !== 1)) axes.push(k);
    });
    const summed = axes.length > 0 ? this.reduce('ReduceSum', grad, axes, true) : grad;
    return this.reshape(summed, to);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

/** Normalises a possibly negative axis for a tensor of the given rank. */
export function axisOf(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
