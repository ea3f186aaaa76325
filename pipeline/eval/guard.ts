// The degenerate-data guard: signs that a run's generation-0 data are not text of the source (a model
// stuck in a loop, every prompt continued alike) or that one generation blew the model up, so that nobody
// reads such a run as the paper's gradual collapse. The loop logs the warnings; the report shows them.
import type { GenerationMetrics } from './metrics-schema.js';

export const GUARD = {
  /** rep-2 (percent of repeated bigrams within a sample) of generation-0 data above this: loops. */
  maxRep2: 50,
  /** distinct-2 of generation-0 data below this: every prompt continued alike. */
  minDistinct2: 0.02,
  /** Generation-1 test perplexity above this multiple of generation 0's: a one-step blow-up. */
  maxGen1Ratio: 2,
} as const;

export interface GuardWarning {
  setting: string;
  seed: number;
  generation: number;
  message: string;
}

type Rec = Pick<GenerationMetrics, 'setting' | 'seed' | 'generation' | 'rep2' | 'distinct2' | 'test_perplexity'>;

export function degenerateDataWarnings(records: readonly Rec[]): GuardWarning[] {
  const out: GuardWarning[] = [];
  const at = (m: Rec) => `setting ${m.setting}, seed ${m.seed}`;
  for (const m of records) {
    if (m.generation !== 0) continue;
    const w = (message: string) => out.push({ setting: m.setting, seed: m.seed, generation: 0, message: `${at(m)}: ${message}` });
    if (m.rep2 > GUARD.maxRep2)
      w(`degenerate generation-0 data: rep-2 ${m.rep2.toFixed(1)}% > ${GUARD.maxRep2}% (the model repeats itself; the decoding or the model is the cause, not model collapse)`);
    if (m.distinct2 < GUARD.minDistinct2)
      w(`degenerate generation-0 data: distinct-2 ${m.distinct2.toFixed(3)} < ${GUARD.minDistinct2} (nearly every prompt gets the same continuation)`);
    const g1 = records.find((x) => x.setting === m.setting && x.seed === m.seed && x.generation === 1);
    if (g1 && g1.test_perplexity > GUARD.maxGen1Ratio * m.test_perplexity)
      out.push({
        setting: m.setting,
        seed: m.seed,
        generation: 1,
        message: `${at(m)}: generation-1 test perplexity ${g1.test_perplexity.toFixed(1)} is over ${GUARD.maxGen1Ratio}x generation 0's ${m.test_perplexity.toFixed(1)} (a one-step blow-up: fine-tuning overwrites the model instead of nudging it)`,
      });
  }
  return out;
}
