// The tokenizer fingerprint (models/tokenizer-identity.ts): one canonical form whichever files describe the
// tokenizer, different for different vocabularies, and a directory whose two descriptions disagree named.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer, tinyTokenizerFiles, tinyVocabulary } from '../../datasets/tokenizer.js';
import { identityOfFiles, tokenizerIdentity, tokenizerMismatch } from '../../models/tokenizer-identity.js';
import { sha256 } from '../../util/sha256.js';
import { sharedPath } from '../helpers/shared.js';

const optDir = sharedPath('tokenizers/opt-125m');
const gpt2Dir = sharedPath('tokenizers/gpt2');
const root = mkdtempSync(join(tmpdir(), 'tok-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('tokenizer fingerprint', () => {
  it('is the sha256 of the ids with their tokens, then the merges (the tiny word-level tokenizer has none)', () => {
    const expected = sha256(JSON.stringify({ vocab: tinyVocabulary().map((t, i) => [i, t]), merges: [] }));
    expect(identityOfFiles(tinyTokenizerFiles(), 'tiny')).toEqual({ fingerprint: expected, source: 'tokenizer.json', conflict: null });
  });

  it('a corpus or a model of unknown tokenizer is not refused; two known different ones are, naming both', () => {
    const corpus = { flag: '--data', path: '/c', fingerprint: 'a'.repeat(64), tokenizer: '/tok/gpt2' };
    expect(tokenizerMismatch({ ...corpus, fingerprint: undefined }, { name: '/m', fingerprint: 'b'.repeat(64) })).toBeNull();
    expect(tokenizerMismatch(corpus, { name: '/m' })).toBeNull();
    expect(tokenizerMismatch(corpus, { name: '/m', fingerprint: 'a'.repeat(64) })).toBeNull();
    expect(tokenizerMismatch(corpus, { name: '/m', fingerprint: 'b'.repeat(64), source: 'tokenizer.json' })).toBe(
      '--data /c was tokenized by the tokenizer /tok/gpt2 (fingerprint aaaaaaaaaaaa), but the model /m uses its own tokenizer ' +
        '(tokenizer.json, fingerprint bbbbbbbbbbbb): its ids mean other tokens there. Prepare the corpus with the model\'s tokenizer ' +
        '(collapse prepare --tokenizer /m), or use the model it was made for',
    );
  });
});

describe.skipIf(!optDir || !gpt2Dir)('tokenizer fingerprint of real tokenizers', () => {
  const files = (dir: string, names: string[]) => Object.fromEntries(names.map((f) => [f, readFileSync(join(dir, f))]));

  it("GPT-2's tokenizer.json and its vocab.json + merges.txt are one tokenizer; OPT's ids are another", () => {
    const fromJson = identityOfFiles(files(gpt2Dir!, ['tokenizer.json']), gpt2Dir!)!;
    const fromPair = identityOfFiles(files(gpt2Dir!, ['vocab.json', 'merges.txt']), gpt2Dir!)!;
    expect(fromPair.fingerprint).toBe(fromJson.fingerprint);
    expect(tokenizerIdentity(gpt2Dir!)).toEqual({ ...fromJson, conflict: null });
    const opt = tokenizerIdentity(optDir!)!;
    expect(opt.source).toBe('vocab.json+merges.txt');
    expect(opt.fingerprint).not.toBe(fromJson.fingerprint);
  });

  it('a directory with OPT vocab.json + merges.txt and GPT-2 tokenizer.json says so and names the one used (the loader\'s)', () => {
    const dir = join(root, 'mixed');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const f of ['vocab.json', 'merges.txt', 'config.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(optDir!, f), join(dir, f));
    copyFileSync(join(gpt2Dir!, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const id = tokenizerIdentity(dir)!;
    const gpt2 = tokenizerIdentity(gpt2Dir!)!.fingerprint;
    const opt = tokenizerIdentity(optDir!)!.fingerprint;
    expect(id.fingerprint).toBe(gpt2);
    expect(id.conflict).toBe(
      `${dir} holds two tokenizers that disagree: tokenizer.json (${gpt2.slice(0, 12)}) and vocab.json + merges.txt (${opt.slice(0, 12)}); using tokenizer.json`,
    );
    expect(loadTokenizer(dir).source).toBe(id.source);
  });
});
