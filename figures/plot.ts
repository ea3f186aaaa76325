// Figures for reports and the theory commands: Vega-Lite specs compiled to Vega, rendered headless to SVG,
// rasterised to PNG by resvg. Every figure keeps its spec (`.vl.json`) and its data (`.csv`, `.json`) next
// to it, so that a reader can redraw it with other tools.
//
// Its own layer (figures/, above datasets/ and below pipeline/ and theory/): both the run's report and the
// theory commands draw with it, and they are siblings that must not import each other. It imports only util/,
// but stays out of it: util/ is below everything, and nothing below the two that draw needs vega or resvg.
//
// Text needs a font: resvg draws no glyphs without one. We prefer DejaVu Sans (Debian: fonts-dejavu-core),
// then Liberation Sans, then whatever the system has; `figureFont()` says which one is used.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';

export type { TopLevelSpec };
export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

// ---------------------------------------------------------------------------------------------- fonts

const FONT_CANDIDATES: { family: string; files: string[] }[] = [
  { family: 'DejaVu Sans', files: ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'] },
  { family: 'Liberation Sans', files: ['/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', '/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf'] },
];

export interface FigureFont {
  family: string;
  /** Font files handed to resvg; empty when falling back to the system's fonts. */
  files: string[];
  /** False when no font file was found: text may then be missing from PNGs. */
  found: boolean;
}

let cachedFont: FigureFont | null = null;

/** The font used for figure text (COLLAPSE_FONT_FILE / COLLAPSE_FONT_FAMILY override it). */
export function figureFont(): FigureFont {
  if (cachedFont) return cachedFont;
  const envFile = process.env.COLLAPSE_FONT_FILE;
  if (envFile) {
    if (!existsSync(envFile)) throw new Error(`COLLAPSE_FONT_FILE=${envFile} does not exist: point it at a .ttf/.otf file or unset it`);
    cachedFont = { family: process.env.COLLAPSE_FONT_FAMILY ?? 'sans-serif', files: [envFile], found: true };
    return cachedFont;
  }
  for (const c of FONT_CANDIDATES) {
    const files = c.files.filter((f) => existsSync(f));
    if (files.length) return (cachedFont = { family: c.family, files, found: true });
  }
  // Any TrueType font under /usr/share/fonts beats none.
  const any = findFontFile('/usr/share/fonts', 3);
  cachedFont = any ? { family: 'sans-serif', files: [any], found: true } : { family: 'sans-serif', files: [], found: false };
  if (!any) {
    process.stderr.write('plot: no font found; PNG figures will lack text. Install one, e.g. `apt-get install -y fonts-dejavu-core`.\n');
  }
  return cachedFont;
}

function findFontFile(dir: string, depth: number): string | null {
  if (depth < 0 || !existsSync(dir)) return null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isFile() && /\.(ttf|otf)$/i.test(e.name)) return p;
    if (e.isDirectory()) {
      const f = findFontFile(p, depth - 1);
      if (f) return f;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------- render

/** Vega-Lite spec → SVG text (headless Vega view, no DOM). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const font = figureFont().family;
  // Vega tags data objects in place (a symbol id): render from a copy so the caller's rows stay clean.
  const copy = structuredClone(spec);
  const withFont = { ...copy, config: { font, ...(copy.config ?? {}) } } as TopLevelSpec;
  const compiled = compile(withFont).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** SVG text → PNG bytes; `scale` 2 gives print-quality pixels. */
export function renderPng(svg: string, opts: { scale?: number } = {}): Uint8Array {
  const font = figureFont();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: opts.scale ?? 2 },
    background: 'white',
    font: {
      loadSystemFonts: font.files.length === 0,
      fontFiles: font.files,
      defaultFontFamily: font.family,
      sansSerifFamily: font.family,
    },
    logLevel: 'off',
  });
  return resvg.render().asPng();
}

export interface FigureFiles {
  svg: string;
  png: string;
  spec: string;
}

/** Writes `outBase.svg`, `outBase.png` and `outBase.vl.json` (the spec), each atomically. */
export async function renderFigure(spec: TopLevelSpec, outBase: string, opts: { scale?: number } = {}): Promise<FigureFiles> {
  const svg = await renderSvg(spec);
  const files = { svg: `${outBase}.svg`, png: `${outBase}.png`, spec: `${outBase}.vl.json` };
  writeJsonAtomic(files.spec, spec);
  writeFileAtomic(files.svg, svg);
  writeFileAtomic(files.png, renderPng(svg, opts));
  return files;
}

// ---------------------------------------------------------------------------------------------- data

function csvCell(v: Cell | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV; the columns are the union of the rows' keys in first-seen order. */
export function toCsv(rows: readonly Row[]): string {
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r)) {
      if (seen.has(k)) continue;
      seen.add(k);
      cols.push(k);
    }
  }
  const lines = [cols.map((c) => csvCell(c)).join(',')];
  for (const r of rows) lines.push(cols.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\n')}\n`;
}

/** Writes a figure's data as `outBase.csv` and `outBase.json` (an array of row objects). */
export function writeData(rows: readonly Row[], outBase: string): { csv: string; json: string } {
  const files = { csv: `${outBase}.csv`, json: `${outBase}.json` };
  writeFileAtomic(files.csv, toCsv(rows));
  // JSON has no Infinity/NaN: they become null, as JSON.stringify would do anyway.
  writeJsonAtomic(files.json, rows);
  return files;
}

/** A figure and its data in one call: `outBase.{svg,png,vl.json}` plus `outBase.{csv,json}`. */
export async function renderFigureWithData(spec: TopLevelSpec, rows: readonly Row[], outBase: string, opts: { scale?: number } = {}): Promise<FigureFiles & { csv: string; json: string }> {
  const data = writeData(rows, outBase);
  return { ...(await renderFigure(spec, outBase, opts)), ...data };
}

// ---------------------------------------------------------------------------------------------- charts

interface Common {
  title?: string;
  width?: number;
  height?: number;
  xTitle?: string;
  yTitle?: string;
  logX?: boolean;
  logY?: boolean;
}

/** What every chart spec starts with: the Vega-Lite schema, the optional title and the inline data. */
function specHead(rows: readonly Row[], o: Common): { $schema: string; title?: string; data: { values: Row[] } } {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...(o.title ? { title: o.title } : {}), data: { values: rows as Row[] } };
}

const scaleOf = (log: boolean | undefined, extra: Record<string, unknown> = {}) => (log ? { type: 'log', ...extra } : { zero: false, ...extra });

/**
 * A nominal colour channel whose legend lists the series in natural order ("M=100", "M=500", "M=1000"),
 * not Vega's lexical one ("M=100", "M=1000", "M=500").
 */
export function seriesColor(rows: readonly Row[], field: string): { field: string; type: 'nominal'; title: string; sort: string[] } {
  const names = [...new Set(rows.map((r) => String(r[field])))];
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return { field, type: 'nominal', title: field, sort: names };
}

/**
 * Mean line with a shaded band (e.g. mean ± std, or quantiles) per series.
 * Rows carry `x`, `y` (the line), `lo` and `hi` (the band) and optionally `series`.
 */
export function lineBandChart(
  rows: readonly Row[],
  o: Common & { x: string; y: string; lo?: string; hi?: string; series?: string; points?: boolean },
): TopLevelSpec {
  const color = o.series ? { color: seriesColor(rows, o.series) } : {};
  const x = { field: o.x, type: 'quantitative' as const, title: o.xTitle ?? o.x, scale: scaleOf(o.logX) };
  const layers: object[] = [];
  if (o.lo && o.hi) {
    layers.push({
      mark: { type: 'area', opacity: 0.22 },
      encoding: { x, y: { field: o.lo, type: 'quantitative', scale: scaleOf(o.logY) }, y2: { field: o.hi }, ...color },
    });
  }
  layers.push({
    mark: { type: 'line', point: o.points ?? false, strokeWidth: 1.8 },
    encoding: { x, y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: scaleOf(o.logY) }, ...color },
  });
  return {
    ...specHead(rows, o),
    width: o.width ?? 480,
    height: o.height ?? 300,
    layer: layers,
    // The legend would otherwise take the band's faint opacity.
    config: { legend: { symbolOpacity: 1, labelLimit: 320 } },
  } as TopLevelSpec;
}

/** Log-spaced bin edges covering [min, max] of the positive values. */
export function logBinEdges(values: Iterable<number>, bins: number): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!(v > 0) || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) throw new Error('logBinEdges: no positive finite value to bin');
  if (hi === lo) {
    lo /= 1.05;
    hi *= 1.05;
  }
  // Powers of ten in log10 space keep decade edges exact (10 ** 1 === 10).
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  const edges = new Float64Array(bins + 1);
  for (let i = 0; i <= bins; i++) edges[i] = 10 ** (a + ((b - a) * i) / bins);
  edges[bins] = hi * (1 + 1e-12); // the maximum falls inside the last bin
  return edges;
}

/**
 * Histograms in log space, one per group, on shared bin edges. `density` is the fraction of the group's
 * values per unit of log10(x), so groups of different sizes and bins of different widths compare.
 * Non-positive values are dropped (counted in `dropped`).
 */
export function logHistogramRows(groups: ReadonlyMap<string, ArrayLike<number>> | Record<string, ArrayLike<number>>, bins = 40, edges?: Float64Array): Row[] {
  const entries = groups instanceof Map ? [...groups.entries()] : Object.entries(groups);
  const e = edges ?? logBinEdges((function* () { for (const [, vs] of entries) for (let i = 0; i < vs.length; i++) yield vs[i]!; })(), bins);
  const nb = e.length - 1;
  const la = Math.log10(e[0]!);
  const step = (Math.log10(e[nb]!) - la) / nb;
  const rows: Row[] = [];
  for (const [group, vs] of entries) {
    const counts = new Float64Array(nb);
    let n = 0;
    let dropped = 0;
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i]!;
      if (!(v > 0) || !Number.isFinite(v) || v < e[0]! || v >= e[nb]!) {
        dropped++;
        continue;
      }
      let k = Math.min(nb - 1, Math.max(0, Math.floor((Math.log10(v) - la) / step)));
      // Guard float rounding at the edges.
      while (k > 0 && v < e[k]!) k--;
      while (k < nb - 1 && v >= e[k + 1]!) k++;
      counts[k] = counts[k]! + 1;
      n++;
    }
    for (let k = 0; k < nb; k++) {
      const lo = e[k]!;
      const hi = e[k + 1]!;
      const width = Math.log10(hi) - Math.log10(lo);
      rows.push({ group, lo, hi, count: counts[k]!, density: n > 0 ? counts[k]! / n / width : 0, dropped });
    }
  }
  return rows;
}

/** Overlaid, semi-transparent histograms on a log x axis, from `logHistogramRows` output. */
export function logHistogramChart(rows: readonly Row[], o: Common & { groupTitle?: string; groupOrder?: string[] } = {}): TopLevelSpec {
  return {
    ...specHead(rows, o),
    width: o.width ?? 480,
    height: o.height ?? 300,
    mark: { type: 'rect', opacity: 0.45, strokeWidth: 0 },
    encoding: {
      x: { field: 'lo', type: 'quantitative', title: o.xTitle ?? 'value', scale: { type: 'log' } },
      x2: { field: 'hi' },
      y: { field: 'density', type: 'quantitative', title: o.yTitle ?? 'density (per decade)', stack: null },
      color: { field: 'group', type: 'nominal', title: o.groupTitle ?? 'group', ...(o.groupOrder ? { sort: o.groupOrder } : {}) },
    },
  } as TopLevelSpec;
}

/**
 * Ridgeline: one filled curve per group (e.g. generation), stacked vertically with overlap, from
 * `logHistogramRows`-like rows (`x`, `y`, `group` fields configurable).
 */
export function ridgelineChart(
  rows: readonly Row[],
  o: Common & { x?: string; y?: string; group?: string; groupTitle?: string; groupOrder?: string[]; rowHeight?: number; overlap?: number },
): TopLevelSpec {
  const x = o.x ?? 'lo';
  const y = o.y ?? 'density';
  const group = o.group ?? 'group';
  const h = o.rowHeight ?? 28;
  const overlap = o.overlap ?? 1.6;
  return {
    ...specHead(rows, o),
    bounds: 'flush',
    spacing: 0,
    facet: { row: { field: group, type: 'ordinal', ...(o.groupOrder ? { sort: o.groupOrder } : {}), title: o.groupTitle ?? group, header: { labelAngle: 0, labelAlign: 'left', labelPadding: 4 } } },
    spec: {
      width: o.width ?? 440,
      height: h,
      mark: { type: 'area', interpolate: 'monotone', fillOpacity: 0.75, stroke: '#444', strokeWidth: 0.6 },
      encoding: {
        x: { field: x, type: 'quantitative', title: o.xTitle ?? x, scale: scaleOf(o.logX), axis: { grid: false } },
        // Range beyond the row's top makes neighbouring curves overlap; numbers, since `height` is not
        // the cell's height inside a facet.
        y: { field: y, type: 'quantitative', axis: null, stack: null, scale: { range: [h, -overlap * h] } },
        fill: { field: group, type: 'ordinal', legend: null, scale: { scheme: 'viridis' }, ...(o.groupOrder ? { sort: o.groupOrder } : {}) },
      },
    },
    config: { view: { stroke: null } },
  } as unknown as TopLevelSpec;
}

/** Scatter plot; optional `series` colours, optional small-multiple `facet` field. */
export function scatterChart(
  rows: readonly Row[],
  o: Common & { x: string; y: string; series?: string; facet?: string; columns?: number; size?: number; opacity?: number },
): TopLevelSpec {
  const enc = {
    x: { field: o.x, type: 'quantitative', title: o.xTitle ?? o.x, scale: scaleOf(o.logX) },
    y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: scaleOf(o.logY) },
    ...(o.series ? { color: seriesColor(rows, o.series) } : {}),
  };
  const mark = { type: 'circle', size: o.size ?? 12, opacity: o.opacity ?? 0.6 };
  const base = {
    ...specHead(rows, o),
  };
  if (o.facet) {
    return {
      ...base,
      facet: { field: o.facet, type: 'ordinal', title: o.facet },
      columns: o.columns ?? 3,
      spec: { width: o.width ?? 200, height: o.height ?? 200, mark, encoding: enc },
    } as unknown as TopLevelSpec;
  }
  return { ...base, width: o.width ?? 420, height: o.height ?? 320, mark, encoding: enc } as unknown as TopLevelSpec;
}

/** Grouped bars: `x` categories, `y` values, one bar per `series` inside each category. */
export function barChart(rows: readonly Row[], o: Common & { x: string; y: string; series?: string }): TopLevelSpec {
  return {
    ...specHead(rows, o),
    width: o.width ?? 420,
    height: o.height ?? 280,
    mark: 'bar',
    encoding: {
      x: { field: o.x, type: 'nominal', title: o.xTitle ?? o.x },
      y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, ...(o.logY ? { scale: { type: 'log' } } : {}) },
      ...(o.series ? { xOffset: { field: o.series, sort: seriesColor(rows, o.series).sort }, color: seriesColor(rows, o.series) } : {}),
    },
  } as TopLevelSpec;
}
