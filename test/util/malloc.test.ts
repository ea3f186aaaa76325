import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HEAP_TUNABLES, heapKeepsLargeBlocks, isGlibc, withHeapTunables, withoutHeapTunables } from '../../util/malloc.js';

const CHILD = fileURLToPath(new URL('./heap-child.ts', import.meta.url));
const clean = withoutHeapTunables(process.env);

describe('allocator tunables', () => {
  it('recognises mmap_max=0 anywhere in GLIBC_TUNABLES, on glibc only', () => {
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: HEAP_TUNABLES }, true)).toBe(true);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1:glibc.malloc.mmap_max=0' }, true)).toBe(true);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=00' }, true)).toBe(false);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0x' }, true)).toBe(false);
    expect(heapKeepsLargeBlocks({}, true)).toBe(false);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: HEAP_TUNABLES }, false)).toBe(false); // musl, macOS: ignored
  });

  it("adds the heap tunables to the user's own, and takes only them away again", () => {
    expect(withHeapTunables({}).GLIBC_TUNABLES).toBe(HEAP_TUNABLES);
    expect(withHeapTunables({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=2:${HEAP_TUNABLES}`);
    expect(withoutHeapTunables({ GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${HEAP_TUNABLES}` }).GLIBC_TUNABLES).toBe('glibc.malloc.arena_max=2');
    expect('GLIBC_TUNABLES' in withoutHeapTunables({ GLIBC_TUNABLES: HEAP_TUNABLES })).toBe(false);
  });
});

describe.skipIf(!isGlibc())('re-executing under the heap tunables (glibc)', () => {
  it('the working process runs under them, keeps the caller\'s tunables, and passes its exit status on', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, '3'], { encoding: 'utf8', env: { ...clean, GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } });
    expect(r.status).toBe(3);
    const seen = JSON.parse(r.stdout.trim()) as { heap: boolean; tunables: string };
    expect(seen.heap).toBe(true);
    expect(seen.tunables).toBe(`glibc.malloc.arena_max=2:${HEAP_TUNABLES}`);
  });

  it('the working process ends when the process that was started is killed with SIGKILL', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', CHILD, 'wait'], { env: clean, stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve) => p.stdout.once('data', (d: Buffer) => resolve((JSON.parse(d.toString().trim()) as { pid: number }).pid)));
    expect(pid).not.toBe(p.pid); // a child did the work
    p.kill('SIGKILL');
    const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const t0 = Date.now();
    while (alive() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it('says so when the working process is ended by a signal nobody sent the started one (the OOM killer), and ends the same way', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', CHILD, 'wait'], { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const pid = await new Promise<number>((resolve) => p.stdout.once('data', (d: Buffer) => resolve((JSON.parse(d.toString().trim()) as { pid: number }).pid)));
    const ended = new Promise<NodeJS.Signals | null>((resolve) => p.on('close', (_code, signal) => resolve(signal)));
    process.kill(pid, 'SIGKILL');
    expect(await ended).toBe('SIGKILL');
    expect(stderr).toMatch(/the worker process was ended by SIGKILL \(out of memory\? see `dmesg`\); rerun the same command to resume/);
  });
});
