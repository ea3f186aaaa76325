// `collapse train`: fine-tune a model directory on a block corpus (AdamW/SGD on ONNX Runtime), resumable.
import type { Argv, CommandModule } from 'yargs';
import { providerFromEnv, type Provider } from '../../models/session.js';
import { finetune } from '../../pipeline/train/finetune.js';
import { TRAIN_OPTIONS } from '../../pipeline/train/options.js';
import { optionArgs, optionFlags } from '../flags.js';

interface TrainArgs {
  model: string;
  artifact?: string;
  train: string;
  valid?: string;
  out: string;
  threads?: number;
  provider?: Provider;
}

const train: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Fine-tune a model on a block corpus (AdamW or SGD on ONNX Runtime); keeps the best epoch; resumable',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 train --model DIR --train CORPUS --valid CORPUS --out DIR [options]\n\n' +
          'Shuffles the training blocks each epoch (seeded), accumulates gradients over --batch-size blocks in\n' +
          'micro-batches of --micro-batch-size, evaluates the validation loss (mean token NLL) after each epoch and\n' +
          'writes the best epoch as a model directory in the layout of --model (config, tokenizer, model.safetensors,\n' +
          'onnx/model.onnx). A checkpoint (OUT.ckpt/) is written every --checkpoint-every steps and at each epoch end;\n' +
          'rerunning the same command continues from it and ends with the same weights as an uninterrupted run.\n' +
          'The training graphs come from --artifact, or are built and cached (COLLAPSE_ARTIFACT_CACHE,\n' +
          'default $COLLAPSE_CACHE_DIR/artifacts, i.e. ~/.cache/model-collapse/artifacts) for this model structure and shapes.',
      )
      .options(optionFlags(TRAIN_OPTIONS))
      .option('model', { type: 'string', demandOption: true, describe: 'Model directory to fine-tune (OPT dir or any dir with onnx/model.onnx)' })
      .option('artifact', { type: 'string', describe: 'Training artifact from `collapse artifact build` (default: build/reuse a cached one)' })
      .option('train', { type: 'string', demandOption: true, describe: 'Training corpus directory (collapse prepare / generate)' })
      .option('valid', { type: 'string', describe: 'Validation corpus directory (default: none; the training loss then picks the best epoch)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output model directory (written when training ends)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('provider', { choices: ['cpu', 'cuda'] as const, describe: 'Execution provider (default: COLLAPSE_PROVIDER or cpu)' }) as never,
  handler: async (a) => {
    const res = await finetune({
      ...optionArgs(a, TRAIN_OPTIONS),
      model: a.model, artifact: a.artifact, train: a.train, valid: a.valid ?? null, out: a.out, threads: a.threads, provider: a.provider ?? providerFromEnv(),
    });
    process.stdout.write(
      `train: ${res.steps} steps; validation losses ${res.validLosses.map((x) => x.toFixed(4)).join(', ')}; ` +
        `best epoch ${res.bestEpoch + 1}; model: ${res.outDir}\n`,
    );
  },
};

export default train;
