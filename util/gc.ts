// Prompt collection of large garbage. onnxruntime-node copies every output into a fresh ArrayBuffer; when those
// copies are hundreds of megabytes (a model's gradients) and dropped at once, V8 may not collect them before the
// next run allocates more, and several generations of dead copies add to the peak memory.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (o?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;
let gc: Gc | null = null;

/** Runs V8's collector now (exposed at runtime, as --expose-gc would). */
export function collectGarbage(): void {
  if (!gc) {
    const exposed = (globalThis as { gc?: Gc }).gc;
    if (exposed) {
      gc = exposed;
      return gc();
    }
    // Changing V8 flags after start-up is not officially supported; --expose-gc is the one flag this relies on.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc();
}
