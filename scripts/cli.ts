// The `collapse` command line. Every file in scripts/commands/ exports one yargs command module;
// they are loaded in name order so that each issue's command lives in its own small file.
// Every command, synchronous or not, ends through one error path (`reportError`): the message, exit code 1,
// and no stack unless COLLAPSE_DEBUG=1. `runCli` returns the exit code instead of exiting, so tests run
// commands in-process; `main` (scripts/collapse.mjs) exits with it.
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeErrno } from '../util/errno.js';
import { OptionError } from '../util/options.js';
import { flagOf, strictFlags, withOwnNoFlags } from './flags.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

let loaded: { commands: CommandModule[]; broken: string[] } | null = null;
async function loadCommands(): Promise<{ commands: CommandModule[]; broken: string[] }> {
  if (loaded) return loaded;
  const files = readdirSync(dir).filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')).sort();
  const commands: CommandModule[] = [];
  const broken: string[] = [];
  for (const f of files) {
    try {
      const mod = (await import(join(dir, f))) as { default: CommandModule | CommandModule[] };
      commands.push(...(Array.isArray(mod.default) ? mod.default : [mod.default]));
    } catch (e) {
      // One broken command file must not take the others down; say which file and why.
      broken.push(`scripts/commands/${f}: ${(e as Error).message}`);
    }
  }
  loaded = { commands, broken };
  return loaded;
}

/** A usage error found by yargs (unknown flag, missing option): the help text goes with it. */
class UsageError extends Error {}

/** The one-paragraph message for an error; a stack only with COLLAPSE_DEBUG=1. */
export function describeError(e: unknown, debug = !!process.env.COLLAPSE_DEBUG): string {
  if (!(e instanceof Error)) return `collapse: ${String(e)}\n`;
  // A library call's option error, told in the flags the user typed; a system error's errno in words.
  let msg = e instanceof OptionError ? e.describe(flagOf) : (describeErrno(e) ?? e.message);
  if (e instanceof SyntaxError && /JSON/.test(msg)) msg = `invalid JSON: ${msg} (a file was read without naming it; set COLLAPSE_DEBUG=1 to see where)`;
  let out = `collapse: ${msg}\n`;
  if (debug && e.stack) out += `${e.stack}\n`;
  else if (!debug && isProgramError(e)) out += 'collapse: this looks like a bug; COLLAPSE_DEBUG=1 shows where it happened\n';
  return out;
}

/** A JavaScript runtime error (not a check of ours): a bug rather than a bad input. */
const isProgramError = (e: Error): boolean => e instanceof TypeError || e instanceof ReferenceError || e instanceof RangeError;

export interface CliIo {
  stdout?: (s: string) => void;
  stderr?: (s: string) => void;
}

/** Runs one command line; resolves to its exit code (0, or 1 after printing the error). */
export async function runCli(argv: string[], io: CliIo = {}): Promise<number> {
  const err = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const { commands, broken } = await loadCommands();
  if (broken.length) err(`collapse: some commands could not be loaded:\n  ${broken.join('\n  ')}\n`);
  let helpShown = false;
  let line: string[];
  try {
    line = withOwnNoFlags(argv);
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 1;
  }
  let cli = yargs(line)
    .scriptName('collapse')
    .usage('$0 <command> [options]\n\nModel-collapse experiments (Shumailov et al., Nature 2024) on ONNX Runtime.')
    .strict()
    .demandCommand(1, 'Name a command; `collapse --help` lists them.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, e, y) => {
      if (e) throw e;
      y.showHelp((s: string) => err(`${s}\n`));
      helpShown = true;
      throw new UsageError(msg);
    });
  cli = strictFlags(cli, line);
  for (const c of commands) cli = cli.command(c);
  try {
    await cli.parseAsync();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) err(`${helpShown ? '\n' : ''}${e.message}\n`);
    else err(describeError(e));
    return 1;
  }
}

/** The process entry: uncaught errors (timers, streams) take the same path; the exit code is set here. */
export async function main(): Promise<void> {
  const fatal = (e: unknown): void => {
    process.stderr.write(describeError(e));
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // Ctrl-C or a scheduler's SIGTERM: say how to go on; process.exit runs the 'exit' listeners, which release
  // the run's lock (the default action would end the process without them).
  const interrupted = (code: number) => (): void => {
    process.stderr.write('\ncollapse: interrupted; rerun the same command to resume\n');
    process.exit(code);
  };
  process.once('SIGINT', interrupted(130));
  process.once('SIGTERM', interrupted(143));
  const code = await runCli(hideBin(process.argv));
  // Exit now on failure: onnxruntime sessions or worker threads must not keep a failed command alive.
  if (code !== 0) process.exit(code);
}

// Run directly (`tsx scripts/cli.ts ...`), as scripts/collapse.mjs does through main().
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
