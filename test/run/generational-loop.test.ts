// End to end: a micro configuration of the generational loop through the real CLI, then the same run
// killed with SIGKILL during training and during generation, rerun, and compared with the uninterrupted
// run (bitwise weights, identical corpora and metrics).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCorpus } from '../../datasets/corpus-store.js';
import { runStatus } from '../../pipeline/run/status.js';
import { MICRO_RUN } from '../helpers/micro.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const CLI = join(REPO_ROOT, 'scripts', 'collapse.mjs');
const MICRO = ['--set', 'generations=2', ...MICRO_RUN];

interface Exit { code: number | null; signal: NodeJS.Signals | null; stderr: string }

/** Runs the CLI; when `killWhen` becomes true (polled), the process is killed with SIGKILL. */
function collapse(args: string[], killWhen?: () => boolean): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const timer = killWhen ? setInterval(() => killWhen() && child.kill('SIGKILL'), 20) : null;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearInterval(timer);
      resolve({ code, signal, stderr });
    });
  });
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

function fingerprint(root: string) {
  const out: Record<string, unknown> = {};
  for (const gen of [0, 1]) {
    const g = join(root, 'seed-0', `gen-${gen}`);
    out[`gen${gen}.weights`] = sha(join(g, 'model', 'model.safetensors'));
    const rows = [...readCorpus(join(g, 'corpus')).rowsIter()].map((r) => [r.prompt_block_id, Array.from(r.input_ids).join(' '), r.score]);
    out[`gen${gen}.corpus`] = rows;
    const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    for (const k of ['seconds', 'evaluated_at', 'model', 'corpus', 'test_model']) delete m[k];
    out[`gen${gen}.metrics`] = m;
  }
  return out;
}

describe('collapse run (micro configuration)', () => {
  const base = mkdtempSync(join(tmpdir(), 'collapse-run-'));
  const straight = join(base, 'a');

  it('runs two generations end to end and writes models, corpora, metrics and the report', async () => {
    const r = await collapse(['run', ...MICRO, '--set', `runsDir=${straight}`, '--set', 'name=micro']);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const root = join(straight, 'micro');
    const train = readCorpus(join(root, 'data', 'train'));
    expect(train.rows).toBeGreaterThanOrEqual(24);
    for (const gen of [0, 1]) {
      const g = join(root, 'seed-0', `gen-${gen}`);
      expect(existsSync(join(g, 'model', 'onnx', 'model.onnx'))).toBe(true);
      const corpus = readCorpus(join(g, 'corpus'));
      // one continuation per ORIGINAL training block, each exactly newTokens (= block size) long
      expect(corpus.rows).toBe(train.rows);
      const rows = [...corpus.rowsIter()];
      expect(new Set(rows.map((x) => x.prompt_block_id)).size).toBe(train.rows);
      expect(rows.every((x) => x.input_ids.length === train.blockSize && x.origin === 'generated' && x.generation === gen)).toBe(true);
      const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, number>;
      expect(m.generation).toBe(gen);
      expect(m.samples).toBe(train.rows);
      expect(m.test_perplexity).toBeGreaterThan(1);
      expect(Number.isFinite(m.valid_loss)).toBe(true);
    }
    // Generation 1's data against generation 0's, prompt by prompt: the unchanged share counted here from the corpora.
    const byPrompt = (gen: number) => new Map([...readCorpus(join(root, 'seed-0', `gen-${gen}`, 'corpus')).rowsIter()].map((x) => [x.prompt_block_id, Array.from(x.input_ids).join(' ')]));
    const [c0, c1] = [byPrompt(0), byPrompt(1)];
    const same = [...c1].filter(([k, v]) => c0.get(k) === v).length / c1.size;
    const paired = JSON.parse(readFileSync(join(root, 'seed-0', 'gen-1', 'metrics.json'), 'utf8')).paired_vs_gen0;
    expect(paired.prompts).toBe(train.rows);
    expect(paired.unchanged).toBeCloseTo(same, 12);
    expect(paired.unchanged + paired.more_probable + paired.less_probable).toBeCloseTo(1, 12);
    expect(JSON.parse(readFileSync(join(root, 'seed-0', 'gen-0', 'metrics.json'), 'utf8')).paired_vs_gen0).toBeNull();
    // generation 1 trains on generation 0's continuations (mix: replace)
    expect(readCorpus(join(root, 'seed-0', 'gen-1', 'train-corpus')).rows).toBe(train.rows);
    expect(readFileSync(join(root, 'report', 'report.html'), 'utf8')).toContain('<figure');
    const st = runStatus(root);
    expect(st.gens.every((g) => g.stages.every((s) => s.state === 'done'))).toBe(true);
    // A truncated marker (a crash while writing it) is "not done" for status as for the run, not an error.
    const marker = join(root, 'seed-0', 'gen-1', 'evaluate.done.json');
    const kept = readFileSync(marker);
    writeFileSync(marker, kept.subarray(0, 7));
    try {
      const evaluate = runStatus(root).gens.find((g) => g.gen === 1)!.stages.find((s) => s.stage === 'evaluate')!;
      expect(evaluate.state).toBe('pending');
      expect(evaluate.detail).toContain('evaluate.done.json is empty or unreadable');
    } finally {
      writeFileSync(marker, kept);
    }
  });

  it('SIGKILL during training and during generation, rerun: same results as the uninterrupted run', async () => {
    const killed = join(base, 'b');
    const root = join(killed, 'micro');
    const args = ['run', ...MICRO, '--set', `runsDir=${killed}`, '--set', 'name=micro'];
    // 1. killed while generation 1 fine-tunes (its checkpoint directory appears once a step is committed)
    const k1 = await collapse(args, () => existsSync(join(root, 'seed-0', 'gen-1', 'model.ckpt')));
    expect(k1.signal).toBe('SIGKILL');
    // 2. killed while generation 1 generates (after its first committed corpus shard)
    const corpusDir = join(root, 'seed-0', 'gen-1', 'corpus');
    const k2 = await collapse(args, () => existsSync(corpusDir) && readdirSync(corpusDir).some((f) => f.endsWith('.arrow')));
    expect(k2.signal, k2.stderr.slice(-2000)).toBe('SIGKILL');
    const done = await collapse(args);
    expect(done.code, done.stderr.slice(-3000)).toBe(0);
    expect(fingerprint(root)).toEqual(fingerprint(join(straight, 'micro')));
  });
});

describe('scale-out: two processes share each generation', () => {
  it('ranks 0 and 1 of --num-shards 2 end with the results of a single process', async () => {
    const base = mkdtempSync(join(tmpdir(), 'collapse-ranks-'));
    const single = join(base, 'single');
    const shared = join(base, 'shared');
    const common = ['run', ...MICRO, '--set', 'name=micro', '--set', 'estimate=false', '--poll-seconds', '0.2'];
    const one = await collapse([...common, '--set', `runsDir=${single}`]);
    expect(one.code, one.stderr.slice(-2000)).toBe(0);
    const ranks = await Promise.all([0, 1].map((i) => collapse([...common, '--set', `runsDir=${shared}`, '--num-shards', '2', '--shard-index', String(i)])));
    for (const r of ranks) expect(r.code, r.stderr.slice(-2000)).toBe(0);
    // both ranks wrote chunks of the same corpus
    const writers = readdirSync(join(shared, 'micro', 'seed-0', 'gen-0', 'corpus')).filter((f) => f.endsWith('.done.json'));
    expect(writers.length).toBeGreaterThan(1);
    expect(fingerprint(join(shared, 'micro'))).toEqual(fingerprint(join(single, 'micro')));
  });
});

const torchExport = sharedPath('models/opt-tiny-torch-export-opset17');
const wikitext = sharedPath('data/wikitext-2');

describe.skipIf(!torchExport || !wikitext)('the paper preset on a model exported by torch.onnx', () => {
  it('fine-tunes the foreign graph on WikiText-2 blocks with the OPT tokenizer, generates and evaluates', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'collapse-paper-'));
    const r = await collapse([
      'run', '--preset', 'paper-5ep',
      '--set', `runsDir=${runs}`, '--set', 'seeds=[0]', '--set', 'generations=2', '--set', 'threads=1',
      '--set', `model.base=${torchExport}`, '--set', `data.path=${wikitext}`, '--set', 'data.source=wikitext-2-v1',
      '--set', 'data.maxTrainBlocks=16', '--set', 'data.maxEvalBlocks=8',
      '--set', 'train={epochs: 1, batchSize: 8, microBatchSize: 8, lr: 0.001}',
    ]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const root = join(runs, 'paper-5ep');
    const train = [...readCorpus(join(root, 'data', 'train')).rowsIter()];
    expect(train).toHaveLength(16);
    // run_clm on WikiText-2: the first row is empty (just </s>), the second the article title
    expect(Array.from(train[0]!.input_ids).slice(0, 2)).toEqual([2, 2]);
    for (const gen of [0, 1]) {
      const g = join(root, 'seed-0', `gen-${gen}`);
      const corpus = [...readCorpus(join(g, 'corpus')).rowsIter()];
      expect(corpus).toHaveLength(16);
      expect(corpus.every((x) => x.input_ids.length === 64)).toBe(true);
      const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, number>;
      expect(m.test_blocks).toBe(8);
      expect(Number.isFinite(m.test_perplexity)).toBe(true);
    }
  });
});
