// Thread counts against the machine: onnxruntime given more intra-op threads than cores spends its time
// switching between them (1000 threads made a 3 s job take 80 s), so such a count is refused by name.
import { availableParallelism } from 'node:os';

/** `name`: the flag or config key, for the message; 0 (or none) means "all cores" and always passes. */
export function checkThreads(name: string, threads: number | undefined, cores = availableParallelism()): void {
  if (threads !== undefined && threads > cores)
    throw new Error(`${name} ${threads}: this machine has ${cores} CPU cores; use at most ${cores} (0 = all of them). More threads than cores only slow onnxruntime down`);
}
