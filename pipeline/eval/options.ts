// The scoring and text-measure options of an evaluation, each declared once (util/options.ts): the evaluation
// functions take their defaults from them, the run config's `eval` section holds selfBleuSamples, and
// `collapse eval` takes them as flags of the same names.
import { z } from 'zod';
import { fieldsOf, option } from '../../util/options.js';

const int = (min = 0) => z.number().int().min(min);

export const EVAL_OPTIONS = {
  selfBleuSamples: option(int().default(100), 'Samples in the seeded self-BLEU subsample'),
  seed: option(int().default(0), 'Seed of the self-BLEU subsample', { inRunConfig: false }),
  batchSize: option(int(1).default(8), 'Blocks per forward pass', { inRunConfig: false }),
  padId: option(int().optional(), "Trailing tokens with this id (rows that ended early) are not scored (default: the model's pad_token_id, else its EOS)", { inRunConfig: false }),
};

/** Every option at its default. */
export const EVAL_DEFAULTS = z.object(fieldsOf(EVAL_OPTIONS)).parse({});
