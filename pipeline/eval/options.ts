// The scoring and text-measure settings of an evaluation, each declared once (util/settings.ts): the evaluation
// functions take their defaults from them, the run config's `eval` section holds selfBleuSamples, and
// `collapse eval` takes them as flags of the same names.
import { z } from 'zod';
import { fieldsOf, setting } from '../../util/settings.js';

const int = (min = 0) => z.number().int().min(min);

export const evalSettings = {
  selfBleuSamples: setting(int().default(100), 'Samples in the seeded self-BLEU subsample'),
  seed: setting(int().default(0), 'Seed of the self-BLEU subsample', { inRunConfig: false }),
  batchSize: setting(int(1).default(8), 'Blocks per forward pass', { inRunConfig: false }),
  padId: setting(int().optional(), "Trailing tokens with this id (rows that ended early) are not scored (default: the model's pad_token_id, else its EOS)", { inRunConfig: false }),
};

/** Every setting at its default. */
export const EVAL_DEFAULTS = z.object(fieldsOf(evalSettings)).parse({});
