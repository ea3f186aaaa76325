// evaluateGeneration on a real tiny OPT model directory and Arrow corpora: per-sample and test perplexity
// equal a naive log-softmax over the logits of the plain forward graph (1e-4), the file it returns
// matches the metrics schema, and the true-source log-likelihood of the source's own text is finite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { writeCorpus } from '../../datasets/corpus-store.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { loadTokenizer, TINY_CONFIG, tinyTokenizerFiles } from '../../datasets/tokenizer.js';
import { writeModelDir } from '../../models/model-dir/index.js';
import { buildOptForward, initOptWeights } from '../../models/opt/index.js';
import { floatData, i64, openSession } from '../../models/session.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { blockTexts, loadEvalCorpus } from '../../pipeline/eval/corpus-input.js';
import { evaluateGeneration } from '../../pipeline/eval/evaluate.js';
import { GenerationMetricsSchema, readGenerationMetrics, readSamplePpl, writeGenerationEval } from '../../pipeline/eval/metrics-schema.js';
import type { Blocks } from '../../datasets/block-set.js';
import { tailReference } from '../../pipeline/eval/tail.js';

const tmp = mkdtempSync(join(tmpdir(), 'eval-gen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const B = 16; // block size
const weights = initOptWeights(TINY_CONFIG, 7);
const source = new SyntheticSource();

/** Blocks of B tokens cut from the tiny tokenizer's encoding of synthetic text. */
function corpusRows(seed: number, rows: number, generated: boolean): CorpusRow[] {
  const tokDir = join(tmp, 'tok');
  for (const [f, c] of Object.entries(tinyTokenizerFiles())) writeFileAtomic(join(tokDir, f), c);
  const tok = loadTokenizer(tokDir);
  const ids = source.sample(rows * 2, seed).flatMap((t) => tok.encode(t, { addSpecialTokens: false }));
  return Array.from({ length: rows }, (_, r) => {
    const block = Int32Array.from(ids.slice(r * B, (r + 1) * B));
    return {
      block_id: 100 + r,
      input_ids: block,
      text: tok.decode(block, { skipSpecialTokens: true }),
      origin: generated ? 'generated' : 'original',
      generation: generated ? 0 : 0,
      prompt_block_id: generated ? 100 + ((r * 7) % rows) : null,
      score: generated ? -1 : null,
    } satisfies CorpusRow;
  });
}

async function naiveSamplePpl(blocks: Blocks): Promise<number[]> {
  const session = await openSession(buildOptForward(TINY_CONFIG, weights, { withPast: false, present: false }), { threads: 1 });
  const { rows, blockSize: T, ids } = blocks;
  const out = await session.run({ input_ids: i64(Array.from(ids), [rows, T]), attention_mask: i64(new Array(rows * T).fill(1), [rows, T]) });
  await session.release();
  const logits = floatData(out.logits, 'logits');
  const V = TINY_CONFIG.vocab_size;
  return Array.from({ length: rows }, (_, r) => {
    let nll = 0;
    for (let t = 0; t < T - 1; t++) {
      const o = (r * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[o + v]! - max);
      nll += Math.log(z) + max - logits[o + ids[r * T + t + 1]!]!;
    }
    return Math.exp(nll / (T - 1));
  });
}

describe('evaluateGeneration', () => {
  const modelDir = join(tmp, 'model');
  const realDir = join(tmp, 'real');
  const genDir = join(tmp, 'generated');
  beforeAll(() => {
    writeModelDir(modelDir, { config: TINY_CONFIG, weights, tokenizerFiles: tinyTokenizerFiles() });
    writeCorpus(realDir, corpusRows(1, 9, false), { blockSize: B });
    writeCorpus(genDir, corpusRows(2, 11, true), { blockSize: B });
  });

  it('scores a generated corpus and the real test blocks like the naive computation, and writes valid files', async () => {
    const real = loadEvalCorpus(realDir);
    const data = { ...loadEvalCorpus(genDir), promptText: blockTexts(realDir) };
    const reference = tailReference(await naiveSamplePpl(real.blocks));
    const { metrics, samplePpl } = await evaluateGeneration({
      generation: 0,
      seed: 0,
      model: modelDir,
      scorer: modelDir,
      corpus: data,
      test: real.blocks,
      reference,
      trueLogProb: (t) => source.logProb(t),
      threads: 1,
      batchSize: 4,
      selfBleuSamples: 5,
      cacheDir: join(tmp, 'cache'),
    });
    const want = await naiveSamplePpl(data.blocks);
    expect(samplePpl.length).toBe(11);
    for (let i = 0; i < want.length; i++) expect(Math.abs(samplePpl[i]! - want[i]!) / want[i]!).toBeLessThan(1e-4);
    const wantTest = Math.exp((await naiveSamplePpl(real.blocks)).reduce((a, p) => a + Math.log(p), 0) / 9);
    expect(Math.abs(metrics.test_perplexity - wantTest) / wantTest).toBeLessThan(1e-4);
    // A random-init model is near uniform over the 512-token vocabulary, not exactly.
    expect(metrics.test_perplexity).toBeGreaterThan(300);
    expect(metrics.samples).toBe(11);
    expect(metrics.self_bleu_samples).toBe(5);
    expect(metrics.tail_mass).not.toBeNull();
    // Text of the source itself is possible under the source; its complete sentences are scored.
    expect(metrics.true_loglik!.impossible_share).toBe(0);
    expect(metrics.true_loglik!.per_word!).toBeLessThan(0);
    expect(metrics.true_loglik!.sentences).toBeGreaterThan(0);
    // Examples: the smallest prompt ids, with the prompt's text from the real corpus.
    expect(metrics.examples.map((e) => e.prompt_block_id)).toEqual([100, 101, 102]);
    expect(metrics.examples[0]!.prompt).toBe(real.texts![0]);
    expect(() => GenerationMetricsSchema.parse(metrics)).not.toThrow();
    const dir = join(tmp, 'run', 'seed-0', 'gen-0');
    const files = { metrics: join(dir, 'metrics.json'), samplePpl: join(dir, 'sample_ppl.json') };
    writeGenerationEval(files, metrics, samplePpl);
    expect(readGenerationMetrics(files.metrics).test_perplexity).toBe(metrics.test_perplexity);
    expect(readSamplePpl(files.samplePpl).ppl[3]).toBeCloseTo(samplePpl[3]!, 3);
  });

  it('names the file and key when metrics.json does not match the schema', () => {
    const dir = join(tmp, 'bad');
    writeFileAtomic(join(dir, 'metrics.json'), JSON.stringify({ schema_version: 1, generation: -1 }));
    expect(() => readGenerationMetrics(join(dir, 'metrics.json'))).toThrow(/bad\/metrics.json does not match the metrics schema:[\s\S]*generation: Too small/);
  });
});
