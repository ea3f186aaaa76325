// Bad inputs (issue 13): every case runs the real command line in-process and asserts the exit code, the
// message, that no stack trace is printed, and that no file was deleted or half-written. Tiny models and
// corpora keep the whole suite to seconds of CPU.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, Float32, List, Table, tableFromArrays, tableToIPC, vectorFromArray } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { readManifest, writeCorpus } from '../../datasets/corpus-store.js';
import { TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { writeModelDir } from '../../models/model-dir/index.js';
import { initOptWeights } from '../../models/opt/index.js';
import { ensureDir } from '../../util/atomic.js';
import { acquireLock } from '../../util/lock.js';
import { sha256 } from '../../util/sha256.js';
import { removeStaleTmp } from '../../util/stale-tmp.js';
import { writeRunManifest } from '../../pipeline/run/generational-loop.js';
import { RunLayout } from '../../pipeline/run/layout.js';
import { lockRunDir, peerWatch } from '../../pipeline/run/run-lock.js';
import { validateConfig } from '../../pipeline/run/config.js';
import { finetune } from '../../pipeline/train/finetune.js';
import { describeError } from '../../scripts/cli.js';
import { initModelDir } from '../../scripts/commands/model.js';
import { patternBlocks, writeBlocksCorpus } from '../train/fixtures.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { collapse, expectFailure, snapshot, tmpLeftovers } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'bad-inputs-'));
const p = (...xs: string[]): string => join(root, ...xs);
const savedEnv = { ...process.env };

const model = p('model');
const model2 = p('model2');
const prompts = p('prompts');
const trainCorpus = p('train');
const bigIds = p('big-ids');
const longBlocks = p('long-blocks');
const BIG = 600; // an id beyond the tiny vocab_size (512)

function rows(n: number, T: number, id: (r: number, t: number) => number): CorpusRow[] {
  return Array.from({ length: n }, (_, r) => ({
    block_id: r, input_ids: Int32Array.from({ length: T }, (_, t) => id(r, t)), text: '', origin: 'original' as const,
    generation: 0, prompt_block_id: null, score: null,
  }));
}

const GEN = ['--strategy', 'greedy', '--new-tokens', '4', '--batch-size', '2', '--chunk-size', '2', '--threads', '1'];
const generate = (out: string, ...extra: string[]) => collapse('generate', '--model', model, '--prompts', prompts, '--out', out, ...GEN, ...extra);
const TRAIN = ['--epochs', '1', '--batch-size', '4', '--micro-batch-size', '4', '--threads', '1', '--checkpoint-every', '1'];
const train = (out: string, ...extra: string[]) => collapse('train', '--model', model, '--train', trainCorpus, '--out', out, ...TRAIN, ...extra);

beforeAll(() => {
  process.env.COLLAPSE_ARTIFACT_CACHE = p('artifacts');
  process.env.CI = '1';
  delete process.env.COLLAPSE_DEBUG;
  initModelDir({ config: 'tiny', seed: 1, out: model });
  initModelDir({ config: 'tiny', seed: 2, out: model2 });
  writeCorpus(prompts, rows(6, 8, (r, t) => 4 + ((r * 37 + t * 11) % 400)), { blockSize: 8 });
  writeBlocksCorpus(trainCorpus, patternBlocks(8, 16, 512, 3));
  writeCorpus(bigIds, rows(4, 8, (r, t) => (r === 2 && t === 5 ? BIG : 4 + t)), { blockSize: 8 });
  writeCorpus(longBlocks, rows(2, 200, (r, t) => 4 + ((r + t) % 100)), { blockSize: 200 });
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

/** A complete generated corpus (3 chunks of 2 prompts), made once per test that damages it. */
async function generated(name: string): Promise<string> {
  const out = p(name);
  const r = await generate(out);
  expect(r.err + r.out).toMatch(/complete and finalized/);
  expect(r.code).toBe(0);
  return out;
}

describe('one error path: message, exit 1, no stack trace', () => {
  it('data verify: truncated shard', async () => {
    const c = p('v-trunc');
    writeCorpus(c, rows(3, 4, (r, t) => r + t), { blockSize: 4 });
    const shard = join(c, 'part-w0-00000.arrow');
    writeFileSync(shard, readFileSync(shard).subarray(0, 100));
    const before = snapshot(c);
    expectFailure(await collapse('data', 'verify', c), /part-w0-00000\.arrow is truncated: 100 bytes/, { dir: c, before });
  });

  it('data verify: a flipped bit', async () => {
    const c = p('v-flip');
    writeCorpus(c, rows(3, 4, (r, t) => r + t), { blockSize: 4 });
    const shard = join(c, 'part-w0-00000.arrow');
    const b = readFileSync(shard);
    b[b.length - 20]! ^= 1;
    writeFileSync(shard, b);
    expectFailure(await collapse('data', 'verify', c), /part-w0-00000\.arrow fails its checksum/);
  });

  it('data verify: missing manifest', async () => {
    const c = p('v-nomanifest');
    writeCorpus(c, rows(2, 4, (r, t) => r + t), { blockSize: 4 });
    unlinkSync(join(c, 'manifest.json'));
    expectFailure(await collapse('data', 'verify', c), /v-nomanifest is not a corpus: .*manifest\.json is missing/);
  });

  it('data verify: a shard with the wrong schema', async () => {
    const c = p('v-schema');
    writeCorpus(c, rows(1, 4, (r, t) => r + t), { blockSize: 4 });
    const bad = tableFromArrays({ block_id: Int32Array.of(0) });
    const ids = vectorFromArray([[1, 2, 3, 4]], new List(new Field('item', new Float32(), true)));
    const bytes = tableToIPC(new Table({ block_id: bad.getChild('block_id')!, input_ids: ids }), 'file');
    writeFileSync(join(c, 'part-w0-00000.arrow'), bytes);
    const fix = (f: string, edit: (j: Record<string, any>) => void): void => {
      const j = JSON.parse(readFileSync(join(c, f), 'utf8'));
      edit(j);
      writeFileSync(join(c, f), JSON.stringify(j));
    };
    const sm = { rows: 1, bytes: bytes.length, sha256: sha256(bytes) };
    fix('part-w0-00000.json', (j) => Object.assign(j, sm));
    fix('manifest.json', (j) => Object.assign(j.shards[0], sm));
    fix('w0.done.json', (j) => Object.assign(j.files[0], { rows: 1, sha256: sm.sha256 }));
    expectFailure(await collapse('data', 'verify', c), /part-w0-00000\.arrow has the wrong schema/);
  });

  it('status: a directory that is not a run', async () => {
    expectFailure(await collapse('status', prompts), /prompts is not a run directory \(no run\.json\)/);
  });

  it('status: a missing directory', async () => {
    expectFailure(await collapse('status', p('no-such-run')), /no-such-run is not a run directory/);
  });

  it('status: a truncated marker is named, and its step shown as pending (as the run reads it: it reruns)', async () => {
    const run = p('run-trunc');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'run.json'), JSON.stringify({ config: { seeds: [0], generations: 1 } }));
    writeFileSync(join(run, 'prepare.done.json'), '{"stage": "prep');
    const r = await collapse('status', run);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/prepare - marker \S*prepare\.done\.json is empty or unreadable; the step reruns on resume/);
  });

  it('artifact show: a missing path', async () => {
    expectFailure(await collapse('artifact', 'show', p('no-artifact')), /no-artifact/);
  });

  it('data synth --rows 0', async () => {
    expectFailure(await collapse('data', 'synth', '--rows', '0'), /--rows 0: expected an integer >= 1/);
  });

  it('run --config: a config file that is not valid JSON names the file', async () => {
    const cfg = p('bad.json');
    writeFileSync(cfg, '{"name": ');
    expectFailure(await collapse('run', '--config', cfg, '--print-config'), /config file .*bad\.json is not valid JSON/);
  });

  it('an unknown flag shows the help and names it', async () => {
    const r = await collapse('data', 'synth', '--rowz', '3');
    expectFailure(r, /Unknown argument: rowz/);
  });

  it('COLLAPSE_DEBUG=1 adds the stack (and only then)', async () => {
    const e = new Error('boom');
    expect(describeError(e, false)).toBe('collapse: boom\n');
    expect(describeError(e, true)).toMatch(/collapse: boom\nError: boom\n\s+at /);
  });

  it('system errors are named: ENOSPC, EROFS', () => {
    const err = (code: string, msg: string) => Object.assign(new Error(msg), { code });
    expect(describeError(err('ENOSPC', 'ENOSPC: write'), false)).toMatch(/^collapse: no space left on the device \(ENOSPC: write\)/);
    expect(describeError(err('EROFS', "EROFS: open '/x'"), false)).toMatch(/^collapse: the file system is read-only/);
  });

  it('the binary itself: a synchronous handler error leaves no stack (one spawned process)', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/collapse.mjs'), 'status', p('nowhere')], { encoding: 'utf8', env: { ...process.env, COLLAPSE_MALLOC: 'default' } });
    expectFailure({ code: r.status ?? -1, out: r.stdout, err: r.stderr }, /nowhere is not a run directory/);
  });
});

describe('output guards: nothing foreign is ever deleted', () => {
  it('model init --out a directory of notes is refused and the notes stay', async () => {
    const notes = p('notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'thesis.txt'), 't');
    const before = snapshot(notes);
    expectFailure(await collapse('model', 'init', '--config', 'tiny', '--out', notes), /--out .*notes is not empty and is not a model directory .*thesis\.txt.*--force/, { dir: notes, before });
  });

  it('model import --out a directory of notes is refused', async () => {
    const notes = p('notes2');
    mkdirSync(notes);
    writeFileSync(join(notes, 'a.txt'), 'a');
    const before = snapshot(notes);
    expectFailure(await collapse('model', 'import', model, '--out', notes), /not a model directory/, { dir: notes, before });
  });

  it('model import D --out D is refused and D is intact', async () => {
    const before = snapshot(model);
    expectFailure(await collapse('model', 'import', model, '--out', model), /--out .*model is the input HF-DIR/, { dir: model, before });
  });

  it('model import D --out D/sub (inside the input) is refused', async () => {
    const before = snapshot(model);
    expectFailure(await collapse('model', 'import', model, '--out', join(model, 'sub')), /lies inside the input/, { dir: model, before });
  });

  it('model init over a model directory that also holds a file of the user is refused', async () => {
    const d = p('own-plus');
    expect((await collapse('model', 'init', '--out', d)).code).toBe(0);
    writeFileSync(join(d, 'README.md'), 'my notes');
    const before = snapshot(d);
    expectFailure(await collapse('model', 'init', '--out', d), /own-plus is a model directory that also holds files it did not write \(README\.md\)/, { dir: d, before });
  });

  it('model init over its own model directory replaces it; --force replaces foreign files', async () => {
    const d = p('own');
    expect((await collapse('model', 'init', '--out', d, '--seed', '1')).code).toBe(0);
    expect((await collapse('model', 'init', '--out', d, '--seed', '2')).code).toBe(0);
    const f = p('forced');
    mkdirSync(f);
    writeFileSync(join(f, 'old.txt'), 'x');
    const r = await collapse('model', 'init', '--out', f, '--force');
    expect(r.code).toBe(0);
    expect(existsSync(join(f, 'old.txt'))).toBe(false);
    expect(existsSync(join(f, 'onnx', 'model.onnx'))).toBe(true);
  });
});

describe('strict flags', () => {
  const out = p('never-written');
  afterAll(() => expect(existsSync(out)).toBe(false));
  it('--top-p 2', async () => expectFailure(await generate(out, '--top-p', '2'), /--top-p 2: expected a number > 0 and <= 1/));
  it('--no-repeat-ngram-size -1 (a flag whose own name starts with no-)', async () =>
    expectFailure(await generate(out, '--no-repeat-ngram-size', '-1'), /--no-repeat-ngram-size -1: expected an integer >= 0/));
  it('--no-repeat-ngram-size without a value', async () => expectFailure(await generate(out, '--no-repeat-ngram-size'), /--no-repeat-ngram-size needs a value/));
  it('--no-repeat-ngram-size 2 is read as that flag, not as the negation of --repeat-ngram-size', async () => {
    const d = p('ngram-2');
    const r = await generate(d, '--no-repeat-ngram-size', '2');
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')).provenance.config.noRepeatNgramSize).toBe(2);
  });
  it('--top-k -5', async () => expectFailure(await generate(out, '--top-k', '-5'), /--top-k -5: expected an integer >= 0/));
  it('--threads -1', async () => expectFailure(await collapse('generate', '--model', model, '--prompts', prompts, '--out', out, '--threads', '-1'), /--threads -1: expected an integer >= 0/));
  it('--temperature 0', async () => expectFailure(await generate(out, '--temperature', '0'), /--temperature 0: expected a number > 0/));
  it('--seed abc', async () => expectFailure(await train(out, '--seed', 'abc'), /--seed abc: not a number/));
  it('--seed -1', async () => expectFailure(await train(out, '--seed', '-1'), /--seed -1: expected an integer >= 0/));
  it('--epochs 3 --epochs 4', async () => expectFailure(await train(out, '--epochs', '3', '--epochs', '4'), /--epochs was given 3 times \(1, 3, 4\); give it once|--epochs was given 2 times/));
  it('--lr=abc (the = form)', async () => expectFailure(await train(out, '--lr=abc'), /--lr abc: not a number/));
  it('--batch-size 1.5 (eval)', async () => expectFailure(await collapse('eval', '--model', model, '--data', prompts, '--batch-size', '1.5'), /--batch-size 1\.5: expected an integer >= 1/));
  it('--block-size abc (prepare)', async () => expectFailure(await collapse('prepare', '--data', 'synthetic', '--block-size', 'abc'), /--block-size abc: not a number/));
  it('--rows 2 --rows 3 (data synth)', async () => expectFailure(await collapse('data', 'synth', '--rows', '2', '--rows', '3'), /--rows was given 2 times \(2, 3\)/));
  it('run --set with one key twice', async () => expectFailure(await collapse('run', '--set', 'train.lr=1', '--set', 'train.lr=2', '--print-config'), /--set train\.lr was given twice \(train\.lr=1 and train\.lr=2\)/));
  it('run --seed abc (an array flag)', async () => expectFailure(await collapse('run', '--seed', 'abc', '--print-config'), /--seed abc: not a number/));
});

describe('preflight: model limits before any compute', () => {
  it('model init --tokenizer with more tokens than vocab_size', async () => {
    const tok = p('big-tokenizer');
    mkdirSync(tok);
    const words = Array.from({ length: 700 }, (_, i) => `w${i}x`);
    for (const [f, c] of Object.entries(tinyTokenizerFiles(words))) writeFileSync(join(tok, f), c);
    const out = p('init-big');
    expectFailure(await collapse('model', 'init', '--config', 'tiny', '--tokenizer', tok, '--out', out), /the tokenizer .*big-tokenizer has \d+ tokens, but the model --config tiny has vocab_size 512/);
    expect(existsSync(out)).toBe(false);
  });

  /** A tiny model directory whose tokenizer is larger than its vocab_size (as a careless copy makes it). */
  function mismatched(): string {
    const d = p('mismatched');
    if (existsSync(d)) return d;
    const words = Array.from({ length: 700 }, (_, i) => `w${i}x`);
    writeModelDir(d, { config: TINY_CONFIG, weights: initOptWeights(TINY_CONFIG, 0), tokenizerFiles: tinyTokenizerFiles(words) });
    return d;
  }

  it('model info on a model whose tokenizer exceeds vocab_size', async () => {
    expectFailure(await collapse('model', 'info', mismatched()), /has \d+ tokens, but the model .*mismatched has vocab_size 512/);
  });

  it('prepare --tokenizer such a model', async () => {
    const out = p('prep-out');
    expectFailure(await collapse('prepare', '--data', 'synthetic', '--rows', '20', '--tokenizer', mismatched(), '--out', out), /vocab_size 512/);
    expect(existsSync(out)).toBe(false);
  });

  it('train on a corpus with ids >= vocab_size', async () => {
    const out = p('train-big');
    expectFailure(await collapse('train', '--model', model, '--train', bigIds, '--out', out, ...TRAIN), /--train .*big-ids holds token id 600 \(block 2\), but the model .* has vocab_size 512/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.ckpt`)).toBe(false);
  });

  it('generate from prompts with ids >= vocab_size', async () => {
    const out = p('gen-big');
    expectFailure(await collapse('generate', '--model', model, '--prompts', bigIds, '--out', out, ...GEN), /--prompts .*holds token id 600/);
    expect(existsSync(out)).toBe(false);
  });

  it('eval of data with ids >= vocab_size', async () => {
    expectFailure(await collapse('eval', '--model', model, '--data', bigIds), /--data .*holds token id 600/);
  });

  it('generate: block size + new tokens beyond the positions', async () => {
    const out = p('gen-long');
    expectFailure(
      await collapse('generate', '--model', model, '--prompts', longBlocks, '--out', out, '--new-tokens', '100', '--strategy', 'greedy'),
      /200-token blocks plus 100 new tokens = 300 positions, but the model .* has max_position_embeddings 256/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('train: blocks longer than the positions', async () => {
    const long = p('long-300');
    writeCorpus(long, rows(4, 300, (r, t) => 4 + t % 50), { blockSize: 300 });
    expectFailure(await collapse('train', '--model', model, '--train', long, '--out', p('train-long'), ...TRAIN), /300-token blocks, but the model .* max_position_embeddings 256/);
  });

  it('run: data.blockSize + generate.newTokens beyond the positions fails before any compute, with no run.json', async () => {
    const runs = p('runs-long');
    const r = await collapse('run', '--set', `runsDir=${runs}`, '--set', 'data.blockSize=200', '--set', 'generate.newTokens=200');
    expectFailure(r, /data\.blockSize .* 200-token blocks plus 200 new tokens = 400 positions, but the model tiny has max_position_embeddings 256/);
    expect(existsSync(join(runs, 'tiny', 'run.json'))).toBe(false);
  });

  it('run: a model.base that does not exist leaves no run.json, so the corrected rerun is not blocked', async () => {
    const runs = p('runs-base');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--set', `model.base=${p('no-model')}`), /model\.base .*no-model: no such directory/);
    expect(existsSync(join(runs, 'tiny', 'run.json'))).toBe(false);
  });
});

describe('preflight: the output location', () => {
  it('run --set runsDir=/proc/r fails at once (no busy loop)', async () => {
    expectFailure(await collapse('run', '--set', 'runsDir=/proc/r'), /runsDir \/proc\/r\/tiny is not writable: this file system does not allow creating entries here \(ENOENT in \/proc\)/);
  });

  it('ensureDir under /proc throws instead of spinning like mkdirSync({recursive})', () => {
    expect(() => ensureDir('/proc/r/x')).toThrow(/ENOENT/);
  });

  it('generate --out under /sys (not writable) names the cause', async () => {
    expectFailure(await generate('/sys/collapse-out'), /--out \/sys\/collapse-out is not writable: (operation not permitted|the file system is read-only|permission denied)/);
  });

  it('train --out inside a file names it', async () => {
    const f = p('a-file');
    writeFileSync(f, 'x');
    expectFailure(await train(join(f, 'out')), /a-file is a file, not a directory/);
  });
});

describe('resume refuses changed inputs: generate', () => {
  let partial: string;
  let before: Record<string, string>;
  beforeAll(async () => {
    // Shard 0 of 2 does chunks 0 and 2 of 3: a corpus that is started, not finished.
    partial = p('gen-partial');
    const r = await generate(partial, '--shard-index', '0', '--num-shards', '2');
    expect(r.err + r.out).toMatch(/waiting for other shards/);
    before = snapshot(partial);
  });

  it('another --model', async () => {
    const r = await collapse('generate', '--model', model2, '--prompts', prompts, '--out', partial, ...GEN, '--shard-index', '1', '--num-shards', '2');
    expectFailure(r, /cannot resume .*gen-partial: it holds a generation started with other inputs \(model sha256 [0-9a-f]{12}… -> sha256 [0-9a-f]{12}…\).*delete .* to start fresh/, { dir: partial, before });
  });

  it('other prompts with the same number of blocks', async () => {
    const other = p('prompts-other');
    writeCorpus(other, rows(6, 8, (r, t) => 5 + ((r * 31 + t * 7) % 400)), { blockSize: 8 });
    const r = await collapse('generate', '--model', model, '--prompts', other, '--out', partial, ...GEN, '--shard-index', '1', '--num-shards', '2');
    expectFailure(r, /other inputs \(prompts sha256 /, { dir: partial, before });
  });

  it('another decoding option', async () => {
    expectFailure(await generate(partial, '--shard-index', '1', '--num-shards', '2', '--repetition-penalty', '1.5'), /other inputs \(repetition-penalty 1 -> 1\.5\)/, { dir: partial, before });
  });

  it('the same options complete it (control)', async () => {
    const r = await generate(partial, '--shard-index', '1', '--num-shards', '2');
    expect(r.code).toBe(0);
    expect(readManifest(partial).rows).toBe(6);
  });
});

describe('resume refuses changed inputs: train', () => {
  const out = p('trained');
  let ckpt: Record<string, string>;
  beforeAll(async () => {
    // The options the CLI passes for TRAIN, stopped after one of two steps (as if killed).
    await expect(
      finetune({
        model, train: trainCorpus, valid: null, out, epochs: 1, batchSize: 4, microBatchSize: 4, lr: 2e-5, optimizer: 'adamw', weightDecay: 0,
        beta1: 0.9, beta2: 0.999, eps: 1e-8, schedule: 'linear', warmupSteps: 0, maxGradNorm: 1, seed: 0, checkpointEvery: 1, fusedStep: false,
        threads: 1, haltAfterSteps: 1, log: () => {},
      }),
    ).rejects.toThrow(/halted after step 1/);
    ckpt = snapshot(`${out}.ckpt`);
    expect(Object.keys(ckpt)).toContain('checkpoint.safetensors');
  });

  it('another --optimizer', async () => {
    expectFailure(await train(out, '--optimizer', 'sgd'), /cannot resume: .*checkpoint\.safetensors was written with other options \(optimizer "adamw" -> "sgd"\).*delete .*trained\.ckpt to start fresh/, { dir: `${out}.ckpt`, before: ckpt });
  });

  it('another --weight-decay', async () => {
    expectFailure(await train(out, '--weight-decay', '0.1'), /other options \(weight-decay 0 -> 0\.1\)/, { dir: `${out}.ckpt`, before: ckpt });
  });

  it('another --model', async () => {
    const r = await collapse('train', '--model', model2, '--train', trainCorpus, '--out', out, ...TRAIN);
    expectFailure(r, /other options \(model sha256 /, { dir: `${out}.ckpt`, before: ckpt });
  });

  it('the same options resume and finish; a finished output refuses other options', async () => {
    const ok = await train(out);
    expect(ok.err).toMatch(/resuming from the checkpoint at step 1\/2/);
    expect(ok.code).toBe(0);
    expect(existsSync(`${out}.ckpt`)).toBe(false);
    const done = snapshot(out);
    expectFailure(await train(out, '--lr', '1e-3'), /--out .*trained was trained with other options \(lr 0\.00002 -> 0\.001\)/, { dir: out, before: done });
  });

  it('a model.ckpt left beside a committed model (kill before the marker) is removed by the rerun', async () => {
    mkdirSync(`${out}.ckpt`);
    writeFileSync(join(`${out}.ckpt`, 'checkpoint.safetensors'), 'left over');
    const r = await train(out);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/already trained/);
    expect(existsSync(`${out}.ckpt`)).toBe(false);
  });
});

describe('integrity: a deleted shard of a generated corpus', () => {
  it('is detected by generate (not reported as complete) and by data verify', async () => {
    // Chunks 0 and 2 committed by shard 0 of 2; chunk 2's shard is deleted, its marker remains.
    const out = p('gen-deleted');
    expect((await generate(out, '--shard-index', '0', '--num-shards', '2')).code).toBe(0);
    unlinkSync(join(out, 'part-c000002-00000.arrow'));
    unlinkSync(join(out, 'part-c000002-00000.json'));
    const before = snapshot(out);
    expectFailure(await generate(out, '--shard-index', '1', '--num-shards', '2'), /part-c000002-00000\.arrow \(2 rows\), recorded in c000002\.done\.json, is missing.*delete .*c000002\.done\.json and rerun/, { dir: out, before });
    expectFailure(await collapse('data', 'verify', out), /part-c000002-00000\.arrow \(2 rows\), recorded in c000002\.done\.json, is missing/);
    // The remedy the message gives works: the chunk is generated again and the corpus is whole.
    unlinkSync(join(out, 'c000002.done.json'));
    expect((await generate(out)).code).toBe(0);
    const v = await collapse('data', 'verify', out);
    expect(v.out).toMatch(/OK\nprompts .*: one row per prompt \(6\)/);
  });

  it('data verify compares a generated corpus with its prompts', async () => {
    const pr = p('prompts-8');
    writeCorpus(pr, rows(6, 8, (r, t) => 4 + ((r * 37 + t * 11) % 400)), { blockSize: 8 });
    const out = p('gen-vs-prompts');
    expect((await collapse('generate', '--model', model, '--prompts', pr, '--out', out, ...GEN)).code).toBe(0);
    // The prompts corpus is replaced by a larger one: the generation no longer covers it.
    rmSync(pr, { recursive: true });
    writeCorpus(pr, rows(8, 8, (r, t) => 4 + r + t), { blockSize: 8 });
    expectFailure(await collapse('data', 'verify', out), /gen-vs-prompts: 6 rows for 8 prompts in .*prompts-8/);
  });
});

describe('run directory lock and hygiene', () => {
  it('a run directory held by a live process is refused with its PID, and nothing is written', async () => {
    const runs = p('runs-locked');
    const dir = join(runs, 'tiny');
    mkdirSync(dir, { recursive: true });
    // PID 1 always runs.
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: 1, host: hostname(), startedAt: 'earlier', what: 'collapse run' }));
    const before = snapshot(runs);
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`), /tiny is in use: process 1 on .* holds .*\.lock; wait for it to finish or stop it/, { dir: runs, before });
  });

  it('two real `collapse run` on one run directory: the second is refused; after kill -9 the lock is stale', async () => {
    const runs = p('runs-two');
    const lockFile = join(runs, 'tiny', '.lock');
    const first = spawn(process.execPath, [join(REPO_ROOT, 'scripts/collapse.mjs'), 'run', '--set', `runsDir=${runs}`, '--set', 'estimate=false'], {
      env: { ...process.env, COLLAPSE_MALLOC: 'default' }, stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 600 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 100));
      expect(JSON.parse(readFileSync(lockFile, 'utf8')).pid).toBe(first.pid);
      const second = await collapse('run', '--set', `runsDir=${runs}`, '--set', 'estimate=false');
      expectFailure(second, new RegExp(`tiny is in use: process ${first.pid} on .* \\(collapse run, since .*\\) holds .*\\.lock`));
    } finally {
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
    }
    const lines: string[] = [];
    // The next start takes the lock over and removes what the killed process left half-written.
    lockRunDir(join(runs, 'tiny'), { index: 0, count: 1 }, (s) => lines.push(s)).release();
    expect(lines.join('\n')).toMatch(new RegExp(`taking over the stale lock .* of process ${first.pid}`));
    expect(tmpLeftovers(runs)).toEqual([]);
  }, 90_000);

  it('a stale lock (dead PID) is taken over with a message', () => {
    const dir = p('stale-lock');
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: Number(dead), host: hostname(), startedAt: 'earlier', what: 'collapse run' }));
    const lines: string[] = [];
    const lock = acquireLock(dir, '.lock', 'collapse run', { log: (s) => lines.push(s) });
    expect(lines.join('\n')).toMatch(new RegExp(`taking over the stale lock .*\\.lock of process ${dead} .*no longer runs`));
    expect(JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('ranks of a sharded run lock per rank: a second process on one rank, or a plain run beside them, is refused', () => {
    const dir = p('rank-lock');
    const host = hostname();
    mkdirSync(dir);
    writeFileSync(join(dir, '.lock-rank-1'), JSON.stringify({ pid: 1, host, startedAt: 'earlier', what: 'collapse run, rank 1 of 2' }));
    const log = () => {};
    const r0 = lockRunDir(dir, { index: 0, count: 2 }, log); // another rank: allowed
    expect(() => lockRunDir(dir, { index: 1, count: 2 }, log)).toThrow(/process 1 .*rank 1 of 2.*holds .*\.lock-rank-1/);
    r0.release();
    expect(() => lockRunDir(dir, { index: 0, count: 1 }, log)).toThrow(/in use: process 1 .*\.lock-rank-1/);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('a rank waiting for others gives up once no other rank runs (no endless wait)', () => {
    const dir = p('peer-watch');
    mkdirSync(dir);
    const watch = peerWatch(dir, { index: 1, count: 2 }, 0);
    expect(() => watch('prepare in data')).toThrow(/rank 1 of 2 waited 0 s for prepare in data, but no other rank of this run is running/);
    writeFileSync(join(dir, '.lock-rank-0'), JSON.stringify({ pid: 1, host: hostname(), startedAt: 'earlier', what: 'collapse run, rank 0 of 2' }));
    expect(() => watch('prepare in data')).not.toThrow();
  });

  it('temporaries of dead processes are removed at start; a live process\'s stay', () => {
    const dir = p('tmp-clean');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    mkdirSync(join(dir, 'seed-0', 'gen-0', `model.tmp-${dead}-abc`, 'onnx'), { recursive: true });
    writeFileSync(join(dir, 'seed-0', 'gen-0', `model.tmp-${dead}-abc`, 'onnx', 'model.onnx'), 'x');
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'data', `part-w0-00000.arrow.tmp-${dead}-x1`), 'x');
    writeFileSync(join(dir, 'data', 'part-w0-00000.arrow.tmp-1-x2'), 'live'); // PID 1 runs
    const removed = removeStaleTmp(dir);
    expect(removed.sort()).toEqual([join(dir, 'data', `part-w0-00000.arrow.tmp-${dead}-x1`), join(dir, 'seed-0', 'gen-0', `model.tmp-${dead}-abc`)].sort());
    expect(tmpLeftovers(dir)).toEqual([join('data', 'part-w0-00000.arrow.tmp-1-x2')]);
  });

  it('status shows pretraining (partial while its checkpoint exists)', async () => {
    const run = p('run-pretrain');
    mkdirSync(join(run, 'base', 'model.ckpt'), { recursive: true });
    writeFileSync(join(run, 'run.json'), JSON.stringify({ config: { seeds: [0], generations: 1, model: { pretrainEpochs: 2 } } }));
    writeFileSync(join(run, 'base-model.done.json'), JSON.stringify({ step: 'base-model', seconds: 1.5 }));
    const r = await collapse('status', run);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/run: base-model done 1\.5 s, prepare -, estimate -, pretrain PARTIAL checkpoint present \(resumes from it\), zero-shot -/);
  });

  it('run.json of a run whose first step never finished is replaced by the corrected config', () => {
    const layout = new RunLayout(p('runs-fix', 'tiny'));
    const bad = validateConfig({ model: { base: '/nowhere' } });
    writeRunManifest(bad, layout, {});
    const good = validateConfig({});
    writeRunManifest(good, layout, {});
    expect(JSON.parse(readFileSync(layout.manifest, 'utf8')).config.model.base).toBe('tiny');
    // Once the first step has finished, a different config is refused as before.
    writeFileSync(layout.marker('base-model'), '{}');
    expect(() => writeRunManifest(bad, layout, {})).toThrow(/this run was started with other settings, and they change its results:\n  model\.base: "tiny" -> "\/nowhere"/);
  });

  it('no command above left a temporary behind', () => {
    const left = tmpLeftovers(root).filter((f) => !f.startsWith('tmp-clean'));
    expect(left).toEqual([]);
    expect(readdirSync(root).some((f) => f.startsWith('.collapse-probe-'))).toBe(false);
  });
});
