// The project's own small word-level tokenizer (the tiny model cannot download one): the default synthetic
// source's words plus ".", specials `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3, and an OPT-like post-processor
// that prepends `</s>`. Loads in @huggingface/tokenizers (through loadTokenizer) and transformers.js.
import { tinyOptConfig, type OptConfig } from '../models/opt/config.js';
import { DEFAULT_SYNTHETIC, END_OF_SENTENCE, syntheticWords } from './synthetic.js';

export const TINY_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;

/** The tiny tokenizer's vocabulary, in id order. */
export function tinyVocabulary(words: string[] = syntheticWords(DEFAULT_SYNTHETIC.vocabSize)): string[] {
  return [...TINY_SPECIALS, END_OF_SENTENCE, ...words];
}

/** 4 specials + "." + 507 words: the embedding of the tiny model has this many rows. */
export const TINY_VOCAB_SIZE = TINY_SPECIALS.length + 1 + DEFAULT_SYNTHETIC.vocabSize;

/** The tiny OPT, one embedding row per token of this tokenizer. */
export const TINY_CONFIG: OptConfig = tinyOptConfig(TINY_VOCAB_SIZE);

/** File name -> content of the tiny tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json). */
export function tinyTokenizerFiles(words?: string[]): Record<string, string> {
  const vocabList = tinyVocabulary(words);
  const vocab = Object.fromEntries(vocabList.map((w, i) => [w, i]));
  const special = (id: number) => ({
    id,
    content: vocabList[id]!,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TINY_SPECIALS.map((_, i) => special(i)),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
    },
    // No decoder: tokens are joined with single spaces, which is how the synthetic text is rendered.
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '</s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    add_bos_token: true,
    clean_up_tokenization_spaces: false,
    model_max_length: 256,
    added_tokens_decoder: Object.fromEntries(
      TINY_SPECIALS.map((_, i) => {
        const { id: _id, ...rest } = special(i);
        return [String(i), rest];
      }),
    ),
  };
  const specialTokensMap = { bos_token: '</s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>' };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'tokenizer.json': json(tokenizerJson),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json(specialTokensMap),
  };
}
