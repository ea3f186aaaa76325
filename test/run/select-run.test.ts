// A curated setting end to end through the real CLI (issue 26): generation writes k candidates per prompt, the
// select step keeps one per prompt (here by the generation-0 model, the worst quarter refilled by second
// choices), and the corpus keeps the original size. Then the same run killed with SIGKILL while generation 1
// writes its candidates, rerun, and left again as a kill inside the select step leaves it (the corpus written,
// selection.json and the marker not): every file of the new steps ends as in the uninterrupted run.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCorpus } from '../../datasets/corpus-store.js';
import { runStatus } from '../../pipeline/run/status.js';
import { CLI, spawnCollapse } from '../helpers/cli.js';
import { MICRO_RUN } from '../helpers/micro.js';
import { REPO_ROOT } from '../helpers/shared.js';

const K = 3;
// The micro run's flags, its one setting replaced by a curated one.
const micro = MICRO_RUN.map((f) => (f.startsWith('settings=') ? `settings=[{name: curated, mix: {mode: replace}, select: {verifier: model, candidates: ${K}, dropWorst: 0.25}}]` : f));
const args = (runsDir: string) => [
  'run', '--set', 'generations=2', ...micro, '--set', 'seeds=[0]', '--set', 'estimate=false',
  '--set', `runsDir=${runsDir}`, '--set', 'name=micro',
];

/** The CLI, killed with SIGKILL as soon as `when` holds (polled). */
function killedWhen(argv: string[], when: () => boolean): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...argv], { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, CI: '1' } });
    const timer = setInterval(() => when() && child.kill('SIGKILL'), 20);
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearInterval(timer);
      resolve(signal);
    });
  });
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const rowsOf = (dir: string) => [...readCorpus(dir).rowsIter()].map((r) => [r.block_id, r.prompt_block_id, r.candidate_rank ?? null, Array.from(r.input_ids).join(' '), r.score]);

function fingerprint(root: string) {
  const out: Record<string, unknown> = {};
  for (const gen of [0, 1]) {
    const g = join(root, 'seed-0', `gen-${gen}`);
    out[`${gen}.weights`] = sha(join(g, 'model', 'model.safetensors'));
    out[`${gen}.candidates`] = rowsOf(join(g, 'candidates'));
    out[`${gen}.corpus`] = rowsOf(join(g, 'corpus'));
    out[`${gen}.selection`] = readFileSync(join(g, 'selection.json'), 'utf8');
    const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    for (const k of ['seconds', 'evaluated_at', 'model', 'corpus', 'test_model']) delete m[k];
    out[`${gen}.metrics`] = m;
  }
  return out;
}

describe('a curated setting (collapse run, micro configuration)', () => {
  const base = mkdtempSync(join(tmpdir(), 'collapse-select-'));
  const straight = join(base, 'a', 'micro');

  it('k candidates per prompt, one kept per prompt, the size of the original corpus; rho and p* in the metrics', async () => {
    const r = await spawnCollapse(args(join(base, 'a')));
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const n = readCorpus(join(straight, 'data', 'train')).rows;
    for (const gen of [0, 1]) {
      const g = join(straight, 'seed-0', `gen-${gen}`);
      const cand = [...readCorpus(join(g, 'candidates')).rowsIter()];
      expect(cand).toHaveLength(n * K);
      expect(cand.map((c) => c.candidate_rank)).toEqual(Array.from({ length: n * K }, (_, i) => i % K));
      const corpus = [...readCorpus(join(g, 'corpus')).rowsIter()];
      expect(corpus).toHaveLength(n);
      // Every kept row is one of its prompt's candidates; floor(n / 4) prompts were dropped and refilled.
      const byPrompt = new Map<number, string[]>();
      for (const c of cand) byPrompt.set(c.prompt_block_id!, [...(byPrompt.get(c.prompt_block_id!) ?? []), Array.from(c.input_ids).join(' ')]);
      for (const row of corpus) expect(byPrompt.get(row.prompt_block_id!)).toContain(Array.from(row.input_ids).join(' '));
      const sel = JSON.parse(readFileSync(join(g, 'selection.json'), 'utf8'));
      expect(sel.dropped_prompts).toHaveLength(Math.floor(n / 4));
      expect(new Set(corpus.map((c) => c.prompt_block_id)).size).toBe(n - Math.floor(n / 4));
      for (const p of sel.dropped_prompts) expect(corpus.some((c) => c.prompt_block_id === p)).toBe(false);
      const m = JSON.parse(readFileSync(join(g, 'metrics.json'), 'utf8'));
      expect(m.samples).toBe(n);
      expect(m.selection).toMatchObject({ verifier: 'model', candidates: K, drop_worst: 0.25 });
      expect(m.selection.p_star).toBeGreaterThanOrEqual(0);
      expect(Math.abs(m.selection.rho)).toBeLessThanOrEqual(1);
    }
    expect(readFileSync(join(straight, 'report', 'report.html'), 'utf8')).toContain('Verifiers against the truth');
    expect(runStatus(straight).gens.every((g) => g.stages.every((s) => s.state === 'done'))).toBe(true);
  }, 600_000);

  it('SIGKILL while generation 1 writes its candidates, and a kill inside the select step: reruns end bitwise as the uninterrupted run', async () => {
    const runsDir = join(base, 'b');
    const root = join(runsDir, 'micro');
    const g1 = join(root, 'seed-0', 'gen-1');
    const signal = await killedWhen(args(runsDir), () => existsSync(join(g1, 'candidates')) && readdirSync(join(g1, 'candidates')).some((f) => f.endsWith('.arrow')));
    expect(signal).toBe('SIGKILL');
    expect(existsSync(join(g1, 'select.done.json'))).toBe(false);
    const r = await spawnCollapse(args(runsDir));
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(fingerprint(root)).toEqual(fingerprint(straight));
    // What a kill between the corpus's commit and selection.json leaves.
    for (const f of ['select.done.json', 'evaluate.done.json', 'selection.json', 'metrics.json']) rmSync(join(g1, f));
    const again = await spawnCollapse(args(runsDir));
    expect(again.code, again.stderr.slice(-3000)).toBe(0);
    expect(again.stderr).toMatch(/select: curated seed 0 gen 1/);
    expect(fingerprint(root)).toEqual(fingerprint(straight));
  }, 600_000);
});
