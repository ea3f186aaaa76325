// Checks a finished run of the embedded default against the seven acceptance criteria of a miniature of
// the paper's figure 1 (issue 12), from runs/NAME/report/metrics.json (and run.json, estimate.json for the
// time), and prints a table of the measured values.
//   npx tsx scripts/check-default.ts [runs/tiny]      exit status 1 when a criterion fails
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GenerationMetricsSchema, type GenerationMetrics } from '../pipeline/eval/metrics-schema.js';
import { describeError } from './cli.js';

export interface Criterion { id: number; name: string; value: string; pass: boolean }

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

/** Spearman's rank correlation (ties get their mean rank). */
export function spearman(x: number[], y: number[]): number {
  const rank = (v: number[]) => {
    const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
      for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (rx[i]! - mx) * (ry[i]! - my);
    sxx += (rx[i]! - mx) ** 2;
    syy += (ry[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

export function checkDefault(records: GenerationMetrics[], time?: { seconds: number; estimate: number }): Criterion[] {
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
  const rho = spearman(gens(R), gens(R).map((g) => test(R, g)));
  const f = (v: number, d = 2) => v.toFixed(d);
  const out: Criterion[] = [
    { id: 1, name: 'learns the task: gen-0 / zero-shot test ppl <= 0.8 (replace)', value: `${f(test(R, 0), 1)} / ${f(base, 1)} = ${f(test(R, 0) / base)}`, pass: test(R, 0) <= 0.8 * base },
    { id: 2, name: 'no one-step blow-up: gen-1 / gen-0 <= 1.5 (replace)', value: f(test(R, 1) / test(R, 0)), pass: test(R, 1) / test(R, 0) <= 1.5 },
    { id: 3, name: 'gradual rise: last / gen-0 >= 1.1 and Spearman >= 0.7 (replace)', value: `${f(ratio(R, last))}, rho ${f(rho)}`, pass: ratio(R, last) >= 1.1 && rho >= 0.7 },
    {
      id: 4, name: 'non-degenerate data: gen-0 rep-2 <= 50%',
      value: `${f(at(R, 0, (r) => r.rep2), 1)}% / ${f(at(K, 0, (r) => r.rep2), 1)}% (distinct-2 ${f(at(R, 0, (r) => r.distinct2), 3)})`,
      pass: at(R, 0, (r) => r.rep2) <= 50 && at(K, 0, (r) => r.rep2) <= 50,
    },
  ];
  const p50 = (s: string, g: number) => at(s, g, (r) => r.per_sample_ppl_quantiles.p50);
  const above = (s: string, g: number) => at(s, g, (r) => r.tail_mass_vs_gen0?.above_p99);
  out.push({
    id: 5, name: 'histogram shift: last median < gen-0 median and >= 2% above gen-0 p99 (replace)',
    value: `median ${f(p50(R, 0))} -> ${f(p50(R, last))}, above p99 ${f(100 * above(R, last), 1)}% (keep-original: ${f(p50(K, 0))} -> ${f(p50(K, lastK))}, ${f(100 * above(K, lastK), 1)}%)`,
    pass: p50(R, last) < p50(R, 0) && above(R, last) >= 0.02,
  });
  out.push({
    id: 6, name: 'original data damps collapse: keep-original last/gen-0 < replace',
    value: `${f(ratio(K, lastK), 3)} < ${f(ratio(R, last), 3)}`, pass: ratio(K, lastK) < ratio(R, last),
  });
  if (time)
    out.push({
      id: 7, name: 'within 10 minutes; estimate within 2x of the actual time',
      value: `${f(time.seconds, 0)} s, estimate ${f(time.estimate, 0)} s (x${f(time.estimate / time.seconds)})`,
      pass: time.seconds <= 600 && time.estimate <= 2 * time.seconds && time.seconds <= 2 * time.estimate,
    });
  return out;
}

function main(): void {
  const root = process.argv[2] ?? join('runs', 'tiny');
  const file = join(root, 'report', 'metrics.json');
  if (!existsSync(file)) throw new Error(`${file} not found: run \`npx collapse run\` first (or pass the run directory)`);
  const records = (JSON.parse(readFileSync(file, 'utf8')) as unknown[]).map((r) => GenerationMetricsSchema.parse(r));
  let time: { seconds: number; estimate: number } | undefined;
  const est = join(root, 'estimate.json');
  const manifest = join(root, 'run.json');
  if (existsSync(est) && existsSync(manifest)) {
    const started = Date.parse((JSON.parse(readFileSync(manifest, 'utf8')) as { createdAt: string }).createdAt);
    time = { seconds: (statSync(file).mtimeMs - started) / 1000, estimate: (JSON.parse(readFileSync(est, 'utf8')) as { totalSeconds: number }).totalSeconds };
  }
  const rows = checkDefault(records, time);
  for (const c of rows) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'}  ${c.id}. ${c.name}: ${c.value}\n`);
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
