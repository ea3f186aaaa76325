// ONNX protobuf types and tensor helpers, through the `onnx-proto` package (protobufjs-generated code for
// onnx.proto). Nothing here encodes the wire format by hand.
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.GraphProto;
export type NodeProto = onnxProto.onnx.NodeProto;
export type TensorProto = onnxProto.onnx.TensorProto;
export type ValueInfoProto = onnxProto.onnx.ValueInfoProto;
export type AttributeProto = onnxProto.onnx.AttributeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;

export const DataType = onnxProto.onnx.TensorProto.DataType;
export type DataType = onnxProto.onnx.TensorProto.DataType;
export const AttributeType = onnxProto.onnx.AttributeProto.AttributeType;

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | BigUint64Array;

/** The element types that carry gradients. */
export const FLOAT_TYPES: ReadonlySet<DataType> = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE]);

/** Element type names as onnxruntime's Tensor uses them (kept here so that graph code need not load onnxruntime). */
export type OrtType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8' | 'float16';

/** The ONNX <-> onnxruntime element type map, one entry per type both sides know. */
export const ORT_TYPE: Partial<Record<number, OrtType>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.BOOL]: 'bool',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.FLOAT16]: 'float16',
};

const DATA_TYPE_OF_ORT = new Map<string, DataType>(Object.entries(ORT_TYPE).map(([dtype, name]) => [name!, Number(dtype)]));

/** The ONNX data type of an onnxruntime Tensor's `type` (undefined when the map has none). */
export function dataTypeOfOrt(type: string): DataType | undefined {
  return DATA_TYPE_OF_ORT.get(type);
}

export function dataTypeOf(array: TypedArray): DataType {
  if (array instanceof Float32Array) return DataType.FLOAT;
  if (array instanceof Float64Array) return DataType.DOUBLE;
  if (array instanceof Int32Array) return DataType.INT32;
  if (array instanceof BigInt64Array) return DataType.INT64;
  if (array instanceof Uint8Array) return DataType.BOOL; // plain bytes are treated as bool tensors
  if (array instanceof Int8Array) return DataType.INT8;
  throw new Error(`unsupported typed array ${array.constructor.name}`);
}

export function bytesPerElement(dtype: DataType): number {
  switch (dtype) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: return 8;
    case DataType.BOOL: case DataType.UINT8: case DataType.INT8: return 1;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 2;
    default: throw new Error(`unsupported ONNX data type ${dtype}`);
  }
}

/** int64 fields decode as Long objects (or numbers); normalise to number. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function dimsOf(t: ITensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d as number));
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** A TensorProto holding `data` in raw_data (the compact form; external data is applied at save time). */
export function makeTensor(name: string, dims: readonly number[], data: TypedArray, dtype?: DataType): TensorProto {
  const type = dtype ?? dataTypeOf(data);
  if (numel(dims) !== data.length) throw new Error(`tensor ${name}: dims [${dims}] do not match ${data.length} elements`);
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: type,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function viewAs(dtype: DataType, bytes: Uint8Array): TypedArray {
  // Copy into a fresh, aligned buffer: protobuf fields may start at any byte offset, and a Node Buffer's
  // slice() is a view into the whole file (new Uint8Array(view) always copies).
  const buf = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case DataType.FLOAT: return new Float32Array(buf);
    case DataType.DOUBLE: return new Float64Array(buf);
    case DataType.INT32: return new Int32Array(buf);
    case DataType.INT64: return new BigInt64Array(buf);
    case DataType.BOOL: case DataType.UINT8: return new Uint8Array(buf);
    case DataType.INT8: return new Int8Array(buf);
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return new Uint16Array(buf);
    default: throw new Error(`unsupported ONNX data type ${dtype}`);
  }
}

/**
 * The values of a TensorProto as a typed array. External data must already be resolved
 * (see external-data.ts: loadModel does it).
 */
export function tensorValues(t: ITensorProto): TypedArray {
  const dtype = (t.dataType ?? 0) as DataType;
  const n = numel(dimsOf(t));
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new Error(`tensor ${t.name}: external data was not loaded (use loadModel)`);
  }
  if (t.rawData && t.rawData.length > 0) return viewAs(dtype, t.rawData);
  switch (dtype) {
    case DataType.FLOAT: return Float32Array.from(t.floatData ?? []);
    case DataType.DOUBLE: return Float64Array.from(t.doubleData ?? []);
    case DataType.INT64: return BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNumber(v as number))));
    case DataType.INT32: return Int32Array.from(t.int32Data ?? []);
    case DataType.BOOL: case DataType.UINT8: return Uint8Array.from(t.int32Data ?? []);
    case DataType.INT8: return Int8Array.from(t.int32Data ?? []);
    default:
      if (n === 0) return new Float32Array(0);
      throw new Error(`tensor ${t.name}: unsupported storage for data type ${dtype}`);
  }
}

/** Values as plain numbers (for shape tensors and small constants). */
export function tensorNumbers(t: ITensorProto): number[] {
  const v = tensorValues(t);
  return Array.from(v as ArrayLike<number | bigint>, (x) => Number(x));
}

export function valueInfo(name: string, dtype: DataType, shape: readonly (number | string)[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: dtype,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/** The declared element type and shape of a graph input/output (symbolic dims as strings). */
export function valueInfoShape(v: onnxProto.onnx.IValueInfoProto): { dtype: DataType; shape: (number | string)[] } {
  const tt = v.type?.tensorType;
  const shape = (tt?.shape?.dim ?? []).map((d) =>
    d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? toNumber(d.dimValue as number) : '?',
  );
  return { dtype: (tt?.elemType ?? 0) as DataType, shape };
}

export function encodeModel(model: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model as ModelProto).finish();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
