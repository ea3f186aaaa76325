// Imported first by every benchmark: runs the benchmark under the same allocator setting as the `collapse` bin
// (models/util/malloc.ts), re-executing itself with HEAP_TUNABLES when started without them, so that its figures
// are what `npx collapse ...` gets. BENCH_MALLOC=default measures glibc's defaults instead.
import { spawnSync } from 'node:child_process';
import { HEAP_TUNABLES, heapKeepsLargeBlocks } from '../models/util/malloc.js';

if (process.platform === 'linux' && process.env.BENCH_MALLOC !== 'default' && !heapKeepsLargeBlocks()) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES: HEAP_TUNABLES } });
  process.exit(r.status ?? 1);
}
if (process.env.BENCH_MALLOC === 'default' && heapKeepsLargeBlocks()) console.error('BENCH_MALLOC=default, but GLIBC_TUNABLES sets the heap tunables: unset it to measure the defaults');
