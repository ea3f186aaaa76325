// How the process's C allocator serves large blocks, which decides whether onnxruntime's own CPU arena pays off.
//
// By default glibc maps every block above its mmap threshold (at most 32 MB) fresh from the kernel and unmaps it on
// free, so a training step that allocates gigabytes of activations and output copies spends seconds in page faults.
// onnxruntime's arena avoids that but keeps its peak plus doubling slack for the life of the session. Told to serve
// every block from its heap and to keep freed memory (the tunables below), glibc reuses freed blocks best-fit with
// neither cost: the fastest gradient step at the lower peak (scripts/bench-train.ts --malloc heap|default
// measures it; docs/performance.md "The allocator" and the bench's header have the figures).
// The price: memory freed is kept by the process (its peak is not returned to the system until it exits).
// Tunables are read when a process starts, so the `collapse` bin re-executes itself with them (runUnderHeapTunables).
import { spawnSync } from 'node:child_process';
import { Socket } from 'node:net';

/** GLIBC_TUNABLES for the CLI: no mmap for large blocks, no trimming of the heap's top. */
export const HEAP_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295';

let glibcCache: boolean | undefined;
/** Whether this process runs on glibc (not musl, not another OS): only glibc reads GLIBC_TUNABLES. */
export function isGlibc(): boolean {
  if (glibcCache === undefined) {
    const header = process.platform === 'linux' ? (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header : undefined;
    glibcCache = Boolean(header?.glibcVersionRuntime);
  }
  return glibcCache;
}

/** Whether this process started with glibc serving large blocks from a heap that keeps freed memory. */
export function heapKeepsLargeBlocks(env: NodeJS.ProcessEnv = process.env, glibc = isGlibc()): boolean {
  return glibc && /(^|:)glibc\.malloc\.mmap_max=0(:|$)/.test(env.GLIBC_TUNABLES ?? '');
}

/** The environment for a child that should use the heap tunables: the caller's own tunables kept, ours appended. */
export function withHeapTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, GLIBC_TUNABLES: [env.GLIBC_TUNABLES, HEAP_TUNABLES].filter((t) => t).join(':') };
}

/** The environment for a child that should not inherit the heap tunables (a browser, a reference in Python). */
export function withoutHeapTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = (env.GLIBC_TUNABLES ?? '').split(':').filter((t) => t && !HEAP_TUNABLES.split(':').includes(t));
  const out = { ...env };
  if (rest.length > 0) out.GLIBC_TUNABLES = rest.join(':');
  else delete out.GLIBC_TUNABLES;
  return out;
}

const PARENT_FD = 3;
const CHILD_MARK = 'COLLAPSE_HEAP_CHILD';

/**
 * Runs this script again as a child under HEAP_TUNABLES and exits with its status, unless it already runs under
 * them, is not on glibc, or `optOut` is set; returns only when the current process should do the work itself.
 * The child holds a pipe from the parent and ends itself (releasing its locks) when the parent dies, so
 * killing the process a user or a scheduler started never leaves the work running.
 */
export function runUnderHeapTunables(optOut = false): void {
  if (process.env[CHILD_MARK] === '1') {
    delete process.env[CHILD_MARK];
    const pipe = new Socket({ fd: PARENT_FD, readable: true, writable: false });
    // Said before ending, so that a death from this watchdog is never silent (the parent may still read it).
    // A moment's delay lets a Ctrl-C that reached both processes be handled as one (its message, its exit);
    // process.exit, not SIGKILL, so that the 'exit' listeners release the run's lock.
    const orphaned = (why: string) =>
      setTimeout(() => {
        process.stderr.write(`collapse: stopping, the parent process is gone (${why}); rerun the same command to resume\n`);
        process.exit(137);
      }, 200);
    pipe.on('close', () => orphaned('its pipe closed'));
    pipe.on('error', (e) => orphaned(e.message));
    pipe.resume();
    pipe.unref();
    return;
  }
  if (optOut || !isGlibc() || heapKeepsLargeBlocks()) return;
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...withHeapTunables(process.env), [CHILD_MARK]: '1' },
  });
  if (r.error) {
    console.error(`could not start ${process.argv[1]} again under GLIBC_TUNABLES (${r.error.message})`);
    process.exit(1);
  }
  if (r.signal) {
    // A signal the user sent reached this process too; one they did not (the kernel's out-of-memory killer,
    // a crash) would otherwise end the run without a word.
    if (r.signal !== 'SIGINT' && r.signal !== 'SIGTERM' && r.signal !== 'SIGHUP')
      console.error(`collapse: the worker process was ended by ${r.signal}${r.signal === 'SIGKILL' ? ' (out of memory? see `dmesg`)' : ''}; rerun the same command to resume`);
    process.kill(process.pid, r.signal);
  }
  process.exit(r.status ?? 1);
}
