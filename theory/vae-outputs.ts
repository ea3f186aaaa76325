// Files of the VAE experiment: per-generation table (CSV + JSON), the latent means of each grid, summary.json,
// and figures: one 10 x 10 sample grid per generation (PNG written directly, SVG wrapping it), all grids side by
// side, the distribution of the original encoder's latent means per generation, and the collapse measures.
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { encodeGrayPng } from '../util/png.js';
import { lineBandChart, renderFigure, renderFigureWithData, renderPng, scatterChart, writeData, type Row } from '../figures/plot.js';
import { GRID, type VaeResult } from './vae.js';

export interface VaeOutputOptions {
  figures?: boolean;
}

const GAP = 2;

/** A grid of images [n, h, w] (values in [0, 1], white on black as the notebook shows them), `scale` pixels per pixel. */
export function imageGrid(images: Float32Array, h: number, w: number, o: { columns?: number; scale?: number } = {}): { pixels: Uint8Array; width: number; height: number } {
  const n = images.length / (h * w);
  const cols = o.columns ?? 10;
  const rows = Math.ceil(n / cols);
  const s = o.scale ?? Math.max(1, Math.round(48 / Math.max(h, w)));
  const width = cols * (w * s + GAP) + GAP;
  const height = rows * (h * s + GAP) + GAP;
  const pixels = new Uint8Array(width * height).fill(96); // grey frame between tiles
  for (let i = 0; i < n; i++) {
    const ox = GAP + (i % cols) * (w * s + GAP);
    const oy = GAP + Math.floor(i / cols) * (h * s + GAP);
    for (let y = 0; y < h * s; y++) {
      for (let x = 0; x < w * s; x++) {
        const v = images[i * h * w + Math.floor(y / s) * w + Math.floor(x / s)]!;
        pixels[(oy + y) * width + ox + x] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return { pixels, width, height };
}

const escapeXml = (s: string): string => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** SVG of labelled PNG panels laid out in `columns`. */
function panelsSvg(panels: { title: string; png: Uint8Array; width: number; height: number }[], columns: number, heading: string): string {
  const pad = 12;
  const titleH = 22;
  const headH = heading ? 30 : 0;
  const cw = Math.max(...panels.map((p) => p.width));
  const ch = Math.max(...panels.map((p) => p.height));
  const rows = Math.ceil(panels.length / columns);
  const W = pad + columns * (cw + pad);
  const H = headH + pad + rows * (ch + titleH + pad);
  const body = panels.map((p, i) => {
    const x = pad + (i % columns) * (cw + pad);
    const y = headH + pad + Math.floor(i / columns) * (ch + titleH + pad);
    const href = `data:image/png;base64,${Buffer.from(p.png).toString('base64')}`;
    return (
      `<text x="${x}" y="${y + 15}" font-size="14" font-family="sans-serif">${escapeXml(p.title)}</text>` +
      `<image x="${x}" y="${y + titleH}" width="${p.width}" height="${p.height}" href="${href}" image-rendering="optimizeSpeed"/>`
    );
  });
  const head = heading ? `<text x="${pad}" y="20" font-size="15" font-weight="bold" font-family="sans-serif">${escapeXml(heading)}</text>` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="100%" height="100%" fill="white"/>${head}${body.join('')}</svg>\n`;
}

/** Coordinates of latent means [n, L] on the principal axes of the real digits' means. */
function project(means: Float32Array, res: VaeResult): number[][] {
  const L = res.options.latent;
  const { center, vectors } = res.axes;
  return Array.from({ length: means.length / L }, (_, i) => vectors.map((v) => v.reduce((s, x, j) => s + x * (means[i * L + j]! - center[j]!), 0)));
}

/** Histogram rows (density per unit) of `values` per group, on shared bins. */
function histogram(groups: { series: string; values: number[] }[], bins = 30): Row[] {
  const all = groups.flatMap((g) => g.values);
  let [lo, hi] = [Math.min(...all), Math.max(...all)];
  if (!(hi > lo)) [lo, hi] = [lo - 1, hi + 1];
  const width = (hi - lo) / bins;
  return groups.flatMap(({ series, values }) => {
    const counts = new Float64Array(bins);
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]! += 1;
    return [...counts].map((c, k): Row => ({ series, value: lo + (k + 0.5) * width, density: c / values.length / width }));
  });
}

export async function writeVae(res: VaeResult, out: string, o: VaeOutputOptions = {}): Promise<string[]> {
  const { height: h, width: w, latent: L } = res.options;
  const perGen: Row[] = res.generations.map((g) => ({
    generation: g.generation,
    train_loss: g.trainLoss,
    elbo_real: g.elbo,
    recon_real: g.recon,
    kl_real: g.kl,
    latent_trace: g.latentTrace,
    latent_logdet: g.latentLogDet,
    latent_std: g.latentStd,
    diversity: g.diversity,
  }));
  // The real held-out digits come first (generation -1), then each generation's samples; the table keeps the
  // first 100 of each (the grid), the histogram uses all.
  const sets = [{ generation: -1, label: 'real digits', means: res.realMeans }, ...res.generations.map((g) => ({ generation: g.generation, label: `generation ${g.generation}`, means: g.means }))];
  const projected = sets.map((s) => project(s.means, res));
  const means: Row[] = sets.flatMap((s, k) => {
    const pcs = projected[k]!.slice(0, GRID);
    return pcs.map((pc, i): Row => ({
      generation: s.generation,
      set: s.label,
      sample: i,
      pc1: pc[0] ?? null,
      pc2: pc[1] ?? null,
      ...Object.fromEntries(Array.from({ length: L }, (_, j) => [`mu_${j}`, s.means[i * L + j]!])),
    }));
  });
  writeData(perGen, join(out, 'per_generation'));
  writeData(means, join(out, 'latent_means'));
  const first = res.generations[0]!;
  const last = res.generations[res.generations.length - 1]!;
  writeJsonAtomic(join(out, 'summary.json'), {
    model: 'vae',
    options: res.options,
    reference: res.reference,
    first: perGen[0],
    final: perGen[perGen.length - 1],
    resumedGenerations: res.resumedGenerations,
    // Timings stay out of the tables, which a seed reproduces bit for bit.
    secondsPerGeneration: res.generations.map((g) => +g.seconds.toFixed(2)),
    note:
      'latent_* describe the generation-0 encoder means of each generation\'s decoded samples; elbo_real is per image on the real held-out digits (nats); ' +
      'diversity is the mean pairwise Euclidean pixel distance of the samples (pixels in [0, 1])',
  });
  if (o.figures !== false) {
    res.generations.forEach((g) => {
      const grid = imageGrid(g.grid, h, w);
      const png = encodeGrayPng(grid.pixels, grid.width, grid.height);
      const title = `generation ${g.generation}`;
      writeFileAtomic(join(out, `samples_gen${g.generation}.png`), png);
      writeFileAtomic(join(out, `samples_gen${g.generation}.svg`), panelsSvg([{ title, png, width: grid.width, height: grid.height }], 1, ''));
    });
    // All generations in one row, at half the pixel scale of the single grids.
    const small = res.generations.map((g) => {
      const grid = imageGrid(g.grid, h, w, { scale: Math.max(1, Math.round(24 / Math.max(h, w))) });
      return { title: `generation ${g.generation}`, png: encodeGrayPng(grid.pixels, grid.width, grid.height), width: grid.width, height: grid.height };
    });
    const all = panelsSvg(small, Math.min(6, small.length), `Decoded samples of each generation (${h}x${w}, latent ${L})`);
    writeFileAtomic(join(out, 'samples.svg'), all);
    writeFileAtomic(join(out, 'samples.png'), renderPng(all, { scale: 1 }));

    const hist = histogram(sets.map((s, k) => ({ series: s.label, values: projected[k]!.map((pc) => pc[0]!) })), 40);
    await renderFigureWithData(
      lineBandChart(hist, {
        x: 'value', y: 'density', series: 'series',
        title: `Original encoder: latent means of each generation's ${res.options.evalSamples} samples, on the real digits' first principal axis`,
        xTitle: 'first principal component of the latent means', yTitle: 'density',
      }),
      hist,
      join(out, 'latent_means_hist'),
    );
    if (res.axes.vectors.length >= 2) {
      await renderFigure(
        scatterChart(means, { x: 'pc1', y: 'pc2', facet: 'set', columns: 4, size: 14, width: 160, height: 160, title: 'Original encoder: latent means on the real digits\' two principal axes' }),
        join(out, 'latent_means_scatter'),
      );
    }
    const common = { x: 'generation', points: true, xTitle: 'generation' };
    await renderFigure(lineBandChart(perGen, { ...common, y: 'latent_trace', logY: true, title: 'Trace of the covariance of the original encoder\'s latent means', yTitle: 'trace (log scale)' }), join(out, 'latent_trace'));
    await renderFigure(lineBandChart(perGen, { ...common, y: 'diversity', title: 'Sample diversity: mean pairwise pixel distance', yTitle: 'mean L2 distance' }), join(out, 'diversity'));
    await renderFigure(lineBandChart(perGen, { ...common, y: 'elbo_real', title: 'ELBO on real held-out digits (per image)', yTitle: 'ELBO (nats)' }), join(out, 'elbo_real'));
  }
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : String(v));
  return [
    `vae: ${res.options.images} images ${h}x${w} (${res.options.train} train, ${res.options.holdout} held out), latent ${L}, capacity ${res.options.capacity}, ` +
      `${res.options.epochs} epochs x batch ${res.options.batch}, ${res.generations.length - 1} generations after generation 0` +
      (res.resumedGenerations ? ` (${res.resumedGenerations} read back from checkpoints)` : ''),
    '  gen  train_loss  elbo_real  latent_trace  latent_logdet  latent_std  diversity',
    ...res.generations.map(
      (g) =>
        `  ${String(g.generation).padStart(3)}  ${f(g.trainLoss, 2).padStart(10)}  ${f(g.elbo, 2).padStart(9)}  ${f(g.latentTrace, 4).padStart(12)}  ${f(g.latentLogDet, 1).padStart(13)}  ${f(g.latentStd).padStart(10)}  ${f(g.diversity).padStart(9)}`,
    ),
    `  real held-out digits: latent_trace ${f(res.reference.latentTrace, 4)}, latent_std ${f(res.reference.latentStd)}, diversity ${f(res.reference.diversity)}`,
    `  generation 0 -> ${last.generation}: latent trace ${f(first.latentTrace, 4)} -> ${f(last.latentTrace, 4)}, diversity ${f(first.diversity)} -> ${f(last.diversity)}, real ELBO ${f(first.elbo, 2)} -> ${f(last.elbo, 2)}`,
  ];
}
