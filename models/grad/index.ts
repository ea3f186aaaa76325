// Training and evaluation graphs for any causal-LM forward graph (ours or a torch.onnx export):
//   buildGradientGraph: input_ids (+attention_mask), labels, loss_scale, parameters -> loss_sum, token_count, grad.*
//   buildNllGraph:      input_ids (+attention_mask) -> nll [B, T-1]
import { attrFloat, GraphBuilder, makeModel, opsetOf } from '../onnx/graph.js';
import {
  DataType,
  dimsOf,
  FLOAT_TYPES,
  onnx,
  tensorNumbers,
  toNumber,
  valueInfoShape,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto.js';
import { weightNames } from '../onnx/weights.js';
import type { ort } from '../session.js';
import { backward } from './backward.js';
import { GradContext } from './context.js';
import { appendLossHead, appendNllHead, NLL_OUTPUT } from './loss.js';
import { foldScatterIntoSum, foldTransposedGemms } from './peephole.js';
import {
  copyNodes,
  initializerMap,
  probeTensors,
  pruneNodes,
  staticForward,
  type StaticForward,
  type TensorInfo,
} from './static.js';

export { RULES } from './rules.js';
export { weightNames } from '../onnx/weights.js';

export interface GradientGraphOptions {
  batch: number;
  seq: number;
  /** Initializer names to train (default: every float initializer with more than one element that feeds the loss). */
  trainable?: string[];
  /**
   * 'masks': every Dropout node of the forward with a constant ratio > 0 (the sites buildOptForward marks)
   * becomes x * mask, the mask a graph input (`dropout_mask.<site>`, 0 or 1/(1-ratio), filled by the caller
   * from a seeded generator), so the gradient flows through the very mask the forward used and a resumed
   * run replays the same masks. Default 'none': Dropout nodes stay as they are (inference mode: identity).
   */
  dropout?: 'none' | 'masks';
}

/** A dropout mask input of a training graph: fed with 0 or 1/(1-ratio) per element. */
export interface DropoutMask {
  name: string;
  shape: number[];
  ratio: number;
}

export interface GradientGraph {
  model: ModelProto;
  /** Trainable parameters, in graph-input order; `grad.<name>` is the matching output. */
  params: string[];
  shapes: Record<string, number[]>;
  /** Dropout mask inputs (dropout 'masks'), in graph-input order; empty without dropout. */
  dropoutMasks: DropoutMask[];
}

/** The ratio of a Dropout node, when constant (the attribute of opset < 12, else the optional input). */
function dropoutRatio(n: NodeProto, inits: Map<string, TensorProto>): number | null {
  const input = n.input[1];
  if (!input) return attrFloat(n, 'ratio', 0.5);
  const t = inits.get(input);
  return t ? tensorNumbers(t)[0]! : null;
}

/** Replaces every Dropout node whose ratio is a constant > 0 by x * `dropout_mask.<site>` (see GradientGraphOptions). */
function dropoutToMasks(g: GraphBuilder, sf: StaticForward, info: Map<string, TensorInfo>): DropoutMask[] {
  const masks: DropoutMask[] = [];
  g.nodes.forEach((n, k) => {
    if (n.opType !== 'Dropout') return;
    const ratio = dropoutRatio(n, sf.initializers);
    if (ratio === null) throw new Error(`Dropout node ${n.name}: its ratio is not a constant, so it cannot be fed a mask`);
    if (!(ratio > 0)) return;
    if (n.output.length > 1 && n.output[1]) throw new Error(`Dropout node ${n.name}: its mask output is used; only plain dropout sites can be fed a mask`);
    const x = sf.info.get(n.input[0]!)!;
    const name = `dropout_mask.${n.name.replace(/^dropout\//, '') || k}`;
    if (info.has(name)) throw new Error(`Dropout node ${n.name}: the mask name ${name} is taken; give the Dropout nodes distinct names`);
    g.input(name, x.dtype, x.shape);
    info.set(name, x);
    masks.push({ name, shape: [...x.shape], ratio });
    g.nodes[k] = onnx.NodeProto.create({ opType: 'Mul', name: `${n.name}/mask`, input: [n.input[0]!, name], output: [n.output[0]!] });
  });
  return masks;
}


/** Opset 16 brings ScatterND/ScatterElements reduction='add'; 13..15 graphs keep their meaning under 16. */
const MIN_OUTPUT_OPSET = 16;

// One probe per (model, shapes, parameters): the trainer builds the gradient and the NLL graph from the same model.
const memo = new WeakMap<ModelProto, Map<string, Promise<StaticForward>>>();
function staticForwardOnce(forward: ModelProto, batch: number, seq: number, variables: string[]): Promise<StaticForward> {
  const key = `${batch}x${seq}:${[...variables].sort().join('\n')}`;
  let byKey = memo.get(forward);
  if (!byKey) memo.set(forward, (byKey = new Map()));
  let sf = byKey.get(key);
  if (!sf) {
    sf = staticForward(forward, { batch, seq, variables: new Set(variables) });
    byKey.set(key, sf);
    sf.catch(() => byKey.delete(key)); // a failed build is not remembered
  }
  return sf;
}

function newBuilder(sf: StaticForward, extra: string[]): GraphBuilder {
  const g = new GraphBuilder();
  g.reserve([...sf.initializers.keys(), ...sf.info.keys(), ...sf.nodes.map((n) => n.name), ...extra]);
  // Own copies: the static forward is shared (memoised) between the graphs built from one model.
  g.nodes.push(...sf.nodes.map((n) => onnx.NodeProto.create({ ...n, input: [...n.input], output: [...n.output], attribute: [...n.attribute] })));
  return g;
}

function finish(forward: ModelProto, g: GraphBuilder, inits: Map<string, TensorProto>, opset: number): ModelProto {
  const outs = g.outputs.map((o) => o.name);
  const nodes = pruneNodes(foldScatterIntoSum(foldTransposedGemms(pruneNodes(g.nodes, outs))), outs);
  const used = new Set(nodes.flatMap((n: NodeProto) => n.input));
  const initializer = [...inits.values(), ...g.initializers].filter((t) => used.has(t.name));
  const graph = onnx.GraphProto.create({ name: forward.graph?.name || 'graph', node: nodes, initializer, input: g.inputs, output: g.outputs });
  const model = makeModel(graph, { opset: Math.max(opset, MIN_OUTPUT_OPSET) });
  model.irVersion = Math.max(8, toNumber(forward.irVersion as number));
  return model;
}

function checkTrainable(forward: ModelProto, names: string[]): void {
  const inits = new Map((forward.graph?.initializer ?? []).map((t) => [t.name, t]));
  for (const name of names) {
    const t = inits.get(name);
    if (!t) throw new Error(`trainable parameter ${name} is not an initializer of the forward graph`);
    if (!FLOAT_TYPES.has(t.dataType as DataType)) throw new Error(`trainable parameter ${name} is not a float tensor`);
  }
}

/**
 * The training graph: loss_sum (sum of next-token NLL over non-ignored labels), token_count, and
 * grad.<param> = d(loss_sum * loss_scale)/d param. Labels equal to -100 are ignored; an all-ignored batch
 * gives loss_sum 0 and zero gradients.
 */
export async function buildGradientGraph(forward: ModelProto, opts: GradientGraphOptions): Promise<GradientGraph> {
  const requested = opts.trainable;
  if (requested) checkTrainable(forward, requested);
  const candidates = requested ?? weightNames(forward);
  const sf = await staticForwardOnce(forward, opts.batch, opts.seq, candidates);
  const params = candidates.filter((p) => sf.initializers.has(p));
  const { batch, seq } = opts;
  const dtype = sf.info.get(sf.logits)!.dtype;

  const g = newBuilder(sf, ['labels', 'loss_scale', 'loss_sum', 'token_count', ...params.map((p) => `grad.${p}`)]);
  for (const v of sf.inputs) g.inputs.push(v);
  g.input('labels', DataType.INT64, [batch, seq]);
  g.input('loss_scale', dtype, []);
  const info = new Map(sf.info); // own copy: the static forward is memoised
  const dropoutMasks = opts.dropout === 'masks' ? dropoutToMasks(g, sf, info) : [];
  const shapes: Record<string, number[]> = {};
  for (const p of params) {
    const t = sf.initializers.get(p)!;
    shapes[p] = dimsOf(t);
    g.input(p, t.dataType as DataType, dimsOf(t));
  }

  const forwardNodes = [...g.nodes];
  const head = appendLossHead(g, sf.logits, 'labels', 'loss_scale', { batch, seq, dtype });
  g.op('Identity', [head.lossSum], {}, { outputs: ['loss_sum'] });
  g.op('Identity', [head.tokenCount], {}, { outputs: ['token_count'] });

  // The walk starts at the logits, with the head's hand-written gradient.
  const c = new GradContext(g, sf.opset, info, sf.initializers);
  const grads = backward(forwardNodes, new Map([[sf.logits, head.dLogits]]), params, c);
  const missing = params.filter((p) => !grads.has(p));
  if (requested && missing.length > 0) throw new Error(`trainable parameter(s) ${missing.join(', ')} do not affect the loss`);
  const trained = params.filter((p) => grads.has(p));

  g.output('loss_sum', dtype, []);
  g.output('token_count', dtype, []);
  for (const p of trained) {
    g.op('Identity', [grads.get(p)!], {}, { outputs: [`grad.${p}`] });
    g.output(`grad.${p}`, dtype, shapes[p]!);
  }
  // Parameters are graph inputs: drop them from the initializers (and untrained ones stay initializers).
  const current = initializerMap(forward);
  const inits = new Map([...sf.initializers].map(([name, t]) => [name, current.get(name) ?? t]));
  for (const p of trained) inits.delete(p);
  g.inputs.splice(0, g.inputs.length, ...g.inputs.filter((v) => !params.includes(v.name) || trained.includes(v.name)));
  for (const p of params) if (!trained.includes(p)) delete shapes[p];
  return { model: finish(forward, g, inits, sf.opset), params: trained, shapes, dropoutMasks };
}

/** The evaluation graph: nll [B, T-1] = -log p(token t+1 | tokens <= t). Weights stay initializers. */
export async function buildNllGraph(forward: ModelProto, opts: { batch: number; seq: number }): Promise<ModelProto> {
  const sf = await staticForwardOnce(forward, opts.batch, opts.seq, weightNames(forward));
  const dtype = sf.info.get(sf.logits)!.dtype;
  const g = newBuilder(sf, [NLL_OUTPUT]);
  // Evaluation never drops: Dropout nodes (inference mode already) become plain identities.
  g.nodes.forEach((n, k) => {
    if (n.opType === 'Dropout' && !n.output[1]) g.nodes[k] = onnx.NodeProto.create({ opType: 'Identity', name: n.name, input: [n.input[0]!], output: [n.output[0]!] });
  });
  for (const v of sf.inputs) g.inputs.push(v);
  // The same head as the scoring graph (withNllHead): validation loss and perplexity are one computation.
  appendNllHead(g, sf.logits, 'input_ids', { opset: sf.opset, out: NLL_OUTPUT });
  g.output(NLL_OUTPUT, dtype, [opts.batch, opts.seq - 1]);
  // Weights from the model as it is now (the memoised static forward may predate a weight update).
  const current = initializerMap(forward);
  const inits = new Map([...sf.initializers].map(([name, t]) => [name, current.get(name) ?? t]));
  return finish(forward, g, inits, sf.opset);
}


/**
 * Gradients of the scalar `loss` of any fixed-shape graph with respect to some of its float inputs or
 * initializers (`wrt`): outputs `loss` and `grad.<name>`. `feeds` are example inputs used to learn static shapes.
 * This is the general entry point the tests use to check each rule; it folds nothing.
 */
export async function buildGradientOf(model: ModelProto, opts: { loss: string; wrt: string[]; feeds: Record<string, ort.Tensor> }): Promise<ModelProto> {
  const graph = model.graph as GraphProto;
  const initializers = initializerMap(model);
  const nodes = copyNodes(graph.node as NodeProto[], initializers);
  const inputs = (graph.input as ValueInfoProto[]).filter((v) => !initializers.has(v.name));
  const opset = opsetOf(model);
  const probed = await probeTensors(model, nodes, initializers, inputs, opts.feeds, new Set());
  const info = probed.info;
  for (const [name, t] of initializers) info.set(name, { dtype: t.dataType as DataType, shape: dimsOf(t) });
  for (const v of inputs) info.set(v.name, { dtype: valueInfoShape(v).dtype, shape: [...(opts.feeds[v.name]?.dims ?? [])] });
  const loss = info.get(opts.loss);
  if (!loss || loss.shape.length !== 0) throw new Error(`buildGradientOf: ${opts.loss} must be a scalar tensor of the graph`);
  const g = new GraphBuilder();
  g.reserve([...info.keys(), ...nodes.map((n) => n.name), ...opts.wrt.map((w) => `grad.${w}`)]);
  g.nodes.push(...nodes);
  g.inputs.push(...inputs);
  const c = new GradContext(g, opset, info, initializers);
  const grads = backward(nodes, new Map([[opts.loss, g.scalar(1, loss.dtype)]]), opts.wrt, c);
  g.output(opts.loss, loss.dtype, []);
  for (const w of opts.wrt) {
    const d = grads.get(w);
    if (!d) throw new Error(`buildGradientOf: ${opts.loss} does not depend on ${w}`);
    g.op('Identity', [d], {}, { outputs: [`grad.${w}`] });
    g.output(`grad.${w}`, info.get(w)!.dtype, info.get(w)!.shape);
  }
  return finish(model, g, initializers, opset);
}
