// The Arrow side of a corpus: the row type, the schema every shard has, and a shard's bytes to and from
// rows. Shards are Arrow IPC FILE-format (readable by pyarrow.ipc.open_file). Files, manifests and writers
// are the store's business (corpus-store.ts).
import {
  Field,
  Float64,
  Int32,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
  type Data,
} from 'apache-arrow';

export const CORPUS_SCHEMA_VERSION = 1;

export type Origin = 'original' | 'generated';

export interface CorpusRow {
  block_id: number;
  input_ids: ArrayLike<number>;
  text: string;
  origin: Origin;
  generation: number;
  /** The block whose prefix prompted this generated row (null for original data). */
  prompt_block_id: number | null;
  /** Generation score (e.g. beam log-probability; null for original data). */
  score: number | null;
  /**
   * The candidate's rank among its prompt's candidates (0 = best beam, or the first sample). Only in corpora of
   * several candidates per prompt: a shard has the column when its rows have the field, all or none.
   */
  candidate_rank?: number;
}

/** A corpus that cannot be read as it is (damaged, incomplete, foreign); the message names the file. */
export class CorpusError extends Error {}

/** The column of candidate corpora; a shard without it (every corpus of one row per prompt) stays as it was. */
const CANDIDATE_RANK = new Field('candidate_rank', new Int32(), false);

/** The Arrow schema of a shard: the seven base columns, then candidate_rank in candidate corpora. */
export function corpusSchema(withRank = false): Schema {
  return new Schema([
    new Field('block_id', new Int32(), false),
    new Field('input_ids', new List(new Field('item', new Int32(), true)), false),
    new Field('text', new Utf8(), false),
    new Field('origin', new Utf8(), false),
    new Field('generation', new Int32(), false),
    new Field('prompt_block_id', new Int32(), true),
    new Field('score', new Float64(), true),
    ...(withRank ? [CANDIDATE_RANK] : []),
  ]);
}

function schemaSignature(s: Schema): string[] {
  return s.fields.map((f) => `${f.name}: ${String(f.type)}`);
}

function nullBitmap(values: readonly (number | null)[]): Uint8Array | undefined {
  if (!values.some((v) => v === null)) return undefined;
  const bm = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) bm[i >> 3]! |= 1 << (i & 7);
  });
  return bm;
}

/** One record batch from rows; input_ids must all have length blockSize. */
function rowsToBatch(rows: readonly CorpusRow[], blockSize: number): RecordBatch {
  const n = rows.length;
  const ids = new Int32Array(n * blockSize);
  const offsets = new Int32Array(n + 1);
  rows.forEach((r, i) => {
    if (r.input_ids.length !== blockSize) {
      throw new Error(`row with block_id ${r.block_id} has ${r.input_ids.length} input_ids, the corpus block size is ${blockSize}`);
    }
    for (let j = 0; j < blockSize; j++) ids[i * blockSize + j] = r.input_ids[j]!;
    offsets[i + 1] = (i + 1) * blockSize;
  });
  const ranked = rows.filter((r) => r.candidate_rank !== undefined).length;
  if (ranked !== 0 && ranked !== n) throw new Error(`${ranked} of ${n} rows have a candidate_rank: a shard's rows have one all or none`);
  const schema = corpusSchema(ranked > 0);
  const f = (name: string) => schema.fields.find((x) => x.name === name)!;
  const int32Col = (vals: readonly (number | null)[]): Data<Int32> =>
    makeData({ type: new Int32(), length: n, data: Int32Array.from(vals, (v) => v ?? 0), nullBitmap: nullBitmap(vals) });
  const scores = rows.map((r) => r.score);
  const children: Data[] = [
    int32Col(rows.map((r) => r.block_id)),
    makeData({
      type: f('input_ids').type as List<Int32>,
      length: n,
      valueOffsets: offsets,
      child: makeData({ type: new Int32(), length: ids.length, data: ids }),
    }),
    vectorFromArray(rows.map((r) => r.text), new Utf8()).data[0]!,
    vectorFromArray(rows.map((r) => r.origin), new Utf8()).data[0]!,
    int32Col(rows.map((r) => r.generation)),
    int32Col(rows.map((r) => r.prompt_block_id)),
    makeData({ type: new Float64(), length: n, data: Float64Array.from(scores, (v) => v ?? 0), nullBitmap: nullBitmap(scores) }),
  ];
  if (ranked > 0) children.push(int32Col(rows.map((r) => r.candidate_rank!)));
  const struct = makeData({ type: new Struct(schema.fields), length: n, children });
  return new RecordBatch(schema, struct);
}

/** The bytes of one shard holding `rows` (one record batch). */
export function encodeShard(rows: readonly CorpusRow[], blockSize: number): Uint8Array {
  return tableToIPC(new Table([rowsToBatch(rows, blockSize)]), 'file');
}

/**
 * The record batches of one shard's bytes, checked against the corpus schema and block size (`path` names
 * the file in errors). Throws a CorpusError.
 */
export function decodeShard(bytes: Uint8Array, path: string, blockSize: number): RecordBatch[] {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new CorpusError(`shard ${path} is not an Arrow IPC file: ${(e as Error).message}`);
  }
  const have = schemaSignature(table.schema);
  const want = schemaSignature(corpusSchema(have.length > corpusSchema().fields.length));
  if (want.join('\n') !== have.join('\n')) {
    const diff = want.filter((x) => !have.includes(x));
    const extra = have.filter((x) => !want.includes(x));
    throw new CorpusError(`shard ${path} has the wrong schema: expected [${diff.join(', ')}] but found [${extra.join(', ')}]`);
  }
  for (const b of table.batches) {
    const { offsets } = batchIds(b);
    for (let i = 0; i < b.numRows; i++) {
      const len = offsets[i + 1]! - offsets[i]!;
      if (len !== blockSize) throw new CorpusError(`shard ${path}: row ${i} has ${len} input_ids, the corpus block size is ${blockSize}`);
    }
  }
  return table.batches;
}

/** A batch's input_ids: row i is values[offsets[i] .. offsets[i + 1]) (views, no copy). */
export function batchIds(b: RecordBatch): { values: Int32Array; offsets: Int32Array } {
  const col = b.getChild('input_ids');
  if (!col || col.data.length !== 1) throw new CorpusError('input_ids column missing');
  const d = col.data[0] as Data<List<Int32>>;
  const offsets = (d.valueOffsets as Int32Array).subarray(d.offset, d.offset + d.length + 1);
  return { values: d.children[0]!.values as Int32Array, offsets };
}

/** A batch's rows as plain objects. */
export function* batchRows(b: RecordBatch): Generator<CorpusRow> {
  const { values, offsets } = batchIds(b);
  const col = (n: string) => b.getChild(n)!;
  const [blockId, text, origin, gen, prompt, score] = ['block_id', 'text', 'origin', 'generation', 'prompt_block_id', 'score'].map(col);
  const rank = b.getChild('candidate_rank');
  for (let i = 0; i < b.numRows; i++) {
    yield {
      block_id: blockId!.get(i) as number,
      input_ids: values.slice(offsets[i]!, offsets[i + 1]!),
      text: text!.get(i) as string,
      origin: origin!.get(i) as Origin,
      generation: gen!.get(i) as number,
      prompt_block_id: prompt!.get(i) as number | null,
      score: score!.get(i) as number | null,
      ...(rank ? { candidate_rank: rank.get(i) as number } : {}),
    };
  }
}
