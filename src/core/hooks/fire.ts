/**
 * Start the hook runner (`agentctl _hook`, commands/hook.ts) for a command's firings: one
 * detached process in its own session, unreferenced, its output nowhere, so the command that
 * made the events exits at once. What to fire travels in the runner's environment (readable
 * by the user alone, unlike argv, which `ps` shows everyone); the events themselves it reads
 * back from the state by id, so an event a rolled-back write left out is never sent.
 */
import { spawn } from 'node:child_process';
import type { HookSpec } from '../config/types.js';
import { type Firing, HOOK_MARK_VAR } from '../event-kinds.js';

/** The variable the runner's job is in. */
export const JOB_VAR = 'AGENTCTL_HOOK_JOB';

/** What the runner is told: the hooks that fire (only those), and which event each fires for. */
export interface HookJob {
  readonly hooks: ReadonlyArray<{ name: string; command?: readonly string[]; url?: string; timeout_ms: number; cwd: string }>;
  readonly firings: readonly Firing[];
  /** firings past the command's MAX_FIRINGS, not run (the runner records one hook.dropped) */
  readonly dropped: number;
}

/** The job for these firings: hooks renumbered to those that fire. */
export function hookJob(hooks: readonly HookSpec[], firings: readonly Firing[], dropped = 0): HookJob {
  const used = [...new Set(firings.map((f) => f.hook))];
  return {
    hooks: used.map((i) => {
      const h = hooks[i]!;
      return { name: h.name, ...(h.command ? { command: h.command } : {}), ...(h.url !== undefined ? { url: h.url } : {}), timeout_ms: h.timeoutMs, cwd: h.cwd };
    }),
    firings: firings.map((f) => ({ ...f, hook: used.indexOf(f.hook) })),
    dropped,
  };
}

/** Start `agentctl _hook` for these firings and return without waiting for it. */
export function launchRunner(stateDir: string, hooks: readonly HookSpec[], firings: readonly Firing[], dropped: number, env: NodeJS.ProcessEnv): void {
  const bin = process.argv[1];
  if (!bin) return;
  // the mark makes the runner fire no hooks itself (each hook's command gets its own name in it)
  const childEnv: NodeJS.ProcessEnv = { ...env, [JOB_VAR]: JSON.stringify(hookJob(hooks, firings, dropped)), [HOOK_MARK_VAR]: '_hook' };
  // a hook is no part of the run whose process fired it: `stop` of that run must not end it
  delete childEnv.AGENTCTL_RUN_ID;
  const child = spawn(process.execPath, [bin, '--state-dir', stateDir, '--quiet', '_hook'], { detached: true, stdio: 'ignore', env: childEnv });
  child.on('error', () => undefined);
  child.unref();
}
