// The corpus store. A corpus is a directory:
//   manifest.json          corpus header: format, schema version, block size, provenance, expected writers,
//                          and (once finalized) the aggregated shard list and row count;
//   <shard>.arrow          Arrow IPC FILE-format shards (corpus-codec.ts);
//   <shard>.json           one manifest per shard: rows, bytes, sha256, schema version, writer.
// Every file is written atomically (temporary name, then rename), the shard before its manifest, so a
// shard without a manifest is an unfinished write and is ignored. Writers never touch each other's
// files: N processes can write into one corpus if each has its own `writer` name (shards are named
// `part-<writer>-<seq>.arrow`). The reader aggregates the shard manifests, checks that every expected
// writer has finished, and verifies each shard's size, sha256 and schema before yielding any of its data.
import { existsSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordBatch } from 'apache-arrow';
import { ensureDir, tmpName, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { readJsonFile } from '../util/json.js';
import { sha256 } from '../util/sha256.js';
import { batchRows, CORPUS_SCHEMA_VERSION, CorpusError, decodeShard, encodeShard, type CorpusRow } from './corpus-codec.js';

export const CORPUS_FORMAT = 'model-collapse-corpus';

export interface Provenance {
  source?: string;
  tokenizer?: string;
  model?: string;
  generation?: number;
  seed?: number;
  config?: unknown;
  [k: string]: unknown;
}

export interface ShardManifest {
  file: string;
  writer: string;
  rows: number;
  bytes: number;
  sha256: string;
  schemaVersion: number;
}

export interface CorpusManifest {
  format: typeof CORPUS_FORMAT;
  schemaVersion: number;
  blockSize: number;
  provenance: Provenance;
  /** The fingerprint of the tokenizer whose ids the rows hold (models/tokenizer-identity.ts); absent: unknown. */
  tokenizerFingerprint?: string;
  /** Writer names that must each have finalized (written a `<writer>.done.json`) before the corpus is complete. */
  expectedWriters: string[];
  createdAt: string;
  /** Filled by finalizeCorpus: the aggregated view. */
  rows?: number;
  shards?: ShardManifest[];
}

// ---------------------------------------------------------------- writing

/** Creates (or re-opens, if identical) a corpus directory; call once, before the writers start. */
export function createCorpus(
  dir: string,
  opts: { blockSize: number; provenance?: Provenance; expectedWriters?: string[]; tokenizerFingerprint?: string },
): CorpusManifest {
  if (!Number.isInteger(opts.blockSize) || opts.blockSize < 1) throw new Error(`corpus block size must be a positive integer, got ${opts.blockSize}`);
  ensureDir(dir);
  const path = join(dir, 'manifest.json');
  if (existsSync(path)) {
    const m = readManifest(dir);
    if (m.blockSize !== opts.blockSize) throw new Error(`${path}: existing corpus has block size ${m.blockSize}, not ${opts.blockSize}`);
    return m;
  }
  const manifest: CorpusManifest = {
    format: CORPUS_FORMAT,
    schemaVersion: CORPUS_SCHEMA_VERSION,
    blockSize: opts.blockSize,
    provenance: opts.provenance ?? {},
    ...(opts.tokenizerFingerprint ? { tokenizerFingerprint: opts.tokenizerFingerprint } : {}),
    expectedWriters: opts.expectedWriters ?? ['w0'],
    createdAt: new Date().toISOString(),
  };
  writeJsonAtomic(path, manifest);
  return manifest;
}

function validWriterName(w: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(w)) throw new Error(`corpus writer name ${JSON.stringify(w)} must be letters, digits or _`);
}

/**
 * Appends rows to a corpus as shards `part-<writer>-<seq>.arrow`. Resumable: a new writer with the same
 * name continues after the last committed shard of that writer.
 */
export class CorpusWriter {
  readonly dir: string;
  readonly writer: string;
  readonly blockSize: number;
  readonly rowsPerShard: number;
  private pending: CorpusRow[] = [];
  private seq: number;
  committedRows = 0;
  /** This writer's committed shards, recorded in its done marker (so a deleted shard is noticed). */
  private files: WriterFile[];

  constructor(dir: string, opts: { writer?: string; rowsPerShard?: number } = {}) {
    const m = readManifest(dir);
    this.dir = dir;
    this.writer = opts.writer ?? 'w0';
    validWriterName(this.writer);
    this.blockSize = m.blockSize;
    this.rowsPerShard = opts.rowsPerShard ?? 8192;
    const mine = shardManifests(dir).filter((s) => s.writer === this.writer);
    this.seq = mine.length;
    this.committedRows = mine.reduce((s, x) => s + x.rows, 0);
    this.files = mine.map((s) => ({ file: s.file, rows: s.rows, sha256: s.sha256 }));
    if (existsSync(doneMarker(dir, this.writer))) throw new Error(`${doneMarker(dir, this.writer)} exists: writer ${this.writer} already finished this corpus`);
  }

  append(row: CorpusRow): void {
    this.pending.push(row);
    if (this.pending.length >= this.rowsPerShard) this.flush();
  }

  /** Commits pending rows as one shard: the .arrow file atomically, then its manifest. */
  flush(): ShardManifest | null {
    if (this.pending.length === 0) return null;
    const bytes = encodeShard(this.pending, this.blockSize);
    const name = `part-${this.writer}-${String(this.seq).padStart(5, '0')}`;
    writeFileAtomic(join(this.dir, `${name}.arrow`), bytes);
    const sm: ShardManifest = {
      file: `${name}.arrow`,
      writer: this.writer,
      rows: this.pending.length,
      bytes: bytes.length,
      sha256: sha256(bytes),
      schemaVersion: CORPUS_SCHEMA_VERSION,
    };
    writeJsonAtomic(join(this.dir, `${name}.json`), sm);
    this.files.push({ file: sm.file, rows: sm.rows, sha256: sm.sha256 });
    this.seq++;
    this.committedRows += this.pending.length;
    this.pending = [];
    return sm;
  }

  /** Flushes and marks this writer finished. */
  close(): void {
    this.flush();
    const marker: WriterMarker = { writer: this.writer, rows: this.committedRows, shards: this.seq, files: this.files };
    writeJsonAtomic(doneMarker(this.dir, this.writer), marker);
  }
}

/** A shard as its writer's done marker records it. */
export interface WriterFile {
  file: string;
  rows: number;
  sha256: string;
}

/** `<writer>.done.json`: what the writer committed (files: since integrity checks were added). */
export interface WriterMarker {
  writer: string;
  rows: number;
  shards: number;
  files?: WriterFile[];
}

/**
 * What is wrong with a finished writer's shards compared with its done marker (a shard deleted, replaced or
 * added after it finished), or null. `onDisk` are the shard manifests present in the directory.
 */
export function writerProblem(dir: string, writer: string, onDisk: readonly ShardManifest[]): string | null {
  const path = doneMarker(dir, writer);
  const m = readJsonFile<WriterMarker>(path);
  const mine = onDisk.filter((s) => s.writer === writer);
  const byFile = new Map(mine.map((s) => [s.file, s]));
  for (const f of m.files ?? []) {
    const s = byFile.get(f.file);
    if (!s || !existsSync(join(dir, f.file))) return `${f.file} (${f.rows} rows), recorded in ${writer}.done.json, is missing`;
    if (s.sha256 !== f.sha256 || s.rows !== f.rows) return `${f.file} is not the shard ${writer}.done.json recorded (sha256 or rows differ)`;
  }
  const rows = mine.reduce((a, s) => a + s.rows, 0);
  if (rows !== m.rows || mine.length !== m.shards)
    return `${writer}.done.json records ${m.rows} rows in ${m.shards} shard(s), the directory holds ${rows} rows in ${mine.length}`;
  return null;
}

/** Throws a CorpusError when any finished writer's shards disagree with its marker. */
export function checkWriters(dir: string, writers: readonly string[], onDisk: readonly ShardManifest[]): void {
  for (const w of writers) {
    if (!existsSync(doneMarker(dir, w))) continue;
    const p = writerProblem(dir, w, onDisk);
    if (p)
      throw new CorpusError(
        `corpus ${dir}: ${p}. The corpus is damaged; for a generated corpus, delete ${doneMarker(dir, w)} and rerun \`collapse generate\` ` +
          'to write that chunk again, otherwise recreate the corpus',
      );
  }
}

function doneMarker(dir: string, writer: string): string {
  return join(dir, `${writer}.done.json`);
}

/** Whether `writer` has finished (written its done marker). */
export const writerDone = (dir: string, writer: string): boolean => existsSync(doneMarker(dir, writer));

const unfinishedWriters = (dir: string, m: CorpusManifest): string[] => m.expectedWriters.filter((w) => !writerDone(dir, w));

/** How many shards (`.arrow` files) a corpus folder holds so far: 0 when the folder does not exist yet. */
export const committedShards = (dir: string): number => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.arrow')).length : 0);

/** Whether `dir` is a corpus whose expected writers have all finished (by any process). */
export function corpusComplete(dir: string): boolean {
  if (!existsSync(join(dir, 'manifest.json'))) return false;
  return unfinishedWriters(dir, readManifest(dir)).length === 0;
}

/** Writes the aggregated shard list and row count into manifest.json (after all writers closed). */
export function finalizeCorpus(dir: string): CorpusManifest {
  const m = readManifest(dir);
  const missing = unfinishedWriters(dir, m);
  if (missing.length > 0) throw new Error(`${dir}: writers ${missing.join(', ')} have not finished; cannot finalize the corpus`);
  const shards = shardManifests(dir);
  checkWriters(dir, m.expectedWriters, shards);
  const out: CorpusManifest = { ...m, shards, rows: shards.reduce((s, x) => s + x.rows, 0) };
  writeJsonAtomic(join(dir, 'manifest.json'), out);
  return out;
}

/**
 * Writes a whole corpus in one call (one writer), finalized. The directory appears only when complete
 * (built under a temporary name, then renamed), so a crash never leaves a half-written corpus at `dir`.
 */
export function writeCorpus(
  dir: string,
  rows: Iterable<CorpusRow>,
  opts: { blockSize: number; provenance?: Provenance; rowsPerShard?: number; tokenizerFingerprint?: string },
): CorpusManifest {
  if (existsSync(dir)) {
    if (readdirSync(dir).length > 0) throw new Error(`${dir} already exists and is not empty: choose another output directory or delete it`);
    rmdirSync(dir);
  }
  const tmp = tmpName(dir);
  try {
    createCorpus(tmp, { blockSize: opts.blockSize, provenance: opts.provenance, expectedWriters: ['w0'], tokenizerFingerprint: opts.tokenizerFingerprint });
    const w = new CorpusWriter(tmp, { writer: 'w0', rowsPerShard: opts.rowsPerShard });
    for (const r of rows) w.append(r);
    w.close();
    const m = finalizeCorpus(tmp);
    renameSync(tmp, dir);
    return m;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------- reading

export function readManifest(dir: string): CorpusManifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) throw new Error(`${dir} is not a corpus: ${path} is missing (create it with \`collapse prepare\`)`);
  let m: CorpusManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as CorpusManifest;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (m.format !== CORPUS_FORMAT) throw new Error(`${path}: format is ${JSON.stringify(m.format)}, expected ${CORPUS_FORMAT}`);
  if (m.schemaVersion !== CORPUS_SCHEMA_VERSION) {
    throw new Error(`${path}: corpus schema version ${m.schemaVersion}, this program reads version ${CORPUS_SCHEMA_VERSION}`);
  }
  return m;
}

/** The committed shards, from their own manifests, in name order. */
export function shardManifests(dir: string): ShardManifest[] {
  return readdirSync(dir)
    .filter((f) => /^part-[A-Za-z0-9_]+-\d+\.json$/.test(f))
    .sort()
    .map((f) => {
      const p = join(dir, f);
      try {
        return JSON.parse(readFileSync(p, 'utf8')) as ShardManifest;
      } catch (e) {
        throw new Error(`shard manifest ${p} is not valid JSON: ${(e as Error).message}`);
      }
    });
}

/** Reads and verifies one shard: size, sha256, then schema. Throws a CorpusError naming the file. */
function readShard(dir: string, s: ShardManifest, blockSize: number): RecordBatch[] {
  const path = join(dir, s.file);
  if (!existsSync(path)) throw new CorpusError(`shard ${path} is missing (its manifest ${s.file.replace(/\.arrow$/, '.json')} exists)`);
  const size = statSync(path).size;
  if (size !== s.bytes) {
    throw new CorpusError(`shard ${path} is ${size < s.bytes ? 'truncated' : 'too long'}: ${size} bytes, its manifest says ${s.bytes}`);
  }
  const bytes = readFileSync(path);
  const got = sha256(bytes);
  if (got !== s.sha256) throw new CorpusError(`shard ${path} fails its checksum: sha256 ${got}, its manifest says ${s.sha256}`);
  const batches = decodeShard(bytes, path, blockSize);
  const rows = batches.reduce((n, b) => n + b.numRows, 0);
  if (rows !== s.rows) throw new CorpusError(`shard ${path} has ${rows} rows, its manifest says ${s.rows}`);
  return batches;
}

export interface Corpus {
  dir: string;
  manifest: CorpusManifest;
  shards: ShardManifest[];
  rows: number;
  blockSize: number;
  /** Streams verified record batches, shard by shard. */
  batches(): Generator<RecordBatch>;
  /** Streams rows as plain objects. */
  rowsIter(): Generator<CorpusRow>;
}

/**
 * Opens a corpus. Unless `allowIncomplete`, every expected writer must have finished; shards are
 * verified as they are read, so no byte of a corrupt shard is ever returned.
 */
export function readCorpus(dir: string, opts: { allowIncomplete?: boolean } = {}): Corpus {
  const manifest = readManifest(dir);
  // Damage first (a finished writer's shard deleted or replaced): it is worse news than an unfinished writer.
  const onDisk = shardManifests(dir);
  checkWriters(dir, manifest.expectedWriters, onDisk);
  if (!opts.allowIncomplete) {
    const missing = unfinishedWriters(dir, manifest);
    if (missing.length > 0) {
      throw new CorpusError(`corpus ${dir} is incomplete: writer(s) ${missing.join(', ')} have not finished (no ${missing[0]}.done.json); resume them`);
    }
  }
  if (manifest.shards) {
    const listed = new Set(manifest.shards.map((s) => s.file));
    const extra = onDisk.filter((s) => !listed.has(s.file));
    if (extra.length > 0) throw new CorpusError(`corpus ${dir}: ${extra[0]!.file} is not in the finalized manifest.json`);
  }
  const shards = manifest.shards ?? onDisk;
  const rows = shards.reduce((s, x) => s + x.rows, 0);
  const blockSize = manifest.blockSize;
  function* batches(): Generator<RecordBatch> {
    for (const s of shards) yield* readShard(dir, s, blockSize);
  }
  function* rowsIter(): Generator<CorpusRow> {
    for (const b of batches()) yield* batchRows(b);
  }
  return { dir, manifest, shards, rows, blockSize, batches, rowsIter };
}

