// `collapse slurm submit` without a cluster: the jobs and their dependencies as read from the declared steps,
// the checks of names and values before anything is submitted, and all-or-nothing submission (a fake sbatch
// that refuses a job half-way: what was submitted is cancelled and the error says so).
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layoutOf } from '../../pipeline/run/generational-loop.js';
import { STEPS, stepEnabled } from '../../pipeline/run/steps.js';
import type { SlurmClient, TaskState } from '../../pipeline/slurm/client.js';
import { parseCpus, parsePerKind, parseTime, type SlurmOptions } from '../../pipeline/slurm/options.js';
import { planJobs } from '../../pipeline/slurm/plan.js';
import { cancelRun, submitRun } from '../../pipeline/slurm/submit.js';
import { resolveRunConfig } from '../../scripts/commands/run.js';

const cfgOf = (runsDir: string, name = 'plan') => resolveRunConfig({ set: ['generations=3', 'seeds=[0, 1]', `runsDir=${runsDir}`, `name=${name}`] });
const OPTS: SlurmOptions = { cpus: {}, time: {}, mem: {}, extra: [], numShards: 2 };

function fakeClient(failAt = Infinity): SlurmClient & { submitted: string[]; cancelled: string[] } {
  let n = 0;
  const c = {
    submitted: [] as string[],
    cancelled: [] as string[],
    submit(script: string) {
      if (++n === failAt) throw new Error(`sbatch refused ${script}: invalid partition`);
      const id = String(100 + n);
      c.submitted.push(id);
      return id;
    },
    cancel(ids: string[]) {
      c.cancelled.push(...ids);
    },
    states: () => new Map<string, TaskState[]>(),
  };
  return c;
}

describe('slurm plan', () => {
  const cfg = cfgOf(mkdtempSync(join(tmpdir(), 'slurm-plan-')));
  const layout = layoutOf(cfg);
  const plan = planJobs(cfg, layout, 2);
  const by = new Map(plan.map((j) => [j.key, j]));

  it('one job per run-wide step and per (setting, seed, generation) step, from the declared steps', () => {
    const names = new Set(plan.map((j) => j.step.name));
    expect([...names].sort()).toEqual(STEPS.filter((s) => stepEnabled(s, cfg)).map((s) => s.name).sort());
    expect(plan.filter((j) => j.at)).toHaveLength(layout.settings.length * 2 * 3 * 4);
    expect(plan.filter((j) => j.tasks > 1).every((j) => j.step.name === 'generate' && j.tasks === 2)).toBe(true);
  });

  it('dependencies follow inputs to outputs: seeds and settings apart, k+1 after k, the report after every evaluation', () => {
    const s = layout.settings[0]!;
    expect(by.get(`train-corpus.${s}.s0.g1`)!.after).toContain(`generate.${s}.s0.g0`);
    expect(by.get(`finetune.${s}.s0.g1`)!.after).toContain(`train-corpus.${s}.s0.g1`);
    expect(by.get(`evaluate.${s}.s0.g2`)!.after).toEqual(expect.arrayContaining([`generate.${s}.s0.g2`, `evaluate.${s}.s0.g0`]));
    for (const j of plan.filter((x) => x.at)) {
      const other = j.after.filter((k) => /\.s\d+\.g\d+$/.test(k) && !k.includes(`.${j.at!.setting}.s${j.at!.seed}.`));
      expect(other, j.key).toEqual([]);
    }
    const evals = plan.filter((j) => j.step.name === 'evaluate').map((j) => j.key);
    expect(by.get('report')!.after).toEqual(expect.arrayContaining(evals));
  });
});

describe('slurm plan of curated settings', () => {
  it('a select job per generation of a curated setting only, between its generate and its evaluate; the next train-corpus waits for it', () => {
    const cfg = resolveRunConfig({ set: ['generations=2', 'seeds=[0]', `runsDir=${mkdtempSync(join(tmpdir(), 'slurm-select-'))}`, 'name=sel', 'settings=[{name: plain, mix: {mode: replace}}, {name: cur, mix: {mode: replace}, select: {verifier: model, candidates: 3}}]'] });
    const plan = planJobs(cfg, layoutOf(cfg), 1);
    const by = new Map(plan.map((j) => [j.key, j]));
    expect(plan.filter((j) => j.step.name === 'select').map((j) => j.key)).toEqual(['select.cur.s0.g0', 'select.cur.s0.g1']);
    expect(by.get('select.cur.s0.g1')!.after).toEqual(expect.arrayContaining(['generate.cur.s0.g1', 'finetune.cur.s0.g0'])); // the generation-0 model verifies
    expect(by.get('evaluate.cur.s0.g1')!.after).toContain('select.cur.s0.g1');
    expect(by.get('train-corpus.cur.s0.g1')!.after).toContain('select.cur.s0.g0');
    expect(by.get('train-corpus.plain.s0.g1')!.after).toContain('generate.plain.s0.g0');
  });
});

describe('slurm submit checks', () => {
  it('refuses names and values Slurm cannot take, naming the key or flag', () => {
    const runs = mkdtempSync(join(tmpdir(), 'slurm-names-'));
    const env = { client: fakeClient(), cli: ['node', 'collapse.mjs'], cwd: runs, dryRun: true, writeManifest: () => {}, log: () => {} };
    // A name the config takes but Slurm does not (it must start with a letter or digit).
    const dash = cfgOf(runs, '-run');
    expect(() => submitRun(dash, layoutOf(dash), OPTS, env)).toThrow(/name "-run" cannot be used with Slurm: .*starting with a letter or digit.*; choose another with --set name=NAME/);
    // Too long a name is the config's to refuse (one owner of the run name's rules), before Slurm is asked.
    expect(() => cfgOf(runs, 'x'.repeat(101))).toThrow(/name: at most 100 characters/);
    // Slurm reads % in --output as a pattern.
    const pct = cfgOf(join(runs, '50%'));
    expect(() => submitRun(pct, layoutOf(pct), OPTS, env)).toThrow(/contains % or a line break, which Slurm's --output cannot hold; choose another runsDir/);
    const ok = cfgOf(runs);
    expect(() => submitRun(ok, layoutOf(ok), { ...OPTS, partition: 'a b' }, env)).toThrow(/--partition "a b" cannot be used with Slurm/);
    expect(() => submitRun(ok, layoutOf(ok), { ...OPTS, extra: ['--qos=x\n--bad'] }, env)).toThrow(/--sbatch .*one line/);
    expect(() => parsePerKind('time', ['soon'], parseTime, 'TIME')).toThrow(/--time soon: expected TIME or KIND=TIME/);
    expect(() => parsePerKind('cpus', ['gpu=2'], parseCpus, 'N')).toThrow(/--cpus gpu=2: unknown step kind "gpu"; the kinds are light, train, generate, evaluate/);
    expect(parsePerKind('cpus', ['4', 'train=16'], parseCpus, 'N')).toEqual({ light: 4, train: 16, generate: 4, evaluate: 4 });
  });

  it('a dry run writes nothing', () => {
    const cfg = cfgOf(mkdtempSync(join(tmpdir(), 'slurm-dry-')));
    const client = fakeClient();
    const r = submitRun(cfg, layoutOf(cfg), OPTS, { client, cli: ['node', 'c.mjs'], cwd: '/', dryRun: true, writeManifest: () => {}, log: () => {} });
    expect(r.jobs.length).toBeGreaterThan(20);
    expect(r.jobs.find((j) => j.step.name === 'generate')!.script).toMatch(/#SBATCH --array=0-1\n[\s\S]*--shard-index "\$SLURM_ARRAY_TASK_ID"/);
    expect(client.submitted).toEqual([]);
    expect(existsSync(layoutOf(cfg).root)).toBe(false);
  });

  it('never submits half a run: a refusal half-way cancels what was submitted and says so', () => {
    const cfg = cfgOf(mkdtempSync(join(tmpdir(), 'slurm-half-')));
    const layout = layoutOf(cfg);
    const client = fakeClient(5);
    expect(() => submitRun(cfg, layout, OPTS, { client, cli: ['node', 'c.mjs'], cwd: '/', dryRun: false, writeManifest: () => {}, log: () => {} })).toThrow(
      /submitting zero-shot failed, so the run was not submitted: sbatch refused .*invalid partition\. cancelled the 4 job\(s\) submitted before it \(101, 102, 103, 104\)/,
    );
    expect(client.cancelled).toEqual(['101', '102', '103', '104']);
    expect(existsSync(layout.slurmJobs)).toBe(false);
    // Nothing recorded, so nothing to cancel: said as such.
    expect(() => cancelRun(layout, client)).toThrow(/has no .*jobs.json: it was not submitted with `collapse slurm submit`/);
  });
});
