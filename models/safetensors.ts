// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header size,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {..}} and one byte buffer
// that the tensors index without holes or overlaps. No maintained Node library exists for it, so this is
// the format in ~200 lines: reading F32/F16/BF16/F64 (as Float32Array), I64 and I32; writing F32/I64/I32.
// Every check names the file and the tensor, so that a truncated download is obvious.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.js';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32';
const DTYPE_BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };
const MAX_HEADER = 100_000_000; // the reference implementation's limit

export interface SafeTensorInfo {
  dtype: SafeDtype;
  shape: number[];
  /** Byte range inside the data buffer (which starts right after the header). */
  begin: number;
  end: number;
}

export interface SafeHeader {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensorInfo>;
  /** File offset of the data buffer. */
  dataStart: number;
}

/** Float tensors come back as Float32Array (F16/BF16/F64 converted); integer tensors keep their width. */
export type SafeData = Float32Array | BigInt64Array | Int32Array;
export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: SafeData;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function parseHeader(path: string, json: string, dataSize: number): Omit<SafeHeader, 'dataStart'> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(`${path}: corrupt safetensors header, not valid JSON (${(e as Error).message}); re-download or re-export the file`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${path}: corrupt safetensors header, not a JSON object`);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensorInfo>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, m] of Object.entries((v ?? {}) as Record<string, unknown>)) {
        if (typeof m !== 'string') throw new Error(`${path}: __metadata__.${k} is not a string`);
        metadata[k] = m;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
      throw new Error(`${path}: tensor ${name} has dtype ${JSON.stringify(e?.dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    const dtype = e.dtype as SafeDtype;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`${path}: tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0])
      throw new Error(`${path}: tensor ${name} has invalid data_offsets ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    const want = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (end - begin !== want)
      throw new Error(`${path}: tensor ${name} (${dtype} [${shape}]) needs ${want} bytes but data_offsets span ${end - begin}`);
    if (end > dataSize)
      throw new Error(
        `${path} is truncated: tensor ${name} needs data bytes ${begin}..${end} but the file holds ${dataSize}; re-download or re-export it`,
      );
    tensors.set(name, { dtype, shape: shape as number[], begin, end });
  }
  // The buffer must be indexed entirely, without holes or overlaps.
  const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin);
  let at = 0;
  for (const [name, t] of spans) {
    if (t.begin !== at)
      throw new Error(`${path}: corrupt safetensors file, tensor ${name} starts at byte ${t.begin} where ${at} was expected (hole or overlap)`);
    at = t.end;
  }
  if (at !== dataSize) throw new Error(`${path}: corrupt safetensors file, ${dataSize - at} bytes after the last tensor`);
  return { metadata, tensors };
}

function readAt(fd: number, length: number, position: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function withFile<T>(path: string, f: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`cannot open safetensors file ${path}: ${(e as Error).message}`);
  }
  try {
    return f(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function headerOf(path: string, fd: number, size: number): SafeHeader {
  if (size < 8) throw new Error(`${path}: ${size} bytes is too small for a safetensors file (truncated?)`);
  const n = Number(new DataView(readAt(fd, 8, 0).slice().buffer).getBigUint64(0, true));
  if (n > MAX_HEADER) throw new Error(`${path}: corrupt safetensors file, header size ${n} is implausible (not a safetensors file?)`);
  if (8 + n > size) throw new Error(`${path} is truncated: its header needs ${n} bytes but only ${size - 8} follow`);
  const json = new TextDecoder().decode(readAt(fd, n, 8));
  return { ...parseHeader(path, json, size - 8 - n), dataStart: 8 + n };
}

/** The header of a safetensors file (names, dtypes, shapes) without reading the data. */
export function readSafetensorsHeader(path: string): SafeHeader {
  return withFile(path, (fd, size) => headerOf(path, fd, size));
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(dtype: SafeDtype, bytes: Uint8Array): SafeData {
  const buf = bytes.slice().buffer; // aligned copy
  switch (dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F64': return Float32Array.from(new Float64Array(buf));
    case 'I64': return new BigInt64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'F16': {
      const h = new Uint16Array(buf);
      const out = new Float32Array(h.length);
      for (let k = 0; k < h.length; k++) out[k] = halfToFloat(h[k]!);
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(buf);
      const bits = new Uint32Array(h.length);
      for (let k = 0; k < h.length; k++) bits[k] = h[k]! << 16;
      return new Float32Array(bits.buffer);
    }
  }
}

/** Reads all tensors (or only `names`) of a safetensors file. */
export function readSafetensors(path: string, names?: readonly string[]): { metadata: Record<string, string>; tensors: Map<string, SafeTensor> } {
  return withFile(path, (fd, size) => {
    const header = headerOf(path, fd, size);
    const tensors = new Map<string, SafeTensor>();
    for (const name of names ?? [...header.tensors.keys()]) {
      const info = header.tensors.get(name);
      if (!info) throw new Error(`${path}: no tensor named ${name}`);
      const bytes = readAt(fd, info.end - info.begin, header.dataStart + info.begin);
      if (bytes.length !== info.end - info.begin) throw new Error(`${path} is truncated while reading tensor ${name}`);
      tensors.set(name, { dtype: info.dtype, shape: info.shape, data: decode(info.dtype, bytes) });
    }
    return { metadata: header.metadata, tensors };
  });
}

export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

function dtypeOf(data: TensorToWrite['data']): SafeDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof BigInt64Array) return 'I64';
  return 'I32';
}

/** Writes tensors (in the given order) atomically; `metadata` goes to `__metadata__` (string values). */
export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`writeSafetensors ${path}: "__metadata__" is not a valid tensor name`);
    if (numel(t.shape) !== t.data.length)
      throw new Error(`writeSafetensors ${path}: tensor ${name} has ${t.data.length} values but shape [${t.shape}]`);
    header[name] = { dtype: dtypeOf(t.data), shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // keeps the data 8-byte aligned, as the reference does
  const jsonBytes = Buffer.from(json);
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  writeFileAtomic(path, [size, jsonBytes, ...entries.map(([, t]) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
}
