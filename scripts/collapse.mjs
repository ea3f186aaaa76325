#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295 node
// Entry point of the `collapse` CLI: registers tsx so that the TypeScript sources run without a build step.
// The shebang starts node with glibc serving large blocks from a heap that keeps freed memory (HEAP_TUNABLES in
// models/util/malloc.ts, which says why: training steps ~1.5x faster at lower peak memory). It replaces any
// GLIBC_TUNABLES of yours; to keep yours, run `node scripts/collapse.mjs ...` instead.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
