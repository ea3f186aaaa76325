// Resume after a hard crash: `collapse train` in a child process is killed with SIGKILL once a checkpoint exists;
// the rerun of the same command must end with the same bytes as an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { finetune } from '../../pipeline/train/finetune.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { patternBlocks, writeBlocksCorpus, writeTinyOptDir } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'resume-kill-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, COLLAPSE_ARTIFACT_CACHE: join(tmp, 'cache'), CI: '1' };

function args(out: string, extra = ['--max-grad-norm', '1']): string[] {
  return ['--import', 'tsx', join(REPO_ROOT, 'scripts/cli.ts'), 'train', '--model', join(tmp, 'model'), '--train', join(tmp, 'train'),
    '--valid', join(tmp, 'valid'), '--out', out, '--epochs', '2', '--batch-size', '4', '--micro-batch-size', '2', '--lr', '3e-3',
    '--seed', '7', '--threads', '1', '--checkpoint-every', '2', ...extra];
}

function run(out: string, killWhen?: string, extra?: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args(out, extra), { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = killWhen ? setInterval(() => { if (existsSync(killWhen)) { clearInterval(timer); p.kill('SIGKILL'); } }, 5) : undefined;
    p.on('exit', (code, signal) => { if (timer) clearInterval(timer); resolve({ code, signal, stderr }); });
  });
}

describe('collapse train resumes after SIGKILL', () => {
  it('ends with bitwise-identical weights to an uninterrupted run', async () => {
    writeTinyOptDir(join(tmp, 'model'), 5);
    writeBlocksCorpus(join(tmp, 'train'), patternBlocks(48, 32, 512, 8));
    writeBlocksCorpus(join(tmp, 'valid'), patternBlocks(8, 32, 512, 9));
    const ref = join(tmp, 'ref');
    await finetune({ model: join(tmp, 'model'), train: join(tmp, 'train'), valid: join(tmp, 'valid'), out: ref, epochs: 2, batchSize: 4,
      microBatchSize: 2, lr: 3e-3, seed: 7, threads: 1, checkpointEvery: 2, maxGradNorm: 1, artifactCache: join(tmp, 'cache'), log: () => {} });
    const out = join(tmp, 'out');
    const killed = await run(out, join(`${out}.ckpt`, 'checkpoint.safetensors'));
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false); // nothing half-written where a later stage would look
    const resumed = await run(out);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from the checkpoint at step [1-9]/);
    expect(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(ref, 'model.safetensors')))).toBe(true);
    const s1 = JSON.parse(readFileSync(join(out, 'train-summary.json'), 'utf8')), s2 = JSON.parse(readFileSync(join(ref, 'train-summary.json'), 'utf8'));
    expect(s1.validLosses).toEqual(s2.validLosses);
  }, 120_000);

  // The paper code's training: dropout 0.1 (masks from the seed, step and micro-batch), weight decay on every
  // parameter, cosine per epoch to a floor, no clipping. A killed and resumed run replays the same masks.
  it('with dropout, decay on every parameter and cosine-epoch: the resumed run ends bitwise equal too', async () => {
    const paper = ['--dropout', '0.1', '--attention-dropout', '0.05', '--weight-decay', '0.01', '--decay-exclude', 'none',
      '--schedule', 'cosine-epoch', '--min-lr', '1e-4', '--max-grad-norm', '0'];
    const ref = join(tmp, 'ref-paper');
    await finetune({ model: join(tmp, 'model'), train: join(tmp, 'train'), valid: join(tmp, 'valid'), out: ref, epochs: 2, batchSize: 4,
      microBatchSize: 2, lr: 3e-3, seed: 7, threads: 1, checkpointEvery: 2, maxGradNorm: null, dropout: 0.1, attentionDropout: 0.05,
      weightDecay: 0.01, decayExclude: 'none', schedule: 'cosine-epoch', minLr: 1e-4, artifactCache: join(tmp, 'cache'), log: () => {} });
    const out = join(tmp, 'out-paper');
    const killed = await run(out, join(`${out}.ckpt`, 'checkpoint.safetensors'), paper);
    expect(killed.signal).toBe('SIGKILL');
    const resumed = await run(out, undefined, paper);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from the checkpoint at step [1-9]/);
    expect(resumed.stderr).toMatch(/training: dropout 0.1 after the attention output projection and fc2, attention dropout 0.05/);
    expect(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(ref, 'model.safetensors')))).toBe(true);
    // Dropout and the other settings did change the training (the run without them ends elsewhere).
    expect(readFileSync(join(ref, 'model.safetensors')).equals(readFileSync(join(tmp, 'ref', 'model.safetensors')))).toBe(false);
  }, 180_000);
});
