import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HEAP_TUNABLES, heapKeepsLargeBlocks } from '../../models/util/malloc.js';

describe('allocator tunables', () => {
  it('the collapse bin starts node with HEAP_TUNABLES (the engine turns the arena off only then)', () => {
    const shebang = readFileSync(new URL('../../scripts/collapse.mjs', import.meta.url), 'utf8').split('\n')[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S GLIBC_TUNABLES=${HEAP_TUNABLES} node`);
  });

  it('recognises mmap_max=0 anywhere in GLIBC_TUNABLES, and nothing else', () => {
    const linux = process.platform === 'linux';
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: HEAP_TUNABLES })).toBe(linux);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1:glibc.malloc.mmap_max=0' })).toBe(linux);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=00' })).toBe(false);
    expect(heapKeepsLargeBlocks({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0x' })).toBe(false);
    expect(heapKeepsLargeBlocks({})).toBe(false);
  });
});
