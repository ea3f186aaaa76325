// One declaration per option: the run config, the flags and their ranges, --print-config's notes and the
// README's table of paper settings all come from it, under one name. Checked against hand-written expectations.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { SESSION_OPTIONS } from '../../models/session-options.js';
import { GENERATE_OPTIONS } from '../../pipeline/generate/options.js';
import { RENAMED_KEYS, RUN_CONFIG_OPTIONS, readStoredConfig, validateConfig } from '../../pipeline/run/config.js';
import { configChanges, describeChanges } from '../../pipeline/run/config-diff.js';
import { paperSettingsTable, PAPER_SOURCES } from '../../pipeline/run/presets.js';
import { TRAIN_OPTIONS } from '../../pipeline/train/options.js';
import { FLAG_RANGES, RENAMED_FLAGS, sessionArgs } from '../../scripts/flags.js';
import { readmeTable } from '../../scripts/paper-table.js';
import { rangeOf } from '../../util/options.js';
import { z } from 'zod';
import { collapse, type CliResult } from '../bad-inputs/harness.js';
import { REPO_ROOT } from '../helpers/shared.js';

describe('the option registry', () => {
  it('the README\'s table of paper settings is the one the declarations give (npx tsx scripts/paper-table.ts --write)', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readmeTable(readme), 'README.md lacks the paper-settings markers').not.toBeNull();
    expect(readmeTable(readme)).toBe(paperSettingsTable());
    // One row per declared paper note, each naming its source.
    const rows = paperSettingsTable().split('\n').slice(2);
    expect(rows).toHaveLength(Object.keys(PAPER_SOURCES).length);
    expect(rows.find((r) => r.startsWith('| `train.maxGradNorm` |'))).toBe("| `train.maxGradNorm` | 0 | paper code | no clipping (Lightning's gradient_clip_val unset) |");
    expect(rows.find((r) => r.startsWith('| `train.epochs` |'))).toContain('5 (10 in `paper-10ep-10pct`, `paper-10ep-10pct-rp`)');
  });

  it('every decoding and training option but the per-step ones is a run-config key of the same name', () => {
    const cfg = validateConfig({});
    expect(Object.keys(cfg.generate).sort()).toEqual(
      Object.keys(GENERATE_OPTIONS).filter((k) => !['seed', 'shardIndex', 'numShards', 'generation', 'minNewTokens'].includes(k)).sort(),
    );
    expect(Object.keys(cfg.train)).not.toContain('seed');
    expect(Object.keys(cfg.train)).toEqual(expect.arrayContaining(['maxGradNorm', 'beta1', 'beta2', 'eps', 'checkpointEvery', 'fusedStep']));
    // --length-penalty was a flag but no run-config key.
    expect(validateConfig({ generate: { lengthPenalty: 2 } }).generate.lengthPenalty).toBe(2);
    expect(Object.keys(RUN_CONFIG_OPTIONS.generate!)).toContain('lengthPenalty');
    // A run trains on one continuation per prompt.
    expect(() => validateConfig({ generate: { numReturnSequences: 2 } })).toThrow(/generate\.numReturnSequences: must be 1 in a run/);
    expect(() => validateConfig({ generate: { strategy: 'greedy', numReturnSequences: 2 } })).toThrow(/must be 1 with greedy/);
  });

  it('a renamed key is refused with its new name; a stored run.json with the old name still reads', () => {
    expect(RENAMED_KEYS).toEqual({ 'train.clipNorm': 'train.maxGradNorm', 'generate.method': 'generate.strategy' });
    expect(() => validateConfig({ train: { clipNorm: 0 } })).toThrow(/train\.clipNorm: renamed to train\.maxGradNorm/);
    expect(() => validateConfig({ generate: { method: 'sample' } })).toThrow(/generate\.method: renamed to generate\.strategy/);
    const stored = readStoredConfig({ train: { clipNorm: 0 }, generate: { method: 'sample' } }, 'run.json');
    expect(stored.train.maxGradNorm).toBe(0);
    expect(stored.generate.strategy).toBe('sample');
  });

  it('a stored keep-original run from before mix.originalSample kept one subset: it reads as `fixed`, and resuming it with today\'s default is refused with the value to resume', () => {
    const old = {
      settings: [
        { name: 'replace', mix: { mode: 'replace', originalFraction: 0.1 } },
        { name: 'keep-original', mix: { mode: 'keep-original', originalFraction: 0.1 }, epochs: 16 },
      ],
    };
    const stored = readStoredConfig(old, 'run.json');
    expect(stored.settings!.map((s) => s.mix.originalSample)).toEqual(['per-generation', 'fixed']);
    expect(readStoredConfig({ mix: { mode: 'keep-original' } }, 'run.json').mix.originalSample).toBe('fixed');
    // a replace run does not read it: it resumes under today's default
    expect(readStoredConfig({ mix: { mode: 'replace' } }, 'run.json').mix.originalSample).toBe('per-generation');
    const changes = configChanges(stored, validateConfig(old));
    expect(changes.map((c) => c.key)).toEqual(['settings']);
    expect(describeChanges('run.json', changes)).toContain(`--set 'settings=[{"name":"replace"`);
    expect(describeChanges('run.json', changes)).toContain(`"originalSample":"fixed"},"epochs":16}]'`);
  });

  it('a flag\'s range is its schema\'s (the same bound in the library, the config and the command line)', () => {
    expect(FLAG_RANGES['dropout']).toEqual({ min: 0, lt: 1 });
    expect(FLAG_RANGES['num-beams']).toEqual({ int: true, min: 1, max: 64 });
    expect(FLAG_RANGES['top-p']).toEqual({ gt: 0, max: 1 });
    expect(FLAG_RANGES['no-repeat-ngram-size']).toEqual({ int: true, min: 0 });
    expect(FLAG_RANGES['max-grad-norm']).toEqual({ min: 0 });
    expect(rangeOf(z.number().int().min(2).default(3))).toEqual({ int: true, min: 2 });
    for (const [k, d] of Object.entries(TRAIN_OPTIONS)) if (d.schema.safeParse(undefined).success && typeof d.schema.parse(undefined) === 'number')
      expect(FLAG_RANGES[k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)], k).toBeDefined();
  });

  it('the command line: a declared flag is checked against its schema, a renamed flag names its new name', async () => {
    const drop = await collapse('train', '--model', 'm', '--train', 't', '--out', 'o', '--dropout', '1');
    expect(drop.code).toBe(1);
    expect(drop.err).toMatch(/--dropout 1: expected a number >= 0 and < 1/);
    const old = await collapse('train', '--model', 'm', '--train', 't', '--out', 'o', '--adam-beta1', '0.8');
    expect(old.code).toBe(1);
    expect(old.err).toMatch(/--adam-beta1 was renamed to --beta1/);
    const ngram = await collapse('generate', '--model', 'm', '--prompts', 'p', '--out', 'o', '--no-repeat-ngram-size', '-1');
    expect(ngram.err).toMatch(/--no-repeat-ngram-size -1: expected an integer >= 0/);
  });

  it('every flag of these commands at 978a5ff (before the registry) still exists, or is refused with its new name', async () => {
    const before: Record<string, string> = {
      train: 'adam-beta1 adam-beta2 adam-epsilon artifact attention-dropout batch-size checkpoint-every decay-exclude dropout epochs fused-step lr max-grad-norm micro-batch-size min-lr model optimizer out provider schedule seed threads train valid warmup-steps weight-decay',
      generate: 'batch-size chunk-size generation length-penalty min-new-tokens model new-tokens no-repeat-ngram-size num-beams num-return-sequences num-shards out prompts provider repetition-penalty score-length seed shard-index strategy temperature threads top-k top-p',
      eval: 'batch-size data model out pad-id provider reference samples-out seed self-bleu-samples synthetic synthetic-source-seed threads',
      prepare: 'batch-size block-size concat data force json num-proc out rows seed source-seed split text tokenizer variant',
      'artifact build': 'adam-beta1 adam-beta2 adam-epsilon attention-dropout block-size decay-exclude dropout micro-batch-size model optimizer out trainable weight-decay',
      'theory vae': 'batch beta capacity data epochs eval-samples figures generations holdout latent lr out preset resume seed threads weight-decay',
    };
    for (const [command, flags] of Object.entries(before)) {
      const now = await helpFlags(...command.split(' '));
      expect(now.size, `${command} --help lists its flags`).toBeGreaterThan(5);
      for (const flag of flags.split(' ')) {
        if (now.has(flag)) continue;
        expect(RENAMED_FLAGS[flag], `${command} --${flag}: neither a flag nor renamed`).toBeDefined();
        expect(now.has(RENAMED_FLAGS[flag]!), `${command} --${flag} renamed to --${RENAMED_FLAGS[flag]}, which it lacks`).toBe(true);
      }
    }
  });
});

/** The flags `collapse ARGS --help` lists (yargs prints its help with console.log). */
async function helpFlags(...args: string[]): Promise<Set<string>> {
  let text = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (text += `${a.join(' ')}\n`));
  let r: CliResult;
  try {
    r = await collapse(...args, '--help');
  } finally {
    log.mockRestore();
  }
  expect(r.code, `${args.join(' ')} --help`).toBe(0);
  return new Set([...text.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]!));
}

/** The source files (not tests, not node_modules) under the project's layers. */
const sourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

describe('threads and provider: one declaration (models/session-options.ts)', () => {
  it('the run config\'s keys are the declaration itself, and nothing else declares them', () => {
    expect(RUN_CONFIG_OPTIONS['']!['threads']).toBe(SESSION_OPTIONS.threads);
    expect(RUN_CONFIG_OPTIONS['']!['provider']).toBe(SESSION_OPTIONS.provider);
    const cfg = validateConfig({});
    expect([cfg.threads, cfg.provider]).toEqual([0, 'cpu']);
    expect(FLAG_RANGES['threads']).toEqual({ int: true, min: 0 });
    // A second declaration (`threads: option(`) or a hand-written flag (`.option('threads'`) anywhere in the
    // layers or the commands (the bench scripts keep their own: their default is the reference machine's 2).
    const found: string[] = [];
    for (const top of ['util', 'models', 'datasets', 'figures', 'pipeline', 'theory', 'scripts/commands', 'scripts/flags.ts'].map((d) => join(REPO_ROOT, d))) {
      for (const f of top.endsWith('.ts') ? [top] : sourceFiles(top)) {
        const text = readFileSync(f, 'utf8');
        for (const m of text.matchAll(/\b(threads|provider)\s*:\s*option\(|\.option\(\s*['"](threads|provider)['"]/g)) found.push(`${relative(REPO_ROOT, f)}: ${m[0]}`);
      }
    }
    expect(found).toEqual(['models/session-options.ts: threads: option(', 'models/session-options.ts: provider: option(']);
  });

  it('every command that runs models takes --threads (and --provider) from it', async () => {
    for (const command of ['train', 'generate', 'eval']) {
      const flags = await helpFlags(command);
      expect(flags.has('threads') && flags.has('provider'), `${command} --threads --provider`).toBe(true);
    }
    expect((await helpFlags('theory', 'vae')).has('threads')).toBe(true);
    // --source-seed of the data commands is prepare's declared option (its range, its help).
    for (const command of [['data', 'synth'], ['data', 'logprob', 'a']]) expect((await helpFlags(...command)).has('source-seed'), command.join(' ')).toBe(true);
    expect((await collapse('data', 'synth', '--source-seed', '-2')).err).toMatch(/--source-seed -2: expected an integer >= 0/);
    // The command line and a run config read 0 the same way; more threads than cores is refused by name.
    const many = await collapse('train', '--model', 'm', '--train', 't', '--out', 'o', '--threads', '100000');
    expect(many.err).toMatch(/--threads 100000: this machine has \d+ CPU cores; use at most \d+ \(0 = all of them\)/);
    const negative = await collapse('theory', 'vae', '--threads', '-1');
    expect(negative.err).toMatch(/--threads -1: expected an integer >= 0/);
  });

  it('--provider defaults to COLLAPSE_PROVIDER on the command line; a flag wins', () => {
    vi.stubEnv('COLLAPSE_PROVIDER', 'cuda');
    try {
      expect(sessionArgs({})).toEqual({ threads: undefined, provider: 'cuda' });
      expect(sessionArgs({ provider: 'cpu', threads: 0 })).toEqual({ threads: 0, provider: 'cpu' });
      vi.stubEnv('COLLAPSE_PROVIDER', 'gpu');
      expect(() => sessionArgs({})).toThrow(/COLLAPSE_PROVIDER=gpu: expected cpu or cuda/);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(sessionArgs({}).provider).toBe(process.env.COLLAPSE_PROVIDER ?? 'cpu');
  });
});
