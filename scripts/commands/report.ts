// `collapse report RUN_DIR`: figures and one self-contained report.html for a run.
import type { Argv, CommandModule } from 'yargs';
import { checkWritable } from '../../pipeline/preflight.js';
import { buildReport } from '../../pipeline/report/report.js';
import { RunLayout } from '../../pipeline/run/layout.js';
import { checkPage, FIGURE_CHECK } from '../../pipeline/report/headless.js';

interface ReportArgs {
  run: string;
  out?: string;
  generations?: string;
  bins: number;
  screenshot?: string;
}

/** "0,1,2,3,5,9" -> [0, 1, 2, 3, 5, 9] */
export function parseGenerations(s: string): number[] {
  const parts = s.split(',').map((x) => x.trim()).filter(Boolean);
  const gens = parts.map(Number);
  if (!parts.length || gens.some((g) => !Number.isInteger(g) || g < 0))
    throw new Error(`--generations ${s}: expected comma-separated generation numbers, e.g. 0,1,2,3,5,9`);
  return gens;
}

const report: CommandModule<object, ReportArgs> = {
  command: 'report <run>',
  describe: 'Draw the figures of a run and write one self-contained report.html',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 report RUN_DIR [options]\n\n' +
          'Reads RUN_DIR/run.json and RUN_DIR/[SETTING/]seed-S/gen-K/{metrics.json,sample_ppl.json} (a SETTING folder ' +
          'per setting when the run has several, e.g. replace/ and keep-original/) and writes RUN_DIR/report/ (or --out): report.html (figures inline, no external requests), ' +
          'figures/*.{svg,png,vl.json,csv,json} and metrics.json. Generations not yet evaluated are listed, not an error.',
      )
      .positional('run', { type: 'string', demandOption: true, describe: 'Run directory (runs/NAME)' })
      .option('out', { type: 'string', describe: 'Output directory (default RUN_DIR/report)' })
      .option('generations', { type: 'string', describe: "Generations overlaid in the histogram, e.g. 0,1,2,3,5,9 (default: the run config's eval.histogramGenerations)" })
      .option('bins', { type: 'number', default: 40, describe: 'Histogram bins (log-spaced)' })
      .option('screenshot', { type: 'string', describe: 'Also open the page in headless Chromium, check it, and save a PNG screenshot here' }) as unknown as Argv<ReportArgs>,
  handler: async (a) => {
    if (!Number.isInteger(a.bins) || a.bins < 2) throw new Error(`--bins ${a.bins}: expected an integer >= 2`);
    // Before any figure is drawn: a read-only run directory (or --out) is named with what to do.
    if (a.out) checkWritable(a.out, '--out');
    else checkWritable(new RunLayout(a.run).reportDir, 'report directory', { remedy: 'pass --out DIR on a writable file system' });
    const r = await buildReport(a.run, {
      out: a.out,
      histogramGenerations: a.generations ? parseGenerations(a.generations) : undefined,
      bins: a.bins,
      log: (l) => process.stderr.write(`${l}\n`),
    });
    for (const w of r.warnings) process.stderr.write(`WARNING: ${w}\n`);
    process.stdout.write(`report: ${r.html}\n`);
    if (a.screenshot) {
      const check = await checkPage<{ id: string; marks: number }[]>(r.html, { expression: FIGURE_CHECK, screenshot: a.screenshot });
      const empty = check.value.filter((f) => f.marks === 0).map((f) => f.id);
      const problems = [...check.errors, ...check.externalRequests.map((u) => `external request ${u}`), ...empty.map((id) => `figure ${id} is empty`)];
      if (problems.length) throw new Error(`the report did not render cleanly in Chromium:\n${problems.join('\n')}`);
      process.stdout.write(`screenshot: ${a.screenshot}\n`);
    }
  },
};

export default report;
