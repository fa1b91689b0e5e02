/**
 * Every command's declaration as the plain CmdSpec the completion generators take, and the
 * `agentctl completion bash|zsh|fish` command that prints a script from it. The command lives
 * here, in the face, because its data is the command tree itself. This module loads every
 * command's module, so only the completion command, --help and the build's scripts and tests
 * load it (program.ts loads the one command that runs).
 */
import { Argument, Option } from 'commander';
import * as breaker from '../commands/breaker.js';
import * as config from '../commands/config.js';
import * as dedupeWorkers from '../commands/dedupe-workers.js';
import * as dlq from '../commands/dlq.js';
import * as doctor from '../commands/doctor.js';
import * as down from '../commands/down.js';
import * as endRun from '../commands/end-run.js';
import * as fleetSync from '../commands/fleet-sync.js';
import * as hook from '../commands/hook.js';
import * as restartRun from '../commands/restart-run.js';
import * as envGc from '../commands/env-gc.js';
import * as env from '../commands/env.js';
import * as events from '../commands/events.js';
import * as fleet from '../commands/fleet.js';
import * as logs from '../commands/logs.js';
import * as ports from '../commands/ports.js';
import * as ps from '../commands/ps.js';
import * as reap from '../commands/reap.js';
import * as spawn from '../commands/spawn.js';
import * as stats from '../commands/stats.js';
import * as stop from '../commands/stop.js';
import * as throttleStatus from '../commands/throttle-status.js';
import * as top from '../commands/top.js';
import * as up from '../commands/up.js';
import * as wait from '../commands/wait.js';
import type { Ctx, Outcome } from '../core/ctx.js';
import type { CommandDecl, OptionDecl, OptionValues } from '../core/declaration.js';
import { loadConfig } from '../core/config/load.js';
import { checks } from '../core/doctor/checks.js';
import { type ArgSpec, type CmdSpec, completionScript, type OptSpec, type Shell, SHELLS } from './completion.js';
import type { CommandModule } from './command.js';
import { optionHelp, ROOT } from './root.js';

export const declaration: CommandDecl = {
  name: 'completion',
  description: 'print the shell completion script for bash, zsh or fish',
  args: [{ name: '<shell>', help: 'the shell', choices: SHELLS }],
  examples: [
    'source <(agentctl completion bash)',
    'agentctl completion bash > /etc/bash_completion.d/agentctl',
    'agentctl completion zsh > "${fpath[1]}/_agentctl"',
    'agentctl completion fish > ~/.config/fish/completions/agentctl.fish',
  ],
};

/**
 * Every command module but this one, loaded, in --help's order (program.ts's COMMANDS; a unit
 * test checks the two list the same commands). Not taken from program.ts: program.ts loads
 * this module as the completion command, and the tree must not import itself.
 */
const MODULES: Record<string, CommandModule & { readonly declaration: CommandDecl }> = {
  doctor,
  'throttle-status': throttleStatus,
  spawn,
  ps,
  top,
  stats,
  dlq,
  breaker,
  env,
  'env-gc': envGc,
  ports,
  reap,
  stop,
  up,
  down,
  wait,
  logs,
  'dedupe-workers': dedupeWorkers,
  '_end-run': endRun,
  '_fleet-sync': fleetSync,
  _hook: hook,
  _restart: restartRun,
  config,
  events,
  fleet,
};

/** Every command's declaration, hidden ones too, in --help's order. */
export function declarations(): CommandDecl[] {
  return [...Object.values(MODULES).map((m) => m.declaration), declaration];
}

/** What the shells show beside an option: its help, with the default --help would add. */
function optDescription(d: OptionDecl): string {
  const given = d.default !== undefined ? ` (default: ${d.default})` : d.preset !== undefined ? ` (alone: ${d.preset})` : '';
  return `${optionHelp(d)}${given}`;
}

/**
 * What completes beyond the declarations: values from the state (`agentctl __complete KIND`),
 * the words an argument takes that commander does not check, the check ids, and the command
 * after `spawn --`. By command, then argument name or long flag.
 */
interface Extra {
  readonly args?: Record<string, Partial<ArgSpec>>;
  readonly options?: Record<string, Partial<OptSpec>>;
  readonly passthrough?: boolean;
}
const extras = (): Record<string, Extra> => ({
  spawn: { passthrough: true },
  stop: { args: { names: { dynamic: 'names' } }, options: { '--group': { dynamic: 'groups' } } },
  breaker: { args: { name: { dynamic: 'breakers', after: 'reset' } } },
  dlq: { args: { action: { choices: ['retry'] }, id: { dynamic: 'dlq', after: 'retry' } } },
  // the built-in checks; services.NAME come from the config, which a completion does not read
  doctor: { options: { '--check': { choices: checks(loadConfig({ defaultsOnly: true }).config.doctor).map((c) => c.id) } } },
});

function optSpec(d: OptionDecl, extra: Partial<OptSpec> = {}): OptSpec {
  const o = new Option(d.flags); // commander reads the flags as it does when parsing
  return {
    long: o.long ?? o.flags,
    short: o.short,
    description: optDescription(d),
    value: o.required ? 'required' : o.optional ? 'optional' : 'none',
    ...(o.variadic ? { variadic: true } : {}),
    valueName: /[<[]([^>\]]+)[>\]]/.exec(d.flags)?.[1],
    choices: d.choices,
    path: d.path,
    ...extra,
  };
}

function commandSpec(d: CommandDecl, extra: Extra = {}, subcommands: readonly CmdSpec[] = []): CmdSpec {
  return {
    name: d.name,
    description: d.description,
    options: (d.options ?? []).map((o) => optSpec(o, extra.options?.[new Option(o.flags).long ?? ''])),
    args: (d.args ?? []).map((a) => {
      const arg = new Argument(a.name);
      return { name: arg.name(), ...(arg.variadic ? { variadic: true } : {}), choices: a.choices, ...extra.args?.[arg.name()] };
    }),
    subcommands,
    ...(extra.passthrough ? { passthrough: true } : {}),
  };
}

/** The whole tree as completions offer it: hidden commands (internal plumbing such as _end-run) left out. */
export function programSpec(): CmdSpec {
  const more = extras();
  return commandSpec(
    ROOT,
    {},
    declarations()
      .filter((d) => !d.hidden)
      .map((d) => commandSpec(d, more[d.name])),
  );
}

export interface CompletionResult {
  readonly shell: Shell;
  readonly script: string;
}

export async function run(_opts: OptionValues, args: readonly string[], _ctx: Ctx): Promise<Outcome<CompletionResult>> {
  const shell = args[0] as Shell; // commander already checked the choice
  return { data: { shell, script: completionScript(shell, programSpec()) }, alwaysPrint: true };
}

export function render(r: CompletionResult): string {
  return r.script;
}
