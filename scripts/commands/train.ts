// `collapse train`: fine-tune a model directory on a block corpus (AdamW/SGD on ONNX Runtime), resumable.
import type { Argv, CommandModule } from 'yargs';
import { providerFromEnv, type Provider } from '../../models/session.js';
import { finetune } from '../../pipeline/train/finetune.js';
import { optimizerOptions, type OptimizerArgs } from '../optimizer-flags.js';
import { TRAIN_DEFAULTS as d } from '../../pipeline/train/options.js';

interface TrainArgs extends OptimizerArgs {
  model: string;
  artifact?: string;
  train: string;
  valid?: string;
  out: string;
  epochs: number;
  'batch-size': number;
  'micro-batch-size': number;
  lr: number;
  schedule: 'linear' | 'cosine' | 'constant' | 'cosine-epoch';
  'warmup-steps': number;
  'min-lr': number;
  'max-grad-norm': number;
  seed: number;
  'checkpoint-every': number;
  'fused-step': boolean;
  threads?: number;
  provider?: Provider;
}

const train: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Fine-tune a model on a block corpus (AdamW or SGD on ONNX Runtime); keeps the best epoch; resumable',
  builder: (y: Argv) =>
    optimizerOptions(
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
        .option('model', { type: 'string', demandOption: true, describe: 'Model directory to fine-tune (OPT dir or any dir with onnx/model.onnx)' })
        .option('artifact', { type: 'string', describe: 'Training artifact from `collapse artifact build` (default: build/reuse a cached one)' })
        .option('train', { type: 'string', demandOption: true, describe: 'Training corpus directory (collapse prepare / generate)' })
        .option('valid', { type: 'string', describe: 'Validation corpus directory (default: none; the training loss then picks the best epoch)' })
        .option('out', { type: 'string', demandOption: true, describe: 'Output model directory (written when training ends)' })
        .option('epochs', { type: 'number', default: d.epochs, describe: 'Passes over the training corpus (the paper: 5)' })
        .option('batch-size', { type: 'number', default: d.batchSize, describe: 'Blocks per optimizer step (the paper: 128)' })
        .option('micro-batch-size', { type: 'number', default: d.microBatchSize, describe: 'Blocks per forward/backward pass; divides --batch-size (memory vs speed)' })
        .option('lr', { type: 'number', default: d.lr, describe: 'Peak learning rate (the paper: 2e-5)' })
        .option('schedule', { choices: ['linear', 'cosine', 'constant', 'cosine-epoch'] as const, default: d.schedule, describe: 'LR schedule: per step as the HF Trainer (default linear decay), or cosine-epoch: CosineAnnealingLR(T_max=epochs, eta_min=--min-lr) stepped once per epoch (the paper\'s code)' })
        .option('min-lr', { type: 'number', default: d.minLr, describe: 'cosine-epoch: the floor eta_min (the paper\'s code: 1e-6)' })
        .option('warmup-steps', { type: 'number', default: d.warmupSteps, describe: 'Linear warmup steps' })
        .option('max-grad-norm', { type: 'number', default: d.maxGradNorm ?? 0, describe: 'Clip gradients to this global norm (0 = off; the default is the HF Trainer\'s and the run config\'s train.clipNorm)' })
        .option('seed', { type: 'number', default: d.seed, describe: 'Seed of the data order' })
        .option('checkpoint-every', { type: 'number', default: d.checkpointEvery, describe: 'Checkpoint every N optimizer steps (0 = only at epoch ends)' })
        .option('fused-step', { type: 'boolean', default: d.fusedStep, describe: 'When --batch-size = --micro-batch-size, one graph computes gradients and update; it returns new weights and moments as copies, so it is slower than the default in-place step and peaks at ~2x the state (figures: docs/performance.md, "Where the training state lives")' })
        .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
        .option('provider', { choices: ['cpu', 'cuda'] as const, describe: 'Execution provider (default: COLLAPSE_PROVIDER or cpu)' }),
    ) as never,
  handler: async (a) => {
    const res = await finetune({
      model: a.model, artifact: a.artifact, train: a.train, valid: a.valid ?? null, out: a.out,
      epochs: a.epochs, batchSize: a['batch-size'], microBatchSize: a['micro-batch-size'], lr: a.lr,
      optimizer: a.optimizer, weightDecay: a['weight-decay'], beta1: a['adam-beta1'], beta2: a['adam-beta2'], eps: a['adam-epsilon'],
      decayExclude: a['decay-exclude'], dropout: a.dropout, attentionDropout: a['attention-dropout'], minLr: a['min-lr'],
      schedule: a.schedule, warmupSteps: a['warmup-steps'], maxGradNorm: a['max-grad-norm'] > 0 ? a['max-grad-norm'] : null,
      seed: a.seed, checkpointEvery: a['checkpoint-every'], fusedStep: a['fused-step'], threads: a.threads, provider: a.provider ?? providerFromEnv(),
    });
    process.stdout.write(
      `train: ${res.steps} steps; validation losses ${res.validLosses.map((x) => x.toFixed(4)).join(', ')}; ` +
        `best epoch ${res.bestEpoch + 1}; model: ${res.outDir}\n`,
    );
  },
};

export default train;
