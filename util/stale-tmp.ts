// Leftovers of killed processes: atomic writes build `<name>.tmp-<pid>-<stamp>` and rename it into place, so a
// kill -9 leaves that temporary behind (a model directory can be gigabytes). The next start removes those whose
// process no longer runs; a live process's temporaries (another rank, another run) are left alone. A PID only
// means something on its own machine: where other machines may write (a sharded run's directory on a shared
// volume, the artifact cache), pass minAgeSeconds so that only temporaries untouched for that long go.
import { readdirSync, rmSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from './lock.js';

const mtimeMs = (p: string): number => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return Infinity; // gone meanwhile
  }
};

const TMP = /\.tmp-(\d+)-[0-9a-z]+$/;

/** Removes stale temporaries under `root` (down to `maxDepth` levels); returns their paths. */
export function removeStaleTmp(root: string, maxDepth = 5, opts: { minAgeSeconds?: number } = {}): string[] {
  const cutoff = Date.now() - (opts.minAgeSeconds ?? 0) * 1000;
  const removed: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // missing or unreadable: nothing of ours to clean
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      const m = TMP.exec(e.name);
      if (m) {
        const pid = Number(m[1]);
        if (pid !== process.pid && !pidAlive(pid) && mtimeMs(p) <= cutoff) {
          rmSync(p, { recursive: true, force: true });
          removed.push(p);
        }
      } else if (e.isDirectory() && depth < maxDepth) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  return removed;
}
