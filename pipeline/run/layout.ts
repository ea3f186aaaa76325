// Where everything of a run lives; the only module that knows the paths of the run directory:
//   runs/NAME/                                          RunLayout.rootOf(runsDir, name)
//   runs/NAME/run.json, estimate.json, .lock, .lock-rank-I
//   runs/NAME/data/{train,valid,test,pretrain}/        the original blocks
//   runs/NAME/base/{init,model,model.ckpt}/, base/base.json, base/zero-shot.json
//   runs/NAME/[SETTING/]seed-S/tail-reference.json
//   runs/NAME/[SETTING/]seed-S/gen-K/{model, model.ckpt, train-corpus, corpus, train-log.json, metrics.json, sample_ppl.json}
//   runs/NAME/[SETTING/]seed-S/gen-K/{candidates, selection.json}   a setting with `select`
//   runs/NAME/report/
//   runs/NAME/slurm/{jobs.json, KEY.sh, logs/KEY.JOBID[_TASK].out}   `collapse slurm submit`'s jobs
//   <step>.done.json markers                            beside their generation's outputs, or at the root
// It names every file and folder of the run directory itself, down to the folders above. What is INSIDE
// those folders belongs to the module that writes them, wherever they are: a model directory (config,
// weights, onnx/, train-summary.json) to models/model-dir/ and pipeline/train/finetune.ts, a checkpoint
// folder to pipeline/train/training-loop.ts, a corpus (shards, manifests, writer markers) to datasets/corpus-store.ts,
// a report folder (report.html, metrics.json, figures/) to pipeline/report/report-files.ts, a marker's
// content to markers.ts, jobs.json's content to pipeline/slurm/jobs.ts. Every other module asks RunLayout
// for a run path and never joins run-directory names itself.
// A run with one setting keeps its seeds directly under runs/NAME; a run with several settings gives each
// its own folder. Every step writes its outputs atomically and then a `<step>.done.json` marker (beside its
// generation's outputs, or at the run's root), so that a rerun skips finished steps and `collapse status`
// can read the state from disk alone.
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { readJsonFile } from '../../util/json.js';

/** One generation of one seed of one setting. */
export interface GenerationId {
  setting: string;
  seed: number;
  gen: number;
}

export type Split = 'train' | 'valid' | 'test' | 'pretrain';

// One process per run directory (pipeline/run/run-lock.ts): a plain `collapse run` takes `.lock`, each rank
// of a sharded run its own `.lock-rank-I`. Names, not paths: util/lock.ts takes a folder and a name.
export const RUN_LOCK = '.lock';
export const rankLock = (rank: number): string => `.lock-rank-${rank}`;
export const RUN_LOCK_PATTERN = /^\.lock$/;
export const RANK_LOCK = /^\.lock-rank-(\d+)$/;

export interface RunLockFile {
  name: string;
  path: string;
  /** The rank of a sharded run's lock; null for a plain run's. */
  rank: number | null;
}

/** The lock files at a run's root as they are on disk (throws as readdirSync does when the folder is missing). */
export function locksOnDisk(root: string): RunLockFile[] {
  return readdirSync(root).flatMap((name): RunLockFile[] => {
    if (name === RUN_LOCK) return [{ name, path: join(root, name), rank: null }];
    const m = RANK_LOCK.exec(name);
    return m ? [{ name, path: join(root, name), rank: Number(m[1]) }] : [];
  });
}

export class RunLayout {
  /** `settings`: the run's setting names in order (one setting: no setting folder). */
  constructor(readonly root: string, readonly settings: readonly string[] = ['replace']) {
    if (settings.length === 0) throw new Error('a run has at least one setting');
  }

  /** Where a configuration's run directory is: runs/NAME. */
  static rootOf(runsDir: string, name: string): string { return join(runsDir, name); }

  /** The layout of an existing run directory, from its run.json. */
  static open(root: string): RunLayout {
    const manifest = join(root, 'run.json');
    if (!existsSync(manifest)) return new RunLayout(root, RunLayout.settingsOnDisk(root));
    const raw = readJsonFile(manifest) as { config?: { settings?: { name: string }[]; mix?: { mode?: string } } };
    const c = raw.config ?? {};
    return new RunLayout(root, c.settings?.map((s) => s.name) ?? [c.mix?.mode ?? 'replace']);
  }

  /** Without run.json: setting folders holding seed-S folders, else the root's own seeds as one setting. */
  private static settingsOnDisk(root: string): string[] {
    if (!existsSync(root)) return ['replace'];
    const named = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && numbered(join(root, e.name), 'seed').length > 0)
      .map((e) => e.name);
    return named.length > 0 && numbered(root, 'seed').length === 0 ? named.sort() : ['replace'];
  }

  get manifest(): string { return join(this.root, 'run.json'); }
  get estimate(): string { return join(this.root, 'estimate.json'); }
  get dataDir(): string { return join(this.root, 'data'); }
  split(name: Split): string { return join(this.dataDir, name); }
  get baseDir(): string { return join(this.root, 'base'); }
  /** The tiny base's random init, or an imported checkpoint, before pretraining. */
  get initModel(): string { return join(this.baseDir, 'init'); }
  /** The base as this run made it (pretrained or imported); see baseInfo for the one every generation starts from. */
  get baseModel(): string { return join(this.baseDir, 'model'); }
  /** Pretraining's checkpoint while it runs (beside the model it will write). */
  get baseCheckpoint(): string { return join(this.baseDir, 'model.ckpt'); }
  /** Where the base model is (base-model step's output). */
  get baseInfo(): string { return join(this.baseDir, 'base.json'); }
  /** The base model's real test perplexity before fine-tuning (zero-shot step's output). */
  get zeroShot(): string { return join(this.baseDir, 'zero-shot.json'); }
  get reportDir(): string { return join(this.root, 'report'); }

  /**
   * A path as a run's own files record it: relative to the run when inside it (so that a moved run directory
   * still finds its files), absolute otherwise. `resolvePath` reads it back; an absolute record stays as it is.
   */
  recordPath(path: string): string {
    const rel = relative(resolve(this.root), resolve(path));
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
  }
  resolvePath(recorded: string): string { return resolve(this.root, recorded); }

  /** The folder of a setting (the root itself when the run has one setting). */
  settingDir(setting: string): string {
    if (!this.settings.includes(setting)) throw new Error(`setting "${setting}" is not one of this run's settings (${this.settings.join(', ')})`);
    return this.settings.length === 1 ? this.root : join(this.root, setting);
  }
  seedDir(setting: string, seed: number): string { return join(this.settingDir(setting), `seed-${seed}`); }
  /** Real test data's per-sample perplexity percentiles under the generation-0 model of a setting and seed. */
  tailReference(setting: string, seed: number): string { return join(this.seedDir(setting, seed), 'tail-reference.json'); }
  genDir(at: GenerationId): string { return join(this.seedDir(at.setting, at.seed), `gen-${at.gen}`); }
  model(at: GenerationId): string { return join(this.genDir(at), 'model'); }
  checkpoint(at: GenerationId): string { return join(this.genDir(at), 'model.ckpt'); }
  trainCorpus(at: GenerationId): string { return join(this.genDir(at), 'train-corpus'); }
  corpus(at: GenerationId): string { return join(this.genDir(at), 'corpus'); }
  /** A curated setting's generated candidates (k per prompt); its select step writes `corpus` from them. */
  candidates(at: GenerationId): string { return join(this.genDir(at), 'candidates'); }
  /** The select step's record: the verifier's scores, the kept candidates and the verifier's quality. */
  selection(at: GenerationId): string { return join(this.genDir(at), 'selection.json'); }
  trainLog(at: GenerationId): string { return join(this.genDir(at), 'train-log.json'); }
  metrics(at: GenerationId): string { return join(this.genDir(at), 'metrics.json'); }
  samplePpl(at: GenerationId): string { return join(this.genDir(at), 'sample_ppl.json'); }

  /** `collapse slurm submit`: the job scripts, jobs.json (which job runs which step) and the jobs' logs. */
  get slurmDir(): string { return join(this.root, 'slurm'); }
  get slurmJobs(): string { return join(this.slurmDir, 'jobs.json'); }
  slurmScript(key: string): string { return join(this.slurmDir, `${key}.sh`); }
  /** The folder of the jobs' logs (made before the first job is submitted: Slurm does not create it). */
  get slurmLogDir(): string { return join(this.slurmDir, 'logs'); }
  /** A job's log: Slurm's --output pattern (%j, or %A_%a for an array task), or the file of one job or task. */
  slurmLog(key: string, job: { id: string; task?: number } | 'pattern-array' | 'pattern'): string {
    const id = job === 'pattern' ? '%j' : job === 'pattern-array' ? '%A_%a' : job.task === undefined ? job.id : `${job.id}_${job.task}`;
    return join(this.slurmLogDir, `${key}.${id}.out`);
  }

  /** A step's marker: beside its generation's outputs, or at the run's root for a run-wide step. */
  marker(step: string, at?: GenerationId): string {
    return join(at ? this.genDir(at) : this.root, `${step}.done.json`);
  }

  /** The generation folders that exist on disk, in setting, seed, generation order. */
  generationsOnDisk(): (GenerationId & { dir: string })[] {
    const out: (GenerationId & { dir: string })[] = [];
    for (const setting of this.settings) {
      const sdir = this.settingDir(setting);
      for (const seed of numbered(sdir, 'seed'))
        for (const gen of numbered(this.seedDir(setting, seed), 'gen')) out.push({ setting, seed, gen, dir: this.genDir({ setting, seed, gen }) });
    }
    return out;
  }
}

/** The N of the `prefix-N` folders of a directory, ascending. */
function numbered(dir: string, prefix: string): number[] {
  if (!existsSync(dir)) return [];
  const re = new RegExp(`^${prefix}-(\\d+)$`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && re.test(e.name))
    .map((e) => Number(re.exec(e.name)![1]))
    .sort((a, b) => a - b);
}
