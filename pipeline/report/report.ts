// `collapse report RUN_DIR`: figures (SVG, PNG, Vega-Lite spec, CSV and JSON data) under RUN_DIR/report/figures
// and one self-contained RUN_DIR/report/report.html.
import { readFileSync } from 'node:fs';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { degenerateDataWarnings } from '../eval/guard.js';
import { reportFigures } from './figures.js';
import { reportHtml, type HtmlFigure } from './html.js';
import { renderFigure, writeData } from '../../figures/plot.js';
import { configuredHistogramGenerations, readRunData } from './run-data.js';
import { reportFiles } from './report-files.js';
import { RunLayout } from '../run/layout.js';

export const DEFAULT_HISTOGRAM_GENERATIONS = [0, 1, 2, 3, 5, 9];

export interface ReportOptions {
  /** Output directory (default RUN_DIR/report). */
  out?: string;
  /** Generations overlaid in the histogram (default: run.json's eval.histogramGenerations, else 0,1,2,3,5,9). */
  histogramGenerations?: number[];
  bins?: number;
  log?: (line: string) => void;
}

export interface ReportResult {
  html: string;
  figures: string[];
  histogramGenerations: number[];
  /** The degenerate-data guard's findings (also shown as a banner in the page). */
  warnings: string[];
}

export async function buildReport(runDir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  const run = readRunData(runDir);
  const out = opts.out ?? RunLayout.open(runDir).reportDir;
  const paths = reportFiles(out);
  const wanted = opts.histogramGenerations ?? configuredHistogramGenerations(run) ?? DEFAULT_HISTOGRAM_GENERATIONS;
  const histogramGenerations = wanted.filter((g) => run.generations.includes(g));
  const missing = wanted.filter((g) => !run.generations.includes(g));
  if (missing.length) opts.log?.(`report: generations ${missing.join(', ')} are not evaluated in ${runDir}; the histogram shows ${histogramGenerations.join(', ') || 'none'}`);
  const figures = reportFigures(run, { histogramGenerations, bins: opts.bins });
  const html: HtmlFigure[] = [];
  for (const f of figures) {
    const base = paths.figure(f.id);
    writeData(f.rows, base);
    const files = await renderFigure(f.spec, base);
    html.push({ id: f.id, title: f.title, caption: f.caption, svg: readFileSync(files.svg, 'utf8') });
    opts.log?.(`report: ${files.svg}`);
  }
  // The raw records, one per setting, seed and generation, for readers who want every number.
  writeJsonAtomic(paths.metrics, run.metrics);
  const htmlPath = paths.html;
  const warnings = degenerateDataWarnings(run.metrics).map((w) => w.message);
  writeFileAtomic(htmlPath, reportHtml(run, html, { warnings }));
  return { html: htmlPath, figures: figures.map((f) => f.id), histogramGenerations, warnings };
}
