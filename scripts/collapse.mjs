#!/usr/bin/env node
// Entry point of the `collapse` CLI: registers tsx so that the TypeScript sources run without a build step.
// On glibc it first re-executes itself with glibc serving large blocks from a heap that keeps freed memory
// (util/malloc.ts says why: training steps ~1.5x faster at lower peak memory); COLLAPSE_MALLOC=default
// runs with glibc's defaults instead.
import { register } from 'tsx/esm/api';

register();
const { runUnderHeapTunables } = await import('../util/malloc.ts');
runUnderHeapTunables(process.env.COLLAPSE_MALLOC === 'default');
const { main } = await import('./cli.ts');
await main();
