import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, Float32, List, Table, tableFromArrays, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { concatCorpora, readBlocks } from '../../datasets/block-set.js';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { CorpusWriter, createCorpus, finalizeCorpus, readCorpus, writeCorpus } from '../../datasets/corpus-store.js';
import { fixedFraction, subsampleIndices } from '../../datasets/sampling.js';
import { sha256 } from '../../datasets/wikitext.js';
import { Rng } from '../../util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'corpus-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `c${n++}`);

function makeRows(count: number, blockSize: number, firstId = 0): CorpusRow[] {
  return Array.from({ length: count }, (_, i) => {
    const id = firstId + i;
    const generated = id % 3 === 1;
    return {
      block_id: id,
      input_ids: Int32Array.from({ length: blockSize }, (_, j) => (id * 7 + j * 13) % 50272),
      text: `row ${id}: naïve ✓ ${'x'.repeat(id % 5)}`,
      origin: generated ? 'generated' : 'original',
      generation: id % 4,
      prompt_block_id: generated ? id - 1 : null,
      score: generated ? -0.25 * id : null,
    };
  });
}

const plain = (r: CorpusRow) => ({ ...r, input_ids: Array.from(r.input_ids) });

describe('Arrow corpus store', () => {
  it('round-trips rows (nulls, unicode, several shards) and the in-memory block form', () => {
    const dir = fresh();
    const rows = makeRows(23, 8);
    const m = writeCorpus(dir, rows, { blockSize: 8, rowsPerShard: 5, provenance: { source: 'test', seed: 3 } });
    expect(m.rows).toBe(23);
    expect(m.shards!.map((s) => s.file)).toEqual([0, 1, 2, 3, 4].map((i) => `part-w0-0000${i}.arrow`));
    const c = readCorpus(dir);
    expect(c.manifest.provenance).toEqual({ source: 'test', seed: 3 });
    expect([...c.rowsIter()].map(plain)).toEqual(rows.map(plain));
    const b = readBlocks(dir);
    expect(b.rows).toBe(23);
    expect(Array.from(b.blockIds)).toEqual(rows.map((r) => r.block_id));
    expect(Array.from(b.ids)).toEqual(rows.flatMap((r) => Array.from(r.input_ids)));
    // The shard is a plain Arrow IPC file: its footer magic is ARROW1 at both ends.
    const bytes = readFileSync(join(dir, 'part-w0-00000.arrow'));
    expect(bytes.subarray(0, 6).toString()).toBe('ARROW1');
    expect(bytes.subarray(bytes.length - 6).toString()).toBe('ARROW1');
  });

  it('stores candidate_rank only in candidate corpora: read back as written, plain corpora keep the 7 base columns', () => {
    const dir = fresh();
    const ranked = makeRows(6, 4).map((r, i) => ({ ...r, candidate_rank: i % 3 }));
    writeCorpus(dir, ranked, { blockSize: 4, rowsPerShard: 4 });
    expect([...readCorpus(dir).rowsIter()].map(plain)).toEqual(ranked.map(plain));
    // An independent reader (Arrow itself) sees the extra column, and a plain corpus's shard does not have it.
    const columns = (d: string) => tableFromIPC(readFileSync(join(d, 'part-w0-00000.arrow'))).schema.fields.map((f) => f.name);
    expect(columns(dir)).toEqual(['block_id', 'input_ids', 'text', 'origin', 'generation', 'prompt_block_id', 'score', 'candidate_rank']);
    const plainDir = fresh();
    writeCorpus(plainDir, makeRows(3, 4), { blockSize: 4 });
    expect(columns(plainDir)).toEqual(['block_id', 'input_ids', 'text', 'origin', 'generation', 'prompt_block_id', 'score']);
    expect([...readCorpus(plainDir).rowsIter()].every((r) => !('candidate_rank' in r))).toBe(true);
    expect(() => writeCorpus(fresh(), [ranked[0]!, makeRows(1, 4)[0]!], { blockSize: 4 })).toThrow(/1 of 2 rows have a candidate_rank/);
  });

  it('lets several writers fill one corpus without clobbering, and waits for all of them', () => {
    const dir = fresh();
    createCorpus(dir, { blockSize: 4, expectedWriters: ['g0', 'g1'] });
    const a = new CorpusWriter(dir, { writer: 'g0', rowsPerShard: 3 });
    const b = new CorpusWriter(dir, { writer: 'g1', rowsPerShard: 2 });
    const ra = makeRows(7, 4, 0);
    const rb = makeRows(5, 4, 100);
    for (let i = 0; i < 7; i++) {
      a.append(ra[i]!);
      if (rb[i]) b.append(rb[i]!);
    }
    a.close();
    expect(() => readCorpus(dir)).toThrow(/incomplete: writer\(s\) g1/);
    expect(readCorpus(dir, { allowIncomplete: true }).rows).toBe(7 + 4); // g1 has committed 2 shards of 2
    // A restarted g1 resumes after its committed shards.
    const b2 = new CorpusWriter(dir, { writer: 'g1', rowsPerShard: 2 });
    expect(b2.committedRows).toBe(4);
    b2.append(rb[4]!);
    b2.close();
    finalizeCorpus(dir);
    const got = [...readCorpus(dir).rowsIter()].map((r) => r.block_id).sort((x, y) => x - y);
    expect(got).toEqual([...ra, ...rb].map((r) => r.block_id));
    expect(() => new CorpusWriter(dir, { writer: 'g0' })).toThrow(/g0.done.json exists/);
  });

  it('reports a truncated shard with its file name', () => {
    const dir = fresh();
    writeCorpus(dir, makeRows(10, 4), { blockSize: 4, rowsPerShard: 4 });
    const shard = join(dir, 'part-w0-00001.arrow');
    truncateSync(shard, readFileSync(shard).length - 100);
    const c = readCorpus(dir);
    const seen: number[] = [];
    expect(() => {
      for (const r of c.rowsIter()) seen.push(r.block_id);
    }).toThrow(/part-w0-00001\.arrow is truncated/);
    expect(seen).toEqual([0, 1, 2, 3]); // only the intact first shard was yielded
  });

  it('reports a checksum mismatch with its file name', () => {
    const dir = fresh();
    writeCorpus(dir, makeRows(6, 4), { blockSize: 4 });
    const shard = join(dir, 'part-w0-00000.arrow');
    const bytes = readFileSync(shard);
    bytes[bytes.length >> 1]! ^= 0xff; // same size, different bytes
    writeFileSync(shard, bytes);
    expect(() => readBlocks(dir)).toThrow(/part-w0-00000\.arrow fails its checksum/);
  });

  it('reports a shard with the wrong schema with its file name', () => {
    const dir = fresh();
    writeCorpus(dir, makeRows(3, 4), { blockSize: 4 });
    // A well-formed Arrow file whose input_ids are float lists and without `score`, with a manifest that matches it.
    const bad = tableFromArrays({ block_id: Int32Array.of(0), generation: Int32Array.of(0) });
    const ids = vectorFromArray([[1, 2, 3, 4]], new List(new Field('item', new Float32(), true)));
    const bytes = tableToIPC(new Table({ block_id: bad.getChild('block_id')!, input_ids: ids }), 'file');
    const name = 'part-w0-00000';
    writeFileSync(join(dir, `${name}.arrow`), bytes);
    const sm = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
    writeFileSync(join(dir, `${name}.json`), JSON.stringify({ ...sm, rows: 1, bytes: bytes.length, sha256: sha256(bytes) }));
    const mf = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    mf.shards[0] = { ...mf.shards[0], rows: 1, bytes: bytes.length, sha256: sha256(bytes) };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(mf));
    // ... and a writer marker that records it (else the marker check reports the replaced shard first).
    writeFileSync(join(dir, 'w0.done.json'), JSON.stringify({ writer: 'w0', rows: 1, shards: 1, files: [{ file: `${name}.arrow`, rows: 1, sha256: sha256(bytes) }] }));
    expect(() => [...readCorpus(dir).rowsIter()]).toThrow(/part-w0-00000\.arrow has the wrong schema.*input_ids: List<Int32>/);
  });

  it('rejects rows whose length is not the block size, and foreign directories', () => {
    const dir = fresh();
    expect(() => writeCorpus(dir, [{ ...makeRows(1, 4)[0]!, input_ids: [1, 2] }], { blockSize: 4 })).toThrow(/has 2 input_ids, the corpus block size is 4/);
    expect(() => readCorpus(root)).toThrow(/manifest\.json is missing/);
    // writeCorpus builds under a temporary name: a failing row stream leaves no directory behind.
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const full = fresh();
    writeCorpus(full, makeRows(2, 4), { blockSize: 4 });
    expect(() => writeCorpus(full, makeRows(2, 4), { blockSize: 4 })).toThrow(/already exists and is not empty/);
  });
});

describe('corpus operations', () => {
  it('fixedFraction picks the same blocks whatever the order, with an exact count', () => {
    const ids = Int32Array.from({ length: 1000 }, (_, i) => i * 3 + 1);
    const a = fixedFraction(ids, 0.3, 42);
    expect(a.length).toBe(300);
    const pickedA = new Set(Array.from(a, (i) => ids[i]!));
    const perm = new Rng(5).permutation(ids.length);
    const shuffled = Int32Array.from(perm, (p) => ids[p]!);
    const pickedB = new Set(Array.from(fixedFraction(shuffled, 0.3, 42), (i) => shuffled[i]!));
    expect(pickedB).toEqual(pickedA);
    const other = new Set(Array.from(fixedFraction(ids, 0.3, 43), (i) => ids[i]!));
    expect([...other].filter((x) => pickedA.has(x)).length).toBeLessThan(150); // ~90 expected for independent seeds
    expect(fixedFraction(ids, 1, 1).length).toBe(1000);
    expect(() => fixedFraction(ids, 1.5, 1)).toThrow(/fraction/);
  });

  it('subsamples and concatenates corpora', () => {
    const sub = subsampleIndices(50, 10, 1);
    expect(sub.length).toBe(10);
    expect(new Set(sub).size).toBe(10);
    expect(Array.from(sub)).toEqual(Array.from(sub).sort((x, y) => x - y));

    const d1 = fresh();
    const d2 = fresh();
    writeCorpus(d1, makeRows(6, 4, 0), { blockSize: 4 });
    writeCorpus(d2, makeRows(4, 4, 50), { blockSize: 4 });

    const out = fresh();
    concatCorpora([d1, d2], out, { select: (ci, rows) => (ci === 0 ? [1, 3] : Array.from({ length: rows }, (_, i) => i)) });
    expect(Array.from(readBlocks(out).blockIds)).toEqual([1, 3, 50, 51, 52, 53]);
    expect(readCorpus(out).manifest.provenance.sources).toEqual([d1, d2]);
  });
});
