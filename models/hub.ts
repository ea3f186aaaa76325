// Fetching a Hugging Face model repository (config, weights, tokenizer files) into a local cache once, so
// that `model.base: facebook/opt-125m` (safetensors, imported) or an onnx-community repository (its
// onnx/model.onnx, used as it is) works where the hub is reachable. Offline, the error
// says how to point at local files instead. Each file is written atomically with its sha256 beside it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { cacheDir } from '../util/cache.js';
import { sha256 } from '../util/sha256.js';

export const HUB_MODEL_FILES = {
  required: ['config.json'],
  /** The first one the repository has: an fp32 ONNX graph (onnx-community layout), else OPT safetensors. */
  weights: ['onnx/model.onnx', 'model.safetensors'],
  optional: ['generation_config.json', 'vocab.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'],
  /** Fetched with onnx/model.onnx when present (its external weights). */
  onnxData: ['onnx/model.onnx_data'],
};
const ALL_FILES = [...HUB_MODEL_FILES.required, ...HUB_MODEL_FILES.weights, ...HUB_MODEL_FILES.onnxData, ...HUB_MODEL_FILES.optional];

export const isHubId = (s: string): boolean => /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !existsSync(s);

function endpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
}

/**
 * One file of a hub repository, or null when the hub says 404. A connection dropped before the answer
 * (a pooled keep-alive socket the server had just closed, a flaky proxy) is retried twice with a short
 * backoff, as huggingface_hub does; HTTP errors and time-outs are not.
 */
async function fetchFile(repo: string, file: string, revision: string, timeoutMs: number): Promise<Uint8Array | null> {
  const url = `${endpoint()}/${repo}/resolve/${revision}/${file}`;
  const headers: Record<string, string> = {};
  if (process.env.HF_TOKEN) headers.authorization = `Bearer ${process.env.HF_TOKEN}`;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      const dropped = e instanceof TypeError && (e as Error).message === 'fetch failed';
      if (!dropped || attempt >= 2) throw e;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      continue;
    }
    if (res.status === 404) {
      await res.body?.cancel(); // frees the connection for the next file
      return null;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/**
 * A local directory holding the repository's files, downloaded on first use. Returns the cache path.
 * `revision` pins a branch, tag or commit.
 */
export async function hubSnapshot(repo: string, opts: { revision?: string; timeoutMs?: number } = {}): Promise<string> {
  const revision = opts.revision ?? 'main';
  const dir = join(cacheDir(), 'hub', repo.replace('/', '--'), revision);
  const complete = join(dir, '.complete');
  if (existsSync(complete)) {
    for (const f of ALL_FILES.filter((x) => existsSync(join(dir, `${x}.sha256`)))) {
      const want = readFileSync(join(dir, `${f}.sha256`), 'utf8').trim();
      if (sha256(readFileSync(join(dir, f))) !== want) throw new Error(`cached ${join(dir, f)} does not match its recorded sha256: delete ${dir} to download again`);
    }
    return dir;
  }
  const timeoutMs = opts.timeoutMs ?? 600_000;
  try {
    const save = (f: string, bytes: Uint8Array): void => {
      writeFileAtomic(join(dir, f), bytes);
      writeFileAtomic(join(dir, `${f}.sha256`), `${sha256(bytes)}\n`);
    };
    for (const f of HUB_MODEL_FILES.required) {
      const bytes = await fetchFile(repo, f, revision, timeoutMs);
      if (!bytes) throw new Error(`${repo} has no ${f} at revision ${revision}`);
      save(f, bytes);
    }
    let weights: string | null = null;
    for (const f of HUB_MODEL_FILES.weights) {
      const bytes = await fetchFile(repo, f, revision, timeoutMs);
      if (!bytes) continue;
      save(f, bytes);
      weights = f;
      break;
    }
    if (!weights) {
      throw new Error(
        `${repo} has no model.safetensors (nor onnx/model.onnx) at ${revision}; convert its pytorch_model.bin elsewhere ` +
          '(python: `transformers.AutoModelForCausalLM.from_pretrained(REPO).save_pretrained(DIR, safe_serialization=True)`) ' +
          'or export it to ONNX (optimum-cli export onnx --task text-generation-with-past), and pass the directory as model.base',
      );
    }
    const extra = weights.startsWith('onnx/') ? [...HUB_MODEL_FILES.onnxData, ...HUB_MODEL_FILES.optional] : HUB_MODEL_FILES.optional;
    for (const f of extra) {
      const bytes = await fetchFile(repo, f, revision, timeoutMs);
      if (bytes) save(f, bytes);
    }
  } catch (e) {
    const msg = (e as Error).message;
    if (/has no/.test(msg)) throw e;
    throw new Error(
      `cannot download ${repo} from ${endpoint()} (${msg}). Offline: download the model elsewhere ` +
        `(config.json, model.safetensors, vocab.json, merges.txt, ...) and pass its directory as model.base ` +
        `(--set model.base=DIR), or run \`collapse model import HF_DIR --out DIR\``,
    );
  }
  writeFileAtomic(complete, `${new Date().toISOString()}\n`);
  return dir;
}
