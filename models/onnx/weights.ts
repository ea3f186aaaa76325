// What counts as a weight of an ONNX graph: the one definition the gradient builder (its default trainable set),
// the training source (its structure hash) and the fine-tuned copy (which tensors it rewrites) share.
import { DataType, dimsOf, FLOAT_TYPES, numel, type ITensorProto, type ModelProto, type TensorProto } from './proto.js';

/** Float buffers that exporters keep as initializers but that are not parameters (rotary tables, mask fills). */
const BUFFERS = /(^|[./_])(inv_freq|cos_cached|sin_cached|masked_bias)$/;

/** A weight: a float initializer with more than one value (a scalar is a constant). */
export const isWeight = (t: ITensorProto): boolean => FLOAT_TYPES.has(t.dataType as DataType) && numel(dimsOf(t)) > 1;

/** A weight held in float32, the precision of model directories' training sources and fine-tuned copies. */
export const isFloat32Weight = (t: ITensorProto): boolean => t.dataType === DataType.FLOAT && isWeight(t);

/** Weights that are not known buffers, in initializer order: the default trainable set. */
export function weightNames(model: ModelProto): string[] {
  return ((model.graph?.initializer ?? []) as TensorProto[]).filter((t) => isWeight(t) && !BUFFERS.test(t.name)).map((t) => t.name);
}
