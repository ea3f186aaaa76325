// A one-node Slurm cluster on localhost for the tests: munged, slurmctld and slurmd from Debian's slurm-wlm
// and munge, started as children of the test process from a slurm.conf generated in a temporary directory
// (own ports, state, spool, logs and munge key), and stopped afterwards. Where Slurm is not installed or
// cannot start (not root, no binaries), `startCluster` says why and the tests skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cluster {
  /** Environment for Slurm's client commands (and the jobs they submit): SLURM_CONF and the munge socket. */
  env: NodeJS.ProcessEnv;
  dir: string;
  stop(): Promise<void>;
}

const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo'];

function which(bin: string): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) if (d && existsSync(join(d, bin))) return join(d, bin);
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the cluster, or returns why it cannot (then the caller skips its tests with that message). */
export async function startCluster(opts: { cpus?: number } = {}): Promise<Cluster | { skip: string }> {
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length) return { skip: `Slurm is not installed (${missing.join(', ')} not found); \`apt-get install -y slurm-wlm munge\` (as .ci/run does) runs these tests` };
  if (process.getuid?.() !== 0) return { skip: 'slurmd must run as root to start jobs; run the tests as root to include the Slurm cluster tests' };
  const dir = mkdtempSync(join(tmpdir(), 'collapse-slurm-'));
  const node = hostname().split('.')[0]!;
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  for (const d of ['state', 'spool']) mkdirSync(join(dir, d));
  const key = join(dir, 'munge.key');
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = join(dir, 'munge.sock');
  const conf = join(dir, 'slurm.conf');
  const cpus = opts.cpus ?? 2;
  writeFileSync(
    conf,
    [
      'ClusterName=collapse-test',
      `SlurmctldHost=${node}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CryptoType=crypto/munge',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'MpiDefault=none',
      'SchedulerType=sched/builtin',
      // CPUs are shared by the jobs of a test machine with few cores (each job asks for one).
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'ReturnToService=2',
      // Finished jobs stay visible to squeue for the test's lifetime; jobcomp/filetxt feeds `sacct --completion`.
      'MinJobAge=3600',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${dir}/jobcomp.txt`,
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=2000 State=UNKNOWN`,
      `PartitionName=test Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const daemon = (bin: string, args: string[]) => {
    const c = spawn(which(bin)!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    children.push(c);
    return () => err;
  };
  const stop = async () => {
    spawnSync('scancel', ['--user=root'], { env });
    // Daemons in reverse order, each by its own PID; give each a moment to exit, then force it.
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      c.kill('SIGTERM');
      for (let i = 0; i < 50 && c.exitCode === null && c.signalCode === null; i++) await sleep(100);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const fail = async (why: string) => {
    const logs = ['slurmctld.log', 'slurmd.log'].map((f) => join(dir, f)).filter(existsSync).map((f) => readFileSync(f, 'utf8').split('\n').slice(-5).join('\n'));
    await stop();
    return { skip: `the test cluster did not start: ${why}${logs.length ? `\n${logs.join('\n')}` : ''}` };
  };
  const mungeErr = daemon('munged', ['-F', '-f', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${dir}/munged.pid`, `--log-file=${dir}/munged.log`, `--seed-file=${dir}/munged.seed`]);
  for (let i = 0; i < 50 && !existsSync(socket); i++) await sleep(100);
  if (!existsSync(socket)) return fail(`munged did not open its socket (${mungeErr().trim() || 'no message'})`);
  daemon('slurmctld', ['-D', '-i']);
  daemon('slurmd', ['-D', '-N', node]);
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('sinfo', ['--noheader', '--format=%T'], { env, encoding: 'utf8' });
    if (r.status === 0 && /^idle/m.test(r.stdout)) return { env, dir, stop };
    await sleep(200);
  }
  return fail('the node did not come up idle within 20 s');
}
