// The hub snapshot path, against a local HTTP server on the loopback address that serves a repository in
// the hub's URL layout (/REPO/resolve/REVISION/FILE), and offline.
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubSnapshot, isHubId } from '../../models/hub.js';
import { importHfCheckpoint, readWeights, writeModelDir } from '../../models/model-dir/index.js';
import { initOptWeights } from '../../models/opt/index.js';
import { TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { openModelDir } from '../../models/model-dir/index.js';
import { sharedPath } from '../helpers/shared.js';

const llamaKv = sharedPath('models/llama-tiny-kv-optimum-layout-opset17');

describe('hub snapshots', () => {
  const repoDir = mkdtempSync(join(tmpdir(), 'hub-repo-'));
  let server: Server;
  let endpoint = '';
  const requests: string[] = [];

  beforeAll(async () => {
    writeModelDir(repoDir, { config: TINY_CONFIG, weights: initOptWeights(TINY_CONFIG, 3), tokenizerFiles: tinyTokenizerFiles() });
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      // org/tiny-opt: the whole model (top-level files); org/bin-only: a config but no safetensors (a
      // pytorch_model.bin repo); org/onnx-llama: an onnx-community-style repository (onnx/model.onnx, no safetensors)
      const m = /^\/org\/(tiny-opt|bin-only|onnx-llama)\/resolve\/main\/([\w.\/-]+)$/.exec(req.url ?? '');
      const file = !m ? '' : m[1] === 'onnx-llama' ? (llamaKv ? join(llamaKv, m[2]!) : '') : m[2]!.includes('/') ? '' : join(repoDir, m[2]!);
      if (!m || !file || !existsSync(file) || (m[1] === 'bin-only' && m[2] !== 'config.json')) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    endpoint = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads once into the cache, verifies it on reuse, and the snapshot imports', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    process.env.COLLAPSE_CACHE_DIR = cache;
    process.env.HF_ENDPOINT = endpoint;
    try {
      expect(isHubId('org/tiny-opt')).toBe(true);
      const dir = await hubSnapshot('org/tiny-opt');
      expect(readFileSync(join(dir, 'model.safetensors'))).toEqual(readFileSync(join(repoDir, 'model.safetensors')));
      const n = requests.length;
      expect(await hubSnapshot('org/tiny-opt')).toBe(dir);
      expect(requests.length).toBe(n); // second call: no request
      const out = join(cache, 'imported');
      importHfCheckpoint(dir, out);
      const a = readWeights(out);
      const b = readWeights(repoDir);
      for (const [k, v] of b) expect(a.get(k), k).toEqual(v);
      expect(readdirSync(dir)).toContain('tokenizer.json');
    } finally {
      delete process.env.COLLAPSE_CACHE_DIR;
      delete process.env.HF_ENDPOINT;
    }
  });

  it('offline, the error says how to use local files', async () => {
    process.env.COLLAPSE_CACHE_DIR = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
    try {
      await expect(hubSnapshot('facebook/opt-125m', { timeoutMs: 5000 })).rejects.toThrow(/cannot download facebook\/opt-125m .*--set model\.base=DIR/s);
    } finally {
      delete process.env.COLLAPSE_CACHE_DIR;
      delete process.env.HF_ENDPOINT;
    }
  });

  it('a repository without model.safetensors explains the conversion', async () => {
    process.env.COLLAPSE_CACHE_DIR = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    process.env.HF_ENDPOINT = endpoint;
    try {
      await expect(hubSnapshot('org/bin-only')).rejects.toThrow(/org\/bin-only has no model\.safetensors .*safe_serialization=True/s);
      await expect(hubSnapshot('org/missing')).rejects.toThrow(/org\/missing has no config\.json/);
    } finally {
      delete process.env.COLLAPSE_CACHE_DIR;
      delete process.env.HF_ENDPOINT;
    }
  });

  it.skipIf(!llamaKv)('an onnx-community-style repository arrives with its ONNX graph and runs as it is', async () => {
    process.env.COLLAPSE_CACHE_DIR = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    process.env.HF_ENDPOINT = endpoint;
    try {
      const dir = await hubSnapshot('org/onnx-llama');
      expect(readFileSync(join(dir, 'onnx/model.onnx')).equals(readFileSync(join(llamaKv!, 'onnx/model.onnx')))).toBe(true); // (toEqual is slow on 13 MB)
      expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
      const md = openModelDir(dir);
      expect([md.config.family, md.graphs[0]!.lm.kv?.kvHeads]).toEqual(['llama', 2]);
      expect(await hubSnapshot('org/onnx-llama')).toBe(dir); // verified from the cache on reuse
    } finally {
      delete process.env.COLLAPSE_CACHE_DIR;
      delete process.env.HF_ENDPOINT;
    }
  });
});
