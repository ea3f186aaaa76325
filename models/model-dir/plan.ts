// What each stage uses: the graph generation, training and evaluation run on, and why.
import { describeInterface, type KvHints } from '../causal-lm.js';
import { onnx, type ModelProto } from '../onnx/proto.js';
import { buildOptForward } from '../opt/graph.js';
import { SAFETENSORS_FILE } from './files.js';
import type { GraphFile, ModelDir } from './open.js';
import { readWeights } from './write.js';

/** What decoding needs from a model: its causal-LM graph (file or in memory), special ids, a name. */
export interface GenerationPlan {
  graph: string | ModelProto;
  eosId: number;
  padId: number;
  kvHints?: KvHints;
  /** Recorded in the corpus provenance. */
  name?: string;
  /** How it decodes, in words (`model info`, logs). */
  how?: string;
  /** Positions and vocabulary of the model (config.json), checked against the prompts before decoding. */
  positions?: number;
  vocabSize?: number;
}

/**
 * The graph generation uses: one with a KV cache when the directory has it (Optimum names included);
 * else, for OPT with HF-named weights, the graph rebuilt with a cache; else the plain graph, decoded by
 * recomputing the whole sequence each step (correct, slower).
 */
function generationGraph(md: ModelDir): { graph: GraphFile | 'rebuild'; how: string } {
  const kv = md.graphs.find((g) => g.lm.kv);
  if (kv) return { graph: kv, how: `KV cache through ${kv.rel}` };
  if (md.rebuildable) return { graph: 'rebuild', how: `KV cache through the OPT graph rebuilt from ${SAFETENSORS_FILE}, each prompt's keys held once for its beams` };
  return { graph: md.graphs[0]!, how: `recomputation through ${md.graphs[0]!.rel} (it has no KV cache)` };
}

export function generationPlan(md: ModelDir): GenerationPlan {
  const { graph, how } = generationGraph(md);
  return {
    graph: graph === 'rebuild' ? buildOptForward(md.opt!, readWeights(md.dir), { withPast: true, sharedPrompt: true }) : graph.path,
    how,
    eosId: md.generation.eosId,
    padId: md.generation.padId,
    kvHints: { kvHeads: md.config.kvHeads ?? undefined, headDim: md.config.headDim ?? undefined },
    name: md.dir,
    positions: md.config.maxPositions ?? undefined,
    vocabSize: md.config.vocabSize ?? undefined,
  };
}

/** The graph training and scoring use: one without If nodes, no-past graphs first (pasts are fed empty). */
export function forwardGraph(md: ModelDir): GraphFile {
  const plain = md.graphs.filter((g) => !g.hasIf);
  const g = plain.find((x) => !x.lm.kv) ?? plain[0];
  if (md.graphs.length === 0) throw new Error(`${md.dir} has no ONNX graph (only ${SAFETENSORS_FILE}); write one with \`collapse model import\``);
  if (!g)
    throw new Error(
      `${md.dir}: its only graph${md.graphs.length > 1 ? 's' : ''} (${md.graphs.map((x) => x.rel).join(', ')}) hold If nodes ` +
        "(Optimum's merged decoder), which cannot be differentiated; add onnx/decoder_model.onnx or onnx/model.onnx " +
        '(optimum-cli export onnx --no-post-process keeps them)',
    );
  return g;
}

/** What each stage will use, in words (`collapse model info`). */
export function stagePlan(md: ModelDir): { train: string; generate: string; eval: string } {
  let train: string;
  let evalWith: string;
  if (md.rebuildable) train = `the OPT graph rebuilt from ${SAFETENSORS_FILE} (HF-named weights)`;
  try {
    const g = forwardGraph(md);
    const how = `${g.rel}${g.lm.kv ? ' with empty pasts' : ''}${g.lm.positionIds ? ', positions 0..T-1' : ''}`;
    train ??= how;
    evalWith = how;
  } catch (e) {
    evalWith = `refused: ${(e as Error).message}`;
    train ??= evalWith;
  }
  const generate = generationGraph(md).how;
  return { train, generate, eval: evalWith };
}

/** `describeInterface` of each graph file, for `model info`. */
export function interfaceLines(md: ModelDir): string[] {
  return md.graphs.map((g) => `${g.rel}: ${describeInterface(g.lm, md.config.heads ?? undefined)}`);
}
