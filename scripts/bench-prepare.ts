// Benchmark: tokenize and block the whole WikiText-2 train split (run_clm semantics, 64-token blocks).
//   npx tsx scripts/bench-prepare.ts [--data DIR] [--tokenizer DIR] [--block-size 64] [--slow]
// Prints wall and CPU seconds (the CPU figure is what matters on a shared machine) and tokens/s.
// --slow measures the library's own encode path (COLLAPSE_SLOW_TOKENIZER) for comparison.
// 2026-11-24: the memoized byte-level encode of datasets/tokenizer.ts ~4x the library's path on WikiText-2 train.
import './bench-malloc.js'; // first: the allocator setting of the collapse bin
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { groupTexts, tokenizeRows } from '../datasets/blocks.js';
import { loadWikitext } from '../datasets/wikitext.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: resolve('..', 'shared', 'data', 'wikitext-2') },
    tokenizer: { type: 'string', default: resolve('..', 'shared', 'tokenizers', 'opt-125m') },
    'block-size': { type: 'string', default: '64' },
    slow: { type: 'boolean', default: false },
  },
});
if (values.slow) process.env.COLLAPSE_SLOW_TOKENIZER = '1';
const { loadTokenizer } = await import('../datasets/tokenizer.js');

const blockSize = Number(values['block-size']);
let t = performance.now();
const tok = loadTokenizer(values.tokenizer);
const { rows, files } = await loadWikitext(values.data, 'train');
const loadS = (performance.now() - t) / 1000;

t = performance.now();
const cpu0 = process.cpuUsage();
const blocks = groupTexts(tokenizeRows(tok, rows), { blockSize });
const cpu = process.cpuUsage(cpu0);
const wallS = (performance.now() - t) / 1000;
const cpuS = (cpu.user + cpu.system) / 1e6;
const c = blocks.counts;
console.log(
  JSON.stringify(
    {
      bench: 'prepare',
      files,
      tokenizer: values.tokenizer,
      encodePath: tok.fast ? 'memoized byte-level BPE' : 'library',
      rows: c.rows,
      tokens: c.tokens,
      blocks: c.blocks,
      droppedTokens: c.droppedTokens,
      loadSeconds: +loadS.toFixed(2),
      wallSeconds: +wallS.toFixed(2),
      cpuSeconds: +cpuS.toFixed(2),
      tokensPerSecondWall: Math.round(c.tokens / wallS),
      tokensPerCpuSecond: Math.round(c.tokens / cpuS),
    },
    null,
    2,
  ),
);
