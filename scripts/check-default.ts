// Checks a finished run of the embedded default against the criteria of a miniature of the paper's figure 1
// at the paper's strength (C1-C8 of issue 23), as means over the run's seeds, from runs/NAME/report/metrics.json
// (and run.json, estimate.json for the time), and prints the test-perplexity table and the measured values.
//   npx tsx scripts/check-default.ts [runs/tiny] [--install-seconds S]    exit status 1 when a criterion fails
import { existsSync, readFileSync, statSync } from 'node:fs';
import { GenerationMetricsSchema, type GenerationMetrics } from '../pipeline/eval/metrics-schema.js';
import { spread } from '../pipeline/report/figures.js';
import { reportFiles } from '../pipeline/report/report-files.js';
import { RunLayout } from '../pipeline/run/layout.js';
import { describeError } from './cli.js';
import { spearman } from '../util/stats.js';

export interface Criterion { id: number; name: string; value: string; pass: boolean }

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

/** Wall time of the run (and of the install before it, when given) against its printed estimate. */
export interface RunTime { seconds: number; estimate: number; installSeconds?: number }

export function checkDefault(records: GenerationMetrics[], time?: RunTime): Criterion[] {
  const of = (setting: string) => records.filter((r) => r.setting === setting);
  const gens = (setting: string) => [...new Set(of(setting).map((r) => r.generation))].sort((a, b) => a - b);
  /** Mean over seeds of a field at one generation of a setting. */
  const at = (setting: string, gen: number, f: (r: GenerationMetrics) => number | null | undefined): number =>
    mean(of(setting).filter((r) => r.generation === gen).map(f).filter((v): v is number => typeof v === 'number'));
  const test = (s: string, g: number) => at(s, g, (r) => r.test_perplexity);
  const R = 'replace';
  const K = 'keep-original';
  const last = Math.max(...gens(R));
  const lastK = Math.max(...gens(K));
  const base = at(R, 0, (r) => r.base_test_perplexity);
  const ratio = (s: string, l: number) => test(s, l) / test(s, 0);
  const rho = spearman(gens(R), gens(R).map((g) => test(R, g))) ?? Number.NaN;
  const f = (v: number, d = 2) => v.toFixed(d);
  const seeds = new Set(records.map((r) => r.seed)).size;
  const riseR = ratio(R, last) - 1;
  const riseK = ratio(K, lastK) - 1;
  const worst = (s: string) => Math.max(...gens(s).map((g) => test(s, g)));
  const p50 = (s: string, g: number) => at(s, g, (r) => r.per_sample_ppl_quantiles.p50);
  const above = (s: string, g: number) => at(s, g, (r) => r.tail_mass_vs_gen0?.above_p99);
  /** Prompt by prompt against generation 0's continuation (records from before the paired shift lack it). */
  const paired = (g: number): string => {
    const share = (k: 'unchanged' | 'more_probable' | 'less_probable') => at(R, g, (r) => r.paired_vs_gen0?.[k]);
    if (Number.isNaN(share('unchanged'))) return '';
    return `; paired with gen 0's continuation of each prompt: ${f(100 * share('unchanged'), 0)}% unchanged, ${f(100 * share('more_probable'), 0)}% more and ${f(100 * share('less_probable'), 0)}% less probable`;
  };
  const out: Criterion[] = [
    { id: 0, name: 'at least three seeds (the paper: five)', value: String(seeds), pass: seeds >= 3 },
    {
      id: 1, name: 'the task is learned: gen-0 / zero-shot test ppl <= 0.4 (replace; the paper: 34 / 115 = 0.30)',
      value: `${f(test(R, 0), 1)} / ${f(base, 1)} = ${f(test(R, 0) / base)} (keep-original ${f(test(K, 0) / base)})`,
      pass: test(R, 0) <= 0.4 * base,
    },
    { id: 2, name: 'no one-step blow-up: gen-1 / gen-0 <= 1.4 (replace)', value: f(test(R, 1) / test(R, 0)), pass: test(R, 1) / test(R, 0) <= 1.4 },
    {
      id: 3, name: 'a gradual rise: last / gen-0 in [1.3, 2.2] and Spearman(generation, ppl) >= 0.8 (replace)',
      value: `${f(ratio(R, last))}, rho ${f(rho)}`, pass: ratio(R, last) >= 1.3 && ratio(R, last) <= 2.2 && rho >= 0.8,
    },
    {
      id: 4, name: "10% original data nearly stops it: keep-original's rise <= half of replace's",
      value: `${f(riseK, 3)} vs ${f(riseR, 3)} (x${f(riseK / riseR)})`, pass: riseR > 0 && riseK <= 0.5 * riseR,
    },
    {
      id: 5, name: 'collapse does not undo the task: every generation of both settings below the zero-shot base',
      value: `worst ${f(worst(R), 1)} (replace), ${f(worst(K), 1)} (keep-original) < ${f(base, 1)}`,
      pass: worst(R) < base && worst(K) < base,
    },
    {
      id: 6, name: 'histogram shift: last median < gen-0 median and >= 2% above gen-0 p99 (replace)',
      value:
        `median ${f(p50(R, 0))} -> ${f(p50(R, last))}, above p99 ${f(100 * above(R, last), 1)}% (keep-original: ${f(p50(K, 0))} -> ${f(p50(K, lastK))}, ${f(100 * above(K, lastK), 1)}%)` +
        paired(last),
      pass: p50(R, last) < p50(R, 0) && above(R, last) >= 0.02,
    },
    {
      id: 7, name: 'non-degenerate data: gen-0 rep-2 <= 50% in both settings',
      value: `${f(at(R, 0, (r) => r.rep2), 1)}% / ${f(at(K, 0, (r) => r.rep2), 1)}% (distinct-2 ${f(at(R, 0, (r) => r.distinct2), 3)})`,
      pass: at(R, 0, (r) => r.rep2) <= 50 && at(K, 0, (r) => r.rep2) <= 50,
    },
  ];
  if (time) {
    const total = time.seconds + (time.installSeconds ?? 0);
    out.push({
      id: 8, name: `cost: <= 10 minutes wall${time.installSeconds === undefined ? ' (run only: pass --install-seconds S to add npm ci)' : ', npm ci included'}; estimate within 2x`,
      value: `${f(total, 0)} s${time.installSeconds === undefined ? '' : ` (npm ci ${f(time.installSeconds, 0)} s)`}, estimate ${f(time.estimate, 0)} s of ${f(time.seconds, 0)} s (x${f(time.estimate / time.seconds)})`,
      pass: total <= 600 && time.estimate <= 2 * time.seconds && time.seconds <= 2 * time.estimate,
    });
  }
  return out;
}

/** Per generation, each setting's test perplexity: mean and sd over seeds (the table the README quotes). */
export function perplexityTable(records: GenerationMetrics[]): string {
  const settings = [...new Set(records.map((r) => r.setting))];
  const gens = [...new Set(records.map((r) => r.generation))].sort((a, b) => a - b);
  const cell = (s: string, g: number) => {
    const r = spread(records.filter((x) => x.setting === s && x.generation === g).map((x) => x.test_perplexity));
    return `${r.mean.toFixed(1)} ± ${r.std.toFixed(1)}`.padStart(14);
  };
  const lines = [`gen ${settings.map((s) => s.padStart(14)).join(' ')}`];
  for (const g of gens) lines.push(`${String(g).padStart(3)} ${settings.map((s) => cell(s, g)).join(' ')}`);
  return lines.join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const flag = args.indexOf('--install-seconds');
  const installSeconds = flag >= 0 ? Number(args[flag + 1]) : undefined;
  if (installSeconds !== undefined && !(installSeconds >= 0)) throw new Error(`--install-seconds ${args[flag + 1]}: give the seconds npm ci took, e.g. --install-seconds 16`);
  const root = args.filter((_, i) => flag < 0 || (i !== flag && i !== flag + 1))[0] ?? RunLayout.rootOf('runs', 'tiny');
  // Only files at the run's root: no setting needs to be known.
  const layout = new RunLayout(root);
  const file = reportFiles(layout.reportDir).metrics;
  if (!existsSync(file)) throw new Error(`${file} not found: run \`npx collapse run\` first (or pass the run directory)`);
  const records = (JSON.parse(readFileSync(file, 'utf8')) as unknown[]).map((r) => GenerationMetricsSchema.parse(r));
  let time: RunTime | undefined;
  const est = layout.estimate;
  const manifest = layout.manifest;
  if (existsSync(est) && existsSync(manifest)) {
    const started = Date.parse((JSON.parse(readFileSync(manifest, 'utf8')) as { createdAt: string }).createdAt);
    time = { seconds: (statSync(file).mtimeMs - started) / 1000, estimate: (JSON.parse(readFileSync(est, 'utf8')) as { totalSeconds: number }).totalSeconds, installSeconds };
  }
  process.stdout.write(`real test perplexity, mean ± sd over seeds:\n${perplexityTable(records)}\n\n`);
  const rows = checkDefault(records, time);
  for (const c of rows) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'}  C${c.id}. ${c.name}: ${c.value}\n`);
  if (rows.some((c) => !c.pass)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    main();
  } catch (e) {
    // A user's mistake (no run yet, a wrong directory) gets the CLI's one error path: its message, not a stack.
    process.stderr.write(describeError(e));
    process.exitCode = 1;
  }
}
