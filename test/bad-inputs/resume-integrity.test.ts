// Verified resume (issue 27): a finished step's outputs are checked against the sizes and sha256 its marker
// recorded before they are trusted; a damaged one is named and the step runs again, a 0-byte or unparsable
// marker means "not done", and a rerun after a crash at a commit edge writes what an uninterrupted run writes.
// One uninterrupted micro run is made once; each case damages a copy of it, reruns the real binary and compares
// the copy with the uninterrupted run, file by file (timestamps and the run's own path aside).
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCollapse } from '../helpers/cli.js';
import { MICRO_RUN } from '../helpers/micro.js';

const base = mkdtempSync(join(tmpdir(), 'resume-integrity-'));
const NAME = 'micro';
const micro = (runsDir: string): string[] => [
  'run',
  '--set', 'generations=2',
  ...MICRO_RUN,
  '--set', 'seeds=[0]',
  '--set', `runsDir=${runsDir}`,
  '--set', `name=${NAME}`,
];
const straight = join(base, 'straight', NAME);
const env = { ...process.env };

beforeAll(async () => {
  process.env.COLLAPSE_CACHE_DIR = join(base, 'cache');
  const r = await spawnCollapse(micro(join(base, 'straight')));
  expect(r.code, r.stderr.slice(-3000)).toBe(0);
}, 300_000);
afterAll(() => {
  process.env = env;
  rmSync(base, { recursive: true, force: true });
});

/** A copy of the uninterrupted run under another runsDir (run.json says where the run lives). */
function copyOfRun(name: string): { runsDir: string; root: string } {
  const runsDir = join(base, name);
  const root = join(runsDir, NAME);
  cpSync(straight, root, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(root, 'run.json'), 'utf8'));
  manifest.config.runsDir = runsDir;
  writeFileSync(join(root, 'run.json'), JSON.stringify(manifest, null, 2));
  return { runsDir, root };
}

/** Keys that hold a time, a duration or a file's modification time: they differ between any two runs. */
const VOLATILE = new Set(['createdAt', 'finishedAt', 'seconds', 'evaluated_at', 'mtimeMs', 'elapsed']);

function normalized(root: string, file: string): unknown {
  const bytes = readFileSync(join(root, file));
  if (!file.endsWith('.json')) return bytes.toString('base64');
  const strip = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(strip) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => !VOLATILE.has(k)).map(([k, x]) => [k, strip(x)])) : v;
  // A copied run's files still name the run it was copied from (base.json's dir), and its run.json the runsDir
  // this test gave it: both are the run itself.
  const text = bytes.toString('utf8').replaceAll(root, '<run>').replaceAll(straight, '<run>').replaceAll(dirname(root), '<runs>').replaceAll(dirname(straight), '<runs>');
  const json = strip(JSON.parse(text)) as { files?: { path?: string }[] };
  // A step marker's record of a JSON file holds that file's times and paths; the file itself is compared on its own.
  if (Array.isArray(json.files)) json.files = json.files.map((r) => (r.path?.endsWith('.json') ? { path: r.path } : r));
  return json;
}

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  // The report is rebuilt on every run (it is not a committed step); the lock is the run's, not its data.
  return out.filter((f) => !f.startsWith('report/') && f !== '.lock').sort();
}

/** Every file of `root` equals the uninterrupted run's, bytes (and JSON content but for times) alike. */
function expectSameAsStraight(root: string): void {
  expect(files(root)).toEqual(files(straight));
  for (const f of files(straight)) expect(normalized(root, f), f).toEqual(normalized(straight, f));
}

/** Copies the uninterrupted run, damages the copy, reruns it (it must succeed); its root and stderr. */
async function rerunDamaged(name: string, damage: (root: string) => void): Promise<{ root: string; stderr: string }> {
  const { runsDir, root } = copyOfRun(name);
  damage(root);
  const r = await spawnCollapse(micro(runsDir));
  expect(r.code, r.stderr.slice(-3000)).toBe(0);
  return { root, stderr: r.stderr };
}

describe('a finished run, rerun', () => {
  it('verifies every step and runs none again', async () => {
    const { stderr } = await rerunDamaged('intact', () => {});
    expect(stderr).not.toMatch(/running the step again|^(base-model|prepare|estimate|pretrain|zero-shot|train-corpus|finetune|generate|evaluate): /m);
  }, 300_000);
});

describe('a damaged committed file is named and its step runs again', () => {
  const cases: [string, string, (p: string) => void, RegExp][] = [
    ['truncated base/model/model.safetensors', 'base/model/model.safetensors', (p) => truncateSync(p, 1000), /pretrain \(run\): \S+base\/model\/model\.safetensors is truncated: 1000 bytes, \d+ recorded; running the step again/],
    ['truncated base/model/onnx/model.onnx_data', 'base/model/onnx/model.onnx_data', (p) => truncateSync(p, 4096), /pretrain \(run\): \S+base\/model\/onnx\/model\.onnx_data is truncated: 4096 bytes/],
    ['0-byte base/model/tokenizer.json', 'base/model/tokenizer.json', (p) => writeFileSync(p, ''), /pretrain \(run\): \S+base\/model\/tokenizer\.json is truncated: 0 bytes/],
    [
      'a byte flipped in data/train',
      'data/train/part-w0-00000.arrow',
      (p) => {
        const b = readFileSync(p);
        b[b.length >> 1]! ^= 1;
        writeFileSync(p, b);
      },
      /prepare \(run\): \S+data\/train\/part-w0-00000\.arrow has changed since it was written/,
    ],
  ];
  it.each(cases)('%s', async (label, file, damage, message) => {
    const { root, stderr } = await rerunDamaged(label.replace(/\W+/g, '-'), (copy) => damage(join(copy, file)));
    expect(stderr).toMatch(message);
    expectSameAsStraight(root);
  }, 300_000);
});

describe('a 0-byte or unparsable marker means "not done"', () => {
  it('an empty evaluate.done.json and a truncated generate.done.json: both steps run again and end as the uninterrupted run', async () => {
    const { root, stderr } = await rerunDamaged('markers', (copy) => {
      writeFileSync(join(copy, 'seed-0', 'gen-1', 'evaluate.done.json'), '');
      writeFileSync(join(copy, 'seed-0', 'gen-1', 'generate.done.json'), '{"step": "gener');
    });
    expect(stderr).toMatch(/generate \(replace seed 0 gen 1\): \S+generate\.done\.json is empty or unreadable/);
    expect(stderr).toMatch(/evaluate \(replace seed 0 gen 1\): \S+evaluate\.done\.json is empty or unreadable/);
    expectSameAsStraight(root);
  }, 300_000);
});

describe('a rerun after a crash at a commit edge writes what an uninterrupted run writes', () => {
  it('killed just before finetune.done.json: train-log.json and the marker as the uninterrupted run', async () => {
    // The state a kill leaves between the model's commit (and its log) and the marker.
    const { root } = await rerunDamaged('finetune-edge', (copy) => {
      for (const f of ['finetune.done.json', 'generate.done.json', 'evaluate.done.json']) rmSync(join(copy, 'seed-0', 'gen-1', f));
    });
    expect(readFileSync(join(root, 'seed-0', 'gen-1', 'train-log.json'), 'utf8')).toBe(readFileSync(join(straight, 'seed-0', 'gen-1', 'train-log.json'), 'utf8'));
    expectSameAsStraight(root);
  }, 300_000);

  it('killed during prepare (train written, the other splits not): prepare.done.json counts source rows as before', async () => {
    const { root } = await rerunDamaged('prepare-edge', (copy) => {
      rmSync(join(copy, 'prepare.done.json'));
      for (const s of ['valid', 'test', 'pretrain']) rmSync(join(copy, 'data', s), { recursive: true });
      expect(existsSync(join(copy, 'data', 'train', 'manifest.json'))).toBe(true);
    });
    const result = (d: string) => JSON.parse(readFileSync(join(d, 'prepare.done.json'), 'utf8')).result;
    expect(result(root)).toEqual(result(straight));
    expect(result(root).train.rows).toBe(40); // the source's 40 rows (trainRows), not the corpus's blocks
    expectSameAsStraight(root);
  }, 300_000);
});
