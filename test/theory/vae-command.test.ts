import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTheory } from './run-theory.js';
import { collapse, expectFailure, snapshot } from '../bad-inputs/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'theory-vae-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runTheory;

describe('collapse theory vae', () => {
  it('runs on the bundled digits with small settings and writes the table and summary', async () => {
    const out = join(dir, 'v');
    const text = await run(['theory', 'vae', '--epochs', '1', '--generations', '1', '--capacity', '2', '--latent', '2', '--eval-samples', '20', '--threads', '1', '--out', out, '--no-figures']);
    expect(text).toMatch(/vae: 1797 images 8x8 \(1500 train, 297 held out\), latent 2, capacity 2, 1 epochs x batch 32, 1 generations/);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { model: string; options: { batch: number; lr: number }; final: { generation: number } };
    expect(s).toMatchObject({ model: 'vae', options: { batch: 32, lr: 1e-3 }, final: { generation: 1 } });
    expect(readFileSync(join(out, 'per_generation.csv'), 'utf8').trim().split('\n')).toHaveLength(3);
  }, 120_000);

  it('28x28 IDX images select the notebook\'s MNIST preset (batch 256) and its 28 -> 14 -> 7 model', async () => {
    const n = 12;
    const head = Buffer.from([0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 28, 0, 0, 0, 28]);
    const px = Buffer.from(Array.from({ length: n * 784 }, (_, i) => (i * 37) % 256));
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), Buffer.concat([head, px]));
    const out = join(dir, 'm');
    const text = await run(['theory', 'vae', '--data', join(dir, 'train-images-idx3-ubyte'), '--epochs', '1', '--generations', '1', '--capacity', '2', '--latent', '2', '--eval-samples', '4', '--out', out, '--no-figures']);
    expect(text).toMatch(/12 images 28x28 \(10 train, 2 held out\).* batch 256/);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { options: { height: number; batch: number; holdout: number } };
    expect(s.options).toMatchObject({ height: 28, batch: 256, holdout: 2 });
  }, 120_000);

  it('names the flag or file in errors', async () => {
    await expect(run(['theory', 'vae', '--data', join(dir, 'nope.gz'), '--out', join(dir, 'x')])).rejects.toThrow(/--data .*nope\.gz: no such file/);
    await expect(run(['theory', 'vae', '--preset', 'mnist', '--out', join(dir, 'x')])).rejects.toThrow(/--preset mnist is for 28x28 images/);
    await expect(run(['theory', 'vae', '--epochs', '0', '--out', join(dir, 'x')])).rejects.toThrow(/--epochs: 0/);
    await expect(run(['theory', 'vae', '--holdout', '5000', '--out', join(dir, 'x')])).rejects.toThrow(/--holdout: 5000/);
    // 6x6 images cannot be halved twice.
    writeFileSync(join(dir, 'six.idx'), Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 6]), Buffer.alloc(72)]));
    await expect(run(['theory', 'vae', '--data', join(dir, 'six.idx'), '--holdout', '1', '--out', join(dir, 'x')])).rejects.toThrow(/6x6: .*multiples of 4/);
  });

  it('through the CLI: exit 1, the flag in the message, no stack, an earlier run\'s files untouched', async () => {
    const out = join(dir, 'v'); // written by the first test
    const before = snapshot(out);
    expect(Object.keys(before)).toContain('summary.json');
    expectFailure(await collapse('theory', 'vae', '--latent', 'abc', '--out', out), /--latent abc: not a number/, { dir: out, before });
    expectFailure(await collapse('theory', 'vae', '--eval-samples', '1', '--out', out), /--eval-samples/, { dir: out, before });
    expectFailure(await collapse('theory', 'vae', '--data', join(dir, 'six.idx'), '--out', out), /multiples of 4/, { dir: out, before });
    writeFileSync(join(dir, 'a-file'), 'x');
    expectFailure(await collapse('theory', 'vae', '--out', join(dir, 'a-file', 'sub')), /--out .*is a file, not a directory/);
  });
});
