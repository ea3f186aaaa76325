// The one cache directory (hub snapshots, WikiText parquet files, training artifacts under artifacts/):
// $COLLAPSE_CACHE_DIR, or $XDG_CACHE_HOME/model-collapse (~/.cache/model-collapse).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env.COLLAPSE_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'model-collapse');
}
