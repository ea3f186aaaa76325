// The one cache directory (hub snapshots, WikiText parquet files, training artifacts under artifacts/):
// $COLLAPSE_CACHE_DIR, or ~/.cache/model-collapse.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env.COLLAPSE_CACHE_DIR ?? join(homedir(), '.cache', 'model-collapse');
}
