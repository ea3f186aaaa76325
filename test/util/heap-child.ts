// Test helper for runUnderHeapTunables: prints what the working process sees; `wait` keeps it alive.
import { heapKeepsLargeBlocks, runUnderHeapTunables } from '../../util/malloc.js';

runUnderHeapTunables();
console.log(JSON.stringify({ pid: process.pid, heap: heapKeepsLargeBlocks(), tunables: process.env.GLIBC_TUNABLES ?? null }));
if (process.argv[2] === 'wait') setInterval(() => {}, 1000);
else process.exitCode = Number(process.argv[2] ?? 0);
