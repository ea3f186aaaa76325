// The report of a micro run: figure data equals the metrics it was built from, the page is self-contained,
// and it renders in headless Chromium with no console errors and every figure drawn.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPage, FIGURE_CHECK, findChromium } from '../../pipeline/report/headless.js';
import { buildReport, type ReportResult } from '../../pipeline/report/report.js';
import { makeFakeRun, type FakeRun } from './fake-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let run: FakeRun;
let report: ReportResult;
beforeAll(async () => {
  run = makeFakeRun(join(tmp, 'runs', 'micro'));
  report = await buildReport(run.root);
});

const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const figDir = () => join(run.root, 'report', 'figures');

describe('collapse report', () => {
  it('writes every figure as SVG, PNG, Vega-Lite spec, CSV and JSON', () => {
    expect(report.figures).toEqual(['test-perplexity', 'ppl-histogram', 'ppl-ridgeline', 'diversity', 'tail-mass']);
    for (const id of report.figures)
      for (const ext of ['svg', 'png', 'vl.json', 'csv', 'json']) expect(statSync(join(figDir(), `${id}.${ext}`)).size, `${id}.${ext}`).toBeGreaterThan(100);
  });

  it('overlays the configured generations only, with every sample of every seed binned', () => {
    expect(report.histogramGenerations).toEqual([0, 1, 2, 3, 5, 9]);
    const rows = readJson<{ generation: number; count: number }[]>(join(figDir(), 'ppl-histogram.json'));
    expect([...new Set(rows.map((r) => r.generation))]).toEqual([0, 1, 2, 3, 5, 9]);
    for (const g of [0, 5, 9]) expect(rows.filter((r) => r.generation === g).reduce((a, r) => a + r.count, 0)).toBe(run.samples * run.seeds.length);
    const ridge = readJson<{ generation: number }[]>(join(figDir(), 'ppl-ridgeline.json'));
    expect([...new Set(ridge.map((r) => r.generation))]).toEqual(run.generations);
  });

  it('plots test perplexity per seed (thin) and as the mean over seeds (bold), with the zero-shot line', () => {
    type R = { generation: number; curve: string; seed?: number; test_perplexity: number; mean?: number; lo?: number; hi?: number; seeds?: number };
    const rows = readJson<R[]>(join(figDir(), 'test-perplexity.json'));
    const means = rows.filter((r) => r.curve === 'mean');
    expect(means.map((r) => r.generation)).toEqual(run.generations);
    for (const r of means) {
      const vs = run.seeds.map((s) => run.testPerplexity(s, r.generation));
      expect(r.test_perplexity).toBeCloseTo(vs.reduce((a, b) => a + b, 0) / vs.length, 10);
      expect(r.lo).toBeCloseTo(Math.min(...vs), 10);
      expect(r.hi).toBeCloseTo(Math.max(...vs), 10);
      expect(r.seeds).toBe(2);
    }
    // One thin curve per seed, each holding that seed's own values.
    for (const s of run.seeds) {
      const curve = rows.filter((r) => r.curve === `seed ${s}`);
      expect(curve.map((r) => r.generation)).toEqual(run.generations);
      for (const r of curve) expect(r.test_perplexity).toBe(run.testPerplexity(s, r.generation));
    }
    const spec = readJson<{ layer: { mark?: { strokeWidth?: number }; transform?: { filter: string }[]; data?: { values: { zero_shot: number }[] } }[] }>(join(figDir(), 'test-perplexity.vl.json'));
    const width = (f: string) => spec.layer.find((l) => l.transform?.[0]?.filter === f)?.mark?.strokeWidth ?? 0;
    expect(width("datum.curve === 'mean'")).toBeGreaterThan(2 * width("datum.curve !== 'mean'"));
    // The zero-shot baseline (mean of the seeds' generation-0 records: 45 and 46) as a dashed rule.
    expect(spec.layer.find((l) => l.data)?.data?.values[0]?.zero_shot).toBeCloseTo(45.5, 10);
  });

  it('tabulates each generation\'s test perplexity over seeds: mean ± sd (min–max)', () => {
    const html = readFileSync(report.html, 'utf8');
    // Generation 3: seeds 0 and 1 give 37.5 and 38.25 (30 + 2.5 g + 0.75 s): mean 37.875, sd 0.5303.
    expect(html).toContain('<tr><th>3</th><td>37.88 ± 0.5303 (37.5–38.25)</td></tr>');
  });

  it('builds one self-contained page: inline figures, the metrics table, escaped examples across generations', () => {
    const html = readFileSync(report.html, 'utf8');
    for (const id of report.figures) expect(html).toContain(`data-figure="${id}"`);
    // No reference to anything outside the file (xmlns attributes are names, not requests).
    expect(html.replace(/xmlns(:\w+)?="[^"]*"/g, '')).not.toMatch(/(src|href)=["']?https?:/i);
    expect(html).not.toMatch(/<script|<link /i);
    // 2 seeds x 10 generations of rows in the table.
    expect(html.match(/<tr><td>/g)?.length).toBe(20);
    expect(html).toContain('&lt;b&gt;late&lt;/b&gt;');
    for (const g of run.generations) expect(html).toContain(`gen ${g} seed 0: the tower`);
    expect(html).toContain('Not evaluated yet');
    expect(html).toContain('zero-shot): <b>45.5</b>');
    // The setup, from run.json: the decoding that made the data, and each setting's mixing and epochs.
    expect(html).toContain("repetition penalty 3 (as the paper's code");
    expect(html).toContain('no repeated 4-gram (our addition');
    expect(html).toContain('<li>replace: replace, 4 epochs</li>');
    expect(html).not.toContain('class="warning"');
    expect(report.warnings).toEqual([]);
  });

  it('shows the degenerate-data guard as a banner naming the cause', async () => {
    const bad = makeFakeRun(join(tmp, 'runs', 'bad'), { seeds: [0], generations: 2, degenerate: true });
    const r = await buildReport(bad.root);
    expect(r.warnings.join('\n')).toMatch(/rep-2 7\d\.\d% > 50%/);
    expect(r.warnings.join('\n')).toMatch(/generation-1 test perplexity .* over 2x/);
    const html = readFileSync(r.html, 'utf8');
    expect(html).toContain('class="warning"');
    expect(html).toMatch(/the model repeats itself/);
  });

  it('falls back to the generations present when the requested ones are missing', async () => {
    const r = await buildReport(run.root, { out: join(tmp, 'other'), histogramGenerations: [0, 4, 12] });
    expect(r.histogramGenerations).toEqual([0, 4]);
  });

  it('names the directory when it is not a run', async () => {
    await expect(buildReport(join(tmp, 'nope'))).rejects.toThrow(/run directory not found: .*nope/);
    // The report page itself given in place of its run directory.
    await expect(buildReport(report.html)).rejects.toThrow(/report\.html is a file, not a run directory: give runs\/NAME/);
  });

  const chromium = findChromium();
  if (!chromium) console.warn('[skip] chromium is absent: install it with `apt-get install -y chromium` to run the headless report check');
  it.skipIf(!chromium)('renders in headless Chromium with no console errors, no external requests and every figure drawn', async () => {
    const shot = join(tmp, 'report.png');
    const check = await checkPage<{ id: string; width: number; height: number; marks: number }[]>(report.html, { expression: FIGURE_CHECK, screenshot: shot });
    expect(check.errors).toEqual([]);
    expect(check.externalRequests).toEqual([]);
    expect(check.value.map((f) => f.id)).toEqual(report.figures);
    for (const f of check.value) {
      expect(f.width, f.id).toBeGreaterThan(200);
      expect(f.height, f.id).toBeGreaterThan(100);
      expect(f.marks, f.id).toBeGreaterThan(10);
    }
    expect(existsSync(shot)).toBe(true);
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
  });

  it.skipIf(!chromium)('the page check reports console errors (so that the check above can fail)', async () => {
    const bad = join(tmp, 'bad.html');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, '<!doctype html><html><body><script>console.error("boom"); undefinedFn();</script></body></html>');
    const check = await checkPage<number>(bad, { expression: '1 + 1' });
    expect(check.value).toBe(2);
    expect(check.errors.join('\n')).toMatch(/boom/);
    expect(check.errors.join('\n')).toMatch(/undefinedFn/);
  });
});
