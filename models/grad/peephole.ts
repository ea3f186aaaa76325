// Small rewrites of the finished backward graph that save whole passes over large tensors.
import { attrFloat, attrInt, attrInts, makeAttribute } from '../onnx/graph.js';
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
