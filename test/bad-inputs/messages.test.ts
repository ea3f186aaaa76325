// Issue 27, items 4-5: every message names the path and says what to do (errno causes in words), a config
// must be a regular, non-empty file, and a refused run leaves no empty run directory behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkDecodeBatch, checkTrainBatch } from '../../pipeline/batch-fits.js';
import { describeError } from '../../scripts/cli.js';
import { initModelDir } from '../../scripts/commands/model.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { makeFakeRun } from '../report/fake-run.js';
import { patternBlocks, writeBlocksCorpus } from '../train/fixtures.js';
import { collapse, expectFailure, snapshot } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'messages-'));
const p = (...xs: string[]): string => join(root, ...xs);
const savedEnv = { ...process.env };
const LONG = 'a'.repeat(300);

const model = p('model');
const corpus8 = p('train-8');

beforeAll(() => {
  process.env.CI = '1';
  process.env.COLLAPSE_ARTIFACT_CACHE = p('artifacts');
  delete process.env.COLLAPSE_DEBUG;
  initModelDir({ config: 'tiny', seed: 1, out: model });
  writeBlocksCorpus(corpus8, patternBlocks(8, 16, 512, 3));
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

describe('--config: regular, non-empty files only', () => {
  it('a directory is named (was a bare EISDIR with no path)', async () => {
    mkdirSync(p('cfg-dir'));
    expectFailure(await collapse('run', '--config', p('cfg-dir'), '--print-config'), /--config .*cfg-dir is a directory; give a YAML or JSON file/);
  });

  it('a FIFO is refused at once (reading it blocked forever)', async () => {
    const fifo = p('cfg.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectFailure(await collapse('run', '--config', fifo, '--print-config'), /--config .*cfg\.fifo is a FIFO \(named pipe\); give a YAML or JSON file/);
  }, 10_000);

  it('an empty file is refused (it silently ran every default)', async () => {
    writeFileSync(p('empty.yaml'), '\n  \n');
    expectFailure(await collapse('run', '--config', p('empty.yaml')), /--config .*empty\.yaml is empty; write the keys to change/);
  });

  it('a file of comments only is refused too', async () => {
    writeFileSync(p('comments.yaml'), '# nothing yet\n');
    expectFailure(await collapse('run', '--config', p('comments.yaml')), /--config .*comments\.yaml holds no keys/);
  });

  it('a symbolic link loop is named in words with the path (was a raw ELOOP)', async () => {
    symlinkSync(p('loop-b'), p('loop-a'));
    symlinkSync(p('loop-a'), p('loop-b'));
    expectFailure(
      await collapse('run', '--config', p('loop-a'), '--print-config'),
      /too many levels of symbolic links .*: stat .*loop-a \(ELOOP\); fix or remove the symbolic link loop/,
    );
  });

  it('--out through the same loop is named too, before any compute', async () => {
    expectFailure(
      await collapse('generate', '--model', model, '--prompts', corpus8, '--out', join(p('loop-a'), 'out'), '--strategy', 'greedy'),
      /too many levels of symbolic links .*: stat .*loop-a \(ELOOP\); fix or remove the symbolic link loop/,
    );
  });

  it('a 300-character name is named in words (was a raw ENAMETOOLONG)', async () => {
    expectFailure(await collapse('run', '--config', p(LONG), '--print-config'), /the file name is too long: stat .*a{300} \(ENAMETOOLONG\); use a shorter name/);
  });
});

describe('a refused run leaves no run directory behind', () => {
  it('--seed 5 (not among the seeds)', async () => {
    const runs = p('runs-seed');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--seed', '5'), /--seed 5 is not among the config's seeds \[0,1,2\]; pass one of them, or add it with --set seeds=\[0,1,2,5\]/);
    expect(existsSync(runs)).toBe(false);
  });

  it('a 300-character run name is refused by the config key', async () => {
    const runs = p('runs-long-name');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--set', `name=${LONG}`), /name: at most 100 characters \(it names the run directory\)/);
    expect(existsSync(runs)).toBe(false);
  });

  it('a 300-character runsDir component is refused before anything is created', async () => {
    const runs = p('runs-deep', LONG);
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`), /runsDir .*: the name a{24}\.\.\. is 300 bytes long, but a file name has at most 255; choose another runsDir/);
    expect(existsSync(p('runs-deep'))).toBe(false);
  });
});

describe('errno causes in words, with the path and what to do', () => {
  const errno = (code: string, syscall: string, path: string) => Object.assign(new Error(`${code}: raw text, ${syscall} '${path}'`), { code, syscall, path });

  it('ELOOP, ENAMETOOLONG, EISDIR, EROFS name the path and a remedy; Node\'s raw text is gone', () => {
    expect(describeError(errno('ELOOP', 'open', '/r/x'), false)).toBe(
      'collapse: too many levels of symbolic links (a link that points back to itself): open /r/x (ELOOP); fix or remove the symbolic link loop in the path\n',
    );
    expect(describeError(errno('ENAMETOOLONG', 'mkdir', '/r/y'), false)).toMatch(/^collapse: the file name is too long: mkdir \/r\/y \(ENAMETOOLONG\); use a shorter name/);
    expect(describeError(errno('EISDIR', 'open', '/r/d'), false)).toMatch(/^collapse: it is a directory, not a file: open \/r\/d \(EISDIR\); give the path of a file/);
    const rofs = describeError(errno('EROFS', 'mkdir', '/r/report'), false);
    expect(rofs).toMatch(/^collapse: the file system is read-only: mkdir \/r\/report \(EROFS\); choose a location on a writable file system/);
    expect(rofs).not.toMatch(/raw text/);
  });

  it('report on a read-only run directory, or a read-only --out, is refused before any figure is drawn', async (ctx) => {
    // A real read-only file system: a tmpfs mounted read-only (needs root; skipped where mount is not allowed).
    const ro = p('ro');
    mkdirSync(ro);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', ro]).status !== 0) ctx.skip();
    try {
      makeFakeRun(join(ro, 'run'), { seeds: [0], generations: 2, samples: 20 });
      expect(spawnSync('mount', ['-o', 'remount,ro', ro]).status).toBe(0);
      const before = snapshot(ro);
      expectFailure(
        await collapse('report', join(ro, 'run')),
        /report directory .*ro\/run\/report is not writable: the file system is read-only \(EROFS in .*ro\/run\); pass --out DIR on a writable file system/,
        { dir: ro, before },
      );
      expectFailure(await collapse('report', join(ro, 'run'), '--out', join(ro, 'out')), /--out .*ro\/out is not writable: the file system is read-only \(EROFS in .*ro\); choose another --out/);
      // The remedy works: a writable --out.
      const ok = await collapse('report', join(ro, 'run'), '--out', p('report-out'));
      expect(ok.code).toBe(0);
      expect(existsSync(p('report-out', 'report.html'))).toBe(true);
    } finally {
      spawnSync('umount', [ro]);
    }
  }, 60_000);

  it('report --help describes the layout with setting folders', async () => {
    // yargs prints the help through console.log.
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      expect((await collapse('report', '--help')).code).toBe(0);
    } finally {
      log.mockRestore();
    }
    expect(lines.join('\n')).toMatch(/RUN_DIR\/\[SETTING\/\]seed-S\/gen-K\/\{metrics\.json,sample_ppl\.json\}/);
  });
});

describe('sizes have upper bounds, checked before any compute', () => {
  const cores = availableParallelism();
  const GB = 1024 ** 3;

  it('--threads above the cores is refused by name (1000 threads made a 3 s job take 80 s)', async () => {
    const out = p('never-threads');
    const r = await collapse('generate', '--model', model, '--prompts', corpus8, '--out', out, '--threads', String(cores + 1), '--strategy', 'greedy');
    expectFailure(r, new RegExp(`--threads ${cores + 1}: this machine has ${cores} CPU cores; use at most ${cores} \\(0 = all of them\\)`));
    expect(existsSync(out)).toBe(false);
  });

  it('the run\'s threads key too, before the run directory exists', async () => {
    const runs = p('runs-threads');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--set', 'threads=1000'), new RegExp(`threads 1000: this machine has ${cores} CPU cores`));
    expect(existsSync(runs)).toBe(false);
  });

  it('--num-beams is bounded (20,000 ran on)', async () => {
    const out = p('never-beams');
    expectFailure(await collapse('generate', '--model', model, '--prompts', corpus8, '--out', out, '--num-beams', '20000'), /--num-beams 20000: expected an integer >= 1 and <= 64/);
    expectFailure(await collapse('run', '--set', 'generate.numBeams=20000', '--print-config'), /generate\.numBeams: must be at most 64 \(every beam of every prompt holds its own KV cache/);
  });

  it('train: a batch larger than the corpus is refused before the artifact is built', async () => {
    const out = p('never-trained');
    const r = await collapse('train', '--model', model, '--train', corpus8, '--out', out, '--epochs', '1', '--batch-size', '16', '--micro-batch-size', '4', '--threads', '1');
    expectFailure(r, /--batch-size 16: is larger than the 8 blocks of .*train-8: every epoch would be one step over 8 blocks\. Use --batch-size 8 or less/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(p('artifacts'))).toBe(false);
  });

  it('run: train.batchSize of 1e9 is refused in the config\'s terms before the estimate or any training', async () => {
    const runs = p('runs-batch');
    const r = await collapse('run', '--set', `runsDir=${runs}`, '--set', 'train.batchSize=1e9', '--set', 'model.pretrainEpochs=0', '--set', 'seeds=[0]');
    expectFailure(r, /train\.batchSize 1000000000: is larger than the \d+ blocks of .*data\/train: every epoch would be one step over \d+ blocks\. Use train\.batchSize \d+ or less/);
    expect(r.err).not.toMatch(/--batch-size/);
    expect(existsSync(join(runs, 'tiny', 'estimate.done.json'))).toBe(false);
    expect(existsSync(join(runs, 'tiny', 'replace', 'seed-0', 'gen-0', 'model'))).toBe(false);
  }, 60_000);

  it('memory estimates: a micro-batch or a decoding batch whose logits exceed half the memory', () => {
    // OPT-125m's vocabulary: 64 x 64-token blocks need 3 x 4 x 64 x 64 x 50272 bytes = 2.5 GB of logits.
    expect(() => checkTrainBatch({ batchSize: 64, microBatchSize: 64 }, { rows: 100, blockSize: 64, path: 'c' }, 50272, 4 * GB)).toThrow(
      /microBatchSize 64: one micro-batch of 64-token blocks needs at least 2\.3 GB for its logits \(vocabulary 50272\), more than half of this machine's 4\.0 GB/,
    );
    expect(() => checkTrainBatch({ batchSize: 64, microBatchSize: 8 }, { rows: 100, blockSize: 64, path: 'c' }, 50272, 4 * GB)).not.toThrow();
    expect(() => checkDecodeBatch({ batchSize: 1e6, numBeams: 5 }, 512, 4 * GB)).toThrow(/batchSize 1000000: 1000000 prompts x 5 beams need at least 19 GB/);
    expect(() => checkDecodeBatch({ batchSize: 16, numBeams: 5 }, 50272, 4 * GB)).not.toThrow();
  });
});

describe('Ctrl-C', () => {
  it('prints how to go on and releases the lock (the whole process group gets SIGINT, as from a terminal)', async () => {
    const runs = p('runs-ctrl-c');
    const lock = join(runs, 'tiny', '.lock');
    // The binary as users start it (with its heap-tuned child process where glibc allows).
    const run = spawn(process.execPath, [join(REPO_ROOT, 'scripts/collapse.mjs'), 'run', '--set', `runsDir=${runs}`, '--set', 'estimate=false'], {
      env: { ...process.env, COLLAPSE_MALLOC: '' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
    });
    let err = '';
    run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // The started process ends with 130, or by SIGINT itself when it waits for its heap-tuned child (as a shell sees it).
    const ended = new Promise<string>((r) => run.once('exit', (code, signal) => r(signal ?? String(code))));
    try {
      for (let i = 0; i < 600 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(lock)).toBe(true);
      process.kill(-run.pid!, 'SIGINT');
      expect(['130', 'SIGINT']).toContain(await ended);
      // The working process (the child, where there is one) releases the lock as it exits.
      for (let i = 0; i < 100 && existsSync(lock); i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      try {
        process.kill(-run.pid!, 'SIGKILL');
      } catch {
        /* already ended */
      }
    }
    expect(err).toMatch(/collapse: interrupted; rerun the same command to resume\n/);
    expect(err).not.toMatch(/parent process is gone/);
    expect(readdirSync(join(runs, 'tiny'))).not.toContain('.lock');
  }, 90_000);
});

describe('the training-artifact cache', () => {
  it('a damaged entry (a truncated graph) is rebuilt, with a message naming it', async () => {
    const train = (out: string) => collapse('train', '--model', model, '--train', corpus8, '--out', out, '--epochs', '1', '--batch-size', '8', '--micro-batch-size', '4', '--threads', '1');
    expect((await train(p('trained-1'))).code).toBe(0);
    const [entry] = readdirSync(p('artifacts')).filter((f) => !f.startsWith('.'));
    const grad = p('artifacts', entry!, 'grad.onnx');
    truncateSync(grad, 100);
    const r = await train(p('trained-2'));
    expect(r.err).toMatch(new RegExp(`the cached training artifact .*${entry} is damaged \\(grad\\.onnx has 100 bytes, its manifest says \\d+\\); building it again`));
    expect(r.code).toBe(0);
    expect(statSync(grad).size).toBeGreaterThan(100);
  }, 60_000);
});
