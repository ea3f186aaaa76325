// The real `collapse` binary in a child process (its allocator re-execution, exit codes and stderr included),
// for the end-to-end tests of the loop.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './shared.js';

export const CLI = join(REPO_ROOT, 'scripts', 'collapse.mjs');

/** Runs `collapse ARGS` from the repository root; resolves with its exit code and stderr. */
export function spawnCollapse(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
