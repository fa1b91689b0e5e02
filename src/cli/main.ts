/**
 * The command-line entry: parse, dispatch, map typed errors to exit codes. The only place
 * that sets process.exitCode. Heavy modules load only inside the command that needs them.
 */
import type { OptionValues } from '../core/declaration.js';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { printable } from '../core/text.js';
import type { CommandModule } from './command.js';

const VERSION_FLAGS = new Set(['--version', '-V']);

function readVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** Options before `--` (what follows belongs to a child command). */
function ownArgs(argv: readonly string[]): readonly string[] {
  const i = argv.indexOf('--');
  return i < 0 ? argv : argv.slice(0, i);
}

interface ErrorShape {
  readonly exitCode: number;
  readonly reason: string;
  readonly message: string;
  readonly details?: Record<string, unknown> | undefined;
}

function writeError(e: ErrorShape, json: boolean, colorErr: boolean, hint?: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code: e.exitCode, reason: e.reason, message: e.message, ...(e.details ? { details: e.details } : {}) } })}\n`);
  }
  const prefix = colorErr ? '\u001b[31magentctl:\u001b[39m' : 'agentctl:';
  process.stderr.write(`${prefix} ${printable(e.message)}${hint ? ` (${hint})` : ''}\n`);
}

interface Colors {
  /** --color or --no-color, when given */
  readonly flag: boolean | undefined;
  /** whether stderr gets colour */
  readonly err: boolean;
}

/**
 * Run one command: the context its global options ask for, its module's run(), its result
 * printed. `opened` gets the context, so the caller closes it whatever happens. Returns the
 * command's exit code.
 */
async function runCommand(mod: CommandModule, opts: OptionValues, args: readonly string[], cmd: Command, colors: Colors, opened: (ctx: { close(): void }) => void): Promise<number> {
  const { UsageError } = await import('../core/errors.js');
  const { decideColor } = await import('./output.js');
  const g = cmd.optsWithGlobals<{ json?: boolean; quiet?: boolean; stateDir?: string; config?: string; color?: boolean; wide?: boolean }>();
  const globals = { json: Boolean(g.json), quiet: Boolean(g.quiet), stateDir: g.stateDir, config: g.config, color: colors.flag, wide: Boolean(g.wide) };
  // an empty path would fall back to the default one without a word
  if (g.stateDir === '') throw new UsageError('--state-dir: empty path; expected a folder, e.g. --state-dir ~/.local/state/agentctl');
  if (g.config === '') throw new UsageError('--config: empty path; expected a config file, e.g. --config ./agentctl.toml');
  const { createCtx } = await import('./context.js');
  const colorOut = decideColor({ flag: colors.flag, env: process.env, isTTY: Boolean(process.stdout.isTTY) }) && !globals.json;
  const chalk = colorOut || colors.err ? (await import('./output.js')).loadChalk() : undefined;
  const ctx = createCtx({ globals, colorOut, colorErr: colors.err, ...(chalk ? { chalk } : {}) });
  opened(ctx);
  const outcome = await mod.run(opts, args, ctx);
  if (outcome.data !== undefined) {
    const { emit } = await import('./command.js');
    emit(ctx, outcome.data, (d, ui) => mod.render(d, ui), outcome.alwaysPrint);
  }
  const exitCode = outcome.exitCode ?? 0;
  if (exitCode !== 0 && outcome.message) process.stderr.write(`agentctl: ${printable(outcome.message)}\n`);
  return exitCode;
}

/** commander throws instead of exiting, and leaves its errors to main(), which reports each once, in our format. */
function ownErrors(program: Command): void {
  for (const c of [program, ...program.commands]) {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: () => {
        /* reported by main(), once */
      },
    });
  }
}

/** Run agentctl with these arguments; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // The fast path: nothing else to load for the version.
  if (argv.length === 1 && VERSION_FLAGS.has(argv[0]!)) {
    process.stdout.write(`${readVersion()}\n`);
    return 0;
  }
  // `agentctl ... | head` closes the pipe early: that is the reader's choice, not our failure
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.stdout.destroy();
  });
  // the completion scripts' callback: no commander, no command module, no config, one read
  if (argv[0] === '__complete') return (await import('./complete.js')).runComplete(argv.slice(1));
  const own = ownArgs(argv);
  const json = own.includes('--json');
  const colorFlag = own.includes('--no-color') ? false : own.includes('--color') ? true : undefined;
  const { decideColor } = await import('./output.js');
  const colorErr = decideColor({ flag: colorFlag, env: process.env, isTTY: Boolean(process.stderr.isTTY) });

  const { ExitError, EXIT } = await import('../core/errors.js');
  const { allDeclarations, buildProgram, commandName, COMMANDS, CommanderError, helpArgv } = await import('./program.js');
  // `agentctl help CMD` is `agentctl CMD --help`, and as cheap: only that command's module loads
  const help = helpArgv(own);
  if (help && 'error' in help) {
    writeError({ exitCode: EXIT.usage, reason: 'usage', message: help.error }, json, colorErr);
    return EXIT.usage;
  }
  const toParse = help ? help.argv : argv;

  let exitCode = 0;
  let ctxToClose: { close(): void } | undefined;
  // only the command that runs is loaded (it is, to run); the whole tree for --help and the like
  const name = commandName(help ? help.argv : own);
  const declarations = name ? [(await COMMANDS[name]()).declaration] : await allDeclarations();
  const program = buildProgram(readVersion(), declarations, async (ran, opts, args, cmd) => {
    exitCode = await runCommand(await COMMANDS[ran](), opts, args, cmd, { flag: colorFlag, err: colorErr }, (ctx) => {
      ctxToClose = ctx;
    });
  });

  ownErrors(program);

  if (own.length === 0) {
    process.stderr.write(program.helpInformation());
    writeError({ exitCode: EXIT.usage, reason: 'usage', message: 'no command given' }, json, colorErr, 'see agentctl --help');
    return EXIT.usage;
  }

  try {
    await program.parseAsync([...toParse], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.help' && err.exitCode !== 0) {
        // options but no command: commander printed the help on stderr
        writeError({ exitCode: EXIT.usage, reason: 'usage', message: 'no command given' }, json, colorErr, 'see agentctl --help');
        return EXIT.usage;
      }
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      const message = err.message.replace(/^error:\s*/i, '').split('\n')[0]!;
      writeError({ exitCode: EXIT.usage, reason: 'usage', message }, json, colorErr, 'see agentctl --help');
      return EXIT.usage;
    }
    if (err instanceof ExitError) {
      writeError(err, json, colorErr);
      return err.exitCode;
    }
    const e = err as Error;
    writeError({ exitCode: EXIT.failed, reason: 'internal', message: `internal error: ${e?.message ?? String(err)}` }, json, colorErr);
    if (process.env.AGENTCTL_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
    return EXIT.failed;
  } finally {
    ctxToClose?.close();
  }
}
