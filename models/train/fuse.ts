// Graphs derived from the gradient graph. The fused step graph: the gradient graph and the update graph merged into
// one, so that when one micro-batch makes a whole batch the gradients never leave onnxruntime (saves one
// weights-sized output copy per step). The accumulating gradient graph: micro-batches summed in place.
import { makeModel, opsetOf } from '../onnx/graph.js';
import { onnx, type GraphProto, type ModelProto } from '../onnx/proto.js';
import { buildUpdateGraph, gradName, type OptimizerConfig, type ParamSpec } from './optimizers.js';

export function fuseStep(gradModel: ModelProto, params: readonly ParamSpec[], cfg: OptimizerConfig): ModelProto {
  const gg = gradModel.graph as GraphProto;
  const opset = Math.max(opsetOf(gradModel), 13);
  const upd = buildUpdateGraph(params, cfg, { gradsAreInternal: true, opset }).graph as GraphProto;
  const grads = new Set(params.map((p) => gradName(p.name)));
  const have = new Set(gg.input.map((i) => i.name));
  for (const g of grads) if (!gg.output.some((o) => o.name === g)) throw new Error(`gradient graph has no output ${g}`);
  const graph = onnx.GraphProto.create({
    name: 'train_step',
    node: [...gg.node, ...upd.node],
    initializer: [...gg.initializer, ...upd.initializer],
    input: [...gg.input, ...upd.input.filter((i) => !have.has(i.name))],
    output: [...gg.output.filter((o) => !grads.has(o.name ?? '')), ...upd.output],
    valueInfo: gg.valueInfo,
  });
  const model = makeModel(graph, { opset });
  // Keep any non-default domains the gradient graph imports.
  for (const o of gradModel.opsetImport) if (o.domain && o.domain !== 'ai.onnx') model.opsetImport.push(o);
  return model;
}

/** The name of the running gradient sum fed to the accumulating gradient graph. */
export const accName = (p: string): string => `acc.${p}`;

/**
 * The accumulating gradient graph: the gradient graph with one more input per parameter, `acc.p`, and each output
 * `grad.p` replaced by `acc.p + grad.p`. The engine feeds its running sum as `acc.p` and hands the same buffer in
 * as `grad.p`'s output, so micro-batches after the first add into it in place: no second gradient buffer and no
 * pass in JavaScript. Only the Add reads `acc.p`, and it is the node that writes `grad.p`.
 */
export function accumulatingGrad(gradModel: ModelProto, params: readonly ParamSpec[]): ModelProto {
  const gg = gradModel.graph as GraphProto;
  const grads = new Map(params.map((p) => [gradName(p.name), p]));
  for (const g of grads.keys()) if (!gg.output.some((o) => o.name === g)) throw new Error(`gradient graph has no output ${g}`);
  const micro = (g: string) => `${g}/micro`;
  const rename = (names: readonly string[] | null | undefined) => (names ?? []).map((n) => (grads.has(n) ? micro(n) : n));
  const nodes = gg.node.map((n) => onnx.NodeProto.create({ ...n, input: rename(n.input), output: rename(n.output) }));
  const adds = [...grads].map(([g, p]) => onnx.NodeProto.create({ opType: 'Add', name: `accumulate/${g}`, input: [accName(p.name), micro(g)], output: [g] }));
  const accInputs = [...grads].map(([g, p]) => onnx.ValueInfoProto.create({ ...gg.output.find((o) => o.name === g)!, name: accName(p.name) }));
  const graph = onnx.GraphProto.create({ ...gg, name: 'grad_accumulate', node: [...nodes, ...adds], input: [...gg.input, ...accInputs] });
  return onnx.ModelProto.create({ ...gradModel, graph });
}
