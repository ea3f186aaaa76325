// One process per run directory. A plain `collapse run` takes runs/NAME/.lock; the ranks of a sharded run
// (--num-shards N) cooperate through step markers and per-chunk corpus writers, so each takes its own
// .lock-rank-I instead: two processes claiming one rank, or a plain run beside a sharded one, are refused.
// After taking the lock, temporaries left by killed processes (in the run directory and the artifact cache)
// are removed (see removeStaleTmp for the ones that are kept).
// A rank's lock file is also its heartbeat: its mtime is refreshed while the rank works (not while it only
// waits), so that a waiting rank can tell other ranks' progress from a deadlock or a dead machine, and every
// wait is bounded.
import { statSync, utimesSync } from 'node:fs';
import { acquireLock, lockHolder, type Lock } from '../../util/lock.js';
import { artifactCacheRoot } from '../../models/train/artifact.js';
import { removeStaleTmp } from '../../util/stale-tmp.js';
import { locksOnDisk, rankLock, RANK_LOCK, RUN_LOCK, RUN_LOCK_PATTERN } from './layout.js';
import type { Shard } from './generational-loop.js';

export interface Heartbeat {
  /** Called at each poll of a wait: the next beat is skipped (a waiting rank makes no progress). */
  waiting(): void;
  stop(): void;
}

/** Refreshes `path`'s mtime every `seconds`, except in an interval where its holder only waited. */
export function startHeartbeat(path: string, seconds: number): Heartbeat {
  let waited = false;
  const beat = setInterval(() => {
    if (!waited) {
      try {
        const now = new Date();
        utimesSync(path, now, now);
      } catch {
        /* the lock was removed by hand: peers will see no progress and say so */
      }
    }
    waited = false;
  }, seconds * 1000);
  beat.unref();
  return { waiting: () => void (waited = true), stop: () => clearInterval(beat) };
}

export interface RunLock extends Lock {
  /** A sharded rank's heartbeat (null for a plain run, which waits for nobody). */
  heartbeat: Heartbeat | null;
}

export function lockRunDir(root: string, shard: Shard, log: (s: string) => void, opts: { heartbeatSeconds?: number } = {}): RunLock {
  const sharded = shard.count > 1;
  const lock = sharded
    ? acquireLock(root, rankLock(shard.index), `collapse run, rank ${shard.index} of ${shard.count}`, { conflicts: RUN_LOCK_PATTERN, log })
    : acquireLock(root, RUN_LOCK, 'collapse run', { conflicts: RANK_LOCK, log });
  // Ranks may run on other machines (whose PIDs mean nothing here), and the artifact cache is shared by runs:
  // there only temporaries untouched for an hour are removed.
  const HOUR = 3600;
  const removed = [...removeStaleTmp(root, 5, { minAgeSeconds: sharded ? HOUR : 0 }), ...removeStaleTmp(artifactCacheRoot(), 1, { minAgeSeconds: HOUR })];
  if (removed.length) log(`removed ${removed.length} temporary file(s) left by killed processes: ${removed.slice(0, 3).join(', ')}${removed.length > 3 ? ', ...' : ''}`);
  const heartbeat = sharded ? startHeartbeat(lock.path, opts.heartbeatSeconds ?? 30) : null;
  return {
    path: lock.path,
    heartbeat,
    release: () => {
      heartbeat?.stop();
      lock.release();
    },
  };
}

/**
 * For a rank waiting on the others: gives up (throws) once, for `graceSeconds`, no other rank of the run has
 * held a live lock, or none has made progress (its lock's heartbeat stood still: every rank waits, e.g. ranks
 * started with different --seed, or the others hang or their machine is gone), instead of polling forever for
 * a step that nobody will do. Progress is judged by changes this process sees, so clocks need not agree.
 */
export function peerWatch(root: string, shard: Shard, graceSeconds: number, heartbeat?: Heartbeat | null): (what: string) => void {
  let alone: number | null = null;
  const seen = new Map<string, { mtime: number; at: number }>();
  return (what) => {
    heartbeat?.waiting();
    const now = Date.now();
    const live = locksOnDisk(root).filter((l) => l.rank !== null && l.rank !== shard.index && lockHolder(l.path) !== null);
    if (live.length === 0) {
      alone ??= now;
      if (now - alone >= graceSeconds * 1000)
        throw new Error(
          `rank ${shard.index} of ${shard.count} waited ${graceSeconds} s for ${what}, but no other rank of this run is running ` +
            `(no live .lock-rank-* in ${root}). Start the missing ranks (the same command with their --shard-index), then rerun this one`,
        );
      return;
    }
    alone = null;
    let lastProgress = -Infinity;
    for (const l of live) {
      const mtime = statSync(l.path, { throwIfNoEntry: false })?.mtimeMs ?? 0;
      const prev = seen.get(l.name);
      if (!prev || prev.mtime !== mtime) seen.set(l.name, { mtime, at: now });
      lastProgress = Math.max(lastProgress, seen.get(l.name)!.at);
    }
    if (now - lastProgress > graceSeconds * 1000) {
      const ranks = live.map((l) => l.rank).join(', ');
      const holders = live.length > 1 ? `ranks ${ranks} hold their locks` : `rank ${ranks} holds its lock`;
      throw new Error(
        `rank ${shard.index} of ${shard.count} waited ${graceSeconds} s for ${what}, but no other rank of this run made progress in that time ` +
          `(${holders} in ${root} without working: waiting too, or hung). ` +
          'Every rank must run the same command with its own --shard-index (the same --seed and config); check the other ranks, then rerun this one',
      );
    }
  };
}
