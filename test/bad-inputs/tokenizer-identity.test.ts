// Tokenizers are identities (issue 27): a corpus records the fingerprint of the tokenizer that made its ids,
// and eval, generate and train refuse a corpus of another tokenizer than the model's, naming both. Every case
// passed with exit code 0 before (the ids fit the embedding table and meant other tokens). Also: a model
// directory with two disagreeing tokenizer descriptions is named, and a truncated model.safetensors is an error
// naming it (it was taken for "a foreign graph").
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../datasets/corpus-store.js';
import { tokenizerIdentity } from '../../models/tokenizer-identity.js';
import { initModelDir } from '../../scripts/commands/model.js';
import { sharedPath } from '../helpers/shared.js';
import { collapse, expectFailure, snapshot } from './harness.js';

const gpt2Tok = sharedPath('tokenizers/gpt2');
const optTok = sharedPath('tokenizers/opt-125m');
const optModel = sharedPath('models/opt-tiny-torch-export-opset17');
const gpt2Model = sharedPath('models/gpt2-tiny-torch-export-opset17');
const root = mkdtempSync(join(tmpdir(), 'tokenizer-identity-'));
const p = (...xs: string[]): string => join(root, ...xs);
const savedEnv = { ...process.env };
const FP = '[0-9a-f]{12}';

async function prepared(name: string, tokenizer: string): Promise<string> {
  const out = p(name);
  const r = await collapse('prepare', '--data', 'synthetic', '--rows', '24', '--tokenizer', tokenizer, '--block-size', '16', '--out', out);
  expect(r.code, r.err).toBe(0);
  return out;
}

beforeAll(() => {
  process.env.COLLAPSE_CACHE_DIR = p('cache');
  process.env.COLLAPSE_ARTIFACT_CACHE = p('artifacts');
  process.env.CI = '1';
  delete process.env.COLLAPSE_DEBUG;
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!gpt2Tok || !optTok || !optModel || !gpt2Model)('a corpus of another tokenizer is refused, naming both', () => {
  let gpt2Corpus: string, optCorpus: string, tinyCorpus: string;
  beforeAll(async () => {
    gpt2Corpus = await prepared('gpt2-corpus', gpt2Tok!);
    optCorpus = await prepared('opt-corpus', optTok!);
    tinyCorpus = await prepared('tiny-corpus', 'tiny');
  }, 120_000);

  it('prepare records the fingerprint of the tokenizer it used (the same as the model directory of that tokenizer)', () => {
    expect(readManifest(gpt2Corpus).tokenizerFingerprint).toBe(tokenizerIdentity(gpt2Model!)!.fingerprint);
    expect(readManifest(optCorpus).tokenizerFingerprint).toBe(tokenizerIdentity(optModel!)!.fingerprint);
  });

  it('eval of a GPT-2-tokenized corpus with the OPT model', async () => {
    const before = snapshot(gpt2Corpus);
    expectFailure(
      await collapse('eval', '--model', optModel!, '--data', gpt2Corpus, '--threads', '1'),
      new RegExp(`--data ${gpt2Corpus} was tokenized by the tokenizer ${gpt2Tok} \\(fingerprint ${FP}\\), but the model ${optModel} uses its own tokenizer \\(vocab\\.json\\+merges\\.txt, fingerprint ${FP}\\)`),
      { dir: gpt2Corpus, before },
    );
  });

  it('eval with a --reference corpus of another tokenizer', async () => {
    expectFailure(
      await collapse('eval', '--model', optModel!, '--data', optCorpus, '--reference', gpt2Corpus, '--threads', '1'),
      new RegExp(`--reference ${gpt2Corpus} was tokenized by the tokenizer ${gpt2Tok} \\(fingerprint ${FP}\\), but the model ${optModel}`),
    );
  });

  it('generate with the GPT-2 model on OPT-tokenized prompts', async () => {
    const out = p('gen-opt');
    expectFailure(
      await collapse('generate', '--model', gpt2Model!, '--prompts', optCorpus, '--out', out, '--strategy', 'greedy', '--new-tokens', '2', '--threads', '1'),
      new RegExp(`--prompts ${optCorpus} was tokenized by the tokenizer ${optTok} \\(fingerprint ${FP}\\), but the model ${gpt2Model} uses its own tokenizer \\(tokenizer\\.json`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it('generate with the GPT-2 model on tiny-tokenized prompts', async () => {
    const out = p('gen-tiny');
    expectFailure(
      await collapse('generate', '--model', gpt2Model!, '--prompts', tinyCorpus, '--out', out, '--strategy', 'greedy', '--new-tokens', '2', '--threads', '1'),
      new RegExp(`--prompts ${tinyCorpus} was tokenized by the tokenizer tiny \\(fingerprint ${FP}\\), but the model ${gpt2Model}`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it('train the OPT model on a GPT-2-tokenized corpus', async () => {
    const out = p('train-gpt2');
    expectFailure(
      await collapse('train', '--model', optModel!, '--train', gpt2Corpus, '--out', out, '--epochs', '1', '--batch-size', '2', '--micro-batch-size', '2', '--threads', '1'),
      new RegExp(`--train ${gpt2Corpus} was tokenized by the tokenizer ${gpt2Tok} .*but the model ${optModel} uses its own tokenizer`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it('a corpus written before fingerprints were recorded is not refused (unknown tokenizer)', async () => {
    const old = p('old-corpus');
    cpSync(gpt2Corpus, old, { recursive: true });
    const m = JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8'));
    delete m.tokenizerFingerprint;
    writeFileSync(join(old, 'manifest.json'), JSON.stringify(m));
    const r = await collapse('eval', '--model', optModel!, '--data', old, '--threads', '1', '--self-bleu-samples', '0');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/perplexity\s+\d/);
  });

  it('an OPT directory that also holds GPT-2\'s tokenizer.json: prepare and model info name both and the one used', async () => {
    const mixed = p('opt-with-gpt2-json');
    cpSync(optModel!, mixed, { recursive: true });
    cpSync(join(gpt2Tok!, 'tokenizer.json'), join(mixed, 'tokenizer.json'));
    const gpt2 = tokenizerIdentity(gpt2Tok!)!.fingerprint.slice(0, 12);
    const opt = tokenizerIdentity(optTok!)!.fingerprint.slice(0, 12);
    const said = `${mixed} holds two tokenizers that disagree: tokenizer.json (${gpt2}) and vocab.json + merges.txt (${opt}); using tokenizer.json`;
    const out = p('mixed-corpus');
    const r = await collapse('prepare', '--data', 'synthetic', '--rows', '24', '--tokenizer', mixed, '--block-size', '16', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`WARNING: ${said}`);
    // The ids are GPT-2's, and the corpus says so: the OPT model of vocab.json + merges.txt refuses it.
    expect(readManifest(out).tokenizerFingerprint).toBe(tokenizerIdentity(gpt2Tok!)!.fingerprint);
    expectFailure(await collapse('eval', '--model', optModel!, '--data', out, '--threads', '1'), /was tokenized by the tokenizer .*opt-with-gpt2-json/);
    const info = await collapse('model', 'info', mixed);
    expect(info.code, info.err).toBe(0);
    expect(info.out).toContain(`WARNING: ${said}`);
  });
});

describe('a truncated model.safetensors is named', () => {
  let broken: string;
  let before: Record<string, string>;
  beforeAll(() => {
    broken = p('truncated-model');
    initModelDir({ config: 'tiny', seed: 1, out: broken });
    truncateSync(join(broken, 'model.safetensors'), 5000);
    before = snapshot(broken);
  });

  it('model info', async () => {
    expectFailure(await collapse('model', 'info', broken), new RegExp(`${broken}/model\\.safetensors is truncated: tensor \\S+ needs data bytes`), { dir: broken, before });
  });

  it('eval', async () => {
    const data = p('tiny-data');
    if (!existsSync(data)) await prepared('tiny-data', 'tiny');
    expectFailure(await collapse('eval', '--model', broken, '--data', data, '--threads', '1'), new RegExp(`${broken}/model\\.safetensors is truncated`), { dir: broken, before });
  });
});
