// Where ONNX Runtime sessions run: the two settings every model-running command and the run config share,
// declared once (util/options.ts). Kept apart from session.ts so that reading a config does not load onnxruntime.
// One rule for each default:
// - threads 0 means all cores (onnxruntime's own choice), on the command line and in a run config alike. A count
//   above the machine's cores is refused where it is given (util/cores.ts), not by the schema: a config must
//   still read on a smaller machine.
// - provider: cpu, but the train, generate and eval commands default to COLLAPSE_PROVIDER when it is set (a
//   machine's setting); a run takes only its config's value, so that its record says where it ran.
import { z } from 'zod';
import { option } from '../util/options.js';

export const PROVIDERS = ['cpu', 'cuda'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const SESSION_OPTIONS = {
  threads: option(z.number().int().min(0).default(0), 'ONNX Runtime intra-op threads (0: all cores; at most the machine\'s cores)'),
  provider: option(z.enum(PROVIDERS).default('cpu'), 'Execution provider (commands other than run: default COLLAPSE_PROVIDER when set, else cpu)'),
};

/** The provider COLLAPSE_PROVIDER names (cpu when unset): the train, generate and eval commands' default. */
export function providerFromEnv(): Provider {
  const p = (process.env.COLLAPSE_PROVIDER ?? 'cpu').toLowerCase();
  if (!(PROVIDERS as readonly string[]).includes(p)) throw new Error(`COLLAPSE_PROVIDER=${p}: expected ${PROVIDERS.join(' or ')}`);
  return p as Provider;
}
