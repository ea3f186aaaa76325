// Opens a run's report.html in headless Chromium and saves a full-page screenshot beside it.
//   npx tsx scripts/screenshot-report.ts runs/NAME [out.png]
// Builds the report first when RUN_DIR/report/report.html is missing. Exits non-zero when the page logs an
// error, requests anything outside the file, or a figure is not drawn.
import { existsSync } from 'node:fs';
import { checkPage, FIGURE_CHECK } from '../pipeline/report/headless.js';
import { buildReport } from '../pipeline/report/report.js';
import { reportFiles } from '../pipeline/report/report-files.js';
import { RunLayout } from '../pipeline/run/layout.js';
import { describeError } from './cli.js';

const [runDir, outArg] = process.argv.slice(2);
if (!runDir) {
  process.stderr.write('usage: npx tsx scripts/screenshot-report.ts RUN_DIR [OUT.png]\n');
  process.exit(2);
}
const files = reportFiles(new RunLayout(runDir).reportDir); // a root-level folder: no setting needs to be known
let html = files.html;
if (!existsSync(html)) {
  try {
    html = (await buildReport(runDir, { log: (l) => process.stderr.write(`${l}\n`) })).html;
  } catch (e) {
    // Not a run directory (e.g. the report.html itself was given): the CLI's one error path, not a stack.
    process.stderr.write(describeError(e));
    process.exit(1);
  }
}
const out = outArg ?? files.screenshot;
const check = await checkPage<{ id: string; width: number; height: number; marks: number }[]>(html, { expression: FIGURE_CHECK, screenshot: out });
for (const f of check.value) process.stdout.write(`figure ${f.id}: ${Math.round(f.width)}x${Math.round(f.height)} px, ${f.marks} marks\n`);
const problems = [
  ...check.errors,
  ...check.externalRequests.map((u) => `external request: ${u}`),
  ...check.value.filter((f) => f.width < 1 || f.height < 1 || f.marks === 0).map((f) => `figure ${f.id} is empty`),
];
process.stdout.write(`screenshot: ${out}\n`);
if (problems.length) {
  process.stderr.write(`${problems.join('\n')}\n`);
  process.exit(1);
}
