// `collapse theory discrete|gaussian|gmm`: the paper's analytic models of model collapse, in seconds;
// `collapse theory vae`: its convolutional VAE on handwritten digits, in minutes.
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { namedDistribution, normalizeProbs, simulateDiscrete, type DiscreteMode } from '../../theory/discrete.js';
import { simulateGaussian, type GaussianMode, type GaussianResult, type GaussianSampler } from '../../theory/gaussian.js';
import { simulateGaussianNd } from '../../theory/gaussian-nd.js';
import { DEFAULT_MIXTURE, mixture, simulateGmm } from '../../theory/gmm.js';
import { writeDiscrete, writeGaussian, writeGmm } from '../../theory/outputs.js';
import { parseIntList } from '../../theory/stats.js';
import { BUNDLED_DIGITS, loadDigitImages } from '../../datasets/digit-images.js';
import { SESSION_OPTIONS } from '../../models/session-options.js';
import { checkWritable } from '../../pipeline/preflight.js';
import { presetFor, simulateVae, VAE_PRESETS } from '../../theory/vae.js';
import { writeVae } from '../../theory/vae-outputs.js';
import { pickOptions } from '../../util/options.js';
import { optionFlags } from '../flags.js';

interface CommonArgs {
  out?: string;
  seed: number;
  runs: number;
  generations: number;
  figures: boolean;
}

function common<T>(y: Argv<T>, d: { runs: number; generations: number }) {
  return y
    .option('out', { type: 'string', describe: 'Output directory for CSV, JSON and figures (default runs/theory/<model>)' })
    .option('seed', { type: 'number', default: 0, describe: 'Random seed (run r uses a generator derived from seed and r)' })
    .option('runs', { type: 'number', default: d.runs, describe: 'Independent repetitions of the whole chain' })
    .option('generations', { type: 'number', default: d.generations, describe: 'Generations simulated after generation 0' })
    .option('figures', { type: 'boolean', default: true, describe: 'Render figures (SVG + PNG); --no-figures writes only tables' });
}

function checkInt(flag: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: ${v} is not an integer >= ${min}`);
}

function parseFloats(flag: string, s: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.some((x) => !Number.isFinite(x))) throw new Error(`--${flag}: '${s}' is not a comma-separated list of numbers`);
  return out;
}

function finish(lines: string[], out: string, t0: number): void {
  process.stdout.write(`${lines.join('\n')}\nwrote ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

interface DiscreteArgs extends CommonArgs {
  samples: number;
  states: number;
  dist: string;
  'dist-param'?: number;
  probs?: string;
  mode: DiscreteMode;
}

const discrete: CommandModule<object, DiscreteArgs> = {
  command: 'discrete',
  describe: 'Categorical distribution refitted from M samples of the previous fit each generation',
  builder: (y) =>
    common(y, { runs: 1000, generations: 100000 })
      .option('samples', { alias: 'M', type: 'number', default: 100, describe: 'M: samples per generation' })
      .option('states', { type: 'number', default: 50, describe: 'Number of states of the original distribution' })
      .option('dist', { type: 'string', default: 'zipf', choices: ['zipf', 'geometric', 'uniform'], describe: 'Shape of the original distribution' })
      .option('dist-param', { type: 'number', describe: 'zipf exponent (default 1) or geometric ratio (default 0.8)' })
      .option('probs', { type: 'string', describe: 'Explicit original probabilities, e.g. 0.5,0.3,0.2 (overrides --states/--dist)' })
      .option('mode', { type: 'string', default: 'replace', choices: ['replace', 'accumulate'], describe: 'Fit on this generation only, or on all samples so far' })
      .epilogue('Runs stop at absorption (a delta); --generations caps the rest. Theory: a run ends in state i with probability p_i.') as never,
  handler: async (a) => {
    const t0 = Date.now();
    checkInt('samples', a.samples, 1);
    checkInt('runs', a.runs, 1);
    checkInt('generations', a.generations, 1);
    if (a.mode === 'accumulate' && a.samples * a.generations > 2e8) {
      throw new Error(`--mode accumulate keeps all M x generations samples (${a.samples * a.generations}); lower --generations or --samples`);
    }
    const probs = a.probs ? normalizeProbs(parseFloats('probs', a.probs)) : namedDistribution(a.dist, a.states, a['dist-param']);
    const res = simulateDiscrete({ probs, samples: a.samples, runs: a.runs, generations: a.generations, seed: a.seed, mode: a.mode });
    const out = resolve(a.out ?? 'runs/theory/discrete');
    finish(await writeDiscrete(res, out, { figures: a.figures }), out, t0);
  },
};

interface GaussianArgs extends CommonArgs {
  samples: string[];
  dims: number;
  mode: GaussianMode | 'both';
  sampler: GaussianSampler;
}

const gaussian: CommandModule<object, GaussianArgs> = {
  command: 'gaussian',
  describe: 'N(mu, s^2) refitted with the unbiased estimators from M samples each generation',
  builder: (y) =>
    common(y, { runs: 100, generations: 1000 })
      .option('samples', { alias: 'M', type: 'string', array: true, default: ['100,500,1000,10000'], describe: 'Sample sizes M, comma-separated: one series each' })
      .option('mode', { type: 'string', default: 'replace', choices: ['replace', 'accumulate', 'both'], describe: 'Fit on this generation only, on all samples so far, or both' })
      .option('dims', { alias: 'd', type: 'number', default: 1, describe: 'Dimension d: N(0, I_d) refitted with the sample mean and unbiased covariance (variance columns become trace/d)' })
      .option('sampler', {
        type: 'string',
        default: 'samples',
        choices: ['samples', 'statistics'],
        describe: 'Draw all M points (samples), or only the fitted statistics: mean ~ N, variance ~ chi-square (same distribution, O(1) per generation)',
      })
      .epilogue('Theory: the fitted variance is a martingale whose mean stays 1 while it goes to 0 almost surely; W2 to the original grows.') as never,
  handler: async (a) => {
    const t0 = Date.now();
    const sizes = parseIntList('--samples', a.samples);
    if (sizes.some((m) => m < 2)) throw new Error('--samples: the unbiased variance needs M >= 2');
    checkInt('runs', a.runs, 1);
    checkInt('generations', a.generations, 1);
    checkInt('dims', a.dims, 1);
    if (sizes.some((m) => m <= a.dims)) throw new Error(`--samples: the covariance in d=${a.dims} dimensions needs M > d`);
    const modes: GaussianMode[] = a.mode === 'both' ? ['replace', 'accumulate'] : [a.mode];
    const results: GaussianResult[] = [];
    for (const mode of modes) {
      for (const samples of sizes) {
        const o = { samples, runs: a.runs, generations: a.generations, seed: a.seed, mode, sampler: a.sampler };
        results.push(a.dims > 1 ? simulateGaussianNd({ ...o, dims: a.dims }) : simulateGaussian(o));
      }
    }
    const out = resolve(a.out ?? 'runs/theory/gaussian');
    finish(await writeGaussian(results, out, { figures: a.figures }), out, t0);
  },
};

interface GmmArgs extends CommonArgs {
  samples: number;
  components: number;
  tol: number;
  'max-iter': number;
  snapshots: string;
  weights?: string;
  means?: string;
  covs?: string;
}

const gmm: CommandModule<object, GmmArgs> = {
  command: 'gmm',
  describe: 'Full-covariance 2-D Gaussian mixture fitted by EM, resampled and refitted each generation',
  builder: (y) =>
    common(y, { runs: 1, generations: 2000 })
      .option('samples', { alias: 'N', type: 'number', default: 1000, describe: 'Points drawn and fitted per generation' })
      .option('components', { type: 'number', default: 2, describe: 'Mixture components fitted by EM' })
      .option('tol', { type: 'number', default: 1e-5, describe: 'EM stops when the mean log-likelihood changes by less than this' })
      .option('max-iter', { type: 'number', default: 2000, describe: 'EM iteration cap' })
      .option('snapshots', { type: 'string', default: '0,50,100,150,200,350,1000,2000', describe: 'Generations whose points are saved and plotted' })
      .option('weights', { type: 'string', describe: `Original mixture weights (default ${[...DEFAULT_MIXTURE.weights].join(',')})` })
      .option('means', { type: 'string', describe: `Original means x0,y0,x1,y1,... (default ${[...DEFAULT_MIXTURE.means].join(',')})` })
      .option('covs', { type: 'string', describe: `Original covariances a,b,c per component for [[a,b],[b,c]] (default ${[...DEFAULT_MIXTURE.covs].join(',')})` })
      .epilogue('The L2 distance to the generation-0 fit is closed-form: ∫(f-g)^2 from Gaussian product integrals.') as never,
  handler: async (a) => {
    const t0 = Date.now();
    checkInt('samples', a.samples, 2);
    checkInt('runs', a.runs, 1);
    checkInt('generations', a.generations, 0);
    checkInt('components', a.components, 1);
    checkInt('max-iter', a['max-iter'], 1);
    if (!(a.tol > 0)) throw new Error(`--tol: ${a.tol} must be positive`);
    let truth = DEFAULT_MIXTURE;
    if (a.weights || a.means || a.covs) {
      if (!(a.weights && a.means && a.covs)) throw new Error('--weights, --means and --covs go together: give all three to define the original mixture');
      truth = mixture(parseFloats('weights', a.weights), parseFloats('means', a.means), parseFloats('covs', a.covs));
    }
    const snapshots = a.snapshots.trim() ? a.snapshots.split(',').map((s) => Number(s.trim())).filter((g) => Number.isInteger(g) && g >= 0 && g <= a.generations) : [];
    const res = simulateGmm({
      samples: a.samples,
      generations: a.generations,
      runs: a.runs,
      seed: a.seed,
      truth,
      em: { components: a.components, tol: a.tol, maxIter: a['max-iter'] },
      keepSamplesAt: snapshots,
    });
    const out = resolve(a.out ?? 'runs/theory/gmm');
    finish(await writeGmm(res, out, { figures: a.figures }), out, t0);
  },
};

interface VaeArgs {
  out?: string;
  seed: number;
  generations?: number;
  figures: boolean;
  data?: string;
  preset?: string;
  epochs?: number;
  batch?: number;
  latent?: number;
  capacity?: number;
  lr?: number;
  'weight-decay'?: number;
  beta?: number;
  holdout?: number;
  'eval-samples'?: number;
  threads: number;
  resume: boolean;
}

const vae: CommandModule<object, VaeArgs> = {
  command: 'vae',
  describe: 'Convolutional VAE on handwritten digits, each generation trained on the previous decoder\'s samples',
  builder: (y) =>
    y
      .option('out', { type: 'string', describe: 'Output directory for CSV, JSON, figures and checkpoints (default runs/theory/vae)' })
      .option('seed', { type: 'number', default: 0, describe: 'Random seed (generation g trains from a generator derived from seed and g)' })
      .option('generations', { type: 'number', describe: `Generations trained on samples after generation 0 (preset: ${VAE_PRESETS.digits.generations})` })
      .option('figures', { type: 'boolean', default: true, describe: 'Render figures (SVG + PNG); --no-figures writes only tables' })
      .option('data', { type: 'string', describe: 'Digits CSV (.gz), MNIST IDX images (train-images-idx3-ubyte[.gz]) or MNIST parquet (ylecun/mnist); default the bundled 8x8 UCI digits' })
      .option('preset', { type: 'string', choices: Object.keys(VAE_PRESETS), describe: 'digits (8x8) or mnist (the paper\'s 28x28 model); default: by the image size' })
      .option('epochs', { type: 'number', describe: 'Epochs per generation (preset: 30)' })
      .option('batch', { type: 'number', describe: 'Batch size (digits: 32, mnist: 256)' })
      .option('latent', { type: 'number', describe: 'Latent dimensions (preset: 20)' })
      .option('capacity', { type: 'number', describe: 'Channels of the first convolution; the second has twice as many (preset: 64)' })
      .option('lr', { type: 'number', describe: 'Adam learning rate (preset: 1e-3)' })
      .option('weight-decay', { type: 'number', describe: 'Adam L2 weight decay, coupled as torch.optim.Adam (preset: 1e-5)' })
      .option('beta', { type: 'number', describe: 'Weight of the KL term (preset: 1)' })
      .option('holdout', { type: 'number', describe: 'Real images held out for the ELBO (digits: 297, mnist: 10000)' })
      .option('eval-samples', { type: 'number', describe: 'Decoded samples measured per generation; the first 100 make the grid (preset: 1000)' })
      .options(optionFlags(pickOptions(SESSION_OPTIONS, ['threads'])))
      .option('resume', { type: 'boolean', default: false, describe: 'Read finished generations back from <out>/checkpoints instead of training them again' })
      .epilogue('Collapse: the original encoder\'s latent means of the samples narrow (trace falls), samples grow alike, the real-data ELBO worsens.') as never,
  handler: async (a) => {
    const t0 = Date.now();
    const out = resolve(a.out ?? 'runs/theory/vae');
    checkWritable(out, '--out'); // before minutes of training, not after
    const data = await loadDigitImages(a.data ?? BUNDLED_DIGITS);
    const p = VAE_PRESETS[presetFor(data, a.preset)];
    const res = await simulateVae(data, {
      capacity: a.capacity ?? p.capacity,
      latent: a.latent ?? p.latent,
      epochs: a.epochs ?? p.epochs,
      batch: a.batch ?? p.batch,
      lr: a.lr ?? p.lr,
      weightDecay: a['weight-decay'] ?? p.weightDecay,
      beta: a.beta ?? p.beta,
      generations: a.generations ?? p.generations,
      seed: a.seed,
      holdout: a.holdout ?? Math.max(1, Math.min(p.holdout, Math.floor(data.count / 6))),
      evalSamples: a['eval-samples'] ?? p.evalSamples,
      threads: a.threads,
      checkpointDir: join(out, 'checkpoints'),
      resume: a.resume,
    });
    finish(await writeVae(res, out, { figures: a.figures }), out, t0);
  },
};

const theory: CommandModule = {
  command: 'theory',
  describe: "The paper's models: discrete resampling, Gaussian refitting, Gaussian mixtures, the convolutional VAE",
  builder: (y) => y.command(discrete).command(gaussian).command(gmm).command(vae).demandCommand(1, 'Name a model: discrete, gaussian, gmm or vae') as never,
  handler: () => {},
};

export default theory;
