// The scoring-graph cache is shared by every process on the machine (parallel runs, test workers): it keeps
// the KEEP most recently used entries, never evicts one used in the last minutes (another process may be
// about to open it), and leaves other processes' temporary folders alone.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/onnx/graph.js';
import { saveModel } from '../../models/onnx/io.js';
import { DataType } from '../../models/onnx/proto.js';
import { cachedNllGraph } from '../../pipeline/eval/scoring-graph.js';

const tmp = mkdtempSync(join(tmpdir(), 'scoring-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A forward graph with the causal-LM interface: logits = embedding(input_ids) x head. */
function writeForward(path: string, V = 7, H = 3): void {
  const g = new GraphBuilder();
  g.input('input_ids', DataType.INT64, ['batch', 'seq']);
  g.input('attention_mask', DataType.INT64, ['batch', 'seq']);
  const E = g.initializer('embed', [V, H], Float32Array.from({ length: V * H }, (_, i) => Math.sin(i)));
  const W = g.initializer('head', [H, V], Float32Array.from({ length: H * V }, (_, i) => Math.cos(i)));
  g.op('MatMul', [g.op('Gather', [E, 'input_ids'], { axis: 0 }), W], {}, { outputs: ['logits'] });
  g.output('logits', DataType.FLOAT, ['batch', 'seq', V]);
  saveModel(g.model(), path);
}

describe('scoring-graph cache', () => {
  it('evicts only old entries beyond the eight newest, never a recent one or a temporary folder', async () => {
    const cache = join(tmp, 'nll');
    mkdirSync(cache, { recursive: true });
    const hourAgo = new Date(Date.now() - 3600_000);
    // 10 entries unused for an hour, 3 used just now, 1 temporary folder of another process (old too).
    const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
    const recent = ['recent0', 'recent1', 'recent2'];
    for (const [i, f] of old.entries()) {
      mkdirSync(join(cache, f));
      const t = new Date(hourAgo.getTime() - i * 1000); // old0 the most recently used of them
      utimesSync(join(cache, f), t, t);
    }
    for (const f of recent) mkdirSync(join(cache, f));
    const foreignTmp = 'abc.tmp-999999-xyz';
    mkdirSync(join(cache, foreignTmp));
    utimesSync(join(cache, foreignTmp), hourAgo, hourAgo);

    const forward = join(tmp, 'model.onnx');
    writeForward(forward);
    const path = await cachedNllGraph(forward, { cacheDir: cache });
    expect(existsSync(path)).toBe(true);
    const left = readdirSync(cache).sort();
    // Eight newest: the new entry, the 3 recent ones and old0..old3; old4..old9 go; the temporary folder stays.
    const kept = [...recent, 'old0', 'old1', 'old2', 'old3', foreignTmp, path.split('/').at(-2)!].sort();
    expect(left).toEqual(kept);
    // A second call finds the entry (no rebuild) and evicts nothing more.
    expect(await cachedNllGraph(forward, { cacheDir: cache })).toBe(path);
    expect(readdirSync(cache).sort()).toEqual(kept);
  });

  it('keeps recent entries even beyond eight, since another process may be about to open them', async () => {
    const cache = join(tmp, 'nll-busy');
    mkdirSync(cache, { recursive: true });
    for (let i = 0; i < 12; i++) mkdirSync(join(cache, `busy${i}`));
    const forward = join(tmp, 'model2.onnx');
    writeForward(forward, 5, 2);
    await cachedNllGraph(forward, { cacheDir: cache });
    expect(readdirSync(cache)).toHaveLength(13);
  });
});
