/**
 * The command tree as the completion generators take it: plain data, so the generators need no
 * commander. completion-spec.ts builds it from the declarations; completion.ts and its
 * completion-zsh.ts and completion-fish.ts print the scripts.
 */

/** Kinds of value the scripts ask `agentctl __complete KIND` for (core/candidates.ts). */
export type DynamicKind = 'names' | 'groups' | 'breakers' | 'dlq';

export interface OptSpec {
  readonly long: string;
  readonly short?: string | undefined;
  readonly description: string;
  /** takes a value: 'required', 'optional', or 'none' for a switch */
  readonly value: 'required' | 'optional' | 'none';
  /** takes several values (`--check <ids...>`) */
  readonly variadic?: boolean | undefined;
  readonly valueName?: string | undefined;
  readonly choices?: readonly string[] | undefined;
  /** 'file' or 'dir' when the value is a path */
  readonly path?: 'file' | 'dir' | undefined;
  /** the value comes from the state */
  readonly dynamic?: DynamicKind | undefined;
  /** agentctl's own (--version): offered before the command only */
  readonly rootOnly?: boolean | undefined;
}

export interface ArgSpec {
  readonly name: string;
  readonly variadic?: boolean | undefined;
  readonly choices?: readonly string[] | undefined;
  /** the value comes from the state */
  readonly dynamic?: DynamicKind | undefined;
  /** offered only when the argument before it is this word (`breaker reset NAME`) */
  readonly after?: string | undefined;
}

export interface CmdSpec {
  readonly name: string;
  readonly description: string;
  readonly options: readonly OptSpec[];
  readonly args: readonly ArgSpec[];
  readonly subcommands: readonly CmdSpec[];
  /** what follows `--` is a command of its own (spawn): the shell's command and file completion */
  readonly passthrough?: boolean | undefined;
}

export const HEADER = 'generated from the command tree by scripts/gen-completions.mjs; do not edit';

const HELP: OptSpec = { long: '--help', short: '-h', description: 'show help', value: 'none' };
const VERSION: OptSpec = { long: '--version', short: '-V', description: 'print the version', value: 'none', rootOnly: true };

/**
 * The tree with what commander adds to every declared one: `-h, --help` on each command,
 * `-V, --version` on agentctl itself, and `help [command]`.
 */
export function withBuiltins(root: CmdSpec): CmdSpec {
  const names = root.subcommands.map((c) => c.name);
  const help: CmdSpec = { name: 'help', description: 'show help for a command (the same as COMMAND --help)', options: [], args: [{ name: 'command', choices: names }], subcommands: [] };
  const addHelp = (c: CmdSpec): CmdSpec => ({ ...c, options: [...c.options, HELP], subcommands: c.subcommands.map(addHelp) });
  return { ...root, options: [...root.options, HELP, VERSION], subcommands: [...root.subcommands.map(addHelp), help] };
}

/** The commands below agentctl itself. */
export const topCommands = (root: CmdSpec): readonly CmdSpec[] => root.subcommands;

export const words = (xs: readonly string[]): string => xs.join(' ');
export const optWords = (opts: readonly OptSpec[]): string[] => opts.flatMap((o) => (o.short ? [o.long, o.short] : [o.long]));
