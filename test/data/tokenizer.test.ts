import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { loadTokenizer, tinyTokenizerFiles, tinyVocabulary, TINY_VOCAB_SIZE } from '../../datasets/tokenizer.js';
import { sharedPath } from '../helpers/shared.js';

const optDir = sharedPath('tokenizers/opt-125m');
const gpt2Dir = sharedPath('tokenizers/gpt2');
const wikiValid = sharedPath('data/wikitext-2-raw/wiki.valid.raw');

describe.skipIf(!optDir)('OPT tokenizer from vocab.json + merges.txt', () => {
  const tok = optDir ? loadTokenizer(optDir) : (null as never); // the describe body runs even when skipped
  it('gives the reference ids', () => {
    expect(tok.encode('Hello')).toEqual([2, 31414]);
    expect(tok.encode('Hello', { addSpecialTokens: false })).toEqual([31414]);
    expect(tok.encode(' world', { addSpecialTokens: false })).toEqual([232]);
    expect(tok.encode('')).toEqual([2]); // run_clm: an empty row still gets </s>
    expect([tok.bosId, tok.eosId, tok.padId, tok.vocabSize]).toEqual([2, 2, 1, 50265]);
    expect(tok.prependsBos).toBe(true);
  });
  it('round-trips text through decode', () => {
    const text = ' = Valkyria Chronicles III = \n Senjō no Valkyria 3 : <unk> Chronicles ( Japanese : 戦場のヴァルキュリア3 ) \n';
    expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
    expect(tok.decode(tok.encode(text))).toBe(`</s>${text}`);
  });
});

describe.skipIf(!optDir || !wikiValid)('memoized byte-level BPE encode', () => {
  it('gives exactly the library\'s ids on every WikiText-2 valid line and on edge cases', () => {
    const tok = loadTokenizer(optDir!);
    expect(tok.fast).toBe(true);
    const lines = readFileSync(wikiValid!, 'utf8').split('\n').slice(0, 1500).map((l) => `${l}\n`);
    lines.push('', ' ', '</s>', '<pad><pad>', 'a</s>b <pad> c', '  x\t\ty \u00a0\u3000 ñ 😀 123,456.78 \r\n', "it's we'll I'M");
    let n = 0;
    for (const l of lines) {
      for (const addSpecialTokens of [true, false]) {
        const want = tok.hf.encode(l, { add_special_tokens: addSpecialTokens }).ids;
        expect(tok.encode(l, { addSpecialTokens })).toEqual(want);
        n += want.length;
      }
    }
    expect(n).toBeGreaterThan(150_000);
  });
});

describe.skipIf(!gpt2Dir || !wikiValid)('GPT-2: tokenizer.json and vocab.json + merges.txt agree', () => {
  it('gives identical ids on 500 WikiText lines and round-trips them', () => {
    const fromJson = loadTokenizer(gpt2Dir!);
    expect(fromJson.source).toBe('tokenizer.json');
    // Same files without tokenizer.json force the vocab + merges path.
    const d = mkdtempSync(join(tmpdir(), 'gpt2-bpe-'));
    try {
      for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'])
        writeFileSync(join(d, f), readFileSync(join(gpt2Dir!, f)));
      const fromBpe = loadTokenizer(d);
      expect(fromBpe.source).toBe('vocab.json+merges.txt');
      const lines = readFileSync(wikiValid!, 'utf8').split('\n').slice(0, 500).map((l) => `${l}\n`);
      lines.push('Hello world<|endoftext|> tab\there  multiple   spaces 123,456.78 émigré ñ 😀\n');
      let n = 0;
      for (const l of lines) {
        const a = fromJson.encode(l);
        expect(fromBpe.encode(l)).toEqual(a);
        // And the library's own encode on both built tokenizers (not only the memoized path).
        expect(fromBpe.hf.encode(l).ids).toEqual(a);
        expect(fromJson.hf.encode(l).ids).toEqual(a);
        expect(fromJson.decode(a)).toBe(l);
        n += a.length;
      }
      expect(n).toBeGreaterThan(20_000);
      expect(fromJson.encode('Hello world')).toEqual([15496, 995]);
      expect(fromJson.eosId).toBe(50256);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('tiny word-level tokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-tok-'));
  for (const [f, c] of Object.entries(tinyTokenizerFiles())) writeFileSync(join(dir, f), c);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const src = new SyntheticSource();
  const rows = src.sample(20, 7);
  const vocab = tinyVocabulary();

  it('maps each word of the synthetic source to its own id and prepends </s>', () => {
    const tok = loadTokenizer(dir);
    expect(tok.vocabSize).toBe(TINY_VOCAB_SIZE);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([2, 2, 1]);
    for (const r of rows) {
      const words = r.trim().split(' ');
      const expected = [2, ...words.map((w) => vocab.indexOf(w))];
      expect(expected.slice(1).every((i) => i >= 4)).toBe(true); // every word known, none is a special
      expect(tok.encode(r)).toEqual(expected);
      expect(tok.decode(tok.encode(r), { skipSpecialTokens: true })).toBe(r.trim());
    }
    expect(tok.encode('zzzq .', { addSpecialTokens: false })).toEqual([3, 4]);
  });

  it('loads in @huggingface/transformers from a local directory with the same ids', async () => {
    const { AutoTokenizer, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.localModelPath = `${dirname(dir)}/`;
    const hf = await AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
    const tok = loadTokenizer(dir);
    for (const r of rows.slice(0, 5)) expect(Array.from(hf.encode(r))).toEqual(tok.encode(r));
    expect(hf.decode(tok.encode(rows[0]!), { skip_special_tokens: true })).toBe(rows[0]!.trim());
  });
});
