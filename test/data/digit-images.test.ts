import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_DIGITS, loadDigitImages } from '../../datasets/digit-images.js';
import { decodePngGray, encodeGrayPng } from '../../util/png.js';

const dir = mkdtempSync(join(tmpdir(), 'digits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Three 28x28 images whose pixel (r, c) of image i is (i * 31 + r * 7 + c) mod 256. */
const N = 3;
const pixel = (i: number, r: number, c: number): number => (i * 31 + r * 7 + c) % 256;
function images(): Uint8Array {
  const out = new Uint8Array(N * 28 * 28);
  for (let i = 0; i < N; i++) for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) out[(i * 28 + r) * 28 + c] = pixel(i, r, c);
  return out;
}

function idx(): Uint8Array {
  const head = new Uint8Array(16);
  const v = new DataView(head.buffer);
  v.setUint32(0, 0x803);
  v.setUint32(4, N);
  v.setUint32(8, 28);
  v.setUint32(12, 28);
  return Buffer.concat([head, images()]);
}

function expectTheImages(set: { pixels: Float32Array; count: number; height: number; width: number }): void {
  expect([set.count, set.height, set.width]).toEqual([N, 28, 28]);
  for (const [i, r, c] of [[0, 0, 0], [1, 3, 5], [2, 27, 27]] as const) expect(set.pixels[(i * 28 + r) * 28 + c]).toBe(Math.fround(pixel(i, r, c) / 255));
}

describe('digit images', () => {
  it('reads the bundled UCI digits: 1,797 images of 8x8, 0..16 scaled to [0, 1]', async () => {
    const d = await loadDigitImages(BUNDLED_DIGITS);
    expect([d.count, d.height, d.width]).toEqual([1797, 8, 8]);
    // First row of the file: 0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,... (a zero).
    expect([...d.pixels.subarray(0, 6)]).toEqual([0, 0, 5, 13, 9, 1].map((v) => v / 16));
    expect(Math.max(...d.pixels)).toBe(1);
  });

  it('reads MNIST IDX images, plain and gzipped', async () => {
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx());
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx()));
    expectTheImages(await loadDigitImages(join(dir, 'train-images-idx3-ubyte')));
    expectTheImages(await loadDigitImages(join(dir, 'train-images-idx3-ubyte.gz')));
  });

  it('reads the Hugging Face MNIST parquet (image struct with PNG bytes)', async () => {
    const { parquetWriteFile } = await import('hyparquet-writer');
    const all = images();
    const pngs = Array.from({ length: N }, (_, i) => encodeGrayPng(all.subarray(i * 784, (i + 1) * 784), 28, 28));
    const file = join(dir, 'train-00000-of-00001.parquet');
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: 'image', data: pngs.map((bytes, i) => ({ bytes, path: `${i}.png` })) },
        { name: 'label', data: [5n, 0n, 4n] },
      ],
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'image', num_children: 2, repetition_type: 'OPTIONAL' },
        { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
        { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'label', type: 'INT64', repetition_type: 'OPTIONAL' },
      ],
    });
    expectTheImages(await loadDigitImages(file));
  });

  it('PNG: decodes what it encodes, and RGB rows under each of the five filters', () => {
    const px = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
    expect(decodePngGray(encodeGrayPng(px, 4, 3)).pixels).toEqual(px);
    // 3x5 RGB, row y filtered with type y (None, Sub, Up, Average, Paeth), as PIL's encoder may choose.
    const W = 3, H = 5, bpp = 3;
    const rgb = Uint8Array.from({ length: W * H * bpp }, (_, i) => (i * 53 + 17) % 256);
    const at = (y: number, i: number): number => (y < 0 || i < 0 ? 0 : rgb[y * W * bpp + i]!);
    const raw: number[] = [];
    for (let y = 0; y < H; y++) {
      raw.push(y);
      for (let i = 0; i < W * bpp; i++) {
        const [a, b, c] = [at(y, i - bpp), at(y - 1, i), at(y - 1, i - bpp)];
        const pr = [0, a, b, (a + b) >> 1, Math.abs(b - c) <= Math.abs(a - c) && Math.abs(b - c) <= Math.abs(a + b - 2 * c) ? a : Math.abs(a - c) <= Math.abs(a + b - 2 * c) ? b : c][y]!;
        raw.push((at(y, i) - pr + 256) % 256);
      }
    }
    const gray = encodeGrayPng(new Uint8Array(W * H), W, H);
    // Swap the IHDR colour type to RGB (and its CRC) and the image data for ours.
    const ihdr = Buffer.from(gray.subarray(8, 33));
    ihdr[17] = 2;
    const crc = (b: Uint8Array) => { let c = ~0; for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1; } return ~c >>> 0; };
    ihdr.writeUInt32BE(crc(ihdr.subarray(4, 21)), 21);
    const z = deflateSync(Uint8Array.from(raw));
    const idat = Buffer.alloc(12 + z.length);
    idat.writeUInt32BE(z.length, 0);
    idat.write('IDAT', 4, 'latin1');
    idat.set(z, 8);
    idat.writeUInt32BE(crc(idat.subarray(4, 8 + z.length)), 8 + z.length);
    const png = Buffer.concat([gray.subarray(0, 8), ihdr, idat, gray.subarray(gray.length - 12)]);
    const want = Array.from({ length: W * H }, (_, p) => Math.round(0.299 * rgb[p * 3]! + 0.587 * rgb[p * 3 + 1]! + 0.114 * rgb[p * 3 + 2]!));
    expect([...decodePngGray(png).pixels]).toEqual(want);
    expect(() => decodePngGray(Uint8Array.of(1, 2, 3), 'x.png')).toThrow(/x.png: not a PNG/);
  });

  it('names the file and the problem in errors', async () => {
    await expect(loadDigitImages(join(dir, 'missing.gz'))).rejects.toThrow(/--data .*missing\.gz: no such file/);
    await expect(loadDigitImages(dir)).rejects.toThrow(/is a directory/);
    const bad = idx();
    bad[3] = 0x01; // labels magic (0x801) instead of images
    writeFileSync(join(dir, 'labels'), bad);
    await expect(loadDigitImages(join(dir, 'labels'))).rejects.toThrow(/not an IDX image file \(magic 0x00000801/);
    writeFileSync(join(dir, 'short'), idx().subarray(0, 100));
    await expect(loadDigitImages(join(dir, 'short'))).rejects.toThrow(/truncated/);
    writeFileSync(join(dir, 'bad.csv'), '1,2,3\n');
    await expect(loadDigitImages(join(dir, 'bad.csv'))).rejects.toThrow(/bad\.csv: row 1 has 3 values/);
  });
});
