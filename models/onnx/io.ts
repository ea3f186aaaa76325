// Saving and loading ONNX models with weights in an external-data file, so that models over protobuf's
// 2 GB message limit work, and so that onnxruntime can memory-map weights. Writes are atomic.
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, writeSync, fstatSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { tmpName } from '../../util/atomic.js';
import { decodeModel, encodeModel, onnx, type ModelProto, type TensorProto } from './proto.js';

export interface SaveOptions {
  /** Tensors with at least this many bytes go to the external file (default 1024). 0 disables external data. */
  externalThreshold?: number;
  /** External data file name, beside the model (default `<model file name>_data`, the Optimum convention). */
  externalName?: string;
}

const ALIGN = 64; // so that onnxruntime can map each tensor aligned

/** Writes `model` to `path`; large initializers go to an external data file. The model object is not changed. */
export function saveModel(model: ModelProto, path: string, opts: SaveOptions = {}): void {
  const threshold = opts.externalThreshold ?? 1024;
  const dataName = opts.externalName ?? `${basename(path)}_data`;
  const dataPath = join(dirname(path), dataName);
  const tmpModel = tmpName(path);
  const tmpData = tmpName(dataPath);
  const graph = model.graph!;
  const inits = graph.initializer as TensorProto[];
  const saved = inits.map((t) => ({ rawData: t.rawData, dataLocation: t.dataLocation, externalData: t.externalData }));
  let fd: number | null = null;
  let offset = 0;
  try {
    if (threshold > 0) {
      for (const t of inits) {
        if (!t.rawData || t.rawData.length < threshold) continue;
        if (fd === null) fd = openSync(tmpData, 'w');
        const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
        if (pad) writeSync(fd, new Uint8Array(pad));
        offset += pad;
        writeSync(fd, t.rawData);
        t.externalData = [
          onnx.StringStringEntryProto.create({ key: 'location', value: dataName }),
          onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
          onnx.StringStringEntryProto.create({ key: 'length', value: String(t.rawData.length) }),
        ];
        t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        offset += t.rawData.length;
        t.rawData = new Uint8Array(0);
      }
    }
    const bytes = encodeModel(model);
    const mfd = openSync(tmpModel, 'w');
    writeSync(mfd, bytes);
    closeSync(mfd);
    if (fd !== null) {
      closeSync(fd);
      fd = null;
      renameSync(tmpData, dataPath);
    } else if (existsSync(dataPath)) unlinkSync(dataPath);
    renameSync(tmpModel, path);
  } finally {
    if (fd !== null) closeSync(fd);
    inits.forEach((t, k) => Object.assign(t, saved[k]));
    for (const p of [tmpModel, tmpData]) if (existsSync(p)) unlinkSync(p);
  }
}

/** Reads a model and loads every external tensor into raw_data, checking that each lies inside its file. */
export function loadModel(path: string): ModelProto {
  if (!existsSync(path)) throw new Error(`ONNX model not found: ${path}`);
  let model: ModelProto;
  try {
    model = decodeModel(readFileSync(path));
  } catch (e) {
    throw new Error(`${path} is not a valid ONNX model (${(e as Error).message}); re-export or re-download it`);
  }
  const fds = new Map<string, { fd: number; size: number }>();
  try {
    for (const t of (model.graph?.initializer ?? []) as TensorProto[]) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
      const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
      const loc = join(dirname(path), kv.location ?? '');
      if (!fds.has(loc)) {
        if (!existsSync(loc)) throw new Error(`${path}: tensor ${t.name} refers to external data ${loc}, which is missing`);
        const fd = openSync(loc, 'r');
        fds.set(loc, { fd, size: fstatSync(fd).size });
      }
      const f = fds.get(loc)!;
      const off = Number(kv.offset ?? 0);
      const len = kv.length !== undefined ? Number(kv.length) : f.size - off;
      if (off + len > f.size)
        throw new Error(`${loc} is truncated: tensor ${t.name} needs bytes ${off}..${off + len} of a ${f.size}-byte file`);
      const buf = new Uint8Array(len);
      readSync(f.fd, buf, 0, len, off);
      t.rawData = buf;
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
    }
  } finally {
    for (const { fd } of fds.values()) closeSync(fd);
  }
  return model;
}
