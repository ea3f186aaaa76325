// The self-contained report page: figures as inline SVG, the metrics table, and example continuations of the
// same prompt across generations (the paper's Example 1). No script, stylesheet, font or image is fetched.
import type { GenerationMetrics } from '../eval/metrics-schema.js';
import { parseStoredConfig, runSettings } from '../run/config.js';
import { spread } from './figures.js';
import { pairedDifferences, type PairedDifference } from './paired.js';
import type { RunData } from './run-data.js';

export interface HtmlFigure {
  id: string;
  title: string;
  caption: string;
  svg: string;
}

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const fmt = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : String(Number(v.toPrecision(4)));
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);

const COLUMNS: { head: string; title: string; cell: (m: GenerationMetrics) => string }[] = [
  { head: 'setting', title: 'experiment setting', cell: (m) => m.setting },
  { head: 'seed', title: 'experiment seed', cell: (m) => String(m.seed) },
  { head: 'gen', title: 'generation', cell: (m) => String(m.generation) },
  { head: 'test ppl', title: "perplexity of this generation's model on the real test blocks", cell: (m) => fmt(m.test_perplexity) },
  { head: 'valid loss', title: 'best real validation loss of the fine-tuning', cell: (m) => fmt(m.valid_loss) },
  { head: 'data ppl', title: "perplexity of this generation's data under the generation-0 model", cell: (m) => fmt(m.perplexity) },
  { head: 'p10 / p50 / p90', title: 'per-sample perplexity quantiles', cell: (m) => ['p10', 'p50', 'p90'].map((k) => fmt(m.per_sample_ppl_quantiles[k])).join(' / ') },
  { head: 'rep-2/3/4', title: 'percent repeated n-grams within a sample', cell: (m) => [m.rep2, m.rep3, m.rep4].map((v) => v.toFixed(1)).join(' / ') },
  { head: 'distinct-1/2/3', title: 'distinct n-grams / all n-grams', cell: (m) => [m.distinct1, m.distinct2, m.distinct3].map((v) => v.toFixed(3)).join(' / ') },
  { head: 'self-BLEU', title: 'mean BLEU-4 of a sample against the others', cell: (m) => fmt(m.self_bleu) },
  { head: '>p90 / >p99 / <p10', title: "shares beyond the real data's perplexity percentiles", cell: (m) => (m.tail_mass ? [m.tail_mass.above_p90, m.tail_mass.above_p99, m.tail_mass.below_p10].map(pct).join(' / ') : '–') },
  { head: '>gen-0 p99', title: "share of samples above the 99th percentile of generation 0's data", cell: (m) => pct(m.tail_mass_vs_gen0?.above_p99) },
  {
    head: 'vs gen-0: same / more / less',
    title: "prompt by prompt against generation 0's continuation, both scored by the generation-0 model: shares unchanged / more probable / less probable",
    cell: (m) => (m.paired_vs_gen0 ? [m.paired_vs_gen0.unchanged, m.paired_vs_gen0.more_probable, m.paired_vs_gen0.less_probable].map(pct).join(' / ') : '–'),
  },
  { head: 'true loglik / token (real)', title: 'exact log-likelihood of the continuations under the true source given their prompts, nats per token (the real continuations of the same prompts)', cell: (m) => (m.truth ? `${fmt(m.truth.per_token)} (${fmt(m.truth.real_per_token)})` : '–') },
  { head: 'true tail present', title: "share of the true tail's mass (rare words) present in the data", cell: (m) => pct(m.truth?.tail_seen) },
  { head: 'verifier rho / p*', title: "curated settings: Spearman's rho of the verifier against the truth over all candidates / share of prompts where it keeps the truth's best candidate", cell: (m) => (m.selection ? `${fmt(m.selection.rho)} / ${pct(m.selection.p_star)}` : '–') },
  { head: 'samples', title: 'samples scored', cell: (m) => String(m.samples) },
];

function metricsTable(metrics: GenerationMetrics[]): string {
  const sorted = [...metrics].sort((a, b) => a.setting.localeCompare(b.setting) || a.seed - b.seed || a.generation - b.generation);
  const head = COLUMNS.map((c) => `<th title="${escapeHtml(c.title)}">${escapeHtml(c.head)}</th>`).join('');
  const body = sorted.map((m) => `<tr>${COLUMNS.map((c) => `<td>${escapeHtml(c.cell(m))}</td>`).join('')}</tr>`).join('\n');
  return `<table class="metrics"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The prompt that the most generations of one seed have an example for, and those examples in order. */
export function exampleAcrossGenerations(metrics: readonly GenerationMetrics[]): { seed: number; promptId: number; prompt: string | null; rows: { generation: number; text: string }[] } | null {
  let best: ReturnType<typeof exampleAcrossGenerations> = null;
  for (const seed of [...new Set(metrics.map((m) => m.seed))].sort((a, b) => a - b)) {
    const byPrompt = new Map<number, { prompt: string | null; rows: { generation: number; text: string }[] }>();
    for (const m of metrics.filter((x) => x.seed === seed).sort((a, b) => a.generation - b.generation)) {
      for (const e of m.examples) {
        const entry = byPrompt.get(e.prompt_block_id) ?? { prompt: e.prompt, rows: [] };
        entry.prompt ??= e.prompt;
        if (!entry.rows.some((r) => r.generation === m.generation)) entry.rows.push({ generation: m.generation, text: e.continuation });
        byPrompt.set(e.prompt_block_id, entry);
      }
    }
    for (const [promptId, e] of byPrompt)
      if (!best || e.rows.length > best.rows.length || (e.rows.length === best.rows.length && seed === best.seed && promptId < best.promptId))
        best = { seed, promptId, prompt: e.prompt, rows: e.rows };
  }
  return best;
}

function examplesSection(run: RunData): string {
  const parts = run.settings.map((setting) => {
    const ex = exampleAcrossGenerations(run.metrics.filter((m) => m.setting === setting));
    const head = run.settings.length > 1 ? `<h3>${escapeHtml(setting)}</h3>\n` : '';
    if (!ex) return `${head}<p class="note">No example continuations were recorded (metrics.json has no examples).</p>`;
    const rows = ex.rows.map((r) => `<tr><th>gen ${r.generation}</th><td>${escapeHtml(r.text)}</td></tr>`).join('\n');
    return `${head}<p>Seed ${ex.seed}, prompt block ${ex.promptId}.</p>
<div class="prompt"><b>Input:</b> ${ex.prompt === null ? '<i>(prompt text not recorded)</i>' : escapeHtml(ex.prompt)}</div>
<table class="examples"><tbody>
${rows}
</tbody></table>`;
  });
  return parts.join('\n');
}

/** What the run did, from run.json: a reader judges the curves by the decoding and training that made them. */
function setupSection(run: RunData): string {
  const c = parseStoredConfig((run.manifest as { config?: unknown } | null)?.config);
  if (!c) return '<p class="note">run.json has no readable configuration.</p>';
  const g = c.generate;
  const decoding =
    g.strategy === 'beam'
      ? `${g.numBeams}-beam search`
      : `sampling (temperature ${g.temperature}${g.topK ? `, top-k ${g.topK}` : ''}${g.topP < 1 ? `, top-p ${g.topP}` : ''})`;
  const penalty =
    g.repetitionPenalty === 1
      ? 'no repetition penalty (as the paper\'s main runs; its code passes repetition_penalty=3.0)'
      : `repetition penalty ${g.repetitionPenalty}${g.repetitionPenalty === 3 ? ' (as the paper\'s code: its only generate call passes repetition_penalty=3.0)' : ' (the paper\'s code: 3.0; its text\'s ablation: 2.0)'}`;
  const ngram = g.noRepeatNgramSize > 0 ? `, no repeated ${g.noRepeatNgramSize}-gram (our addition; the paper's code has none)` : '';
  const t = c.train;
  const settings = runSettings(c)
    .map((s) => `<li>${escapeHtml(s.name)}: ${escapeHtml(s.mix.mode)}${s.mix.mode === 'keep-original' ? ` (${fmt(100 * s.mix.originalFraction)}% original blocks, ${s.mix.originalSample === 'fixed' ? 'the same subset every generation' : 'a fresh random subset each generation'})` : ''}, ${s.epochs} epochs${s.select ? `; curated: the best of ${s.select.candidates} candidates per prompt by the ${escapeHtml(s.select.verifier === 'model' ? `model verifier (${s.select.model})` : `${s.select.verifier} verifier`)}${s.select.dropWorst > 0 ? `, the worst ${fmt(100 * s.select.dropWorst)}% of prompts refilled by second choices` : ''}` : ''}</li>`)
    .join('');
  return `<ul>
<li>Model: ${escapeHtml(c.model.base)}; every generation fine-tunes ${c.model.initFrom === 'base' ? 'the pretrained base (as the paper)' : 'the previous generation\'s model'}.</li>
<li>Data: ${escapeHtml(c.data.source)}, ${c.data.blockSize}-token blocks.</li>
<li>Fine-tuning: ${escapeHtml(t.optimizer)}, lr ${t.lr}, batch ${t.batchSize}, ${escapeHtml(t.schedule)} schedule.</li>
<li>Decoding: ${decoding}, ${g.newTokens} new tokens per original block, ${penalty}${ngram}.</li>
</ul><p>Settings:</p><ul>${settings}</ul>`;
}

/** The zero-shot baseline against generation 0 after fine-tuning, per setting (the paper's 115 -> 34). */
function baselineSection(run: RunData): string {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const zs = run.metrics.map((m) => m.base_test_perplexity).filter((x): x is number => x !== null);
  if (!zs.length) return '<p class="note">No zero-shot baseline was recorded.</p>';
  const items = run.settings.map((s) => {
    const g0 = run.metrics.filter((m) => m.setting === s && m.generation === 0).map((m) => m.test_perplexity);
    return g0.length ? `<li>${escapeHtml(s)}: generation 0 after fine-tuning ${fmt(mean(g0))} (${fmt(mean(g0) / mean(zs))} x the zero-shot)</li>` : '';
  });
  return `<p>Real test perplexity of the base model before any fine-tuning (zero-shot): <b>${fmt(mean(zs))}</b>.</p><ul>${items.join('')}</ul>`;
}

/** Each setting's real test perplexity per generation over seeds: mean ± standard deviation and min..max. */
function seedSpreadTable(run: RunData): string {
  const cell = (s: string, g: number): string => {
    const v = run.metrics.filter((m) => m.setting === s && m.generation === g && Number.isFinite(m.test_perplexity)).map((m) => m.test_perplexity);
    if (!v.length) return '–';
    const r = spread(v);
    return `${fmt(r.mean)} ± ${fmt(r.std)} (${fmt(r.lo)}–${fmt(r.hi)})`;
  };
  const head = `<tr><th>gen</th>${run.settings.map((s) => `<th>${escapeHtml(s)}</th>`).join('')}</tr>`;
  const body = run.generations.map((g) => `<tr><th>${g}</th>${run.settings.map((s) => `<td>${cell(s, g)}</td>`).join('')}</tr>`).join('\n');
  return `<p>Real test perplexity over ${run.seeds.length} seed(s): mean ± standard deviation (lowest–highest seed).</p>
<table class="spread"><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

/** Every pair of settings: the mean over seeds of the difference in last-generation test perplexity, with its 95% interval. */
function pairedSection(run: RunData): string {
  const rows = pairedDifferences(run.metrics, run.settings);
  if (!rows.length) return '<p class="note">One setting: no pairs to compare.</p>';
  const interval = (r: PairedDifference) => (r.lo === null ? '– (one seed)' : `[${fmt(r.lo)}, ${fmt(r.hi)}]${r.lo > 0 || r.hi! < 0 ? ' *' : ''}`);
  const body = rows
    .map((r) => `<tr><td>${escapeHtml(r.a)}</td><td>${escapeHtml(r.b)}</td><td>${r.generation}</td><td>${r.n}</td><td>${fmt(r.mean)}</td><td>${interval(r)}</td></tr>`)
    .join('\n');
  return `<p>Real test perplexity at the last generation, setting a minus setting b, paired by seed (the settings of a seed share its base and data): the mean difference and its 95% t-interval over the seeds (t with n-1 degrees of freedom). Positive: a is worse. * the interval excludes 0.</p>
<table class="paired"><thead><tr><th>a</th><th>b</th><th>gen</th><th>seeds</th><th>mean a - b</th><th>95% interval</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** Curated settings: the verifier against the truth per generation (mean over seeds): Spearman's rho and p*. */
function verifierSection(run: RunData): string {
  const curated = run.settings.filter((s) => run.metrics.some((m) => m.setting === s && m.selection));
  if (!curated.length) return '';
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
  const cell = (s: string, g: number) => {
    const sel = run.metrics.filter((m) => m.setting === s && m.generation === g && m.selection).map((m) => m.selection!);
    if (!sel.length) return '–';
    const rho = mean(sel.map((x) => x.rho).filter((x): x is number => x !== null));
    const p = mean(sel.map((x) => x.p_star).filter((x): x is number => x !== null));
    return `${fmt(rho)} / ${pct(p)}`;
  };
  const head = `<tr><th>gen</th>${curated.map((s) => `<th>${escapeHtml(s)} (${escapeHtml(run.metrics.find((m) => m.setting === s && m.selection)!.selection!.verifier)}, k ${run.metrics.find((m) => m.setting === s && m.selection)!.selection!.candidates})</th>`).join('')}</tr>`;
  const body = run.generations.map((g) => `<tr><th>${g}</th>${curated.map((s) => `<td>${cell(s, g)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>Verifiers against the truth</h2>
<p>Per curated setting and generation, mean over seeds: Spearman's rho between the verifier's score and the candidate's true log-likelihood given its prompt, over all candidates / p*, the share of prompts where the verifier keeps the candidate the truth would keep (chance: 1/k). Measured on the synthetic source only.</p>
<table class="verifier"><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
body { font-family: system-ui, -apple-system, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
figure { margin: 1.5rem 0; } figure svg { max-width: 100%; height: auto; } figcaption { font-size: 0.9rem; color: #555; }
table { border-collapse: collapse; font-size: 0.82rem; } th, td { border: 1px solid #ddd; padding: 0.25rem 0.45rem; text-align: right; vertical-align: top; }
table.examples td { text-align: left; font-family: ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; } table.examples th { white-space: nowrap; }
.prompt { background: #f6f6f6; padding: 0.5rem; font-family: ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; margin-bottom: 0.5rem; }
.note { color: #777; } .scroll { overflow-x: auto; }
.warning { background: #fde8e8; border: 2px solid #c0392b; color: #7b1f16; padding: 0.6rem 0.9rem; margin: 1rem 0; }
`;

export function reportHtml(run: RunData, figures: HtmlFigure[], opts: { generatedAt?: string; warnings?: readonly string[] } = {}): string {
  const warnings = opts.warnings?.length
    ? `<div class="warning" role="alert"><b>Degenerate data: this run does not show the paper's gradual collapse.</b><ul>${opts.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>`
    : '';
  const figs = figures
    .map(
      (f) => `<figure id="fig-${escapeHtml(f.id)}" data-figure="${escapeHtml(f.id)}">
<h3>${escapeHtml(f.title)}</h3>
${f.svg}
<figcaption>${escapeHtml(f.caption)} Data: <code>figures/${escapeHtml(f.id)}.csv</code>, <code>.json</code>.</figcaption>
</figure>`,
    )
    .join('\n');
  const pending = run.pending.length
    ? `<p class="note">Not evaluated yet: ${run.pending.map((p) => escapeHtml(p)).join(', ')}.</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Model collapse report: ${escapeHtml(run.name)}</title>
<style>${CSS}</style></head>
<body>
<h1>Model collapse report: ${escapeHtml(run.name)}</h1>
<p>${run.settings.length > 1 ? `Settings ${run.settings.map(escapeHtml).join(', ')}; s` : 'S'}eeds ${run.seeds.join(', ')}; generations ${run.generations.join(', ')}. Generated ${escapeHtml(opts.generatedAt ?? new Date().toISOString())}.</p>
${warnings}
${pending}
<h2>Setup</h2>
${setupSection(run)}
<h2>Zero-shot baseline</h2>
${baselineSection(run)}
<h2>Figures</h2>
${figs}
<h2>Test perplexity over seeds</h2>
${seedSpreadTable(run)}
<h2>Settings compared, paired by seed</h2>
${pairedSection(run)}
${verifierSection(run)}
<h2>Metrics per generation and seed</h2>
<div class="scroll">${metricsTable(run.metrics)}</div>
<h2>Example continuations of the same prompt across generations</h2>
${examplesSection(run)}
</body></html>
`;
}
