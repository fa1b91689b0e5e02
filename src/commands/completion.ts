/** agentctl completion bash|zsh|fish: print a completion script generated from the command tree. */
import type { Outcome } from '../core/command.js';
import { completionScript, type Shell } from '../core/completion.js';
import type { Ctx } from '../core/context.js';
import { programSpec } from '../completion-spec.js';

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
