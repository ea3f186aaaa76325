// The select step of a curated setting (config.ts SelectSchema): the generation's candidates (k per prompt,
// layout.candidates) are scored by the setting's verifier, and the best-scored candidate of each prompt
// becomes the prompt's row of the generation's corpus (layout.corpus), so everything downstream (mixing,
// evaluation) reads one continuation per prompt as in an uncurated setting. On the synthetic source the
// verifier is also measured against the truth (rho, p*: pipeline/eval/verify.ts); selection.json keeps it.
import { existsSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { blockRow, readBlocks, realLength, rowOfBlock } from '../../datasets/block-set.js';
import type { CorpusRow } from '../../datasets/corpus-codec.js';
import { readCorpus, writeCorpus } from '../../datasets/corpus-store.js';
import { SyntheticSource } from '../../datasets/synthetic.js';
import { loadTokenizer } from '../../datasets/tokenizer.js';
import { openModelDir } from '../../models/model-dir/index.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import { SelectionMetricsSchema, type SelectionMetrics } from '../eval/metrics-schema.js';
import { continuationLoglik, sourceTokens } from '../eval/truth.js';
import { bestOf, modelScores, randomScores, verifierQuality, type CandidateIds } from '../eval/verify.js';
import type { RunConfig, Select } from './config.js';
import type { GenerationId, RunLayout } from './layout.js';

/** The seed of the random verifier: a different draw each generation of a seed, the same on every rerun. */
export const selectSeed = (seed: number, gen: number): number => seed * 100_003 + gen + 0x5e1;

/** What selection.json holds: what a generation's metrics keep (metrics-schema.ts), and the choice itself. */
export const SelectionSchema = SelectionMetricsSchema.extend({
  /** The verifier model's directory (verifier `model`). */
  model: z.string().nullable(),
  prompts: z.number().int(),
  /** The candidate rank kept for each prompt, in prompt order (dropped prompts included). */
  kept_ranks: z.array(z.number().int()),
  /** Block ids of the prompts dropped as the worst (their rows refilled by second choices). */
  dropped_prompts: z.array(z.number().int()),
}).strict();
export type Selection = z.infer<typeof SelectionSchema>;

/** The part of a selection that the generation's metrics keep. */
export function selectionMetrics(s: Selection): SelectionMetrics {
  const { model: _model, prompts: _prompts, kept_ranks: _ranks, dropped_prompts: _dropped, ...kept } = s;
  return kept;
}

export function readSelection(path: string): Selection {
  const r = SelectionSchema.safeParse(readJsonFile(path));
  if (!r.success) throw new Error(`${path} is not what the select step writes (${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}); delete it and rerun`);
  return r.data;
}

/**
 * The rows kept, as [prompt index, candidate index] pairs in prompt order: each prompt's best candidate; with
 * `dropWorst` f, the floor(f n) prompts whose best scores lowest (ties: the later prompt) are dropped and as many
 * rows refilled by the highest-scored second choices of the other prompts (ties: the earlier prompt), so that
 * n rows remain. A prompt's second choice is its best candidate after the kept one.
 */
export function chooseCandidates(scores: ArrayLike<number>, groups: readonly (readonly number[])[], dropWorst = 0): { rows: [number, number][]; dropped: number[] } {
  const best = bestOf(scores, groups);
  const n = groups.length;
  const d = Math.floor(dropWorst * n + 1e-9);
  if (d === 0) return { rows: best.map((c, p) => [p, c]), dropped: [] };
  const byScore = (a: number, b: number, s: (p: number) => number) => s(b) - s(a) || a - b; // best first, then prompt order
  const order = Array.from(groups.keys()).sort((a, b) => byScore(a, b, (p) => scores[best[p]!]!));
  const dropped = new Set(order.slice(n - d));
  const kept = order.slice(0, n - d);
  const second = new Map(kept.map((p) => [p, bestOf(scores, [groups[p]!.filter((i) => i !== best[p])])[0]!]));
  const refill = new Set([...second].sort((a, b) => scores[b[1]]! - scores[a[1]]! || a[0] - b[0]).slice(0, d).map(([p]) => p));
  const rows: [number, number][] = [];
  for (let p = 0; p < n; p++) {
    if (dropped.has(p)) continue;
    rows.push([p, best[p]!]);
    if (refill.has(p)) rows.push([p, second.get(p)!]);
  }
  return { rows, dropped: [...dropped].sort((a, b) => a - b) };
}

let sourceCache: { key: string; source: SyntheticSource } | null = null;

/** The run's synthetic source (built once per structure). */
export function runSource(cfg: RunConfig): SyntheticSource {
  const key = JSON.stringify(cfg.data.synthetic.source ?? {});
  if (sourceCache?.key !== key) sourceCache = { key, source: new SyntheticSource(cfg.data.synthetic.source) };
  return sourceCache.source;
}

/** The verifier model of a `model` verifier: the seed's generation-0 model, the base, or the directory given. */
export function verifierModel(sel: Select, layout: RunLayout, at: GenerationId, base: () => string): string {
  if (sel.model === 'generation-0') return layout.model({ ...at, gen: 0 });
  if (sel.model === 'base') return base();
  if (!existsSync(sel.model!)) throw new Error(`select.model ${sel.model}: no such model directory; use generation-0, base, or a model directory`);
  return sel.model!;
}

export interface SelectInput {
  cfg: RunConfig;
  layout: RunLayout;
  at: GenerationId;
  select: Select;
  /** The base model's directory (verifier model `base`). */
  base: () => string;
}

export async function selectCorpus({ cfg, layout, at, select: sel, base }: SelectInput): Promise<Omit<Selection, 'kept_ranks' | 'dropped_prompts'>> {
  const cand = readCorpus(layout.candidates(at));
  const rows: CorpusRow[] = [...cand.rowsIter()];
  // Prompts in the order of their first candidate; each prompt's candidates in rank order.
  const groupOf = new Map<number, number[]>();
  rows.forEach((r, i) => {
    const p = r.prompt_block_id ?? r.block_id;
    if (!groupOf.has(p)) groupOf.set(p, []);
    groupOf.get(p)!.push(i);
  });
  const prompts = [...groupOf.keys()];
  const groups = prompts.map((p) => groupOf.get(p)!.sort((a, b) => (rows[a]!.candidate_rank ?? 0) - (rows[b]!.candidate_rank ?? 0)));
  const bad = groups.findIndex((g) => g.length !== sel.candidates);
  if (bad >= 0) throw new Error(`${layout.candidates(at)}: prompt ${prompts[bad]} has ${groups[bad]!.length} candidates, select.candidates is ${sel.candidates}; delete the folder and rerun`);

  const model = layout.model(at);
  const md = openModelDir(model);
  const padId = md.generation.padId;
  const original = readBlocks(layout.split('train'));
  const rowOf = rowOfBlock(original);
  const promptIds = (p: number) => {
    const r = rowOf.get(p);
    if (r === undefined) throw new Error(`${layout.candidates(at)}: prompt block ${p} is not in ${layout.split('train')}`);
    return blockRow(original, r);
  };

  let truth: Float64Array | null = null;
  if (cfg.data.source === 'synthetic') {
    const source = runSource(cfg);
    const tok = loadTokenizer(md.tokenizerDir);
    // Each prompt's tokens once, for its k candidates.
    const promptTokens = new Map(prompts.map((p) => [p, sourceTokens(tok, promptIds(p), padId)]));
    truth = Float64Array.from(rows, (r) =>
      continuationLoglik(source, { prompt: promptTokens.get(r.prompt_block_id ?? r.block_id)!, continuation: sourceTokens(tok, r.input_ids, padId) }),
    );
  }
  let scores: Float64Array;
  let verifier: string | null = null;
  if (sel.verifier === 'truth') scores = truth!;
  else if (sel.verifier === 'random') scores = randomScores(rows.length, selectSeed(at.seed, at.gen));
  else {
    verifier = verifierModel(sel, layout, at, base);
    const ids: CandidateIds[] = rows.map((r) => ({ prompt: promptIds(r.prompt_block_id ?? r.block_id), continuation: r.input_ids, length: realLength(r.input_ids, padId) }));
    scores = await modelScores(verifier, ids, { threads: cfg.threads || undefined, provider: cfg.provider });
  }

  const { rows: chosen, dropped } = chooseCandidates(scores, groups, sel.dropWorst);
  const out = layout.corpus(at);
  rmSync(out, { recursive: true, force: true }); // what an interrupted earlier attempt left
  writeCorpus(
    out,
    chosen.map(([, i]) => {
      const { candidate_rank: _rank, ...row } = rows[i]!;
      return row;
    }),
    {
      blockSize: cand.blockSize,
      tokenizerFingerprint: cand.manifest.tokenizerFingerprint,
      provenance: { ...cand.manifest.provenance, source: layout.candidates(at), selection: { ...sel, seed: at.seed, generation: at.gen } },
    },
  );
  const quality = truth ? verifierQuality(scores, truth, groups) : null;
  // Impossible candidates (-Infinity) are left out of the means (they are in rho and p*).
  const meanOf = (idx: number[]) => {
    const v = truth ? idx.map((i) => truth![i]!).filter(Number.isFinite) : [];
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const best = bestOf(scores, groups);
  const summary: Selection = {
    verifier: sel.verifier,
    model: verifier === null ? null : layout.recordPath(verifier),
    candidates: sel.candidates,
    drop_worst: sel.dropWorst,
    prompts: prompts.length,
    kept_ranks: best.map((i) => rows[i]!.candidate_rank ?? 0),
    dropped_prompts: dropped.map((p) => prompts[p]!),
    rho: quality?.rho ?? null,
    p_star: quality?.p_star ?? null,
    truth_kept: meanOf(chosen.map(([, i]) => i)),
    truth_all: meanOf(rows.map((_, i) => i)),
  };
  writeJsonAtomic(layout.selection(at), summary);
  const { kept_ranks: _k, dropped_prompts: _d, ...result } = summary;
  return result;
}
