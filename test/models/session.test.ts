import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { loadModel, saveModel } from '../../models/onnx/io.js';
import { DataType, tensorValues } from '../../models/onnx/proto.js';
import { cudaProviderInstalled, openSession, tensor } from '../../models/session.js';
import { mkdtempSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function smallModel() {
  const g = new GraphBuilder();
  const x = g.input('x', DataType.DOUBLE, [2, 3]);
  const w = g.initializer('w', [3, 2], Float64Array.from([1, 2, 3, 4, 5, 6]));
  g.output(g.op('MatMul', [x, w], {}, { outputs: ['y'] }), DataType.DOUBLE, [2, 2]);
  return g.model();
}

describe('ONNX io and sessions', () => {
  it('external data round trip, and the session computes x @ w', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'io-'));
    const path = join(dir, 'm.onnx');
    saveModel(smallModel(), path, { externalThreshold: 16 });
    expect(statSync(`${path}_data`).size).toBeGreaterThanOrEqual(48);
    const back = loadModel(path);
    expect(Array.from(tensorValues(back.graph!.initializer![0]!) as Float64Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const s = await openSession(path, { threads: 1 });
    const out = await s.run({ x: tensor('float64', Float64Array.from([1, 0, 0, 0, 1, 1]), [2, 3]) });
    expect(Array.from(out.y!.data as Float64Array)).toEqual([1, 2, 8, 10]);
  });

  it('a truncated external data file is a clear error naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'io-'));
    const path = join(dir, 'm.onnx');
    saveModel(smallModel(), path, { externalThreshold: 16 });
    truncateSync(`${path}_data`, 10);
    expect(() => loadModel(path)).toThrow(/m\.onnx_data is truncated: tensor w/);
  });

  it.skipIf(cudaProviderInstalled())('asking for CUDA without the provider says how to install it', async () => {
    await expect(openSession(smallModel(), { provider: 'cuda' })).rejects.toThrow(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });
});
