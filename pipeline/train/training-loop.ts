// The fine-tuning loop over a block corpus: seeded shuffling per epoch, gradient accumulation, LR schedule,
// validation after each epoch, best-epoch tracking, and atomic checkpoints from which a rerun continues
// bit for bit (the weights, moments, step, data order and RNG state are all in one file).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ensureDir } from '../../util/atomic.js';
import { join } from 'node:path';
import type { DropoutMask } from '../../models/grad/index.js';
import type { MicroBatch, TrainEngine } from '../../models/train/engine.js';
import { scheduledLr, momentKinds, momentName, type ScheduleConfig } from '../../models/train/optimizers.js';
import { readTensorFile, readTensorFileMetadata, writeTensorFile, type TensorEntry, type TensorMap } from '../../models/train/tensor-file.js';
import { Rng, type RngState } from '../../util/rng.js';
import { keyChanges } from '../../util/resume-key.js';
import { progress } from '../../util/progress.js';
import { OptionError } from '../../util/options.js';
import { blockRow, type Blocks } from '../../datasets/block-set.js';


export interface LoopOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  schedule: ScheduleConfig;
  /** Global-norm clipping threshold, or null for none (HF Trainer default is 1.0). */
  maxGradNorm: number | null;
  seed: number;
  /** Token id treated as padding (label ignored, attention off), or null. */
  padId: number | null;
  /** Directory for the resumable checkpoint, or null for none. */
  checkpointDir: string | null;
  /** Checkpoint every N optimizer steps (and always at each epoch end). */
  checkpointEvery: number;
  /** When one micro-batch makes a batch, use the fused grad+update graph (saves a gradient copy, costs peak memory). */
  fusedStep?: boolean;
  /**
   * Everything else that changes the result (the model's sha256, every optimizer and schedule option): recorded in
   * the checkpoint and compared on resume, so that a rerun with another option is refused by name.
   */
  resumeKey?: Record<string, unknown>;
  /** Testing aid: throw TrainingHalted right after this many optimizer steps (as if the process died). */
  haltAfterSteps?: number;
  label?: string;
  log?: (line: string) => void;
}

export interface LoopResult {
  bestEpoch: number;
  validLosses: number[];
  trainLosses: number[];
  bestWeights: TensorMap;
  steps: number;
  resumedFromStep: number;
}

export class TrainingHalted extends Error {}

interface LoopState {
  fingerprint: string;
  /** LoopOptions.resumeKey of the run that wrote the checkpoint. */
  key?: Record<string, unknown>;
  step: number;
  epoch: number;
  batchInEpoch: number;
  perm: number[];
  rng: RngState;
  validLosses: number[];
  trainLosses: number[];
  epochLossSum: number;
  epochTokens: number;
  bestEpoch: number;
}

const IGNORE = -100n;

/** Labels and attention for one block: pads are ignored and masked. */
function fillRow(mb: MicroBatch, r: number, block: Int32Array, padId: number | null, real: boolean): void {
  const T = block.length;
  for (let t = 0; t < T; t++) {
    const id = block[t]!;
    const pad = padId !== null && id === padId;
    mb.inputIds[r * T + t] = BigInt(id);
    mb.attentionMask[r * T + t] = pad ? 0n : 1n;
    mb.labels[r * T + t] = real && !pad ? BigInt(id) : IGNORE;
  }
}

/** Micro-batches over the given rows; the last is filled with copies of a real row whose labels are all ignored. */
export function microBatches(c: Blocks, rows: ArrayLike<number>, micro: number, padId: number | null): MicroBatch[] {
  const T = c.blockSize;
  const out: MicroBatch[] = [];
  for (let s = 0; s < rows.length; s += micro) {
    const mb: MicroBatch = { inputIds: new BigInt64Array(micro * T), attentionMask: new BigInt64Array(micro * T), labels: new BigInt64Array(micro * T) };
    for (let r = 0; r < micro; r++) {
      const real = s + r < rows.length;
      const row = rows[real ? s + r : s]!;
      fillRow(mb, r, blockRow(c, row), padId, real);
    }
    out.push(mb);
  }
  return out;
}

/** Positions that count in the loss: label t >= 1 not ignored (Hugging Face shifts labels by one). */
export function countTargets(mb: MicroBatch, T: number): number {
  let n = 0;
  for (let i = 0; i < mb.labels.length; i++) if (i % T !== 0 && mb.labels[i] !== IGNORE) n++;
  return n;
}

/** Mean per-token NLL of a corpus under the engine's current weights. */
export async function evaluate(engine: TrainEngine, c: Blocks, padId: number | null): Promise<number> {
  const T = c.blockSize, Tm = T - 1;
  let sum = 0, n = 0;
  const rows = Int32Array.from({ length: c.rows }, (_, i) => i);
  for (const mb of microBatches(c, rows, engine.spec.microBatch, padId)) {
    const nll = await engine.nll(mb);
    for (let r = 0; r < engine.spec.microBatch; r++)
      for (let t = 0; t < Tm; t++) if (mb.labels[r * T + t + 1] !== IGNORE) { sum += nll[r * Tm + t]!; n++; }
  }
  if (n === 0) throw new Error('the validation corpus has no tokens to score');
  return sum / n;
}

function fingerprint(o: LoopOptions, train: Blocks, micro: number, dropout: readonly DropoutMask[]): string {
  const h = createHash('sha256');
  const dr = dropout.length ? { dr: dropout.map((m) => [m.name, m.ratio]) } : {};
  h.update(JSON.stringify({ e: o.epochs, b: o.batchSize, m: micro, lr: o.lr, s: o.schedule, c: o.maxGradNorm, seed: o.seed, pad: o.padId, rows: train.rows, T: train.blockSize, ...dr }));
  if (o.resumeKey) h.update(JSON.stringify(o.resumeKey));
  h.update(new Uint8Array(train.ids.buffer, train.ids.byteOffset, train.ids.byteLength));
  return h.digest('hex').slice(0, 16);
}

const CKPT = 'checkpoint.safetensors';
const BEST = 'best.safetensors';

function entries(engine: TrainEngine, m: TensorMap, prefix = ''): [string, TensorEntry][] {
  return engine.spec.params.map((p) => [prefix + p.name, { data: m.get(p.name)!, shape: p.shape }]);
}

function saveCheckpoint(dir: string, engine: TrainEngine, st: LoopState): void {
  const moments: [string, TensorEntry][] = [];
  for (const k of momentKinds(engine.spec.optimizer.name))
    for (const p of engine.spec.params) moments.push([momentName(k, p.name), { data: engine.moments.get(momentName(k, p.name))!, shape: p.shape }]);
  writeTensorFile(join(dir, CKPT), [...entries(engine, engine.weights, 'param.'), ...moments], { state: JSON.stringify(st) });
}

/**
 * Refuses a checkpoint written with another resume key, naming the options that differ (reads only the file's
 * header, so `finetune` can call it before building anything).
 */
export function checkResumeKey(checkpointDir: string, key: Record<string, unknown>): void {
  const path = join(checkpointDir, CKPT);
  if (!existsSync(path)) return;
  const st = JSON.parse(readTensorFileMetadata(path).state ?? 'null') as LoopState | null;
  if (!st?.key) return;
  const changes = keyChanges(st.key, key);
  if (changes.length)
    throw new Error(`cannot resume: ${path} was written with other options (${changes.join('; ')}). Rerun with the options it was started with, or delete ${checkpointDir} to start fresh`);
}

function loadCheckpoint(dir: string, engine: TrainEngine, fp: string, key: Record<string, unknown> | undefined, legacyFp: string): LoopState | null {
  const path = join(dir, CKPT);
  if (!existsSync(path)) return null;
  const { tensors, metadata } = readTensorFile(path);
  const st = JSON.parse(metadata.state ?? 'null') as LoopState | null;
  if (!st) throw new Error(`${path} has no training state; delete ${dir} to start over`);
  if (st.fingerprint !== fp && st.key && key) {
    const changes = keyChanges(st.key, key);
    const what = changes.length ? `other options (${changes.join('; ')})` : 'other training data or batch settings';
    throw new Error(`cannot resume: ${path} was written with ${what}. Rerun with the options it was started with, or delete ${dir} to start fresh`);
  }
  // A checkpoint written before resume keys existed is accepted on its old fingerprint (a run in flight continues).
  if (!st.key && st.fingerprint === legacyFp) Object.assign(st, { fingerprint: fp, key });
  if (st.fingerprint !== fp)
    throw new Error(`${path} was written by a run with other settings or data (fingerprint ${st.fingerprint}, now ${fp}); rerun with the same options, or delete ${dir} to start over`);
  for (const p of engine.spec.params) {
    const w = tensors.get(`param.${p.name}`);
    if (!w) throw new Error(`${path} lacks ${p.name}; delete ${dir} to start over`);
    engine.weights.set(p.name, w.data);
    for (const k of momentKinds(engine.spec.optimizer.name)) engine.moments.set(momentName(k, p.name), tensors.get(momentName(k, p.name))!.data);
  }
  engine.step = st.step;
  return st;
}

export async function trainLoop(engine: TrainEngine, train: Blocks, valid: Blocks | null, o: LoopOptions): Promise<LoopResult> {
  const micro = engine.spec.microBatch;
  const T = engine.spec.blockSize;
  if (train.blockSize !== T) throw new Error(`the training corpus has blocks of ${train.blockSize} tokens; the artifact was built for --block-size ${T}`);
  if (valid && valid.blockSize !== T) throw new Error(`the validation corpus has blocks of ${valid.blockSize} tokens; the artifact was built for --block-size ${T}`);
  if (train.rows === 0) throw new Error('the training corpus is empty');
  if (o.batchSize % micro !== 0) throw new OptionError('batchSize', o.batchSize, () => `must be a multiple of the artifact's micro-batch ${micro}`);
  const stepsPerEpoch = Math.ceil(train.rows / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const fp = fingerprint(o, train, micro, engine.spec.dropout ?? []);
  const log = o.log ?? (() => {});
  if (o.checkpointDir) ensureDir(o.checkpointDir);

  const rng = new Rng(o.seed);
  let st: LoopState = {
    fingerprint: fp, key: o.resumeKey, step: 0, epoch: 0, batchInEpoch: 0, perm: Array.from(rng.permutation(train.rows)), rng: rng.state(),
    validLosses: [], trainLosses: [], epochLossSum: 0, epochTokens: 0, bestEpoch: -1,
  };
  // The best epoch's weights: on disk when there is a checkpoint dir (no extra weights-sized copy in memory),
  // else a copy (the engine updates weights in place).
  const snapshot = (): TensorMap => new Map([...engine.weights].map(([k, v]) => [k, v.slice()]));
  let best: TensorMap | null = null;
  const resumed = o.checkpointDir ? loadCheckpoint(o.checkpointDir, engine, fp, o.resumeKey, fingerprint({ ...o, resumeKey: undefined }, train, micro, engine.spec.dropout ?? [])) : null;
  if (resumed) {
    st = resumed;
    // best.safetensors may be newer than the checkpoint (a crash between the two writes); the redone epoch
    // is deterministic and rewrites it identically, so reading it at the end is still right.
    if (st.bestEpoch >= 0 && !existsSync(join(o.checkpointDir!, BEST))) throw new Error(`${o.checkpointDir} lacks ${BEST}; delete it to start over`);
    log(`resuming from the checkpoint at step ${st.step}/${totalSteps} (epoch ${st.epoch + 1})`);
  }
  const resumedFromStep = st.step;
  const bar = progress(o.label ?? 'train', totalSteps, { unit: 'steps', logEvery: Math.max(1, Math.floor(totalSteps / 20)) });
  const t0 = Date.now();
  let tokensSeen = 0;
  let lastCkpt = st.step;
  const checkpoint = () => {
    if (!o.checkpointDir) return;
    for (const [name, w] of engine.weights)
      for (let i = 0; i < w.length; i++)
        if (!Number.isFinite(w[i]!)) throw new Error(`non-finite weight ${name}[${i}] after optimizer step ${st.step}; training stopped, the checkpoint at step ${lastCkpt} was kept. Try a lower --lr or set --max-grad-norm`);
    saveCheckpoint(o.checkpointDir, engine, st);
    lastCkpt = st.step;
  };

  while (st.epoch < o.epochs) {
    for (; st.batchInEpoch < stepsPerEpoch; ) {
      const b = st.batchInEpoch;
      const rows = st.perm.slice(b * o.batchSize, Math.min((b + 1) * o.batchSize, train.rows));
      const mbs = microBatches(train, rows, micro, o.padId);
      const targets = mbs.reduce((a, mb) => a + countTargets(mb, T), 0);
      const lr = scheduledLr(o.schedule, o.lr, { step: st.step, totalSteps, epoch: st.epoch, epochs: o.epochs });
      const where = `optimizer step ${st.step + 1} (epoch ${st.epoch + 1}, batch ${b + 1}/${stepsPerEpoch})`;
      const stopped = `training stopped; nothing was written after the checkpoint at step ${lastCkpt}`;
      if (targets === 0) throw new Error(`${where}: every label in the batch is ignored (all padding?); check the corpus`);
      let lossSum = 0, gradNorm: number;
      if (o.fusedStep && mbs.length === 1 && engine.canFuse) {
        const r = await engine.fusedStep(mbs[0]!, 1 / targets, lr, o.maxGradNorm, { seed: o.seed, step: st.step, micro: 0 });
        lossSum = r.lossSum;
        gradNorm = r.gradNorm;
      } else {
        for (const [i, mb] of mbs.entries()) {
          // Dropout masks are a function of (seed, step, micro-batch): a resumed step draws the same ones.
          const r = await engine.accumulate(mb, 1 / targets, { seed: o.seed, step: st.step, micro: i });
          if (!Number.isFinite(r.lossSum)) {
            engine.discardGradients();
            throw new Error(`non-finite loss (${r.lossSum}) at ${where}; ${stopped}. Try a lower --lr or set --max-grad-norm`);
          }
          lossSum += r.lossSum;
        }
        gradNorm = await engine.applyUpdate(lr, o.maxGradNorm);
      }
      if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm))
        throw new Error(`non-finite ${Number.isFinite(lossSum) ? `gradient norm (${gradNorm})` : `loss (${lossSum})`} at ${where}; ${stopped}. Try a lower --lr or set --max-grad-norm`);
      st.step++;
      st.batchInEpoch++;
      st.epochLossSum += lossSum;
      st.epochTokens += targets;
      tokensSeen += rows.length * T;
      const secs = (Date.now() - t0) / 1000;
      bar.update(st.step, { epoch: `${st.epoch + 1}/${o.epochs}`, loss: (lossSum / targets).toFixed(4), 'tok/s': (tokensSeen / Math.max(secs, 1e-3)).toFixed(0) });
      if (st.batchInEpoch < stepsPerEpoch && o.checkpointEvery > 0 && st.step % o.checkpointEvery === 0) checkpoint();
      if (o.haltAfterSteps !== undefined && st.step >= o.haltAfterSteps && st.step < totalSteps) {
        bar.stop();
        throw new TrainingHalted(`halted after step ${st.step} (testing aid)`);
      }
    }
    // Epoch end: validation, best epoch, next epoch's order, checkpoint.
    st.trainLosses.push(st.epochLossSum / Math.max(1, st.epochTokens));
    const vl = valid ? await evaluate(engine, valid, o.padId) : st.trainLosses[st.trainLosses.length - 1]!;
    if (!Number.isFinite(vl)) throw new Error(`non-finite validation loss (${vl}) after epoch ${st.epoch + 1}; training stopped`);
    st.validLosses.push(vl);
    log(`epoch ${st.epoch + 1}/${o.epochs}: train loss ${st.trainLosses.at(-1)!.toFixed(4)}, ${valid ? 'validation' : 'train (no validation corpus)'} loss ${vl.toFixed(4)}`);
    const bestSoFar = st.bestEpoch < 0 || vl < st.validLosses[st.bestEpoch]!;
    if (bestSoFar) {
      st.bestEpoch = st.epoch;
      if (o.checkpointDir) writeTensorFile(join(o.checkpointDir, BEST), entries(engine, engine.weights), { epoch: String(st.epoch) });
      else best = snapshot();
    }
    st.epoch++;
    st.batchInEpoch = 0;
    st.epochLossSum = 0;
    st.epochTokens = 0;
    const r = new Rng(st.rng);
    st.perm = Array.from(r.permutation(train.rows));
    st.rng = r.state();
    checkpoint();
  }
  bar.stop();
  const bestWeights =
    st.bestEpoch === o.epochs - 1 ? engine.weights
    : o.checkpointDir ? new Map([...readTensorFile(join(o.checkpointDir, BEST)).tensors].map(([k, v]) => [k, v.data]))
    : best!;
  return { bestEpoch: st.bestEpoch, validLosses: st.validLosses, trainLosses: st.trainLosses, bestWeights, steps: st.step, resumedFromStep };
}
