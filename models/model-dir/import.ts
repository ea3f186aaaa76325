// Importing an OPT checkpoint (Hugging Face safetensors / PyTorch files) into a model directory built here.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile } from '../../util/json.js';
import { parseOptConfig, type OptConfig } from '../opt/config.js';
import { DECODER, LM_HEAD, optParamSpecs, type Weights } from '../opt/weights.js';
import { readSafetensors } from '../safetensors.js';
import { CONFIG_FILE, GENERATION_CONFIG_FILE, SAFETENSORS_FILE, type Json } from './files.js';
import { generationConfigJson, readModelConfig, tokenizerFilesFrom } from './open.js';
import { asFloat, writeModelDir } from './write.js';

/** Maps a checkpoint tensor name to its HF OPTForCausalLM name (`decoder.*` and bare `*` forms are accepted). */
function hfName(name: string): string {
  if (name.startsWith(`${DECODER}.`) || name === LM_HEAD) return name;
  if (name.startsWith('decoder.')) return `model.${name}`;
  if (name.startsWith('model.')) return name;
  return `${DECODER}.${name}`;
}

/** The checkpoint's safetensors files: model.safetensors, or the shards of model.safetensors.index.json. */
function checkpointFiles(hfDir: string): string[] {
  const single = join(hfDir, SAFETENSORS_FILE);
  if (existsSync(single)) return [single];
  const index = join(hfDir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (readJsonFile<Json>(index).weight_map ?? {}) as Record<string, string>;
    return [...new Set(Object.values(map))].map((f) => join(hfDir, f));
  }
  if (existsSync(join(hfDir, 'pytorch_model.bin')))
    throw new Error(
      `${hfDir} has only pytorch_model.bin (a pickle, which cannot be read safely outside Python). Convert it to ` +
        'safetensors first, in Python: `from transformers import AutoModelForCausalLM; ' +
        `AutoModelForCausalLM.from_pretrained("${hfDir}").save_pretrained("${hfDir}", safe_serialization=True)\` ` +
        '(or `import torch; from safetensors.torch import save_file; ' +
        `save_file(torch.load("${hfDir}/pytorch_model.bin"), "${hfDir}/model.safetensors", metadata={"format": "pt"})\`), then import again`,
    );
  throw new Error(`${hfDir}: no ${SAFETENSORS_FILE} (nor model.safetensors.index.json) to import`);
}

/**
 * Imports a Hugging Face OPT checkpoint directory (config.json, model.safetensors, tokenizer files) into a
 * model directory of this project. Returns the names of checkpoint tensors that were not used.
 */
export function importHfCheckpoint(hfDir: string, outDir: string): { config: OptConfig; ignored: string[] } {
  const configPath = join(hfDir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${hfDir}: ${CONFIG_FILE} is missing (is this a Hugging Face model directory?)`);
  const raw = readJsonFile<Json>(configPath);
  const family = readModelConfig(raw, configPath).family;
  if (family !== 'opt')
    throw new Error(
      `${hfDir}: model_type ${JSON.stringify(raw.model_type)} has no graph builder here (only OPT is built from safetensors); ` +
        'export the model to ONNX (optimum-cli export onnx --model DIR --task text-generation-with-past OUT) and pass that directory',
    );
  const config = parseOptConfig(raw, configPath);
  const files = checkpointFiles(hfDir);
  const tokenizerFiles = tokenizerFilesFrom(hfDir);
  const specs = optParamSpecs(config);
  const weights: Weights = new Map();
  const ignored: string[] = [];
  for (const file of files) {
    for (const [rawName, t] of readSafetensors(file).tensors) {
      const name = hfName(rawName);
      const spec = specs.get(name);
      if (!spec) {
        ignored.push(rawName); // e.g. lm_head.weight of a tied model
        continue;
      }
      if (spec.shape.join(',') !== t.shape.join(','))
        throw new Error(`${file}: tensor ${rawName} has shape [${t.shape}], expected [${spec.shape}] for this config.json`);
      weights.set(name, asFloat(file, rawName, t.data));
    }
  }
  for (const [name, spec] of specs)
    if (!weights.has(name)) throw new Error(`${hfDir}: the checkpoint has no tensor ${name} (shape [${spec.shape}])`);
  const genPath = join(hfDir, GENERATION_CONFIG_FILE);
  writeModelDir(outDir, {
    config,
    weights,
    tokenizerFiles,
    generationConfig: existsSync(genPath) ? readJsonFile<Json>(genPath) : generationConfigJson(config),
  });
  return { config, ignored };
}
