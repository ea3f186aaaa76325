// The micro configuration of the end-to-end run tests (a few seconds per generation on one thread), as
// `--set` flags; each test adds its own generations, seeds and names.
export const MICRO_RUN = [
  '--set', 'threads=1',
  // One setting: the run's seeds directly under runs/NAME.
  '--set', 'settings=[{name: replace, mix: {mode: replace}}]',
  '--set', 'data.synthetic={trainRows: 40, validRows: 12, testRows: 12, pretrainRows: 30, seed: 7}',
  '--set', 'model.pretrainEpochs=1',
  '--set', 'train={epochs: 2, batchSize: 8, microBatchSize: 8, lr: 0.001}',
  '--set', 'generate.batchSize=8',
  '--set', 'generate.chunkSize=8',
  '--set', 'eval.selfBleuSamples=10',
];
