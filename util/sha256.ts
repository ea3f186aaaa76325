// Hex sha256 of bytes or text: the checksum recorded for downloads, corpus shards and source files; and of a
// file read in 4 MB slices (model weights do not fit in one buffer).
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Feeds the bytes of the file at `path` into `h`. */
export function hashFileInto(h: Hash, path: string): void {
  const fd = openSync(path, 'r');
  const buf = new Uint8Array(1 << 22);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

export function sha256File(path: string): string {
  const h = createHash('sha256');
  hashFileInto(h, path);
  return h.digest('hex');
}
