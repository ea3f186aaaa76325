import { vi } from 'vitest';
import yargs from 'yargs';
import theory from '../../scripts/commands/theory.js';

/** Runs `collapse theory ...` through yargs with only this command loaded; returns stdout. */
export async function runTheory(args: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  try {
    await yargs(args).command(theory).strict().fail((msg, err) => {
      throw err ?? new Error(msg);
    }).parseAsync();
  } finally {
    spy.mockRestore();
  }
  return out;
}
