// The slot kernels: gathering, permuting and relaying out rows and slots of the flat cache buffers.

/** Row-major [rows, width] table whose rows can be gathered. */
interface RowArray<T> {
  subarray(begin: number, end: number): T;
  set(src: ArrayLike<number>, offset: number): void;
}
export function gatherRows<T extends RowArray<T> & ArrayLike<number>>(
  a: T,
  width: number,
  from: Int32Array,
  make: (n: number) => T,
): T {
  const out = make(from.length * width);
  for (let i = 0; i < from.length; i++) out.set(a.subarray(from[i]! * width, (from[i]! + 1) * width), i * width);
  return out;
}

export function isIdentity(from: Int32Array, rows: number): boolean {
  if (from.length !== rows) return false;
  for (let i = 0; i < rows; i++) if (from[i] !== i) return false;
  return true;
}

/**
 * Reorders rows of a [rows, rowSize] table in place (new row i = old row from[i]; `from` may be longer or
 * shorter than the current rows if the table has room): only rows that change are written, and only the
 * sources that would be overwritten before being read are saved first, into `scratch` when it is given
 * and large enough (no allocation per call), else into fresh copies.
 */
export function permuteRowsInPlace<T extends Float32Array | Uint8Array>(data: T, rowSize: number, from: Int32Array, scratch?: T): void {
  const changed: number[] = [];
  for (let i = 0; i < from.length; i++) if (from[i] !== i) changed.push(i);
  if (changed.length === 0) return;
  const overwritten = new Set(changed);
  const saved = new Map<number, Float32Array | Uint8Array>();
  for (const i of changed) {
    const s = from[i]!;
    if (!overwritten.has(s) || saved.has(s)) continue;
    const k = saved.size;
    const row = data.subarray(s * rowSize, (s + 1) * rowSize);
    if (scratch && scratch.length >= (k + 1) * rowSize) {
      const slot = scratch.subarray(k * rowSize, (k + 1) * rowSize);
      slot.set(row);
      saved.set(s, slot);
    } else saved.set(s, row.slice());
  }
  for (const i of changed) {
    const s = from[i]!;
    data.set(saved.get(s) ?? data.subarray(s * rowSize, (s + 1) * rowSize), i * rowSize);
  }
}

/**
 * permuteRowsInPlace for rows made of `groups` strided segments: row r's part is, for each group g,
 * data[((r * groups + g) * groupSize + offset) ...+ length]. Used to move only the generated slots.
 */
export function permuteSlotRanges(
  data: Float32Array,
  groups: number,
  groupSize: number,
  offset: number,
  length: number,
  from: Int32Array,
  scratch: Float32Array,
): void {
  const segment = (r: number, g: number) => data.subarray((r * groups + g) * groupSize + offset, (r * groups + g) * groupSize + offset + length);
  const changed: number[] = [];
  for (let i = 0; i < from.length; i++) if (from[i] !== i) changed.push(i);
  if (changed.length === 0) return;
  const overwritten = new Set(changed);
  const saved = new Map<number, number>(); // source row -> scratch slot
  for (const i of changed) {
    const s = from[i]!;
    if (!overwritten.has(s) || saved.has(s)) continue;
    const k = saved.size;
    for (let g = 0; g < groups; g++) scratch.set(segment(s, g), (k * groups + g) * length);
    saved.set(s, k);
  }
  for (const i of changed) {
    const s = from[i]!;
    const k = saved.get(s);
    for (let g = 0; g < groups; g++) {
      const src = k === undefined ? segment(s, g) : scratch.subarray((k * groups + g) * length, (k * groups + g + 1) * length);
      data.set(src, (i * groups + g) * groupSize + offset);
    }
  }
}

/**
 * Copies the first `filled` slots of each of the first `blocks` blocks of a slot buffer with `oldSlots` slots per
 * block into `fresh`, which has `slots` per block; a slot is `inner` values. Returns `fresh`.
 */
export function relayoutSlots<T extends Float32Array | Uint8Array>(old: T, fresh: T, blocks: number, oldSlots: number, slots: number, filled: number, inner: number): T {
  for (let b = 0; b < blocks; b++) fresh.set(old.subarray(b * oldSlots * inner, (b * oldSlots + filled) * inner), b * slots * inner);
  return fresh;
}

/**
 * Writes `pieces` consecutive pieces of `size` floats of `src` into `dst` at `offset`, `offset + stride`, ...
 * (one new position per (row, head) of a slot cache): a plain loop, as a subarray per piece costs more than the copy.
 */
export function copyIntoSlots(src: Float32Array, dst: Float32Array, pieces: number, size: number, stride: number, offset: number): void {
  let from = 0;
  let to = offset;
  for (let p = 0; p < pieces; p++, to += stride) for (let j = 0; j < size; j++) dst[to + j] = src[from++]!;
}
