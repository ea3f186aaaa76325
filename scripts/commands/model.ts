// `collapse model init|import|info`: create, import and inspect OPT model directories.
import { existsSync, statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { loadTokenizer, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { checkTokenizerFits, checkWritable } from '../../pipeline/preflight.js';
import { importHfCheckpoint, loadModelDir, tokenizerFilesFrom, writeModelDir, type FileContents } from '../../models/model-dir.js';
import { PRESETS, readOptConfig, type OptConfig } from '../../models/opt/config.js';
import { initOptWeights, optParamCount } from '../../models/opt/weights.js';
import { guardOutputDir, MODEL_DIR_GUARD } from '../../models/util/output-guard.js';

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

/** The first entries of a long list (the KV-cache inputs/outputs of every layer). */
const shortList = (xs: string[]): string => (xs.length > 4 ? `${xs.slice(0, 4).join('; ')}; ... (${xs.length} in all)` : xs.join('; '));

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
  describe: 'Describe a model directory: config, parameters, ONNX inputs/outputs, files',
  builder: (y: Argv) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'Model directory' })
      .option('json', { type: 'boolean', default: false, describe: 'Print as JSON' }) as never,
  handler: async (args) => {
    const md = loadModelDir(args.dir);
    const c = md.config;
    checkTokenizerFits({ dir: md.tokenizerDir, vocabSize: loadTokenizer(md.tokenizerDir).vocabSize }, { model: args.dir, vocabSize: c.vocab_size });
    const summary = {
      dir: md.dir,
      config: {
        layers: c.num_hidden_layers, hidden: c.hidden_size, heads: c.num_attention_heads, ffn: c.ffn_dim,
        vocab: c.vocab_size, positions: c.max_position_embeddings, activation: c.activation_function,
        preLayerNorm: c.do_layer_norm_before, tiedHead: c.tie_word_embeddings,
      },
      parameters: optParamCount(c),
      onnx: { path: md.onnxPath, producer: md.producer, size: mb(md.onnxPath), externalData: mb(md.onnxDataPath) },
      inputs: md.io.inputs.map((x) => `${x.name} [${x.shape.join(', ')}]`),
      outputs: md.io.outputs.map((x) => `${x.name} [${x.shape.join(', ')}]`),
      kvCache: md.io.hasPast ? `${md.io.pastLayers} layers` : 'none',
      safetensors: md.safetensorsPath ? `${md.safetensorsPath} (${mb(md.safetensorsPath)})` : 'none',
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    const lines = [
      `model directory ${summary.dir}`,
      `  OPT: ${Object.entries(summary.config).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  parameters: ${summary.parameters.toLocaleString('en-US')}`,
      `  onnx: ${summary.onnx.path} (${summary.onnx.size}, external data ${summary.onnx.externalData}, producer ${summary.onnx.producer || '?'})`,
      `  inputs: ${shortList(summary.inputs)}`,
      `  outputs: ${shortList(summary.outputs)}`,
      `  KV cache: ${summary.kvCache}`,
      `  safetensors: ${summary.safetensors}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

const model: CommandModule = {
  command: 'model <command>',
  describe: 'Create, import and inspect OPT model directories',
  builder: (y: Argv) =>
    y
      .command(init as unknown as CommandModule)
      .command(importCmd as unknown as CommandModule)
      .command(info as unknown as CommandModule)
      .demandCommand(1, 'Name a model command: init, import or info'),
  handler: () => {},
};

export default model;
