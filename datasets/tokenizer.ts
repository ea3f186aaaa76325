// Tokenizers through @huggingface/tokenizers (pure JS). A directory holds either `tokenizer.json`, or
// `vocab.json` + `merges.txt` (GPT-2/OPT byte-level BPE, as the facebook/opt-125m repository ships); in the
// second case the tokenizer.json is built in memory the way transformers' GPT2Converter does it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { tokenizerIdentity, type TokenizerIdentity } from '../models/tokenizer-identity.js';

export interface Tokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
  vocabSize: number;
  bosId: number;
  eosId: number;
  padId: number;
}

/** The loaded tokenizer plus what callers sometimes need beyond the contract. */
export interface LoadedTokenizer extends Tokenizer {
  /** Whether encode(..., {addSpecialTokens: true}) prepends the BOS token (OPT: `</s>` = 2). */
  prependsBos: boolean;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Whether encode uses the memoized byte-level BPE path (identical ids, faster). */
  fast: boolean;
  /** Where it came from: `tokenizer.json` or `vocab.json+merges.txt`. */
  source: 'tokenizer.json' | 'vocab.json+merges.txt';
  /** Its fingerprint (what corpus manifests record), and whether the directory's two descriptions disagree. */
  identity: TokenizerIdentity;
  hf: HfTokenizer;
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (e) {
    throw new Error(`cannot read tokenizer file ${path}: ${(e as Error).message}`);
  }
}

function readOptionalJson(path: string): Json {
  return existsSync(path) ? readJson(path) : {};
}

/** A special token in tokenizer_config.json / special_tokens_map.json is a string or `{content, ...}`. */
interface SpecialToken {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  single_word: boolean;
}

function asSpecial(v: unknown): SpecialToken | null {
  if (typeof v === 'string') return { content: v, lstrip: false, rstrip: false, normalized: true, single_word: false };
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') {
    const o = v as Json;
    return {
      content: o.content as string,
      lstrip: o.lstrip === true,
      rstrip: o.rstrip === true,
      normalized: o.normalized !== false,
      single_word: o.single_word === true,
    };
  }
  return null;
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** Special tokens named by the config files (tokenizer_config.json wins over special_tokens_map.json). */
function specialTokens(tokCfg: Json, specialMap: Json): Map<string, SpecialToken> {
  const out = new Map<string, SpecialToken>();
  for (const src of [specialMap, tokCfg]) {
    for (const k of SPECIAL_KEYS) {
      const s = asSpecial(src[k]);
      if (s) out.set(k, s);
    }
    const extra = src.additional_special_tokens;
    if (Array.isArray(extra)) {
      extra.forEach((t, i) => {
        const s = asSpecial(t);
        if (s) out.set(`additional_${i}`, s);
      });
    }
  }
  return out;
}

/** tokenizer.json equivalent of transformers' GPT2Converter for a vocab.json + merges.txt directory. */
export function byteLevelBpeJson(dir: string): { tokenizerJson: Json; config: Json } {
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  const vocab = readJson(vocabPath) as Record<string, number>;
  const merges = readFileSync(mergesPath, 'utf8')
    .split('\n')
    .filter((l, i) => !(i === 0 && l.startsWith('#version')) && l.trim().length > 0);
  for (const [i, m] of merges.entries()) {
    if (m.split(' ').length !== 2) throw new Error(`${mergesPath}: line ${i + 1} is not a merge "a b": ${JSON.stringify(m)}`);
  }
  const tokCfg = readOptionalJson(join(dir, 'tokenizer_config.json'));
  const specialMap = readOptionalJson(join(dir, 'special_tokens_map.json'));
  const specials = specialTokens(tokCfg, specialMap);

  // Added tokens: the named special tokens, plus tokenizer_config's added_tokens_decoder (id -> token).
  const added = new Map<number, Json>();
  const decoderCfg = (tokCfg.added_tokens_decoder ?? {}) as Record<string, Json>;
  for (const [id, t] of Object.entries(decoderCfg)) {
    const s = asSpecial(t);
    if (s) added.set(Number(id), { id: Number(id), ...s, special: t.special !== false });
  }
  for (const s of specials.values()) {
    const id = vocab[s.content];
    if (id === undefined) {
      if ([...added.values()].some((a) => a.content === s.content)) continue;
      throw new Error(`${join(dir, 'tokenizer_config.json')}: special token ${JSON.stringify(s.content)} is not in ${vocabPath}`);
    }
    if (!added.has(id)) added.set(id, { id, ...s, special: true });
  }

  const addPrefixSpace = tokCfg.add_prefix_space === true;
  const bos = specials.get('bos_token');
  let postProcessor: Json = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };
  if (tokCfg.add_bos_token === true && bos) {
    const bosId = vocab[bos.content];
    postProcessor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos.content, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos.content]: { id: bos.content, ids: [bosId], tokens: [bos.content] } },
    };
  }
  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...added.values()].sort((a, b) => (a.id as number) - (b.id as number)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  return { tokenizerJson, config: tokCfg };
}

/**
 * A faster encode for byte-level BPE tokenizers (GPT-2, OPT), exactly equal to the library's: the library
 * splits on added tokens, matches the ByteLevel regex, maps each piece to byte characters and runs BPE
 * on each piece independently, then applies the post-processor template. Each distinct piece's ids are
 * computed once by the library itself and memoized, which removes most of the per-call overhead
 * (scripts/bench-prepare.ts against --slow). Returns null when the tokenizer has any feature this path does not reproduce.
 */
function byteLevelFastEncoder(hf: HfTokenizer, tj: Json, cfg: Json): ((text: string, addSpecial: boolean) => number[]) | null {
  const pre = tj.pre_tokenizer as Json | null;
  const model = tj.model as Json | null;
  const post = tj.post_processor as Json | null;
  const added = (tj.added_tokens ?? []) as Json[];
  if (tj.normalizer != null || !pre || pre.type !== 'ByteLevel' || pre.add_prefix_space === true || pre.use_regex === false) return null;
  if (!model || model.type !== 'BPE' || model.dropout != null || model.byte_fallback === true) return null;
  if (added.some((a) => a.lstrip === true || a.rstrip === true || a.single_word === true)) return null;
  if (cfg.remove_space === true || cfg.do_lowercase_and_remove_accent === true) return null;
  let template: ({ special: string } | { seq: true })[];
  if (post == null || post.type === 'ByteLevel') template = [{ seq: true }];
  else if (post.type === 'TemplateProcessing' && Array.isArray(post.single)) {
    template = [];
    for (const item of post.single as Json[]) {
      if ('SpecialToken' in item) template.push({ special: (item.SpecialToken as Json).id as string });
      else if ('Sequence' in item && (item.Sequence as Json).id === 'A') template.push({ seq: true });
      else return null;
    }
  } else return null;

  const internals = hf as unknown as {
    splitter_unnormalized?: { split(text: string): string[] };
    added_tokens_map?: Map<string, { id: number }>;
    pre_tokenizer: { pattern?: RegExp; byte_encoder?: Record<number, string> } | null;
    model: ((tokens: string[]) => string[]) & { unk_token_id?: number };
  };
  const pattern = internals.pre_tokenizer?.pattern;
  const byteEncoder = internals.pre_tokenizer?.byte_encoder;
  const splitter = internals.splitter_unnormalized;
  const addedMap = internals.added_tokens_map;
  if (!(pattern instanceof RegExp) || !byteEncoder || !splitter || !addedMap) return null;
  const regex = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  const utf8 = new TextEncoder();
  const toId = (t: string): number => addedMap.get(t)?.id ?? hf.token_to_id(t) ?? internals.model.unk_token_id ?? -1;
  const specialIds = template.map((t) => ('special' in t ? toId(t.special) : -1));
  const pieceIds = new Map<string, number[]>();

  return (text, addSpecial) => {
    const out: number[] = [];
    template.forEach((item, k) => {
      if ('special' in item) {
        if (addSpecial) out.push(specialIds[k]!);
        return;
      }
      for (const section of splitter.split(text)) {
        if (section.length === 0) continue;
        const addedTok = addedMap.get(section);
        if (addedTok) {
          out.push(addedTok.id);
          continue;
        }
        for (const piece of section.match(regex) ?? []) {
          let ids = pieceIds.get(piece);
          if (ids === undefined) {
            // As the library's ByteLevel pre-tokenizer: UTF-8 bytes to their characters; then its BPE.
            const mapped = Array.from(utf8.encode(piece), (b) => byteEncoder[b]!).join('');
            ids = internals.model([mapped]).map(toId);
            if (pieceIds.size >= 2_000_000) pieceIds.clear(); // bounded memory on huge corpora
            pieceIds.set(piece, ids);
          }
          for (const id of ids) out.push(id);
        }
      }
    });
    return out;
  };
}

/**
 * transformers' Llama-, CodeLlama-, Gemma- and GPT-NeoX fast tokenizers rebuild tokenizer.json's post-processor
 * from tokenizer_config.json's add_bos_token / add_eos_token (update_post_processor), whatever the file holds;
 * so does this. BOS defaults on for the Llama-like classes, off for GPT-NeoX; EOS defaults off.
 */
const TEMPLATE_CLASSES: Record<string, boolean> = { Llama: true, CodeLlama: true, Gemma: true, GPTNeoX: false };

function withSpecialTemplate(tj: Json, cfg: Json): Json {
  const cls = typeof cfg.tokenizer_class === 'string' ? /^(\w+?)Tokenizer(Fast)?$/.exec(cfg.tokenizer_class)?.[1] : undefined;
  if (cls === undefined || !(cls in TEMPLATE_CLASSES)) return tj;
  const addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : TEMPLATE_CLASSES[cls]!;
  const addEos = cfg.add_eos_token === true;
  const bos = tokenString(cfg, 'bos_token');
  const eos = tokenString(cfg, 'eos_token');
  const added = (tj.added_tokens ?? []) as Json[];
  const vocab = ((tj.model as Json | undefined)?.vocab ?? {}) as Record<string, number>;
  const idOf = (t: string): number | undefined => (added.find((a) => a.content === t)?.id as number | undefined) ?? vocab[t];
  const specials: Json = {};
  const seq = (id: 'A' | 'B', type: number): Json[] => {
    const out: Json[] = [];
    if (addBos && bos !== undefined && idOf(bos) !== undefined) out.push({ SpecialToken: { id: bos, type_id: type } });
    out.push({ Sequence: { id, type_id: type } });
    if (addEos && eos !== undefined && idOf(eos) !== undefined) out.push({ SpecialToken: { id: eos, type_id: type } });
    return out;
  };
  for (const t of [addBos ? bos : undefined, addEos ? eos : undefined])
    if (t !== undefined && idOf(t) !== undefined) specials[t] = { id: t, ids: [idOf(t)], tokens: [t] };
  return { ...tj, post_processor: { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens: specials } };
}

function tokenString(cfg: Json, key: string): string | undefined {
  return asSpecial(cfg[key])?.content;
}

/**
 * Loads the tokenizer in `dir`. Special ids come from tokenizer_config.json / special_tokens_map.json,
 * falling back to config.json's `bos_token_id` etc.; a tokenizer without a pad token pads with EOS.
 */
export function loadTokenizer(dir: string): LoadedTokenizer {
  if (!existsSync(dir)) throw new Error(`tokenizer directory ${dir} does not exist (pass --tokenizer DIR)`);
  const tjPath = join(dir, 'tokenizer.json');
  let tokenizerJson: Json;
  let source: LoadedTokenizer['source'];
  const tokCfg = readOptionalJson(join(dir, 'tokenizer_config.json'));
  if (existsSync(tjPath)) {
    tokenizerJson = readJson(tjPath);
    source = 'tokenizer.json';
  } else if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
    tokenizerJson = byteLevelBpeJson(dir).tokenizerJson;
    source = 'vocab.json+merges.txt';
  } else {
    throw new Error(`${dir} has neither tokenizer.json nor vocab.json + merges.txt: not a tokenizer directory`);
  }
  const specialMap = readOptionalJson(join(dir, 'special_tokens_map.json'));
  const modelCfg = readOptionalJson(join(dir, 'config.json'));
  const merged: Json = { ...specialMap, ...tokCfg };
  // Our decode round-trips text; clean_up_tokenization_spaces would turn " ." into ".".
  const hfConfig: Json = { ...merged, clean_up_tokenization_spaces: false };
  for (const k of SPECIAL_KEYS) {
    const s = tokenString(merged, k);
    if (s !== undefined) hfConfig[k] = s;
    else delete hfConfig[k];
  }
  tokenizerJson = withSpecialTemplate(tokenizerJson, merged);
  const hf = new HfTokenizer(tokenizerJson, hfConfig);
  const fast = process.env.COLLAPSE_SLOW_TOKENIZER ? null : byteLevelFastEncoder(hf, tokenizerJson, hfConfig);
  const encodeIds = fast ?? ((text: string, addSpecial: boolean) => hf.encode(text, { add_special_tokens: addSpecial }).ids);

  const idOf = (key: string, idKey: string): number | undefined => {
    const s = tokenString(merged, key);
    const id = s !== undefined ? hf.token_to_id(s) : undefined;
    if (id !== undefined) return id;
    const fromModel = modelCfg[idKey];
    return typeof fromModel === 'number' ? fromModel : undefined;
  };
  const eosId = idOf('eos_token', 'eos_token_id');
  const bosId = idOf('bos_token', 'bos_token_id') ?? eosId;
  const padId = idOf('pad_token', 'pad_token_id') ?? eosId;
  if (eosId === undefined || bosId === undefined || padId === undefined) {
    throw new Error(`${dir}: no eos_token in tokenizer_config.json/special_tokens_map.json nor eos_token_id in config.json`);
  }
  const probe = hf.encode('a', { add_special_tokens: true }).ids;
  const prependsBos = probe.length > 0 && probe[0] === bosId && hf.encode('a', { add_special_tokens: false }).ids[0] !== bosId;

  return {
    encode: (text, opts = {}) => encodeIds(text, opts.addSpecialTokens ?? true),
    decode: (ids, opts = {}) => {
      if (ids.length === 0) return '';
      return hf.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
    },
    vocabSize: hf.get_vocab(true).size,
    bosId,
    eosId,
    padId,
    prependsBos,
    fast: fast !== null,
    tokenToId: (t) => hf.token_to_id(t),
    idToToken: (i) => hf.id_to_token(i),
    source,
    identity: tokenizerIdentity(dir)!,
    hf,
  };
}

export { tinyTokenizerFiles, tinyVocabulary, TINY_CONFIG, TINY_VOCAB_SIZE } from './tiny-tokenizer.js';
