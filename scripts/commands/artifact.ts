// `collapse artifact build|show`: the training artifact (train-step graphs, eval graph, initial weights, manifest).
import type { Argv, CommandModule } from 'yargs';
import { loadTrainingSource } from '../../models/model-dir/index.js';
import { buildArtifact, loadArtifact } from '../../models/train/artifact.js';
import { BLOCK_OPTIONS } from '../../datasets/blocks.js';
import { artifactOptimizer } from '../../pipeline/train/finetune.js';
import { resolveTrainOptions, TRAIN_OPTIONS } from '../../pipeline/train/options.js';
import { optionArgs, optionFlags } from '../flags.js';
import { pickOptions } from '../../util/options.js';

/** The training options an artifact is built with (its optimizer graph and dropout sites). */
const artifactOptionDecls = pickOptions(TRAIN_OPTIONS, ['optimizer', 'weightDecay', 'decayExclude', 'dropout', 'attentionDropout', 'beta1', 'beta2', 'eps']);

interface BuildArgs {
  model: string;
  microBatchSize: number;
  blockSize: number;
  trainable?: string[];
  out: string;
}

const build: CommandModule<object, BuildArgs> = {
  command: 'build',
  describe: 'Build the training graphs of a model for fixed micro-batch and block shapes',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 artifact build --model DIR --micro-batch-size B --block-size 64 --out ART [options]\n\n' +
          'Writes ART/grad.onnx (loss and gradients of one micro-batch), ART/update.onnx (the optimizer step),\n' +
          'ART/step.onnx (both fused, used when micro-batch = batch), ART/eval.onnx (per-token NLL), the initial\n' +
          'weights and manifest.json (shapes, trainable tensors, optimizer settings, sha256 of the source model).\n' +
          'The weights are graph inputs, so the artifact serves any model of the same structure.',
      )
      .option('model', { type: 'string', demandOption: true, describe: 'Model directory (OPT dir or any dir with onnx/model.onnx)' })
      .option('micro-batch-size', { type: 'number', demandOption: true, describe: TRAIN_OPTIONS.microBatchSize.help })
      .option('block-size', { type: 'number', default: BLOCK_OPTIONS.blockSize.schema.parse(undefined), describe: BLOCK_OPTIONS.blockSize.help })
      .option('trainable', { type: 'string', array: true, describe: 'Initializers to train (default: every float weight)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Artifact directory to write' })
      .options(optionFlags(artifactOptionDecls)) as never,
  handler: async (a) => {
    const log = (s: string): void => void process.stderr.write(`${s}\n`);
    const h = resolveTrainOptions(optionArgs(a, artifactOptionDecls));
    const m = await buildArtifact(
      loadTrainingSource(a.model),
      {
        microBatch: a.microBatchSize, blockSize: a.blockSize, trainable: a.trainable,
        optimizer: artifactOptimizer(h),
        dropout: { hidden: h.dropout, attention: h.attentionDropout },
      },
      a.out,
      log,
    );
    const n = m.params.reduce((s, p) => s + p.shape.reduce((x, y) => x * y, 1), 0);
    process.stdout.write(`artifact: ${m.params.length} trainable tensors (${n} values), key ${m.key}: ${a.out}\n`);
  },
};

const show: CommandModule<object, { artifact: string }> = {
  command: 'show <artifact>',
  describe: 'Print the manifest of a training artifact',
  builder: (y: Argv) => y.positional('artifact', { type: 'string', demandOption: true, describe: 'Artifact directory' }) as never,
  handler: (a) => {
    const { manifest: m } = loadArtifact(a.artifact);
    process.stdout.write(`${JSON.stringify({ ...m, params: `${m.params.length} tensors` }, null, 2)}\n`);
  },
};

const artifact: CommandModule = {
  command: 'artifact <command>',
  describe: 'Training artifacts: build the train-step and eval graphs once, reuse them',
  builder: (y: Argv) => y.command(build).command(show).demandCommand(1, 'Name a subcommand: build or show'),
  handler: () => {},
};

export default artifact;
