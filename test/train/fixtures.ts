// Tiny OPT model directories and corpora for training tests (nothing from ../shared is copied).
import type { Blocks } from '../../datasets/block-set.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeCorpus } from '../../datasets/corpus-store.js';
import { TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { configJson, initOptWeights, optParamShapes } from '../../models/opt/index.js';
import { writeSafetensors } from '../../models/safetensors.js';
import { Rng } from '../../util/rng.js';

/** An OPT model dir (config.json, tokenizer files, model.safetensors; no ONNX file: training builds the graph). */
export function writeTinyOptDir(dir: string, seed = 0): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson(TINY_CONFIG), null, 2));
  const w = initOptWeights(TINY_CONFIG, seed);
  const shapes = optParamShapes(TINY_CONFIG);
  writeSafetensors(join(dir, 'model.safetensors'), new Map([...w].map(([k, v]) => [k, { data: v, shape: shapes.get(k)! }])));
  for (const [f, c] of Object.entries(tinyTokenizerFiles())) writeFileSync(join(dir, f), c);
}

/** Blocks of a noisy repeating pattern over ids [4, vocab), so there is something to learn. */
export function patternBlocks(rows: number, T: number, vocab: number, seed: number): Blocks {
  const r = new Rng(seed);
  const ids = new Int32Array(rows * T);
  const span = Math.min(vocab, 60) - 4;
  for (let i = 0; i < rows; i++) {
    let x = r.int(span);
    for (let t = 0; t < T; t++) {
      ids[i * T + t] = 4 + x;
      x = r.next() < 0.9 ? (x * 5 + 3) % span : r.int(span);
    }
  }
  return { ids, rows, blockSize: T };
}

export function writeBlocksCorpus(dir: string, b: Blocks): void {
  const T = b.blockSize;
  writeCorpus(
    dir,
    Array.from({ length: b.rows }, (_, i) => ({
      block_id: i, input_ids: b.ids.subarray(i * T, (i + 1) * T), text: '', origin: 'original' as const,
      generation: 0, prompt_block_id: null, score: null,
    })),
    { blockSize: T },
  );
}
