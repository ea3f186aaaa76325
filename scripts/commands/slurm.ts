// `collapse slurm submit|cancel`: the run's steps as Slurm jobs chained with --dependency=afterok (as
// datatrove's SlurmPipelineExecutor does), and `collapse slurm step`, what each of those jobs runs.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { layoutOf, writeRunManifest } from '../../pipeline/run/generational-loop.js';
import { RunLayout } from '../../pipeline/run/layout.js';
import { preflightRun } from '../../pipeline/run/preflight-run.js';
import { STEP_KINDS } from '../../pipeline/run/steps.js';
import { slurmCommands } from '../../pipeline/slurm/client.js';
import { parseCpus, parseMem, parsePerKind, parseTime, type SlurmOptions } from '../../pipeline/slurm/options.js';
import { runStepJob } from '../../pipeline/slurm/step-job.js';
import { cancelRun, submitRun } from '../../pipeline/slurm/submit.js';
import { configOptions, projectVersion, resolveRunConfig } from './run.js';

const CLI = fileURLToPath(new URL('../collapse.mjs', import.meta.url));
const KINDS = `KIND is ${STEP_KINDS.join(', ')} (light: base model, data, mixing, report)`;

interface SubmitArgs {
  preset?: string;
  config?: string;
  set: string[];
  'num-shards': number;
  partition?: string;
  account?: string;
  cpus: string[];
  time: string[];
  mem: string[];
  sbatch: string[];
  'dry-run': boolean;
}

const submit: CommandModule<object, SubmitArgs> = {
  command: 'submit',
  describe: 'Submit the run as Slurm jobs, one per step (array jobs for sharded generation), chained with afterok',
  builder: (y) =>
    configOptions(y)
      .option('num-shards', { type: 'number', default: 1, describe: 'Array tasks sharing each generation\'s beam search' })
      .option('partition', { type: 'string', describe: 'sbatch --partition' })
      .option('account', { type: 'string', describe: 'sbatch --account' })
      .option('cpus', { type: 'string', array: true, default: [], describe: `CPUs per task: N, or KIND=N (repeatable); ${KINDS}` })
      .option('time', { type: 'string', array: true, default: [], describe: 'Time limit: D-HH:MM:SS (or any sbatch form), or KIND=TIME (repeatable)' })
      .option('mem', { type: 'string', array: true, default: [], describe: 'Memory per job: e.g. 8G, or KIND=8G (repeatable)' })
      .option('sbatch', { type: 'string', array: true, default: [], describe: 'An extra #SBATCH line, e.g. --sbatch=--qos=long (repeatable)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the job scripts and their dependencies; submit nothing' })
      .epilogue('Submitting again resumes: only the steps without a marker are submitted, each from its checkpoint or committed shards.') as never,
  handler: (args) => {
    const cfg = resolveRunConfig(args);
    const opts: SlurmOptions = {
      partition: args.partition,
      account: args.account,
      cpus: parsePerKind('cpus', args.cpus, parseCpus, 'N'),
      time: parsePerKind('time', args.time, parseTime, 'TIME'),
      mem: parsePerKind('mem', args.mem, parseMem, 'SIZE'),
      extra: args.sbatch,
      numShards: args['num-shards'],
    };
    preflightRun(cfg);
    const rel = layoutOf(cfg);
    const layout = new RunLayout(resolve(rel.root), rel.settings);
    const log = (s: string): void => void process.stderr.write(`${s}\n`);
    const r = submitRun(cfg, layout, opts, {
      client: slurmCommands(),
      cli: [process.execPath, CLI],
      cwd: process.cwd(),
      dryRun: args['dry-run'],
      writeManifest: () => writeRunManifest(cfg, layout, { projectVersion: projectVersion() }),
      log,
    });
    if (r.done.length) log(`already done (not submitted): ${r.done.join(', ')}`);
    if (args['dry-run']) {
      for (const j of r.jobs)
        process.stdout.write(`# ---- ${layout.slurmScript(j.key)}${j.after.length ? `  (sbatch --dependency=afterok on: ${j.after.join(', ')})` : ''}\n${j.script}\n`);
      process.stdout.write(`${r.jobs.length} job(s) would be submitted (dry run: nothing submitted)\n`);
      return;
    }
    for (const j of r.jobs) process.stdout.write(`${j.jobId}  ${j.key}${j.tasks > 1 ? ` (array of ${j.tasks})` : ''}${j.afterIds.length ? `  after ${j.afterIds.join(',')}` : ''}\n`);
    process.stdout.write(`submitted ${r.jobs.length} job(s) for ${layout.root}; job ids in ${layout.slurmJobs}; \`collapse status ${layout.root}\` shows them\n`);
  },
};

const cancel: CommandModule<object, { run: string }> = {
  command: 'cancel <run>',
  describe: 'Cancel the jobs of a run that Slurm still has queued or running',
  builder: (y) => y.positional('run', { type: 'string', demandOption: true, describe: 'Run directory, e.g. runs/tiny' }) as never,
  handler: (args) => {
    const layout = RunLayout.open(resolve(args.run));
    const cancelled = cancelRun(layout, slurmCommands());
    process.stdout.write(
      cancelled.length ? `cancelled ${cancelled.length} job(s): ${cancelled.map((j) => `${j.key} = ${j.jobId}`).join(', ')}\n` : `no job of ${args.run} is queued or running\n`,
    );
  },
};

interface StepArgs { run: string; step: string; setting?: string; seed?: number; gen?: number; 'shard-index'?: number; 'num-shards': number }

const step: CommandModule<object, StepArgs> = {
  command: 'step <run>',
  describe: false, // what the submitted jobs run; not for people
  builder: (y: Argv) =>
    y
      .positional('run', { type: 'string', demandOption: true })
      .option('step', { type: 'string', demandOption: true })
      .option('setting', { type: 'string' })
      .option('seed', { type: 'number' })
      .option('gen', { type: 'number' })
      .option('shard-index', { type: 'number' })
      .option('num-shards', { type: 'number', default: 1 }) as never,
  handler: async (args) => {
    const { setting, seed, gen } = args;
    const given = [setting, seed, gen].filter((v) => v !== undefined).length;
    if (given !== 0 && given !== 3) throw new Error('--setting, --seed and --gen go together');
    const count = args['num-shards'];
    const index = args['shard-index'] ?? 0;
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count)
      throw new Error(`--shard-index ${index} --num-shards ${count}: need 0 <= index < count`);
    await runStepJob(
      resolve(args.run),
      { step: args.step, at: given ? { setting: setting!, seed: seed!, gen: gen! } : undefined, shard: { index, count } },
      (s) => void process.stderr.write(`${s}\n`),
    );
  },
};

const slurm: CommandModule = {
  command: 'slurm <command>',
  describe: 'Run an experiment on a Slurm cluster: submit its steps as jobs, or cancel them',
  builder: (y: Argv) => y.command(submit).command(cancel).command(step).demandCommand(1, 'Name a slurm subcommand: submit or cancel'),
  handler: () => {},
};

export default slurm;
