// Issue 27, items 4-5: every message names the path and says what to do (errno causes in words), a config
// must be a regular, non-empty file, and a refused run leaves no empty run directory behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeError } from '../../scripts/cli.js';
import { makeFakeRun } from '../report/fake-run.js';
import { collapse, expectFailure, snapshot } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'messages-'));
const p = (...xs: string[]): string => join(root, ...xs);
const savedEnv = { ...process.env };
const LONG = 'a'.repeat(300);

beforeAll(() => {
  process.env.CI = '1';
  delete process.env.COLLAPSE_DEBUG;
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

describe('--config: regular, non-empty files only', () => {
  it('a directory is named (was a bare EISDIR with no path)', async () => {
    mkdirSync(p('cfg-dir'));
    expectFailure(await collapse('run', '--config', p('cfg-dir'), '--print-config'), /--config .*cfg-dir is a directory; give a YAML or JSON file/);
  });

  it('a FIFO is refused at once (reading it blocked forever)', async () => {
    const fifo = p('cfg.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectFailure(await collapse('run', '--config', fifo, '--print-config'), /--config .*cfg\.fifo is a FIFO \(named pipe\); give a YAML or JSON file/);
  }, 10_000);

  it('an empty file is refused (it silently ran every default)', async () => {
    writeFileSync(p('empty.yaml'), '\n  \n');
    expectFailure(await collapse('run', '--config', p('empty.yaml')), /--config .*empty\.yaml is empty; write the keys to change/);
  });

  it('a file of comments only is refused too', async () => {
    writeFileSync(p('comments.yaml'), '# nothing yet\n');
    expectFailure(await collapse('run', '--config', p('comments.yaml')), /--config .*comments\.yaml holds no keys/);
  });

  it('a symbolic link loop is named in words with the path (was a raw ELOOP)', async () => {
    symlinkSync(p('loop-b'), p('loop-a'));
    symlinkSync(p('loop-a'), p('loop-b'));
    expectFailure(
      await collapse('run', '--config', p('loop-a'), '--print-config'),
      /too many levels of symbolic links .*: stat .*loop-a \(ELOOP\); fix or remove the symbolic link loop/,
    );
  });

  it('a 300-character name is named in words (was a raw ENAMETOOLONG)', async () => {
    expectFailure(await collapse('run', '--config', p(LONG), '--print-config'), /the file name is too long: stat .*a{300} \(ENAMETOOLONG\); use a shorter name/);
  });
});

describe('a refused run leaves no run directory behind', () => {
  it('--seed 5 (not among the seeds)', async () => {
    const runs = p('runs-seed');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--seed', '5'), /--seed 5 is not among the config's seeds \[0,1\]; pass one of them, or add it with --set seeds=\[0,1,5\]/);
    expect(existsSync(runs)).toBe(false);
  });

  it('a 300-character run name is refused by the config key', async () => {
    const runs = p('runs-long-name');
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`, '--set', `name=${LONG}`), /name: at most 100 characters \(it names the run directory\)/);
    expect(existsSync(runs)).toBe(false);
  });

  it('a 300-character runsDir component is refused before anything is created', async () => {
    const runs = p('runs-deep', LONG);
    expectFailure(await collapse('run', '--set', `runsDir=${runs}`), /runsDir .*: the name a{24}\.\.\. is 300 bytes long, but a file name has at most 255; choose another runsDir/);
    expect(existsSync(p('runs-deep'))).toBe(false);
  });
});

describe('errno causes in words, with the path and what to do', () => {
  const errno = (code: string, syscall: string, path: string) => Object.assign(new Error(`${code}: raw text, ${syscall} '${path}'`), { code, syscall, path });

  it('ELOOP, ENAMETOOLONG, EISDIR, EROFS name the path and a remedy; Node\'s raw text is gone', () => {
    expect(describeError(errno('ELOOP', 'open', '/r/x'), false)).toBe(
      'collapse: too many levels of symbolic links (a link that points back to itself): open /r/x (ELOOP); fix or remove the symbolic link loop in the path\n',
    );
    expect(describeError(errno('ENAMETOOLONG', 'mkdir', '/r/y'), false)).toMatch(/^collapse: the file name is too long: mkdir \/r\/y \(ENAMETOOLONG\); use a shorter name/);
    expect(describeError(errno('EISDIR', 'open', '/r/d'), false)).toMatch(/^collapse: it is a directory, not a file: open \/r\/d \(EISDIR\); give the path of a file/);
    const rofs = describeError(errno('EROFS', 'mkdir', '/r/report'), false);
    expect(rofs).toMatch(/^collapse: the file system is read-only: mkdir \/r\/report \(EROFS\); choose a location on a writable file system/);
    expect(rofs).not.toMatch(/raw text/);
  });

  it('report on a read-only run directory, or a read-only --out, is refused before any figure is drawn', async (ctx) => {
    // A real read-only file system: a tmpfs mounted read-only (needs root; skipped where mount is not allowed).
    const ro = p('ro');
    mkdirSync(ro);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', ro]).status !== 0) ctx.skip();
    try {
      makeFakeRun(join(ro, 'run'), { seeds: [0], generations: 2, samples: 20 });
      expect(spawnSync('mount', ['-o', 'remount,ro', ro]).status).toBe(0);
      const before = snapshot(ro);
      expectFailure(
        await collapse('report', join(ro, 'run')),
        /report directory .*ro\/run\/report is not writable: the file system is read-only \(EROFS in .*ro\/run\); pass --out DIR on a writable file system/,
        { dir: ro, before },
      );
      expectFailure(await collapse('report', join(ro, 'run'), '--out', join(ro, 'out')), /--out .*ro\/out is not writable: the file system is read-only \(EROFS in .*ro\); choose another --out/);
      // The remedy works: a writable --out.
      const ok = await collapse('report', join(ro, 'run'), '--out', p('report-out'));
      expect(ok.code).toBe(0);
      expect(existsSync(p('report-out', 'report.html'))).toBe(true);
    } finally {
      spawnSync('umount', [ro]);
    }
  }, 60_000);

  it('report --help describes the layout with setting folders', async () => {
    // yargs prints the help through console.log.
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      expect((await collapse('report', '--help')).code).toBe(0);
    } finally {
      log.mockRestore();
    }
    expect(lines.join('\n')).toMatch(/RUN_DIR\/\[SETTING\/\]seed-S\/gen-K\/\{metrics\.json,sample_ppl\.json\}/);
  });
});
