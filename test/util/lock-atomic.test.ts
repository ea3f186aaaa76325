// A lock file appears with its content or not at all. Created empty and written after, it could be read empty
// by another process, which then saw no holder, took it for stale and took it over (two runs in one directory;
// seen once in CI as an empty lock). Here a child process takes and releases a lock in a loop while this one
// reads it as fast as it can: every read that finds the file must find a whole lock.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'lock-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('acquireLock', () => {
  it('never shows another process a lock file without its content', async () => {
    const script = join(dir, 'cycle.mts');
    writeFileSync(
      script,
      `import { acquireLock } from ${JSON.stringify(join(REPO_ROOT, 'util/lock.ts'))};\n` +
        `const end = Date.now() + 3000; let n = 0;\n` +
        `while (Date.now() < end) { acquireLock(${JSON.stringify(dir)}, '.lock', 'test').release(); n++; }\n` +
        `console.log(n);\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    let whole = 0;
    let partial = 0;
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      let text: string;
      try {
        text = readFileSync(join(dir, '.lock'), 'utf8');
      } catch {
        await new Promise((r) => setImmediate(r));
        continue; // not there: fine
      }
      try {
        expect(JSON.parse(text).pid).toBe(child.pid);
        whole++;
      } catch {
        partial++;
      }
    }
    expect(await exited).toBe(0);
    expect(Number(out.trim())).toBeGreaterThan(100); // the child did cycle
    expect(whole).toBeGreaterThan(0); // and this process did see its locks
    expect(partial).toBe(0);
  }, 30_000);
});
