// `collapse model init|info` through the real CLI entry point.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initModelDir } from '../../scripts/commands/model.js';
import { REPO_ROOT } from '../helpers/shared.js';

const root = mkdtempSync(join(tmpdir(), 'model-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function collapse(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/collapse.mjs'), ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('collapse model', () => {
  it('init writes a tiny model directory and info describes it', () => {
    const dir = join(root, 'tiny');
    const init = collapse('model', 'init', '--config', 'tiny', '--seed', '3', '--out', dir);
    expect(init.err + init.out).toMatch(/wrote .*tiny: OPT 2 layers x 64, vocab 512, 0\.15M parameters \(seed 3\)/);
    expect(init.code).toBe(0);
    const info = collapse('model', 'info', dir, '--json');
    expect(info.code).toBe(0);
    const j = JSON.parse(info.out) as {
      family: string; parameters: number; kvCache: { layers: number; groupedQuery: boolean }; inputs: string[]; stages: Record<string, string>;
    };
    expect(j.family).toBe('opt');
    expect(j.parameters).toBe(149_376);
    expect(j.kvCache).toMatchObject({ layers: 2, groupedQuery: false });
    expect(j.inputs[0]).toBe('input_ids [batch_size, sequence_length]');
    expect(j.stages).toMatchObject({ generate: 'KV cache through onnx/model.onnx', train: expect.stringMatching(/rebuilt from model\.safetensors/) });
  });

  it('fails clearly without a tokenizer for a non-tiny config, or with an unknown --config', () => {
    // Through the handler's function (spawning the CLI costs seconds per call).
    expect(() => initModelDir({ config: 'opt-125m', seed: 0, out: join(root, 'x') })).toThrow(/--config opt-125m needs --tokenizer DIR/);
    expect(() => initModelDir({ config: 'opt-13b', seed: 0, out: join(root, 'x') })).toThrow(/--config opt-13b: neither a preset \(tiny, opt-125m\)/);
  });
});
