// Locating ../shared (data, tokenizers and a torch-exported model kept beside the checkout).
// Tests that need it skip with a message naming the missing path, so a fresh clone still passes.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_DIR = process.env.COLLAPSE_SHARED_DIR ?? resolve(REPO_ROOT, '..', 'shared');

/** Absolute path of `rel` inside ../shared, or null (with a printed reason) when it is absent. */
export function sharedPath(rel: string): string | null {
  const p = join(SHARED_DIR, rel);
  if (existsSync(p)) return p;
  console.warn(`[skip] ${p} is absent: tests that need ../shared/${rel} are skipped (CI has it)`);
  return null;
}
