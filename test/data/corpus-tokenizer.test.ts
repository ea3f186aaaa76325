// A corpus made from other corpora (concatCorpora: the mixing of generations) keeps the tokenizer fingerprint
// its sources share, is of unknown tokenizer when a source is, and refuses sources of two tokenizers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { concatCorpora } from '../../datasets/block-set.js';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { readManifest, writeCorpus } from '../../datasets/corpus-store.js';

const root = mkdtempSync(join(tmpdir(), 'corpus-tokenizer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function corpus(name: string, tokenizerFingerprint?: string): string {
  const dir = join(root, name);
  const rows: CorpusRow[] = [0, 1].map((r) => ({
    block_id: r, input_ids: Int32Array.of(r, r + 1, r + 2), text: '', origin: 'original', generation: 0, prompt_block_id: null, score: null,
  }));
  writeCorpus(dir, rows, { blockSize: 3, tokenizerFingerprint });
  return dir;
}

describe('concatCorpora and the tokenizer fingerprint', () => {
  const a1 = corpus('a1', A), a2 = corpus('a2', A), b = corpus('b', B), unknown = corpus('unknown');

  it('sources of one tokenizer: the mix records it', () => {
    concatCorpora([a1, a2], join(root, 'mix-aa'));
    expect(readManifest(join(root, 'mix-aa')).tokenizerFingerprint).toBe(A);
  });

  it('a source of unknown tokenizer (written before fingerprints): the mix is unknown too', () => {
    concatCorpora([a1, unknown], join(root, 'mix-a-unknown'));
    expect(readManifest(join(root, 'mix-a-unknown')).tokenizerFingerprint).toBeUndefined();
  });

  it('sources of two tokenizers are refused, naming both, and nothing is written', () => {
    const out = join(root, 'mix-ab');
    expect(() => concatCorpora([a1, b], out)).toThrow(`${a1} and ${b} were tokenized by different tokenizers (fingerprints aaaaaaaaaaaa and bbbbbbbbbbbb)`);
    expect(() => readManifest(out)).toThrow(/is not a corpus/);
  });
});
