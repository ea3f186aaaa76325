// Where a synthetic run's models gain and lose on the real test set: the test NLL of each model split by what
// the next token is (a function word, a content word, ".", the row separator "</s>", the token after it), and
// the source's own bounds (the task's true perplexity, and the task under the true pretraining distribution:
// the best a base could do zero-shot), and by position (inside a block, and past it where continuations are written). A diagnostic for tuning the miniature (issue 23), not a pipeline step.
//
//   npx tsx scripts/probe-test-nll.ts RUN_DIR [MODEL_DIR ...]
// MODEL_DIRs are relative to RUN_DIR (default: base/model and generations 0-2 of the first setting, seed 0).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readBlocks } from '../datasets/block-set.js';
import { SyntheticSource } from '../datasets/synthetic.js';
import { tinyVocabulary } from '../datasets/tiny-tokenizer.js';
import { openScorer } from '../pipeline/eval/perplexity.js';
import { readStoredConfig } from '../pipeline/run/config.js';
import { RunLayout } from '../pipeline/run/layout.js';
import { readJsonFile } from '../util/json.js';

const [root, ...given] = process.argv.slice(2);
if (!root) throw new Error('usage: npx tsx scripts/probe-test-nll.ts RUN_DIR [MODEL_DIR ...]');
const layout = RunLayout.open(root);
const cfg = readStoredConfig((readJsonFile(layout.manifest) as { config: unknown }).config, layout.manifest);
if (cfg.data.source !== 'synthetic') throw new Error(`${layout.manifest}: data.source is ${cfg.data.source}; this probe needs the synthetic source`);
const source = new SyntheticSource(cfg.data.synthetic.source);

// The source's bounds, from its exact probabilities on fresh task rows.
const gap = source.domainGap(300, 99);
console.log(`source: task perplexity ${Math.exp(gap.task).toFixed(1)}; the task under the true pretraining distribution ${Math.exp(gap.pretrain).toFixed(1)} (best zero-shot; ratio ${Math.exp(gap.task - gap.pretrain).toFixed(2)})`);

// Each test token's kind, by the tiny vocabulary (4 specials, ".", then the source's words in order).
const vocab = tinyVocabulary();
const separator = vocab.indexOf('</s>');
const kindOf = (prev: number, next: number): string => {
  if (next === separator) return '</s>';
  if (prev === separator) return 'after </s>';
  const w = vocab[next]!;
  if (w === '.') return '.';
  return source.isFunctionWord(w) ? 'function' : 'content';
};
const test = readBlocks(layout.split('test'));
const T = test.blockSize;
const gen = (g: number) => layout.model({ setting: layout.settings[0]!, seed: cfg.seeds[0]!, gen: g });
const models = given.length ? given.map((m) => join(root, m)) : [layout.baseModel, gen(0), gen(1), gen(2)].filter((m) => existsSync(m));
for (const model of models) {
  const scorer = await openScorer(model, { threads: 1 });
  const sum = new Map<string, { nll: number; n: number }>();
  for (let r = 0; r < test.rows; r += 8) {
    const rows = Math.min(8, test.rows - r);
    const ids = test.ids.subarray(r * T, (r + rows) * T);
    const nll = await scorer.nll(ids, rows, T);
    for (let b = 0; b < rows; b++)
      for (let t = 0; t < T - 1; t++) {
        const k = kindOf(ids[b * T + t]!, ids[b * T + t + 1]!);
        const s = sum.get(k) ?? { nll: 0, n: 0 };
        s.nll += nll[b * (T - 1) + t]!;
        s.n++;
        sum.set(k, s);
      }
  }
  // By position: consecutive test blocks joined in pairs, so the second half sits where continuations are
  // written (after a block-sized prompt); a base never trained there scores it much worse than the first half.
  const W = 2 * T;
  const pairs = Math.floor(test.rows / 2);
  const joined = test.ids.subarray(0, pairs * W);
  const byPos = await scorer.nll(joined, pairs, W);
  const meanAt = (a: number, b: number) => {
    let s = 0;
    for (let r = 0; r < pairs; r++) for (let t = a; t < b; t++) s += byPos[r * (W - 1) + t]!;
    return (s / (pairs * (b - a))).toFixed(2);
  };
  await scorer.close();
  const all = [...sum.values()].reduce((a, s) => ({ nll: a.nll + s.nll, n: a.n + s.n }), { nll: 0, n: 0 });
  const parts = ['function', 'content', '.', '</s>', 'after </s>'].map((k) => {
    const s = sum.get(k);
    return s ? `${k} ${(s.nll / s.n).toFixed(2)} (${((100 * s.n) / all.n).toFixed(0)}%)` : `${k} -`;
  });
  console.log(`${model}: perplexity ${Math.exp(all.nll / all.n).toFixed(1)}; NLL by next token: ${parts.join(', ')}`);
  console.log(`  NLL by position in two joined blocks: ${T / 4}-${T - 1} ${meanAt(T / 4 - 1, T - 1)}, ${T}-${W - 1} ${meanAt(T - 1, W - 1)}`);
}
