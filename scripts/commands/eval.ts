// `collapse eval`: per-sample perplexity and the diversity / tail measures of one corpus under one model.
import { checkModelFits, checkWritable, modelLimits } from '../../pipeline/preflight.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PREPARE_OPTIONS } from '../../datasets/prepare.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { pickOptions } from '../../util/options.js';
import { openModelDir } from '../../models/model-dir/index.js';
import { providerFromEnv, type Provider } from '../../models/session.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { loadEvalCorpus } from '../../pipeline/eval/corpus-input.js';
import { evaluateCorpus, realReference } from '../../pipeline/eval/evaluate.js';
import { EVAL_OPTIONS } from '../../pipeline/eval/options.js';
import { optionFlags } from '../flags.js';

interface EvalArgs {
  model: string;
  data: string;
  out?: string;
  'samples-out'?: string;
  reference?: string;
  synthetic: boolean;
  sourceSeed: number;
  selfBleuSamples: number;
  seed: number;
  batchSize: number;
  padId?: number;
  threads?: number;
  provider?: Provider;
}

/** The pad id of a model directory (its generation settings: pad_token_id, else EOS as HF pads), if it is one. */
function modelPadId(model: string): number | undefined {
  if (!existsSync(join(model, 'config.json'))) return undefined;
  return openModelDir(model).generation.padId;
}

const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Score a corpus with a model: per-sample perplexity, quantiles, rep-n, distinct-n, self-BLEU, tail mass',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 eval --model DIR --data CORPUS [--out FILE] [options]\n\n' +
          'Per-sample perplexity is exp(mean NLL of the next-token predictions inside one block: 63 for a 64-token block); ' +
          'perplexity is exp(mean NLL over all predictions of all blocks). Scoring is batched and forward only: the ' +
          "model's logits are reduced to NLLs inside ONNX Runtime (the scoring graph is kept in the cache directory).",
      )
      .option('model', { type: 'string', demandOption: true, describe: 'Model directory (or a forward .onnx file) that scores the data' })
      .option('data', { type: 'string', demandOption: true, describe: 'Corpus directory (Arrow shards + manifest.json) to score' })
      .option('out', { type: 'string', describe: 'Write the measures as JSON here (default: print only)' })
      .option('samples-out', { type: 'string', describe: 'Write the per-sample perplexities as a JSON array here' })
      .option('reference', { type: 'string', describe: "Corpus of real data: its per-sample perplexity percentiles under --model give the tail-mass thresholds" })
      .option('synthetic', { type: 'boolean', default: false, describe: "Also score the texts' exact log-likelihood under the project's synthetic source (complete sentences only)" })
      .option('threads', { type: 'number', describe: 'ONNX Runtime intra-op threads (default: all cores)' })
      .option('provider', { choices: ['cpu', 'cuda'] as const, describe: 'Execution provider (default: COLLAPSE_PROVIDER or cpu)' })
      .options(optionFlags({ ...EVAL_OPTIONS, ...pickOptions(PREPARE_OPTIONS, ['sourceSeed']) })) as never,
  handler: async (a) => {
    for (const [flag, p] of [['model', a.model], ['data', a.data], ['reference', a.reference]] as const)
      if (p !== undefined && !existsSync(p)) throw new Error(`--${flag} ${p} does not exist`);
    const scoring = { provider: a.provider ?? providerFromEnv(), threads: a.threads, batchSize: a.batchSize };
    const padId = a.padId ?? modelPadId(a.model);
    const corpus = loadEvalCorpus(a.data, { padId });
    const limits = modelLimits(a.model);
    const refCorpus = a.reference ? loadEvalCorpus(a.reference) : null;
    checkModelFits(limits, [
      { flag: '--data', path: a.data, stored: true, blockSize: corpus.blocks.blockSize, ids: corpus.blocks.ids },
      ...(a.reference && refCorpus ? [{ flag: '--reference', path: a.reference, stored: true, blockSize: refCorpus.blocks.blockSize, ids: refCorpus.blocks.ids }] : []),
    ]);
    if (a.out) checkWritable(a.out, '--out', { file: true });
    if (a['samples-out']) checkWritable(a['samples-out'], '--samples-out', { file: true });
    const reference = refCorpus ? await realReference(a.model, refCorpus.blocks, scoring) : null;
    const source = a.synthetic ? new SyntheticSource({ seed: a.sourceSeed }) : null;
    const { result, samplePpl } = await evaluateCorpus(a.model, corpus, {
      ...scoring,
      reference,
      trueLogProb: source ? (t) => source.logProb(t) : undefined,
      selfBleuSamples: a.selfBleuSamples,
      seed: a.seed,
    });
    if (a.out) writeJsonAtomic(a.out, result);
    if (a['samples-out']) writeJsonAtomic(a['samples-out'], Array.from(samplePpl));
    const q = result.per_sample_ppl_quantiles;
    const lines = [
      `samples            ${result.samples} x ${result.block_size} tokens${result.unscored_samples ? ` (${result.unscored_samples} with < 2 real tokens not scored)` : ''}`,
      `perplexity         ${result.perplexity.toFixed(3)} (mean NLL ${result.mean_nll.toFixed(4)})`,
      `per-sample ppl     mean ${result.per_sample_ppl_mean.toFixed(3)}; p10 ${q.p10?.toFixed(3)} p50 ${q.p50?.toFixed(3)} p90 ${q.p90?.toFixed(3)} p99 ${q.p99?.toFixed(3)}`,
      `rep-2/3/4 (%)      ${[result.rep2, result.rep3, result.rep4].map((v) => v.toFixed(2)).join(' / ')}`,
      `distinct-1/2/3     ${[result.distinct1, result.distinct2, result.distinct3].map((v) => v.toFixed(4)).join(' / ')}`,
      `self-BLEU-4        ${result.self_bleu === null ? 'n/a (fewer than 2 samples)' : result.self_bleu.toFixed(4)} (${result.self_bleu_samples} samples)`,
    ];
    if (result.tail_mass)
      lines.push(`tail mass          >p90 ${(result.tail_mass.above_p90 * 100).toFixed(1)}%  >p99 ${(result.tail_mass.above_p99 * 100).toFixed(1)}%  <p10 ${(result.tail_mass.below_p10 * 100).toFixed(1)}%`);
    if (result.true_loglik) lines.push(`true loglik        ${result.true_loglik.per_word?.toFixed(4) ?? 'n/a'} nats/word over ${result.true_loglik.sentences} sentences`);
    if (a.out) lines.push(`wrote              ${a.out}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

export default evalCommand;
