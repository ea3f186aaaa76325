// `collapse slurm` on a real one-node Slurm cluster (test/helpers/slurm-cluster.ts): a micro run of 2 seeds x
// 3 generations with 2 generation shards submitted as jobs ends byte-identical to one `collapse run`
// process; so does a run whose generation array task was cancelled mid-run and then resubmitted; a failed
// step stops its dependants and its error shows in `collapse status` and in the job's log. Skips, saying
// why, where Slurm is not installed or cannot start.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { MICRO_RUN } from '../helpers/micro.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { startCluster } from '../helpers/slurm-cluster.js';

const MICRO = ['--set', 'generations=3', '--set', 'seeds=[0, 1]', '--set', 'estimate=false', ...MICRO_RUN];

const cluster = await startCluster({ cpus: 2 });
const skip = 'skip' in cluster ? cluster.skip : null;
if (skip) console.warn(`[skip] Slurm cluster tests: ${skip}`);
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, ...('env' in cluster ? cluster.env : {}), CI: '1', ...extra });

function collapse(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', ['-n', '10', process.execPath, CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: env(extraEnv) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const slurm = (cmd: string, args: string[]): string => {
  const r = spawnSync(cmd, args, { env: env(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALIVE = /^(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|SUSPENDED)/;

/** The test's own polling (the jobs do not poll): until no job is queued or running. */
async function waitIdle(timeoutS = 1200): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < timeoutS * 1000; await sleep(1000)) {
    if (!slurm('squeue', ['--me', '--noheader', '--array', '--format=%T']).split('\n').some((s) => ALIVE.test(s))) return;
  }
  throw new Error(`jobs still queued or running after ${timeoutS} s:\n${slurm('squeue', ['--me', '--array'])}`);
}

const jobsOf = (root: string): Record<string, { jobId: string; tasks: number }> =>
  (JSON.parse(readFileSync(join(root, 'slurm', 'jobs.json'), 'utf8')) as { jobs: Record<string, { jobId: string; tasks: number }> }).jobs;

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Models, corpora (every Arrow file's bytes) and metrics (without timings and paths) of every seed and generation. */
function fingerprint(root: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const seed of [0, 1])
    for (const gen of [0, 1, 2]) {
      const g = join(root, `seed-${seed}`, `gen-${gen}`);
      out[`s${seed}g${gen}.model`] = sha(join(g, 'model', 'model.safetensors'));
      for (const f of readdirSync(join(g, 'corpus')).filter((x) => x.endsWith('.arrow')).sort()) out[`s${seed}g${gen}.corpus/${f}`] = sha(join(g, 'corpus', f));
      const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, unknown>;
      for (const k of ['seconds', 'evaluated_at', 'model', 'corpus', 'test_model']) delete m[k];
      out[`s${seed}g${gen}.metrics`] = m;
    }
  return out;
}

describe.skipIf(skip !== null)('collapse slurm on a one-node Slurm cluster', () => {
  const base = mkdtempSync(join(tmpdir(), 'collapse-slurm-runs-'));
  const run = (name: string) => ['--set', `runsDir=${base}`, '--set', `name=${name}`];
  const submit = (name: string, more: string[] = [], extraEnv: NodeJS.ProcessEnv = {}) =>
    collapse(['slurm', 'submit', ...MICRO, ...run(name), '--num-shards', '2', '--cpus', '1', '--time', '20', ...more], extraEnv);
  let plain: Record<string, unknown>;

  beforeAll(async () => {
    const t0 = Date.now();
    const r = await collapse(['run', ...MICRO, ...run('plain')]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    plain = fingerprint(join(base, 'plain'));
    console.log(`[slurm] plain collapse run: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 1_500_000);
  afterAll(async () => {
    if ('stop' in cluster) await cluster.stop();
    rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('2 seeds x 3 generations with 2 generation shards as jobs: byte-identical to one collapse run', async () => {
    const t0 = Date.now();
    const r = await submit('jobs');
    expect(r.code, r.stderr).toBe(0);
    const root = join(base, 'jobs');
    const jobs = jobsOf(root);
    // 4 run-wide steps + 2 seeds x 3 generations x 4 steps + the report; generation as arrays of 2 tasks.
    expect(Object.keys(jobs)).toHaveLength(4 + 24 + 1);
    expect(jobs['generate.replace.s1.g2']!.tasks).toBe(2);
    await waitIdle();
    console.log(`[slurm] submit to idle: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const st = await collapse(['status', root]);
    expect(st.stdout).toContain('6/6 generations complete');
    expect(st.stdout).toMatch(/generate +evaluate/);
    expect(st.stdout).toMatch(/done \([\d.]+ s\) \[job \d+ COMPLETED x2\]/);
    expect(st.stdout).toMatch(/report: \[job \d+ COMPLETED\]/);
    expect(st.stdout).not.toMatch(/FAILED|CANCELLED/);
    expect(fingerprint(root)).toEqual(plain);
    // For the record: what Slurm says of the jobs (jobcomp/filetxt; there is no accounting database).
    const ids = Object.values(jobs).map((j) => j.jobId).join(',');
    console.log(`[slurm] sacct --completion:\n${spawnSync('sacct', ['--completion', '--jobs', ids, '--format=JobID,JobName%40,State,Elapsed,ExitCode'], { env: env(), encoding: 'utf8' }).stdout}`);
  }, 1_500_000);

  it('a generation array task cancelled mid-run, then resubmitted: byte-identical as well', async () => {
    const t0 = Date.now();
    const r = await submit('cancelled');
    expect(r.code, r.stderr).toBe(0);
    const root = join(base, 'cancelled');
    const target = jobsOf(root)['generate.replace.s0.g1']!.jobId;
    // Catch task 1 of seed 0's generation-1 array while it runs, and cancel just that task.
    let cancelled = false;
    for (let i = 0; i < 3000 && !cancelled; i++) {
      const state = slurm('squeue', ['--me', '--noheader', '--array', '--states=all', '--format=%i|%T']).split('\n').find((l) => l.startsWith(`${target}_1|`));
      if (state?.endsWith('|RUNNING')) {
        slurm('scancel', [`${target}_1`]);
        cancelled = true;
      } else if (state && !ALIVE.test(state.split('|')[1]!)) break;
      else await sleep(100);
    }
    expect(cancelled, 'task 1 of the generation-1 array was never seen running').toBe(true);
    await waitIdle();
    const mid = await collapse(['status', root]);
    expect(mid.stdout).toMatch(/CANCELLED/);
    expect(mid.stdout).not.toContain('6/6 generations complete');
    // Resubmission: only the unfinished steps, each resuming from its markers and committed shards.
    const again = await submit('cancelled');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already done \(not submitted\): base-model, prepare, pretrain, zero-shot/);
    await waitIdle();
    console.log(`[slurm] cancel + resubmit to idle: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect((await collapse(['status', root])).stdout).toContain('6/6 generations complete');
    expect(fingerprint(root)).toEqual(plain);
  }, 1_500_000);

  it('a failed step stops its dependants; its error is in collapse status and in the job log', async () => {
    // A base model whose cached hub snapshot is corrupt: the preflight cannot see it, the base-model job fails.
    const cache = join(base, 'cache');
    const snap = join(cache, 'hub', 'test-org--broken', 'main');
    mkdirSync(snap, { recursive: true });
    writeFileSync(join(snap, 'config.json'), '{}');
    writeFileSync(join(snap, 'config.json.sha256'), `${'0'.repeat(64)}\n`);
    writeFileSync(join(snap, '.complete'), '');
    const r = await submit('failed', ['--set', 'model.base=test-org/broken'], { COLLAPSE_CACHE_DIR: cache });
    expect(r.code, r.stderr).toBe(0);
    await waitIdle(120);
    const root = join(base, 'failed');
    const st = await collapse(['status', root]);
    expect(st.stdout).toMatch(/base-model - \[job \d+ FAILED\]/);
    expect(st.stdout).toMatch(/prepare - \[job \d+ CANCELLED\]/);
    expect(st.stdout).toMatch(/report: \[job \d+ CANCELLED\]/);
    expect(st.stdout).toMatch(/FAILED base-model, job \d+: collapse: cached .*config.json does not match its recorded sha256/);
    const log = /log: (\S+)/.exec(st.stdout)![1]!;
    expect(readFileSync(log, 'utf8')).toMatch(/does not match its recorded sha256/);
  }, 300_000);

  it('a second submission while jobs are queued is refused; collapse slurm cancel cancels them', async () => {
    const r = await submit('held', ['--sbatch=--hold']);
    expect(r.code, r.stderr).toBe(0);
    const root = join(base, 'held');
    const again = await submit('held', ['--sbatch=--hold']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/job\(s\) of the last submission of .* are still queued or running .*collapse slurm cancel/);
    const plainBeside = await collapse(['run', ...MICRO, ...run('held')]);
    expect(plainBeside.code).toBe(1);
    expect(plainBeside.stderr).toMatch(/Slurm job\(s\) of .* are queued or running .*before `collapse run`/);
    const c = await collapse(['slurm', 'cancel', root]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/cancelled 29 job\(s\)/);
    expect((await collapse(['slurm', 'cancel', root])).stdout).toMatch(/no job of .* is queued or running/);
  }, 120_000);
});
