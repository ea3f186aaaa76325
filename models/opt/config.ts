// OPT configuration: the fields of a Hugging Face OPT `config.json`, parsed and validated with zod, plus
// the presets the project uses (OPT-125m as in the paper, and a tiny model for tests and quick runs).
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const ACTIVATIONS = ['relu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'tanh', 'sigmoid'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const positiveInt = z.number().int().positive();

/** The schema of the keys we read; other keys of config.json are kept untouched (passthrough). */
export const OptConfigSchema = z
  .object({
    model_type: z.literal('opt').default('opt'),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    ffn_dim: positiveInt,
    max_position_embeddings: positiveInt,
    word_embed_proj_dim: positiveInt.optional(),
    do_layer_norm_before: z.boolean().default(true),
    activation_function: z.enum(ACTIVATIONS).default('relu'),
    init_std: z.number().positive().default(0.02),
    pad_token_id: z.number().int().nonnegative().default(1),
    bos_token_id: z.number().int().nonnegative().default(2),
    eos_token_id: z.number().int().nonnegative().default(2),
    layer_norm_elementwise_affine: z.boolean().default(true),
    enable_bias: z.boolean().default(true),
    tie_word_embeddings: z.boolean().default(true),
    // Set by transformers for OPT-350m-style checkpoints that have no final LayerNorm.
    _remove_final_layer_norm: z.boolean().default(false),
  })
  .passthrough();

export type OptConfig = z.infer<typeof OptConfigSchema> & { word_embed_proj_dim: number };

/** Validates a parsed config.json object; `source` names the file in error messages. */
export function parseOptConfig(raw: unknown, source = 'config'): OptConfig {
  if (raw && typeof raw === 'object' && 'model_type' in raw && (raw as { model_type: unknown }).model_type !== 'opt')
    throw new Error(
      `${source}: model_type is ${JSON.stringify((raw as { model_type: unknown }).model_type)}, expected "opt" ` +
        '(only the OPT family is supported)',
    );
  const r = OptConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${source}: invalid OPT config (${issues})`);
  }
  const cfg = { ...r.data, word_embed_proj_dim: r.data.word_embed_proj_dim ?? r.data.hidden_size } as OptConfig;
  if (cfg.hidden_size % cfg.num_attention_heads !== 0)
    throw new Error(
      `${source}: hidden_size ${cfg.hidden_size} is not divisible by num_attention_heads ${cfg.num_attention_heads}`,
    );
  for (const k of ['pad_token_id', 'bos_token_id', 'eos_token_id'] as const)
    if (cfg[k] >= cfg.vocab_size) throw new Error(`${source}: ${k} ${cfg[k]} is outside vocab_size ${cfg.vocab_size}`);
  return cfg;
}

export function readOptConfig(path: string): OptConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read OPT config ${path}: ${(e as Error).message}`);
  }
  return parseOptConfig(raw, path);
}

export const headDim = (cfg: OptConfig): number => cfg.hidden_size / cfg.num_attention_heads;
/** HF OPT keeps 2 extra position rows (the `offset` of OPTLearnedPositionalEmbedding). */
export const POSITION_OFFSET = 2;
export const hasFinalLayerNorm = (cfg: OptConfig): boolean => cfg.do_layer_norm_before && !cfg._remove_final_layer_norm;
export const hasProjections = (cfg: OptConfig): boolean => cfg.word_embed_proj_dim !== cfg.hidden_size;

/** The config.json we write: the HF keys in HF order, with architecture and dropouts. */
export function configJson(cfg: OptConfig): Record<string, unknown> {
  return {
    architectures: ['OPTForCausalLM'],
    model_type: 'opt',
    activation_function: cfg.activation_function,
    do_layer_norm_before: cfg.do_layer_norm_before,
    enable_bias: cfg.enable_bias,
    layer_norm_elementwise_affine: cfg.layer_norm_elementwise_affine,
    hidden_size: cfg.hidden_size,
    word_embed_proj_dim: cfg.word_embed_proj_dim,
    num_hidden_layers: cfg.num_hidden_layers,
    num_attention_heads: cfg.num_attention_heads,
    ffn_dim: cfg.ffn_dim,
    max_position_embeddings: cfg.max_position_embeddings,
    vocab_size: cfg.vocab_size,
    bos_token_id: cfg.bos_token_id,
    eos_token_id: cfg.eos_token_id,
    pad_token_id: cfg.pad_token_id,
    dropout: 0.1,
    attention_dropout: 0.0,
    activation_dropout: 0.0,
    layerdrop: 0.0,
    init_std: cfg.init_std,
    torch_dtype: 'float32',
    tie_word_embeddings: cfg.tie_word_embeddings,
    ...(cfg._remove_final_layer_norm ? { _remove_final_layer_norm: true } : {}),
  };
}

/** facebook/opt-125m, the model of Shumailov et al. */
export const OPT_125M: OptConfig = parseOptConfig(
  {
    vocab_size: 50272,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    ffn_dim: 3072,
    max_position_embeddings: 2048,
    word_embed_proj_dim: 768,
    do_layer_norm_before: true,
    activation_function: 'relu',
    init_std: 0.02,
    pad_token_id: 1,
    bos_token_id: 2,
    eos_token_id: 2,
    tie_word_embeddings: true,
  },
  'OPT_125M',
);

/** The tiny OPT's shape unless a run asks for another (`model.tinyWidth`, `model.tinyLayers`). */
export const TINY_SHAPE = { width: 64, layers: 2 } as const;
/** The tiny OPT's attention heads: its width must be a multiple of this. */
export const TINY_HEADS = 4;

/**
 * A tiny OPT for tests and quick experiments, with one embedding row per token of a word-level tokenizer of
 * `vocabSize` tokens: OPT-125m's settings (`<pad>` = 1, `</s>` = 2, ReLU, pre-LayerNorm, tied head, an FFN 4x
 * as wide), 4 heads, by default 64 wide and 2 layers deep. The project's tiny tokenizer pairs it as TINY_CONFIG.
 */
export function tinyOptConfig(vocabSize: number, shape: { width: number; layers: number } = TINY_SHAPE): OptConfig {
  const { width, layers } = shape;
  const size = { hidden_size: width, word_embed_proj_dim: width, num_hidden_layers: layers, num_attention_heads: TINY_HEADS, ffn_dim: 4 * width, max_position_embeddings: 256 };
  return parseOptConfig({ ...OPT_125M, ...size, vocab_size: vocabSize }, 'the tiny OPT config');
}

/** The named configs (`tiny` sized for a tokenizer of `tinyVocabSize` tokens). */
export function optPresets(tinyVocabSize: number): Record<string, OptConfig> {
  return { tiny: tinyOptConfig(tinyVocabSize), 'opt-125m': OPT_125M };
}
