// Hex sha256 of bytes or text: the checksum recorded for downloads, corpus shards and source files.
import { createHash } from 'node:crypto';

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
