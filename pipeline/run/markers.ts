// Step markers, the one owner of "is this step done": `<step>.done.json` records when the step finished and
// the size and sha256 of every file it wrote (util/file-record.ts). A step is done only when its marker parses
// and every recorded file still matches: a 0-byte or unparsable marker (a crash, a full disk) means "not
// done", and a damaged output is named and the step runs again. Markers written before files were recorded
// are trusted as before, so old run directories resume unchanged.
import { existsSync, readFileSync } from 'node:fs';
import { writeJsonAtomic } from '../../util/atomic.js';
import { firstDamaged, recordFiles, type FileRecord } from '../../util/file-record.js';

export interface Marker {
  step: string;
  finishedAt: string;
  seconds: number;
  result?: unknown;
  /** What the step wrote, relative to the run directory (absent in markers of older versions). */
  files?: FileRecord[];
  [k: string]: unknown;
}

/** What a marker says about its step: done, not started (or unreadable), or done but since damaged. */
export type MarkerState = { done: true } | { done: false; damaged?: string; unreadable?: string };

/** The marker's content, or null when it is absent, empty or not a JSON object (all three: the step is not done). */
function parseMarker(path: string): Marker | null {
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Marker;
    return m !== null && typeof m === 'object' && !Array.isArray(m) ? m : null;
  } catch {
    return null;
  }
}

/** Whether a marker is in place and readable (the step finished), without checking its files. */
export const markerWritten = (path: string): boolean => parseMarker(path) !== null;

/** Whether the step of this marker is done and its recorded outputs (relative to `root`) are intact. */
export function markerState(path: string, root: string): MarkerState {
  const m = parseMarker(path);
  if (!m) return existsSync(path) ? { done: false, unreadable: `${path} is empty or unreadable (a crash while writing it)` } : { done: false };
  const damaged = m.files ? firstDamaged(root, m.files) : null;
  return damaged ? { done: false, damaged } : { done: true };
}

/**
 * For `collapse status`: the finished step's marker, or why there is none. An unreadable marker is read as
 * the run reads it (the step is not done and reruns), not as an error, so status works on any run directory.
 */
export function readMarker(path: string): { marker: Marker } | { marker: null; unreadable?: string } {
  const m = parseMarker(path);
  if (m) return { marker: m };
  return existsSync(path) ? { marker: null, unreadable: `marker ${path} is empty or unreadable; the step reruns on resume` } : { marker: null };
}

/** Leaves the marker of a finished step, recording the files under `outputs` (paths inside `root`). */
export function markDone(path: string, step: string, seconds: number, result: unknown, record: { root: string; outputs: readonly string[] }): void {
  const files = recordFiles(record.root, record.outputs);
  writeJsonAtomic(path, { step, finishedAt: new Date().toISOString(), seconds, ...(result === undefined ? {} : { result }), files });
}
