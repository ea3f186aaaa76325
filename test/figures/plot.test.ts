import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  figureFont,
  lineBandChart,
  logBinEdges,
  logHistogramChart,
  logHistogramRows,
  renderFigure,
  renderFigureWithData,
  ridgelineChart,
  scatterChart,
  toCsv,
  writeData,
  type Row,
} from '../../figures/plot.js';

const dir = mkdtempSync(join(tmpdir(), 'plot-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the PNG's IHDR chunk. */
function pngSize(buf: Buffer): { w: number; h: number } {
  return { w: buf.readUInt32BE(16), h: buf.readUInt32BE(20) };
}

describe('renderFigure', () => {
  it('writes svg with the axis titles, a real png and the spec', async () => {
    const rows: Row[] = Array.from({ length: 20 }, (_, i) => ({ gen: i, mean: 1 / (i + 1), lo: 0.5 / (i + 1), hi: 1.5 / (i + 1) }));
    const spec = lineBandChart(rows, { x: 'gen', y: 'mean', lo: 'lo', hi: 'hi', xTitle: 'Generation axis', yTitle: 'Variance axis', width: 300, height: 200 });
    const f = await renderFigure(spec, join(dir, 'line'), { scale: 1 });
    const svg = readFileSync(f.svg, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Generation axis');
    expect(svg).toContain('Variance axis');
    const png = readFileSync(f.png);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const { w, h } = pngSize(png);
    // 300x200 plot area plus axes and titles at scale 1.
    expect(w).toBeGreaterThan(300);
    expect(w).toBeLessThan(500);
    expect(h).toBeGreaterThan(200);
    expect(h).toBeLessThan(350);
    expect(statSync(f.png).size).toBeGreaterThan(2000);
    expect(JSON.parse(readFileSync(f.spec, 'utf8'))).toEqual(JSON.parse(JSON.stringify(spec)));
  });

  it('lists series in the legend in natural order (M=500 before M=1000), not lexically', async () => {
    const rows: Row[] = ['M=100', 'M=1000', 'M=10000', 'M=500'].flatMap((series, i) => [0, 1].map((gen) => ({ series, gen, y: i + gen })));
    const f = await renderFigure(lineBandChart(rows, { x: 'gen', y: 'y', series: 'series', width: 200, height: 100 }), join(dir, 'legend'), { scale: 1 });
    const svg = readFileSync(f.svg, 'utf8');
    const at = (label: string) => svg.indexOf(`>${label}<`);
    expect(at('M=100')).toBeGreaterThan(0);
    expect(at('M=100')).toBeLessThan(at('M=500'));
    expect(at('M=500')).toBeLessThan(at('M=1000'));
    expect(at('M=1000')).toBeLessThan(at('M=10000'));
  });

  it('renders text glyphs into the PNG when a font is present', async () => {
    // The same chart with and without titles: glyphs must change the pixels.
    const rows: Row[] = [{ x: 1, y: 1 }, { x: 2, y: 3 }];
    const a = await renderFigure(scatterChart(rows, { x: 'x', y: 'y', title: 'WWWWWWWWWWWW', width: 100, height: 100 }), join(dir, 'ta'), { scale: 1 });
    const b = await renderFigure(scatterChart(rows, { x: 'x', y: 'y', title: ' ', width: 100, height: 100 }), join(dir, 'tb'), { scale: 1 });
    if (!figureFont().found) return;
    expect(readFileSync(a.png).equals(readFileSync(b.png))).toBe(false);
  });

  it('renders log histograms, a ridgeline and faceted scatter', async () => {
    const groups = { g0: [1, 2, 3, 10, 100], g1: [5, 5, 6, 7] };
    const h = logHistogramRows(groups, 8);
    for (const [name, spec] of [
      ['hist', logHistogramChart(h, { xTitle: 'perplexity' })],
      ['ridge', ridgelineChart(h, { xTitle: 'perplexity', logX: true })],
      ['scatter', scatterChart([{ a: 1, b: 2, f: 0 }, { a: 2, b: 1, f: 1 }], { x: 'a', y: 'b', facet: 'f' })],
    ] as const) {
      const f = await renderFigure(spec, join(dir, name), { scale: 1 });
      expect(readFileSync(f.svg, 'utf8')).toContain(name === 'scatter' ? '>a<' : 'perplexity');
      expect(statSync(f.png).size).toBeGreaterThan(1000);
    }
  });
});

describe('renderFigureWithData', () => {
  it('writes the five files, with data equal to the rows', async () => {
    const rows: Row[] = [{ a: 1, b: 2 }, { a: 2, b: 5 }];
    const f = await renderFigureWithData(scatterChart(rows, { x: 'a', y: 'b' }), rows, join(dir, 'both'), { scale: 1 });
    expect(readFileSync(f.csv, 'utf8')).toBe('a,b\n1,2\n2,5\n');
    expect(JSON.parse(readFileSync(f.json, 'utf8'))).toEqual(rows);
    expect(statSync(f.png).size).toBeGreaterThan(1000);
    expect(readFileSync(f.svg, 'utf8')).toContain('<svg');
  });
});

describe('log histograms', () => {
  it('bins in log space: counts add up and densities integrate to one per decade', () => {
    const vals = [1, 1.5, 9.99, 10, 99, 100, 0, -3];
    const edges = logBinEdges(vals, 2);
    expect(edges[0]).toBe(1);
    expect(edges[1]).toBeCloseTo(10, 10);
    const rows = logHistogramRows({ a: vals }, 2, edges);
    expect(rows.map((r) => r.count)).toEqual([3, 3]); // [1,10): 1, 1.5, 9.99; [10,100]: 10, 99, 100
    expect(rows[0]!.dropped).toBe(2);
    const area = rows.reduce((s, r) => s + (r.density as number) * (Math.log10(r.hi as number) - Math.log10(r.lo as number)), 0);
    expect(area).toBeCloseTo(1, 12);
  });
});

describe('writeData', () => {
  it('csv and json hold exactly the rows', () => {
    const rows: Row[] = [
      { gen: 0, name: 'plain', v: 1.5 },
      { gen: 1, name: 'has, comma "q"', v: Infinity, extra: true },
      { gen: 2, name: null, v: -0.25 },
    ];
    const f = writeData(rows, join(dir, 'data'));
    const csv = readFileSync(f.csv, 'utf8');
    expect(csv).toBe('gen,name,v,extra\n0,plain,1.5,\n1,"has, comma ""q""",inf,true\n2,,-0.25,\n');
    expect(toCsv(rows)).toBe(csv);
    const json = JSON.parse(readFileSync(f.json, 'utf8')) as Row[];
    expect(json).toEqual([rows[0], { ...rows[1], v: null }, rows[2]]);
  });
});
