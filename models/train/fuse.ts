// The fused step graph: the gradient graph and the update graph merged into one, so that when one micro-batch
// makes a whole batch the gradients never leave onnxruntime (saves one weights-sized output copy per step).
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
