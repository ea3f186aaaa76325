// The model directory's file names (hub layout, transformers.js), the families recognised by model_type, and
// their BOS tokens.
import { onnx } from '../onnx/proto.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
export const ONNX_FILE = 'onnx/model.onnx';
export const ONNX_DATA_FILE = 'onnx/model.onnx_data';
export const SAFETENSORS_FILE = 'model.safetensors';
/** Tokenizer files we copy when present (a fast tokenizer.json, or GPT-2/OPT vocab.json + merges.txt). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'added_tokens.json'];
/**
 * Graph files looked for, in this order: the plain layout (transformers.js / onnx-community), then
 * Optimum's merged decoder, its no-past decoder and its with-past decoder, each under onnx/ or at the top.
 */
export const GRAPH_FILES = ['model.onnx', 'decoder_model_merged.onnx', 'decoder_model.onnx', 'decoder_with_past_model.onnx'].flatMap((f) => [
  `onnx/${f}`,
  f,
]);

export type FileContents = Record<string, string | Uint8Array>;
export type Json = Record<string, unknown>;

/** Model families, recognised by config.json's model_type. Other types run when their graph is standard. */
export type Family = 'opt' | 'gpt2' | 'llama' | 'gpt-neox' | 'other';
export const FAMILY_OF: Record<string, Family> = {
  opt: 'opt',
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'llama',
  phi3: 'llama',
  gpt_neox: 'gpt-neox',
};
/** What the reference tokenizer of each family prepends (transformers' defaults). */
export const FAMILY_BOS: Record<Family, string> = {
  opt: 'prepends </s>',
  gpt2: 'adds no BOS',
  llama: 'prepends <s>',
  'gpt-neox': 'adds no BOS',
  other: 'as its tokenizer files say',
};
