// Leftovers of killed processes: atomic writes build `<name>.tmp-<pid>-<stamp>` and rename it into place, so a
// kill -9 leaves that temporary behind (a model directory can be gigabytes). The next start removes those whose
// process no longer runs; a live process's temporaries (another rank, another run) are left alone.
import { readdirSync, rmSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from './lock.js';

const TMP = /\.tmp-(\d+)-[0-9a-z]+$/;

/** Removes stale temporaries under `root` (down to `maxDepth` levels); returns their paths. */
export function removeStaleTmp(root: string, maxDepth = 5): string[] {
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
        if (pid !== process.pid && !pidAlive(pid)) {
          rmSync(p, { recursive: true, force: true });
          removed.push(p);
        }
      } else if (e.isDirectory() && depth < maxDepth) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  return removed;
}
