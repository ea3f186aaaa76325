// The model directory, in one place: opening one into its config (family by model_type), its ONNX graphs
// and their causal-LM interface (causal-lm.ts), its weights, its tokenizer files and its generation
// settings; choosing the graph each stage uses; and writing a fine-tuned copy that keeps the family and
// the graph layout. Hugging Face hub layout, loadable by transformers.js:
//   config.json, generation_config.json, tokenizer files,
//   onnx/model.onnx (+ onnx/model.onnx_data), or Optimum's onnx/decoder_model_merged.onnx,
//   decoder_model.onnx + decoder_with_past_model.onnx; model.safetensors (OPT built here: HF names).
// OPT directories with HF-named weights can be rebuilt from config + weights (models/opt); any other
// family runs on its exported graph, as long as that graph has the standard interface.
//
// The folder: files.ts (file names, families), open.ts (openModelDir), plan.ts (the graph each stage uses),
// source.ts (training sources and hashes), write.ts (writing, reading weights), finetuned.ts (a fine-tuned copy),
// import.ts (importing an OPT checkpoint).
export type { Family, FileContents } from './files.js';
export { CONFIG_FILE, FAMILY_BOS, GENERATION_CONFIG_FILE, GRAPH_FILES, ONNX_DATA_FILE, ONNX_FILE, SAFETENSORS_FILE, TOKENIZER_FILES } from './files.js';
export type { GenerationSettings, GraphFile, ModelConfig, ModelDir } from './open.js';
export { generationConfigJson, openModelDir, readModelConfig, tokenizerFilesFrom } from './open.js';
export type { GenerationPlan } from './plan.js';
export { forwardGraph, generationPlan, interfaceLines, stagePlan } from './plan.js';
export type { ForwardSource, TrainingSource } from './source.js';
export { loadTrainingSource, modelSha256, structureHash } from './source.js';
export type { ModelDirContents } from './write.js';
export { readWeights, writeModelDir } from './write.js';
export { writeFinetuned } from './finetuned.js';
export { importHfCheckpoint } from './import.js';
