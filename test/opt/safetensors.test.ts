// safetensors: round trip, F16/BF16 decoding of hand-built files, and clear errors on damaged files.
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../models/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'st-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file built byte by byte from the spec (independent of writeSafetensors). */
function handMade(path: string, header: object, data: Uint8Array, pad = 0): void {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([size, json, data]));
}

describe('safetensors', () => {
  it('round-trips F32, I64, I32 tensors and metadata bit for bit', () => {
    const p = join(dir, 'rt.safetensors');
    const a = Float32Array.from({ length: 7 * 3 }, (_, k) => Math.sin(k) * 1e3 + 1e-7 * k);
    a[4] = -0; a[5] = Number.MIN_VALUE; a[6] = 3.4028234663852886e38;
    const b = BigInt64Array.of(-(2n ** 62n), 0n, 42n);
    const c = Int32Array.of(-7, 2 ** 31 - 1);
    writeSafetensors(p, { 'x.weight': { shape: [7, 3], data: a }, ids: { shape: [3], data: b }, small: { shape: [1, 2], data: c } }, { format: 'pt' });
    const r = readSafetensors(p);
    expect(r.metadata).toEqual({ format: 'pt' });
    expect([...r.tensors.keys()]).toEqual(['x.weight', 'ids', 'small']);
    const x = r.tensors.get('x.weight')!;
    expect(x.shape).toEqual([7, 3]);
    expect(x.dtype).toBe('F32');
    expect(new Uint8Array((x.data as Float32Array).buffer)).toEqual(new Uint8Array(a.buffer));
    expect(r.tensors.get('ids')!.data).toEqual(b);
    expect(r.tensors.get('small')!.data).toEqual(c);
    // The layout is the spec's: u64 header length, then JSON padded to 8 bytes.
    const bytes = readFileSync(p);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: number[] }>;
    expect(header['x.weight']!.data_offsets).toEqual([0, 84]);
    expect(bytes.length).toBe(8 + n + 84 + 24 + 8);
    expect(readSafetensorsHeader(p).tensors.get('small')!.shape).toEqual([1, 2]);
  });

  it('decodes F16 and BF16 to float32', () => {
    const p = join(dir, 'half.safetensors');
    const f16 = Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x8000);
    const bf16 = Uint16Array.of(0x3f80, 0xc060, 0x4049);
    const data = new Uint8Array([...new Uint8Array(f16.buffer), ...new Uint8Array(bf16.buffer)]);
    handMade(p, { h: { dtype: 'F16', shape: [7], data_offsets: [0, 14] }, b: { dtype: 'BF16', shape: [3], data_offsets: [14, 20] } }, data, 3);
    const r = readSafetensors(p);
    expect(Array.from(r.tensors.get('h')!.data as Float32Array)).toEqual([1, -2, 0.5, 65504, 2 ** -24, Infinity, -0]);
    expect(Array.from(r.tensors.get('b')!.data as Float32Array)).toEqual([1, -3.5, 3.140625]);
  });

  it('reports a truncated file naming the file and the tensor', () => {
    const p = join(dir, 'trunc.safetensors');
    writeSafetensors(p, { first: { shape: [4], data: new Float32Array(4) }, 'model.decoder.last': { shape: [100], data: new Float32Array(100) } });
    const size = readFileSync(p).length;
    truncateSync(p, size - 10);
    expect(() => readSafetensors(p)).toThrow(/trunc\.safetensors is truncated: tensor model\.decoder\.last/);
    truncateSync(p, 20); // inside the header
    expect(() => readSafetensors(p)).toThrow(/trunc\.safetensors is truncated: its header/);
    truncateSync(p, 3);
    expect(() => readSafetensors(p)).toThrow(/too small/);
  });

  it('reports corrupt headers, bad offsets, holes and unknown dtypes', () => {
    const p = join(dir, 'bad.safetensors');
    writeFileSync(p, Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": {"dtype": ')]));
    expect(() => readSafetensors(p)).toThrow(/bad\.safetensors: corrupt safetensors header, not valid JSON/);
    writeFileSync(p, Buffer.from('PK\x03\x04 this is a zip file, not safetensors'));
    expect(() => readSafetensors(p)).toThrow(/implausible|truncated/);
    handMade(p, { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12));
    expect(() => readSafetensors(p)).toThrow(/tensor w \(F32 \[2,2\]\) needs 16 bytes but data_offsets span 12/);
    handMade(p, { w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8));
    expect(() => readSafetensors(p)).toThrow(/tensor w starts at byte 4 where 0 was expected/);
    handMade(p, { w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
    expect(() => readSafetensors(p)).toThrow(/tensor w has dtype "Q4"/);
    expect(() => readSafetensors(join(dir, 'missing.safetensors'))).toThrow(/cannot open safetensors file .*missing\.safetensors/);
  });
});
