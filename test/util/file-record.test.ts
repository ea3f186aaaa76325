// What a step wrote, recorded and verified (util/file-record.ts), and the markers built on it
// (pipeline/run/markers.ts): a damaged file is named; a large file is hashed once and then trusted while its size
// and mtime are unchanged; a 0-byte or unparsable marker is "not done"; a marker of an older version is trusted.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { markDone, markerState } from '../../pipeline/run/markers.js';
import { firstDamaged, LARGE_FILE_BYTES, recordFiles } from '../../util/file-record.js';

const root = mkdtempSync(join(tmpdir(), 'file-record-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A whole second: a restored mtime is then exactly the recorded one (Date and float seconds lose nanoseconds). */
const T0 = 1_700_000_000;

function flipByte(path: string, at: number, restoreMtime: boolean): void {
  const b = readFileSync(path);
  b[at]! ^= 1;
  writeFileSync(path, b);
  if (restoreMtime) utimesSync(path, T0, T0);
}

describe('file records', () => {
  const out = join(root, 'out');
  mkdirSync(join(out, 'sub'), { recursive: true });
  writeFileSync(join(out, 'small.txt'), 'hello');
  writeFileSync(join(out, 'sub', 'big.bin'), Buffer.alloc(LARGE_FILE_BYTES, 7));
  writeFileSync(join(out, 'small.txt.tmp-123-abc'), 'a writer in flight');
  for (const f of ['small.txt', 'sub/big.bin']) utimesSync(join(out, f), T0, T0);
  const records = recordFiles(root, [out, join(root, 'absent')]);

  it('records every file under the outputs with its size and sha256, temporaries left out', () => {
    expect(records.map((r) => [r.path, r.bytes, r.sha256])).toEqual([
      ['out/small.txt', 5, createHash('sha256').update('hello').digest('hex')],
      ['out/sub/big.bin', LARGE_FILE_BYTES, createHash('sha256').update(Buffer.alloc(LARGE_FILE_BYTES, 7)).digest('hex')],
    ]);
    expect(firstDamaged(root, records)).toBeNull();
  });

  it('a small file is hashed again: a flipped byte is found even with its mtime restored', () => {
    flipByte(join(out, 'small.txt'), 1, true);
    expect(firstDamaged(root, records)).toBe(`${join(out, 'small.txt')} has changed since it was written (its sha256 differs from the one recorded)`);
    flipByte(join(out, 'small.txt'), 1, true);
  });

  it('a large file is trusted by size and mtime (hashed once), and hashed again once its mtime changes', () => {
    const big = join(out, 'sub', 'big.bin');
    flipByte(big, 10, true);
    expect(firstDamaged(root, records)).toBeNull();
    utimesSync(big, T0, T0 + 5);
    expect(firstDamaged(root, records)).toMatch(/big\.bin has changed since it was written/);
    flipByte(big, 10, true);
    expect(firstDamaged(root, records)).toBeNull();
  });

  it('a truncated or missing file is named with its sizes', () => {
    const big = join(out, 'sub', 'big.bin');
    truncateSync(big, 100);
    expect(firstDamaged(root, records)).toBe(`${big} is truncated: 100 bytes, ${LARGE_FILE_BYTES} recorded`);
    rmSync(big);
    expect(firstDamaged(root, records)).toBe(`${big} is missing`);
  });
});

describe('step markers', () => {
  const run = join(root, 'run');
  mkdirSync(run);
  writeFileSync(join(run, 'metrics.json'), '{"x": 1}');
  const marker = join(run, 'evaluate.done.json');

  it('done while the recorded outputs match; damaged names the file', () => {
    markDone(marker, 'evaluate', 1.5, { ok: true }, { root: run, outputs: [join(run, 'metrics.json')] });
    expect(markerState(marker, run)).toEqual({ done: true });
    writeFileSync(join(run, 'metrics.json'), '{"x": 2}');
    expect(markerState(marker, run)).toEqual({ done: false, damaged: `${join(run, 'metrics.json')} has changed since it was written (its sha256 differs from the one recorded)` });
  });

  it('a 0-byte or unparsable marker is not done; an absent one is not started', () => {
    for (const content of ['', '{"step": "evalu', '[]']) {
      writeFileSync(marker, content);
      expect(markerState(marker, run)).toEqual({ done: false, unreadable: `${marker} is empty or unreadable (a crash while writing it)` });
    }
    rmSync(marker);
    expect(markerState(marker, run)).toEqual({ done: false });
  });

  it('a marker of an older version (no files recorded) is trusted as before', () => {
    writeFileSync(marker, JSON.stringify({ step: 'evaluate', finishedAt: '2026-01-01T00:00:00.000Z', seconds: 3 }));
    expect(markerState(marker, run)).toEqual({ done: true });
  });
});
