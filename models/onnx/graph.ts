// A small builder for ONNX graphs: nodes, initializers, inputs and outputs with unique names.
// Model families (models/opt), the gradient builder (models/grad) and tests all build graphs through it.
import {
  AttributeType,
  DataType,
  makeTensor,
  onnx,
  tensorNumbers,
  toNumber,
  valueInfo,
  type AttributeProto,
  type GraphProto,
  type ITensorProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type TypedArray,
  type ValueInfoProto,
} from './proto.js';

/** Marks a number that must be stored as a FLOAT attribute even when it is integral (e.g. alpha: 1). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (v: number): FloatAttr => new FloatAttr(v);

export type AttrValue = number | FloatAttr | string | number[] | FloatAttr[] | string[] | ITensorProto;
export type Attrs = Record<string, AttrValue | undefined>;

export function makeAttribute(name: string, v: AttrValue): AttributeProto {
  const a = onnx.AttributeProto.create({ name });
  if (v instanceof FloatAttr) Object.assign(a, { type: AttributeType.FLOAT, f: v.value });
  else if (typeof v === 'number') {
    if (Number.isInteger(v)) Object.assign(a, { type: AttributeType.INT, i: v });
    else Object.assign(a, { type: AttributeType.FLOAT, f: v });
  } else if (typeof v === 'string') Object.assign(a, { type: AttributeType.STRING, s: new TextEncoder().encode(v) });
  else if (Array.isArray(v)) {
    const arr = v as unknown[];
    if (arr.length > 0 && typeof arr[0] === 'string')
      Object.assign(a, { type: AttributeType.STRINGS, strings: (arr as string[]).map((s) => new TextEncoder().encode(s)) });
    else if (arr.some((x) => x instanceof FloatAttr || (typeof x === 'number' && !Number.isInteger(x))))
      Object.assign(a, { type: AttributeType.FLOATS, floats: arr.map((x) => (x instanceof FloatAttr ? x.value : (x as number))) });
    else Object.assign(a, { type: AttributeType.INTS, ints: arr as number[] });
  } else Object.assign(a, { type: AttributeType.TENSOR, t: v });
  return a;
}

/** Reads an attribute of an existing node (ints/floats/strings/tensor), or returns the fallback. */
export function getAttr<T>(node: NodeProto, name: string, fallback: T): T | number | number[] | string | string[] | TensorProto {
  const a = node.attribute.find((x) => x.name === name);
  if (!a) return fallback;
  switch (a.type) {
    case AttributeType.INT: return toNumber(a.i as number);
    case AttributeType.FLOAT: return a.f ?? 0;
    case AttributeType.INTS: return (a.ints ?? []).map((x) => toNumber(x as number));
    case AttributeType.FLOATS: return [...(a.floats ?? [])];
    case AttributeType.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AttributeType.STRINGS: return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    case AttributeType.TENSOR: return a.t as TensorProto;
    default: throw new Error(`node ${node.name} (${node.opType}): attribute ${name} has unsupported type ${a.type}`);
  }
}
export const attrInt = (n: NodeProto, name: string, fb: number): number => getAttr(n, name, fb) as number;
export const attrFloat = (n: NodeProto, name: string, fb: number): number => getAttr(n, name, fb) as number;
export const attrInts = (n: NodeProto, name: string, fb: number[] | undefined): number[] | undefined =>
  getAttr(n, name, fb) as number[] | undefined;
export const attrString = (n: NodeProto, name: string, fb: string): string => getAttr(n, name, fb) as string;

export interface OpOptions {
  /** Number of outputs, or their explicit names. */
  outputs?: number | string[];
  name?: string;
  domain?: string;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly prefix = '') {}

  /** Reserve names that already exist (when extending an existing graph). */
  reserve(names: Iterable<string>): void {
    for (const n of names) this.used.add(n);
  }

  unique(base: string): string {
    let name = this.prefix + base;
    while (this.used.has(name)) name = `${this.prefix}${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, dtype: DataType, shape: readonly (number | string)[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DataType, shape: readonly (number | string)[]): string {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** A named initializer (a weight). */
  initializer(name: string, dims: readonly number[], data: TypedArray, dtype?: DataType): string {
    if (this.used.has(name) && this.initializers.some((t) => t.name === name)) throw new Error(`duplicate initializer ${name}`);
    this.used.add(name);
    this.initializers.push(makeTensor(name, dims, data, dtype));
    return name;
  }

  /** A small constant, stored as an initializer with a generated name. */
  constant(data: TypedArray, dims?: readonly number[], base = 'const'): string {
    const name = this.unique(base);
    this.initializers.push(makeTensor(name, dims ?? [data.length], data));
    return name;
  }
  i64(values: readonly number[], dims?: readonly number[]): string {
    return this.constant(BigInt64Array.from(values.map((v) => BigInt(v))), dims, 'i64');
  }
  f32(values: readonly number[], dims?: readonly number[]): string {
    return this.constant(Float32Array.from(values), dims, 'f32');
  }
  scalar(value: number, dtype: DataType = DataType.FLOAT): string {
    if (dtype === DataType.FLOAT) return this.constant(Float32Array.of(value), [], 'scalar');
    if (dtype === DataType.DOUBLE) return this.constant(Float64Array.of(value), [], 'scalar');
    if (dtype === DataType.INT64) return this.constant(BigInt64Array.of(BigInt(value)), [], 'scalar');
    throw new Error(`scalar: unsupported dtype ${dtype}`);
  }

  /** Adds one node; returns its output names. */
  opN(opType: string, inputs: readonly string[], attrs: Attrs = {}, opts: OpOptions = {}): string[] {
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, k) => this.unique(`${opType}_out${k}`));
    for (const o of outs) this.used.add(o);
    const attribute = Object.entries(attrs)
      .filter((e): e is [string, AttrValue] => e[1] !== undefined)
      .map(([k, v]) => makeAttribute(k, v));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        domain: opts.domain ?? '',
        name: opts.name ?? this.unique(opType),
        input: [...inputs],
        output: outs,
        attribute,
      }),
    );
    return outs;
  }

  /** Adds one node with a single output; returns the output name. */
  op(opType: string, inputs: readonly string[], attrs: Attrs = {}, opts: OpOptions = {}): string {
    return this.opN(opType, inputs, attrs, opts)[0]!;
  }

  graph(name = 'graph'): GraphProto {
    return onnx.GraphProto.create({
      name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    });
  }

  model(opts: { name?: string; opset?: number; producer?: string } = {}): ModelProto {
    return makeModel(this.graph(opts.name), opts);
  }
}

export const DEFAULT_OPSET = 17;

export function makeModel(graph: GraphProto, opts: { opset?: number; producer?: string } = {}): ModelProto {
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: opts.producer ?? 'model-collapse',
    opsetImport: [{ domain: '', version: opts.opset ?? DEFAULT_OPSET }],
    graph,
  });
}

/** The default-domain opset a model imports. */
export function opsetOf(model: ModelProto): number {
  const e = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return e ? toNumber(e.version as number) : DEFAULT_OPSET;
}

/** Constant node value (Constant op's `value`, `value_float(s)`, `value_int(s)`) as a TensorProto. */
export function constantNodeValue(node: NodeProto): TensorProto {
  const v = node.attribute[0];
  if (!v) throw new Error(`Constant node ${node.name} has no value`);
  switch (v.name) {
    case 'value': return v.t as TensorProto;
    case 'value_float': return makeTensor(node.output[0]!, [], Float32Array.of(v.f ?? 0));
    case 'value_floats': return makeTensor(node.output[0]!, [(v.floats ?? []).length], Float32Array.from(v.floats ?? []));
    case 'value_int': return makeTensor(node.output[0]!, [], BigInt64Array.of(BigInt(toNumber(v.i as number))));
    case 'value_ints':
      return makeTensor(node.output[0]!, [(v.ints ?? []).length], BigInt64Array.from((v.ints ?? []).map((x) => BigInt(toNumber(x as number)))));
    default: throw new Error(`Constant node ${node.name}: unsupported attribute ${v.name}`);
  }
}

export { tensorNumbers };
