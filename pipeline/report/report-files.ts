// What a report folder holds. The report owns its folder's inside (it may be written anywhere with --out);
// where a run's report folder is, is the run layout's to say (RunLayout.reportDir).
import { join } from 'node:path';

export interface ReportFiles {
  html: string;
  /** The raw records, one per setting, seed and generation. */
  metrics: string;
  /** A figure's files without extension (`.svg`, `.png`, `.vl.json`, data beside it). */
  figure(id: string): string;
  /** The page's screenshot (scripts/screenshot-report.ts). */
  screenshot: string;
}

export const reportFiles = (dir: string): ReportFiles => ({
  html: join(dir, 'report.html'),
  metrics: join(dir, 'metrics.json'),
  figure: (id) => join(dir, 'figures', id),
  screenshot: join(dir, 'report.png'),
});
