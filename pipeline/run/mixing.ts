// The mixing policy: what generation k of a setting trains on, from the last generation's data, the
// previous training corpus and the original blocks (replace, keep-original, accumulate, accumulate-subsample,
// proportions). Every seeded choice derives its seed here.
import { rmSync } from 'node:fs';
import { concatCorpora, readBlocks } from '../../datasets/block-set.js';
import { readCorpus } from '../../datasets/corpus-store.js';
import { fixedFraction, subsampleIndices } from '../../datasets/sampling.js';
import type { Setting } from './config.js';
import type { GenerationId, RunLayout } from './layout.js';

/** Seeds of the mixing choices, one place for all of them. */
const mixSeeds = {
  /** keep-original: `fixed`, the same subset every generation of a seed; `per-generation`, a fresh one each generation. */
  keptOriginal: (seed: number, gen: number, sample: Setting['mix']['originalSample']) => (sample === 'fixed' ? seed : seed * 100_003 + gen + 0x51ed),
  /** accumulate-subsample, proportions: a different subsample each generation, the same on every rerun. */
  subsample: (seed: number, gen: number) => seed * 100_003 + gen,
  proportionsPart: (seed: number, gen: number, part: number) => (seed * 100_003 + gen) * 7 + part,
};

/** Where generation `at.gen`'s training corpus lives (generation 0 trains on the original blocks). */
export function trainCorpusPath(layout: RunLayout, at: GenerationId): string {
  return at.gen === 0 ? layout.split('train') : layout.trainCorpus(at);
}

export interface MixResult {
  path: string;
  mode: Setting['mix']['mode'] | 'original';
  rows: number;
}

/** Writes generation `at.gen`'s training corpus (nothing to write for generation 0). */
export function mixTrainCorpus(layout: RunLayout, setting: Setting, at: GenerationId): MixResult {
  const original = layout.split('train');
  if (at.gen === 0) return { path: original, mode: 'original', rows: readCorpus(original).rows };
  const { seed, gen } = at;
  const out = layout.trainCorpus(at);
  const generated = layout.corpus({ ...at, gen: gen - 1 });
  const n = readCorpus(original).rows;
  const m = setting.mix;
  const prov = { generation: gen, seed, setting: setting.name, mix: m };
  rmSync(out, { recursive: true, force: true }); // what an interrupted earlier attempt left
  switch (m.mode) {
    case 'replace':
      concatCorpora([generated], out, { provenance: prov });
      break;
    case 'keep-original': {
      // A seeded subset of original blocks (drawn anew each generation, or one for all, by originalSample);
      // every other block is replaced by the continuation generated from it, so the size stays that of the
      // original corpus.
      const origIds = readBlocks(original).blockIds;
      const keepRows = fixedFraction(origIds, m.originalFraction, mixSeeds.keptOriginal(seed, gen, m.originalSample));
      const kept = new Set(Array.from(keepRows, (r) => origIds[r]!));
      const prompts = Array.from(readCorpus(generated).rowsIter(), (r) => r.prompt_block_id);
      const replaced = Int32Array.from(prompts.keys()).filter((i) => !kept.has(prompts[i] ?? -1));
      concatCorpora([original, generated], out, { provenance: prov, select: (src) => (src === 0 ? keepRows : replaced) });
      break;
    }
    case 'accumulate':
    case 'accumulate-subsample': {
      const sources = [original, ...Array.from({ length: gen }, (_, g) => layout.corpus({ ...at, gen: g }))];
      const sizes = sources.map((s) => readCorpus(s).rows);
      const total = sizes.reduce((a, b) => a + b, 0);
      if (m.mode === 'accumulate') concatCorpora(sources, out, { provenance: prov });
      else {
        const pick = subsampleIndices(total, n, mixSeeds.subsample(seed, gen));
        const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
        concatCorpora(sources, out, {
          provenance: prov,
          select: (src, rows) => pick.filter((p) => p >= offsets[src]! && p < offsets[src]! + rows).map((p) => p - offsets[src]!),
        });
      }
      break;
    }
    case 'proportions': {
      const p = m.proportions!;
      const previous = trainCorpusPath(layout, { ...at, gen: gen - 1 });
      const parts = [
        { path: generated, share: p.generated },
        { path: previous, share: p.previous },
        { path: original, share: p.original },
      ].filter((x) => x.share > 0);
      const want = parts.map((x) => Math.round(x.share * n));
      want[want.length - 1] = n - want.slice(0, -1).reduce((a, b) => a + b, 0);
      concatCorpora(parts.map((x) => x.path), out, {
        provenance: prov,
        select: (src, rows) => subsampleIndices(rows, Math.min(rows, want[src]!), mixSeeds.proportionsPart(seed, gen, src)),
      });
      break;
    }
  }
  return { path: out, mode: m.mode, rows: readCorpus(out).rows };
}
