// Imported first by every benchmark: runs the benchmark under the same allocator setting as the `collapse` bin
// (util/malloc.ts), re-executing itself with HEAP_TUNABLES when started without them, so that its figures
// are what `npx collapse ...` gets. BENCH_MALLOC=default measures glibc's defaults instead.
import { heapKeepsLargeBlocks, runUnderHeapTunables } from '../util/malloc.js';

runUnderHeapTunables(process.env.BENCH_MALLOC === 'default');
if (process.env.BENCH_MALLOC === 'default' && heapKeepsLargeBlocks()) console.error('BENCH_MALLOC=default, but GLIBC_TUNABLES sets the heap tunables: unset it to measure the defaults');
