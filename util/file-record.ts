// What a finished step wrote, recorded so that it can be verified before it is trusted: every file under the
// step's output paths with its size, sha256 and modification time. Verifying re-hashes small files; a large
// file (weights) whose size and modification time are those recorded keeps its recorded sha256 (hashed once,
// cached by size and mtime), so resuming a run of large models does not read every model again.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { sha256File } from './sha256.js';

export interface FileRecord {
  /** Relative to the root the records were made against (a run directory). */
  path: string;
  bytes: number;
  sha256: string;
  mtimeMs: number;
}

/** Files at least this large are trusted without hashing while their size and mtime are unchanged. */
export const LARGE_FILE_BYTES = 16 << 20;

/** Temporaries of a writer in flight are not part of what a step wrote. */
const isTemporary = (name: string): boolean => /\.tmp-\d+-/.test(name);

function filesUnder(path: string, out: string[]): void {
  if (!existsSync(path) || isTemporary(path)) return;
  if (!statSync(path).isDirectory()) {
    out.push(path);
    return;
  }
  for (const f of readdirSync(path).sort()) filesUnder(join(path, f), out);
}

/** Records every file under `paths` (files or directories; missing ones are skipped), relative to `root`. */
export function recordFiles(root: string, paths: readonly string[]): FileRecord[] {
  const files: string[] = [];
  for (const p of paths) filesUnder(p, files);
  return files.map((f) => {
    const st = statSync(f);
    return { path: relative(root, f), bytes: st.size, sha256: sha256File(f), mtimeMs: st.mtimeMs };
  });
}

/** The first recorded file that is missing or differs (in words, naming the file), or null when all match. */
export function firstDamaged(root: string, records: readonly FileRecord[]): string | null {
  for (const r of records) {
    const path = join(root, r.path);
    if (!existsSync(path)) return `${path} is missing`;
    const st = statSync(path);
    if (st.size !== r.bytes) return `${path} is ${st.size < r.bytes ? 'truncated' : 'longer than it was written'}: ${st.size} bytes, ${r.bytes} recorded`;
    if (st.size >= LARGE_FILE_BYTES && st.mtimeMs === r.mtimeMs) continue;
    if (sha256File(path) !== r.sha256) return `${path} has changed since it was written (its sha256 differs from the one recorded)`;
  }
  return null;
}
