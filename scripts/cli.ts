// The `collapse` command line. Every file in scripts/commands/ exports one yargs command module;
// they are loaded in name order so that each issue's command lives in its own small file.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
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
if (broken.length) process.stderr.write(`collapse: some commands could not be loaded:\n  ${broken.join('\n  ')}\n`);

let cli = yargs(hideBin(process.argv))
  .scriptName('collapse')
  .usage('$0 <command> [options]\n\nModel-collapse experiments (Shumailov et al., Nature 2024) on ONNX Runtime.')
  .strict()
  .demandCommand(1, 'Name a command; `collapse --help` lists them.')
  .recommendCommands()
  .help()
  .alias('h', 'help')
  .version()
  .wrap(Math.min(110, process.stdout.columns ?? 100))
  .fail((msg, err, y) => {
    if (err) {
      process.stderr.write(`collapse: ${err.message}\n`);
      if (process.env.COLLAPSE_DEBUG) process.stderr.write(`${err.stack}\n`);
    } else {
      y.showHelp();
      process.stderr.write(`\n${msg}\n`);
    }
    process.exit(1);
  });
for (const c of commands) cli = cli.command(c);
await cli.parseAsync();
