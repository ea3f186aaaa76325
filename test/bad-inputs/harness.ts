// Running `collapse` commands in-process (scripts/cli.ts runCli, the same path as the binary minus the process
// start) and checking what a failed command leaves: its exit code, its message, no stack trace, and no file of
// the inputs or outputs deleted or changed.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, vi } from 'vitest';
import { runCli } from '../../scripts/cli.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs one command line; everything written to stdout/stderr is captured (and kept off the test output). */
export async function collapse(...args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await runCli(args);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

/** Every file under `dir` with its sha256 (path relative to dir), to compare before and after a command. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else files[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

/** Lines that look like a stack frame or a source excerpt (what Node prints for an uncaught error). */
const STACK = /^\s+at .*(\(|:\d+:\d+)|^\s*\^+\s*$|node:internal|Node\.js v\d/m;

/**
 * The failure contract: exit 1, the message (regex) on stderr, no stack trace, nothing printed as a result on
 * stdout, and every file under `unchanged` exactly as before.
 */
export function expectFailure(r: CliResult, message: RegExp, unchanged?: { dir: string; before: Record<string, string> }): void {
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(STACK);
  expect(r.code).toBe(1);
  if (unchanged) expect(snapshot(unchanged.dir)).toEqual(unchanged.before);
}

/** Temporaries (`*.tmp-PID-*`) anywhere under dir: a failed command must leave none. */
export function tmpLeftovers(dir: string): string[] {
  return Object.keys(snapshot(dir)).filter((f) => /\.tmp-\d+-/.test(f));
}
