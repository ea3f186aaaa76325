// Issue 27, item 4: nothing waits forever. A rank of a sharded run gives up, with a message saying what it
// waited for, when no other rank holds a live lock or none has made progress (every rank waiting, as when
// ranks run different --seed, or a hung rank, or a lock from a machine that is gone) for a bounded time.
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { peerWatch, startHeartbeat } from '../../pipeline/run/run-lock.js';

const root = mkdtempSync(join(tmpdir(), 'waits-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run directory where rank 0 is held by a live process (PID 1 always runs) whose lock's mtime is `mtime`. */
function runWithLiveRank0(name: string): { dir: string; lock: string } {
  const dir = join(root, name);
  mkdirSync(dir);
  const lock = join(dir, '.lock-rank-0');
  writeFileSync(lock, JSON.stringify({ pid: 1, host: hostname(), startedAt: 'earlier', what: 'collapse run, rank 0 of 2' }));
  utimesSync(lock, new Date(1_000_000), new Date(1_000_000));
  return { dir, lock };
}

describe('a waiting rank', () => {
  it('gives up when the other ranks live but make no progress (all of them waiting: the Slurm recipe with one --seed per task)', async () => {
    const { dir } = runWithLiveRank0('deadlock');
    const watch = peerWatch(dir, { index: 1, count: 2 }, 0.02);
    watch('finetune (replace seed 1 gen 0)');
    await sleep(40);
    expect(() => watch('finetune (replace seed 1 gen 0)')).toThrow(
      /rank 1 of 2 waited 0\.02 s for finetune \(replace seed 1 gen 0\), but no other rank of this run made progress in that time \(rank 0 holds its lock in .*deadlock without working: waiting too, or hung\)\. Every rank must run the same command with its own --shard-index \(the same --seed and config\)/,
    );
  });

  it('keeps waiting while another rank\'s heartbeat moves', async () => {
    const { dir, lock } = runWithLiveRank0('progress');
    const watch = peerWatch(dir, { index: 1, count: 2 }, 0.05);
    watch('evaluate');
    for (let i = 1; i <= 4; i++) {
      await sleep(30);
      utimesSync(lock, new Date(1_000_000 + i * 1000), new Date(1_000_000 + i * 1000)); // a beat of rank 0
      expect(() => watch('evaluate')).not.toThrow();
    }
    await sleep(80);
    expect(() => watch('evaluate')).toThrow(/made progress/);
  });
});

describe('the heartbeat', () => {
  it('refreshes the lock file while the rank works, and stands still while it waits', async () => {
    const file = join(root, 'beat');
    writeFileSync(file, '{}');
    const old = new Date(1_000_000);
    utimesSync(file, old, old);
    const hb = startHeartbeat(file, 0.05);
    try {
      // Waiting: a poll in every interval, no beat.
      for (let i = 0; i < 30; i++) {
        hb.waiting();
        await sleep(5);
      }
      expect(statSync(file).mtimeMs).toBe(old.getTime());
      // Working: beats.
      await sleep(200);
      expect(statSync(file).mtimeMs).toBeGreaterThan(old.getTime());
    } finally {
      hb.stop();
    }
  });
});
