// writeDirAtomic with keepExisting (the artifact cache, which jobs running side by side may fill at once):
// a directory published meanwhile by another process stays, and the late copy is discarded.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeDirAtomic } from '../../util/atomic.js';

describe('writeDirAtomic keepExisting', () => {
  it('keeps the entry that was published first and leaves no temporary', async () => {
    const root = mkdtempSync(join(tmpdir(), 'atomic-dir-'));
    const dir = join(root, 'entry');
    await writeDirAtomic(dir, async (tmp) => {
      // Another process publishes the same entry while this one is still filling its copy.
      mkdirSync(dir);
      writeFileSync(join(dir, 'f'), 'first');
      writeFileSync(join(tmp, 'f'), 'second');
    }, { keepExisting: true });
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('first');
    expect(readdirSync(root)).toEqual(['entry']);
    // Without the option the later copy replaces it, as before.
    await writeDirAtomic(dir, (t) => writeFileSync(join(t, 'f'), 'third'));
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('third');
  });
});
