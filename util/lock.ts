// Directory locks by PID: one process at a time per run directory (or per rank of a sharded run). A lock
// file whose process no longer runs (a kill -9, a crash) is taken over with a message; one held by a live
// process is an error that names it. Locks are released on normal exit.
import { existsSync, linkSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensureDir, tmpName } from './atomic.js';

export interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  what: string;
}

/** Whether a process with this PID runs on this machine (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return null; // vanished, or half-written by a process killed while writing it
  }
}

/** The live process (not this one) holding a lock file, or null when it is free, stale or ours. */
export function lockHolder(path: string): LockInfo | null {
  const l = readLock(path);
  if (!l || l.pid === process.pid) return null;
  if (l.host !== hostname()) return l; // cannot tell from here: assume it runs
  return pidAlive(l.pid) ? l : null;
}

const describe = (l: LockInfo, path: string): string =>
  `process ${l.pid} on ${l.host} (${l.what}, since ${l.startedAt}) holds ${path}; wait for it to finish or stop it. ` +
  `If no such process runs (e.g. another machine that crashed), delete ${path}`;

export interface Lock {
  path: string;
  release(): void;
}

/**
 * Takes `dir/name`, refusing while a live process holds it or any of `conflicts` (other lock names in the
 * same directory, or a RegExp over names). A stale lock is taken over and `log` says so.
 */
export function acquireLock(dir: string, name: string, what: string, opts: { conflicts?: RegExp; log?: (s: string) => void } = {}): Lock {
  ensureDir(dir);
  const path = join(dir, name);
  const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), what };
  for (let attempt = 0; ; attempt++) {
    // The lock appears with its content or not at all (a hard link of a written file): created empty and then
    // written, another process reading it in between saw no holder, took it for stale and took it over.
    const tmp = tmpName(path);
    writeFileSync(tmp, JSON.stringify(info));
    try {
      linkSync(tmp, path);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
    } finally {
      unlinkSync(tmp);
    }
    const holder = lockHolder(path);
    if (holder) throw new Error(`${dir} is in use: ${describe(holder, path)}`);
    const old = readLock(path);
    if (old && old.pid !== process.pid) opts.log?.(`taking over the stale lock ${path} of process ${old.pid} (${old.what}), which no longer runs`);
    try {
      unlinkSync(path);
    } catch {
      /* another process took it over first: the next attempt sees its lock */
    }
  }
  const release = (): void => {
    const l = readLock(path);
    if (l?.pid === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
    process.off('exit', release);
  };
  process.on('exit', release);
  if (opts.conflicts) {
    for (const other of readdirSync(dir).filter((f) => f !== name && opts.conflicts!.test(f))) {
      const holder = existsSync(join(dir, other)) ? lockHolder(join(dir, other)) : null;
      if (holder) {
        release();
        throw new Error(`${dir} is in use: ${describe(holder, join(dir, other))}`);
      }
    }
  }
  return { path, release };
}
