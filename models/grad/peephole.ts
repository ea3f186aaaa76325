// Small rewrites of the finished backward graph that save whole passes over large tensors.
import { attrFloat, attrInt, attrInts, attrString, makeAttribute } from '../onnx/graph.js';
import { FloatAttr } from '../onnx/graph.js';
import { onnx, type NodeProto } from '../onnx/proto.js';

/**
 * Transpose([1,0]) of a two-input Gemm becomes one Gemm with swapped operands: (A'B')^T = B'^T A'^T.
 * Weights used as MatMul(x, Transpose(W)) (HF layout [out, in]) then get dW directly in their own layout,
 * instead of a [in, out] gradient plus a transposed copy (154 MB for OPT's tied LM head).
 */
export function foldTransposedGemms(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  const uses = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  }
  return nodes.map((n) => {
    if (n.opType !== 'Transpose') return n;
    const perm = attrInts(n, 'perm', undefined);
    if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return n;
    const gemm = producer.get(n.input[0]!);
    if (!gemm || gemm.opType !== 'Gemm' || gemm.input.length !== 2 || uses.get(n.input[0]!) !== 1) return n;
    const tA = attrInt(gemm, 'transA', 0);
    const tB = attrInt(gemm, 'transB', 0);
    const alpha = attrFloat(gemm, 'alpha', 1);
    return onnx.NodeProto.create({
      opType: 'Gemm',
      name: `${n.name}_as_gemm`,
      input: [gemm.input[1]!, gemm.input[0]!],
      output: [...n.output],
      attribute: [
        makeAttribute('alpha', new FloatAttr(alpha)),
        makeAttribute('transA', tB ? 0 : 1),
        makeAttribute('transB', tA ? 0 : 1),
      ],
    });
  });
}

/**
 * Sum(a, ScatterND(zeros, idx, upd, add)) becomes ScatterND(a, idx, upd, add): a tied embedding's Gather
 * gradient is scattered straight into the LM-head gradient, without a [vocab, hidden] zero tensor and a Sum pass.
 */
export function foldScatterIntoSum(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  const uses = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  }
  const scatterOntoZeros = (t: string): NodeProto | null => {
    const s = producer.get(t);
    if (!s || s.opType !== 'ScatterND' || uses.get(t) !== 1 || attrString(s, 'reduction', 'none') !== 'add') return null;
    const z = producer.get(s.input[0]!);
    return z && z.opType === 'ConstantOfShape' && uses.get(s.input[0]!) === 1 ? s : null;
  };
  const out: NodeProto[] = [];
  for (const n of nodes) {
    const k = n.opType === 'Sum' && n.input.length >= 2 ? n.input.findIndex((i) => scatterOntoZeros(i) !== null) : -1;
    if (k < 0) {
      out.push(n);
      continue;
    }
    const s = scatterOntoZeros(n.input[k]!)!;
    const others = n.input.filter((_, j) => j !== k);
    let base = others[0]!;
    if (others.length > 1) {
      base = `${n.output[0]}_rest`;
      out.push(onnx.NodeProto.create({ opType: 'Sum', name: `${n.name}_rest`, input: others, output: [base] }));
    }
    out.push(
      onnx.NodeProto.create({
        opType: 'ScatterND',
        name: `${n.name}_scatter`,
        input: [base, s.input[1]!, s.input[2]!],
        output: [...n.output],
        attribute: [makeAttribute('reduction', 'add')],
      }),
    );
  }
  return out;
}
