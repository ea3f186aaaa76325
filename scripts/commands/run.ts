// `collapse run` (the main job) and `collapse status`.
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { deepMerge, parseOverrides, readConfigFile, validateConfig, type RunConfig } from '../../pipeline/run/config.js';
import { formatConfig, isPaperPreset, PRESETS, presetConfig } from '../../pipeline/run/presets.js';
import { formatStatus, runStatus } from '../../pipeline/run/status.js';
import { resolveShard } from '../shards.js';
import { preflightRun } from '../../pipeline/run/preflight-run.js';
import { lockRunDir, peerWatch } from '../../pipeline/run/run-lock.js';
import { missingDirs, removeEmptyDirs } from '../../util/atomic.js';

interface RunArgs {
  preset?: string;
  config?: string;
  set: string[];
  seed?: number[];
  'shard-index'?: number;
  'num-shards'?: number;
  'print-config': boolean;
  'poll-seconds': number;
}

export function resolveRunConfig(args: { preset?: string; config?: string; set?: string[] }): RunConfig {
  let raw: unknown = presetConfig(args.preset ?? (args.config ? 'tiny' : 'tiny'));
  let origin = `preset ${args.preset ?? 'tiny'}`;
  if (args.config) {
    // A config file stands alone unless it names a preset to start from (`preset: paper-5ep`).
    const file = readConfigFile(args.config) as Record<string, unknown>;
    const { preset, ...rest } = (file ?? {}) as { preset?: string };
    raw = deepMerge(preset ? presetConfig(preset) : args.preset ? raw : {}, rest);
    origin = `config file ${args.config}`;
  }
  if (args.set?.length) {
    raw = deepMerge(raw, parseOverrides(args.set));
    origin += ' with --set overrides';
  }
  return validateConfig(raw, origin);
}

/** The paper preset a configuration starts from (--preset, or a config file's `preset:`), if any. */
function paperPresetOf(args: { preset?: string; config?: string }): string | undefined {
  let name = args.preset;
  if (args.config) name = ((readConfigFile(args.config) ?? {}) as { preset?: string }).preset ?? name;
  return isPaperPreset(name) ? name : undefined;
}

/** --preset, --config and --set: how `collapse run` and `collapse slurm submit` name a configuration. */
export function configOptions<T>(y: Argv<T>) {
  return y
    .option('preset', { type: 'string', describe: `Named preset: ${Object.keys(PRESETS).join(', ')}` })
    .option('config', { type: 'string', describe: 'YAML or JSON config file (may name `preset:` to start from)' })
    .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a config key, e.g. --set train.lr=1e-4 --set seeds=[0,1]' });
}

export function projectVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const run: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Run the generational model-collapse experiment (default: the tiny preset)',
  builder: (y) =>
    configOptions(y)
      .option('seed', { type: 'number', array: true, describe: 'Only run these seeds (one process or machine per seed)' })
      .option('shard-index', { type: 'number', describe: 'This process\'s generation shard (default from SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX)' })
      .option('num-shards', { type: 'number', describe: 'Number of processes sharing each generation (default from SLURM_ARRAY_TASK_COUNT / COLLAPSE_NUM_SHARDS)' })
      .option('poll-seconds', { type: 'number', default: 10, describe: 'How often a rank waiting for another rank\'s step looks again' })
      .option('print-config', { type: 'boolean', default: false, describe: 'Print the resolved configuration and exit' })
      .epilogue(
        `Presets:\n${Object.entries(PRESETS).map(([k, v]) => `  ${k.padEnd(20)} ${v.description}`).join('\n')}\n\n` +
          'Rerunning the same command resumes a crashed or killed run from its last committed step.',
      ) as never,
  handler: async (args) => {
    const cfg = resolveRunConfig(args);
    if (args['print-config']) {
      const preset = paperPresetOf(args);
      process.stdout.write(formatConfig(cfg, preset ? { preset: resolveRunConfig({ preset }) } : undefined));
      return;
    }
    const shard = resolveShard({ shardIndex: args['shard-index'], numShards: args['num-shards'], seeds: args.seed });
    if (!(args['poll-seconds'] > 0)) throw new Error(`--poll-seconds ${args['poll-seconds']}: must be a positive number`);
    // Before any compute and before run.json: a bad config fails now and leaves nothing that blocks its fix.
    preflightRun(cfg, args.seed);
    const { runExperiment, layoutOf } = await import('../../pipeline/run/generational-loop.js');
    const { refuseBesideSlurmJobs } = await import('../../pipeline/slurm/submit.js');
    const { slurmCommands } = await import('../../pipeline/slurm/client.js');
    const log = (s: string): void => void process.stderr.write(`${s}\n`);
    const layout = layoutOf(cfg);
    refuseBesideSlurmJobs(layout, slurmCommands());
    const root = layout.root;
    // A run refused before it wrote anything leaves no empty run directory behind.
    const created = missingDirs(root);
    const t0 = Date.now();
    let res: Awaited<ReturnType<typeof runExperiment>>;
    try {
      // A rank's heartbeat beats less often than it polls, so a waiting rank never looks busy to the others.
      const lock = lockRunDir(root, shard, log, { heartbeatSeconds: Math.max(30, 2 * args['poll-seconds']) });
      try {
        const onWait = shard.count > 1 ? peerWatch(root, shard, Math.max(600, 30 * args['poll-seconds']), lock.heartbeat) : undefined;
        res = await runExperiment(cfg, { seeds: args.seed, shard, projectVersion: projectVersion(), pollSeconds: args['poll-seconds'], log, onWait });
      } finally {
        lock.release();
      }
    } finally {
      removeEmptyDirs(created);
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    process.stdout.write(`run ${cfg.name} finished in ${secs} s: ${res.root}${res.report ? `\nreport: ${res.report}` : ''}\n`);
  },
};

const status: CommandModule<object, { run: string; json: boolean }> = {
  command: 'status <run>',
  describe: 'Show the state of every seed, generation and stage of a run directory',
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'Run directory, e.g. runs/tiny' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON' }) as never,
  handler: (args) => {
    const st = runStatus(args.run);
    process.stdout.write(args.json ? `${JSON.stringify(st, null, 2)}\n` : `${formatStatus(st)}\n`);
  },
};

export default [run, status];
