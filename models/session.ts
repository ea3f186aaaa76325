// A thin layer over onnxruntime-node: execution-provider choice, thread count, and tensor helpers.
// Inputs are passed to onnxruntime without copying (ort.Tensor wraps the typed array); outputs come back
// as freshly allocated arrays, so large state should stay inside a graph rather than round-trip.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto, TypedArray } from './onnx/proto.js';
import { encodeModel } from './onnx/proto.js';
import type { Provider } from './session-options.js';

export type { Provider } from './session-options.js';

export interface SessionConfig {
  provider?: Provider;
  /** Intra-op threads (0 or none: onnxruntime's choice, all cores). */
  threads?: number;
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device id. */
  deviceId?: number;
  /** onnxruntime's CPU memory arena (default on). Training turns it off when glibc keeps large blocks itself (util/malloc.ts). */
  memArena?: boolean;
  /** onnxruntime's memory-pattern planning (default on): preallocates one block for all intermediates. */
  memPattern?: boolean;
  /** Whether idle intra-op threads spin (default on). Sessions that run in turn on the same cores (training's
   *  gradient and update graphs) turn it off: one session's spinning threads would steal the other's cores. */
  spinning?: boolean;
}

export type Feeds = Record<string, ort.Tensor>;
export type { ort };

function sessionOptions(cfg: SessionConfig): ort.InferenceSession.SessionOptions {
  const provider = cfg.provider ?? 'cpu';
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: cfg.deviceId ?? 0 }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: cfg.optimization ?? 'all',
    enableCpuMemArena: cfg.memArena ?? true,
    enableMemPattern: cfg.memPattern ?? true,
    logSeverityLevel: 3,
  };
  if (cfg.spinning === false) opts.extra = { 'session.intra_op.allow_spinning': '0' };
  if (cfg.threads && cfg.threads > 0) {
    opts.intraOpNumThreads = cfg.threads;
    opts.interOpNumThreads = 1;
  }
  return opts;
}

const CUDA_HELP =
  'Install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` ' +
  '(the environment variable overrides .npmrc) on a machine with CUDA 12 and cuDNN 9, or use --provider cpu';

/** Whether onnxruntime-node's CUDA provider library is installed (npm ci skips its download). */
export function cudaProviderInstalled(): boolean {
  const root = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const bin = join(root, 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(bin) && readdirSync(bin).some((f) => f.startsWith('libonnxruntime_providers_cuda'));
}

/** Opens a session on a model file (external data is resolved beside it) or on an in-memory model. */
export async function openSession(model: string | ModelProto | Uint8Array, cfg: SessionConfig = {}): Promise<ort.InferenceSession> {
  const opts = sessionOptions(cfg);
  if (cfg.provider === 'cuda' && !cudaProviderInstalled()) {
    throw new Error(`the CUDA execution provider of onnxruntime-node is not installed. ${CUDA_HELP}`);
  }
  if (typeof model === 'string' && !existsSync(model)) throw new Error(`ONNX model not found: ${model}`);
  try {
    if (typeof model === 'string') return await ort.InferenceSession.create(model, opts);
    const bytes = model instanceof Uint8Array ? model : encodeModel(model);
    return await ort.InferenceSession.create(bytes, opts);
  } catch (e) {
    const msg = (e as Error).message;
    if (cfg.provider === 'cuda' && /cuda|provider|libonnxruntime_providers/i.test(msg)) {
      throw new Error(`the CUDA execution provider could not be loaded (${msg}). ${CUDA_HELP}`);
    }
    throw new Error(`could not open ONNX model${typeof model === 'string' ? ` ${model}` : ''}: ${msg}`);
  }
}

export function tensor(type: 'float32', data: Float32Array, dims: readonly number[]): ort.Tensor;
export function tensor(type: 'float64', data: Float64Array, dims: readonly number[]): ort.Tensor;
export function tensor(type: 'int64', data: BigInt64Array, dims: readonly number[]): ort.Tensor;
export function tensor(type: 'int32', data: Int32Array, dims: readonly number[]): ort.Tensor;
export function tensor(type: 'bool', data: Uint8Array, dims: readonly number[]): ort.Tensor;
export function tensor(type: string, data: TypedArray, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(type as 'float32', data as Float32Array, dims);
}

export const f32 = (data: Float32Array, dims: readonly number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
export const i64 = (data: BigInt64Array | readonly number[], dims: readonly number[]): ort.Tensor =>
  new ort.Tensor('int64', data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v)), dims);

/** Float data of an output tensor. */
export function floatData(t: ort.Tensor | undefined, name = 'output'): Float32Array {
  if (!t) throw new Error(`session did not return ${name}`);
  if (t.type !== 'float32') throw new Error(`${name}: expected float32, got ${t.type}`);
  return t.data as Float32Array;
}
