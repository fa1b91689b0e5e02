/**
 * Turn the commander tree into the plain CmdSpec the completion generators take, and the
 * `agentctl completion bash|zsh|fish` command that prints a script from it. The command lives
 * here, in the face, because its data is the command tree itself.
 */
import type { Command, Option } from 'commander';
import type { Ctx, Outcome } from '../core/ctx.js';
import { type CmdSpec, completionScript, type OptSpec, type Shell } from './completion.js';
import { buildProgram, PATH_OPTIONS } from './program.js';

function optSpec(o: Option): OptSpec | undefined {
  if (!o.long || o.hidden) return undefined;
  const value = o.required ? 'required' : o.optional ? 'optional' : 'none';
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  return {
    long: o.long,
    short: o.short,
    description: o.description,
    value,
    valueName,
    choices: o.argChoices,
    path: PATH_OPTIONS.has(o.long) ? (o.long === '--state-dir' || o.long === '--repo' || o.long === '--worktree' ? 'dir' : 'file') : undefined,
  };
}

export function commandSpec(c: Command): CmdSpec {
  return {
    name: c.name(),
    description: c.description(),
    options: c.options.map(optSpec).filter((o): o is OptSpec => o !== undefined && o.long !== '--version'),
    args: c.registeredArguments.map((a) => ({ name: a.name(), choices: a.argChoices })),
    // hidden commands (internal plumbing such as _end-run) are not offered
    subcommands: c.commands.filter((x) => !(x as unknown as { _hidden?: boolean })._hidden).map(commandSpec),
  };
}

/** The whole tree, with the help and version flags every shell offers anyway. */
export function programSpec(version = '0.0.0'): CmdSpec {
  return commandSpec(buildProgram(version, async () => {}));
}

export interface CompletionResult {
  readonly shell: Shell;
  readonly script: string;
}

export async function run(_opts: Record<string, unknown>, args: readonly string[], _ctx: Ctx): Promise<Outcome<CompletionResult>> {
  const shell = args[0] as Shell; // commander already checked the choice
  return { data: { shell, script: completionScript(shell, programSpec()) }, alwaysPrint: true };
}

export function render(r: CompletionResult): string {
  return r.script;
}
