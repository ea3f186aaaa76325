// How the process's C allocator serves large blocks, which decides whether onnxruntime's own CPU arena pays off.
//
// By default glibc maps every block above its mmap threshold (at most 32 MB) fresh from the kernel and unmaps it on
// free, so a training step that allocates gigabytes of activations and output copies spends seconds in page faults.
// onnxruntime's arena avoids that but keeps its peak plus doubling slack for the life of the session. Told to serve
// every block from its heap and to keep freed memory (the tunables below), glibc reuses freed blocks best-fit with
// neither cost. Measured on OPT-125m, micro-batch 8 x 64, AdamW, 2 threads (scripts/bench-train.ts):
//   default malloc, arena on:   grad 2.0-2.9 s per micro-batch, peak RSS 3.34 GB
//   default malloc, arena off:  grad 3.9-4.4 s,                  peak RSS 2.92 GB
//   these tunables, arena off:  grad 1.5-1.7 s,                  peak RSS 2.95 GB
// The tunables must be in the environment when the process starts: the `collapse` bin sets them in its shebang line.

/** GLIBC_TUNABLES for the CLI: no mmap for large blocks, no trimming of the heap's top. */
export const HEAP_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295';

/** Whether this process started with glibc serving large blocks from a heap that keeps freed memory. */
export function heapKeepsLargeBlocks(env: NodeJS.ProcessEnv = process.env): boolean {
  const t = env.GLIBC_TUNABLES ?? '';
  return process.platform === 'linux' && /(^|:)glibc\.malloc\.mmap_max=0(:|$)/.test(t);
}
