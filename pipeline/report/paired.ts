// Settings compared over seeds: every pair's mean difference in last-generation real test perplexity, with its
// 95% t-interval. A seed's settings share the base, the data and the seeded choices, so the differences are
// paired by seed (the interval is that of the mean of the per-seed differences, t with n-1 degrees of freedom).
import { tInterval, type MeanInterval } from '../../util/stats.js';
import type { GenerationMetrics } from '../eval/metrics-schema.js';

export interface PairedDifference extends MeanInterval {
  /** The difference is a - b (positive: a is worse). */
  a: string;
  b: string;
  generation: number;
  /** The seeds with both settings evaluated at that generation. */
  seeds: number[];
}

/**
 * For each pair of settings (in the order given, a before b): at the last generation both settings reached for
 * some seed, the mean over the shared seeds of test_perplexity(a) - test_perplexity(b) and its 95% t-interval.
 */
export function pairedDifferences(metrics: readonly GenerationMetrics[], settings: readonly string[]): PairedDifference[] {
  const ppl = new Map<string, number>();
  for (const m of metrics) if (Number.isFinite(m.test_perplexity)) ppl.set(`${m.setting}/${m.seed}/${m.generation}`, m.test_perplexity);
  const seeds = [...new Set(metrics.map((m) => m.seed))].sort((x, y) => x - y);
  const out: PairedDifference[] = [];
  for (let i = 0; i < settings.length; i++)
    for (let j = i + 1; j < settings.length; j++) {
      const a = settings[i]!;
      const b = settings[j]!;
      const both = (g: number) => seeds.filter((s) => ppl.has(`${a}/${s}/${g}`) && ppl.has(`${b}/${s}/${g}`));
      const gens = [...new Set(metrics.map((m) => m.generation))].filter((g) => both(g).length > 0);
      if (!gens.length) continue;
      const generation = Math.max(...gens);
      const shared = both(generation);
      const diffs = shared.map((s) => ppl.get(`${a}/${s}/${generation}`)! - ppl.get(`${b}/${s}/${generation}`)!);
      out.push({ a, b, generation, seeds: shared, ...tInterval(diffs) });
    }
  return out;
}
