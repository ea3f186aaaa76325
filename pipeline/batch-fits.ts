// Batch sizes against the data and the machine's memory, before any compute. A training batch larger than
// the corpus makes every epoch one step over fewer blocks than asked (a silent change of the experiment), and a
// batch whose logits alone exceed the memory ends in swap or an allocation failure after minutes of setup.
// The estimates count only the vocabulary-sized float32 tensors (they dominate a small model's batch): a lower
// bound, so nothing that fits is ever refused.
import { totalmem } from 'node:os';
import { OptionError } from '../util/options.js';

const GB = 1024 ** 3;
const gb = (bytes: number): string => (bytes / GB).toFixed(bytes < 10 * GB ? 1 : 0);

/** Logits, their log-softmax and gradient for one training micro-batch. */
export const trainBatchBytes = (micro: number, blockSize: number, vocab: number): number => 3 * 4 * micro * blockSize * vocab;
/** Each beam's next-token log-probabilities and their processed copy, for one decoding batch. */
export const decodeBatchBytes = (batch: number, beams: number, vocab: number): number => 2 * 4 * batch * beams * vocab;

/** Refuses a training batch larger than the corpus, or a micro-batch whose logits exceed half the memory. */
export function checkTrainBatch(
  o: { batchSize: number; microBatchSize: number },
  data: { rows: number; blockSize: number; path: string },
  vocab: number | undefined,
  memory = totalmem(),
): void {
  if (o.batchSize > data.rows)
    throw new OptionError('batchSize', o.batchSize, (name) =>
      `is larger than the ${data.rows} blocks of ${data.path}: every epoch would be one step over ${data.rows} blocks. Use ${name('batchSize')} ${data.rows} or less`);
  const need = vocab ? trainBatchBytes(o.microBatchSize, data.blockSize, vocab) : 0;
  if (need > memory / 2)
    throw new OptionError('microBatchSize', o.microBatchSize, (name) =>
      `one micro-batch of ${data.blockSize}-token blocks needs at least ${gb(need)} GB for its logits (vocabulary ${vocab}), more than half of ` +
        `this machine's ${gb(memory)} GB. Use a smaller ${name('microBatchSize')} (gradients accumulate up to ${name('batchSize')})`);
}

/** Refuses a decoding batch whose beams' logits exceed half the memory. */
export function checkDecodeBatch(o: { batchSize: number; numBeams: number }, vocab: number | undefined, memory = totalmem()): void {
  const need = vocab ? decodeBatchBytes(o.batchSize, o.numBeams, vocab) : 0;
  if (need > memory / 2)
    throw new OptionError('batchSize', o.batchSize, (name) =>
      `${o.batchSize} prompts x ${o.numBeams} beams need at least ${gb(need)} GB for their logits (vocabulary ${vocab}), more than half of ` +
        `this machine's ${gb(memory)} GB. Use a smaller ${name('batchSize')}`);
}
