/**
 * The command tree, built with commander from what each command module declares beside its
 * run() (src/core/declaration.ts): options, defaults, help and examples are written there once.
 * Only commander is loaded here, and a command's module only when its declaration is needed:
 * main.ts builds the one command argv runs (commandName), and the whole tree only for --help,
 * an unknown command or no command, so `agentctl --version` never pays for SQLite or
 * systeminformation. The completion scripts and the docs check read the same declarations
 * (completion-spec.ts, which is also the completion command's module).
 */
import type { ArgumentDecl, CommandDecl, OptionDecl, OptionValues } from '../core/declaration.js';
import { Argument, Command, CommanderError, Option } from 'commander';
import type { CommandModule } from './command.js';
import { GLOBAL_OPTIONS, optionHelp, ROOT } from './root.js';

export { CommanderError };

/** A command's module: what it declares, how it runs, how its result reads. */
export interface Loaded extends CommandModule {
  readonly declaration: CommandDecl;
}

/** Every command, in the order --help lists them, and how to load its module. */
export const COMMANDS = {
  doctor: () => import('../commands/doctor.js'),
  'throttle-status': () => import('../commands/throttle-status.js'),
  spawn: () => import('../commands/spawn.js'),
  ps: () => import('../commands/ps.js'),
  top: () => import('../commands/top.js'),
  stats: () => import('../commands/stats.js'),
  dlq: () => import('../commands/dlq.js'),
  breaker: () => import('../commands/breaker.js'),
  env: () => import('../commands/env.js'),
  'env-gc': () => import('../commands/env-gc.js'),
  ports: () => import('../commands/ports.js'),
  reap: () => import('../commands/reap.js'),
  stop: () => import('../commands/stop.js'),
  up: () => import('../commands/up.js'),
  down: () => import('../commands/down.js'),
  wait: () => import('../commands/wait.js'),
  logs: () => import('../commands/logs.js'),
  'dedupe-workers': () => import('../commands/dedupe-workers.js'),
  '_end-run': () => import('../commands/end-run.js'),
  '_fleet-sync': () => import('../commands/fleet-sync.js'),
  _hook: () => import('../commands/hook.js'),
  _restart: () => import('../commands/restart-run.js'),
  config: () => import('../commands/config.js'),
  events: () => import('../commands/events.js'),
  fleet: () => import('../commands/fleet.js'),
  // the completion command prints the command tree itself, so it lives in the face
  completion: () => import('./completion-spec.js'),
} satisfies Record<string, () => Promise<Loaded>>;

export type CommandName = keyof typeof COMMANDS;

/** Called when a command runs: its name, its own options (defaults applied) and its arguments. */
export type Dispatch = (name: CommandName, opts: OptionValues, args: string[], cmd: Command) => Promise<void>;

/**
 * The command argv runs, when commander will surely dispatch to it: the first word, after
 * nothing but agentctl's own options and their values. Anything else before it (an unknown
 * option, --help, --version, `--`, a word that names no command) gives undefined, and the
 * caller builds the whole tree: commander then answers as it always did.
 */
export function commandName(argv: readonly string[]): CommandName | undefined {
  const i = firstWord(argv);
  return i !== undefined && Object.hasOwn(COMMANDS, argv[i]!) ? (argv[i] as CommandName) : undefined;
}

/**
 * Where the first word is (the command's name, or `help`): after nothing but agentctl's own
 * options and their values. Undefined when there is none, or anything else comes first.
 */
function firstWord(argv: readonly string[]): number | undefined {
  const globals = GLOBAL_OPTIONS.map((d) => new Option(d.flags));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) return i;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const o = globals.find((g) => g.long === flag || g.short === flag);
    if (!o || (eq >= 0 && !o.required)) return undefined;
    if (o.required && eq < 0) i++; // its value
  }
  return undefined;
}

/** The commands `help` and the completions offer: internal plumbing (`_end-run`) left out. */
export const visibleCommands = (): string[] => Object.keys(COMMANDS).filter((n) => !n.startsWith('_'));

/**
 * `agentctl help [COMMAND]` (agentctl's own options before or after it) asks for what
 * `agentctl [COMMAND] --help` prints: the words to parse instead. A word that names no
 * command, or more than one word, is bad input: its one line. Undefined when argv's first
 * word is not `help`. (Options before `--` only: the caller passes those.)
 */
export function helpArgv(argv: readonly string[]): { argv: string[] } | { error: string } | undefined {
  const i = firstWord(argv);
  if (i === undefined || argv[i] !== 'help') return undefined;
  const opts: string[] = [];
  const words: string[] = [];
  const valued = GLOBAL_OPTIONS.map((d) => new Option(d.flags)).filter((o) => o.required);
  for (let j = i + 1; j < argv.length; j++) {
    const w = argv[j]!;
    if (!w.startsWith('-')) words.push(w);
    else if (valued.some((o) => o.long === w) && j + 1 < argv.length) opts.push(w, argv[++j]!);
    else opts.push(w);
  }
  const known = visibleCommands();
  const accepted = `expected one of: ${known.join(', ')}`;
  if (words.length > 1) return { error: `help: give one command, not ${words.length} (${words.map((w) => JSON.stringify(w)).join(' ')}); ${accepted}` };
  const name = words[0];
  if (name !== undefined && !Object.hasOwn(COMMANDS, name)) return { error: `help: unknown command ${JSON.stringify(name)}; ${accepted}` };
  return { argv: [...argv.slice(0, i), ...(name !== undefined ? [name] : []), ...opts, '--help'] };
}

/** Every command's declaration, in --help's order: loads every module. */
export async function allDeclarations(): Promise<CommandDecl[]> {
  return Promise.all(Object.values(COMMANDS).map(async (load) => ((await load()) as Loaded).declaration));
}

function option(d: OptionDecl): Option {
  const o = new Option(d.flags, optionHelp(d));
  if (d.default !== undefined) o.default(d.default);
  if (d.preset !== undefined) o.preset(d.preset);
  if (d.choices) o.choices(d.choices);
  return o;
}

function argument(d: ArgumentDecl): Argument {
  const a = new Argument(d.name, d.help);
  if (d.choices) a.choices(d.choices);
  if (d.default !== undefined) a.default(d.default);
  return a;
}

function helpAfter(d: CommandDecl): string {
  const examples = d.examples?.length ? `\nExamples:\n${d.examples.map((l) => `  $ ${l}`).join('\n')}\n` : '';
  return examples + (d.exitCodes ? `\nExit codes: ${d.exitCodes}\n` : '');
}

/** Values of the declared arguments, in order: a list spread, one not given (no default) left out. */
function argValues(processed: readonly unknown[]): string[] {
  return processed.flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [String(v as string)]));
}

function addCommand(program: Command, d: CommandDecl, dispatch: Dispatch): void {
  const cmd = program.command(d.name, { hidden: Boolean(d.hidden) }).description(d.description);
  if (d.usage) cmd.usage(d.usage);
  for (const a of d.args ?? []) cmd.addArgument(argument(a));
  for (const o of d.options ?? []) cmd.addOption(option(o));
  const after = helpAfter(d);
  if (after) cmd.addHelpText('after', after);
  cmd.action(async (...params: unknown[]) => {
    const c = params[params.length - 1] as Command;
    await dispatch(d.name as CommandName, c.opts(), argValues(c.processedArgs), c);
  });
}

/** agentctl with these commands (main.ts passes the one that runs, or all of them). */
export function buildProgram(version: string, commands: readonly CommandDecl[], dispatch: Dispatch): Command {
  const program = new Command(ROOT.name)
    .description(ROOT.description)
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command (the same as COMMAND --help)');
  for (const o of GLOBAL_OPTIONS) program.addOption(option(o));
  program.showSuggestionAfterError(true).addHelpText('after', helpAfter(ROOT));
  for (const d of commands) addCommand(program, d, dispatch);
  refuseRepeatedOptions(program);
  return program;
}

/**
 * A single-value option given twice (`--max 3 --max 4`) is bad input: commander would keep the
 * last one silently. Counted as commander parses, so `--max=4`, and global options before or
 * after the command name, count alike; what follows `--` is the child's. Options that take
 * several values (`--check <ids...>`, `--requires <names...>`) and on/off flags may repeat.
 * For one parse of `cmd` and its subcommands.
 */
export function refuseRepeatedOptions(cmd: Command): void {
  for (const o of cmd.options) {
    if (o.variadic || !(o.required || o.optional)) continue;
    const seen: Array<string | null> = [];
    cmd.on(`option:${o.name()}`, (value: string | null) => {
      seen.push(value ?? null);
      if (seen.length < 2) return;
      const values = seen.every((v) => v !== null) ? ` (${seen.map((v) => JSON.stringify(v)).join(', then ')})` : '';
      cmd.error(`${o.long ?? o.flags}: given twice${values}; give it once`, { exitCode: 2, code: 'agentctl.repeatedOption' });
    });
  }
  for (const sub of cmd.commands) refuseRepeatedOptions(sub);
}
