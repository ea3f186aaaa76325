// Tokenizers of other families: SentencePiece-style BPE with byte fallback (Llama, Mistral) through
// @huggingface/tokenizers, and BOS handling per family: OPT prepends </s>, GPT-2 adds none, Llama adds <s>
// (transformers rebuilds the Llama post-processor from add_bos_token, whatever tokenizer.json holds).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../datasets/tokenizer.js';
import { sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'tokenizer-families-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny Llama-style tokenizer.json: Metaspace-like normalizer, BPE over a few pieces, byte fallback <0xNN>. */
function llamaTokenizerJson(postProcessor: unknown): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const pieces = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 'he', 'll', 'llo', '▁he', '▁hello', '▁w', 'or', 'ld'];
  for (const p of pieces) vocab[p] = Object.keys(vocab).length;
  const merges = ['h e', 'l l', 'll o', '▁ he', '▁he llo', '▁ w', 'o r', 'l d'];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: postProcessor,
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

function writeLlamaTokenizer(dir: string, postProcessor: unknown, config: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(llamaTokenizerJson(postProcessor)));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', ...config }));
}

describe('tokenizers of other families', () => {
  it('SentencePiece-style BPE with byte fallback: unknown characters become their UTF-8 bytes and decode back', () => {
    const dir = join(tmp, 'llama');
    writeLlamaTokenizer(dir, null, {});
    const tok = loadTokenizer(dir);
    const byte = (b: number) => 3 + b;
    const ids = tok.encode('hello wörld');
    // <s> ▁hello ▁w <0xC3> <0xB6> r ld: "ö" is not a piece, so it falls back to its two UTF-8 bytes.
    expect(ids).toEqual([1, tok.tokenToId('▁hello'), tok.tokenToId('▁w'), byte(0xc3), byte(0xb6), tok.tokenToId('r'), tok.tokenToId('ld')]);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hello wörld');
    expect(tok.fast).toBe(false);
    expect([tok.bosId, tok.eosId, tok.prependsBos]).toEqual([1, 2, true]);
  });

  it('add_bos_token decides for Llama-class tokenizers, as in transformers', () => {
    const off = join(tmp, 'llama-no-bos');
    const bosTemplate = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    };
    writeLlamaTokenizer(off, bosTemplate, { add_bos_token: false });
    expect(loadTokenizer(off).encode('hello')[0]).not.toBe(1);
    const eos = join(tmp, 'llama-eos');
    writeLlamaTokenizer(eos, null, { add_eos_token: true });
    const ids = loadTokenizer(eos).encode('hello');
    expect([ids[0], ids[ids.length - 1]]).toEqual([1, 2]);
  });

  const opt = sharedPath('tokenizers/opt-125m');
  const gpt2 = sharedPath('tokenizers/gpt2');
  it.skipIf(!opt || !gpt2)('OPT prepends </s> (id 2); GPT-2 adds nothing', () => {
    const o = loadTokenizer(opt!);
    expect(o.encode('Hello world')[0]).toBe(2);
    expect(o.prependsBos).toBe(true);
    const g = loadTokenizer(gpt2!);
    expect(g.encode('Hello world')).toEqual([15496, 995]);
    expect(g.prependsBos).toBe(false);
  });
});
