// A float32 ONNX graph converted to float64 (initializers, Constant/ConstantOfShape values, Cast targets, graph
// inputs/outputs), so that finite differences are exact enough to check gradients tightly.
import { AttributeType, DataType, makeTensor, onnx, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../models/onnx/proto.js';

function tensorToDouble(t: TensorProto): TensorProto {
  if (t.dataType !== DataType.FLOAT) return t;
  const bytes = t.rawData && t.rawData.length > 0 ? new Uint8Array(t.rawData) : null;
  const f32 = bytes ? new Float32Array(bytes.buffer) : Float32Array.from(t.floatData ?? []);
  return makeTensor(t.name, (t.dims ?? []).map(Number), Float64Array.from(f32));
}

export function toDouble(model: ModelProto): ModelProto {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph as GraphProto;
  g.initializer = g.initializer.map((t) => tensorToDouble(t as TensorProto));
  for (const n of g.node as NodeProto[]) {
    for (const a of n.attribute) {
      if (a.type === AttributeType.TENSOR && a.t) a.t = tensorToDouble(a.t as TensorProto);
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) a.i = DataType.DOUBLE;
      if (n.opType === 'Constant' && a.name === 'value_float') throw new Error('toDouble: value_float constants are not converted');
    }
  }
  for (const v of [...(g.input as ValueInfoProto[]), ...(g.output as ValueInfoProto[])]) {
    const tt = v.type?.tensorType;
    if (tt && tt.elemType === DataType.FLOAT) tt.elemType = DataType.DOUBLE;
  }
  g.valueInfo = [];
  return m;
}
