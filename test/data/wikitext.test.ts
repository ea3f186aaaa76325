import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cachedHubParquet, isKnownOriginal, loadWikitext, wikitextRows } from '../../datasets/wikitext.js';
import { sharedPath } from '../helpers/shared.js';

const tokensDir = sharedPath('data/wikitext-2');
const rawDir = sharedPath('data/wikitext-2-raw');

describe('wikitext rows', () => {
  it('keeps each line with its newline and blanks whitespace-only lines, as the HF script does', () => {
    expect(wikitextRows(' = A = \n \n\nText here \r\n\t\u3000\rlast')).toEqual([' = A = \n', '', '', 'Text here \n', '', 'last']);
    expect(wikitextRows('a\n')).toEqual(['a\n']);
    expect(wikitextRows('')).toEqual([]);
  });

  it.skipIf(!tokensDir)('reads the train split of wikitext-2-v1: one row per line', async () => {
    const { rows, variant } = await loadWikitext(tokensDir!, 'train');
    const text = readFileSync(join(tokensDir!, 'wiki.train.tokens'), 'utf8');
    const lines = text.split('\n').slice(0, -1); // the file ends with "\n"
    expect(variant).toBe('wikitext-2-v1');
    expect(rows.length).toBe(36718);
    expect(rows.length).toBe(lines.length);
    expect(rows.filter((r) => r === '').length).toBe(lines.filter((l) => l.trim() === '').length);
    expect(rows[1]).toBe(' = Valkyria Chronicles III = \n');
    expect(rows.join('')).toBe(lines.map((l) => (l.trim() === '' ? '' : `${l}\n`)).join(''));
    expect(isKnownOriginal(join(tokensDir!, 'wiki.train.tokens'))).toBe(true);
  });
});

describe('parquet and hub sources', () => {
  const tmp: string[] = [];
  const envBefore = { ...process.env };
  afterEach(() => {
    for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
    process.env = { ...envBefore };
  });

  it.skipIf(!rawDir)('reads HF parquet files with the same rows as the original files', async () => {
    const { parquetWriteFile } = await import('hyparquet-writer');
    const d = mkdtempSync(join(tmpdir(), 'wt-parquet-'));
    tmp.push(d);
    const original = await loadWikitext(rawDir!, 'valid');
    expect(original.variant).toBe('wikitext-2-raw-v1');
    expect(original.rows.length).toBe(3760);
    const file = join(d, 'wikitext-2-raw-v1', 'validation-00000-of-00001.parquet');
    mkdirSync(dirname(file), { recursive: true });
    parquetWriteFile({ filename: file, columnData: [{ name: 'text', data: original.rows, type: 'STRING' }] });
    const fromDir = await loadWikitext(d, 'validation', 'wikitext-2-raw-v1');
    expect(fromDir.files).toEqual([file]);
    expect(fromDir.rows).toEqual(original.rows);
    // A variant name resolves through COLLAPSE_WIKITEXT_DIR without the network.
    process.env.COLLAPSE_WIKITEXT_DIR = d;
    expect((await loadWikitext('wikitext-2-raw-v1', 'validation')).rows).toEqual(original.rows);
  });

  it('offline: the error names --data and COLLAPSE_WIKITEXT_DIR', async () => {
    const d = mkdtempSync(join(tmpdir(), 'wt-cache-'));
    tmp.push(d);
    process.env.COLLAPSE_CACHE_DIR = d;
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
    delete process.env.COLLAPSE_WIKITEXT_DIR;
    await expect(loadWikitext('wikitext-2-raw-v1', 'train')).rejects.toThrow(/--data DIR.*COLLAPSE_WIKITEXT_DIR/s);
  });

  it('a cached download whose sha256 no longer matches is reported, not read', async () => {
    const d = mkdtempSync(join(tmpdir(), 'wt-cache-'));
    tmp.push(d);
    process.env.COLLAPSE_CACHE_DIR = d;
    const file = join(d, 'wikitext', 'wikitext-2-v1', 'test-00000-of-00001.parquet');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'PAR1 not really');
    writeFileSync(`${file}.sha256`, `${'0'.repeat(64)}\n`);
    await expect(cachedHubParquet('wikitext-2-v1', 'test')).rejects.toThrow(/test-00000-of-00001\.parquet has sha256/);
  });

  it('names the missing files and bad arguments', async () => {
    const d = mkdtempSync(join(tmpdir(), 'wt-empty-'));
    tmp.push(d);
    await expect(loadWikitext(d, 'train')).rejects.toThrow(/wiki\.train\.raw or wiki\.train\.tokens/);
    await expect(loadWikitext(d, 'dev')).rejects.toThrow(/unknown split "dev"/);
    await expect(loadWikitext(join(d, 'nope'), 'train')).rejects.toThrow(/--data .*nope does not exist/);
  });
});
