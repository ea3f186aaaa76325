// `collapse model init|import|info`: create and import OPT model directories; inspect any model directory.
import { existsSync, statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { loadTokenizer, tinyTokenizerFiles, TINY_VOCAB_SIZE } from '../../datasets/tokenizer.js';
import { checkTokenizerFits, checkWritable } from '../../pipeline/preflight.js';
import {
  FAMILY_BOS,
  importHfCheckpoint,
  interfaceLines,
  openModelDir,
  stagePlan,
  tokenizerFilesFrom,
  writeModelDir,
  type FileContents,
} from '../../models/model-dir/index.js';
import { optPresets, readOptConfig, type OptConfig } from '../../models/opt/config.js';
import { initOptWeights, optParamCount } from '../../models/opt/weights.js';
import { guardOutputDir, MODEL_DIR_GUARD } from '../../util/output-guard.js';

const PRESETS = optPresets(TINY_VOCAB_SIZE);

interface InitArgs {
  config: string;
  seed: number;
  out: string;
  tokenizer?: string;
  force?: boolean;
}

/** The config a --config value names: a preset or a config.json file. */
export function configFromFlag(value: string): OptConfig {
  const preset = PRESETS[value];
  if (preset) return preset;
  if (!existsSync(value))
    throw new Error(`--config ${value}: neither a preset (${Object.keys(PRESETS).join(', ')}) nor an existing config.json file`);
  return readOptConfig(value);
}

/** Creates a model directory with freshly initialised weights (what `model init` does). */
export function initModelDir(args: InitArgs, log: (msg: string) => void = () => {}): { config: OptConfig; params: number } {
  guardOutputDir(args.out, { ...MODEL_DIR_GUARD, flag: '--out', force: args.force, inputs: args.tokenizer ? [{ flag: '--tokenizer', path: args.tokenizer }] : [] });
  checkWritable(args.out, '--out');
  const config = configFromFlag(args.config);
  let tokenizerFiles: FileContents;
  if (args.tokenizer) {
    checkTokenizerFits({ dir: args.tokenizer, vocabSize: loadTokenizer(args.tokenizer).vocabSize }, { model: `--config ${args.config}`, vocabSize: config.vocab_size });
    tokenizerFiles = tokenizerFilesFrom(args.tokenizer);
  }
  else if (args.config === 'tiny') tokenizerFiles = tinyTokenizerFiles();
  else
    throw new Error(
      `--config ${args.config} needs --tokenizer DIR (a directory with tokenizer.json, or vocab.json + merges.txt, ` +
        'e.g. a copy of facebook/opt-125m); only the tiny preset brings its own tokenizer',
    );
  log(`initialising ${(optParamCount(config) / 1e6).toFixed(1)}M parameters (seed ${args.seed})`);
  const weights = initOptWeights(config, args.seed);
  log(`writing ${args.out} (ONNX graph + model.safetensors)`);
  writeModelDir(args.out, { config, weights, tokenizerFiles });
  return { config, params: optParamCount(config) };
}


const mb = (path: string | null): string => (path ? `${(statSync(path).size / 2 ** 20).toFixed(1)} MiB` : '-');

const init: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'Create a model directory (HF hub layout + ONNX) with randomly initialised OPT weights',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', default: 'tiny', describe: `Preset (${Object.keys(PRESETS).join(', ')}) or a HF OPT config.json` })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the weight initialisation' })
      .option('out', { type: 'string', demandOption: true, describe: 'Directory to write (a model directory there is replaced; anything else needs --force)' })
      .option('force', { type: 'boolean', default: false, describe: 'Replace --out even if it holds files that are not a model directory' })
      .option('tokenizer', { type: 'string', describe: 'Directory to copy tokenizer files from (required unless --config tiny)' }) as never,
  handler: async (args) => {
    const { config, params } = initModelDir(args, (m) => process.stderr.write(`${m}\n`));
    process.stdout.write(
      `wrote ${args.out}: OPT ${config.num_hidden_layers} layers x ${config.hidden_size}, vocab ${config.vocab_size}, ` +
        `${(params / 1e6).toFixed(2)}M parameters (seed ${args.seed})\n`,
    );
  },
};

interface ImportArgs {
  hfDir: string;
  out: string;
  force: boolean;
}

const importCmd: CommandModule<object, ImportArgs> = {
  command: 'import <hf-dir>',
  describe: 'Import a Hugging Face OPT checkpoint (config.json + model.safetensors + tokenizer) as a model directory',
  builder: (y: Argv) =>
    y
      .positional('hf-dir', { type: 'string', demandOption: true, describe: 'Directory of the HF checkpoint (e.g. a download of facebook/opt-125m)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Model directory to write (a model directory there is replaced; anything else needs --force)' })
      .option('force', { type: 'boolean', default: false, describe: 'Replace --out even if it holds files that are not a model directory' }) as never,
  handler: async (args) => {
    guardOutputDir(args.out, { ...MODEL_DIR_GUARD, flag: '--out', force: args.force, inputs: [{ flag: 'HF-DIR', path: args.hfDir }] });
    checkWritable(args.out, '--out');
    const { config, ignored } = importHfCheckpoint(args.hfDir, args.out);
    process.stdout.write(
      `imported ${args.hfDir} -> ${args.out}: OPT ${config.num_hidden_layers} layers x ${config.hidden_size}, ` +
        `${(optParamCount(config) / 1e6).toFixed(2)}M parameters` +
        (ignored.length ? `; unused checkpoint tensors: ${ignored.join(', ')}` : '') +
        '\n',
    );
  },
};

interface InfoArgs {
  dir: string;
  json: boolean;
}

const info: CommandModule<object, InfoArgs> = {
  command: 'info <dir>',
  describe: 'Describe a model directory: family, graph interface (KV cache, GQA), what each stage uses, files',
  builder: (y: Argv) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'Model directory' })
      .option('json', { type: 'boolean', default: false, describe: 'Print as JSON' }) as never,
  handler: async (args) => {
    const md = openModelDir(args.dir);
    const c = md.config;
    const tok = loadTokenizer(md.tokenizerDir);
    checkTokenizerFits({ dir: md.tokenizerDir, vocabSize: tok.vocabSize }, { model: args.dir, vocabSize: c.vocabSize ?? undefined });
    const main = md.graphs[0]?.lm ?? null; // null: OPT safetensors only (the graph is rebuilt when needed)
    const kv = md.graphs.find((g) => g.lm.kv)?.lm.kv ?? null;
    const summary = {
      dir: md.dir,
      family: c.family,
      modelType: c.modelType || null,
      config: { layers: c.layers, hidden: c.hidden, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, vocab: c.vocabSize, positions: c.maxPositions },
      parameters: md.opt ? optParamCount(md.opt) : null,
      graphs: md.graphs.map((g) => ({ path: g.rel, producer: g.producer, size: mb(g.path), externalData: mb(existsSync(`${g.path}_data`) ? `${g.path}_data` : null), merged: g.hasIf })),
      interface: interfaceLines(md),
      inputs: main ? [main.inputIds, main.attentionMask, main.positionIds].filter((x) => x !== null).map((x) => `${x.name} [${x.shape.join(', ')}]`) : [],
      kvCache: kv ? { layers: kv.layers, kvHeads: kv.kvHeads, headDim: kv.headDim, groupedQuery: c.heads !== null && c.heads > kv.kvHeads } : null,
      generation: md.generation,
      tokenizer: { bosId: tok.bosId, prependsBos: tok.prependsBos, family: FAMILY_BOS[c.family], ...md.tokenizer },
      stages: stagePlan(md),
      safetensors: md.safetensorsPath ? `${md.safetensorsPath} (${mb(md.safetensorsPath)})` : 'none',
      // Training rebuilds the OPT graph from config + safetensors (dropout sites known); otherwise it trains the
      // ONNX graph as it is, whose dropout sites are unknown.
      trainingDropout: md.rebuildable
        ? 'sites known (OPT graph rebuilt for training): dropout after the attention output projection and fc2, attention dropout on the attention probabilities'
        : 'sites unknown (the ONNX graph is trained as it is, a foreign graph): trained without dropout',
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    const known = Object.entries(summary.config).filter(([, v]) => v !== null);
    const g = md.generation;
    const lines = [
      `model directory ${summary.dir}`,
      `  family: ${c.family}${c.modelType ? ` (model_type ${c.modelType})` : ' (no model_type)'}; ${known.map(([k, v]) => `${k} ${v}`).join(', ')}`,
      ...(summary.parameters ? [`  parameters: ${summary.parameters.toLocaleString('en-US')}`] : []),
      ...summary.graphs.map((x) => `  onnx: ${x.path} (${x.size}, external data ${x.externalData}, producer ${x.producer || '?'}${x.merged ? ', merged decoder' : ''})`),
      ...summary.interface.map((l) => `  interface: ${l}`),
      `  KV cache: ${kv ? `${kv.layers} layers x ${kv.kvHeads} KV heads x ${kv.headDim}${summary.kvCache!.groupedQuery ? ` (grouped-query attention: ${c.heads} query heads)` : ''}` : 'none'}`,
      `  special ids: eos ${g.eosIds.join('/')}, pad ${g.padId}${g.configPadId === null ? ' (no pad_token_id: EOS pads)' : ''}, bos ${g.bosId ?? '-'}`,
      `  tokenizer: ${tok.prependsBos ? `prepends BOS ${tok.bosId}` : 'adds no BOS'}${c.family === 'other' ? '' : ` (the ${c.family} family's own tokenizer ${FAMILY_BOS[c.family]})`}`,
      `  tokenizer fingerprint: ${md.tokenizer.fingerprint} (${md.tokenizer.source})`,
      ...(md.tokenizer.conflict ? [`  WARNING: ${md.tokenizer.conflict}`] : []),
      `  train with: ${summary.stages.train}`,
      `  generate with: ${summary.stages.generate}`,
      `  eval with: ${summary.stages.eval}`,
      `  safetensors: ${summary.safetensors}`,
      `  training dropout: ${summary.trainingDropout}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

const model: CommandModule = {
  command: 'model <command>',
  describe: 'Create and import OPT model directories; inspect any model directory (family, graph interface, what each stage uses)',
  builder: (y: Argv) =>
    y
      .command(init as unknown as CommandModule)
      .command(importCmd as unknown as CommandModule)
      .command(info as unknown as CommandModule)
      .demandCommand(1, 'Name a model command: init, import or info'),
  handler: () => {},
};

export default model;
