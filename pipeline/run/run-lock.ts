// One process per run directory. A plain `collapse run` takes runs/NAME/.lock; the ranks of a sharded run
// (--num-shards N) cooperate through step markers and per-chunk corpus writers, so each takes its own
// .lock-rank-I instead: two processes claiming one rank, or a plain run beside a sharded one, are refused.
// After taking the lock, temporaries left by killed processes (in the run directory and the artifact cache)
// are removed (see removeStaleTmp for the ones that are kept).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLock, lockHolder, type Lock } from '../../util/lock.js';
import { artifactCacheRoot } from '../../models/train/artifact.js';
import { removeStaleTmp } from '../../util/stale-tmp.js';
import type { Shard } from './loop.js';

export function lockRunDir(root: string, shard: Shard, log: (s: string) => void): Lock {
  const sharded = shard.count > 1;
  const lock = sharded
    ? acquireLock(root, `.lock-rank-${shard.index}`, `collapse run, rank ${shard.index} of ${shard.count}`, { conflicts: /^\.lock$/, log })
    : acquireLock(root, '.lock', 'collapse run', { conflicts: /^\.lock-rank-\d+$/, log });
  // Ranks may run on other machines (whose PIDs mean nothing here), and the artifact cache is shared by runs:
  // there only temporaries untouched for an hour are removed.
  const HOUR = 3600;
  const removed = [...removeStaleTmp(root, 5, { minAgeSeconds: sharded ? HOUR : 0 }), ...removeStaleTmp(artifactCacheRoot(), 1, { minAgeSeconds: HOUR })];
  if (removed.length) log(`removed ${removed.length} temporary file(s) left by killed processes: ${removed.slice(0, 3).join(', ')}${removed.length > 3 ? ', ...' : ''}`);
  return lock;
}

/**
 * For a rank waiting on the others: gives up (throws) once no other rank of the run has held a live lock for
 * `graceSeconds`, instead of polling forever for a step that nobody will do.
 */
export function peerWatch(root: string, shard: Shard, graceSeconds: number): (what: string) => void {
  let alone: number | null = null;
  return (what) => {
    const peers = readdirSync(root).filter((f) => /^\.lock-rank-\d+$/.test(f) && f !== `.lock-rank-${shard.index}`);
    if (peers.some((f) => lockHolder(join(root, f)) !== null)) {
      alone = null;
      return;
    }
    alone ??= Date.now();
    if (Date.now() - alone >= graceSeconds * 1000)
      throw new Error(
        `rank ${shard.index} of ${shard.count} waited ${graceSeconds} s for ${what}, but no other rank of this run is running ` +
          `(no live .lock-rank-* in ${root}). Start the missing ranks (the same command with their --shard-index), then rerun this one`,
      );
  };
}
