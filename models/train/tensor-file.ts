// Float32 tensor maps on disk in the safetensors layout (8-byte header length, JSON header, raw data), used for
// checkpoints, artifact weights and best-epoch weights. Written atomically; reads check sizes.
import { closeSync, openSync, readSync, fstatSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../../util/atomic.js';

export type TensorMap = Map<string, Float32Array>;

export interface TensorEntry {
  data: Float32Array;
  shape: readonly number[];
}

/** Writes tensors (name → data + shape) and string metadata atomically. */
export function writeTensorFile(path: string, tensors: Iterable<[string, TensorEntry]>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align data to 8 bytes
  const head = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  writeFileAtomic(path, [len, head, ...parts]);
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

function readHeader(fd: number, path: string): { header: Header; hlen: number; size: number } {
  const size = fstatSync(fd).size;
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const hlen = Number(lenBuf.readBigUInt64LE());
  if (8 + hlen > size) throw new Error(`${path} is truncated or not a safetensors file (header of ${hlen} bytes in a ${size}-byte file)`);
  const hbuf = Buffer.alloc(hlen);
  readSync(fd, hbuf, 0, hlen, 8);
  try {
    return { header: JSON.parse(hbuf.toString('utf8')) as Header, hlen, size };
  } catch (e) {
    throw new Error(`${path}: its header is not valid JSON (${(e as Error).message}); the file is damaged`);
  }
}

/** The string metadata of a tensor file, without reading its tensors. */
export function readTensorFileMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    return (readHeader(fd, path).header.__metadata__ ?? {}) as unknown as Record<string, string>;
  } finally {
    closeSync(fd);
  }
}

/** Reads a tensor file written by writeTensorFile (or any F32 safetensors file). */
export function readTensorFile(path: string): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new Error(`tensor file not found: ${path}`);
  const fd = openSync(path, 'r');
  try {
    const { header, hlen, size } = readHeader(fd, path);
    const metadata = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
    const tensors = new Map<string, TensorEntry>();
    for (const [name, h] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      if (h.dtype !== 'F32') throw new Error(`${path}: tensor ${name} has dtype ${h.dtype}; only F32 is supported here`);
      const [a, b] = h.data_offsets;
      if (8 + hlen + b > size) throw new Error(`${path} is truncated: tensor ${name} needs bytes up to ${8 + hlen + b} of ${size}`);
      const data = new Float32Array((b - a) / 4);
      readSync(fd, new Uint8Array(data.buffer), 0, b - a, 8 + hlen + a);
      tensors.set(name, { data, shape: h.shape });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}
