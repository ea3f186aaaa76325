// Reading a JSON file so that every failure names the file (a bare SyntaxError does not say which one).
import { readFileSync } from 'node:fs';

export function readJsonFile<T = unknown>(path: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const what = text.length === 0 ? 'is empty' : `is not valid JSON (${(e as Error).message})`;
    throw new Error(`${path} ${what}; it may have been truncated by a crash or edited by hand: restore or delete it`);
  }
}
