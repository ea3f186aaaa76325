// Handwritten-digit images for the VAE experiment, as float pixels in [0, 1]:
//   - the bundled UCI 8x8 digits (datasets/digits/digits.csv.gz: 64 values 0..16 and a label per row);
//   - MNIST as IDX files (train-images-idx3-ubyte, optionally .gz);
//   - MNIST as the Hugging Face parquet (ylecun/mnist: an `image` struct whose `bytes` hold a PNG).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { decodePngGray } from '../util/png.js';

export interface ImageSet {
  /** Row-major [count, height, width], values in [0, 1]. */
  pixels: Float32Array;
  count: number;
  height: number;
  width: number;
  /** What was read, for summaries. */
  source: string;
}

/** The digits file shipped with the repository (CC BY 4.0, see datasets/digits/README.md). */
export const BUNDLED_DIGITS = fileURLToPath(new URL('./digits/digits.csv.gz', import.meta.url));

const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const IDX_UBYTE_3D = 0x00000803;

/** UCI digits CSV: 64 pixel values 0..16 then the label, no header. */
export function parseDigitsCsv(text: string, what: string): ImageSet {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (!lines.length) throw new Error(`${what}: no rows`);
  const pixels = new Float32Array(lines.length * 64);
  lines.forEach((line, r) => {
    const cells = line.split(',');
    if (cells.length !== 65) throw new Error(`${what}: row ${r + 1} has ${cells.length} values; the digits format has 64 pixels and a label`);
    for (let i = 0; i < 64; i++) {
      const v = Number(cells[i]);
      if (!Number.isInteger(v) || v < 0 || v > 16) throw new Error(`${what}: row ${r + 1}, pixel ${i} is '${cells[i]}', not an integer 0..16`);
      pixels[r * 64 + i] = v / 16;
    }
  });
  return { pixels, count: lines.length, height: 8, width: 8, source: what };
}

/** IDX image file (magic 0x00000803: unsigned bytes, [count, rows, cols]), pixels 0..255. */
export function parseIdxImages(bytes: Uint8Array, what: string): ImageSet {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 16 || view.getUint32(0) !== IDX_UBYTE_3D) {
    const magic = bytes.length >= 4 ? `0x${view.getUint32(0).toString(16).padStart(8, '0')}` : 'none';
    throw new Error(`${what}: not an IDX image file (magic ${magic}, expected 0x00000803 as in train-images-idx3-ubyte)`);
  }
  const count = view.getUint32(4);
  const height = view.getUint32(8);
  const width = view.getUint32(12);
  const n = count * height * width;
  if (bytes.length < 16 + n) throw new Error(`${what}: truncated (${bytes.length - 16} pixel bytes for ${count} images of ${height}x${width})`);
  const pixels = new Float32Array(n);
  for (let i = 0; i < n; i++) pixels[i] = bytes[16 + i]! / 255;
  return { pixels, count, height, width, source: what };
}

/** Hugging Face MNIST parquet: column `image` = {bytes: PNG, path}. */
export async function readImageParquet(path: string): Promise<ImageSet> {
  const { asyncBufferFromFile, parquetReadObjects } = await import('hyparquet');
  const { compressors } = await import('hyparquet-compressors');
  let rows: Record<string, unknown>[];
  try {
    // utf8: false, or unannotated byte arrays (the PNG bytes) come back as lossy strings.
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(path), columns: ['image'], compressors, utf8: false });
  } catch (e) {
    throw new Error(`cannot read parquet file ${path}: ${(e as Error).message}`);
  }
  if (!rows.length) throw new Error(`${path}: the parquet file has no rows`);
  let height = 0;
  let width = 0;
  let pixels = new Float32Array(0);
  rows.forEach((r, i) => {
    const img = r.image as { bytes?: unknown } | undefined;
    if (!img || !(img.bytes instanceof Uint8Array)) throw new Error(`${path}: row ${i} has no column image.bytes (the layout of ylecun/mnist)`);
    const png = decodePngGray(img.bytes, `${path}: row ${i}`);
    if (i === 0) {
      ({ height, width } = png);
      pixels = new Float32Array(rows.length * height * width);
    } else if (png.height !== height || png.width !== width) {
      throw new Error(`${path}: row ${i} is ${png.height}x${png.width}, row 0 is ${height}x${width}`);
    }
    const o = i * height * width;
    for (let k = 0; k < png.pixels.length; k++) pixels[o + k] = png.pixels[k]! / 255;
  });
  return { pixels, count: rows.length, height, width, source: path };
}

/** Reads digits from a file, recognised by content: parquet, IDX (optionally gzipped) or the digits CSV (optionally gzipped). */
export async function loadDigitImages(path = BUNDLED_DIGITS): Promise<ImageSet> {
  if (!existsSync(path)) throw new Error(`--data ${path}: no such file (give the digits CSV, an MNIST IDX file or an MNIST parquet file)`);
  if (statSync(path).isDirectory()) throw new Error(`--data ${path} is a directory: name the file itself, e.g. ${path}/train-images-idx3-ubyte.gz`);
  const raw = readFileSync(path);
  if (raw.subarray(0, 4).toString('latin1') === 'PAR1') return readImageParquet(path);
  let bytes: Uint8Array = raw;
  if (isGzip(raw)) {
    try {
      bytes = gunzipSync(raw);
    } catch (e) {
      throw new Error(`--data ${path}: broken gzip stream (${(e as Error).message})`);
    }
  }
  if (bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0) return parseIdxImages(bytes, path);
  return parseDigitsCsv(new TextDecoder().decode(bytes), path);
}
