// Atomic file writes: write to a temporary name in the same directory, then rename, so that a crash
// never leaves a half-written file where a later stage would read it.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p that fails instead of spinning: Node's recursive mkdirSync loops forever (100% CPU) where mkdir
 * answers ENOENT for an existing parent (e.g. under /proc). Creates each missing component in turn.
 */
export function ensureDir(path: string): void {
  for (const d of missingDirs(path).reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw e;
    }
  }
}

/** The folders of `path` that do not exist yet, deepest first (ensureDir creates them, top first). */
export function missingDirs(path: string): string[] {
  const missing: string[] = [];
  for (let p = resolve(path); !existsSync(p); ) {
    missing.push(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return missing;
}

/**
 * Removes the folders of `missingDirs` (deepest first) that are still empty: a command refused after it
 * created its output folder leaves nothing behind. Stops at the first folder that holds something.
 */
export function removeEmptyDirs(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty (the command wrote there), or already gone
    }
  }
}

export function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
}

export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  ensureDir(dirname(path));
  const tmp = tmpName(path);
  const fd = openSync(tmp, 'w');
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
    for (const p of parts) writeSync(fd, p);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Builds a directory under a temporary name and renames it into place when `fill` succeeds. */
export async function writeDirAtomic(path: string, fill: (tmpDir: string) => Promise<void> | void, opts: { keepExisting?: boolean } = {}): Promise<void> {
  const tmp = tmpName(path);
  ensureDir(tmp);
  try {
    await fill(tmp);
    if (opts.keepExisting) {
      // A cache entry that another process published meanwhile (the same content) stays: it may be in use.
      try {
        renameSync(tmp, path);
      } catch (e) {
        if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
        rmSync(tmp, { recursive: true, force: true });
      }
      return;
    }
    rmSync(path, { recursive: true, force: true });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
