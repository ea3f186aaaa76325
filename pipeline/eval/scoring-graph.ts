// The scoring graph of a forward model file (models/grad/loss.ts withNllHead: the forward plus the one NLL
// head, output `nll` [B, T-1]), built once per model and kept in the cache. Batch and sequence axes stay
// symbolic, so one graph serves every (batch, seq) and the cache holds one entry per model.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withNllHead } from '../../models/grad/loss.js';
import { ensureDir, writeDirAtomic, writeFileAtomic } from '../../util/atomic.js';
import { cacheDir } from '../../util/cache.js';
import { decodeModel, encodeModel } from '../../models/onnx/proto.js';

/** Part of the cache key: bump when the head changes, so that cached graphs are rebuilt. */
const HEAD_VERSION = 2;

function cacheKey(forwardPath: string): string {
  const h = createHash('sha1').update(`${HEAD_VERSION}|${forwardPath}`);
  for (const p of [forwardPath, `${forwardPath}_data`]) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    h.update(`|${st.size}|${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Scoring graphs kept in the cache (least recently used ones beyond this are removed). */
const KEEP = 8;

export const nllCacheRoot = (): string => join(cacheDir(), 'nll');

/**
 * Path of the scoring graph for a forward model file, built once and kept in the cache (not in the model
 * directory, which stays exactly what a user can publish), keyed by the size and mtime of the model and
 * its weights file so that a retrained model gets a fresh graph. The graph refers to the model's external
 * weights files, which are hard-linked beside it (copied across file systems): no weight is decoded.
 */
export async function cachedNllGraph(forwardPath: string, opts: { cacheDir?: string } = {}): Promise<string> {
  if (!existsSync(forwardPath)) throw new Error(`ONNX model not found: ${forwardPath}`);
  const root = opts.cacheDir ?? nllCacheRoot();
  const entry = join(root, cacheKey(forwardPath));
  const path = join(entry, 'model.nll.onnx');
  if (existsSync(path)) {
    const now = new Date();
    utimesSync(entry, now, now); // recently used
    return path;
  }
  const forward = decodeModel(readFileSync(forwardPath));
  const locations = new Set<string>();
  for (const t of forward.graph?.initializer ?? [])
    for (const e of t.externalData ?? []) if (e.key === 'location' && e.value) locations.add(e.value);
  try {
    ensureDir(root);
    await writeDirAtomic(entry, (tmp) => {
      for (const loc of locations) {
        const src = join(dirname(forwardPath), loc);
        const dst = join(tmp, loc);
        ensureDir(dirname(dst));
        try {
          linkSync(src, dst);
        } catch {
          copyFileSync(src, dst);
        }
      }
      writeFileAtomic(join(tmp, 'model.nll.onnx'), encodeModel(withNllHead(forward)));
    });
  } catch (e) {
    throw new Error(`could not write the scoring graph for ${forwardPath} to ${root} (${(e as Error).message}); set COLLAPSE_CACHE_DIR to a writable directory`);
  }
  if (!existsSync(path)) throw new Error(`internal: the scoring graph ${path} was not written`);
  const entries = readdirSync(root)
    .map((f) => ({ f, t: statSync(join(root, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of entries.slice(KEEP)) rmSync(join(root, f), { recursive: true, force: true });
  return path;
}
